"""A real (short) nnU-Net training through the Dagster assets, then predictions on an unseen patient.

One tiny synthetic SPIDER root (3 patients, T2 only, 64x64x8) is converted with a three-class schema (vertebra,
canal, disc: a custom YAML schema, which keeps a few minutes of CPU training meaningful) and trained once for the
module with ``nnUNetTrainerShort``; fold 0 holds one patient out, which the predictions are scored on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import dagster as dg
import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.nnunet import image_path, label_path
from spine_lib.labels import load_label_schema
from spine_lib.segmentation.environment import NNUNetPaths
from spine_lib.segmentation.metrics import group_dice
from tests.conftest import assert_same_geometry

pytestmark = pytest.mark.slow
CONFIGURATION = "2d"
TRAINER = "nnUNetTrainerShort"
PLANS = "nnUNetPlansF32"  # nnU-Net's plans with the features per stage capped at 32
#: Floor of the validation Dice check (mean over the three labels) the short training must reach. The prediction
#: test below holds the same held-out patient to vertebrae > 0.3 and canal > 0.2; a model that learned nothing
#: (background everywhere, one label everywhere, or a random mask) scores far less, see the test of the check.
MIN_VALIDATION_DICE = 0.3


@dataclass
class Trained:
    layout: DataLayout
    metadata: dict[str, dg.MetadataValue]
    checks: dict[str, bool]
    check_metadata: dict[str, dict[str, dg.MetadataValue]]
    held_out: list[str]
    labels: dict[str, int]


def write_group_schema(path: Path) -> Path:
    """The SPIDER source values merged into three targets: any vertebra (partial ones too), the canal, any disc."""
    spider = load_label_schema("spider")
    group = {"vertebra": 1, "spinal_canal": 2, "disc": 3}

    def target(value: int) -> int:
        name = spider.source_name(value)
        return 0 if value == 0 else group["disc"] if name.startswith("disc") else group.get(name, group["vertebra"])

    path.write_text(yaml.safe_dump({
        "name": "spine_groups",
        "source_labels": spider.source_labels,
        "target_labels": {"background": 0, **group},
        "mapping": {v: target(v) for v in spider.source_labels.values()},
    }))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from spine_assets.defs.raw_sources import spider_raw
    from spine_assets.defs.resources import DataRoot, TorchDevice
    from spine_assets.defs.segmentation import (
        nnunet_images_have_labels,
        nnunet_labels_consecutive,
        nnunet_model,
        spider_nnunet_dataset,
    )
    from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root

    base = tmp_path_factory.mktemp("nnunet_training")
    schema = write_group_schema(base / "spine_groups.yaml")
    layout = DataLayout(root=base / "data", weights=base / "weights")
    make_synthetic_root(SynthConfig(out=layout.root, spider_patients=3, rsna_studies=1, phenikaa_patients=1,
                                    size=64, slices=8, seed=5))
    run_config = {"ops": {
        "spider_nnunet_dataset": {"config": {"sequences": ["t2"], "workers": 1, "schema_path": str(schema)}},
        "nnunet_model": {"config": {"configuration": CONFIGURATION, "fold": "0", "trainer": TRAINER, "epochs": 10,
                                    "iterations_per_epoch": 12, "val_iterations_per_epoch": 2, "previews": 1,
                                    "augmentation_workers": 0, "seed": 3, "max_features": 32,
                                    "verify_dataset_integrity": False,  # test_nnunet_dataset runs nnU-Net's check
                                    "min_validation_dice": MIN_VALIDATION_DICE}},
    }}
    result = dg.materialize(
        [spider_raw, spider_nnunet_dataset, nnunet_labels_consecutive, nnunet_images_have_labels, nnunet_model],
        resources={"paths": DataRoot(root=str(layout.root), weights=str(layout.weights)),
                   "torch_device": TorchDevice(device="cpu")},
        run_config=run_config, instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    splits = json.loads((NNUNetPaths.from_layout(layout).preprocessed / "Dataset501_Spider/splits_final.json").read_text())
    return Trained(
        layout=layout,
        metadata=dict(result.asset_materializations_for_node("nnunet_model")[0].metadata),
        checks={e.check_name: e.passed for e in result.get_asset_check_evaluations()},
        check_metadata={e.check_name: dict(e.metadata) for e in result.get_asset_check_evaluations()},
        held_out=splits[0]["val"],
        labels=json.loads((layout.nnunet_dataset / "dataset.json").read_text())["labels"],
    )


def test_folds_keep_patients_apart(trained: Trained) -> None:
    splits = json.loads((NNUNetPaths.from_layout(trained.layout).preprocessed
                         / "Dataset501_Spider/splits_final.json").read_text())
    assert len(splits) == 3  # three patients, one held out per fold
    for split in splits:
        assert len(split["val"]) == 1 and len(split["train"]) == 2
        assert not {c.split("_")[0] for c in split["val"]} & {c.split("_")[0] for c in split["train"]}


def test_model_asset_reports_checkpoint_dice_and_preview(trained: Trained) -> None:
    meta = trained.metadata
    checkpoint = Path(str(meta["checkpoint"].value))
    expected = (trained.layout.weights / "segmentation" / "Dataset501_Spider"
                / f"{TRAINER}__{PLANS}__{CONFIGURATION}" / "fold_0" / "checkpoint_final.pth")
    assert checkpoint == expected and checkpoint.is_file()
    assert meta["epochs"].value == 10 and meta["device"].value == "cpu"
    dice = meta["dice_per_label"].value
    assert isinstance(dice, dict)
    dice = cast(dict[str, float], dice)
    assert set(dice) == {"vertebra", "spinal_canal", "disc"}
    assert all(0.0 <= v <= 1.0 for v in dice.values())
    previews = [k for k in meta if k.startswith("preview_")]
    assert previews == [f"preview_{trained.held_out[0]}"]
    assert trained.checks == {"nnunet_labels_consecutive": True, "nnunet_images_have_labels": True,
                              "nnunet_validation_dice": True}


def validation_prediction(trained: Trained, case: str) -> np.ndarray:
    """nnU-Net's own prediction of a validation case (written by the training into fold_0/validation)."""
    model_path = Path(str(trained.metadata["model_path"].value))
    ending = json.loads((trained.layout.nnunet_dataset / "dataset.json").read_text())["file_ending"]
    return sitk.GetArrayFromImage(sitk.ReadImage(str(model_path / "fold_0" / "validation" / f"{case}{ending}")))


