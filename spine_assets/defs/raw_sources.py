"""The three raw sources (SPIDER, RSNA 2024, Phenikaa) as assets, with the checks that guard them.

``spine_lib.sources`` (SimpleITK, pandas) is imported inside the bodies: loading the code location stays fast.
"""

from __future__ import annotations

import dagster as dg

from spine_assets.defs.data_root import data_root
from spine_assets.defs.resources import DataRoot
from spine_assets.metadata import check_result


@dg.asset(group_name="raw", deps=[data_root], kinds={"dicom", "csv"})
def spider_raw(paths: DataRoot) -> dg.MaterializeResult:
    """SPIDER lumbar MRI (images, masks, gradings) as it lies under raw/SPIDER."""
    from spine_lib.sources import describe_spider

    counts = describe_spider(paths.layout.spider)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.layout.spider)), **counts})


@dg.asset(group_name="raw", deps=[data_root], kinds={"dicom", "csv"})
def rsna_raw(paths: DataRoot) -> dg.MaterializeResult:
    """RSNA 2024 lumbar studies (DICOM) and the competition CSVs under raw/RSNA."""
    from spine_lib.sources import describe_rsna

    counts = describe_rsna(paths.layout.rsna)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.layout.rsna)), **counts})


@dg.asset(group_name="raw", deps=[data_root], kinds={"dicom", "pdf", "excel"})
def phenikaa_raw(paths: DataRoot) -> dg.MaterializeResult:
    """The hospital export under raw/Phenikaa: reports (the inbox), study folders and label tables."""
    from spine_lib.sources import describe_phenikaa

    counts = describe_phenikaa(paths.layout.phenikaa)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.layout.phenikaa)), **counts})


@dg.asset_check(asset=spider_raw, description="Masks hold only values of the 'spider' label schema; sane geometry.")
def spider_mask_values(paths: DataRoot) -> dg.AssetCheckResult:
    from spine_lib.sources import check_spider_masks

    return check_result(check_spider_masks(paths.layout.spider))


@dg.asset_check(asset=rsna_raw, description="Every coordinate row points to an existing DICOM of the right series.")
def rsna_coordinates_resolve(paths: DataRoot) -> dg.AssetCheckResult:
    from spine_lib.sources import check_rsna_coordinates

    return check_result(check_rsna_coordinates(paths.layout.rsna))


@dg.asset_check(asset=phenikaa_raw, description="Every label table parses; dropped rows are counted by reason.")
def phenikaa_label_tables_parse(paths: DataRoot) -> dg.AssetCheckResult:
    from spine_lib.sources import check_label_tables

    outcome, dropped = check_label_tables(paths.layout.phenikaa)
    return check_result(outcome, dropped)
