"""Localization training end to end on synthetic RSNA data: learning, resume, outputs, CLI, Dagster asset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spine_lib.training.checkpoints import CheckpointError, read_checkpoint
from spine_lib.training.config import LocalizationConfig, ModelTestConfig
from spine_lib.training.metrics import LocalizationMetrics
from spine_lib.training.runs import BEST_MODEL, LAST_CHECKPOINT, latest_run
from spine_lib.training.trainers.localization import LocalizationTrainer

SIZE = 64


@pytest.fixture(scope="module")
def ivd_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IVD coordinates dataset built from 10 synthetic RSNA studies (96x96 series)."""
    from spine_lib.datasets.ivd_coords import IVDDatasetConfig, build_ivd_coords
    from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root

    root = tmp_path_factory.mktemp("ivd") / "data"
    make_synthetic_root(SynthConfig(out=root, spider_patients=1, rsna_studies=10, phenikaa_patients=1, size=96,
                                    slices=12, seed=13))
    report = build_ivd_coords(IVDDatasetConfig(base_path=root, workers=1))
    assert report.annotations == 200  # 15 points per study, and the 5 canal points placed on T1
    return root / "processed/ivd_coords"


def quick_config(data: Path, weights: Path, **overrides: object) -> LocalizationConfig:
    values: dict[str, object] = {
        "data_path": data, "weights_path": weights, "model_variant": "atto", "image_size": (SIZE, SIZE),
        "batch_size": 16, "num_epochs": 8, "learning_rate": 2e-3, "device": "cpu", "visualize_predictions": False,
        "val_fraction": 0.2, "seed": 3,
    }
    return LocalizationConfig.model_validate({**values, **overrides})


def test_short_training_learns_and_beats_the_mean_position(ivd_dataset: Path, tmp_path: Path) -> None:
    trainer = LocalizationTrainer(quick_config(ivd_dataset, tmp_path / "weights", visualize_predictions=True,
                                               visualize_every=4, augment=False, num_epochs=20,
                                               image_size=(96, 96), batch_size=4))
    result = trainer.train()
    history = result.history
    assert len(history["train_loss"]) == 20
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]

    assert len(trainer.train_dataset) * 5 == len(trainer.make_dataset("train"))  # type: ignore[arg-type]  # grouped
    assert len(trainer.val_dataset) * 5 == len(trainer.make_dataset("val"))  # type: ignore[arg-type]
    train_ds, val_ds = trainer.make_dataset("train"), trainer.make_dataset("val")
    train_coords = np.stack([train_ds[i]["coords"].numpy() for i in range(len(train_ds))])  # type: ignore[arg-type]
    val_coords = np.stack([val_ds[i]["coords"].numpy() for i in range(len(val_ds))])  # type: ignore[arg-type]
    train_levels = [int(train_ds[i]["level_idx"]) for i in range(len(train_ds))]  # type: ignore[arg-type]
    val_levels = [int(val_ds[i]["level_idx"]) for i in range(len(val_ds))]  # type: ignore[arg-type]
    metrics = LocalizationMetrics(image_size=(96, 96))
    baseline = metrics.compute(
        LocalizationMetrics.mean_position_baseline(train_coords, val_coords, train_levels, val_levels), val_coords
    ).metrics
    learned = result.final_metrics
    assert learned["count"] == len(val_ds) > 0  # type: ignore[arg-type]
    assert learned["pck@0.05"] > baseline["pck@0.05"]
    assert learned["mean_error_px"] < baseline["mean_error_px"]

    # what a run leaves behind
    run = tmp_path / "weights/localization" / result.run_id
    assert result.output_path == run and result.best_model_path == run / BEST_MODEL
    assert {p.name for p in run.iterdir()} >= {BEST_MODEL, LAST_CHECKPOINT, "config.yaml", "logs"}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["run_id"] == result.run_id and saved["model_variant"] == "atto"
    assert saved["device_choice"] == {"device": "cpu", "mixed_precision": False}
    logs = {p.name for p in (run / "logs").iterdir()}
    assert {"training_curves.html", "error_distribution.html", "predictions_epoch_4.html",
            "predictions_best.html"} <= logs
    assert latest_run(tmp_path / "weights", "localization") == run / BEST_MODEL
    best = read_checkpoint(run / BEST_MODEL)
    assert best["epoch"] == result.best_epoch and best["run_id"] == result.run_id

    # evaluate() reloads the best checkpoint and reproduces its validation metrics
    again = trainer.evaluate("val")
    assert again["mean_error_px"] == pytest.approx(learned["mean_error_px"], rel=1e-5)