def test_validation_dice_is_the_dice_of_the_saved_predictions(trained: Trained) -> None:
    case = trained.held_out[0]
    predicted = validation_prediction(trained, case)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(label_path(trained.layout.nnunet_dataset, case))))
    expected = {}
    for name, value in trained.labels.items():
        p, r = predicted == value, truth == value
        if value and (p.any() or r.any()):  # a label absent from both has no Dice
            expected[name] = 2.0 * float((p & r).sum()) / float(p.sum() + r.sum())
    dice = cast(dict[str, float], trained.metadata["dice_per_label"].value)
    assert set(dice) == set(expected) == {"vertebra", "spinal_canal", "disc"}
    for name, value in expected.items():
        assert abs(dice[name] - value) < 1e-3, (name, dice[name], value)
    mean = sum(expected.values()) / len(expected)
    assert abs(float(cast(float, trained.metadata["foreground_dice"].value)) - mean) < 1e-3


def test_dice_check_follows_the_floor_a_blind_model_misses(trained: Trained) -> None:
    check = trained.check_metadata["nnunet_validation_dice"]
    assert check["floor"].value == MIN_VALIDATION_DICE
    assert check["validation_cases"].value == 1
    mean = cast(float, check["mean_dice"].value)
    assert abs(mean - cast(float, trained.metadata["foreground_dice"].value)) < 1e-4  # the Dice the asset reports
    assert mean >= MIN_VALIDATION_DICE  # the short training reaches the floor ...
    assert trained.checks["nnunet_validation_dice"] is True  # ... and the check says so
    # what a model that learned nothing scores on the held-out patient, mean over the three labels
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(label_path(trained.layout.nnunet_dataset, trained.held_out[0]))))
    fractions = [float((truth == v).mean()) for v in trained.labels.values() if v]
    one_label_everywhere = max(2 * f / (1 + f) for f in fractions) / len(fractions)  # the others score 0
    random_mask = sum(fractions) / len(fractions)  # each label drawn at random with its true fraction
    blind = max(one_label_everywhere, random_mask)
    assert 2 * blind < MIN_VALIDATION_DICE, (one_label_everywhere, random_mask)


def test_preview_shows_the_validation_prediction(trained: Trained) -> None:
    case = trained.held_out[0]
    html = Path(str(trained.metadata[f"preview_{case}"].value)).read_text(encoding="utf-8")
    present = set(np.unique(validation_prediction(trained, case)).tolist())
    assert {trained.labels["vertebra"], trained.labels["spinal_canal"]} <= present  # what the model learned
    assert '"name":"labels"' in html
    for name, value in trained.labels.items():
        if value:  # one legend entry per label the prediction holds, none for the others or the background
            assert (f'"name":"{name}"' in html) is (value in present), name
    assert '"name":"background"' not in html


