"""Throughput of the IVD localization dataset: building it (studies/s) and reading items (items/s).

Run: ``uv run python bench/ivd_coords_dataset.py [--studies 48] [--size 256] [--root DIR] [--repeat 3]``.
Writes (or reuses, with ``--root``) a synthetic RSNA source, then times:
- the build from scratch with 1 and 2 worker processes, and a rerun that reuses the images (idempotent);
- building ``IVDCoordsDataset`` (it reads every image into memory) and ``__getitem__`` at 224x224 without and
  with augmentation, grouped items (an image with all its points, augmented), and DataLoaders with 0 and 2 workers and batch 16 (augmented).
Prints a markdown table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from spine_lib.core.logging import setup_logger
from spine_lib.datasets.ivd_coords import IVDDatasetConfig, build_ivd_coords
from spine_lib.synthetic.ivd_coords import build_synthetic_ivd_coords
from spine_lib.training.datasets import IVDCoordsDataset


def time_build(root: Path, workers: int, fresh: bool) -> tuple[float, int]:
    output = root / "processed" / "ivd_coords"
    if fresh and output.exists():
        shutil.rmtree(output)
    start = time.perf_counter()
    report = build_ivd_coords(IVDDatasetConfig(base_path=root, workers=workers))
    return time.perf_counter() - start, report.studies


def items_per_second(dataset: IVDCoordsDataset, passes: int) -> tuple[float, float]:
    """Items per second (wall clock) and CPU milliseconds per item (less sensitive to a busy machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(passes):
        for index in range(len(dataset)):
            dataset[index]
    count = passes * len(dataset)
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count * 1e3


def loader_rate(dataset: IVDCoordsDataset, workers: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0)
    for _ in loader:  # warm: workers started, images cached in each worker
        pass
    start = time.perf_counter()
    count = sum(len(batch["image"]) for batch in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="synthetic data root to make or reuse")
    parser.add_argument("--studies", type=int, default=48)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each build timing")
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    setup_logger(verbose=False)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "data"
        start = time.perf_counter()
        build_synthetic_ivd_coords(root, studies=args.studies, size=args.size)
        synth = time.perf_counter() - start
        results: dict[str, float] = {"synthetic_source_and_first_build_s": round(synth, 1)}
        for workers in (1, 2):
            best = min(time_build(root, workers, fresh=True) for _ in range(args.repeat))
            results[f"build_studies_per_s_workers{workers}"] = round(best[1] / best[0], 1)
        rerun = min(time_build(root, 2, fresh=False) for _ in range(args.repeat))
        results["rebuild_reusing_images_studies_per_s"] = round(rerun[1] / rerun[0], 1)

        size = (args.image_size, args.image_size)
        data = root / "processed" / "ivd_coords"
        for augment in (False, True):
            name = "augmented" if augment else "plain"
            start = time.perf_counter()
            dataset = IVDCoordsDataset(data, split="all", image_size=size, augment=augment)
            results[f"dataset_init_s_{name}"] = round(time.perf_counter() - start, 3)  # reads every image
            rate, cpu_ms = items_per_second(dataset, 3)
            results[f"items_per_s_{name}"] = round(rate, 0)
            results[f"cpu_ms_per_item_{name}"] = round(cpu_ms, 3)
        grouped = IVDCoordsDataset(data, split="all", image_size=size, augment=True, group_levels=True)
        rate, cpu_ms = items_per_second(grouped, 3)
        results["grouped_items_per_s_augmented"] = round(rate, 0)  # one image with all its points
        results["grouped_points_per_s_augmented"] = round(rate * len(grouped.records) / len(grouped), 0)
        dataset = IVDCoordsDataset(data, split="all", image_size=size, augment=True)
        results["items"] = len(dataset)
        for workers in (0, 2):
            rate = loader_rate(dataset, workers, 16)
            results[f"loader_items_per_s_augmented_{workers}workers_batch16"] = round(rate, 0)
        results["cache_bytes_per_image"] = args.image_size * args.image_size
    print(f"{args.studies} synthetic RSNA studies at {args.size}x{args.size}; items at {args.image_size}x{args.image_size}")
    print("| measure | value |")
    print("|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
