"""The localization_model asset materializes in-process after ivd_coords_dataset and checks its PCK floor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from spine_assets.defs.ivd_coords import ivd_coords_dataset
from spine_assets.defs.localization import PCK_CHECK, localization_model
from spine_assets.defs.resources import DataRoot, ExperimentTracking, TorchDevice


def test_localization_model_materializes_after_the_dataset(synthetic_root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    resources = {
        "paths": DataRoot(root=str(synthetic_root), weights=str(weights)),
        "torch_device": TorchDevice(device="cpu"),
        "tracking": ExperimentTracking(mode="offline"),
    }
    run_config = dg.RunConfig(ops={"localization_model": {"config": {
        "image_size": [64, 64], "num_epochs": 2, "batch_size": 16, "run_id": "asset-run",
        "visualize_predictions": False, "min_val_pck_05": 1.01,  # a floor no model reaches: the check must fail
    }}})
    result = dg.materialize([ivd_coords_dataset, localization_model], resources=resources, run_config=run_config,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
    assert result.success
    meta = result.asset_materializations_for_node("localization_model")[0].metadata
    run = weights / "localization/asset-run"
    assert meta["run_id"].value == "asset-run"
    assert meta["best_model"].value == str(run / "best_model.pt") and (run / "best_model.pt").is_file()
    assert meta["device"].value == "cpu"
    pck, error_px = float(meta["pck@0.05"].value), float(meta["mean_error_px"].value)  # type: ignore[arg-type]
    assert 0.0 <= pck <= 1.0 and error_px > 0
    assert meta["epochs_run"].value == 2
    assert Path(meta["plot_training_curves"].value).is_file()  # type: ignore[arg-type]
    assert "| epoch | train_loss | val_loss |" in meta["history"].value  # type: ignore[operator]
    assert list(run.glob("wandb/offline-run-*")), "wandb offline run missing"

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {PCK_CHECK}
    assert checks[PCK_CHECK].passed is False
    assert checks[PCK_CHECK].metadata["pck@0.05"].value == round(pck, 4)
    assert checks[PCK_CHECK].metadata["floor"].value == 1.01
