"""Validation metrics. :class:`LocalizationMetrics`: PCK at fractions of the image size, pixel errors, per level."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from spine_lib.levels import IDX_TO_LEVEL
from spine_lib.training.registry import register_metrics


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


def _numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


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
