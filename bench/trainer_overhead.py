"""Time of ``LocalizationTrainer.train()`` against a plain PyTorch loop over the same model, data and batches.

Run: ``uv run python bench/trainer_overhead.py [--items 256] [--size 128] [--epochs 2] [--repeats 3]``.
Both sides train the same ConvNeXt-atto localization model (same initial weights) with AdamW and gradient
clipping on the same in-memory items in the same shuffled order, and run a validation pass per epoch. The
trainer also does what the plain loop does not: Accelerate wrapping, metrics, checkpoints (best + last every
epoch), config.yaml, history. Runs alternate (plain, trainer, plain, ...) so drift hits both; prints the median
seconds of each and their ratio (target: <= 1.10), and training images/s.
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
from spine_lib.training.config import LocalizationConfig
from spine_lib.training.models import ConvNextLocalization
from spine_lib.training.trainers.localization import LocalizationTrainer


class MemoryItems(Dataset):
    """Fixed random images with a point and a level each (no I/O: the loop itself is measured)."""

    def __init__(self, count: int, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(count, 3, size, size, generator=generator)
        self.coords = torch.rand(count, 2, generator=generator)
        self.levels = torch.randint(0, 5, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index], "coords": self.coords[index], "level_idx": self.levels[index]}


def plain_loop(config: LocalizationConfig, train: Dataset, val: Dataset) -> float:
    torch.manual_seed(config.seed)
    model = ConvNextLocalization(config.model_variant)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    shuffle = torch.Generator()
    train_loader = DataLoader(train, batch_size=config.batch_size, sampler=RandomSampler(train, generator=shuffle))  # type: ignore[arg-type]
    val_loader = DataLoader(val, batch_size=config.batch_size)
    start = time.perf_counter()
    for epoch in range(config.num_epochs):
        model.train()
        shuffle.manual_seed(config.seed * 100_003 + epoch)
        for batch in train_loader:
            loss = model.get_loss(model(batch["image"], batch["level_idx"]), batch["coords"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for batch in val_loader:
                model.get_loss(model(batch["image"], batch["level_idx"]), batch["coords"])
    return time.perf_counter() - start


def trainer_run(config: LocalizationConfig, train: Dataset, val: Dataset) -> tuple[float, float]:
    trainer = LocalizationTrainer(config, datasets=(train, val), device_choice=DeviceChoice("cpu", False, "bench"))
    start = time.perf_counter()
    result = trainer.train()
    return time.perf_counter() - start, result.train_images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--val-items", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    train, val = MemoryItems(args.items, args.size, 0), MemoryItems(args.val_items, args.size, 1)
    plain: list[float] = []
    ours: list[float] = []
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            config = LocalizationConfig(
                data_path=Path(tmp), weights_path=Path(tmp) / "weights", model_variant="atto",
                image_size=(args.size, args.size), batch_size=args.batch_size, num_epochs=args.epochs,
                learning_rate=1e-3, scheduler_type="none", augment=False, visualize_predictions=False,
                early_stopping=False, device="cpu", run_id=f"overhead-{repeat}",
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
        "epochs": args.epochs, "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
        "plain_seconds": [round(s, 2) for s in plain], "trainer_seconds": [round(s, 2) for s in ours],
        "plain_median_s": round(plain_s, 2), "trainer_median_s": round(ours_s, 2),
        "ratio": round(ours_s / plain_s, 3),
        "trainer_train_images_per_second": round(statistics.median(rates), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
