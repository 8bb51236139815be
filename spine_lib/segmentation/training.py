"""Train a segmentation model with nnU-Net v2 itself: plan and preprocess, train one fold, validate.

:func:`train_segmentation` runs nnU-Net's real ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity`` and
then trains in a child process (``python -m spine_lib.segmentation.worker``). The child is needed twice over:
nnU-Net always trains on CUDA device 0 of what it sees, so ``cuda:N`` becomes ``CUDA_VISIBLE_DEVICES=N`` there,
and some of nnU-Net's settings are read from the environment when it is first imported.

Defaults are nnU-Net's standard (``nnUNetTrainer``, ``3d_fullres``, fold 0). For a quick CPU run use
``trainer="nnUNetTrainerShort"`` (see :mod:`spine_lib.segmentation.nnunet_trainers`) and set ``epochs`` and
``iterations_per_epoch``. Unless a ``splits_final.json`` exists, the cross-validation folds are drawn by patient
(a patient's T1 and T2 never sit on both sides of a fold); fold ``all`` trains and validates on every case.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro
from pydantic import field_validator

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.errors import ConfigError, InputPathError, SpineVisionError
from spine_lib.formats.nnunet import (
    CHANNEL_SUFFIX,
    DATASET_JSON,
    IMAGES_TR,
    dataset_version,
    read_dataset_json,
)
from spine_lib.io.atomic import atomic_write_text
from spine_lib.segmentation.environment import SEGMENTATION_TASK, NNUNetPaths, model_folder
from spine_lib.sources.spider import patient_of

PREPROCESS_STAMP = "spine_preprocess_stamp.json"
TRAINING_LOG = "spine_training.log"


class SegmentationTrainConfig(BaseConfig):
    """Plan, preprocess and train an nnU-Net v2 segmentation model on a converted dataset.

    Example:
        >>> config = SegmentationTrainConfig.for_layout(DataLayout(root=Path("/srv/spine"), weights=Path("/srv/w")),
        ...                                             configuration="2d", trainer="nnUNetTrainerShort")
        >>> config.dataset_id, config.paths.raw, config.model_path.name
        (501, PosixPath('/srv/spine/processed/SPIDER'), 'nnUNetTrainerShort__nnUNetPlans__2d')
    """

    data_path: Annotated[Path, tyro.conf.arg(help="nnU-Net raw dataset (DatasetXXX_Name; parent = nnUNet_raw).")] = (
        DEFAULT_LAYOUT.nnunet_dataset
    )
    preprocessed_path: Annotated[Path, tyro.conf.arg(help="nnUNet_preprocessed.")] = DEFAULT_LAYOUT.nnunet_preprocessed
    results_path: Annotated[Path, tyro.conf.arg(help="nnUNet_results: trained models go below it.")] = (
        DEFAULT_LAYOUT.weights_for(SEGMENTATION_TASK)
    )
    configuration: Annotated[str, tyro.conf.arg(help="nnU-Net configuration: 2d, 3d_fullres, 3d_lowres.")] = "3d_fullres"
    fold: Annotated[str, tyro.conf.arg(help="Fold 0-4, or 'all' (train and validate on every case).")] = "0"
    trainer: Annotated[str, tyro.conf.arg(help="nnU-Net trainer class (nnUNetTrainerShort for quick CPU runs).")] = (
        "nnUNetTrainer"
    )
    plans: Annotated[str, tyro.conf.arg(help="nnU-Net plans identifier.")] = "nnUNetPlans"
    device: Annotated[str, tyro.conf.arg(help="auto (CUDA device with most free memory, else CPU), cpu, cuda:N.")] = "auto"
    epochs: Annotated[int | None, tyro.conf.arg(help="Epochs (default: the trainer's own).")] = None
    iterations_per_epoch: Annotated[int | None, tyro.conf.arg(help="Training iterations per epoch.")] = None
    val_iterations_per_epoch: Annotated[int | None, tyro.conf.arg(help="Validation iterations per epoch.")] = None
    initial_lr: Annotated[float | None, tyro.conf.arg(help="Initial learning rate (default: the trainer's own).")] = None
    max_train_minutes: Annotated[float | None, tyro.conf.arg(help=(
        "Stop training after the epoch that passes this many minutes (the learning-rate schedule is fitted to the "
        "epochs that fit); validation and export follow as usual."))] = None
    max_features: Annotated[
        int | None, tyro.conf.arg(help="Cap the network's features per stage (a smaller U-Net for CPU runs).")
    ] = None
    batch_size: Annotated[int | None, tyro.conf.arg(help="Batch size (default: the planned one).")] = None
    preprocess_workers: Annotated[int, tyro.conf.arg(help="Processes for planning/preprocessing and export.")] = max(
        1, min(4, os.cpu_count() or 1)
    )
    augmentation_workers: Annotated[
        int | None, tyro.conf.arg(help="Data-augmentation processes (0: in the training process).")
    ] = None
    verify_dataset_integrity: Annotated[bool, tyro.conf.arg(help="Run nnU-Net's dataset integrity check.")] = True
    continue_training: Annotated[bool, tyro.conf.arg(help="Continue from the fold's latest checkpoint.")] = False
    validation_mirroring: Annotated[
        bool,
        tyro.conf.arg(help="Use mirroring as test-time augmentation in the final validation (off: several times faster)."),
    ] = True
    seed: Annotated[int | None, tyro.conf.arg(help="Seed torch and numpy in the training process.")] = None

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        paths = NNUNetPaths.from_layout(layout)
        return {"data_path": layout.nnunet_dataset, "preprocessed_path": paths.preprocessed,
                "results_path": paths.results}

    @field_validator("fold")
    @classmethod
    def check_fold(cls, value: str) -> str:
        if value != "all" and not value.isdigit():
            raise ValueError(f"fold must be a number or 'all', got {value!r}")
        return value

    @property
    def paths(self) -> NNUNetPaths:
        return NNUNetPaths(raw=self.data_path.parent, preprocessed=self.preprocessed_path, results=self.results_path)

    @property
    def dataset_name(self) -> str:
        return self.data_path.name

    @property
    def dataset_id(self) -> int:
        try:
            return int(self.dataset_name.removeprefix("Dataset").split("_", 1)[0])
        except ValueError:
            raise ConfigError(self.data_path, "dataset folder must be named DatasetXXX_Name") from None

    @property
    def training_plans(self) -> str:
        """The plans identifier trained with: ``plans``, or a variant of it when the network or batch is changed."""
        parts = [f"F{self.max_features}" if self.max_features else "", f"B{self.batch_size}" if self.batch_size else ""]
        return self.plans + "".join(parts)

    @property
    def model_path(self) -> Path:
        """The trained model's folder (holds plans.json, dataset.json and fold_<f>/)."""
        return model_folder(self.results_path, self.dataset_name, self.trainer, self.training_plans, self.configuration)

    @property
    def fold_path(self) -> Path:
        return self.model_path / f"fold_{self.fold}"


