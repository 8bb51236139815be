"""nnU-Net training within a time limit: nnU-Net's own epoch loop, stopped by the worker, its schedule refitted."""

from __future__ import annotations

import itertools

import pytest
import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from spine_lib.segmentation.worker import train_within

LR = 0.01


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class EpochsOnAClock:
    """The hooks nnU-Net's ``run_training`` calls, each training epoch taking ``epoch_seconds`` on ``clock``."""

    def __init__(self, clock: Clock, epochs: int, epoch_seconds: float) -> None:
        self.clock, self.epoch_seconds = clock, epoch_seconds
        self.current_epoch, self.num_epochs = 0, epochs
        self.num_iterations_per_epoch = self.num_val_iterations_per_epoch = 2
        self.dataloader_train = self.dataloader_val = itertools.repeat({})
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
        self.lr_scheduler = PolyLRScheduler(self.optimizer, LR, epochs)
        self.rates: list[float] = []
        self.final_checkpoints = 0
        self.log: list[str] = []

    def on_train_start(self) -> None: ...
    def on_train_epoch_start(self) -> None: ...
    def on_train_epoch_end(self, outputs: list[dict]) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_epoch_end(self, outputs: list[dict]) -> None: ...
    def validation_step(self, batch: dict) -> dict:
        return {}

    def on_epoch_start(self) -> None:
        self.lr_scheduler.step(self.current_epoch)
        self.rates.append(self.optimizer.param_groups[0]["lr"])

    def train_step(self, batch: dict) -> dict:
        self.clock.now += self.epoch_seconds / self.num_iterations_per_epoch
        return {}

    def on_epoch_end(self) -> None:
        self.current_epoch += 1

    def on_train_end(self) -> None:
        self.final_checkpoints += 1

    def print_to_log_file(self, *args: object) -> None:
        self.log.append(" ".join(str(a) for a in args))

    def run_training(self) -> None:
        nnUNetTrainer.run_training(self)  # type: ignore[arg-type]  # nnU-Net's own loop over these hooks


def test_training_stops_after_the_epoch_that_would_pass_the_limit() -> None:
    clock = Clock()
    trainer = EpochsOnAClock(clock, epochs=10, epoch_seconds=10.0)
    train_within(trainer, 35.0, clock=clock)
    # after 3 epochs (30 s) a fourth would end at 40 s > 35 s
    assert trainer.current_epoch == 3 and len(trainer.rates) == 3
    assert trainer.final_checkpoints == 1  # ended as a finished training ends
    assert trainer.log == ["time limit of 0.583333 min: stopping after epoch 3"]
    # the schedule spans the 3 epochs that fit, not the 10 planned: it ends low as a full run does
    assert trainer.rates[0] == pytest.approx(LR)
    assert trainer.rates[2] == pytest.approx(LR * (1 - 2 / 3) ** 0.9)
    assert trainer.rates[2] < LR * (1 - 2 / 10) ** 0.9


def test_a_limit_the_epochs_fit_in_changes_nothing() -> None:
    clock = Clock()
    limited, free = EpochsOnAClock(clock, epochs=6, epoch_seconds=10.0), EpochsOnAClock(Clock(), epochs=6,
                                                                                       epoch_seconds=10.0)
    train_within(limited, 1000.0, clock=clock)
    train_within(free, None)
    assert limited.current_epoch == free.current_epoch == 6
    assert limited.final_checkpoints == free.final_checkpoints == 1
    assert limited.rates == pytest.approx(free.rates) and limited.log == []


def test_a_continued_training_counts_its_earlier_epochs() -> None:
    clock = Clock()
    trainer = EpochsOnAClock(clock, epochs=20, epoch_seconds=10.0)
    trainer.current_epoch = 8  # as after loading a checkpoint
    train_within(trainer, 45.0, clock=clock)
    assert trainer.current_epoch == 12  # 4 more epochs: a fifth would pass 45 s
    assert trainer.lr_scheduler.max_steps == 12

