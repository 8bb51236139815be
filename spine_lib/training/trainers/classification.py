"""Disc grading: train the classifier on the IVD crops (``spine-vision train classification``, ``classifier_model``).

``train_classification(config)`` trains a registered grading model on :class:`ClassificationDataset` (T2/T1/T2
crops of each disc, patients never in two splits), with a loss per head (label-smoothed cross-entropy for Pfirrmann
and Modic, BCE for the binary heads), per-head weights and, by default, class weights from the training split (rare
grades weigh more). The best checkpoint maximizes the declared ``checkpoint_metric`` on the validation split; then
each binary output's decision threshold is set where that model's validation macro-F1 is highest
(``tune_thresholds``; kept in the checkpoint). Its metrics come with each head's majority-class baseline, and the
run writes curves and confusion matrices.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from loguru import logger
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler

from spine_lib.errors import ConfigError, InputPathError
from spine_lib.formats.classification import ANNOTATIONS_FILE
from spine_lib.training.config import ClassificationConfig
from spine_lib.training.grading import GRADING_HEADS, HEADS, MTLTargets
from spine_lib.training.metrics import macro_f1
from spine_lib.training.registry import ModelRegistry, register_trainer
from spine_lib.training.runs import BEST_MODEL, TrainingResult
from spine_lib.training.trainer import BaseTrainer, check_levels, nothing_matches

if TYPE_CHECKING:
    from spine_lib.core.device import DeviceChoice
    from spine_lib.training.metrics import MTLClassificationMetrics

#: class weights are capped at this multiple of the mean weight (a grade seen once must not dominate)
MAX_CLASS_WEIGHT = 10.0
#: a tuned decision threshold stays within this many logits of 0 (a few validation discs must not push it far)
MAX_THRESHOLD_LOGIT = 4.0
#: an output's threshold is tuned only when validation holds at least this many positives and negatives: a
#: threshold fitted to one or two rare positives (spondylolisthesis in a small split) is noise
MIN_TUNING_CASES = 5


def macro_f1_threshold(logits: np.ndarray, truth: np.ndarray, limit: float = MAX_THRESHOLD_LOGIT,
                       min_cases: int = MIN_TUNING_CASES) -> float:
    """The logit threshold (positive when ``logit >= t``) of highest macro-F1 on ``(logits, truth)``; among
    equals the one nearest 0, and 0 when ``truth`` holds fewer than ``min_cases`` positives or negatives.
    Candidates: 0 and the midpoints between neighbouring logits, within ``[-limit, limit]``.

    Example:
        >>> macro_f1_threshold(np.array([-3.0, -2.0, -1.0, -0.5, 2.0]), np.array([0, 0, 1, 1, 1]), min_cases=2)
        -1.5
    """
    logits, truth = np.asarray(logits, dtype=np.float64).reshape(-1), np.asarray(truth).reshape(-1).astype(int)
    positives = int(truth.sum())
    if logits.size == 0 or min(positives, truth.size - positives) < max(1, min_cases):
        return 0.0
    values = np.unique(logits)
    candidates = np.concatenate([[0.0], (values[1:] + values[:-1]) / 2])
    candidates = candidates[np.abs(candidates) <= limit]
    scores = np.array([macro_f1(truth, (logits >= t).astype(int)) for t in candidates])
    best = candidates[np.isclose(scores, scores.max())]
    return float(best[np.argmin(np.abs(best))])


def inverse_frequency(counts: list[int]) -> list[float]:
    """Class weights proportional to 1 / frequency, normalized to mean 1 over the classes seen, capped.

    Example:
        >>> [round(w, 3) for w in inverse_frequency([30, 10, 0])]
        [0.5, 1.5, 1.0]
    """
    seen = [c for c in counts if c > 0]
    if not seen:
        return [1.0] * len(counts)
    raw = [1.0 / c if c > 0 else 0.0 for c in counts]
    mean = sum(raw) / len(seen)
    return [min(MAX_CLASS_WEIGHT, r / mean) if r > 0 else 1.0 for r in raw]


@register_trainer("classification", config_cls=ClassificationConfig, description="IVD grading (multi-task)")
class ClassificationTrainer(BaseTrainer[ClassificationConfig, Any, Dataset]):
    """Trains a grading model on an IVD crops dataset; metrics per head against majority baselines."""

    @classmethod
    def model_from_config(cls, config: Any) -> Any:
        if config.model_name == "convnext_classifier":
            classes = config.num_classes or HEADS[config.target].classes
            return ModelRegistry.create("convnext_classifier", variant=config.model_variant, num_classes=classes,
                                        pretrained=config.pretrained, weights_file=config.weights_file,
                                        dropout=config.dropout)
        return ModelRegistry.create(config.model_name, backbone=config.backbone, pretrained=config.pretrained,
                                    weights_file=config.weights_file, dropout=config.dropout)

    @property
    def multitask(self) -> bool:
        return self.config.model_name != "convnext_classifier"

    def build_model(self) -> Any:
        return self.model_from_config(self.config)

    def make_dataset(self, split: str, augment: bool = False) -> Dataset:
        from spine_lib.training.datasets.classification import ClassificationDataset

        config = self.config
        return ClassificationDataset(config.data_path, split=split, levels=config.levels,  # type: ignore[arg-type]
                                     output_size=tuple(config.output_size), augment=augment,  # type: ignore[arg-type]
                                     val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                                     seed=config.seed, sources=config.sources)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        """The training and validation splits; a dataset folder that is missing, without annotations or left empty
        by the filters raises a clear error before anything is written."""
        check_levels(self.config.levels)
        data = Path(self.config.data_path)
        if not data.is_dir():
            raise InputPathError(data, "dataset folder does not exist: build the crops with `spine-vision dataset "
                                       "classification` first")
        if not (data / ANNOTATIONS_FILE).is_file():
            raise ConfigError(data, "no annotations.csv: build the crops with `spine-vision dataset "
                                    "classification` first")
        train: Any = self.make_dataset("train", augment=self.config.augment)
        if len(train) == 0:
            raise ConfigError(data, self.why_empty())
        self._class_weights, self._pos_weights = self.balance(train)
        self._baseline = train.targets_table()
        return train, self.make_dataset("val")

    def why_empty(self) -> str:
        """Why the training split holds nothing: an empty annotations table, or filters that match no disc."""
        from spine_lib.training.datasets.classification import read_discs

        return nothing_matches(ANNOTATIONS_FILE, read_discs(Path(self.config.data_path)),
                               {"levels": (self.config.levels, "level"), "sources": (self.config.sources, "source")})

    def balance(self, train: Any) -> tuple[dict[str, torch.Tensor] | None, dict[str, torch.Tensor] | None]:
        """Per-head class weights (multiclass) and positive weights (binary) from the training split's counts."""
        if self.config.class_balance != "weights":
            return None, None
        counts = train.class_counts()
        class_weights: dict[str, torch.Tensor] = {}
        pos_weights: dict[str, torch.Tensor] = {}
        for head in GRADING_HEADS:
            if head.kind == "multiclass":
                class_weights[head.name] = torch.tensor(inverse_frequency(list(counts[head.columns[0]])))
            else:
                ratios = []
                for column in head.columns:
                    negatives, positives = counts[column]
                    ratios.append(min(MAX_CLASS_WEIGHT, negatives / positives) if positives else 1.0)
                pos_weights[head.name] = torch.tensor(ratios)
        return class_weights, pos_weights

    def train_sampler(self, dataset: Dataset) -> Sampler[int]:
        """``class_balance="sampler"``: discs drawn with replacement by :meth:`ClassificationDataset.sample_weights`
        (as many draws per epoch as discs); otherwise the plain shuffle."""
        weights = getattr(dataset, "sample_weights", None)
        if self.config.class_balance != "sampler" or weights is None:
            return super().train_sampler(dataset)
        return WeightedRandomSampler(weights(MAX_CLASS_WEIGHT), num_samples=len(dataset),  # type: ignore[arg-type]
                                     replacement=True, generator=self._shuffle)

    def collate_fn(self) -> Any:
        from spine_lib.training.datasets.classification import ClassificationCollator

        return ClassificationCollator()

    def _unpack_batch(self, batch: Any) -> tuple[Any, Any]:
        targets = batch["targets"]
        if not self.multitask:
            return batch["image"], getattr(targets, self.config.target)
        return batch["image"], targets

    def _batch_extras(self, batch: Any) -> dict[str, list[Any]]:
        return {"level": list(batch["level"]), "patient_id": list(batch["patient_id"])}

    def _compute_loss(self, predictions: Any, targets: Any) -> torch.Tensor:
        model = self.unwrapped_model
        if not self.multitask:
            return model.get_loss(predictions, targets, label_smoothing=self.config.label_smoothing)
        device = self.accelerator.device

        def on_device(weights: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
            return {k: v.to(device) for k, v in weights.items()} if weights else None

        if isinstance(targets, dict):
            targets = MTLTargets(**targets)
        return model.get_loss(predictions, targets, head_weights=self.config.head_weights,
                              label_smoothing=self.config.label_smoothing,
                              class_weights=on_device(getattr(self, "_class_weights", None)),
                              pos_weights=on_device(getattr(self, "_pos_weights", None)))

    @property
    def metrics(self) -> MTLClassificationMetrics:
        from spine_lib.training.metrics import MTLClassificationMetrics

        return MTLClassificationMetrics()

    def single_task_dicts(self, predictions: Any, targets: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The single-task model's outputs as the one head it predicts (for the multi-task metrics)."""
        return {self.config.target: predictions}, {self.config.target: targets}

    def _compute_metrics(self, predictions: Any, targets: Any, extras: dict[str, list[Any]]) -> dict[str, float]:
        if not self.multitask:
            predictions, targets = self.single_task_dicts(predictions, targets)
        baseline = getattr(self, "_baseline", None)
        return self.metrics.compute(predictions, targets, extras.get("level"),
                                    baseline_targets=baseline.as_dict() if baseline is not None else None).flat()

    def metric_direction(self, name: str) -> str:
        if name in ("val_loss", "loss"):
            return "min"
        return self.metrics.direction(name)

    def on_train_begin(self) -> None:
        self.metric_direction(self.checkpoint_metric_name())  # an unknown checkpoint metric fails before training
        model = self.unwrapped_model
        logger.info("{}: {:,} parameters; {} training / {} validation discs", model.name, model.count_parameters(),
                    len(self.train_dataset), len(self.val_dataset))  # type: ignore[arg-type]

    def on_train_end(self, result: TrainingResult) -> None:
        """Reload the best weights, keep their validation scores, write curves and confusion matrices."""
        from spine_lib.training.checkpoints import load_model_state, read_checkpoint

        if result.best_model_path.is_file() and self.best_epoch != result.epochs_run - 1:
            load_model_state(self.unwrapped_model, read_checkpoint(result.best_model_path), result.best_model_path)
        val_loss, metrics, outputs = self.best_validation or self.validate()
        if (self.multitask and self.config.tune_thresholds and metrics and result.best_model_path.is_file()
                and hasattr(self.unwrapped_model, "set_decision_thresholds")):
            self.tune_thresholds(outputs, result.best_model_path)
            val_loss, metrics, outputs = self.validate()
        if metrics:
            result.final_metrics = {"val_loss": val_loss, **metrics}
        result.plots["training_curves"] = self.visualizer.plot_training_curves(self.history)
        if self.multitask:
            result.plots["head_curves"] = self.visualizer.plot_head_curves(self.history)
        predictions, targets = outputs["predictions"], outputs["targets"]
        if isinstance(predictions, dict) or (isinstance(predictions, torch.Tensor) and len(predictions)):
            if not self.multitask:
                predictions, targets = self.single_task_dicts(predictions, targets)
            matrices = self.metrics.confusion_matrices(predictions, targets)
            result.plots.update(self.visualizer.plot_confusion_matrices(matrices))

    def tune_thresholds(self, outputs: dict[str, Any], best_model: Path) -> dict[str, float]:
        """Each binary output's decision threshold set where the best model's validation macro-F1 is highest
        (rare positives, as spondylolisthesis, are often ranked well but fall short of probability 0.5), and
        stored with the best checkpoint's weights; returns the thresholds (logits)."""
        from spine_lib.training.checkpoints import read_checkpoint, save_checkpoint

        model = self.unwrapped_model
        predictions, targets = outputs["predictions"], outputs["targets"]
        logits = predictions.as_dict() if hasattr(predictions, "as_dict") else predictions
        truth = targets.as_dict() if hasattr(targets, "as_dict") else targets
        thresholds = dict(model.decision_thresholds())
        for head in GRADING_HEADS:
            if head.kind != "binary":
                continue
            scores = logits[head.name].detach().float().cpu().numpy().reshape(-1, head.outputs)
            values = truth[head.name].detach().cpu().numpy().reshape(-1, head.outputs)
            for i, column in enumerate(head.columns):
                thresholds[column] += macro_f1_threshold(scores[:, i], values[:, i])
        model.set_decision_thresholds(thresholds)
        payload = read_checkpoint(best_model)
        payload["model_state_dict"] = model.state_dict()
        save_checkpoint(payload, best_model)
        logger.info("decision thresholds (logits) of the binary outputs, tuned on validation: {}",
                    ", ".join(f"{k} {v:+.2f}" for k, v in thresholds.items()))
        return thresholds

    def evaluate(self, split: str | None = None, checkpoint: Path | None = None) -> dict[str, float]:
        """Metrics of the best (or given) checkpoint on ``split`` (default: test if held out, else val)."""
        from spine_lib.training.checkpoints import load_model_state, read_checkpoint

        split = split or ("test" if self.config.test_fraction > 0 else "val")
        path = checkpoint or self.output_path / BEST_MODEL
        load_model_state(self.unwrapped_model, read_checkpoint(path), path)
        dataset = self.val_dataset if split == "val" else self.make_dataset(split)
        loader = DataLoader(dataset, batch_size=self.config.batch_size, shuffle=False,
                            num_workers=self.config.num_workers, collate_fn=self.collate_fn())
        val_loss, metrics, _ = self.validate(loader)
        return {"loss": val_loss, **metrics}


def train_classification(config: ClassificationConfig, device_choice: DeviceChoice | None = None) -> TrainingResult:
    """Train (or resume) a grading model; the result's ``final_metrics`` score the best checkpoint."""
    return ClassificationTrainer(config, device_choice=device_choice).train()
