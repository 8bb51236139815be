"""Vertebra, disc and canal segmentation: SPIDER converted to an nnU-Net v2 dataset, and a model trained on it.

The dataset asset mirrors ``spine-vision dataset nnunet`` (reruns convert only changed cases); its checks are the
label values and the image/label pairing. The model asset runs nnU-Net's planning, preprocessing and training
on the device the resource picks; its run config defaults to nnU-Net's standard (nnUNetTrainer, 3d_fullres,
fold 0), and ``trainer: nnUNetTrainerShort`` with a few epochs gives a quick CPU run. Validation previews
(HTML slice viewers) are linked in its metadata.
"""

import dagster as dg

from spine_assets.defs.raw_sources import spider_raw
from spine_assets.defs.resources import DataRoot, TorchDevice
from spine_assets.metadata import check_result
from spine_assets.run_config import derived_config, library_overrides
from spine_lib.datasets.nnunet.config import ConvertConfig
from spine_lib.segmentation.training import SegmentationTrainConfig

LABELS_CHECK = "nnunet_labels_consecutive"
PAIRS_CHECK = "nnunet_images_have_labels"
DICE_CHECK = "nnunet_validation_dice"

class NNUNetDatasetSettings(
    derived_config(ConvertConfig, exclude={"input_path", "output_path", "dataset_id", "dataset_name"},
                   defaults={"workers": 2})
):
    """Conversion options (the flags of ``spine-vision dataset nnunet``; paths from the data root)."""


class NNUNetTrainingSettings(
    derived_config(SegmentationTrainConfig, exclude={"data_path", "preprocessed_path", "results_path", "device"},
                   defaults={"preprocess_workers": 2})
):
    """nnU-Net training options (the flags of ``spine-vision train segmentation``; paths from the data root,
    the device from the resource), the previews to write and the Dice floor of the check."""

    previews: int = 2
    min_validation_dice: float = 0.5


@dg.asset(group_name="segmentation", deps=[spider_raw], kinds={"nifti"})
def spider_nnunet_dataset(config: NNUNetDatasetSettings, paths: DataRoot) -> dg.MaterializeResult:
    """SPIDER as an nnU-Net v2 raw dataset: processed/SPIDER/Dataset501_Spider (imagesTr, labelsTr, dataset.json,
    rejects.csv)."""
    from spine_lib.datasets.nnunet import convert_to_nnunet, dataset_version

    report = convert_to_nnunet(ConvertConfig.for_layout(paths.layout, **library_overrides(config)))
    return dg.MaterializeResult(metadata={
        **report.as_metadata(),
        "dataset": dg.MetadataValue.path(str(report.output_path)),
        "rejects": dg.MetadataValue.path(str(report.rejects_path)),
        "label_table": dg.MetadataValue.md(report.label_table_markdown()),
    }, data_version=dg.DataVersion(dataset_version(report.output_path)[:16]))


@dg.asset_check(asset=spider_nnunet_dataset, description="dataset.json labels run 0..N-1; label files hold only those.")
def nnunet_labels_consecutive(paths: DataRoot) -> dg.AssetCheckResult:
    from spine_lib.datasets.nnunet import check_labels_consecutive

    return check_result(check_labels_consecutive(paths.layout.nnunet_dataset))


@dg.asset_check(asset=spider_nnunet_dataset, description="Every image has its label on the same voxel grid.")
def nnunet_images_have_labels(paths: DataRoot) -> dg.AssetCheckResult:
    from spine_lib.datasets.nnunet import check_images_have_labels

    return check_result(check_images_have_labels(paths.layout.nnunet_dataset))


@dg.asset(
    group_name="segmentation",
    deps=[spider_nnunet_dataset],
    pool="gpu",
    kinds={"pytorch"},
    check_specs=[dg.AssetCheckSpec(DICE_CHECK, asset="nnunet_model",
                                   description="Mean validation Dice over the labels present is at least the run "
                                               "config's min_validation_dice.")],
)
def nnunet_model(
    context: dg.AssetExecutionContext, config: NNUNetTrainingSettings, paths: DataRoot, torch_device: TorchDevice
) -> dg.MaterializeResult:
    """nnU-Net v2 model of vertebrae, discs and canal:
    weights/segmentation/Dataset501_Spider/<trainer>__<plans>__<configuration>/fold_<f>/checkpoint_final.pth."""
    from spine_lib.segmentation.training import train_segmentation
    from spine_lib.visualization.segmentation_viewer import write_validation_previews

    layout = paths.layout
    choice = torch_device.choice()
    context.log.info(f"training on {choice.device} ({choice.reason})")
    result = train_segmentation(SegmentationTrainConfig.for_layout(layout, **library_overrides(config,
                                                                   device=choice.device)))
    previews = write_validation_previews(result.model_path, result.fold, layout.nnunet_dataset, config.previews)
    metadata: dict[str, dg.RawMetadataValue] = {
        **result.as_metadata(),
        "checkpoint": dg.MetadataValue.path(str(result.checkpoint)),
        "model_path": dg.MetadataValue.path(str(result.model_path)),
        "training_log": dg.MetadataValue.path(str(result.log_path)),
        "validation_dice": dg.MetadataValue.md(result.dice_table_markdown()),
        "dice_per_label": dg.MetadataValue.json({k: round(v, 4) for k, v in result.dice_per_label.items()}),
    }
    for case, path in previews.items():
        metadata[f"preview_{case}"] = dg.MetadataValue.path(str(path))
    dice = result.foreground_dice
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name=DICE_CHECK, passed=dice == dice and dice >= config.min_validation_dice,
            metadata={"mean_dice": round(dice, 4) if dice == dice else -1.0, "floor": config.min_validation_dice,
                      "validation_cases": len(result.validation_cases)},
        )],
    )
