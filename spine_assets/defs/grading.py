"""The disc-grading classifier: trained on the IVD crops, on the device the resource picks.

The run config (editable in the launchpad) mirrors ``spine-vision train classification``; its defaults are a quick
CPU run (a ResNet18 backbone at 128x128). The asset reports each head's validation metrics next to its
majority-class baseline, the confusion matrices and curves, the run id and the checkpoint; its checks ask every
head to beat its baseline and the Pfirrmann kappa to reach a floor from the same run config.
"""

import dagster as dg

from spine_assets.defs.classification import ivd_crops
from spine_assets.defs.resources import DataRoot, ExperimentTracking, TorchDevice
from spine_assets.run_config import derived_config, library_overrides
from spine_lib.core.markdown import markdown_table
from spine_lib.training.config import ClassificationConfig

BASELINE_CHECK = "classifier_beats_baselines"
KAPPA_CHECK = "classifier_pfirrmann_kappa"
#: The asset's defaults where they differ from the library's: a quick CPU run.
QUICK_CPU_RUN = {"backbone": "resnet18", "output_size": (128, 128), "batch_size": 16, "num_epochs": 15,
                 "learning_rate": 1e-3}
#: Set by the asset from its resources (data root, device, tracking), not by the run config.
FROM_RESOURCES = {"task", "data_path", "output_path", "weights_path", "device", "mixed_precision", "use_wandb",
                  "wandb_mode", "wandb_project"}
#: The metric each head is compared with its baseline on.
COMPARED = "balanced_accuracy"


class ClassifierTrainingSettings(derived_config(ClassificationConfig, exclude=FROM_RESOURCES,
                                                defaults=QUICK_CPU_RUN)):
    """Training options (the flags of ``spine-vision train classification``) and the quality floor of the check."""

    min_pfirrmann_kappa: float = 0.3


def heads_table(metrics: dict[str, float]) -> tuple[str, list[tuple[str, float, float]]]:
    """Per head or output: the compared metric, its majority baseline (markdown) and the rows."""
    rows = []
    for key in sorted(metrics):
        if key.endswith(f"/{COMPARED}") and "/baseline_" not in key and key.count("/") == 1:
            name = key.rsplit("/", 1)[0]
            baseline = metrics.get(f"{name}/baseline_{COMPARED}")
            if baseline is not None:
                rows.append((name, float(metrics[key]), float(baseline)))
    extra = {name: (metrics.get(f"{name}/accuracy"), metrics.get(f"{name}/macro_f1")) for name, _, _ in rows}
    table = markdown_table(
        ["head", COMPARED, "baseline", "accuracy", "macro_f1"],
        [[n, f"{v:.3f}", f"{b:.3f}", f"{extra[n][0]:.3f}" if extra[n][0] is not None else "",
          f"{extra[n][1]:.3f}" if extra[n][1] is not None else ""] for n, v, b in rows])
    return table, rows


def heads_below_baseline(metrics: dict[str, float], rows: list[tuple[str, float, float]]
                         ) -> tuple[list[str], list[str]]:
    """The heads not above their baseline, and those not judged: a head whose validation discs all share one
    class (``<head>/classes_present`` 1) cannot beat the baseline there, whatever the model.

    Example:
        >>> heads_below_baseline({"modic/classes_present": 3, "spondylolisthesis/classes_present": 1},
        ...                      [("modic", 0.3, 0.33), ("spondylolisthesis", 0.6, 1.0)])
        (['modic'], ['spondylolisthesis'])
    """
    one_class = [name for name, _, _ in rows if metrics.get(f"{name}/classes_present", 2.0) < 2]
    below = [name for name, value, baseline in rows if name not in one_class and not value > baseline]
    return below, one_class


@dg.asset(
    group_name="classification",
    deps=[ivd_crops],
    pool="gpu",
    kinds={"pytorch"},
    check_specs=[
        dg.AssetCheckSpec(BASELINE_CHECK, asset="classifier_model",
                          description=f"Every head's validation {COMPARED} is above its majority-class baseline "
                                      "(a head whose validation discs all share one class is named, not judged)."),
        dg.AssetCheckSpec(KAPPA_CHECK, asset="classifier_model",
                          description="Quadratic-weighted kappa of the Pfirrmann grade on the validation split is at "
                                      "least the run config's min_pfirrmann_kappa."),
    ],
)
def classifier_model(
    context: dg.AssetExecutionContext,
    config: ClassifierTrainingSettings,
    paths: DataRoot,
    torch_device: TorchDevice,
    tracking: ExperimentTracking,
) -> dg.MaterializeResult:
    """A multi-task classifier of the disc grades (Pfirrmann, Modic, herniation, bulging, endplates,
    spondylolisthesis, narrowing): weights/classification/<run_id>/ (best_model.pt, config.yaml, logs/)."""
    from spine_lib.training.trainers.classification import train_classification

    choice = torch_device.choice()
    context.log.info(f"training on {choice.device} ({choice.reason})")
    library_config = ClassificationConfig.for_layout(paths.layout, **library_overrides(
        config, device=choice.device, mixed_precision=choice.mixed_precision, use_wandb=tracking.enabled,
        wandb_mode=tracking.mode if tracking.enabled else "offline", wandb_project=tracking.project,
    ))
    result = train_classification(library_config, device_choice=choice)
    metrics = result.final_metrics
    table, rows = heads_table(metrics)
    kappa = float(metrics.get("pfirrmann/qwk", float("nan")))
    metadata: dict[str, dg.RawMetadataValue] = {
        "run_id": result.run_id, "device": choice.device, "best_epoch": result.best_epoch + 1,
        "epochs_run": result.epochs_run, "checkpoint_metric": library_config.checkpoint_metric,
        "train_seconds": round(result.seconds, 1), "validation_discs": int(metrics.get("count", 0)),
        "best_model": dg.MetadataValue.path(str(result.best_model_path)),
        "run_folder": dg.MetadataValue.path(str(result.output_path)),
        "heads_vs_baseline": dg.MetadataValue.md(table),
        "pfirrmann_qwk": round(kappa, 4) if kappa == kappa else -1.0,
        "mean_balanced_accuracy": round(float(metrics.get("mean_balanced_accuracy", 0.0)), 4),
    }
    for name, path in result.plots.items():
        metadata[f"plot_{name}"] = dg.MetadataValue.path(str(path))
    below, one_class = heads_below_baseline(metrics, rows)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(check_name=BASELINE_CHECK, passed=len(rows) > len(one_class) and not below,
                                metadata={"heads": len(rows), "not_above_baseline": ", ".join(below) or "none",
                                          "one_class_in_validation": ", ".join(one_class) or "none"}),
            dg.AssetCheckResult(check_name=KAPPA_CHECK, passed=kappa == kappa and kappa >= config.min_pfirrmann_kappa,
                                metadata={"pfirrmann_qwk": round(kappa, 4) if kappa == kappa else -1.0,
                                          "floor": config.min_pfirrmann_kappa}),
        ],
    )
