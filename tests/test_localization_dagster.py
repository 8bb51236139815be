"""The localization_model asset materializes in-process after ivd_coords_dataset; its metadata agree with an
independent evaluation of the saved best checkpoint, and its check follows the PCK floor of the run config."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, cast

import dagster as dg
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from spine_assets.defs.ivd_coords import ivd_coords_dataset
from spine_assets.defs.localization import PCK_CHECK, localization_model
from spine_assets.defs.resources import DataRoot, ExperimentTracking, TorchDevice
from spine_lib.levels import IDX_TO_LEVEL, LEVELS
from spine_lib.training.checkpoints import model_from_checkpoint
from spine_lib.training.datasets.ivd_coords import IVDCoordsDataset, split_studies

IMAGE_SIZE = (64, 64)  # (height, width) of the run config below
RUN = "asset-run"


def materialize(root: Path, weights: Path, **config: Any) -> dg.ExecuteInProcessResult:
    """``localization_model`` (after the dataset) with a quick run config plus ``config``."""
    resources = {
        "paths": DataRoot(root=str(root), weights=str(weights)),
        "torch_device": TorchDevice(device="cpu"),
        "tracking": ExperimentTracking(mode="offline"),
    }
    run_config = dg.RunConfig(ops={
        # the dataset of RSNA's rows as they are (no canal points placed on T1): the PCK of two epochs below
        "ivd_coords_dataset": {"config": {"canal_points_on_t1": False}},
        "localization_model": {"config": {
        "image_size": list(IMAGE_SIZE), "num_epochs": 2, "batch_size": 16, "run_id": RUN,
        # the level-conditioned model: two epochs give it a PCK below 1, which the check's floors below need
        # (the default detector is run through the asset by the demo's test)
        "model_name": "convnext_localization", "visualize_predictions": False, **config,
    }}})
    return dg.materialize([ivd_coords_dataset, localization_model], resources=resources, run_config=run_config,
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)


def validation_rows(dataset: Path, config: dict[str, Any]) -> list[dict[str, str]]:
    """The rows of annotations.csv whose study the split rule (by study, seeded) sends to validation."""
    with (dataset / "annotations.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assignment = split_studies([r["study_id"] for r in rows], config["val_fraction"], config["test_fraction"],
                               config["seed"])
    return [r for r in rows if assignment[r["study_id"]] == "val"]


def evaluate_checkpoint(checkpoint: Path, dataset: Path, config: dict[str, Any]) -> dict[str, Any]:
    """PCK@0.05 (error below 5 % of the image, in relative units) and mean pixel error of the checkpoint on the
    validation points, one item per point, overall and per level."""
    model, _ = model_from_checkpoint(checkpoint)
    model.eval()
    items = IVDCoordsDataset(dataset, split="val", image_size=IMAGE_SIZE, val_fraction=config["val_fraction"],
                             test_fraction=config["test_fraction"], seed=config["seed"])
    predictions, targets, levels = [], [], []
    with torch.no_grad():
        for batch in DataLoader(items, batch_size=32, shuffle=False):
            predictions.append(model(batch["image"], batch["level_idx"]).float())
            targets.append(batch["coords"])
            levels += [IDX_TO_LEVEL[int(i)] for i in batch["level_idx"]]
    diff = (torch.cat(predictions) - torch.cat(targets)).numpy().astype(np.float64)
    height, width = IMAGE_SIZE
    relative = np.hypot(diff[:, 0], diff[:, 1])
    pixels = np.hypot(diff[:, 0] * width, diff[:, 1] * height)
    names = np.array(levels)
    return {
        "count": len(items), "pck": float(np.mean(relative < 0.05)), "error_px": float(pixels.mean()),
        "per_level": {level: float(np.mean(relative[names == level] < 0.05)) for level in sorted(set(levels))},
    }


def test_localization_model_materializes_after_the_dataset(synthetic_root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    result = materialize(synthetic_root, weights, min_val_pck_05=1.01)  # a floor no model reaches
    assert result.success
    meta = result.asset_materializations_for_node("localization_model")[0].metadata
    run = weights / "localization" / RUN
    assert meta["run_id"].value == RUN
    assert meta["best_model"].value == str(run / "best_model.pt") and (run / "best_model.pt").is_file()
    assert meta["device"].value == "cpu"
    assert meta["epochs_run"].value == 2
    assert Path(meta["plot_training_curves"].value).is_file()  # type: ignore[arg-type]
    assert "| epoch | train_loss | val_loss |" in meta["history"].value  # type: ignore[operator]
    assert list(run.glob("wandb/offline-run-*")), "wandb offline run missing"

    # the metadata score the saved best checkpoint on the validation split, as an evaluation of our own finds
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    dataset = Path(config["data_path"])
    assert dataset == synthetic_root / "processed" / "ivd_coords"
    truth = evaluate_checkpoint(run / "best_model.pt", dataset, config)
    rows = validation_rows(dataset, config)
    assert truth["count"] == len(rows) > 0
    pck, error_px = float(meta["pck@0.05"].value), float(meta["mean_error_px"].value)  # type: ignore[arg-type]
    assert abs(pck - truth["pck"]) < 1e-4, (pck, truth)
    assert abs(error_px - truth["error_px"]) < 1e-3 * max(1.0, truth["error_px"]), (error_px, truth)
    # per level: keyed by the level names as spelt in LEVELS (L4/L5, not L4), each the PCK of that level's points
    assert isinstance(meta["per_level_pck@0.05"].value, dict)
    per_level = cast(dict[str, float], meta["per_level_pck@0.05"].value)
    assert set(per_level) == {r["level"] for r in rows} == set(LEVELS)
    for level, value in per_level.items():
        assert abs(value - truth["per_level"][level]) < 1e-4, (level, value, truth["per_level"])

    check = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(check) == {PCK_CHECK}
    assert check[PCK_CHECK].passed is False
    assert check[PCK_CHECK].metadata["pck@0.05"].value == round(pck, 4)
    assert check[PCK_CHECK].metadata["floor"].value == 1.01
    assert check[PCK_CHECK].metadata["validation_items"].value == len(rows)

    # the same finished run again (resumed: no epoch left, the best checkpoint is scored again), at floors half
    # a validation point below (or 0) and above its PCK: the check passes below and fails above
    assert 0.0 <= pck < 1.0  # a floor above it is a real one
    step = 1.0 / len(rows)
    for floor, passed in ((max(0.0, pck - step / 2), True), (pck + step / 2, False)):
        again = materialize(synthetic_root, weights, min_val_pck_05=floor, resume_from=str(run / "last.pt"))
        [evaluation] = again.get_asset_check_evaluations()
        assert evaluation.metadata["pck@0.05"].value == round(pck, 4)
        assert evaluation.passed is passed, (floor, pck)
