"""The three raw sources as they lie on disk: what each holds, and the checks that guard them.

Works the same on real data and on a synthetic root: it reads only the published layouts.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine_lib.errors import SpineVisionError
from spine_lib.io.tabular import load_tabular_data, table_files
from spine_lib.labels import load_label_schema

SPIDER_NAME = re.compile(r"^(?P<patient>\d+)_(?P<sequence>t1|t2|t2_SPACE)\.mha$")
RSNA_CONDITION_SERIES = {
    "Spinal Canal Stenosis": "Sagittal T2/STIR",
    "Left Neural Foraminal Narrowing": "Sagittal T1",
    "Right Neural Foraminal Narrowing": "Sagittal T1",
    "Left Subarticular Stenosis": "Axial T2",
    "Right Subarticular Stenosis": "Axial T2",
}


@dataclass
class CheckOutcome:
    """Result of a data-quality check: how many items were looked at and what is wrong with which."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


# SPIDER ---------------------------------------------------------------------------------------------
def describe_spider(root: Path) -> dict[str, int]:
    """Counts of the SPIDER-like source: patients, image series by sequence, masks, grading rows."""
    images = sorted((root / "images").glob("*.mha")) if (root / "images").is_dir() else []
    names = [m for m in (SPIDER_NAME.match(p.name) for p in images) if m]
    return {
        "patients": len({m["patient"] for m in names}),
        "series": len(images),
        "t1_series": sum(m["sequence"] == "t1" for m in names),
        "t2_series": sum(m["sequence"] == "t2" for m in names),
        "t2_space_series": sum(m["sequence"] == "t2_SPACE" for m in names),
        "masks": len(list((root / "masks").glob("*.mha"))) if (root / "masks").is_dir() else 0,
        "grading_rows": len(read_csv_rows(root / "radiological_gradings.csv")),
    }


def check_spider_masks(root: Path, schema_name: str = "spider") -> CheckOutcome:
    """Every mask has an image of the same geometry, and only label values the schema maps."""
    schema = load_label_schema(schema_name)
    known = set(schema.source_labels.values())
    outcome = CheckOutcome()
    for mask_path in sorted((root / "masks").glob("*.mha")) if (root / "masks").is_dir() else []:
        outcome.checked += 1
        try:
            mask = sitk.ReadImage(str(mask_path))
        except RuntimeError as error:
            outcome.problems.append(f"{mask_path.name}: unreadable ({str(error).strip().splitlines()[-1][:120]})")
            continue
        values = set(np.unique(sitk.GetArrayViewFromImage(mask)).tolist())
        if unknown := sorted(values - known):
            outcome.problems.append(f"{mask_path.name}: label values outside the '{schema_name}' schema: {unknown}")
        image_path = root / "images" / mask_path.name
        if not image_path.is_file():
            outcome.problems.append(f"{mask_path.name}: no image with this name")
            continue
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(image_path))
        reader.ReadImageInformation()
        if reader.GetSize() != mask.GetSize() or not np.allclose(reader.GetSpacing(), mask.GetSpacing(), atol=1e-4):
            outcome.problems.append(f"{mask_path.name}: image and mask differ in size or spacing")
        spacing = mask.GetSpacing()
        if not all(0.1 <= s <= 10.0 for s in spacing):
            outcome.problems.append(f"{mask_path.name}: implausible spacing {spacing}")
    return outcome


# RSNA -----------------------------------------------------------------------------------------------
def describe_rsna(root: Path) -> dict[str, int]:
    """Counts of the RSNA-like source: studies, series, DICOM files, label and coordinate rows."""
    images = root / "train_images"
    studies = [p for p in images.iterdir() if p.is_dir()] if images.is_dir() else []
    return {
        "studies": len(studies),
        "series": sum(1 for s in studies for p in s.iterdir() if p.is_dir()),
        "dicom_files": sum(1 for _ in images.rglob("*.dcm")) if images.is_dir() else 0,
        "label_rows": len(read_csv_rows(root / "train.csv")),
        "coordinate_rows": len(read_csv_rows(root / "train_label_coordinates.csv")),
        "series_descriptions": len(read_csv_rows(root / "train_series_descriptions.csv")),
    }


def check_rsna_coordinates(root: Path) -> CheckOutcome:
    """Each coordinate row points to an existing DICOM file, on a series of the kind its condition needs."""
    descriptions = {
        (r["study_id"], r["series_id"]): r["series_description"]
        for r in read_csv_rows(root / "train_series_descriptions.csv")
    }
    outcome = CheckOutcome()
    for line, row in enumerate(read_csv_rows(root / "train_label_coordinates.csv"), start=2):
        outcome.checked += 1
        where = f"train_label_coordinates.csv:{line}"
        dicom = root / "train_images" / row["study_id"] / row["series_id"] / f"{row['instance_number']}.dcm"
        if not dicom.is_file():
            outcome.problems.append(f"{where}: {dicom.relative_to(root)} does not exist")
            continue
        expected = RSNA_CONDITION_SERIES.get(row["condition"])
        actual = descriptions.get((row["study_id"], row["series_id"]))
        if expected is None:
            outcome.problems.append(f"{where}: unknown condition {row['condition']!r}")
        elif actual != expected:
            outcome.problems.append(f"{where}: {row['condition']} annotated on a {actual!r} series, expected {expected!r}")
    return outcome


# Phenikaa -------------------------------------------------------------------------------------------
def describe_phenikaa(root: Path) -> dict[str, int]:
    """Counts of the Phenikaa-like source: reports by kind, image folders, tables and their rows."""
    reports = [p for p in (root / "reports").iterdir() if p.is_file()] if (root / "reports").is_dir() else []
    images = root / "images"
    tables = root / "tables"
    rows = 0
    if tables.is_dir() and any(tables.iterdir()):
        try:
            result = load_tabular_data(tables, missing="keep")
            rows = len(result.data) + len(result.dropped)
        except SpineVisionError:
            rows = 0
    return {
        "reports": len(reports),
        "png_reports": sum(p.suffix.lower() == ".png" for p in reports),
        "pdf_reports": sum(p.suffix.lower() == ".pdf" for p in reports),
        "image_folders": sum(1 for p in images.iterdir() if p.is_dir()) if images.is_dir() else 0,
        "tables": len([p for p in tables.iterdir() if p.is_file()]) if tables.is_dir() else 0,
        "label_rows": rows,
    }


def check_label_tables(root: Path, corrupted_ids: tuple[str, ...] = ()) -> tuple[CheckOutcome, dict[str, int]]:
    """Every label table parses; returns the outcome and how many rows were dropped for each reason."""
    tables = root / "tables"
    outcome = CheckOutcome()
    try:
        files = table_files(tables)
        result = load_tabular_data(tables, corrupted_ids=corrupted_ids)
    except SpineVisionError as error:
        outcome.problems.append(str(error))
        return outcome, {}
    outcome.checked = len(files)
    outcome.problems.extend(f"{path.name}: {reason}" for path, reason in result.rejected_files.items())
    return outcome, {"kept_rows": len(result.data), **result.dropped_reasons()}
