"""RSNA 2024 Lumbar Spine Degenerative Classification as it lies on disk: the one home of its names.

```
raw/RSNA/train_images/<study_id>/<series_id>/<instance_number>.dcm
raw/RSNA/train_series_descriptions.csv     study_id, series_id, series_description
raw/RSNA/train_label_coordinates.csv       study_id, series_id, instance_number, condition, level, x, y
raw/RSNA/train.csv                         study_id + one severity column per {condition}_{level}
```

``train_series_descriptions.csv`` names each series ``Sagittal T1``, ``Sagittal T2/STIR`` or ``Axial T2``; the
rest of the project speaks of ``sag_t1``, ``sag_t2`` and ``ax_t2``. Coordinates of ``Spinal Canal Stenosis`` sit
on Sagittal T2 where the disc meets the canal, ``Neural Foraminal Narrowing`` on Sagittal T1 in the foramen,
``Subarticular Stenosis`` on Axial T2. Levels are ``L1/L2`` ... ``L5/S1`` (and ``l1_l2`` in train.csv's column
names): see :mod:`spine_lib.levels`. ``x``, ``y`` are pixels of that instance (column, row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from spine_lib.core.checks import CheckOutcome
from spine_lib.errors import InputPathError, TabularDataError
from spine_lib.levels import rsna_level_suffix

TRAIN_IMAGES = "train_images"
DICOM_EXTENSION = ".dcm"
DESCRIPTIONS_FILE = "train_series_descriptions.csv"
COORDINATES_FILE = "train_label_coordinates.csv"
LABELS_FILE = "train.csv"
COORDINATE_COLUMNS: tuple[str, ...] = ("study_id", "series_id", "instance_number", "condition", "level", "x", "y")
SEVERITIES: tuple[str, ...] = ("Normal/Mild", "Moderate", "Severe")

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
SERIES_DESCRIPTION_COLUMNS: tuple[str, ...] = ("study_id", "series_id", "series_description")

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

    Rows whose ids are not integers are ignored (a real file has none); a missing file or column, a binary file
    and a file without rows are errors. A file that is not UTF-8 is read as Windows-1252/Latin-1 (logged).
    """
    from spine_lib.io.records import read_csv_text

    path = Path(path)
    if not path.is_file():
        raise InputPathError(path, "series descriptions file does not exist")
    reader = csv.DictReader(io.StringIO(read_csv_text(path).text, newline=""))
    try:
        missing = [c for c in SERIES_DESCRIPTION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TabularDataError(path, f"missing column(s) {', '.join(missing)}")
        mapping: SeriesMapping = {}
        rows = 0
        for row in reader:
            rows += 1
            try:
                key = (int(row["study_id"]), int(row["series_id"]))
            except (TypeError, ValueError):
                continue
            mapping[key] = (row["series_description"] or "").strip()
    except csv.Error as error:
        raise TabularDataError(path, f"line {reader.line_num}: not a CSV text table ({error})") from error
    if not rows:
        raise TabularDataError(path, "no rows (header only)")
    return mapping


def get_series_type(series_id: int | str, study_id: int | str, series_mapping: SeriesMapping) -> str | None:
    """The series type (``sag_t1``, ``sag_t2``, ``ax_t2``) of one series; None if unknown."""
    try:
        key = (int(study_id), int(series_id))
    except (TypeError, ValueError):
        return None
    description = series_mapping.get(key)
    return series_type_of(description) if description is not None else None


def dicom_path(root: Path, study_id: int | str, series_id: int | str, instance_number: int | str) -> Path:
    """``<root>/train_images/<study>/<series>/<instance>.dcm``."""
    return Path(root) / TRAIN_IMAGES / str(study_id) / str(series_id) / f"{instance_number}{DICOM_EXTENSION}"


def series_folder(root: Path, study_id: int | str, series_id: int | str) -> Path:
    """``<root>/train_images/<study>/<series>``."""
    return Path(root) / TRAIN_IMAGES / str(study_id) / str(series_id)


def condition_column(condition: str, level: str) -> str:
    """``('Spinal Canal Stenosis', 'L4/L5')`` -> ``'spinal_canal_stenosis_l4_l5'`` (a column of train.csv)."""
    return f"{condition.lower().replace(' ', '_')}_{rsna_level_suffix(level)}"


def read_rsna_table(path: Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """The rows of one of RSNA's CSV files as strings (none when it is absent; a short row's missing cells ``''``).

    A file that is not UTF-8 is read as Windows-1252/Latin-1 (logged).

    Raises:
        TabularDataError: the file is not a CSV text table, or lacks a ``required`` column.
    """
    from spine_lib.io.records import read_csv_text

    path = Path(path)
    if not path.is_file():
        return []
    reader = csv.DictReader(io.StringIO(read_csv_text(path).text, newline=""), restval="")
    try:
        if missing := [c for c in required if c not in (reader.fieldnames or [])]:
            raise TabularDataError(path, f"missing column(s) {', '.join(missing)}")
        return [{k: v for k, v in row.items() if isinstance(k, str)} for row in reader]
    except csv.Error as error:
        raise TabularDataError(path, f"line {reader.line_num}: not a CSV text table ({error})") from error


def describe_rsna(root: Path) -> dict[str, int]:
    """Counts of an RSNA source: studies, series, DICOM files, label and coordinate rows."""
    images = Path(root) / TRAIN_IMAGES
    studies = [p for p in images.iterdir() if p.is_dir()] if images.is_dir() else []
    return {
        "studies": len(studies),
        "series": sum(1 for s in studies for p in s.iterdir() if p.is_dir()),
        "dicom_files": sum(1 for _ in images.rglob(f"*{DICOM_EXTENSION}")) if images.is_dir() else 0,
        "label_rows": len(read_rsna_table(Path(root) / LABELS_FILE)),
        "coordinate_rows": len(read_rsna_table(Path(root) / COORDINATES_FILE)),
        "series_descriptions": len(read_rsna_table(Path(root) / DESCRIPTIONS_FILE)),
    }


def check_rsna_coordinates(root: Path) -> CheckOutcome:
    """Each coordinate row points to an existing DICOM file, on a series of the kind its condition needs.

    A table that cannot be read (not CSV text, a required column missing) is the check's one problem.
    """
    root = Path(root)
    outcome = CheckOutcome()
    try:
        descriptions = {(r["study_id"], r["series_id"]): r["series_description"]
                        for r in read_rsna_table(root / DESCRIPTIONS_FILE, SERIES_DESCRIPTION_COLUMNS)}
        rows = read_rsna_table(root / COORDINATES_FILE, ("study_id", "series_id", "instance_number", "condition"))
    except TabularDataError as error:
        outcome.problems.append(f"{Path(str(error.subject)).name}: {error.cause}")
        return outcome
    for line, row in enumerate(rows, start=2):
        outcome.checked += 1
        where = f"{COORDINATES_FILE}:{line}"
        dicom = dicom_path(root, row["study_id"], row["series_id"], row["instance_number"])
        if not dicom.is_file():
            outcome.problems.append(f"{where}: {dicom.relative_to(root)} does not exist")
            continue
        kind = CONDITIONS.get(row["condition"])
        expected = SERIES_DESCRIPTIONS[kind[0]] if kind is not None else None
        actual = descriptions.get((row["study_id"], row["series_id"]))
        if expected is None:
            outcome.problems.append(f"{where}: unknown condition {row['condition']!r}")
        elif actual != expected:
            outcome.problems.append(f"{where}: {row['condition']} annotated on a {actual!r} series, expected {expected!r}")
    return outcome