def test_the_level_free_detector_trains_and_beats_the_mean_position(ivd_dataset: Path, tmp_path: Path) -> None:
    """The disc detector through the same trainer: it learns, beats the mean position of each level, and its best
    checkpoint rebuilds the same model for ``evaluate`` and inference."""
    from spine_lib.training.models.disc_detector import ConvNextDiscDetector

    trainer = LocalizationTrainer(quick_config(ivd_dataset, tmp_path / "weights", model_name="convnext_disc_detector",
                                               augment=False, num_epochs=12, image_size=(96, 96), batch_size=4))
    result = trainer.train()
    assert isinstance(trainer.unwrapped_model, ConvNextDiscDetector)
    assert result.history["train_loss"][-1] < 0.5 * result.history["train_loss"][0]
    train_ds, val_ds = trainer.make_dataset("train"), trainer.make_dataset("val")
    train_coords = np.stack([train_ds[i]["coords"].numpy() for i in range(len(train_ds))])  # type: ignore[arg-type]
    val_coords = np.stack([val_ds[i]["coords"].numpy() for i in range(len(val_ds))])  # type: ignore[arg-type]
    train_levels = [int(train_ds[i]["level_idx"]) for i in range(len(train_ds))]  # type: ignore[arg-type]
    val_levels = [int(val_ds[i]["level_idx"]) for i in range(len(val_ds))]  # type: ignore[arg-type]
    baseline = LocalizationMetrics(image_size=(96, 96)).compute(
        LocalizationMetrics.mean_position_baseline(train_coords, val_coords, train_levels, val_levels), val_coords
    ).metrics
    learned = result.final_metrics
    assert learned["count"] == len(val_ds)  # type: ignore[arg-type]
    assert learned["within_5px"] > baseline["within_5px"]
    assert learned["median_error_px"] < baseline["median_error_px"]
    payload = read_checkpoint(result.best_model_path)
    assert payload["model_name"] == "convnext_disc_detector"
    again = trainer.evaluate("val")
    assert again["median_error_px"] == pytest.approx(learned["median_error_px"], rel=1e-5)

def test_resume_reproduces_the_next_epoch_exactly(ivd_dataset: Path, tmp_path: Path) -> None:
    # augmentation on and dropout in the head: the RNG states must be restored too
    common = {"num_epochs": 2, "augment": True, "head_type": "mlp", "head_dropout": 0.3, "scheduler_type": "cosine",
              "levels": ["L4/L5", "L5/S1"]}
    straight = LocalizationTrainer(quick_config(ivd_dataset, tmp_path / "a", save_every=1, run_id="straight",
                                                **common)).train()
    first_epoch = straight.output_path / "checkpoint_epoch_1.pt"
    assert first_epoch.is_file()

    resumed_trainer = LocalizationTrainer(quick_config(ivd_dataset, tmp_path / "b", run_id="resumed",
                                                       resume_from=first_epoch, **common))
    assert resumed_trainer.global_step == read_checkpoint(first_epoch)["global_step"] > 0
    resumed = resumed_trainer.train()
    assert resumed.history["train_loss"] == straight.history["train_loss"]  # epoch 1 restored, epoch 2 equal
    a = read_checkpoint(straight.output_path / LAST_CHECKPOINT)
    b = read_checkpoint(resumed.output_path / LAST_CHECKPOINT)
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"]
    for key, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][key]), key
    assert a["optimizer_state_dict"]["param_groups"][0]["lr"] == b["optimizer_state_dict"]["param_groups"][0]["lr"]


