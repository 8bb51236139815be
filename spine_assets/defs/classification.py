"""Per-disc crops of the graded patients (SPIDER and the matched Phenikaa patients): the grading classifier's input.

The asset mirrors ``spine-vision dataset classification``: SPIDER's disc points from its masks, Phenikaa's from the
newest localization model, on the device the resource picks; reruns crop only the patients whose inputs or model
changed. Its metadata counts crops per source and level and rejects per reason, and shows a contact sheet of
sample crops; its checks account for every graded disc and, on a synthetic root, put every crop on its own disc.
"""

import base64

import dagster as dg

from spine_assets.defs.localization import localization_model
from spine_assets.defs.phenikaa import phenikaa_patients
from spine_assets.defs.raw_sources import spider_raw
from spine_assets.defs.resources import DataRoot, TorchDevice
from spine_assets.metadata import check_result
from spine_assets.run_config import derived_config, library_overrides
from spine_lib.datasets.classification.config import ClassificationDatasetConfig

COMPLETE_CHECK = "ivd_crops_complete"
ON_DISC_CHECK = "ivd_crops_on_their_discs"
#: The contact sheet is shown inline up to this size (larger ones are linked by path only).
MAX_INLINE_BYTES = 400_000

class IVDCropsSettings(derived_config(ClassificationDatasetConfig,
                                      exclude={"base_path", "output_name", "weights_path", "device"})):
    """Crop options (the flags of ``spine-vision dataset classification``; the data root and weights from the
    ``paths`` resource, the device from ``torch_device``)."""

def crops_config(config: IVDCropsSettings, paths: DataRoot, device: str = "cpu") -> ClassificationDatasetConfig:
    return ClassificationDatasetConfig.for_layout(paths.layout, **library_overrides(config, device=device))

@dg.asset(
    group_name="classification",
    deps=[phenikaa_patients, spider_raw, localization_model],
    kinds={"png", "csv"},
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec(COMPLETE_CHECK, asset="ivd_crops",
                          description="Every graded (patient, level) has, for each sequence, a crop or a reject "
                                      "with its reason; every listed crop exists."),
        dg.AssetCheckSpec(ON_DISC_CHECK, asset="ivd_crops",
                          description="On a synthetic root (truth/ present): every crop's point lies on its own "
                                      "disc. Skipped (passes) on real data."),
    ],
)
def ivd_crops(context: dg.AssetExecutionContext, config: IVDCropsSettings, paths: DataRoot,
              torch_device: TorchDevice) -> dg.MaterializeResult:
    """images/<source>_<patient>_<series>_L<level>.png, annotations.csv (grades, slice, point, box) and
    rejects.csv under processed/classification."""
    from spine_lib.datasets.classification import audit_crops, build_classification_dataset
    from spine_lib.formats.classification import dataset_version
    from spine_lib.synthetic.crops import crops_on_their_discs

    choice = torch_device.choice()
    library = crops_config(config, paths, choice.device)
    report = build_classification_dataset(library)
    metadata: dict[str, dg.RawMetadataValue] = dict(report.as_metadata())
    metadata["dataset"] = dg.MetadataValue.path(str(report.output_path))
    metadata["dagster/row_count"] = report.crops
    metadata["crops_per_source_level"] = dg.MetadataValue.md(report.counts_table())
    metadata["rejects_by_reason"] = dg.MetadataValue.md(report.rejects_table())
    if report.contact_sheet.is_file():
        metadata["contact_sheet_path"] = dg.MetadataValue.path(str(report.contact_sheet))
        data = report.contact_sheet.read_bytes()
        if len(data) <= MAX_INLINE_BYTES:
            encoded = base64.b64encode(data).decode("ascii")
            metadata["contact_sheet"] = dg.MetadataValue.md(f"![sample T2 crops](data:image/png;base64,{encoded})")
    context.log.info(f"{report.crops} crops, {report.rejected} rejected")
    checks = [check_result(audit_crops(library).completeness(), check_name=COMPLETE_CHECK)]
    outcome = crops_on_their_discs(library.base_path, report.output_path)
    checks.append(check_result(outcome, check_name=ON_DISC_CHECK) if outcome is not None else
                  dg.AssetCheckResult(check_name=ON_DISC_CHECK, passed=True, metadata={"truth": "none (real data)"}))
    return dg.MaterializeResult(metadata=metadata, check_results=checks,
                                data_version=dg.DataVersion(dataset_version(report.output_path)[:16]))
