"""The file format of the IVD crops dataset (the grading classifier's input): the one place it is spelt.

```
<dataset>/images/<source>_<patient_id>_<series_type>_L<ivd_level>.png   one crop per (patient, disc, sequence)
<dataset>/annotations.csv                                               one row per crop, with its grades
<dataset>/rejects.csv                                                   every (patient, level, series) not cropped
<dataset>/contact_sheet.png                                             sample T2 crops, for people
<dataset>/crops_manifest.json                                           per-patient input fingerprints (reruns)
```

``source`` is ``spider`` or ``phenikaa``, ``series_type`` ``sag_t1`` or ``sag_t2``; ``ivd_level`` counts the discs
from the top (1 = L1/L2 ... 5 = L5/S1, the Phenikaa numbering; see :mod:`spine_lib.levels`) and ``level`` names the
disc. ``center_x``/``center_y`` is the reference point of the crop in pixels of the slice it was cut from (the
disc's posterior margin at the canal, RSNA's spinal-canal point), ``crop_x0..crop_y1`` the box in those pixels,
``point_source`` how the point was found (``mask`` or ``model``, with ``model_run_id``), ``paired`` whether the disc
has both sequences.
"""

from __future__ import annotations

from pathlib import Path

from spine_lib.io.fingerprint import dataset_fingerprint
from spine_lib.io.records import read_records_csv
from spine_lib.levels import phenikaa_ivd_label

IMAGES_FOLDER = "images"
ANNOTATIONS_FILE = "annotations.csv"
REJECTS_FILE = "rejects.csv"
CONTACT_SHEET_FILE = "contact_sheet.png"
MANIFEST_FILE = "crops_manifest.json"
SOURCES: tuple[str, ...] = ("spider", "phenikaa")
SERIES_TYPES: tuple[str, ...] = ("sag_t1", "sag_t2")
#: The grading columns of the spec, in its order (0/1 flags, Modic 0-3, Pfirrmann 1-5).
GRADE_COLUMNS: tuple[str, ...] = (
    "pfirrmann_grade", "disc_herniation", "disc_narrowing", "disc_bulging", "spondylolisthesis", "modic",
    "up_endplate", "low_endplate",
)
ANNOTATION_COLUMNS: tuple[str, ...] = (
    "image_path", "patient_id", "ivd_level", "series_type", "source", *GRADE_COLUMNS,
    "level", "series_file", "slice_index", "center_x", "center_y", "crop_x0", "crop_y0", "crop_x1", "crop_y1",
    "pixel_spacing_x", "pixel_spacing_y", "point_source", "model_run_id", "paired",
)
REJECT_COLUMNS: tuple[str, ...] = ("source", "patient_id", "level", "series_type", "reason", "detail")
POINT_SOURCES: tuple[str, ...] = ("mask", "model")
#: How a crop is cut around its disc's point: anterior, posterior, up, down (in pixels of CROP_SPACING_MM mm: 48 mm
#: in front, 16 behind, 32 up and down), and the size of the written crop.
CROP_DELTA: tuple[int, int, int, int] = (96, 32, 64, 64)
CROP_SPACING_MM = 0.5
CROP_SIZE: tuple[int, int] = (128, 128)


def crop_name(source: str, patient_id: str, series_type: str, level: str) -> str:
    """``spider_12_sag_t2_L4.png``: the crop of one disc (``L4`` = L4/L5, counted from the top).

    Example:
        >>> crop_name("spider", "12", "sag_t2", "L4/L5"), crop_name("phenikaa", "250010139", "sag_t1", "L5/S1")
        ('spider_12_sag_t2_L4.png', 'phenikaa_250010139_sag_t1_L5.png')
    """
    return f"{source}_{patient_id}_{series_type}_L{phenikaa_ivd_label(level)}.png"


def image_entry(name: str) -> str:
    """The ``image_path`` column's spelling of a crop file name (``images/<name>``)."""
    return f"{IMAGES_FOLDER}/{name}"


def read_crop_annotations(dataset: Path) -> list[dict[str, str]]:
    """The rows of ``<dataset>/annotations.csv`` (none when the dataset has not been built)."""
    return read_records_csv(Path(dataset) / ANNOTATIONS_FILE, required=("image_path", "patient_id", "level"))


def read_crop_rejects(dataset: Path) -> list[dict[str, str]]:
    """The rows of ``<dataset>/rejects.csv`` (none when absent)."""
    return read_records_csv(Path(dataset) / REJECTS_FILE)


def dataset_version(dataset: Path) -> str:
    """Fingerprint of the crops dataset (annotations.csv, every crop): changes when it does."""
    return dataset_fingerprint(dataset, [ANNOTATIONS_FILE], [IMAGES_FOLDER])


__all__ = ["ANNOTATION_COLUMNS", "CROP_DELTA", "CROP_SIZE", "CROP_SPACING_MM", "GRADE_COLUMNS", "REJECT_COLUMNS",
           "crop_name", "dataset_version", "image_entry", "read_crop_annotations", "read_crop_rejects"]
