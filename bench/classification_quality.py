"""Grading quality on synthetic held-out patients after a time-boxed CPU (or GPU) training.

Run: ``uv run python bench/classification_quality.py --root /tmp/grading/data --spider 64 [--minutes 15]
[--backbone resnet50] [--output-size 128] [--epochs 60] [--class-balance weights|sampler|none]
[--head-weight spondylolisthesis=2]``.

Makes (or reuses) a synthetic root of SPIDER patients, cuts their crops at the masks' disc points, trains the
multi-task classifier with patients split into train / validation / test (never one patient in two), and prints
JSON: per head and output the test accuracy, balanced accuracy, macro-F1, AUROC (binary), Pfirrmann's quadratic
kappa and within-one-grade accuracy, each next to its majority-class baseline; training minutes; training and
inference crops per second. Targets (issue): Pfirrmann accuracy >= 0.85, within one >= 0.98, kappa >= 0.9; Modic
balanced accuracy >= 0.8; binary heads macro-F1 >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.classification import ClassificationDatasetConfig, build_classification_dataset
from spine_lib.synthetic.config import SynthConfig
from spine_lib.synthetic.generate import make_synthetic_root
from spine_lib.training.config import ClassificationConfig
from spine_lib.training.grading import GRADING_HEADS
from spine_lib.training.metrics import auroc, macro_f1
from spine_lib.training.trainers.classification import ClassificationTrainer

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "qwk", "within_one")


def inference_rate(trainer: ClassificationTrainer, batch_size: int) -> float:
    """Crops (discs) per second of the model's forward pass over the test split."""
    model = trainer.unwrapped_model.eval()
    loader = DataLoader(trainer.make_dataset("test"), batch_size=batch_size, collate_fn=trainer.collate_fn())
    batches = [b["image"] for b in loader]
    device = trainer.accelerator.device
    with torch.no_grad():
        model(batches[0][:2].to(device))
        start = time.perf_counter()
        for images in batches:
            model(images.to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def per_head(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    names = [h.name for h in GRADING_HEADS if h.kind == "multiclass"]
    names += [c for h in GRADING_HEADS if h.kind == "binary" for c in h.columns]
    out: dict[str, dict[str, float]] = {}
    for name in names:
        values: dict[str, float] = {}
        for metric in METRICS:
            if f"{name}/{metric}" in metrics:
                values[metric] = round(metrics[f"{name}/{metric}"], 4)
                values[f"baseline_{metric}"] = round(metrics.get(f"{name}/baseline_{metric}", float("nan")), 4)
        out[name] = values
    return out


def binary_by_level(trainer: ClassificationTrainer, column: str) -> dict[str, dict[str, float]]:
    """One binary output on the test split, per level: positives, negatives, AUROC and macro-F1 at the model's
    (tuned) decision threshold; where the head's errors sit (spondylolisthesis: L4/L5 or L5/S1)."""
    loader = DataLoader(trainer.make_dataset("test"), batch_size=trainer.config.batch_size,
                        collate_fn=trainer.collate_fn())
    _, _, outputs = trainer.validate(loader)
    head = next(h for h in GRADING_HEADS if column in h.columns)
    index = head.columns.index(column)
    predictions, targets = outputs["predictions"], outputs["targets"]
    predictions = predictions.as_dict() if hasattr(predictions, "as_dict") else predictions
    targets = targets.as_dict() if hasattr(targets, "as_dict") else targets
    logits = predictions[head.name].float().cpu().numpy().reshape(-1, head.outputs)[:, index]
    truth = targets[head.name].cpu().numpy().reshape(-1, head.outputs)[:, index].astype(int)
    threshold = trainer.unwrapped_model.decision_thresholds()[column]
    levels = outputs["extras"]["level"]
    out: dict[str, dict[str, float]] = {}
    for level in sorted(set(levels)):
        at = [i for i, name in enumerate(levels) if name == level]
        t, s = truth[at], logits[at]
        if not t.any():
            continue
        out[level] = {"positives": int(t.sum()), "negatives": int((1 - t).sum()),
                      "auroc": round(auroc(s, t), 4) if not t.all() else float("nan"),
                      "macro_f1": round(macro_f1(t, (s >= threshold).astype(int)), 4),
                      "missed": int(((s < threshold) & (t == 1)).sum()),
                      "false_alarms": int(((s >= threshold) & (t == 0)).sum())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--spider", type=int, default=64, help="SPIDER patients (5 discs each)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--output-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--class-balance", choices=("weights", "sampler", "none"), default="weights",
                        help="rare grades weigh more in the loss, are drawn more often, or neither")
    parser.add_argument("--head-weight", action="append", default=[], metavar="HEAD=WEIGHT",
                        help="loss weight of a head (repeatable), e.g. spondylolisthesis=2")
    args = parser.parse_args()
    head_weights: dict[str, float] = {}
    for item in args.head_weight:
        head, _, weight = item.partition("=")
        try:
            head_weights[head] = float(weight)
        except ValueError:
            parser.error(f"--head-weight {item!r}: expected HEAD=WEIGHT, e.g. spondylolisthesis=2")
        if head not in {h.name for h in GRADING_HEADS}:
            parser.error(f"--head-weight {item!r}: no head {head!r} (heads: {', '.join(h.name for h in GRADING_HEADS)})")

    layout = DataLayout(root=args.root, weights=args.root.parent / "weights")
    out: dict[str, Any] = {}
    if not (layout.root / "truth/spider.json").is_file():
        t0 = time.perf_counter()
        make_synthetic_root(SynthConfig(out=layout.root, spider_patients=args.spider, rsna_studies=1,
                                        phenikaa_patients=1, size=args.size, seed=args.seed))
        out["synth_seconds"] = round(time.perf_counter() - t0, 1)
    crops = build_classification_dataset(ClassificationDatasetConfig.for_layout(layout, include_phenikaa=False))
    out["crops"] = crops.crops
    out["crops_build_seconds"] = round(crops.seconds, 1)
    config = ClassificationConfig.for_layout(
        layout, backbone=args.backbone, output_size=(args.output_size, args.output_size), batch_size=args.batch_size,
        num_epochs=args.epochs, learning_rate=args.learning_rate, max_train_minutes=args.minutes, val_fraction=0.15,
        test_fraction=0.2, early_stopping=False, device=args.device, seed=args.seed, run_id=f"bench-{int(time.time())}",
        visualize_predictions=False, augment=not args.no_augment, class_balance=args.class_balance,
        head_weights=head_weights or None,
    )
    trainer = ClassificationTrainer(config)
    result = trainer.train()
    test = trainer.evaluate("test")
    points = len(trainer.train_dataset)  # type: ignore[arg-type]
    out.update({
        "device": trainer.device_choice.device, "torch_threads": torch.get_num_threads(),
        "backbone": args.backbone, "output_size": args.output_size, "augment": not args.no_augment,
        "class_balance": args.class_balance, "head_weights": config.head_weights,
        "train_discs": points, "val_discs": len(trainer.val_dataset),  # type: ignore[arg-type]
        "test_discs": int(test.get("count", 0)),
        "train_patients": len({d.patient for d in getattr(trainer.train_dataset, "discs", [])}) or None,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch + 1,
        "train_minutes": round(result.seconds / 60, 2),
        "train_crops_per_second": round(result.train_images_per_second, 1),
        "inference_crops_per_second": round(inference_rate(trainer, 32), 1),
        "test_mean_balanced_accuracy": round(test.get("mean_balanced_accuracy", 0.0), 4),
        "test_baseline_mean_balanced_accuracy": round(test.get("baseline_mean_balanced_accuracy", 0.0), 4),
        "test": per_head(test),
        "spondylolisthesis_by_level": binary_by_level(trainer, "spondylolisthesis"),
    })
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
