"""The training loop, :class:`BaseTrainer`, on Accelerate.

A task subclasses :class:`BaseTrainer`, says how to build its model and datasets, how to split a batch and
which metrics to compute; the base class runs the loop: device and mixed precision from the device choice,
AdamW, a cosine/step/plateau schedule, backbone freezing, early stopping, checkpoints (``best_model.pt``,
``last.pt``, ``checkpoint_epoch_N.pt``) that resume to the same next step, ``config.yaml``, optional wandb,
and hooks for everything else. Output: ``<weights>/<task>/<run_id>/`` (see :mod:`spine_lib.training.runs`).
"""

from __future__ import annotations

import json
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import torch
import yaml
from loguru import logger
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from spine_lib.core.phi import redact
from spine_lib.errors import ConfigError
from spine_lib.io.atomic import atomic_write_text, sweep_temporaries
from spine_lib.io.records import write_records_csv
from spine_lib.training.checkpoints import (
    CheckpointError,
    capture_rng_state,
    load_model_state,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from spine_lib.training.config import TrainingConfig
from spine_lib.training.models.base import BaseModel
from spine_lib.training.runs import (
    BEST_MODEL,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    LATEST_RUN,
    REJECT_COLUMNS,
    REJECTS_FILE,
    TrainingResult,
    epoch_checkpoint_name,
)

if TYPE_CHECKING:
    from spine_lib.core.device import DeviceChoice
    from spine_lib.training.visualization import TrainingVisualizer


def batch_size_of(targets: Any) -> int:
    """Items in a batch of targets: a tensor, or a mapping (or ``as_dict()`` object) of per-head tensors."""
    if isinstance(targets, torch.Tensor):
        return int(targets.shape[0])
    values = targets.as_dict() if hasattr(targets, "as_dict") else targets
    return int(next(iter(values.values())).shape[0])


def detached(value: Any) -> Any:
    """Predictions or targets on the CPU as float tensors (per head for mappings; class indices stay integers)."""
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu() if value.is_floating_point() else value.detach().cpu()
    values = value.as_dict() if hasattr(value, "as_dict") else value
    return {k: detached(v) for k, v in values.items()}


def concatenated(parts: list[Any]) -> Any:
    """Batches of predictions or targets joined along the first axis (per head for mappings)."""
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_levels(levels: Iterable[str] | None) -> None:
    """Raise :class:`ConfigError` for a ``--levels`` value that is not a lumbar level."""
    from spine_lib.levels import check_level

    for level in levels or ():
        try:
            check_level(level)
        except ValueError as error:
            raise ConfigError("--levels", str(error)) from None


def room_for_another_epoch(elapsed_s: float, epochs_done: int, limit_s: float) -> bool:
    """Whether one more epoch, taking the mean time of those done, would end within ``limit_s``."""
    return epochs_done <= 0 or elapsed_s + elapsed_s / epochs_done <= limit_s


def epochs_within(elapsed_s: float, epochs_done: int, limit_s: float, num_epochs: int) -> int:
    """How many epochs a run will have done when it stops: ``num_epochs``, or fewer where ``limit_s`` ends it
    first at the mean time of the ``epochs_done`` so far (what :func:`room_for_another_epoch` lets run).

    Example:
        >>> epochs_within(40.0, 2, 300.0, num_epochs=60)  # 20 s an epoch: 15 fit in 300 s
        15
        >>> epochs_within(40.0, 2, 300.0, num_epochs=10)
        10
    """
    if epochs_done <= 0 or elapsed_s <= 0:
        return num_epochs
    return max(epochs_done, min(num_epochs, math.floor(limit_s / (elapsed_s / epochs_done))))


#: checkpoint entries that only resuming a run needs (the best model's checkpoint goes without them)
RESUME_ONLY = ("optimizer_state_dict", "scheduler_state_dict", "scaler_state_dict", "rng_state")

C = TypeVar("C", bound=TrainingConfig)
M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound=Dataset)



