"""nnU-Net set-up that needs no training: folders and environment, folds by patient, plans variants, configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spine_lib.core.layout import DataLayout
from spine_lib.errors import ConfigError
from spine_lib.segmentation.environment import TRAINERS_DIR, NNUNetPaths, nnunet_env
from spine_lib.segmentation.training import (
    SegmentationTrainConfig,
    dataset_stamp,
    ensure_splits,
    patient_splits,
    write_plans_variant,
)


def test_paths_follow_the_layout(tmp_path: Path) -> None:
    layout = DataLayout(root=tmp_path / "data", weights=tmp_path / "weights")
    paths = NNUNetPaths.from_layout(layout)
    assert paths.raw == layout.nnunet_dataset.parent
    assert paths.preprocessed == layout.interim / "nnUNet_preprocessed"
    assert paths.results == tmp_path / "weights" / "segmentation"
    env = paths.environment(processes=3, augmentation_workers=0)
    assert env["nnUNet_raw"] == str((tmp_path / "data/processed/SPIDER").resolve())
    assert env["nnUNet_def_n_proc"] == "3" and env["nnUNet_n_proc_DA"] == "0"
    assert env["nnUNet_extTrainer"].split(os.pathsep)[0] == str(TRAINERS_DIR)
    assert (TRAINERS_DIR / "nnunet_trainer_short.py").is_file()


def test_env_is_restored_after_the_block() -> None:
    os.environ["SPINE_TEST_KEPT"] = "kept"
    with nnunet_env({"SPINE_TEST_KEPT": "changed", "SPINE_TEST_NEW": "/somewhere"}):
        assert os.environ["SPINE_TEST_KEPT"] == "changed" and os.environ["SPINE_TEST_NEW"] == "/somewhere"
    assert os.environ.pop("SPINE_TEST_KEPT") == "kept"
    assert "SPINE_TEST_NEW" not in os.environ


def test_patient_splits_keep_series_of_a_patient_together() -> None:
    cases = ["1_t1", "1_t2", "2_t1", "2_t2", "3_t1", "3_t2", "3_t2_SPACE", "4_t1", "4_t2", "5_t1", "6_t1", "7_t2"]
    splits = patient_splits(cases, n_splits=5)
    assert len(splits) == 5
    held_out = [c for s in splits for c in s["val"]]
    assert sorted(held_out) == sorted(cases)  # every case validated exactly once
    for split in splits:
        assert sorted(split["train"] + split["val"]) == sorted(cases)
        assert not {c.split("_")[0] for c in split["train"]} & {c.split("_")[0] for c in split["val"]}
    assert patient_splits(["1_t1", "1_t2"]) == []  # one patient: no fold to hold out


def fake_dataset(tmp_path: Path, cases: list[str]) -> SegmentationTrainConfig:
    dataset = tmp_path / "raw" / "Dataset501_Spider"
    (dataset / "imagesTr").mkdir(parents=True)
    (dataset / "labelsTr").mkdir()
    for case in cases:
        (dataset / "imagesTr" / f"{case}_0000.nii.gz").write_bytes(b"i")
        (dataset / "labelsTr" / f"{case}.nii.gz").write_bytes(b"l")
    (dataset / "dataset.json").write_text(json.dumps({"file_ending": ".nii.gz", "channel_names": {"0": "MRI"},
                                                      "labels": {"background": 0, "disc": 1},
                                                      "numTraining": len(cases)}))
    return SegmentationTrainConfig(data_path=dataset, preprocessed_path=tmp_path / "pre", results_path=tmp_path / "res")


def test_splits_file_written_once_and_fold_checked(tmp_path: Path) -> None:
    config = fake_dataset(tmp_path, ["1_t1", "1_t2", "2_t1", "3_t1"])
    ensure_splits(config)
    target = tmp_path / "pre" / "Dataset501_Spider" / "splits_final.json"
    splits = json.loads(target.read_text())
    assert len(splits) == 3
    target.write_text(json.dumps(splits[:1]))  # a user's own split file is kept as it is
    ensure_splits(config)
    assert len(json.loads(target.read_text())) == 1
    with pytest.raises(ConfigError, match="holds 1 folds"):
        ensure_splits(config.model_copy(update={"fold": "2"}))
    one = fake_dataset(tmp_path / "one", ["1_t1", "1_t2"])
    with pytest.raises(ConfigError, match="fold 'all'"):
        ensure_splits(one)
    ensure_splits(one.model_copy(update={"fold": "all"}))  # nothing to split


def test_dataset_stamp_follows_the_files(tmp_path: Path) -> None:
    config = fake_dataset(tmp_path, ["1_t1", "2_t1"])
    first = dataset_stamp(config.data_path)
    assert dataset_stamp(config.data_path) == first
    (config.data_path / "labelsTr" / "2_t1.nii.gz").write_bytes(b"changed label")
    assert dataset_stamp(config.data_path) != first


def test_plans_variant_caps_features_and_sets_batch(tmp_path: Path) -> None:
    config = fake_dataset(tmp_path, ["1_t1"]).model_copy(update={"configuration": "2d", "max_features": 64,
                                                                  "batch_size": 4})
    base = tmp_path / "pre" / "Dataset501_Spider"
    base.mkdir(parents=True)
    plans = {"plans_name": "nnUNetPlans", "configurations": {"2d": {
        "data_identifier": "nnUNetPlans_2d", "batch_size": 12,
        "architecture": {"arch_kwargs": {"features_per_stage": [32, 64, 128, 256, 512]}}}}}
    (base / "nnUNetPlans.json").write_text(json.dumps(plans))
    assert config.training_plans == "nnUNetPlansF64B4"
    assert config.model_path.name == "nnUNetTrainer__nnUNetPlansF64B4__2d"
    write_plans_variant(config)
    variant = json.loads((base / "nnUNetPlansF64B4.json").read_text())
    two_d = variant["configurations"]["2d"]
    assert two_d["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 64, 64, 64]
    assert two_d["batch_size"] == 4 and two_d["data_identifier"] == "nnUNetPlans_2d"
    assert variant["plans_name"] == "nnUNetPlansF64B4"
    with pytest.raises(ConfigError, match="3d_fullres"):
        write_plans_variant(config.model_copy(update={"configuration": "3d_fullres"}))


def test_config_rejects_a_bad_fold() -> None:
    with pytest.raises(ValueError, match="fold"):
        SegmentationTrainConfig(fold="first")
    assert SegmentationTrainConfig().model_path == Path(
        "weights/segmentation/Dataset501_Spider/nnUNetTrainer__nnUNetPlans__3d_fullres")
