"""The grading classifier trained on synthetic crops: it beats the majority baseline, picks its best epoch by a
declared metric, and serves from the CLI (crops and series) and from Dagster."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.classification import ClassificationDatasetConfig, build_classification_dataset
from spine_lib.errors import ConfigError
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root
from spine_lib.training.config import ClassificationConfig
from spine_lib.training.metrics import macro_f1
from spine_lib.training.models.grading import ResNet50MTL
from spine_lib.training.trainers.classification import (
    ClassificationTrainer,
    inverse_frequency,
    macro_f1_threshold,
    train_classification,
)

pytestmark = pytest.mark.slow
QUICK = {"backbone": "resnet18", "output_size": (64, 64), "batch_size": 16, "learning_rate": 2e-3,
         "device": "cpu", "visualize_predictions": False, "early_stopping": False, "augment": False}


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> DataLayout:
    """Crops of 18 synthetic SPIDER patients (mask points): 90 discs on T1 and T2."""
    base = tmp_path_factory.mktemp("grading")
    layout = DataLayout(root=base / "data", weights=base / "weights")
    make_synthetic_root(SynthConfig(out=layout.root, spider_patients=18, rsna_studies=1, phenikaa_patients=1,
                                    size=128, slices=12, seed=21))
    build_classification_dataset(ClassificationDatasetConfig.for_layout(layout, include_phenikaa=False,
                                                                        crop_size=(64, 64)))
    return layout


@pytest.fixture(scope="module")
def trained(crops: DataLayout) -> Any:
    config = ClassificationConfig.for_layout(crops, run_id="grading", num_epochs=14, val_fraction=0.3, seed=3,
                                             **QUICK)
    return train_classification(config)


def test_short_training_beats_the_majority_baseline(trained: Any, crops: DataLayout) -> None:
    from spine_lib.training.datasets.classification import ClassificationDataset

    m = trained.final_metrics
    # Pfirrmann is drawn into the T2 nucleus: a model that reads it beats always answering the commonest grade
    assert m["pfirrmann/balanced_accuracy"] > m["pfirrmann/baseline_balanced_accuracy"] + 0.15, m
    assert m["pfirrmann/qwk"] > 0.3 and m["pfirrmann/baseline_qwk"] == pytest.approx(0.0)
    assert m["mean_balanced_accuracy"] > m["baseline_mean_balanced_accuracy"]
    validation = ClassificationDataset(crops.classification, split="val", output_size=(64, 64), val_fraction=0.3,
                                       seed=3)
    assert m["count"] == len(validation) > 0  # every validation disc scored once


def test_best_epoch_maximizes_the_declared_metric(trained: Any) -> None:
    history = trained.history["mean_balanced_accuracy"]
    assert trained.best_epoch == int(np.argmax(history))  # the first of the best (later ties do not replace it)
    assert trained.best_score == pytest.approx(-max(history))
    assert (trained.output_path / "best_model.pt").is_file()
    assert {"training_curves", "head_curves", "confusion_pfirrmann", "confusion_disc_herniation"} <= set(trained.plots)


def test_binary_thresholds_are_tuned_on_validation_and_kept_in_the_checkpoint(trained: Any) -> None:
    from spine_lib.training.checkpoints import model_from_checkpoint
    from spine_lib.training.models.grading import BINARY_OUTPUTS

    model, _ = model_from_checkpoint(trained.best_model_path)
    thresholds = model.decision_thresholds()  # type: ignore[attr-defined]
    assert set(thresholds) == set(BINARY_OUTPUTS) and all(abs(t) <= 4.0 for t in thresholds.values())
    for column in BINARY_OUTPUTS:  # the tuned threshold is the best on validation, 0 (probability 0.5) included
        at_half = trained.history[f"{column}/macro_f1"][trained.best_epoch]
        assert trained.final_metrics[f"{column}/macro_f1"] >= at_half - 1e-9, column


def test_threshold_of_highest_macro_f1() -> None:
    truth = np.array([0, 0, 0, 1, 1])
    # positives ranked above negatives but all below logit 0: the threshold falls between them
    assert macro_f1_threshold(np.array([-4.0, -3.0, -2.5, -1.0, -0.2]), truth, min_cases=2) == pytest.approx(-1.75)
    assert macro_f1(truth, (np.array([-4.0, -3.0, -2.5, -1.0, -0.2]) >= -1.75).astype(int)) == 1.0
    # already right at 0: stays at 0 (of the equally good thresholds, the one nearest 0)
    assert macro_f1_threshold(np.array([-2.0, -1.0, -0.5, 0.5, 3.0]), truth, min_cases=2) == 0.0
    assert macro_f1_threshold(np.array([-1.0, 2.0]), np.array([1, 1]), min_cases=1) == 0.0  # one class
    # never beyond the limit, even when the only separating threshold is
    assert macro_f1_threshold(np.array([-9.0, -8.0, -7.0, -6.0, -5.5]), truth, limit=4.0, min_cases=2) == 0.0
    # too few positives to fit a threshold to (the default asks for 5 of each class): left at 0
    rare = np.array([0] * 20 + [1] * 2)
    assert macro_f1_threshold(np.linspace(-5, -1, 22), rare) == 0.0
    assert macro_f1_threshold(np.linspace(-5, -1, 22), rare, min_cases=2) < 0.0


def test_an_unknown_checkpoint_metric_fails_before_training(crops: DataLayout) -> None:
    config = ClassificationConfig.for_layout(crops, run_id="bad", num_epochs=1, checkpoint_metric="count", **QUICK)
    with pytest.raises(ConfigError, match="count"):
        train_classification(config)
    assert not (crops.weights / "classification/bad/best_model.pt").exists()


def test_class_weights_follow_the_training_split(crops: DataLayout) -> None:
    config = ClassificationConfig.for_layout(crops, run_id="weights", num_epochs=1, **QUICK)
    trainer = ClassificationTrainer(config)
    counts = trainer.train_dataset.class_counts()  # type: ignore[attr-defined]
    weights = trainer._class_weights["pfirrmann"].tolist()  # type: ignore[index]
    assert weights == pytest.approx(inverse_frequency(list(counts["pfirrmann_grade"])))
    negatives, positives = counts["disc_herniation"]
    assert trainer._pos_weights["herniation"][0].item() == pytest.approx(min(10.0, negatives / positives))  # type: ignore[index]
    seen = [c for c in counts["pfirrmann_grade"] if c]
    assert np.mean([w for w, c in zip(weights, counts["pfirrmann_grade"], strict=True) if c]) == pytest.approx(1.0)
    assert len(seen) >= 3


def test_the_sampler_draws_rare_positives_more_often_and_leaves_the_loss_unweighted(crops: DataLayout) -> None:
    config = ClassificationConfig.for_layout(crops, run_id="sampler", num_epochs=1, class_balance="sampler",
                                             **QUICK)
    trainer = ClassificationTrainer(config)
    assert trainer._class_weights is None and trainer._pos_weights is None  # type: ignore[attr-defined]
    dataset: Any = trainer.train_dataset
    positive = [bool(d.targets["spondylolisthesis"][0]) for d in dataset.discs]
    weights = np.array(dataset.sample_weights(10.0))
    expected = weights[positive].sum() / weights.sum()
    assert sum(positive) > 0 and expected > 2 * np.mean(positive)  # the draw favours the rare slips
    drawn = []
    for epoch in range(8):  # the loader the training epochs use, reseeded per epoch as in training
        trainer._shuffle.manual_seed(config.seed * 100_003 + epoch)
        drawn += [bool(t[0]) for batch in trainer.train_loader for t in batch["targets"].spondylolisthesis.tolist()]
    assert len(drawn) == 8 * (len(dataset) - (len(dataset) % config.batch_size == 1))
    assert np.mean(drawn) == pytest.approx(expected, abs=0.06)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spine_lib.cli", *args], capture_output=True, text=True,
                          check=False)


def test_cli_grades_crops_as_json_and_csv(trained: Any, crops: DataLayout, tmp_path: Path) -> None:
    images = crops.classification / "images"
    t2, t1 = images / "spider_3_sag_t2_L4.png", images / "spider_3_sag_t1_L4.png"
    out = tmp_path / "grades.csv"
    result = run_cli("test", "--task", "mtl_classification", "--model-path", str(trained.best_model_path),
                     "--inputs", str(t2), str(t1), str(images / "spider_3_sag_t2_L5.png"), "--device", "cpu",
                     "--output-path", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [*ResNet50MTL.get_csv_header(), "error"]  # empty for graded discs
    assert [r[:2] for r in rows[1:]] == [["3", "4"], ["3", "5"]]  # the L4 pair is one disc, L5 another
    header = rows[0]
    for row in rows[1:]:
        grade = int(row[header.index("pfirrmann_grade")])
        probabilities = [float(row[header.index(f"pfirrmann_p{g}")]) for g in range(1, 6)]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5) and grade == 1 + int(np.argmax(probabilities))
    printed = run_cli("test", "--task", "mtl_classification", "--model-path", str(trained.best_model_path),
                      "--inputs", str(t2), "--device", "cpu")
    answer = json.loads(printed.stdout)
    assert answer["predictions"][0]["patient_id"] == "3" and set(answer["predictions"][0]["grades"]) == {
        "pfirrmann", "modic", "herniation", "endplate", "spondylolisthesis", "narrowing"}


def test_cli_trains_with_the_spec_flags(crops: DataLayout, tmp_path: Path) -> None:
    result = run_cli("train", "classification", "--data-path", str(crops.classification), "--weights-path",
                     str(tmp_path / "w"), "--backbone", "resnet18", "--output-size", "48", "48", "--num-epochs", "1",
                     "--batch-size", "16", "--no-pretrained", "--dropout", "0.3", "--label-smoothing", "0.1",
                     "--no-augment", "--no-mixed-precision", "--no-early-stopping", "--patience", "5",
                     "--no-visualize-predictions", "--no-use-wandb", "--levels", "L4/L5", "L5/S1", "--device", "cpu",
                     "--run-id", "cli")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "w/classification/cli/best_model.pt").is_file()
    assert "pfirrmann/qwk" in result.stdout


def test_grading_a_series_localizes_then_crops(trained: Any, crops: DataLayout, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """A sagittal series in: its five discs found by the localizer (here one answering the truth), cropped as the
    crops dataset crops them, and graded."""
    from spine_lib.inference import localization
    from spine_lib.inference.grading import run_grading_test
    from spine_lib.synthetic.truth import read_truth
    from spine_lib.training.config import ModelTestConfig

    truth = read_truth(crops.root, "spider")
    patient = truth["patients"][0]
    series = next(s for s in patient["series"] if s["kind"] == "sag_t2")
    discs = {d["level"]: d for d in patient["discs"]}

    def truth_localize(self: Any, volume: Any, mask: Any = None) -> Any:
        index = volume.centre_slice()
        points = {}
        for level, disc in discs.items():
            _, x, y = volume.to_pixel(disc["canal_point_mm"])
            points[level] = localization.DiscPoint(level, x, y, volume.to_physical(index, x, y))
        return localization.DiscLocalization(index, "centre", points, volume.pixel_spacing, volume.shape,
                                             run_id="truth")

    monkeypatch.setattr(localization.DiscLocalizer, "localize", truth_localize)
    monkeypatch.setattr(localization.DiscLocalizer, "ensure_loaded", lambda self: None)
    result = run_grading_test(ModelTestConfig(model_path=trained.best_model_path, inputs=[crops.root / series["path"]],
                                              task="mtl_classification", device="cpu",
                                              output_path=tmp_path / "series.json"))
    rows = result["predictions"]
    assert [r["ivd_level"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert all(r["localization"]["localization_run_id"] == "truth" for r in rows)
    assert json.loads((tmp_path / "series.json").read_text())["predictions"][0]["grades"]["pfirrmann"] in range(1, 6)


def test_classifier_asset_reports_heads_against_baselines(crops: DataLayout, tmp_path: Path) -> None:
    import dagster as dg

    from spine_assets.defs.grading import BASELINE_CHECK, KAPPA_CHECK, classifier_model
    from spine_assets.defs.resources import DataRoot, ExperimentTracking, TorchDevice

    root = tmp_path / "data"
    shutil.copytree(crops.classification, DataLayout(root=root).classification)
    result = dg.materialize(
        [classifier_model],
        resources={"paths": DataRoot(root=str(root), weights=str(tmp_path / "w")),
                   "torch_device": TorchDevice(device="cpu"), "tracking": ExperimentTracking()},
        run_config={"ops": {"classifier_model": {"config": {
            "num_epochs": 2, "output_size": [48, 48], "batch_size": 16, "run_id": "asset", "min_pfirrmann_kappa": 2.0,
            "visualize_predictions": False}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
    meta = result.asset_materializations_for_node("classifier_model")[0].metadata
    assert meta["run_id"].value == "asset" and Path(str(meta["best_model"].value)).is_file()
    table = str(meta["heads_vs_baseline"].value)
    for name in ("pfirrmann", "modic", "disc_herniation", "disc_bulging", "up_endplate", "low_endplate",
                 "spondylolisthesis", "disc_narrowing"):
        assert f"| {name} |" in table
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[KAPPA_CHECK].passed is False  # a kappa floor of 2 no model reaches
    assert checks[KAPPA_CHECK].metadata["pfirrmann_qwk"].value == meta["pfirrmann_qwk"].value
    assert set(checks) == {BASELINE_CHECK, KAPPA_CHECK}
    assert Path(str(meta["plot_confusion_pfirrmann"].value)).is_file()
