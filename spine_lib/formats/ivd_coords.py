"""The file format of the IVD localization dataset: the one place its files and columns are spelt.

```
<dataset>/images/rsna_<study>_<series>_<instance>.png   the labelled instance, normalized to 8 bits
<dataset>/images/pretrain_<source>_<name>.png            Lumbar Coords pretraining pictures (when present)
<dataset>/annotations.csv                                one row per (image, level, point)
<dataset>/rejects.csv                                    coordinate rows that could not be used, with the reason
```

Pixel convention: ``x`` is the column, ``y`` the row, pixel centres at integers (as RSNA's coordinates);
``relative_x = x / width`` and ``relative_y = y / height``. Written by :mod:`spine_lib.datasets.ivd_coords`,
read back by the training dataset (:func:`read_annotations`) and by the dataset's checks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from spine_lib.errors import InputPathError, TabularDataError
from spine_lib.io.fingerprint import dataset_fingerprint
from spine_lib.io.records import read_records_csv
from spine_lib.levels import check_level

IMAGES_FOLDER = "images"
ANNOTATIONS_FILE = "annotations.csv"
REJECTS_FILE = "rejects.csv"
ANNOTATION_COLUMNS: tuple[str, ...] = (
    "image_path", "level", "relative_x", "relative_y", "series_type", "source",
    "study_id", "series_id", "instance_number", "point", "x", "y", "width", "height",
)
#: What a reader needs; the other columns say where a point came from.
REQUIRED_COLUMNS: tuple[str, ...] = ("image_path", "level", "relative_x", "relative_y", "series_type")
REJECT_COLUMNS: tuple[str, ...] = (
    "source", "file", "line", "study_id", "series_id", "instance_number", "condition", "level", "reason", "detail",
)
#: Intensity window of the 8-bit images: these percentiles of each image (robust to a few hot pixels).
NORMALIZE_PERCENTILES = (0.5, 99.5)
RSNA_IMAGE_PREFIX = "rsna"
PRETRAIN_IMAGE_PREFIX = "pretrain"


def rsna_image_name(study_id: str, series_id: str, instance_number: str) -> str:
    """``rsna_<study>_<series>_<instance>.png``: the image of one RSNA instance."""
    return f"{RSNA_IMAGE_PREFIX}_{study_id}_{series_id}_{instance_number}.png"


def pretrain_image_name(source: str, stem: str) -> str:
    """``pretrain_<source>_<stem>.png``: the image of one Lumbar Coords pretraining picture."""
    return f"{PRETRAIN_IMAGE_PREFIX}_{source}_{stem}.png"


def is_pretraining(source: str) -> bool:
    """Whether an annotation's ``source`` is a Lumbar Coords pretraining picture (``pretrain_<source>``)."""
    return source.startswith(f"{PRETRAIN_IMAGE_PREFIX}_")


def image_entry(name: str) -> str:
    """The ``image_path`` column's spelling of an image file name (``images/<name>``)."""
    return f"{IMAGES_FOLDER}/{name}"


def study_of_image(image_path: str) -> str:
    """``images/rsna_<study>_<series>_<instance>.png`` -> ``<study>``; other names: the name without suffix."""
    parts = Path(image_path).stem.split("_")
    return parts[1] if len(parts) >= 2 and parts[0] == RSNA_IMAGE_PREFIX else Path(image_path).stem


@dataclass(frozen=True)
class IVDRecord:
    """One annotation row. Reads as attributes (``record.level``) or like a CSV row (``record["level"]``)."""

    image_path: str  # relative to the dataset folder
    level: str
    relative_x: float
    relative_y: float
    series_type: str
    source: str
    study_id: str
    point: str = ""  # canal, foramen_left, foramen_right, disc (a pretraining picture); "" when not recorded

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]


def read_annotation_rows(dataset: Path) -> list[dict[str, str]]:
    """The rows of ``<dataset>/annotations.csv`` as strings (the file and the required columns must exist)."""
    path = Path(dataset) / ANNOTATIONS_FILE
    if not path.is_file():
        raise InputPathError(path, "annotations.csv not found (build the dataset with `spine-vision dataset localization`)")
    return read_records_csv(path, required=REQUIRED_COLUMNS)


def read_annotations(data_path: Path) -> list[IVDRecord]:
    """The rows of ``<data_path>/annotations.csv`` (a missing ``study_id`` column: the image name's first id)."""
    path = Path(data_path) / ANNOTATIONS_FILE
    records = []
    for line, row in enumerate(read_annotation_rows(data_path), start=2):
        try:
            records.append(IVDRecord(
                image_path=row["image_path"],
                level=check_level(row["level"]),
                relative_x=float(row["relative_x"]),
                relative_y=float(row["relative_y"]),
                series_type=row["series_type"],
                source=row.get("source") or "",
                study_id=row.get("study_id") or study_of_image(row["image_path"]),
                point=row.get("point") or "",
            ))
        except ValueError as error:
            raise TabularDataError(path, f"line {line}: {error}") from error
    return records


def read_rejects(dataset: Path) -> list[dict[str, str]]:
    """The rows of ``<dataset>/rejects.csv`` (none when it is absent)."""
    return read_records_csv(Path(dataset) / REJECTS_FILE)


def dataset_version(output_path: Path) -> str:
    """Fingerprint of the localization dataset (annotations.csv, every image): changes when it does."""
    return dataset_fingerprint(output_path, [ANNOTATIONS_FILE], [IMAGES_FOLDER])
