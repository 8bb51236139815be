"""RSNA 2024 conventions: series descriptions, the series types we call them by, and what each condition marks.

``train_series_descriptions.csv`` names each series ``Sagittal T1``, ``Sagittal T2/STIR`` or ``Axial T2``; the
rest of the project speaks of ``sag_t1``, ``sag_t2`` and ``ax_t2``. Coordinates of ``Spinal Canal Stenosis`` sit
on Sagittal T2 where the disc meets the canal, ``Neural Foraminal Narrowing`` on Sagittal T1 in the foramen,
``Subarticular Stenosis`` on Axial T2.
"""

from __future__ import annotations

import csv
from pathlib import Path

from spine_lib.errors import InputPathError, TabularDataError

SAG_T1 = "sag_t1"
SAG_T2 = "sag_t2"
AX_T2 = "ax_t2"
#: series type -> the description RSNA writes for it
SERIES_DESCRIPTIONS: dict[str, str] = {SAG_T1: "Sagittal T1", SAG_T2: "Sagittal T2/STIR", AX_T2: "Axial T2"}
#: series description (lower case) -> series type; descriptions are matched by these prefixes.
DESCRIPTION_PREFIXES: tuple[tuple[str, str], ...] = (
    ("sagittal t1", SAG_T1),
    ("sagittal t2", SAG_T2),  # "Sagittal T2/STIR"
    ("axial t2", AX_T2),
)
SERIES_DESCRIPTION_COLUMNS = ("study_id", "series_id", "series_description")

#: condition -> (series type it is annotated on, point kind, side)
CONDITIONS: dict[str, tuple[str, str, str]] = {
    "Spinal Canal Stenosis": (SAG_T2, "canal", ""),
    "Left Neural Foraminal Narrowing": (SAG_T1, "foramen", "left"),
    "Right Neural Foraminal Narrowing": (SAG_T1, "foramen", "right"),
    "Left Subarticular Stenosis": (AX_T2, "subarticular", "left"),
    "Right Subarticular Stenosis": (AX_T2, "subarticular", "right"),
}

SeriesMapping = dict[tuple[int, int], str]


def series_type_of(description: str) -> str | None:
    """``'Sagittal T2/STIR'`` -> ``'sag_t2'``; None for a description that is none of the three."""
    text = " ".join(description.strip().lower().split())
    for prefix, kind in DESCRIPTION_PREFIXES:
        if text.startswith(prefix):
            return kind
    return None


def condition_kind(condition: str) -> tuple[str, str, str] | None:
    """(series type, point kind, side) of an RSNA condition name (case and spacing tolerant), or None."""
    text = " ".join(condition.strip().lower().split())
    for name, value in CONDITIONS.items():
        if name.lower() == text:
            return value
    return None


def load_series_mapping(path: Path) -> SeriesMapping:
    """``train_series_descriptions.csv`` as ``{(study_id, series_id): series_description}``.

    Rows whose ids are not integers are ignored (a real file has none); a missing file or column is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputPathError(path, "series descriptions file does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in SERIES_DESCRIPTION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TabularDataError(path, f"missing column(s) {', '.join(missing)}")
        mapping: SeriesMapping = {}
        for row in reader:
            try:
                key = (int(row["study_id"]), int(row["series_id"]))
            except (TypeError, ValueError):
                continue
            mapping[key] = (row["series_description"] or "").strip()
    return mapping


def get_series_type(series_id: int | str, study_id: int | str, series_mapping: SeriesMapping) -> str | None:
    """The series type (``sag_t1``, ``sag_t2``, ``ax_t2``) of one series; None if unknown."""
    try:
        key = (int(study_id), int(series_id))
    except (TypeError, ValueError):
        return None
    description = series_mapping.get(key)
    return series_type_of(description) if description is not None else None
