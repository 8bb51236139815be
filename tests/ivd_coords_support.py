"""Shared pieces of the IVD coordinates tests: a private RSNA data root over the synthetic one, and its truth."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

RSNA_FILES = ("train.csv", "train_label_coordinates.csv", "train_series_descriptions.csv")


def make_rsna_root(synthetic_root: Path, target: Path) -> Path:
    """A data root holding the synthetic RSNA source (DICOM folders linked, CSVs copied) and its truth.

    The tests build datasets and corrupt CSVs here, never in the shared synthetic root.
    """
    rsna = target / "raw" / "RSNA"
    rsna.mkdir(parents=True)
    (rsna / "train_images").symlink_to(synthetic_root / "raw" / "RSNA" / "train_images", target_is_directory=True)
    for name in RSNA_FILES:
        shutil.copyfile(synthetic_root / "raw" / "RSNA" / name, rsna / name)
    (target / "truth").mkdir()
    shutil.copyfile(synthetic_root / "truth" / "rsna.json", target / "truth" / "rsna.json")
    return target


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def rsna_truth(root: Path) -> dict[str, Any]:
    return json.loads((root / "truth" / "rsna.json").read_text(encoding="utf-8"))


def series_by_id(root: Path) -> dict[str, dict[str, Any]]:
    """Truth of every series by series id (with its study's discs under ``"discs"``)."""
    out: dict[str, dict[str, Any]] = {}
    for study in rsna_truth(root)["studies"]:
        for series in study["series"]:
            out[str(series["series_id"])] = {**series, "study_id": str(study["study_id"]), "discs": study["discs"]}
    return out


def physical_to_index(series: dict[str, Any], point_mm: list[float]) -> np.ndarray:
    """Continuous voxel index (i, j, k) of a physical point in a series' geometry (from the truth)."""
    direction = np.array(series["direction"], dtype=float).reshape(3, 3)
    spacing = np.array(series["spacing"], dtype=float)
    origin = np.array(series["origin"], dtype=float)
    return np.linalg.solve(direction * spacing, np.array(point_mm, dtype=float) - origin)


def sagittal_rows(root: Path) -> list[dict[str, str]]:
    """Coordinate rows of the RSNA CSV that a localization dataset uses (sagittal conditions)."""
    rows = read_csv(root / "raw" / "RSNA" / "train_label_coordinates.csv")
    return [r for r in rows if "Subarticular" not in r["condition"]]
