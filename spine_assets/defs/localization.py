"""The disc localization model: trained on the IVD coordinates dataset, on the device the resource picks.

The run config (editable in the launchpad) mirrors ``spine-vision train localization``; its defaults are a
quick CPU run (ConvNeXt-atto, 128x128). The asset reports the best checkpoint's validation PCK and pixel error,
its run id and path, and the training curves; a check compares PCK@0.05 with a floor from the same run config.
"""

import dagster as dg

from spine_assets.defs.resources import DataRoot, ExperimentTracking, TorchDevice

PCK_CHECK = "localization_val_pck"
HISTORY_ROWS = 30


class LocalizationTrainingSettings(dg.Config):
    """Training options (the flags of ``spine-vision train localization``) and the quality floor of the check."""

    model_name: str = "convnext_localization"
    model_variant: str = "atto"
    pretrained: bool = False
    weights_file: str | None = None
    image_size: list[int] = [128, 128]  # noqa: RUF012 (dagster config defaults are copied per run)
    batch_size: int = 16
    num_epochs: int = 20
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    scheduler_type: str = "cosine"
    freeze_backbone_epochs: int = 0
    loss_type: str = "smooth_l1"
    head_type: str = "heatmap"
    use_level_embedding: bool = True
    augment: bool = True
    early_stopping: bool = True
    patience: int = 20
    val_fraction: float = 0.2
    seed: int = 42
    num_workers: int = 0
    visualize_predictions: bool = True
    run_id: str | None = None
    min_val_pck_05: float = 0.3


def history_table(history: dict[str, list[float]]) -> str:
    """The last epochs' losses and main metrics as a markdown table."""
    columns = [c for c in ("epoch", "train_loss", "val_loss", "pck@0.05", "mean_error_px", "lr") if c in history]
    rows = list(zip(*(history[c] for c in columns), strict=True))[-HISTORY_ROWS:]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f"{v:.4g}" for v in row) + " |" for row in rows]
    return "\n".join(lines)


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
    """A ConvNeXt (or ViT) with a level embedding that finds each lumbar disc's point on a sagittal slice:
    weights/localization/<run_id>/ (best_model.pt, last.pt, config.yaml, logs/ with plots)."""
    from spine_lib.training.config import LocalizationConfig
    from spine_lib.training.trainers.localization import train_localization

    layout = paths.layout
    choice = torch_device.choice()
    context.log.info(f"training on {choice.device} ({choice.reason})")
    settings = config.model_dump(exclude={"min_val_pck_05"})
    library_config = LocalizationConfig.model_validate({
        **settings,
        "image_size": tuple(config.image_size),
        "data_path": layout.ivd_coords,
        "weights_path": layout.weights,
        "device": choice.device,
        "mixed_precision": choice.mixed_precision,
        "use_wandb": tracking.enabled,
        "wandb_mode": tracking.mode if tracking.enabled else "offline",
        "wandb_project": tracking.project,
    })
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
            {k.split("/")[0]: round(v, 4) for k, v in metrics.items() if k.endswith("/pck@0.05")}
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
