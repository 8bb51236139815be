"""Validation metrics. :class:`LocalizationMetrics`: PCK at fractions of the image size, pixel errors, per level.
:class:`MTLClassificationMetrics`: the disc-grading heads against their majority-class baseline.

Every metric computer says which way each of its metrics improves (:meth:`BaseMetrics.direction`), so a
checkpoint metric can be checked by name before training starts.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from spine_lib.errors import ConfigError
from spine_lib.levels import IDX_TO_LEVEL
from spine_lib.training.grading import GRADING_HEADS, GradingHead
from spine_lib.training.registry import register_metrics

#: Which way a metric improves: ``"max"`` (higher is better) or ``"min"``.
Direction = Literal["max", "min"]


@dataclass
class MetricResult:
    """Overall metrics, the same per group (level), and the per-item errors they came from."""

    metrics: dict[str, float]
    per_group: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def flat(self) -> dict[str, float]:
        """``metrics`` plus ``'<group>/<metric>'`` entries."""
        out = dict(self.metrics)
        for group, values in self.per_group.items():
            out.update({f"{group}/{k}": v for k, v in values.items()})
        return out


def per_group(flat: dict[str, float], metric: str) -> dict[str, float]:
    """One metric's value per group from :meth:`MetricResult.flat` keys, whose groups may hold a ``/`` themselves
    (``{'L4/L5/pck@0.05': 0.9}`` -> ``{'L4/L5': 0.9}``).

    Example:
        >>> per_group({"pck@0.05": 0.8, "L4/L5/pck@0.05": 0.9, "L5/S1/pck@0.05": 0.7, "L5/S1/count": 3.0}, "pck@0.05")
        {'L4/L5': 0.9, 'L5/S1': 0.7}
    """
    suffix = "/" + metric
    return {key[: -len(suffix)]: value for key, value in flat.items() if key.endswith(suffix)}


class BaseMetrics(ABC):
    """Computes a :class:`MetricResult` from predictions and targets."""

    @abstractmethod
    def compute(self, predictions: Any, targets: Any, groups: Sequence[Any] | None = None) -> MetricResult: ...

    def direction(self, name: str) -> Direction:
        """Which way metric ``name`` improves; ConfigError when it cannot choose a checkpoint."""
        raise ConfigError(name, f"{type(self).__name__} declares no metric directions")


def _no_direction(name: str, owner: str, choices: Iterable[str], known: bool) -> ConfigError:
    """The error for a metric that cannot choose a checkpoint, naming those that can."""
    cause = "is a count, not a score" if known else f"is not a metric of {owner}"
    return ConfigError(name, f"{cause}; choose one of: {', '.join(choices)}")


def _numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


_NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?"
_LOCALIZATION_MAX = re.compile(rf"pck@{_NUMBER}|within_{_NUMBER}px")


@register_metrics("localization", task="localization")
class LocalizationMetrics(BaseMetrics):
    """Point localization quality.

    Predictions and targets are relative ``(x, y)`` in [0, 1]. An item is correct at PCK threshold ``t`` when
    its error, as a fraction of the image size (dx / width, dy / height), is below ``t``; pixel errors are
    measured at ``image_size`` (H, W). ``within_Npx`` is the share of items closer than N pixels.
    """

    def __init__(self, pck_thresholds: Sequence[float] = (0.02, 0.05, 0.10), image_size: tuple[int, int] = (224, 224),
                 pixel_thresholds: Sequence[float] = (5.0,)) -> None:
        self.pck_thresholds = tuple(pck_thresholds)
        self.image_size = image_size
        self.pixel_thresholds = tuple(pixel_thresholds)

    def errors(self, predictions: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-item errors: relative (fraction of image size) and in pixels."""
        diff = _numpy(predictions).reshape(-1, 2) - _numpy(targets).reshape(-1, 2)
        height, width = self.image_size
        relative = np.hypot(diff[:, 0], diff[:, 1])
        pixels = np.hypot(diff[:, 0] * width, diff[:, 1] * height)
        return relative, pixels

    def _summary(self, relative: np.ndarray, pixels: np.ndarray) -> dict[str, float]:
        if relative.size == 0:
            return {}
        out = {f"pck@{t:.2f}": float(np.mean(relative < t)) for t in self.pck_thresholds}
        out.update({f"within_{p:g}px": float(np.mean(pixels < p)) for p in self.pixel_thresholds})
        out["mean_error_px"] = float(pixels.mean())
        out["median_error_px"] = float(np.median(pixels))
        out["count"] = float(relative.size)
        return out

    def compute(self, predictions: Any, targets: Any, groups: Sequence[Any] | None = None) -> MetricResult:
        """Metrics over all items and per level (``groups``: level indices or names, one per item)."""
        relative, pixels = self.errors(predictions, targets)
        per_group: dict[str, dict[str, float]] = {}
        if groups is not None:
            names = [IDX_TO_LEVEL.get(int(g), str(g)) if isinstance(g, int | np.integer) or
                     (isinstance(g, torch.Tensor) and g.ndim == 0) else str(g) for g in groups]
            for name in sorted(set(names)):
                mask = np.array([n == name for n in names])
                per_group[name] = self._summary(relative[mask], pixels[mask])
        return MetricResult(self._summary(relative, pixels), per_group, pixels)

    def direction(self, name: str) -> Direction:
        """``pck@*`` and ``within_*px``: max; ``mean_error_px``, ``median_error_px``: min; ``'<level>/<metric>'``
        follows its metric. ``count`` or an unknown name: ConfigError naming the valid choices.

        Example:
            >>> metrics = LocalizationMetrics()
            >>> metrics.direction("pck@0.05"), metrics.direction("L4/L5/mean_error_px")
            ('max', 'min')
        """
        metric = name.rsplit("/", 1)[-1]
        if _LOCALIZATION_MAX.fullmatch(metric):
            return "max"
        if metric in ("mean_error_px", "median_error_px"):
            return "min"
        choices = [*(f"pck@{t:.2f}" for t in self.pck_thresholds), *(f"within_{p:g}px" for p in self.pixel_thresholds),
                   "mean_error_px", "median_error_px", "pck@<fraction>", "within_<n>px", "'<level>/<metric>'"]
        raise _no_direction(name, "localization", choices, metric == "count")

    @staticmethod
    def mean_position_baseline(train_targets: Any, val_targets: Any, train_groups: Sequence[int] | None = None,
                               val_groups: Sequence[int] | None = None) -> np.ndarray:
        """Predictions of the trivial model that answers the mean training position (per level when given)."""
        train = _numpy(train_targets).reshape(-1, 2)
        val_count = _numpy(val_targets).reshape(-1, 2).shape[0]
        if train_groups is None or val_groups is None:
            return np.repeat(train.mean(axis=0, keepdims=True), val_count, axis=0)
        groups = np.asarray([int(g) for g in train_groups])
        means = {int(g): train[groups == g].mean(axis=0) for g in np.unique(groups)}
        overall = train.mean(axis=0)
        return np.stack([means.get(int(g), overall) for g in val_groups])


