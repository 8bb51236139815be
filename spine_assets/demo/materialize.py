"""Materialize every asset of the code location into the instance at ``DAGSTER_HOME``.

Run by ``spine-vision demo`` in a child process; usable on its own:
``DAGSTER_HOME=$PWD/.dagster python -m spine_assets.demo.materialize``. Report files become dynamic partitions (as the
sensor would add them), each new one is read in its own run, then everything else is materialized. Models are
trained with short CPU settings (``DEMO_RUN_CONFIG``), and only when their training dataset's data version
differs from the one their last materialization was trained on; the assets that use a model (the IVD crops)
come last. Prints a JSON line per asset step as it starts and ends (``spine_assets.demo.progress``), then one
JSON line with what it did.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from spine_assets.definitions import defs
from spine_assets.defs.phenikaa import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    REPORTS_PARTITION,
    RUN_SIZE,
    contiguous_runs,
)
from spine_assets.defs.resources import data_root_from_env
from spine_assets.demo.progress import RunProgress
from spine_assets.report_partitions import add_report_partitions

GPU_POOL = "gpu"
GPU_POOL_LIMIT = 1
#: model asset -> the dataset asset it is trained on
MODELS = {"nnunet_model": "spider_nnunet_dataset", "localization_model": "ivd_coords_dataset",
          "classifier_model": "ivd_crops"}
#: The graph in the order the demo runs it after the reports: every data asset, then in turn models (trained only
#: when their dataset changed) and the assets that use a model (every time; they are incremental themselves).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("models", ("nnunet_model", "localization_model")),
    ("data", ("ivd_crops",)),
    ("models", ("classifier_model",)),
)
AFTER_MODELS = tuple(key for kind, keys in STAGES if kind == "data" for key in keys)
DATA_VERSION_TAG = "dagster/data_version"
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/"
#: quick CPU settings: SPIDER's structures (vertebra, canal, disc) with nnU-Net's short trainer in 2D on a
#: narrow network, and a small ConvNeXt localizer; each training also stops at a time limit (its schedule fitted
#: to the epochs that fit), so that the demo takes minutes on a slow machine too
DEMO_TRAINING_MINUTES = {"nnunet_model": 1.5, "localization_model": 1.75, "classifier_model": 0.75}
DEMO_RUN_CONFIG: dict[str, dict[str, object]] = {
    "spider_nnunet_dataset": {"workers": 1, "schema_name": "spider_groups"},
    "nnunet_model": {
        "configuration": "2d", "fold": "0", "trainer": "nnUNetTrainerShort", "epochs": 10,
        "iterations_per_epoch": 15, "val_iterations_per_epoch": 2, "max_features": 16, "batch_size": 4,
        "preprocess_workers": 1, "augmentation_workers": 0, "verify_dataset_integrity": False,
        "validation_mirroring": False, "previews": 1, "min_validation_dice": 0.3,
        "max_train_minutes": DEMO_TRAINING_MINUTES["nnunet_model"],
    },
    "localization_model": {"num_epochs": 40, "image_size": [160, 160], "batch_size": 8,
                           "max_train_minutes": DEMO_TRAINING_MINUTES["localization_model"]},
    "classifier_model": {"num_epochs": 12, "output_size": [96, 96], "batch_size": 16, "backbone": "resnet18",
                         "min_pfirrmann_kappa": 0.2, "max_train_minutes": DEMO_TRAINING_MINUTES["classifier_model"]},
}
#: ``--quick``: what changes in ``DEMO_RUN_CONFIG`` to train each model for a moment only (a smoke test of the
#: whole graph, as CI wants one; the models' quality checks are then expected to fail)
QUICK_OVERRIDES: dict[str, dict[str, object]] = {
    "nnunet_model": {"epochs": 1, "iterations_per_epoch": 2, "val_iterations_per_epoch": 1, "max_features": 8},
    "localization_model": {"num_epochs": 2, "image_size": [64, 64]},
    "classifier_model": {"num_epochs": 1, "output_size": [64, 64]},
}
QUICK_FLAG = "--quick"
#: run tag of the demo's model runs: ``quick`` or ``full`` (a full demo retrains a model trained by a quick one)
TRAINING_TAG = "spine_vision/demo_training"


def run_config_for(keys: set[str], *, quick: bool = False) -> dict[str, object]:
    """The demo's run config restricted to the assets of one run (Dagster rejects config for absent ops);
    ``quick``: with :data:`QUICK_OVERRIDES`."""
    return {"ops": {key: {"config": {**config, **(QUICK_OVERRIDES.get(key, {}) if quick else {})}}
                    for key, config in DEMO_RUN_CONFIG.items() if key in keys}}


def latest_tags(instance: dg.DagsterInstance, key: str) -> dict[str, str] | None:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
    event = records[0].asset_materialization if records else None
    return dict(event.tags or {}) if event is not None else None


def training_mode(quick: bool) -> str:
    return "quick" if quick else "full"


def needs_training(instance: dg.DagsterInstance, model: str, dataset: str, *, quick: bool = False) -> bool:
    """Whether ``model`` was never materialized, was trained on another version of ``dataset``, or by a demo run
    of the other training mode (``quick`` or full; a run without the tag counts as full)."""
    model_tags, dataset_tags = latest_tags(instance, model), latest_tags(instance, dataset)
    if model_tags is None or dataset_tags is None:
        return True
    records = instance.fetch_materializations(dg.AssetKey(model), limit=1).records
    run = instance.get_run_by_id(records[0].run_id) if records else None
    if run is not None and run.tags.get(TRAINING_TAG, "full") != training_mode(quick):
        return True
    return model_tags.get(INPUT_DATA_VERSION_TAG + dataset) != dataset_tags.get(DATA_VERSION_TAG)


def materialize_all(instance: dg.DagsterInstance, *, quick: bool = False) -> dict[str, object]:
    """Read every not-yet-read report (one run per range of their partitions), then run every other asset and
    check (``quick``: the models trained for a moment only)."""
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, GPU_POOL_LIMIT)
    definitions = defs()
    reports = data_root_from_env().layout.phenikaa_reports
    keys = add_report_partitions(instance, reports)
    report_job = definitions.resolve_job_def("phenikaa_report_job")
    materialized: set[str] = set()
    checks: dict[str, bool] = {}
    success = True
    done = instance.get_materialized_partitions(dg.AssetKey("phenikaa_report"))
    todo = [key for key in keys if key not in done]
    report_runs = contiguous_runs(list(instance.get_dynamic_partitions(REPORTS_PARTITION)), todo, RUN_SIZE)
    rest = definitions.resolve_job_def("everything_but_reports")
    data_keys = {k.to_user_string() for k in rest.asset_layer.executable_asset_keys} - set(MODELS) - set(AFTER_MODELS)
    progress = RunProgress(total=len(report_runs) + len(data_keys) + sum(len(stage) for _, stage in STAGES))
    for run in report_runs:
        tags = {ASSET_PARTITION_RANGE_START_TAG: run[0], ASSET_PARTITION_RANGE_END_TAG: run[-1]}
        result = progress.execute(report_job, instance, detail=f"{len(run)} report{'s' * (len(run) > 1)}", tags=tags,
                                  raise_on_error=False)
        success &= result.success
        materialized.add("phenikaa_report")
    result = progress.execute(rest, instance, raise_on_error=False, run_config=run_config_for(data_keys, quick=quick),
                              asset_selection=[dg.AssetKey(k) for k in sorted(data_keys)])
    success &= result.success
    run_ids = [result.run_id]
    results = [result]
    stale: set[str] = set()
    for kind, stage in STAGES:
        if not success:
            break
        selected = {k for k in stage
                    if not (kind == "models" and not needs_training(instance, k, MODELS[k], quick=quick))}
        stale |= selected if kind == "models" else set()
        for key in sorted(set(stage) - selected):
            progress.skip(key, f"up to date: trained on this version of {MODELS[key]}")
        if not selected:
            continue
        run = progress.execute(rest, instance, raise_on_error=False, run_config=run_config_for(selected, quick=quick),
                               asset_selection=[dg.AssetKey(k) for k in sorted(selected)],
                               tags={TRAINING_TAG: training_mode(quick)})
        success &= run.success
        run_ids.append(run.run_id)
        results.append(run)
    for run in results:
        materialized |= {e.asset_key.to_user_string() for e in run.get_asset_materialization_events() if e.asset_key}
        checks.update({f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
                       for e in run.get_asset_check_evaluations()})
    return {"run_id": run_ids[-1], "run_ids": run_ids, "success": success, "materialized": sorted(materialized),
            "checks": checks, "up_to_date": sorted(set(MODELS) - stale),
            "reports_read": len(todo)}


def main() -> int:
    with dg.DagsterInstance.get() as instance:
        summary = materialize_all(instance, quick=QUICK_FLAG in sys.argv[1:])
    print(json.dumps(summary))
    return 0 if summary["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