def nothing_matches(table: str, rows: list[Any], filters: dict[str, tuple[list[str] | None, str]]) -> str:
    """Why a training split holds nothing: ``table`` has no rows, or the filters (``--flag`` -> (values asked,
    the rows' attribute it filters)) match none; the message lists what the dataset has.

    Example:
        >>> from types import SimpleNamespace as Row
        >>> nothing_matches("annotations.csv", [Row(level="L4/L5")], {"levels": (["L1/L2"], "level")})
        'no row matches --levels L1/L2; the dataset has levels L4/L5'
    """
    if not rows:
        return f"{table} has no rows: nothing to train on"
    asked = " ".join(f"--{flag.replace('_', '-')} {' '.join(values or ['(all)'])}"
                     for flag, (values, _) in filters.items())
    present = " and ".join(f"{flag.replace('_', ' ')} {', '.join(sorted({str(getattr(r, attribute)) for r in rows}))}"
                           for flag, (_, attribute) in filters.items())
    return f"no row matches {asked}; the dataset has {present}"

class BaseTrainer(ABC, Generic[C, M, D]):
    """The training loop on Accelerate; tasks fill in the abstract methods and override hooks.

    ``device_choice`` (from the torch-device resource or ``--device``) decides CPU/CUDA and mixed precision;
    ``model`` and ``datasets`` may be passed in to bypass :meth:`build_model` / :meth:`build_datasets`.
    """

    def __init__(self, config: C, *, device_choice: DeviceChoice | None = None, model: M | None = None,
                 datasets: tuple[D, D] | None = None) -> None:
        from spine_lib.core.device import select_device

        resume = read_checkpoint(config.resume_from) if config.resume_from is not None else None
        if resume is not None and config.run_id is None and config.output_path is None:
            # continue the same run folder unless told otherwise
            config = config.model_copy(update={"run_id": resume.get("run_id"),
                                               "output_path": Path(config.resume_from).parent})  # type: ignore[arg-type]
        self.config: C = config.resolved()  # type: ignore[assignment]
        assert self.config.run_id is not None and self.config.output_path is not None
        self.run_id: str = self.config.run_id
        self.output_path: Path = self.config.output_path
        self.device_choice = device_choice or select_device(self.config.device,
                                                            mixed_precision=self.config.mixed_precision)
        seed_everything(self.config.seed)
        self.model: M = model if model is not None else self.build_model()
        self.train_dataset, self.val_dataset = datasets if datasets is not None else self.build_datasets()
        if len(self.train_dataset) == 0:  # type: ignore[arg-type]
            raise ConfigError(self.config.data_path, "the training split is empty")
        #: whether a validation split scores the epochs (without one the best model is the lowest training loss)
        self.validated = len(self.val_dataset) > 0  # type: ignore[arg-type]
        #: dataset items left out (unreadable images): ``(split, image_path, reason)``
        self.rejects: list[tuple[str, str, str]] = [
            (str(getattr(dataset, "split", "")), path, reason)
            for dataset in (self.train_dataset, self.val_dataset) for path, reason in getattr(dataset, "rejects", [])]
        self.accelerator = self._make_accelerator()
        self._shuffle = torch.Generator()
        self.train_loader = self._loader(self.train_dataset, shuffle=True)
        self.val_loader = self._loader(self.val_dataset, shuffle=False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.learning_rate,
                                           weight_decay=self.config.weight_decay)
        #: epochs the cosine schedule spans: ``num_epochs``, or those that fit in ``max_train_minutes`` (estimated
        #: after every epoch), so that a time-limited run still ends at the schedule's low learning rate
        self.schedule_epochs = self.config.num_epochs
        self.scheduler = self._make_scheduler()
        self.model, self.optimizer, self.train_loader, self.val_loader = self.accelerator.prepare(
            self.model, self.optimizer, self.train_loader, self.val_loader
        )
        self.history: dict[str, list[float]] = {}
        self.current_epoch = 0
        self.global_step = 0
        self.best_score = math.inf
        self.best_epoch = -1
        #: validation loss, metrics and outputs of the best epoch of this process (None after a resume until
        #: an epoch improves): spares on_train_end a second pass over the validation split
        self.best_validation: tuple[float, dict[str, float], dict[str, Any]] | None = None
        self._bad_epochs = 0
        self._start_epoch = 0
        self._wandb: Any = None
        self._visualizer: TrainingVisualizer | None = None
        self._pending_rng: dict[str, Any] | None = None
        if resume is not None:
            self._resume(resume, Path(self.config.resume_from))  # type: ignore[arg-type]

    # --- what a task provides -------------------------------------------------------------------------------
    @abstractmethod
    def build_model(self) -> M: ...

    @abstractmethod
    def build_datasets(self) -> tuple[D, D]:
        """The training and validation datasets."""

    @abstractmethod
    def _unpack_batch(self, batch: Any) -> tuple[Any, torch.Tensor]:
        """``(inputs, targets)`` of a batch; inputs may be a tensor or a dict of keyword arguments."""

    @abstractmethod
    def _compute_metrics(self, predictions: torch.Tensor, targets: torch.Tensor,
                         extras: dict[str, list[Any]]) -> dict[str, float]:
        """Validation metrics from the whole split's predictions, targets and per-item extras."""

    def _batch_extras(self, batch: Any) -> dict[str, list[Any]]:
        """Per-item values kept during validation for the metrics (levels, image paths...)."""
        return {}

    def _flatten_outputs(self, predictions: torch.Tensor,
                         targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's predictions and targets as one row per scored item (e.g. one per point of grouped items),
        in the order of :meth:`_batch_extras`."""
        return predictions, targets

    def collate_fn(self) -> Any:
        """How items become batches (None: PyTorch's default)."""
        return None

    def _forward(self, model: nn.Module, inputs: Any) -> torch.Tensor:
        return model(**inputs) if isinstance(inputs, dict) else model(inputs)

    def _compute_loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.unwrapped_model.get_loss(predictions, targets)

    # --- hooks ----------------------------------------------------------------------------------------------
    def on_train_begin(self) -> None:
        """Before the first epoch."""

    def on_train_end(self, result: TrainingResult) -> None:
        """After the last epoch (final plots)."""

    def on_epoch_begin(self, epoch: int) -> None:
        """Start of an epoch; freezes the backbone for the first ``freeze_backbone_epochs``."""
        model = self.unwrapped_model
        frozen = epoch < self.config.freeze_backbone_epochs
        if frozen and not model.backbone_frozen:
            model.freeze_backbone()
        elif not frozen and model.backbone_frozen:
            model.unfreeze_backbone()
            logger.info("epoch {}: backbone unfrozen", epoch + 1)

    def on_epoch_end(self, epoch: int, train_loss: float, val_loss: float, metrics: dict[str, float]) -> None:
        """End of an epoch, after validation and scheduling."""

    def on_batch_begin(self, batch_idx: int, batch: Any) -> None:
        """Before a training batch."""

    def on_batch_end(self, batch_idx: int, batch: Any, loss: float) -> None:
        """After a training batch's optimizer step."""

    def on_validation_begin(self) -> None:
        """Before validation."""

    def on_validation_end(self, val_loss: float, metrics: dict[str, float],
                          outputs: dict[str, Any] | None = None) -> None:
        """After validation; ``outputs`` holds the split's predictions, targets and extras."""

    #: validation metric choosing the best checkpoint (``val_loss`` unless a config names another)
    def checkpoint_metric_name(self) -> str:
        return str(getattr(self.config, "checkpoint_metric", "val_loss"))

    def metric_direction(self, name: str) -> str:
        """``"min"`` or ``"max"``: whether a lower or a higher value of a validation metric is better. Tasks
        answer from their metrics (every metric declares its direction); only the loss is known here."""
        if name in ("val_loss", "loss"):
            return "min"
        raise ConfigError(name, "unknown checkpoint metric (the task's metrics declare which exist)")

    def get_metric_for_checkpoint(self, val_loss: float, metrics: dict[str, float]) -> float:
        """The score choosing the best model, lower is better: the declared checkpoint metric, negated when a
        higher value is better (the validation loss when the metric is the loss or was not computed)."""
        name = self.checkpoint_metric_name()
        if name in ("val_loss", "loss") or name not in metrics:
            return val_loss
        value = float(metrics[name])
        return value if self.metric_direction(name) == "min" else -value

    # --- machinery -------------------------------------------------------------------------------------------
    @property
    def unwrapped_model(self) -> M:
        return self.accelerator.unwrap_model(self.model)  # type: ignore[return-value]

    @property
    def visualizer(self) -> TrainingVisualizer:
        if self._visualizer is None:
            from spine_lib.training.visualization import TrainingVisualizer

            self._visualizer = TrainingVisualizer(self.output_path / "logs", output_mode=self.config.output_mode,
                                                  wandb_run=self._wandb)
        return self._visualizer

    @classmethod
    def model_from_config(cls, config: Any) -> BaseModel:
        """The model a config describes, without datasets (overridden by tasks)."""
        raise NotImplementedError

    def _make_accelerator(self) -> Any:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState, GradientState

        choice = self.device_choice
        if choice.is_cuda:
            torch.cuda.set_device(torch.device(choice.device))
        # Accelerate keeps process-wide singletons; a second trainer in the same process may want another device.
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        return Accelerator(cpu=not choice.is_cuda,
                           mixed_precision="fp16" if choice.is_cuda and choice.mixed_precision else "no")

    def train_sampler(self, dataset: Dataset) -> Sampler[int]:
        """The order of the training items in an epoch: a shuffle drawn from the trainer's generator (reseeded
        each epoch). A task may draw some items more often (overridden by tasks)."""
        return RandomSampler(dataset, generator=self._shuffle)  # type: ignore[arg-type]

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        sampler = self.train_sampler(dataset) if shuffle else None
        size = len(dataset)  # type: ignore[arg-type]
        # a training batch of one item breaks batch normalization: such a last batch waits for the next epoch
        lone_last = shuffle and size > 1 and size % self.config.batch_size == 1
        return DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler, shuffle=False,
                          collate_fn=self.collate_fn(),
                          num_workers=self.config.num_workers, drop_last=lone_last,
                          pin_memory=self.device_choice.is_cuda, persistent_workers=self.config.num_workers > 0)

    def _make_scheduler(self) -> Any:
        config = self.config
        if config.scheduler_type == "cosine":
            warmup = config.warmup_epochs
            floor = config.min_lr / config.learning_rate

            def factor(epoch: int) -> float:
                if epoch < warmup:
                    return (epoch + 1) / (warmup + 1)
                progress = (epoch - warmup) / max(1, self.schedule_epochs - warmup)
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        if config.scheduler_type == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=config.step_size, gamma=config.gamma)
        if config.scheduler_type == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=config.gamma, patience=max(1, config.patience // 4),
                min_lr=config.min_lr,
            )
        return None

    def _step_scheduler(self, score: float) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(score)
        else:
            self.scheduler.step()

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _to_device(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(self.accelerator.device, non_blocking=True)
        if isinstance(value, dict):
            return {k: self._to_device(v) for k, v in value.items()}
        if hasattr(value, "as_dict"):  # a batch of targets or predictions per head
            return {k: self._to_device(v) for k, v in value.as_dict().items()}
        return value

    def train_epoch(self, epoch: int) -> tuple[float, int]:
        """One pass over the training split; returns the mean loss and the number of images seen."""
        self.model.train()
        self._shuffle.manual_seed(self.config.seed * 100_003 + epoch)  # same order on resume
        total, seen = 0.0, 0
        for batch_idx, batch in enumerate(self.train_loader):
            self.on_batch_begin(batch_idx, batch)
            inputs, targets = self._unpack_batch(batch)
            inputs, targets = self._to_device(inputs), self._to_device(targets)
            with self.accelerator.autocast():
                predictions = self._forward(self.model, inputs)
                loss = self._compute_loss(predictions, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.accelerator.backward(loss)
            if self.config.grad_clip_norm is not None:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
            self.optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ConfigError(self.run_id, f"training diverged at epoch {epoch + 1} (loss {value}); "
                                               "lower --learning-rate")
            n = batch_size_of(targets)
            total += value * n
            seen += n
            self.global_step += 1
            self.on_batch_end(batch_idx, batch, value)
        return total / max(seen, 1), seen

    @torch.no_grad()
    def validate(self, loader: Iterable[Any] | None = None) -> tuple[float, dict[str, float], dict[str, Any]]:
        """Loss and metrics on the validation split (or ``loader``); also returns predictions and targets."""
        self.on_validation_begin()
        self.model.eval()
        preds: list[torch.Tensor] = []
        targs: list[torch.Tensor] = []
        extras: dict[str, list[Any]] = {}
        total, seen = 0.0, 0
        for batch in loader if loader is not None else self.val_loader:
            inputs, targets = self._unpack_batch(batch)
            inputs, targets = self._to_device(inputs), self._to_device(targets)
            with self.accelerator.autocast():
                predictions = self._forward(self.model, inputs)
                loss = self._compute_loss(predictions, targets)
            n = batch_size_of(targets)
            total += float(loss) * n
            seen += n
            preds.append(detached(predictions))
            targs.append(detached(targets))
            for key, values in self._batch_extras(batch).items():
                extras.setdefault(key, []).extend(values)
        if seen == 0:
            return math.nan, {}, {"predictions": torch.empty(0), "targets": torch.empty(0), "extras": extras}
        predictions_all, targets_all = self._flatten_outputs(concatenated(preds), concatenated(targs))
        metrics = self._compute_metrics(predictions_all, targets_all, extras)
        val_loss = total / seen
        outputs = {"predictions": predictions_all, "targets": targets_all, "extras": extras}
        self.on_validation_end(val_loss, metrics, outputs)
        return val_loss, metrics, outputs

    def train(self) -> TrainingResult:
        """Run (or resume) training; returns where the best model is and how it scored."""
        config = self.config
        self.output_path.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(self.output_path)  # what a killed run of this folder left half-written
        self.save_config()
        self._save_rejects()
        if not self.validated:
            logger.warning("run {}: the validation split is empty (val_fraction={}; {} training items): the best "
                           "model will be the epoch of lowest training loss, and {} will not point at this run",
                           self.run_id, getattr(config, "val_fraction", None), len(self.train_dataset),  # type: ignore[arg-type]
                           LATEST_RUN)
        self._init_wandb()
        logger.info("run {} on {} ({}); {} training / {} validation items; output {}", self.run_id,
                    self.device_choice.device, self.device_choice.reason, len(self.train_dataset),  # type: ignore[arg-type]
                    len(self.val_dataset), self.output_path)  # type: ignore[arg-type]
        self.on_train_begin()
        start = time.perf_counter()
        images_seen, train_seconds = 0, 0.0
        stopped_early = False
        metrics: dict[str, float] = {}
        epoch = self._start_epoch - 1
        if self._pending_rng is not None:
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        for epoch in range(self._start_epoch, config.num_epochs):
            self.current_epoch = epoch
            self.on_epoch_begin(epoch)
            lr = self.learning_rate
            t0 = time.perf_counter()
            train_loss, seen = self.train_epoch(epoch)
            train_seconds += time.perf_counter() - t0
            images_seen += seen
            val_loss, metrics, outputs = self.validate()
            score = self.get_metric_for_checkpoint(val_loss, metrics)
            if math.isnan(score):  # no validation data: judge by the training loss
                score = train_loss
            if config.max_train_minutes is not None:
                fit = self._start_epoch + epochs_within(time.perf_counter() - start, epoch + 1 - self._start_epoch,
                                                        60 * config.max_train_minutes, config.num_epochs - self._start_epoch)
                if fit != self.schedule_epochs:
                    logger.info("the learning-rate schedule now spans {} epochs (those that fit in {} min)", fit,
                                config.max_train_minutes)
                self.schedule_epochs = fit
            self._step_scheduler(score)
            self._record(epoch, train_loss, val_loss, lr, metrics)
            self.on_epoch_end(epoch, train_loss, val_loss, metrics)
            improved = score < self.best_score - config.min_delta
            if improved:
                self.best_score, self.best_epoch, self._bad_epochs = score, epoch, 0
                self.best_validation = (val_loss, metrics, outputs)
                self._save(self.output_path / BEST_MODEL, epoch, resumable=False)
            else:
                self._bad_epochs += 1
            self._save(self.output_path / LAST_CHECKPOINT, epoch)
            if config.save_every and (epoch + 1) % config.save_every == 0:
                self._save(self.output_path / epoch_checkpoint_name(epoch + 1), epoch)
            self._log_wandb(epoch, train_loss, val_loss, lr, metrics)
            logger.info("epoch {}/{}: train {:.5f} val {:.5f} {}{}", epoch + 1, config.num_epochs, train_loss,
                        val_loss, " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "/" not in k),
                        " *" if improved else "")
            if config.max_train_minutes is not None and epoch + 1 < config.num_epochs and not room_for_another_epoch(
                    time.perf_counter() - start, epoch + 1 - self._start_epoch, 60 * config.max_train_minutes):
                logger.info("time limit of {} min: stopping after epoch {} (another would end past it)",
                            config.max_train_minutes, epoch + 1)
                break
            if config.early_stopping and self._bad_epochs >= config.patience:
                stopped_early = True
                logger.info("early stopping after epoch {} (no improvement for {} epochs)", epoch + 1, config.patience)
                break
        result = TrainingResult(
            run_id=self.run_id, output_path=self.output_path, best_model_path=self.output_path / BEST_MODEL,
            best_epoch=self.best_epoch, best_score=self.best_score, epochs_run=epoch + 1,
            stopped_early=stopped_early, final_metrics=metrics, history=self.history,
            seconds=time.perf_counter() - start,
            train_images_per_second=images_seen / train_seconds if train_seconds > 0 else 0.0,
            validated=self.validated, rejects=list(self.rejects),
        )
        self.on_train_end(result)
        self._finish_wandb()
        self._publish(result)
        return result

    def _publish(self, result: TrainingResult) -> None:
        """Point ``<weights>/<task>/latest.json`` at this run when the run lives in that folder and a validation
        split chose its best model (a model chosen on the training loss is never published)."""
        task_folder = self.config.weights_path / self.config.task
        if self.output_path.parent.resolve() != task_folder.resolve() or not result.best_model_path.is_file():
            return
        if not result.validated:
            logger.warning("run {}: no validation split chose its best model, so {} still points at the previous "
                           "run; this run's model is {}", self.run_id, task_folder / LATEST_RUN,
                           result.best_model_path)
            return
        atomic_write_text(task_folder / LATEST_RUN, json.dumps({
            "run_id": self.run_id, "best_model": result.best_model_path.name,
            "best_score": result.best_score, "metrics": result.final_metrics,
        }, indent=2))
        result.published = True

    def _save_rejects(self) -> Path | None:
        """Write ``rejects.csv`` (the dataset items left out, with the reason) when there are any."""
        if not self.rejects:
            return None
        logger.warning("run {}: {} dataset items left out (unreadable images), listed in {}", self.run_id,
                       len(self.rejects), REJECTS_FILE)
        for split, path, reason in self.rejects[:5]:
            logger.debug("left out ({}): {}: {}", split, redact(path), redact(reason))
        rows = [dict(zip(REJECT_COLUMNS, reject, strict=True)) for reject in self.rejects]
        path = self.output_path / REJECTS_FILE
        write_records_csv(rows, path, columns=REJECT_COLUMNS)
        return path

    def _record(self, epoch: int, train_loss: float, val_loss: float, lr: float, metrics: dict[str, float]) -> None:
        row = {"epoch": float(epoch + 1), "train_loss": train_loss, "val_loss": val_loss, "lr": lr, **metrics}
        for key, value in row.items():
            self.history.setdefault(key, []).append(float(value))

    # --- checkpoints ---------------------------------------------------------------------------------------------
    def checkpoint_payload(self, epoch: int) -> dict[str, Any]:
        model = self.unwrapped_model
        return {
            "model_name": model.registry_name,
            "model_kwargs": model.architecture_kwargs(),
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
            "scheduler_state_dict": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler_state_dict": self.accelerator.scaler.state_dict() if self.accelerator.scaler else None,
            "rng_state": capture_rng_state(),
            "epoch": epoch,
            "global_step": self.global_step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self._bad_epochs,
            "history": {k: list(v) for k, v in self.history.items()},
            "run_id": self.run_id,
            "task": self.config.task,
            "config": json.loads(self.config.model_dump_json()),
        }

    def _save(self, path: Path, epoch: int, resumable: bool = True) -> None:
        """Write a checkpoint; ``resumable=False`` (the best model, for inference) leaves out the optimizer,
        scheduler, scaler and RNG states that only resuming needs (a ResNet50's Adam state is twice its weights)."""
        payload = self.checkpoint_payload(epoch)
        if not resumable:
            for key in RESUME_ONLY:
                payload.pop(key)
        save_checkpoint(payload, path)

    def _resume(self, payload: dict[str, Any], path: Path) -> None:
        for key in ("optimizer_state_dict", "rng_state", "epoch"):
            if key not in payload:
                raise CheckpointError(path, f"cannot resume from it (no {key}; is it a best-model export?)")
        load_model_state(self.unwrapped_model, payload, path)
        try:
            self.optimizer.load_state_dict(payload["optimizer_state_dict"])
            if self.scheduler is not None and payload.get("scheduler_state_dict") is not None:
                self.scheduler.load_state_dict(payload["scheduler_state_dict"])
            if self.accelerator.scaler is not None and payload.get("scaler_state_dict"):
                self.accelerator.scaler.load_state_dict(payload["scaler_state_dict"])
        except (ValueError, KeyError, RuntimeError) as error:
            raise CheckpointError(path, f"optimizer/scheduler state does not fit this run ({error})") from error
        self._start_epoch = int(payload["epoch"]) + 1
        self.global_step = int(payload.get("global_step", 0))
        self.best_score = float(payload.get("best_score", math.inf))
        self.best_epoch = int(payload.get("best_epoch", -1))
        self._bad_epochs = int(payload.get("bad_epochs", 0))
        self.history = {k: list(v) for k, v in payload.get("history", {}).items()}
        if self._start_epoch < self.config.freeze_backbone_epochs:
            self.unwrapped_model.freeze_backbone()
        self._pending_rng = payload["rng_state"]  # restored right before the next epoch starts
        logger.info("resumed run {} from {} after epoch {}", self.run_id, path, self._start_epoch)

    def save_config(self) -> Path:
        """Write ``config.yaml`` (the resolved config: run id and output path filled in)."""
        data = json.loads(self.config.model_dump_json())
        data["device_choice"] = {"device": self.device_choice.device,
                                 "mixed_precision": self.device_choice.mixed_precision}
        return atomic_write_text(self.output_path / CONFIG_FILE, yaml.safe_dump(data, sort_keys=False))

    # --- wandb ---------------------------------------------------------------------------------------------------
    def _init_wandb(self) -> None:
        config = self.config
        if not config.use_wandb or self._wandb is not None:
            return
        import wandb

        self._wandb = wandb.init(
            project=config.wandb_project, name=config.wandb_run_name or self.run_id, id=self.run_id,
            tags=list(config.wandb_tags), config=json.loads(config.model_dump_json()), mode=config.wandb_mode,
            dir=str(self.output_path), resume="allow",
        )
        if self._visualizer is not None:
            self._visualizer.wandb_run = self._wandb

    def _log_wandb(self, epoch: int, train_loss: float, val_loss: float, lr: float, metrics: dict[str, float]) -> None:
        if self._wandb is not None:
            self._wandb.log({"epoch": epoch + 1, "train/loss": train_loss, "val/loss": val_loss, "lr": lr,
                             **{f"val/{k}": v for k, v in metrics.items()}}, step=epoch + 1)

    def _finish_wandb(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