# --- classification ------------------------------------------------------------------------------------------
Weights = Literal["quadratic", "linear"] | None


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``(classes, classes)`` counts, rows = true class, columns = predicted class.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
        [[1, 0], [1, 1]]
    """
    index = np.asarray(true, dtype=np.int64) * classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def cohen_kappa(confusion: np.ndarray, weights: Weights = "quadratic") -> float:
    """Cohen's kappa of a confusion matrix: ``1 - sum(w * observed) / sum(w * expected)`` with disagreement
    weights ``w_ij = (i - j)**2`` (quadratic), ``|i - j|`` (linear) or ``i != j`` (None); ``expected`` is the
    outer product of the row and column totals over N. NaN when no disagreement is expected (both raters answer
    one and the same class).

    Example:
        >>> cohen_kappa(np.array([[2, 0], [0, 2]])), cohen_kappa(np.array([[0, 2], [0, 2]]))
        (1.0, 0.0)
    """
    observed = np.asarray(confusion, dtype=np.float64)
    total = observed.sum()
    if total == 0:
        return float("nan")
    index = np.arange(observed.shape[0])
    distance = np.abs(index[:, None] - index[None, :]).astype(np.float64)
    weight = distance**2 if weights == "quadratic" else distance if weights == "linear" else (distance > 0) * 1.0
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    chance = float((weight * expected).sum())
    return 1.0 - float((weight * observed).sum()) / chance if chance > 0 else float("nan")


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U, tied scores share their mean rank): the share of
    (positive, negative) pairs the scores order correctly, ties counting one half. NaN unless both classes occur.

    Example:
        >>> auroc(np.array([0.9, 0.4, 0.4, 0.1]), np.array([1, 1, 0, 0]))
        0.875
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(labels).ravel() == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]  # mean of ranks start+1 .. end of each tie group
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _class_scores(confusion: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the classes in the targets) and macro F1 (over the classes
    in the targets or the predictions) of a confusion matrix."""
    hits = np.diag(confusion).astype(np.float64)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    present, seen = actual > 0, (actual + predicted) > 0
    return {
        "accuracy": float(hits.sum() / confusion.sum()),
        "balanced_accuracy": float(np.mean(hits[present] / actual[present])),
        "macro_f1": float(np.mean(2 * hits[seen] / (actual[seen] + predicted[seen]))),
    }


