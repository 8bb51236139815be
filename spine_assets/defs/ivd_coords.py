"""The IVD localization dataset: RSNA 2024 coordinates (and Lumbar Coords when present) as images + points.

The asset body builds :class:`spine_lib.datasets.ivd_coords.IVDDatasetConfig` from the data root and its run
config and calls the library; the checks read the written dataset back.
"""

from collections.abc import Iterator

import dagster as dg

from spine_assets.defs.raw_sources import rsna_raw
from spine_assets.defs.resources import DataRoot
from spine_assets.metadata import listed
from spine_assets.run_config import derived_config, library_overrides
from spine_lib.datasets.ivd_coords.config import IVDDatasetConfig

MAX_REJECT_RATE = 0.05


class IVDCoordsSettings(derived_config(IVDDatasetConfig, exclude={"base_path", "output_name"}, defaults={"workers": 2})):
    """Which RSNA points go into the dataset (the flags of ``spine-vision dataset localization``; the data root
    from the ``paths`` resource)."""


@dg.asset(group_name="localization", deps=[rsna_raw], kinds={"png", "csv"})
def ivd_coords_dataset(config: IVDCoordsSettings, paths: DataRoot) -> dg.MaterializeResult:
    """One PNG per labelled RSNA instance and annotations.csv: the disc/canal point per level on Sagittal T2,
    the foramen points on Sagittal T1. Bad coordinate rows are skipped, counted and listed in rejects.csv."""
    from spine_lib.datasets.ivd_coords import build_ivd_coords, dataset_version

    layout = paths.layout
    report = build_ivd_coords(IVDDatasetConfig.for_layout(layout, **library_overrides(config)))
    metadata: dict[str, dg.RawMetadataValue] = dict(report.as_metadata())
    metadata["dataset"] = dg.MetadataValue.path(str(layout.ivd_coords))
    metadata["dagster/row_count"] = report.annotations
    metadata["counts"] = dg.MetadataValue.md(report.counts_table())
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(dataset_version(layout.ivd_coords)[:16]))


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("ivd_coords_images_exist", asset=ivd_coords_dataset,
                          description="Every annotation's image exists in the dataset's images/ folder."),
        dg.AssetCheckSpec("ivd_coords_points_inside", asset=ivd_coords_dataset,
                          description="Every relative point lies inside its image ([0, 1) on both axes)."),
        dg.AssetCheckSpec("ivd_coords_reject_rate", asset=ivd_coords_dataset,
                          description=f"At most {MAX_REJECT_RATE:.0%} of the usable coordinate rows were rejected."),
    ]
)
def ivd_coords_checks(paths: DataRoot) -> Iterator[dg.AssetCheckResult]:
    from spine_lib.datasets.ivd_coords import audit_dataset

    audit = audit_dataset(paths.layout.ivd_coords)
    yield dg.AssetCheckResult(
        check_name="ivd_coords_images_exist", passed=not audit.missing_images,
        metadata={"annotations": audit.annotations, "missing": len(audit.missing_images),
                  "first_missing": listed(audit.missing_images)},
    )
    yield dg.AssetCheckResult(
        check_name="ivd_coords_points_inside", passed=not audit.points_outside and audit.annotations > 0,
        metadata={"annotations": audit.annotations, "outside": len(audit.points_outside),
                  "first_outside": listed(audit.points_outside)},
    )
    yield dg.AssetCheckResult(
        check_name="ivd_coords_reject_rate", passed=audit.reject_rate <= MAX_REJECT_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected": audit.rejected, "reject_rate": round(audit.reject_rate, 4)},
    )
