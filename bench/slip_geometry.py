"""How far apart the two vertebral bodies next to each disc sit, on a synthetic root's truth masks.

Run: ``uv run python bench/slip_geometry.py --root /tmp/grading/data``.

For every SPIDER patient and disc: on the mid-sagittal slice of the T2 mask, the centroids of the body above and
the body below (their pixels anterior of the posterior disc margin, so the posterior elements do not count),
projected on the disc's plane (the direction from the disc centre to the truth's canal point). Without a slip the
two are in line (offset ~0); a slip moves the upper body forward by the slip (``+``). Prints, per level and grade,
the spread of that offset: if discs without a slip spread as far as the slip, no classifier can read it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine_lib.levels import LEVELS, spider_disc_value, spider_vertebra_number, vertebrae_of
from spine_lib.synthetic.truth import read_truth


def points(plane: np.ndarray, value: int, spacing: float) -> np.ndarray:
    """Millimetre (column, row) coordinates of the pixels of ``plane`` holding ``value``."""
    rows, cols = np.nonzero(plane == value)
    return np.stack([cols, rows], 1).astype(float) * spacing


def offsets(root: Path) -> list[tuple[str, int, float]]:
    """``(level, spondylolisthesis grade, offset mm)`` for every disc of every SPIDER patient of ``root``."""
    patients = read_truth(root, "spider")["patients"]
    rows: list[tuple[str, int, float]] = []
    for patient in patients:
        series = next(s for s in patient["series"] if s["kind"] == "sag_t2")
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(root / series["path"].replace("/images/", "/masks/"))))
        spacing = float(series["spacing"][0])  # in-plane pixels are square
        for disc in patient["discs"]:
            level = disc["level"]
            centre = np.array(series["disc_center_index"][level])
            canal = np.array(series["canal_point_index"][level])
            plane = mask[round(centre[2])]
            upper, lower = (points(plane, spider_vertebra_number(v), spacing) for v in vertebrae_of(level))
            if len(points(plane, spider_disc_value(level), spacing)) < 5 or len(upper) < 5 or len(lower) < 5:
                continue
            origin = centre[:2] * spacing
            back = (canal[:2] - centre[:2]) / np.linalg.norm(canal[:2] - centre[:2])
            margin = (canal[:2] * spacing - origin) @ back
            above, below = upper - origin, lower - origin
            above, below = above[above @ back < margin + 2], below[below @ back < margin + 2]
            rows.append((level, int(disc["grades"]["spondylolisthesis"]), float((below @ back).mean()
                                                                                 - (above @ back).mean())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="A synthetic data root (with truth/spider.json).")
    args = parser.parse_args()
    rows = offsets(args.root)
    print("| level | slip | discs | min | 5 % | median | 95 % | max |\n|---|---|---|---|---|---|---|---|")
    for level in LEVELS:
        for grade in (0, 1):
            values = np.array([r[2] for r in rows if r[0] == level and r[1] == grade])
            if len(values):
                p5, median, p95 = np.percentile(values, [5, 50, 95])
                print(f"| {level} | {'yes' if grade else 'no'} | {len(values)} | {values.min():+.1f} | {p5:+.1f} | "
                      f"{median:+.1f} | {p95:+.1f} | {values.max():+.1f} |")


if __name__ == "__main__":
    main()
