"""Time to write a synthetic data root (all three sources) against the number of patients per source.

Run: ``uv run python bench/synth_scaling.py [--patients 2 4 8 16] [--size 256]``. Prints seconds per source and
in total for each count, the per-patient slope of a least-squares line and its R^2 (linear growth -> R^2 ~ 1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spine_lib.core.logging import setup_logger
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=14)
    args = parser.parse_args()
    setup_logger(verbose=False)
    totals = []
    print(f"size {args.size}x{args.size}, {args.slices} sagittal slices; seconds")
    print("| patients per source | SPIDER | RSNA | Phenikaa | total (wall) |")
    print("|---|---|---|---|---|")
    for n in args.patients:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = make_synthetic_root(SynthConfig(out=Path(tmp) / "data", patients=n, size=args.size,
                                                     slices=args.slices))
            wall = time.perf_counter() - start
        s = report.seconds
        totals.append(wall)
        print(f"| {n} | {s['spider']:.1f} | {s['rsna']:.1f} | {s['phenikaa']:.1f} | {wall:.1f} |")
    x, y = np.array(args.patients, dtype=float), np.array(totals)
    slope, intercept = np.polyfit(x, y, 1)
    fitted = slope * x + intercept
    r2 = 1 - ((y - fitted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    print(f"linear fit: {slope:.2f} s per patient (per source, all three sources) + {intercept:.2f} s; R^2 = {r2:.4f}")


if __name__ == "__main__":
    main()
