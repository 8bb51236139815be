"""SPIDER (lumbar spine MRI segmentation, Zenodo 10159290) as it lies on disk: the one home of its names.

```
raw/SPIDER/images/<patient>_<t1|t2|t2_SPACE>.mha     sagittal series
raw/SPIDER/masks/<same name>.mha                     masks on the same grid
raw/SPIDER/overview.csv                              one row per series (new_file_name, subset, ...)
raw/SPIDER/radiological_gradings.csv                 one row per (patient, IVD label)
```

Mask values: 0 background, 1-25 vertebrae, 100 spinal canal, 101-125 partially visible vertebrae, 201-225
discs. ``IVD label`` N of the gradings is mask value 200 + N, counted from the bottom (1 = L5/S1): the
conversions live in :mod:`spine_lib.levels`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

from spine_lib.core.checks import CheckOutcome
from spine_lib.io.records import read_records_csv

IMAGES = "images"
MASKS = "masks"
FILE_EXTENSION = ".mha"
GRADINGS_FILE = "radiological_gradings.csv"
OVERVIEW_FILE = "overview.csv"
#: The sequences SPIDER holds, as its file names spell them.
Sequence = Literal["t1", "t2", "t2_SPACE"]
SEQUENCES: tuple[Sequence, ...] = get_args(Sequence)
#: ``<patient>_<sequence>`` (the file name without its extension).
SERIES_STEM = re.compile(r"^(?P<patient>\d+)_(?P<sequence>t1|t2|t2_SPACE)$")
#: Column names of radiological_gradings.csv, spelt as SPIDER spells them (``Pfirrman``, sic).
GRADING_COLUMNS: tuple[str, ...] = (
    "Patient", "IVD label", "Modic", "UP endplate", "LOW endplate", "Spondylolisthesis", "Disc herniation",
    "Disc narrowing", "Disc bulging", "Pfirrman grade",
)
OVERVIEW_COLUMNS: tuple[str, ...] = (
    "new_file_name", "subset", "sex", "age", "manufacturer", "field_strength_t", "num_slices", "pixel_spacing_mm",
    "slice_thickness_mm",
)


def series_stem(patient: int | str, sequence: str) -> str:
    """``(12, 't2')`` -> ``'12_t2'``: the name of a series (and of its nnU-Net case)."""
    if sequence not in SEQUENCES:
        raise ValueError(f"unknown SPIDER sequence {sequence!r}; expected one of {', '.join(SEQUENCES)}")
    return f"{patient}_{sequence}"


def patient_of(stem: str) -> str:
    """The patient of a series or case name (``'12_t2_SPACE'`` -> ``'12'``; other names: up to the first ``_``)."""
    parsed = parse_series_stem(stem)
    return parsed[0] if parsed is not None else stem.split("_", 1)[0]


def series_file_name(patient: int | str, sequence: str) -> str:
    """``(12, 't2')`` -> ``'12_t2.mha'``."""
    return series_stem(patient, sequence) + FILE_EXTENSION


def parse_series_stem(stem: str) -> tuple[str, str] | None:
    """``'12_t2_SPACE'`` -> ``('12', 't2_SPACE')``; None for a name that is not a SPIDER series."""
    match = SERIES_STEM.match(stem)
    return (match["patient"], match["sequence"]) if match else None


def series_name_pattern(extension: str = FILE_EXTENSION) -> str:
    """How a series file is named, for messages: ``'<patient>_<t1|t2|t2_SPACE>.mha'``."""
    return f"<patient>_<{'|'.join(SEQUENCES)}>{extension}"


def parse_series_file_name(name: str) -> tuple[str, str] | None:
    """``'12_t2.mha'`` -> ``('12', 't2')``; None for any other file name."""
    return parse_series_stem(name.removesuffix(FILE_EXTENSION)) if name.endswith(FILE_EXTENSION) else None


def image_files(root: Path) -> list[Path]:
    """The series files under ``<root>/images`` (sorted; empty when the folder is absent)."""
    folder = Path(root) / IMAGES
    return sorted(folder.glob(f"*{FILE_EXTENSION}")) if folder.is_dir() else []


def mask_files(root: Path) -> list[Path]:
    """The mask files under ``<root>/masks`` (sorted; empty when the folder is absent)."""
    folder = Path(root) / MASKS
    return sorted(folder.glob(f"*{FILE_EXTENSION}")) if folder.is_dir() else []


def describe_spider(root: Path) -> dict[str, int]:
    """Counts of a SPIDER source: patients, image series by sequence, masks, grading rows.

    Example:
        >>> describe_spider(Path("/nonexistent"))["series"]
        0
    """
    names = [n for n in (parse_series_file_name(p.name) for p in image_files(root)) if n]
    return {
        "patients": len({patient for patient, _ in names}),
        "series": len(image_files(root)),
        "t1_series": sum(sequence == "t1" for _, sequence in names),
        "t2_series": sum(sequence == "t2" for _, sequence in names),
        "t2_space_series": sum(sequence == "t2_SPACE" for _, sequence in names),
        "masks": len(mask_files(root)),
        "grading_rows": len(read_records_csv(Path(root) / GRADINGS_FILE)),
    }


def check_spider_masks(root: Path, schema_name: str = "spider") -> CheckOutcome:
    """Every mask has an image of the same geometry, and only label values the schema maps."""
    import numpy as np
    import SimpleITK as sitk

    from spine_lib.labels import load_label_schema

    schema = load_label_schema(schema_name)
    known = set(schema.source_labels.values())
    outcome = CheckOutcome()
    for mask_path in mask_files(root):
        outcome.checked += 1
        try:
            mask = sitk.ReadImage(str(mask_path))
        except RuntimeError:
            outcome.problems.append(f"{mask_path.name}: unreadable mask (empty or damaged file)")
            continue
        values = set(np.unique(sitk.GetArrayViewFromImage(mask)).tolist())
        if unknown := sorted(values - known):
            outcome.problems.append(f"{mask_path.name}: label values outside the '{schema_name}' schema: {unknown}")
        image_path = Path(root) / IMAGES / mask_path.name
        if not image_path.is_file():
            outcome.problems.append(f"{mask_path.name}: no image with this name")
            continue
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(image_path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            outcome.problems.append(f"{mask_path.name}: its image cannot be read (empty or damaged file)")
            continue
        if reader.GetSize() != mask.GetSize() or not np.allclose(reader.GetSpacing(), mask.GetSpacing(), atol=1e-4):
            outcome.problems.append(f"{mask_path.name}: image and mask differ in size or spacing")
        spacing = mask.GetSpacing()
        if not all(0.1 <= s <= 10.0 for s in spacing):
            outcome.problems.append(f"{mask_path.name}: implausible spacing {spacing}")
    return outcome
