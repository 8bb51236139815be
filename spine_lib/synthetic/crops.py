"""IVD crops scored against the synthetic truth: does each crop sit on its own disc, how far is its point off?

The truth holds each disc's centre and canal point in millimetres (the patient's frame, shared by all its
series) and each series' geometry; a crop's row says on which slice of the canonical sagittal view its point
lies. A crop's centre (its reference point, ``center_x``/``center_y``: the disc's posterior margin at the canal)
is on its disc when, in the disc's own frame (the axis from the disc's centre to its canal point), it lies within
the disc's depth (up to :data:`ON_DISC_MARGIN_MM` behind the margin) and within :data:`ON_DISC_HALF_HEIGHT` of the
mid-height line, and no other disc is nearer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from spine_lib.core.checks import CheckOutcome
from spine_lib.formats.classification import read_crop_annotations
from spine_lib.io.sagittal import SAGITTAL_ORIENTATION
from spine_lib.synthetic.truth import TRUTH_FOLDER, read_truth

#: Share of the disc's half-depth (centre to canal point) that its half-height is taken to be, at least: synthetic
#: discs are 8-14 mm tall and 30-45 mm deep.
ON_DISC_HALF_HEIGHT = 0.2
#: How far behind the disc's posterior margin (into the canal) a point still counts as on the disc, in mm.
ON_DISC_MARGIN_MM = 2.0
SOURCES = {"spider": "spider", "phenikaa": "phenikaa"}


@dataclass(frozen=True)
class CropScore:
    """One crop against the truth."""

    image_path: str
    level: str
    on_disc: bool
    nearest_level: str
    point_error_px: float  # the crop's reference point to the true canal point, in slice pixels
    point_error_mm: float


def truth_series(root: Path) -> dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any]]]:
    """``(source, patient_id, series_type)`` -> (series truth, discs by level) of a synthetic root."""
    found: dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for source in SOURCES:
        if not (Path(root) / TRUTH_FOLDER / f"{source}.json").is_file():
            continue
        for patient in read_truth(root, source)["patients"]:
            pid = str(patient.get("patient_id", patient.get("patient")))
            discs = {d["level"]: d for d in patient["discs"]}
            for series in patient["series"]:
                found[(source, pid, series["kind"])] = (series, discs)
    return found


def canonical_geometry(series: dict[str, Any]) -> sitk.Image:
    """An empty image with a series' truth geometry, in the canonical sagittal view."""
    image = sitk.Image([int(v) for v in series["size"]], sitk.sitkUInt8)
    image.SetSpacing(series["spacing"])
    image.SetOrigin(series["origin"])
    image.SetDirection(series["direction"])
    return sitk.DICOMOrient(image, SAGITTAL_ORIENTATION)


def score_crops(root: Path, dataset: Path) -> list[CropScore]:
    """Every crop of ``dataset`` scored against the truth of the synthetic root ``root`` (none without truth)."""
    series_truth = truth_series(root)
    geometries: dict[tuple[str, str, str], sitk.Image] = {}
    scores: list[CropScore] = []
    for row in read_crop_annotations(dataset):
        key = (row["source"], row["patient_id"], row["series_type"])
        if key not in series_truth:
            continue
        series, discs = series_truth[key]
        if key not in geometries:
            geometries[key] = canonical_geometry(series)
        view = geometries[key]
        index = float(row["slice_index"])
        point = np.array(view.TransformContinuousIndexToPhysicalPoint((float(row["center_x"]), float(row["center_y"]),
                                                                        index)))
        true_px = view.TransformPhysicalPointToContinuousIndex(discs[row["level"]]["canal_point_mm"])
        error_px = math.hypot(float(row["center_x"]) - true_px[0], float(row["center_y"]) - true_px[1])
        true_mm = np.array(discs[row["level"]]["canal_point_mm"])
        error_mm = float(np.linalg.norm((point - true_mm)[1:]))  # in the sagittal plane
        nearest = min(discs, key=lambda lv: float(np.linalg.norm((point - np.array(discs[lv]["canal_point_mm"]))[1:])))
        scores.append(CropScore(row["image_path"], row["level"], on_disc(point, discs[row["level"]]) and
                                nearest == row["level"], nearest, error_px, error_mm))
    return scores


def on_disc(point: np.ndarray, disc: dict[str, Any]) -> bool:
    """Whether a physical point lies inside a disc, judged in the sagittal plane in the disc's own frame."""
    centre = np.array(disc["center_mm"])[1:]
    canal = np.array(disc["canal_point_mm"])[1:]
    half_depth = float(np.linalg.norm(canal - centre))
    axis = (canal - centre) / half_depth
    offset = np.asarray(point)[1:] - centre
    along = float(offset @ axis)
    across = abs(float(offset[0] * axis[1] - offset[1] * axis[0]))
    return -half_depth <= along <= half_depth + ON_DISC_MARGIN_MM and across <= ON_DISC_HALF_HEIGHT * half_depth


def crops_on_their_discs(root: Path, dataset: Path) -> CheckOutcome | None:
    """Every crop centre on its own disc (None when ``root`` has no synthetic truth)."""
    if not (Path(root) / TRUTH_FOLDER).is_dir():
        return None
    scores = score_crops(root, dataset)
    return CheckOutcome(checked=len(scores), problems=[
        f"{s.image_path}: centre not on {s.level} (nearest disc {s.nearest_level}, {s.point_error_mm:.1f} mm off)"
        for s in scores if not s.on_disc])
