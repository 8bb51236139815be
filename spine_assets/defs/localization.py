"""The disc localization model: trained on the IVD coordinates dataset, on the device the resource picks.

The run config (editable in the launchpad) mirrors ``spine-vision train localization``; its defaults are a
quick CPU run (ConvNeXt-atto, 128x128). The asset reports the best checkpoint's validation PCK and pixel error,
its run id and path, and the training curves; a check compares PCK@0.05 with a floor from the same run config.
"""

import dagster as dg

from spine_assets.defs.resources import DataRoot, ExperimentTracking, TorchDevice
from spine_assets.run_config import derived_config, library_overrides
from spine_lib.core.markdown import markdown_table
from spine_lib.training.config import LocalizationConfig

PCK_CHECK = "localization_val_pck"
HISTORY_ROWS = 30


#: The asset's defaults where they differ from the library's: a quick CPU run (ConvNeXt-atto, 128x128).
QUICK_CPU_RUN = {"model_variant": "atto", "image_size": (128, 128), "batch_size": 16, "num_epochs": 20,
                 "learning_rate": 1e-3}
#: Set by the asset from its resources (data root, device, tracking), not by the run config.
FROM_RESOURCES = {"task", "data_path", "output_path", "weights_path", "device", "mixed_precision", "use_wandb",
                  "wandb_mode", "wandb_project"}


class LocalizationTrainingSettings(derived_config(LocalizationConfig, exclude=FROM_RESOURCES, defaults=QUICK_CPU_RUN)):
    """Training options (the flags of ``spine-vision train localization``) and the quality floor of the check."""

    min_val_pck_05: float = 0.3


def history_table(history: dict[str, list[float]]) -> str:
    """The last epochs' losses and main metrics as a markdown table."""
    columns = [c for c in ("epoch", "train_loss", "val_loss", "pck@0.05", "mean_error_px", "lr") if c in history]
    rows = list(zip(*(history[c] for c in columns), strict=True))[-HISTORY_ROWS:]
    return markdown_table(columns, [[f"{v:.4g}" for v in row] for row in rows])


@dg.asset(
    group_name="localization",
    deps=[dg.AssetKey("ivd_coords_dataset")],
    pool="gpu",
    kinds={"pytorch"},
    check_specs=[dg.AssetCheckSpec(PCK_CHECK, asset="localization_model",
                                   description="PCK@0.05 of the best checkpoint on the validation split is at "
                                               "least the run config's min_val_pck_05.")],
)
def localization_model(
    context: dg.AssetExecutionContext,
    config: LocalizationTrainingSettings,
    paths: DataRoot,
    torch_device: TorchDevice,
    tracking: ExperimentTracking,
) -> dg.MaterializeResult:
    """The model that finds each lumbar disc's point on a sagittal slice (by default the level-free ConvNeXt disc
    detector; ``model_name`` picks a level-conditioned one): weights/localization/<run_id>/ (best_model.pt,
    last.pt, config.yaml, logs/ with plots)."""
    from spine_lib.training.metrics import per_group
    from spine_lib.training.trainers.localization import train_localization

    choice = torch_device.choice()
    context.log.info(f"training on {choice.device} ({choice.reason})")
    library_config = LocalizationConfig.for_layout(paths.layout, **library_overrides(
        config, device=choice.device, mixed_precision=choice.mixed_precision, use_wandb=tracking.enabled,
        wandb_mode=tracking.mode if tracking.enabled else "offline", wandb_project=tracking.project,
    ))
    result = train_localization(library_config, device_choice=choice)
    metrics = result.final_metrics
    pck = float(metrics.get("pck@0.05", 0.0))
    metadata: dict[str, dg.RawMetadataValue] = {
        **{k: v for k, v in result.as_metadata().items() if "/" not in k},
        "device": choice.device,
        "best_model": dg.MetadataValue.path(str(result.best_model_path)),
        "run_folder": dg.MetadataValue.path(str(result.output_path)),
        "history": dg.MetadataValue.md(history_table(result.history)),
        "per_level_pck@0.05": dg.MetadataValue.json(
            {level: round(v, 4) for level, v in per_group(metrics, "pck@0.05").items()}
        ),
    }
    for name, path in result.plots.items():
        metadata[f"plot_{name}"] = dg.MetadataValue.path(str(path))
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name=PCK_CHECK, passed=pck >= config.min_val_pck_05,
            metadata={"pck@0.05": round(pck, 4), "floor": config.min_val_pck_05,
                      "validation_items": int(metrics.get("count", 0))},
        )],
    )
