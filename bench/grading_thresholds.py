"""One trained grading checkpoint scored with its tuned decision thresholds and with every threshold at 0
(probability 0.5): what tuning on validation gains or costs on held-out patients.

Run: ``uv run python bench/grading_thresholds.py --checkpoint /tmp/grading3/weights/classification/<run>/best_model.pt
--data /tmp/grading3/data/processed/classification`` (a run of ``bench/classification_quality.py``; the splits are
rebuilt from the checkpoint's config, so they are the run's own). Prints JSON: the thresholds and, per split
(validation, test) and setting, each binary output's macro-F1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.data import DataLoader

from spine_lib.training.checkpoints import model_from_checkpoint
from spine_lib.training.datasets.classification import ClassificationCollator, ClassificationDataset
from spine_lib.training.metrics import MTLClassificationMetrics
from spine_lib.training.models.grading import ResNet50MTL


def split_outputs(model: ResNet50MTL, dataset: ClassificationDataset) -> tuple[dict[str, torch.Tensor],
                                                                             dict[str, torch.Tensor]]:
    """The model's eval-mode logits and the targets over a whole split, per head."""
    predictions: list[dict[str, torch.Tensor]] = []
    targets: list[dict[str, torch.Tensor]] = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=32, collate_fn=ClassificationCollator()):
            predictions.append(model(batch["image"]).as_dict())
            targets.append(batch["targets"].as_dict())

    def joined(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

    return joined(predictions), joined(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the crops dataset the run trained on")
    args = parser.parse_args()

    model, payload = model_from_checkpoint(args.checkpoint)
    if not isinstance(model, ResNet50MTL):
        raise SystemExit(f"{args.checkpoint}: not a multi-task grading model ({type(model).__name__})")
    model.eval()
    config = payload["config"]

    def split(name: str) -> ClassificationDataset:
        return ClassificationDataset(args.data, split=cast(Any, name), output_size=tuple(config["output_size"]),
                                     val_fraction=config["val_fraction"], test_fraction=config["test_fraction"],
                                     seed=config["seed"], levels=config.get("levels"), sources=config.get("sources"))

    baseline = split("train").targets_table().as_dict()
    tuned = model.decision_thresholds()
    out: dict[str, Any] = {"thresholds": {k: round(v, 3) for k, v in tuned.items()}}
    for setting, thresholds in (("tuned", tuned), ("at_0.5", dict.fromkeys(tuned, 0.0))):
        model.set_decision_thresholds(thresholds)
        for name in ("val", "test"):
            predictions, targets = split_outputs(model, split(name))
            metrics = MTLClassificationMetrics().compute(predictions, targets, None, baseline_targets=baseline).flat()
            out[f"{name}/{setting}"] = {column: round(metrics[f"{column}/macro_f1"], 4) for column in tuned}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