def _classes_present(head: GradingHead, true: np.ndarray) -> list[int]:
    """How many classes the targets hold: one count for a multiclass head, one per output of a binary head."""
    if head.kind == "multiclass":
        return [len(np.unique(true))]
    return [len(np.unique(true[:, i])) for i in range(true.shape[1])]


def macro_f1(true: np.ndarray, predicted: np.ndarray, classes: int = 2) -> float:
    """Macro F1 of class predictions, as :class:`MTLClassificationMetrics` reports it (over the classes in the
    targets or the predictions).

    Example:
        >>> macro_f1(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 0, 0, 0]))
        0.375
    """
    return _class_scores(confusion_matrix(true, predicted, classes))["macro_f1"]


def _head_values(values: Any, heads: Sequence[GradingHead], what: str) -> dict[str, np.ndarray]:
    """One array per head from a mapping (or an object with ``as_dict()``, e.g. ``MTLTargets``)."""
    mapping = values.as_dict() if hasattr(values, "as_dict") else values
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{what} must map head names to tensors, got {type(values).__name__}")
    missing = [head.name for head in heads if head.name not in mapping]
    if missing:
        raise ValueError(f"{what} lack the heads {missing}")
    return {head.name: _numpy(mapping[head.name]) for head in heads}


def _group_names(groups: Sequence[Any]) -> list[str]:
    """Level names of per-item groups: level indices become ``L1/L2``..., anything else its string."""
    return [IDX_TO_LEVEL.get(int(g), str(g)) if isinstance(g, int | np.integer) or
            (isinstance(g, torch.Tensor) and g.ndim == 0) else str(g) for g in groups]


