"""Child process of :func:`spine_lib.segmentation.training.train_segmentation`: trains and validates one fold.

``python -m spine_lib.segmentation.worker JOB.json``; the parent sets nnU-Net's environment (folders, worker
counts, ``CUDA_VISIBLE_DEVICES``) before this process imports nnU-Net. The process ends with its parent.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def build_trainer(job: dict[str, Any]) -> Any:
    """The nnU-Net trainer of the job (found by class name, this project's trainers included), overrides applied."""
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    trainer_class: Any = recursive_find_trainer_class_by_name(job["trainer"])
    dataset = Path(job["data_path"]).name
    base = Path(str(nnUNet_preprocessed)) / dataset
    plans = load_json(str(base / f"{job['plans']}.json"))
    plans["continue_training"] = bool(job["continue_training"])
    fold: int | str = job["fold"] if job["fold"] == "all" else int(job["fold"])
    trainer = trainer_class(plans=plans, configuration=job["configuration"], fold=fold,
                            dataset_json=load_json(str(base / "dataset.json")), device=torch.device(job["torch_device"]))
    for key, attribute in (("epochs", "num_epochs"), ("iterations_per_epoch", "num_iterations_per_epoch"),
                           ("val_iterations_per_epoch", "num_val_iterations_per_epoch"), ("initial_lr", "initial_lr")):
        if job.get(key) is not None:
            setattr(trainer, attribute, job[key])
    return trainer


class TimeLimitReached(Exception):  # noqa: N818 - a signal, not an error
    """Raised after the epoch that passes a training's time limit (see :func:`train_within`)."""


def train_within(trainer: Any, seconds: float | None, clock: Callable[[], float] = time.perf_counter) -> None:
    """``trainer.run_training()``, ended after the epoch that passes ``seconds`` (when the next would not fit).

    The poly learning-rate schedule is refitted after every epoch to the epochs that fit the limit at the mean
    epoch time so far, so a stopped run ends at a low rate as a full one does. A stopped run ends as nnU-Net ends
    one after its last epoch (``on_train_end``: the final checkpoint, the data loaders' shutdown).
    """
    if seconds is None:
        trainer.run_training()
        return
    start = clock()
    first = trainer.current_epoch
    end_of_epoch = trainer.on_epoch_end

    def on_epoch_end() -> None:
        end_of_epoch()
        elapsed, done = clock() - start, trainer.current_epoch - first
        if trainer.current_epoch >= trainer.num_epochs:
            return
        per_epoch = elapsed / max(done, 1)
        if elapsed + per_epoch > seconds:
            trainer.print_to_log_file(f"time limit of {seconds / 60:g} min: stopping after epoch {trainer.current_epoch}")
            raise TimeLimitReached
        fitting = min(trainer.num_epochs, first + int(seconds / per_epoch))
        scheduler = getattr(trainer, "lr_scheduler", None)
        if scheduler is not None and hasattr(scheduler, "max_steps"):  # nnU-Net's PolyLRScheduler
            scheduler.max_steps = max(fitting, trainer.current_epoch + 1)

    trainer.on_epoch_end = on_epoch_end
    try:
        trainer.run_training()
    except TimeLimitReached:
        trainer.on_train_end()


def main(job_path: Path) -> None:
    from spine_lib.core.processes import die_with_parent

    die_with_parent()  # a hard kill of the training job ends this process too, not hours later
    job = json.loads(job_path.read_text())
    if job.get("seed") is not None:
        import numpy as np
        import torch

        torch.manual_seed(job["seed"])
        np.random.seed(job["seed"])  # nnU-Net's augmentation draws from the global generator
    trainer = build_trainer(job)
    if job["continue_training"]:  # as nnUNetv2_train --c: the final, else the latest, else the best checkpoint
        for name in ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth"):
            if (Path(trainer.output_folder) / name).is_file():
                trainer.load_checkpoint(str(Path(trainer.output_folder) / name))
                break
    start = time.perf_counter()
    limit = job.get("max_train_minutes")
    train_within(trainer, None if limit is None else 60 * float(limit))
    trained = time.perf_counter() - start
    if not job.get("validation_mirroring", True):
        trainer.inference_allowed_mirroring_axes = None  # the validation predictor then mirrors nothing
    trainer.perform_actual_validation(False)
    state = {"epochs": trainer.current_epoch, "planned_epochs": trainer.num_epochs,
             "iterations_per_epoch": trainer.num_iterations_per_epoch,
             "train_seconds": trained, "validation_seconds": time.perf_counter() - start - trained}
    (Path(trainer.output_folder) / "spine_training_state.json").write_text(json.dumps(state, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