@dataclass
class SegmentationTrainResult:
    """A trained fold: where its checkpoint is, its validation Dice per label, and how long it took."""

    model_path: Path
    fold: str
    checkpoint: Path
    configuration: str
    trainer: str
    device: str
    epochs: int
    validation_cases: list[str]
    dice_per_label: dict[str, float]  # label name -> mean Dice over validation cases (labels present only)
    foreground_dice: float  # mean of dice_per_label
    preprocess_seconds: float
    train_seconds: float
    preprocessed_now: bool
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "model_path": str(self.model_path),
            "configuration": self.configuration,
            "trainer": self.trainer,
            "fold": self.fold,
            "device": self.device,
            "epochs": self.epochs,
            "validation_cases": len(self.validation_cases),
            "foreground_dice": round(self.foreground_dice, 4),
            "preprocess_seconds": round(self.preprocess_seconds, 1),
            "train_seconds": round(self.train_seconds, 1),
        }

    def dice_table_markdown(self) -> str:
        lines = ["| label | Dice |", "|---|---|"]
        lines += [f"| {name} | {dice:.4f} |" for name, dice in self.dice_per_label.items()]
        return "\n".join(lines)


def dataset_stamp(dataset: Path) -> str:
    """A hash of what preprocessing depends on: dataset.json and each file's name, size and mtime."""
    return dataset_version(dataset)