@register_metrics("mtl_classification", task="classification", aliases=["classification"])
class MTLClassificationMetrics(BaseMetrics):
    """Quality of the multi-task disc-grading classifier, each score next to the majority-class baseline's.

    Predictions map head names to logits (``(N, classes)`` for multiclass heads, argmax; ``(N, k)`` for binary
    ones, positive when the sigmoid is at least 0.5, i.e. logit >= 0); targets map head names to ``(N,)`` class
    indices or ``(N, k)`` 0/1 values (``MTLTargets`` works for both). Per multiclass head ``h``: ``h/accuracy``,
    ``h/balanced_accuracy``, ``h/macro_f1`` (and for the ordinal heads, Pfirrmann, ``h/qwk`` and
    ``h/within_one``); per binary output ``c`` (``disc_herniation``...) the same three plus ``c/auroc``. Each has
    a ``h/baseline_<metric>``: the scores of always answering the most frequent class (of ``baseline_targets``
    when given, else of the evaluated targets; ties go to the lower class). ``mean_balanced_accuracy`` averages
    the balanced accuracy of every head and output (``baseline_mean_balanced_accuracy`` the baseline's),
    ``h/classes_present`` counts the classes the evaluated targets hold (with one, no score can beat the baseline:
    the head is not assessable on that split), and ``count`` is N. Per level: each multiclass head's accuracy,
    each binary output's balanced accuracy, count.
    """

    #: Multiclass heads whose classes are ordered grades: they also get the quadratic-weighted kappa and within-one.
    ordinal_heads: tuple[str, ...] = ("pfirrmann",)

    def __init__(self, heads: Sequence[GradingHead] = GRADING_HEADS) -> None:
        self.heads = tuple(heads)
        overall: list[str] = []
        per_level: list[str] = []
        for head in self.heads:
            if head.kind == "multiclass":
                names = ["accuracy", "balanced_accuracy", "macro_f1"]
                names += ["qwk", "within_one"] if head.name in self.ordinal_heads else []
                overall += [f"{head.name}/{p}{m}" for p in ("", "baseline_") for m in names]
                per_level.append(f"{head.name}/accuracy")
            else:
                names = ["accuracy", "balanced_accuracy", "macro_f1", "auroc"]
                overall += [f"{c}/{p}{m}" for c in head.columns for p in ("", "baseline_") for m in names]
                per_level += [f"{c}/balanced_accuracy" for c in head.columns]
        self._overall: tuple[str, ...] = (*overall, "mean_balanced_accuracy", "baseline_mean_balanced_accuracy")
        self._per_level: tuple[str, ...] = tuple(per_level)

    def direction(self, name: str) -> Direction:
        """Every score is ``"max"``, per level (``'L4/L5/pfirrmann/accuracy'``) too; ``count`` or an unknown
        name: ConfigError naming the valid choices.

        Example:
            >>> metrics = MTLClassificationMetrics()
            >>> metrics.direction("pfirrmann/qwk"), metrics.direction("L4/L5/disc_bulging/balanced_accuracy")
            ('max', 'max')
        """
        if name in self._overall or any(name.endswith("/" + metric) for metric in self._per_level):
            return "max"
        choices = [*self._overall, *(f"'<level>/{metric}'" for metric in self._per_level)]
        raise _no_direction(name, "mtl_classification", choices,
                            name == "count" or name.endswith(("/count", "/classes_present")))

    def _arrays(self, predictions: Any, targets: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Logits ``(N, outputs)`` and integer targets (``(N,)`` classes or ``(N, k)`` 0/1) per head, checked."""
        logits = _head_values(predictions, self.heads, "predictions")
        raw = _head_values(targets, self.heads, "targets")
        count: int | None = None
        truth: dict[str, np.ndarray] = {}
        for head in self.heads:
            values, scores = np.rint(raw[head.name]).astype(np.int64), logits[head.name]
            if head.kind == "binary" and head.outputs == 1:  # (N,) is read as (N, 1)
                values = values.reshape(-1, 1) if values.ndim == 1 else values
                scores = scores.reshape(-1, 1) if scores.ndim == 1 else scores
            count = values.shape[0] if count is None else count
            wanted = (count,) if head.kind == "multiclass" else (count, head.outputs)
            if values.shape != wanted or scores.shape != (count, head.outputs):
                raise ValueError(f"{head.name}: logits {scores.shape} and targets {values.shape} do not fit {count} "
                                 f"items of {head.outputs} outputs")
            limit = head.classes if head.kind == "multiclass" else 2
            if values.size and (values.min() < 0 or values.max() >= limit):
                raise ValueError(f"{head.name}: targets outside 0..{limit - 1}")
            logits[head.name], truth[head.name] = scores, values
        return logits, truth

    def _majorities(self, baseline_targets: Any, truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The most frequent class per head (multiclass: one value; binary: one per output)."""
        if baseline_targets is None:
            reference = truth
        else:
            reference = {k: np.rint(v).astype(np.int64) for k, v in
                         _head_values(baseline_targets, self.heads, "baseline targets").items()}
        out: dict[str, np.ndarray] = {}
        for head in self.heads:
            values = reference[head.name]
            if values.size == 0:
                raise ValueError(f"{head.name}: no baseline targets to take the majority class from")
            if head.kind == "multiclass":
                out[head.name] = np.array([np.bincount(values.reshape(-1), minlength=head.classes).argmax()])
            else:
                columns = values.reshape(values.shape[0], -1)
                out[head.name] = (2 * columns.sum(axis=0) > columns.shape[0]).astype(np.int64)
        return out

    def confusion_matrices(self, predictions: Any, targets: Any) -> dict[str, np.ndarray]:
        """Per multiclass head a ``(classes, classes)`` matrix, per binary output (by column name) a ``(2, 2)``
        one; rows = true class, columns = predicted class."""
        logits, truth = self._arrays(predictions, targets)
        out: dict[str, np.ndarray] = {}
        for head in self.heads:
            if head.kind == "multiclass":
                out[head.name] = confusion_matrix(truth[head.name], logits[head.name].argmax(axis=1), head.classes)
            else:
                for i, column in enumerate(head.columns):
                    out[column] = confusion_matrix(truth[head.name][:, i], logits[head.name][:, i] >= 0, 2)
        return out

    def _multiclass(self, head: GradingHead, true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        confusion = confusion_matrix(true, predicted, head.classes)
        out = _class_scores(confusion)
        if head.name in self.ordinal_heads:
            out["qwk"] = cohen_kappa(confusion, "quadratic")
            out["within_one"] = float(np.mean(np.abs(predicted - true) <= 1))
        return out

    @staticmethod
    def _binary(true: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        return {**_class_scores(confusion_matrix(true, logits >= 0, 2)), "auroc": auroc(logits, true)}

    def _summary(self, logits: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 majorities: dict[str, np.ndarray]) -> dict[str, float]:
        out: dict[str, float] = {}
        balanced: list[float] = []
        baseline_balanced: list[float] = []
        for head in self.heads:
            true = truth[head.name]
            if head.kind == "multiclass":
                scores = {"": self._multiclass(head, true, logits[head.name].argmax(axis=1)),
                          "baseline_": self._multiclass(head, true, np.full_like(true, majorities[head.name][0]))}
                named = [(head.name, scores)]
            else:
                named = []
                for i, column in enumerate(head.columns):
                    constant = np.full(true.shape[0], float(majorities[head.name][i]))
                    named.append((column, {"": self._binary(true[:, i], logits[head.name][:, i]),
                                           "baseline_": self._binary(true[:, i], 2 * constant - 1)}))
            for (name, scores), present in zip(named, _classes_present(head, true), strict=True):
                for prefix, values in scores.items():
                    out.update({f"{name}/{prefix}{metric}": value for metric, value in values.items()})
                out[f"{name}/classes_present"] = float(present)
                balanced.append(scores[""]["balanced_accuracy"])
                baseline_balanced.append(scores["baseline_"]["balanced_accuracy"])
        out["mean_balanced_accuracy"] = float(np.mean(balanced))
        out["baseline_mean_balanced_accuracy"] = float(np.mean(baseline_balanced))
        out["count"] = float(next(iter(truth.values())).shape[0])
        return out

    def _level_summary(self, logits: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, float]:
        out: dict[str, float] = {}
        for head in self.heads:
            true = truth[head.name]
            if head.kind == "multiclass":
                out[f"{head.name}/accuracy"] = float(np.mean(logits[head.name].argmax(axis=1) == true))
            else:
                for i, column in enumerate(head.columns):
                    confusion = confusion_matrix(true[:, i], logits[head.name][:, i] >= 0, 2)
                    out[f"{column}/balanced_accuracy"] = _class_scores(confusion)["balanced_accuracy"]
        out["count"] = float(next(iter(truth.values())).shape[0])
        return out

    def compute(self, predictions: Any, targets: Any, groups: Sequence[Any] | None = None,
                baseline_targets: Any = None) -> MetricResult:
        """Metrics over all items and per level (``groups``: level indices or names, one per item); the baseline's
        majority classes come from ``baseline_targets`` (the training split's, like ``targets``) when given."""
        logits, truth = self._arrays(predictions, targets)
        count = next(iter(truth.values())).shape[0] if truth else 0
        if count == 0:
            return MetricResult({})
        per_group: dict[str, dict[str, float]] = {}
        if groups is not None:
            names = _group_names(groups)
            if len(names) != count:
                raise ValueError(f"{len(names)} groups for {count} items")
            for name in sorted(set(names)):
                mask = np.array([n == name for n in names])
                per_group[name] = self._level_summary({k: v[mask] for k, v in logits.items()},
                                                      {k: v[mask] for k, v in truth.items()})
        return MetricResult(self._summary(logits, truth, self._majorities(baseline_targets, truth)), per_group)
