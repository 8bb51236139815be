"""The ground truth written next to a synthetic data root (``<root>/truth/``): what every pixel means."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.io.atomic import atomic_write_text
from spine_lib.levels import LEVELS, phenikaa_ivd_label, spider_ivd_label
from spine_lib.synthetic.phantom import SpineAnatomy, physical_to_index

TRUTH_FOLDER = "truth"


def rounded(values: tuple[float, ...] | list[float], digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


@dataclass
class DiscTruth:
    """One disc of one subject: its level in every numbering, its grades and its landmarks (mm, LPS)."""

    level: str
    spider_ivd_label: int
    phenikaa_ivd_label: int
    grades: dict[str, int]
    center_mm: list[float]
    canal_point_mm: list[float]
    foramen_left_mm: list[float]
    foramen_right_mm: list[float]
    subarticular_left_mm: list[float]
    subarticular_right_mm: list[float]


def disc_truths(anatomy: SpineAnatomy) -> list[DiscTruth]:
    """The truth of every lumbar disc of a subject, top-down."""
    return [
        DiscTruth(
            level=level,
            spider_ivd_label=spider_ivd_label(level),
            phenikaa_ivd_label=phenikaa_ivd_label(level),
            grades=dataclasses.asdict(anatomy.grades[level]),
            center_mm=rounded(anatomy.disc_center(level)),
            canal_point_mm=rounded(anatomy.canal_point(level)),
            foramen_left_mm=rounded(anatomy.foramen_point(level, "left")),
            foramen_right_mm=rounded(anatomy.foramen_point(level, "right")),
            subarticular_left_mm=rounded(anatomy.subarticular_point(level, "left")),
            subarticular_right_mm=rounded(anatomy.subarticular_point(level, "right")),
        )
        for level in LEVELS
    ]


@dataclass
class SeriesTruth:
    """One written series: where it is, its geometry, and each disc's landmarks in its voxel indices."""

    path: str  # relative to the data root
    kind: str  # sag_t1, sag_t2, sag_t2_space, axial_t2
    size: list[int]
    spacing: list[float]
    origin: list[float]
    direction: list[float]
    series_uid: str | None = None
    disc_center_index: dict[str, list[float]] = field(default_factory=dict)
    canal_point_index: dict[str, list[float]] = field(default_factory=dict)


def series_truth(image: sitk.Image, anatomy: SpineAnatomy, path: str, kind: str,
                 series_uid: str | None = None) -> SeriesTruth:
    """Geometry of ``image`` and the continuous voxel index (i, j, k) of each disc's centre and canal point."""
    return SeriesTruth(
        path=path,
        kind=kind,
        size=list(image.GetSize()),
        spacing=rounded(image.GetSpacing(), 6),
        origin=rounded(image.GetOrigin(), 6),
        direction=rounded(image.GetDirection(), 6),
        series_uid=series_uid,
        disc_center_index={lv: rounded(physical_to_index(image, anatomy.disc_center(lv))) for lv in LEVELS},
        canal_point_index={lv: rounded(physical_to_index(image, anatomy.canal_point(lv))) for lv in LEVELS},
    )


def relative(layout: DataLayout, path: Path) -> str:
    """``path`` relative to the data root, with forward slashes (how truth files name what they describe)."""
    return Path(path).relative_to(layout.root).as_posix()


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_truth(root: Path, name: str, payload: Any) -> Path:
    """Write ``<root>/truth/<name>.json`` atomically (sorted keys: same data, same bytes)."""
    text = json.dumps(to_jsonable(payload), indent=1, sort_keys=True, ensure_ascii=False, default=str)
    return atomic_write_text(root / TRUTH_FOLDER / f"{name}.json", text + "\n")


def read_truth(root: Path, name: str) -> Any:
    """Read ``<root>/truth/<name>.json``."""
    return json.loads((root / TRUTH_FOLDER / f"{name}.json").read_text(encoding="utf-8"))