def plan_and_preprocess(config: SegmentationTrainConfig, log_path: Path | None = None) -> bool:
    """Run ``nnUNetv2_plan_and_preprocess`` for the configuration unless its output matches the dataset already.

    Returns whether nnU-Net ran. Raises :class:`SpineVisionError` with the tail of nnU-Net's output if it fails
    (its integrity check fails on a malformed dataset).
    """
    dataset = config.data_path
    if not (dataset / DATASET_JSON).is_file():
        raise InputPathError(dataset, "not an nnU-Net dataset (no dataset.json); convert SPIDER first")
    target = config.preprocessed_path / config.dataset_name
    stamp_path = target / PREPROCESS_STAMP
    stamp = {"dataset": dataset_stamp(dataset), "plans": config.plans}
    stamps: dict[str, Any] = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    if stamps.get(config.configuration) == stamp and (target / f"{config.plans}.json").is_file():
        return False
    command = [
        *nnunet_command("nnUNetv2_plan_and_preprocess"), "-d", str(config.dataset_id), "-c", config.configuration,
        "-np", str(config.preprocess_workers), "-npfp", str(config.preprocess_workers), "--clean",
    ]
    if config.verify_dataset_integrity:
        command.append("--verify_dataset_integrity")
    if config.plans != "nnUNetPlans":
        command += ["-overwrite_plans_name", config.plans]
    run_logged(command, config.paths.environment(config.preprocess_workers), log_path, "nnU-Net planning/preprocessing")
    stamps = {k: v for k, v in stamps.items() if v.get("dataset") == stamp["dataset"]}  # older data: stale
    stamps[config.configuration] = stamp
    atomic_write_text(stamp_path, json.dumps(stamps, indent=1, sort_keys=True) + "\n")
    return True


def nnunet_command(name: str) -> list[str]:
    """An nnU-Net console command of this Python environment (found next to the interpreter, else on PATH)."""
    beside = Path(sys.executable).parent / name
    return [str(beside)] if beside.is_file() else [name]


def run_logged(command: list[str], env: dict[str, str], log_path: Path | None, what: str) -> None:
    """Run a command with extra environment variables, its output appended to ``log_path``; raise on failure."""
    full_env = {**os.environ, **env}
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path or os.devnull, "ab") as log:  # noqa: PTH123
        log.write(f"\n$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.run(command, env=full_env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if process.returncode != 0:
        tail = ""
        if log_path is not None and log_path.is_file():
            tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-8:])
        raise SpineVisionError(command[0], f"{what} failed (exit {process.returncode}): {tail[-1500:]}")


def patient_splits(cases: list[str], n_splits: int = 5, seed: int = 12345) -> list[dict[str, list[str]]]:
    """Cross-validation folds drawn by patient: all of a patient's series land on the same side of each fold."""
    import numpy as np

    patients = sorted({patient_of(c) for c in cases})
    if len(patients) < 2:
        return []
    n = min(n_splits, len(patients))
    order = np.random.default_rng(seed).permutation(len(patients))
    groups = [sorted(patients[i] for i in order[k::n]) for k in range(n)]
    splits = []
    for held_out in groups:
        val = sorted(c for c in cases if patient_of(c) in held_out)
        splits.append({"train": sorted(c for c in cases if patient_of(c) not in held_out), "val": val})
    return splits


def write_plans_variant(config: SegmentationTrainConfig) -> None:
    """Write the plans variant ``config.training_plans`` (features capped, batch size set) next to the plans.

    The variant keeps the configuration's preprocessed data (same data identifier); only the network width and
    the batch size differ, so nnU-Net trains and predicts with it like with any plans file.
    """
    if config.training_plans == config.plans:
        return
    base = config.preprocessed_path / config.dataset_name
    plans = json.loads((base / f"{config.plans}.json").read_text())
    if config.configuration not in plans["configurations"]:
        raise ConfigError("configuration", f"{config.configuration!r} is not in {config.plans}.json")
    configuration = plans["configurations"][config.configuration]
    if config.max_features:
        arch = configuration["architecture"]["arch_kwargs"]
        arch["features_per_stage"] = [min(f, config.max_features) for f in arch["features_per_stage"]]
    if config.batch_size:
        configuration["batch_size"] = config.batch_size
    plans["plans_name"] = config.training_plans
    atomic_write_text(base / f"{config.training_plans}.json", json.dumps(plans, indent=1) + "\n")


