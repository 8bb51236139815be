"""Time of ``ClassificationTrainer.train()`` against a plain PyTorch loop over the same grading model and batches.

Run: ``uv run python bench/classification_overhead.py [--items 192] [--size 96] [--epochs 2] [--repeats 3]
[--backbone resnet18]``. Both sides train the same multi-task model (same initial weights) with AdamW, gradient
clipping and the same per-head loss on the same in-memory crops in the same shuffled order, and run a validation
pass per epoch. The trainer also does what the plain loop does not: Accelerate wrapping, the per-head metrics
with their baselines, checkpoints (best + last every epoch), config.yaml, history, the end-of-run plots. Runs
alternate; prints the median seconds of each, their ratio (target: <= 1.10) and training crops/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from spine_lib.core.device import DeviceChoice
from spine_lib.training.config import ClassificationConfig
from spine_lib.training.datasets.classification import ClassificationCollator
from spine_lib.training.grading import GRADING_HEADS
from spine_lib.training.models.grading import ResNet50MTL
from spine_lib.training.trainers.classification import ClassificationTrainer


class MemoryCrops(Dataset):
    """Fixed random crops with random grades (no I/O: the loop itself is measured)."""

    def __init__(self, count: int, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(count, 3, size, size, generator=generator)
        self.targets: list[dict[str, Any]] = []
        for _ in range(count):
            item: dict[str, Any] = {}
            for head in GRADING_HEADS:
                if head.kind == "multiclass":
                    item[head.name] = int(torch.randint(0, head.classes, (1,), generator=generator))
                else:
                    item[head.name] = torch.randint(0, 2, (head.outputs,), generator=generator).float().tolist()
            self.targets.append(item)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index], "targets": self.targets[index], "patient_id": str(index),
                "source": "bench", "level": "L4/L5", "paired": True, "image_paths": {}}


def plain_loop(config: ClassificationConfig, train: Dataset, val: Dataset) -> float:
    torch.manual_seed(config.seed)
    model = ResNet50MTL(backbone=config.backbone, dropout=config.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    shuffle = torch.Generator()
    collate = ClassificationCollator()
    train_loader = DataLoader(train, batch_size=config.batch_size, collate_fn=collate,
                              sampler=RandomSampler(train, generator=shuffle))  # type: ignore[arg-type]
    val_loader = DataLoader(val, batch_size=config.batch_size, collate_fn=collate)
    start = time.perf_counter()
    for epoch in range(config.num_epochs):
        model.train()
        shuffle.manual_seed(config.seed * 100_003 + epoch)
        for batch in train_loader:
            loss = model.get_loss(model(batch["image"]), batch["targets"], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for batch in val_loader:
                model.get_loss(model(batch["image"]), batch["targets"], label_smoothing=config.label_smoothing)
    return time.perf_counter() - start


def trainer_run(config: ClassificationConfig, train: Dataset, val: Dataset) -> tuple[float, float]:
    trainer = ClassificationTrainer(config, datasets=(train, val), device_choice=DeviceChoice("cpu", False, "bench"))
    start = time.perf_counter()
    result = trainer.train()
    return time.perf_counter() - start, result.train_images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=192)
    parser.add_argument("--val-items", type=int, default=48)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()
    train, val = MemoryCrops(args.items, args.size, 0), MemoryCrops(args.val_items, args.size, 1)
    plain: list[float] = []
    ours: list[float] = []
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            config = ClassificationConfig(
                data_path=Path(tmp), weights_path=Path(tmp) / "weights", backbone=args.backbone,
                output_size=(args.size, args.size), batch_size=args.batch_size, num_epochs=args.epochs,
                learning_rate=1e-3, scheduler_type="none", augment=False, visualize_predictions=False,
                early_stopping=False, device="cpu", run_id=f"overhead-{repeat}", class_balance="none",
            )
            order = [plain_loop, None] if repeat % 2 == 0 else [None, plain_loop]
            for step in order:
                if step is plain_loop:
                    plain.append(plain_loop(config, train, val))
                else:
                    seconds, rate = trainer_run(config, train, val)
                    ours.append(seconds)
                    rates.append(rate)
    plain_s, ours_s = statistics.median(plain), statistics.median(ours)
    print(json.dumps({
        "items": args.items, "val_items": args.val_items, "size": args.size, "batch_size": args.batch_size,
        "epochs": args.epochs, "repeats": args.repeats, "backbone": args.backbone,
        "torch_threads": torch.get_num_threads(),
        "plain_seconds": [round(s, 2) for s in plain], "trainer_seconds": [round(s, 2) for s in ours],
        "plain_median_s": round(plain_s, 2), "trainer_median_s": round(ours_s, 2),
        "ratio": round(ours_s / plain_s, 3),
        "trainer_train_crops_per_second": round(statistics.median(rates), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