def test_freeze_backbone_epochs_keep_the_backbone_fixed(ivd_dataset: Path, tmp_path: Path) -> None:
    config = quick_config(ivd_dataset, tmp_path / "w", num_epochs=1, freeze_backbone_epochs=1, scheduler_type="none",
                          levels=["L1/L2"], model_name="convnext_localization")  # a model with a `head`
    trainer = LocalizationTrainer(config)
    before = {k: v.clone() for k, v in trainer.unwrapped_model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in trainer.unwrapped_model.head.state_dict().items()}
    trainer.train()
    after_backbone = trainer.unwrapped_model.backbone.state_dict()
    assert all(torch.equal(before[k], after_backbone[k]) for k in before if "running" not in k)
    assert any(not torch.equal(head_before[k], v) for k, v in trainer.unwrapped_model.head.state_dict().items())


def test_resume_refuses_a_checkpoint_of_another_architecture(ivd_dataset: Path, tmp_path: Path) -> None:
    run = LocalizationTrainer(quick_config(ivd_dataset, tmp_path / "w", num_epochs=1, levels=["L1/L2"])).train()
    with pytest.raises(CheckpointError, match=r"last\.pt: checkpoint of model variant atto, expected femto$"):
        LocalizationTrainer(quick_config(ivd_dataset, tmp_path / "w2", model_variant="femto",
                                         resume_from=run.output_path / LAST_CHECKPOINT))


def test_cli_trains_and_tests_a_model(ivd_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spine_lib.cli import main

    main(["train", "localization", "--data-path", str(ivd_dataset), "--weights-path", str(tmp_path / "w"),
          "--model-variant", "atto", "--image-size", str(SIZE), str(SIZE), "--num-epochs", "1", "--batch-size", "16",
          "--device", "cpu", "--run-id", "cli-run", "--levels", "L3/L4", "--no-visualize-predictions"])
    out = capsys.readouterr().out
    best = tmp_path / "w/localization/cli-run" / BEST_MODEL
    assert f"Best model:  {best}" in out and best.is_file()

    images = sorted((ivd_dataset / "images").glob("*.png"))[:2]
    main(["test", "--model-path", str(best), "--inputs", *map(str, images), "--device", "cpu",
          "--output-path", str(tmp_path / "out.json"), "--visualize"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["image_size"] == [SIZE, SIZE]  # the training size, read from the checkpoint
    assert printed == {**json.loads((tmp_path / "out.json").read_text()), "visualizations": printed["visualizations"]}
    rows = printed["predictions"]
    assert len(rows) == 2 * 5 and {r["level"] for r in rows} == {"L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"}
    from PIL import Image

    for row in rows:
        width, height = Image.open(row["input"]).size
        assert (row["width"], row["height"]) == (width, height)
        assert row["x"] == pytest.approx(row["relative_x"] * width, abs=0.01)
        assert row["y"] == pytest.approx(row["relative_y"] * height, abs=0.01)
    assert all(Path(p).is_file() for p in printed["visualizations"])

    with pytest.raises(SystemExit) as exit_info:  # variant disagreeing with the checkpoint: exit 2, clear error
        main(["test", "--model-path", str(best), "--inputs", str(images[0]), "--model-variant", "base",
              "--device", "cpu"])
    assert exit_info.value.code == 2


def test_test_inference_pairs_levels_with_images(ivd_dataset: Path, tmp_path: Path) -> None:
    from spine_lib.training.inference import run_model_test
    from spine_lib.training.models import ConvNextLocalization

    model = ConvNextLocalization("atto")
    images = sorted((ivd_dataset / "images").glob("*.png"))[:3]
    paired = model.test_inference([str(p) for p in images], (SIZE, SIZE), "cpu", level_indices=[0, 2, 4])
    assert paired["level_indices"] == [0, 2, 4] and paired["image_index"] == [0, 1, 2]
    assert paired["predictions"].shape == (3, 2) and paired["inference_time_ms"] > 0
    crossed = model.test_inference([str(p) for p in images], (SIZE, SIZE), "cpu", level_indices=[1, 3])
    assert crossed["image_index"] == [0, 0, 1, 1, 2, 2] and crossed["level_indices"] == [1, 3] * 3
    torch.save({"model_name": "convnext_localization", "model_kwargs": model.architecture_kwargs(),
                "model_state_dict": model.state_dict()}, tmp_path / "m.pt")
    result = run_model_test(ModelTestConfig(model_path=tmp_path / "m.pt", inputs=images[:1], level_indices=[2],
                                            image_size=(SIZE, SIZE), device="cpu"))
    assert [r["level"] for r in result["predictions"]] == ["L3/L4"]
