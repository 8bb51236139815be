"""Dice scores of a predicted label map against a reference, per label and per anatomical group."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Label-name prefixes of the groups of the ``spider`` target schema (and of schemas that merge each group).
GROUPS = {"vertebrae": "vertebra", "discs": "disc", "canal": "spinal_canal"}


def dice(pred: npt.NDArray[Any], ref: npt.NDArray[Any]) -> float:
    """Dice of two boolean masks; NaN when both are empty."""
    total = int(pred.sum()) + int(ref.sum())
    return float("nan") if total == 0 else 2.0 * int(np.logical_and(pred, ref).sum()) / total


def dice_per_label(pred: npt.NDArray[Any], ref: npt.NDArray[Any], labels: dict[str, int]) -> dict[str, float]:
    """Dice of every foreground label present in the reference or the prediction."""
    present = set(np.unique(ref).tolist()) | set(np.unique(pred).tolist())
    return {name: dice(pred == value, ref == value) for name, value in labels.items()
            if value != 0 and value in present and name != "ignore"}


def group_dice(pred: npt.NDArray[Any], ref: npt.NDArray[Any], labels: dict[str, int]) -> dict[str, float]:
    """Per group (vertebrae, discs, canal): Dice of the union of its labels, and the mean Dice over its labels
    present in the reference (``<group>_mean_label``); plus ``foreground`` (any label vs background)."""
    per_label = dice_per_label(pred, ref, labels)
    ref_values = set(np.unique(ref).tolist())
    out: dict[str, float] = {"foreground": dice(pred > 0, ref > 0)}
    for group, prefix in GROUPS.items():
        values = [v for n, v in labels.items() if n.startswith(prefix)]
        out[group] = dice(np.isin(pred, values), np.isin(ref, values))
        scores = [per_label[n] for n, v in labels.items() if n.startswith(prefix) and v in ref_values]
        out[f"{group}_mean_label"] = float(np.mean(scores)) if scores else float("nan")
    return out
