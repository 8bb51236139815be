"""Is a grade in the crops' pixels? A linear probe per head, to tell rendering faults from model faults.

Run: ``uv run python bench/crop_separability.py --data /tmp/grading/data/processed/classification [--size 32]``.

Reads a crops dataset (``annotations.csv`` + images), pairs the T1 and T2 crops of each disc, shrinks each to
``--size`` pixels and fits a class-balanced logistic regression per head on the raw pixels, scored by 5-fold
cross-validation grouped by patient (no patient in two folds). Prints JSON: per head the probe's accuracy,
balanced accuracy, macro-F1 and (binary heads) AUROC beside the majority baseline. A head the probe reads well
is in the pixels, so a network that cannot learn it is at fault; a head the probe cannot read is either small
and position-dependent (a linear probe on whole crops misses it) or not rendered: look at the crops then.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from spine_lib.training.datasets.classification import read_discs
from spine_lib.training.grading import GRADING_HEADS

SERIES = ("sag_t2", "sag_t1")


def pixels(data: Path, paths: dict[str, str], size: int) -> npt.NDArray[np.float32]:
    """The disc's crops shrunk to ``size`` px, T2 then T1 (a missing one repeats the other), flattened."""
    planes = []
    for series in SERIES:
        path = paths.get(series) or next(iter(paths.values()))
        with Image.open(data / path) as image:
            planes.append(np.asarray(image.convert("L").resize((size, size), Image.Resampling.BILINEAR),
                                     dtype=np.float32).ravel() / 255.0)
    return np.concatenate(planes)


def probe(x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], groups: list[str]) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    classes = np.unique(y)
    model = LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced")
    probabilities = np.asarray(cross_val_predict(model, x, y, cv=GroupKFold(5), groups=groups,
                                                 method="predict_proba"), dtype=np.float64)
    predicted = classes[probabilities.argmax(axis=1)]
    majority = np.full_like(y, np.bincount(y).argmax())
    out = {
        "accuracy": float((predicted == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, average="macro")),
        "baseline_accuracy": float((majority == y).mean()),
        "baseline_macro_f1": float(f1_score(y, majority, average="macro")),
    }
    if len(classes) == 2:
        out["auroc"] = float(roc_auc_score(y, probabilities[:, 1]))
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a crops dataset folder (annotations.csv)")
    parser.add_argument("--size", type=int, default=32, help="pixels per side each crop is shrunk to")
    args = parser.parse_args()
    discs = read_discs(args.data)
    x = np.stack([pixels(args.data, d.image_paths, args.size) for d in discs])
    groups = [f"{d.source}/{d.patient_id}" for d in discs]
    result: dict[str, Any] = {"discs": len(discs), "patients": len(set(groups)), "size": args.size, "heads": {}}
    for head in GRADING_HEADS:
        columns = [head.name] if head.kind == "multiclass" else list(head.columns)
        for index, column in enumerate(columns):
            values = [d.targets[head.name] for d in discs]
            y = np.asarray([int(v[index]) if isinstance(v, list) else int(v) for v in values], dtype=np.int64)
            if len(np.unique(y)) < 2:
                result["heads"][column] = {"skipped": "one class only"}
                continue
            result["heads"][column] = {"counts": np.bincount(y).tolist(), **probe(x, y, groups)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
