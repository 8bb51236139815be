"""Read/write time of a 16x256x256 int16 volume per format: spine_lib.io against the bare SimpleITK call.

Run: ``uv run python bench/io_roundtrip.py [--repeats 15]``. Prints a markdown table (median seconds over the
repeats, calls interleaved and alternated so that drift hits both sides alike) and the ratio ours/bare. The
"bare write + rename" column is the floor of any atomic write: the bare call to a temporary name, then rename.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine_lib.io import read_medical_image, write_dicom_series, write_medical_image

SHAPE = (16, 256, 256)
FORMATS = [".nii.gz", ".nii", ".mha", ".mhd", ".nrrd"]


def phantom() -> sitk.Image:
    """Smooth anatomy-like content plus noise, so compression behaves as on MR images."""
    z, y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1], 0 : SHAPE[2]].astype(np.float32)
    body = 800 * np.exp(-(((x - 128) / 70) ** 2 + ((y - 128) / 100) ** 2)) + 40 * np.sin(y / 9) * (z / 16)
    noise = np.random.default_rng(0).normal(0, 15, SHAPE)
    image = sitk.GetImageFromArray((body + noise).astype(np.int16))
    image.SetSpacing((0.6, 0.6, 3.5))
    image.SetOrigin((-80.0, -90.0, 20.0))
    return image


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(ours: Callable[[], object], bare: Callable[[], object], repeats: int) -> tuple[float, float]:
    ours()  # warm caches
    bare()
    a: list[float] = []
    b: list[float] = []
    for i in range(repeats):  # alternate who goes first, so order effects cancel
        if i % 2:
            b.append(timed(bare))
            a.append(timed(ours))
        else:
            a.append(timed(ours))
            b.append(timed(bare))
    return statistics.median(a), statistics.median(b)


def bare_atomic(image: sitk.Image, path: Path) -> None:
    """The floor of any atomic write: bare SimpleITK to a temporary name, then one rename."""
    tmp = path.with_name(f".tmp-{path.name}")
    sitk.WriteImage(image, str(tmp), useCompression=True)
    tmp.replace(path)


def dicom_bare(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    image = phantom()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for suffix in FORMATS:
            ours_path, bare_path = folder / f"ours{suffix}", folder / f"bare{suffix}"
            w = compare(
                lambda p=ours_path: write_medical_image(image, p),
                lambda p=bare_path: sitk.WriteImage(image, str(p), useCompression=True),
                args.repeats,
            )
            floor, _ = compare(
                lambda p=bare_path: bare_atomic(image, p),
                lambda p=bare_path: sitk.WriteImage(image, str(p), useCompression=True),
                args.repeats,
            )
            r = compare(
                lambda p=ours_path: read_medical_image(p),
                lambda p=bare_path: sitk.ReadImage(str(p)),
                args.repeats,
            )
            rows.append((suffix, w, floor, r))
        series = folder / "dicom"
        write_dicom_series(image, series)
        r = compare(lambda: read_medical_image(series), lambda: dicom_bare(series), args.repeats)
        rows.append(("DICOM series (16 files)", None, None, r))

    print(f"volume {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} int16, median of {args.repeats}")
    print(
        "| format | write ours (s) | write bare (s) | ratio | bare write + rename (s) | "
        "read ours (s) | read bare (s) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, w, floor, r in rows:
        write = f"{w[0]:.4f} | {w[1]:.4f} | {w[0] / w[1]:.2f} | {floor:.4f}" if w and floor else "- | - | - | -"
        print(f"| {name} | {write} | {r[0]:.4f} | {r[1]:.4f} | {r[0] / r[1]:.2f} |")


if __name__ == "__main__":
    main()