def test_prediction_on_an_unseen_patient_beats_chance(trained: Trained) -> None:
    from spine_lib.inference import NNUNetSegmentation

    model = NNUNetSegmentation(trained.layout.weights / "segmentation", 501, CONFIGURATION, 0, device="cpu")
    case = trained.held_out[0]
    image = sitk.ReadImage(str(image_path(trained.layout.nnunet_dataset, case)))
    result = model.predict(image)
    assert_same_geometry(result.prediction, image)
    predicted = sitk.GetArrayFromImage(result.prediction)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(label_path(trained.layout.nnunet_dataset, case))))
    scores = group_dice(predicted, truth, trained.labels)
    chance = float((truth > 0).mean())  # Dice of a random mask with the true foreground fraction
    assert scores["foreground"] > max(0.5, 2 * chance), scores
    assert scores["vertebrae"] > 0.3 and scores["canal"] > 0.2, scores
    assert set(np.unique(predicted).tolist()) <= set(trained.labels.values())


def test_nnunet_predict_command_finds_the_short_trainer(trained: Trained, tmp_path: Path) -> None:
    from spine_lib.inference import NNUNetSegmentation

    case = trained.held_out[0]
    source = image_path(trained.layout.nnunet_dataset, case)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / source.name).symlink_to(source)
    env = {**os.environ, **NNUNetPaths.from_layout(trained.layout).environment(processes=1)}
    command = [str(Path(sys.executable).parent / "nnUNetv2_predict"), "-i", str(tmp_path / "in"), "-o",
               str(tmp_path / "out"), "-d", "501", "-c", CONFIGURATION, "-f", "0", "-tr", TRAINER, "-p", PLANS, "-device", "cpu",
               "-npp", "1", "-nps", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    from_command = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / f"{case}.nii.gz")))
    in_memory = NNUNetSegmentation(trained.layout.weights / "segmentation", 501, CONFIGURATION, 0, device="cpu",
                                   trainer=TRAINER).predict(sitk.ReadImage(str(source)))
    agreement = (sitk.GetArrayFromImage(in_memory.prediction) == from_command).mean()
    assert agreement > 0.999


def test_visualize_command_segments_a_batch(trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every entry of the batch folder ends as a view or a failure with its reason; a patient-named input's
    view, log lines and failure carry its pseudonym only."""
    from spine_lib.cli import main
    from spine_lib.core.phi import pseudonym, spellings

    inputs = tmp_path / "series"
    inputs.mkdir()
    for name in ("1_t2.mha", "2_t2.mha"):
        (inputs / name).symlink_to(trained.layout.spider / "images" / name)
    (inputs / "NGUYEN_VAN_SON_20250718.mha").symlink_to(trained.layout.spider / "images" / "1_t2.mha")
    (inputs / "broken.mha").write_bytes(b"not an image")
    (inputs / "TRAN_THI_HOA_1970_20250101 (2).mha").write_bytes(b"not an image either")
    (inputs / "Thumbs.db").write_bytes(b"\x00" * 16)
    main(["visualize", "--input-path", str(inputs), "--output-path", str(tmp_path / "views"), "--model-path",
          str(trained.layout.weights / "segmentation"), "--configuration", CONFIGURATION, "--fold", "0",
          "--batch", "--device", "cpu", "-v"])
    written = sorted(p.name for p in (tmp_path / "views").iterdir())
    named = pseudonym("NGUYEN_VAN_SON_20250718.mha").removesuffix(".mha")
    assert written == sorted(["1_t2.html", "2_t2.html", f"{named}.html"])
    assert '"name":"labels"' in (tmp_path / "views" / "1_t2.html").read_text(encoding="utf-8")
    out = capsys.readouterr()
    failed = [line for line in out.out.splitlines() if line.startswith("Failed:")]
    assert len(failed) == 3  # broken.mha, the patient-named broken file, Thumbs.db: six inputs, three views
    assert any("broken" in line for line in failed) and any("Thumbs.db" in line for line in failed)
    shown = out.out + out.err + "".join((tmp_path / "views" / name).read_text(encoding="utf-8") for name in written)
    for name in ("Nguyen Van Son", "Tran Thi Hoa"):
        assert not any(form in shown for form in spellings(name)), name