def ensure_splits(config: SegmentationTrainConfig) -> None:
    """Write ``splits_final.json`` (folds by patient) unless one exists; check the requested fold exists."""
    if config.fold == "all":
        return
    target = config.preprocessed_path / config.dataset_name / "splits_final.json"
    if not target.is_file():
        suffix = CHANNEL_SUFFIX + read_dataset_json(config.data_path)["file_ending"]
        cases = sorted(p.name[: -len(suffix)] for p in (config.data_path / IMAGES_TR).glob(f"*{suffix}"))
        splits = patient_splits(cases)
        if not splits:
            raise ConfigError("fold", f"fold {config.fold} needs at least two patients; use fold 'all'")
        atomic_write_text(target, json.dumps(splits, indent=1) + "\n")
    splits = json.loads(target.read_text())
    if int(config.fold) >= len(splits):
        raise ConfigError("fold", f"fold {config.fold} requested but {target.name} holds {len(splits)} folds")


def train_segmentation(config: SegmentationTrainConfig) -> SegmentationTrainResult:
    """Plan and preprocess (when the dataset changed), train one fold, run nnU-Net's validation, read its Dice."""
    from spine_lib.core.device import select_device

    choice = select_device(config.device)
    log_path = config.model_path / TRAINING_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    preprocessed = plan_and_preprocess(config, log_path)
    ensure_splits(config)
    write_plans_variant(config)
    preprocess_seconds = time.perf_counter() - start

    env = config.paths.environment(config.preprocess_workers, config.augmentation_workers)
    torch_device = "cpu"
    if choice.is_cuda:
        env["CUDA_VISIBLE_DEVICES"] = choice.device.split(":", 1)[1]
        torch_device = "cuda"
    job = {**config.model_dump(mode="json"), "plans": config.training_plans, "torch_device": torch_device}
    job_path = config.model_path / f"fold_{config.fold}.job.json"
    atomic_write_text(job_path, json.dumps(job, indent=1) + "\n")
    start = time.perf_counter()
    run_logged([sys.executable, "-m", "spine_lib.segmentation.worker", str(job_path)], env, log_path,
               "nnU-Net training")
    train_seconds = time.perf_counter() - start
    result = read_validation(config)
    result.device, result.preprocess_seconds, result.train_seconds = choice.device, preprocess_seconds, train_seconds
    result.preprocessed_now, result.log_path = preprocessed, log_path
    return result


def read_validation(config: SegmentationTrainConfig) -> SegmentationTrainResult:
    """The trained fold's checkpoint and nnU-Net's validation summary (mean Dice per label present)."""
    fold = config.fold_path
    checkpoint = fold / "checkpoint_final.pth"
    summary_path = fold / "validation" / "summary.json"
    if not checkpoint.is_file() or not summary_path.is_file():
        raise InputPathError(fold, "no final checkpoint and validation summary: the training did not finish")
    summary = json.loads(summary_path.read_text())
    names = {int(v): n for n, v in json.loads((config.model_path / DATASET_JSON).read_text())["labels"].items()}
    dice: dict[str, float] = {}
    for key, metrics in summary["mean"].items():
        value = float(metrics["Dice"])
        if not math.isnan(value):
            dice[names.get(int(key), key)] = value
    state = json.loads((fold / "spine_training_state.json").read_text()) if (fold / "spine_training_state.json").is_file() else {}
    return SegmentationTrainResult(
        model_path=config.model_path, fold=config.fold, checkpoint=checkpoint, configuration=config.configuration,
        trainer=config.trainer, device=config.device, epochs=int(state.get("epochs", 0)),
        validation_cases=[c["reference_file"].rsplit("/", 1)[-1] for c in summary.get("metric_per_case", [])],
        dice_per_label=dice, foreground_dice=sum(dice.values()) / len(dice) if dice else float("nan"),
        preprocess_seconds=0.0, train_seconds=0.0, preprocessed_now=False, log_path=config.model_path / TRAINING_LOG,
    )


def result_record(result: SegmentationTrainResult) -> dict[str, Any]:
    data = asdict(result)
    return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
