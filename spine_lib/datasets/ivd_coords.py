"""RSNA 2024 coordinates (and the Lumbar Coords CSVs, when present) -> the IVD localization dataset.

```
<base>/processed/<output_name>/
    images/rsna_<study>_<series>_<instance>.png     the labelled instance, normalized to 8 bits
    images/pretrain_<source>_<name>.png              Lumbar Coords pretraining images (when present)
    annotations.csv                                  one row per (image, level, point)
    rejects.csv                                      coordinate rows that could not be used, with the reason
```

One point per level and image: RSNA's Spinal Canal Stenosis point on Sagittal T2 (where the disc meets the
canal) and the left/right Neural Foraminal Narrowing points on Sagittal T1. Subarticular points (Axial T2) are
not sagittal and are left out (counted). ``coords_rsna_improved.csv`` replaces the RSNA point of the same
study, series, condition and level; ``coords_pretrain.csv`` adds its own images.

Lumbar Coords (``<base>/raw/Lumbar Coords/``, optional; columns by name, an unnamed index column is ignored):
- ``coords_rsna_improved.csv``: study_id, series_id, instance_number (``-1`` when unknown), condition, level,
  x, y (pixels; or relative_x, relative_y) and side (L/R; the canal point is taken from side R);
- ``coords_pretrain.csv``: source (spider, lsd, osf, tseg), filename, level, relative_x, relative_y (or x, y);
  pictures under ``data/processed_<source>_jpgs/`` (or ``.npy`` arrays under ``data/processed_<source>/``).

Pixel convention: ``x`` is the column, ``y`` the row, pixel centres at integers (as RSNA's coordinates);
``relative_x = x / width`` and ``relative_y = y / height``.

A bad row (missing DICOM, invalid instance number, point outside the image, unknown series type, ...) is
skipped, counted by reason in the report and written to ``rejects.csv``; the build carries on. Images are
written atomically and reused when newer than their source, so a rerun gives the same dataset.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import tyro
from loguru import logger

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DataLayout
from spine_lib.datasets.rsna import SAG_T1, SAG_T2, condition_kind, get_series_type, load_series_mapping
from spine_lib.errors import ConfigError, InputPathError
from spine_lib.io.fingerprint import dataset_fingerprint
from spine_lib.levels import LEVEL_TO_IDX, LEVELS, check_level

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

ANNOTATION_COLUMNS = [
    "image_path", "level", "relative_x", "relative_y", "series_type", "source",
    "study_id", "series_id", "instance_number", "point", "x", "y", "width", "height",
]
REJECT_COLUMNS = [
    "source", "file", "line", "study_id", "series_id", "instance_number", "condition", "level", "reason", "detail",
]
RSNA_COORDINATES = "train_label_coordinates.csv"
RSNA_DESCRIPTIONS = "train_series_descriptions.csv"
IMPROVED_COORDINATES = "coords_rsna_improved.csv"
PRETRAIN_COORDINATES = "coords_pretrain.csv"
#: Lumbar Coords pretraining sources -> (image folder under data/, series type)
PRETRAIN_SOURCES: dict[str, tuple[str, str]] = {
    "spider": ("processed_spider_jpgs", SAG_T2),
    "lsd": ("processed_lsd_jpgs", SAG_T2),
    "osf": ("processed_osf_jpgs", SAG_T1),
    "tseg": ("processed_tseg_jpgs", "ct"),
}
#: intensity window of the 8-bit images (robust to a few hot pixels)
NORMALIZE_PERCENTILES = (0.5, 99.5)
PARALLEL_MIN_IMAGES = 256  # below this, starting worker processes costs more than it saves (measured)

# Reasons a coordinate row is rejected (rejects.csv) ...
MISSING_DICOM = "missing_dicom"
INVALID_INSTANCE = "invalid_instance"
POINT_OUTSIDE = "point_outside"
UNKNOWN_SERIES_TYPE = "unknown_series_type"
WRONG_SERIES_TYPE = "wrong_series_type"
UNKNOWN_CONDITION = "unknown_condition"
UNKNOWN_LEVEL = "unknown_level"
BAD_COORDINATE = "bad_coordinate"
UNREADABLE_IMAGE = "unreadable_image"
MISSING_IMAGE = "missing_image"
UNKNOWN_SOURCE = "unknown_source"
DUPLICATE_POINT = "duplicate_point"
# ... and reasons a valid row is left out on purpose (counted, not rejected).
AXIAL_CONDITION = "axial_condition"
SPINAL_CANAL_OFF = "spinal_canal_excluded"
NEURAL_FORAMINAL_OFF = "neural_foraminal_excluded"
REPLACED_BY_IMPROVED = "replaced_by_improved"
CANAL_SECOND_SIDE = "canal_second_side"


class IVDDatasetConfig(BaseConfig):
    """Build the IVD localization dataset (images + annotations.csv) from RSNA 2024 and Lumbar Coords."""

    base_path: Annotated[Path, tyro.conf.arg(help="Data root (raw/RSNA, raw/Lumbar Coords, processed/).")] = Path("data")
    output_name: Annotated[str, tyro.conf.arg(help="Dataset folder under <base>/processed.")] = "ivd_coords"
    include_neural_foraminal: Annotated[
        bool, tyro.conf.arg(help="Include the Neural Foraminal Narrowing points (Sagittal T1).")
    ] = True
    include_spinal_canal: Annotated[bool, tyro.conf.arg(help="Include the Spinal Canal Stenosis points (Sagittal T2).")] = True
    skip_invalid_instances: Annotated[
        bool,
        tyro.conf.arg(help="Skip rows with an invalid instance number; otherwise take the instance of the same "
                           "series, condition and side from a sibling row when there is one."),
    ] = True
    workers: Annotated[int, tyro.conf.arg(help="Processes converting DICOM instances to PNG.")] = max(
        1, min(4, os.cpu_count() or 1)
    )

    @property
    def layout(self) -> DataLayout:
        return DataLayout(root=self.base_path)

    @property
    def rsna_path(self) -> Path:
        return self.layout.rsna

    @property
    def lumbar_coords_path(self) -> Path:
        return self.layout.lumbar_coords

    @property
    def output_path(self) -> Path:
        return self.layout.processed / self.output_name

    @property
    def annotations_path(self) -> Path:
        return self.output_path / "annotations.csv"

    @property
    def rejects_path(self) -> Path:
        return self.output_path / "rejects.csv"


@dataclass
class IVDDatasetReport:
    """Counts of one build (ids and counts only: safe as Dagster metadata)."""

    annotations: int = 0
    images: int = 0
    studies: int = 0
    images_written: int = 0
    images_reused: int = 0
    images_removed: int = 0
    rows_read: dict[str, int] = field(default_factory=dict)  # per input file
    by_series_type: dict[str, int] = field(default_factory=dict)
    by_level: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    by_series_level: dict[str, dict[str, int]] = field(default_factory=dict)  # series type -> level -> count
    skipped: dict[str, int] = field(default_factory=dict)  # rejected rows by reason (rejects.csv)
    excluded: dict[str, int] = field(default_factory=dict)  # valid rows left out on purpose, by reason
    output_path: str = ""

    @property
    def rejected(self) -> int:
        return sum(self.skipped.values())

    def counts_table(self) -> str:
        """Annotations per series type and level, as a markdown table."""
        lines = ["| series type | " + " | ".join(LEVELS) + " | total |", "|---" * (len(LEVELS) + 2) + "|"]
        for series_type, levels in sorted(self.by_series_level.items()):
            counts = [levels.get(level, 0) for level in LEVELS]
            lines.append(f"| {series_type} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
        return "\n".join(lines)

    def as_metadata(self) -> dict[str, Any]:
        """Flat numbers for Dagster: ``series_sag_t2``, ``level_L4/L5``, ``source_rsna``, ``skipped_<reason>``..."""
        data: dict[str, Any] = {
            "annotations": self.annotations, "images": self.images, "studies": self.studies,
            "images_written": self.images_written, "images_reused": self.images_reused,
            "images_removed": self.images_removed, "rejected": self.rejected,
        }
        data.update({f"rows_{k}": v for k, v in sorted(self.rows_read.items())})
        data.update({f"series_{k}": v for k, v in sorted(self.by_series_type.items())})
        data.update({f"level_{k}": v for k, v in sorted(self.by_level.items(), key=lambda kv: LEVEL_TO_IDX.get(kv[0], 9))})
        data.update({f"source_{k}": v for k, v in sorted(self.by_source.items())})
        data.update({f"skipped_{k}": v for k, v in sorted(self.skipped.items())})
        data.update({f"excluded_{k}": v for k, v in sorted(self.excluded.items())})
        return data


@dataclass
class PointRow:
    """One coordinate row of any input CSV, as read (strings are parsed later, so bad values become rejects)."""

    source: str  # rsna | rsna_improved | pretrain_<source>
    file: str
    line: int
    level: str
    x: str = ""
    y: str = ""
    relative_x: str = ""
    relative_y: str = ""
    study_id: str = ""
    series_id: str = ""
    instance_number: str = ""
    condition: str = ""
    side: str = ""
    filename: str = ""  # pretraining image


@dataclass
class ImageTask:
    """One output image and where it comes from."""

    output: Path
    source: Path
    kind: str  # dicom | picture


@dataclass
class Resolved:
    """A row that points to an image: the image's name, the point kind, and (still unchecked) coordinates."""

    row: PointRow
    image_name: str
    series_type: str
    point: str
    study_id: str
    series_id: str
    instance_number: str


class Rejects:
    """Collects rejected rows with their reason, and excluded rows by reason."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.excluded: Counter[str] = Counter()

    def reject(self, row: PointRow, reason: str, detail: str = "") -> None:
        logger.debug("{}:{} rejected: {} {}", row.file, row.line, reason, detail)
        self.rows.append({
            "source": row.source, "file": row.file, "line": row.line, "study_id": row.study_id,
            "series_id": row.series_id, "instance_number": row.instance_number,
            "condition": row.condition or row.filename, "level": row.level, "reason": reason, "detail": detail,
        })

    def exclude(self, reason: str) -> None:
        self.excluded[reason] += 1

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(str(r["reason"]) for r in self.rows).items()))


# reading --------------------------------------------------------------------------------------------------------
def read_rows(path: Path, source: str) -> list[PointRow]:
    """Rows of a coordinate CSV as :class:`PointRow` (columns by name; an unnamed index column is ignored).

    ``coords_pretrain.csv`` names each row's own source (spider, lsd, osf, tseg): it becomes ``pretrain_<it>``.
    """
    wanted = set(PointRow.__dataclass_fields__) - {"source", "file", "line"}
    rows: list[PointRow] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "level" not in fields:
            raise InputPathError(path, "coordinate table has no 'level' column")
        for line, record in enumerate(reader, start=2):
            values = {k: (v or "").strip() for k, v in record.items() if k in wanted and isinstance(v, str)}
            own = (record.get("source") or "").strip().lower() if source == "pretrain" else ""
            rows.append(PointRow(source=f"{source}_{own}" if own else source, file=path.name, line=line, **values))
    return rows


def parse_instance(text: str) -> int | None:
    """An instance number (>= 1) or None for anything else (``-1``, ``''``, ``'3.5'``, ``'abc'``)."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value != int(value) or value < 1:
        return None
    return int(value)


def parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def clean_id(text: str) -> str | None:
    """A study/series id as its integer spelling (``'123.0'`` -> ``'123'``), None if not an id."""
    value = parse_instance(text)
    return str(value) if value is not None else None


def resolve_invalid_instances(rows: list[PointRow]) -> None:
    """Give rows with an invalid instance number the instance of a sibling (same study, series, condition,
    side) that has a valid one: the most common one, ties to the smallest."""
    siblings: dict[tuple[str, str, str, str], Counter[int]] = {}
    for row in rows:
        number = parse_instance(row.instance_number)
        if number is not None:
            key = (row.study_id, row.series_id, row.condition.lower(), row.side.upper())
            siblings.setdefault(key, Counter())[number] += 1
    for row in rows:
        if parse_instance(row.instance_number) is None:
            counts = siblings.get((row.study_id, row.series_id, row.condition.lower(), row.side.upper()))
            if counts:
                row.instance_number = str(min(counts, key=lambda n, c=counts: (-c[n], n)))


def resolve_rsna_rows(
    rows: list[PointRow], config: IVDDatasetConfig, rejects: Rejects
) -> list[Resolved]:
    """RSNA rows (original or improved) -> rows pointing to an existing DICOM instance of a sagittal series."""
    mapping_path = config.rsna_path / RSNA_DESCRIPTIONS
    mapping = load_series_mapping(mapping_path) if rows else {}
    images = config.rsna_path / "train_images"
    if not config.skip_invalid_instances:
        resolve_invalid_instances(rows)
    resolved: list[Resolved] = []
    for row in rows:
        kind = condition_kind(row.condition)
        if kind is None:
            rejects.reject(row, UNKNOWN_CONDITION)
            continue
        _, point, side = kind
        if point == "subarticular":
            rejects.exclude(AXIAL_CONDITION)
            continue
        if point == "canal" and not config.include_spinal_canal:
            rejects.exclude(SPINAL_CANAL_OFF)
            continue
        if point == "foramen" and not config.include_neural_foraminal:
            rejects.exclude(NEURAL_FORAMINAL_OFF)
            continue
        if point == "canal" and row.side.upper() == "L":
            # Lumbar Coords marks the canal point twice (sides L and R); public solutions use side R.
            rejects.exclude(CANAL_SECOND_SIDE)
            continue
        study, series = clean_id(row.study_id), clean_id(row.series_id)
        series_type = get_series_type(series, study, mapping) if study and series else None
        if study is None or series is None or series_type is None:
            rejects.reject(row, UNKNOWN_SERIES_TYPE)
            continue
        if series_type not in (SAG_T1, SAG_T2):
            rejects.reject(row, WRONG_SERIES_TYPE)
            continue
        instance = parse_instance(row.instance_number)
        if instance is None:
            rejects.reject(row, INVALID_INSTANCE)
            continue
        dicom = images / study / series / f"{instance}.dcm"
        if not dicom.is_file():
            rejects.reject(row, MISSING_DICOM)
            continue
        resolved.append(Resolved(
            row=row, image_name=f"rsna_{study}_{series}_{instance}.png", series_type=series_type,
            point=f"{point}_{side}" if side else point, study_id=study, series_id=series,
            instance_number=str(instance),
        ))
    return resolved


def resolve_pretrain_rows(rows: list[PointRow], data: Path, rejects: Rejects) -> tuple[list[Resolved], dict[str, Path]]:
    """Lumbar Coords pretraining rows -> rows pointing to an existing picture (or ``.npy``) of its source."""
    resolved: list[Resolved] = []
    sources: dict[str, Path] = {}
    for row in rows:
        key = row.source.removeprefix("pretrain_")
        if key not in PRETRAIN_SOURCES:
            rejects.reject(row, UNKNOWN_SOURCE)
            continue
        folder, series_type = PRETRAIN_SOURCES[key]
        name = Path(row.filename)
        if not row.filename or name.is_absolute() or ".." in name.parts:
            rejects.reject(row, MISSING_IMAGE)
            continue
        picture = data / folder / name
        if not picture.is_file():
            npy = data / folder.removesuffix("_jpgs") / name.with_suffix(".npy")
            if not npy.is_file():
                rejects.reject(row, MISSING_IMAGE)
                continue
            picture = npy
        stem = "_".join(name.with_suffix("").parts)
        image_name = f"pretrain_{key}_{stem}.png"
        sources[image_name] = picture
        resolved.append(Resolved(
            row=row, image_name=image_name, series_type=series_type, point="disc",
            study_id=f"{key}_{stem.split('_')[0]}", series_id="", instance_number="",
        ))
    return resolved, sources


# images ---------------------------------------------------------------------------------------------------------
def read_dicom_pixels(path: Path) -> npt.NDArray[np.float32]:
    """The pixels of one DICOM instance as a 2D float array (first frame; MONOCHROME1 inverted)."""
    import numpy as np
    import pydicom

    dataset = pydicom.dcmread(path)
    pixels = np.asarray(dataset.pixel_array, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels[0]
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {pixels.shape}")
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def read_picture(path: Path) -> npt.NDArray[np.uint8]:
    """A Lumbar Coords picture (JPEG/PNG, or ``.npy`` array) as 8-bit grayscale."""
    import cv2
    import numpy as np

    from spine_lib.io.transforms import normalize_to_uint8

    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim == 3:
            array = array[..., 0] if array.shape[-1] in (1, 3, 4) else array[0]
        return normalize_to_uint8(array) if array.dtype != np.uint8 else array
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("not a readable picture")
    return np.asarray(image, dtype=np.uint8)


def write_png(array: npt.NDArray[np.uint8], target: Path) -> None:
    import cv2

    from spine_lib.io.atomic import atomic_path

    with atomic_path(target) as tmp:
        if not cv2.imwrite(str(tmp), array):
            raise OSError(f"cannot write {target}")


def convert_image(task: ImageTask) -> tuple[int, int, bool] | str:
    """Write one image (unless an up-to-date one exists); return (width, height, written) or an error text."""
    try:
        if task.output.is_file() and task.output.stat().st_mtime_ns >= task.source.stat().st_mtime_ns:
            from PIL import Image

            with Image.open(task.output) as existing:
                width, height = existing.size
            return width, height, False
        if task.kind == "dicom":
            from spine_lib.io.transforms import normalize_to_uint8

            array = normalize_to_uint8(read_dicom_pixels(task.source), percentiles=NORMALIZE_PERCENTILES)
        else:
            array = read_picture(task.source)
        write_png(array, task.output)
        return int(array.shape[1]), int(array.shape[0]), True
    except Exception as error:  # any unreadable file becomes a reject, never a crash
        return f"{type(error).__name__}: {str(error)[:200]}"


def convert_images(tasks: list[ImageTask], workers: int, verbose: bool) -> list[tuple[int, int, bool] | str]:
    """Convert every image, in ``workers`` processes when there are enough of them."""
    from spine_lib.core.progress import track

    if workers > 1 and len(tasks) >= PARALLEL_MIN_IMAGES:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunk = max(1, len(tasks) // (workers * 8))
            return list(track(pool.map(convert_image, tasks, chunksize=chunk), "Images", total=len(tasks),
                              enabled=verbose))
    return [convert_image(t) for t in track(tasks, "Images", enabled=verbose)]


# the job --------------------------------------------------------------------------------------------------------
def build_ivd_coords(config: IVDDatasetConfig) -> IVDDatasetReport:
    """Build ``<base>/processed/<output_name>/`` (images, annotations.csv, rejects.csv); return the counts."""
    rsna_csv = config.rsna_path / RSNA_COORDINATES
    improved_csv = config.lumbar_coords_path / IMPROVED_COORDINATES
    pretrain_csv = config.lumbar_coords_path / PRETRAIN_COORDINATES
    present = [p for p in (rsna_csv, improved_csv, pretrain_csv) if p.is_file()]
    if not present:
        raise ConfigError(config.base_path, f"no coordinates found: neither {rsna_csv} nor {improved_csv} "
                                            f"nor {pretrain_csv} exists")
    if (rsna_csv.is_file() or improved_csv.is_file()) and not (config.rsna_path / RSNA_DESCRIPTIONS).is_file():
        raise InputPathError(config.rsna_path / RSNA_DESCRIPTIONS, "series descriptions file does not exist")
    report = IVDDatasetReport(output_path=str(config.output_path))
    rejects = Rejects()

    original = read_rows(rsna_csv, "rsna") if rsna_csv.is_file() else []
    improved = read_rows(improved_csv, "rsna_improved") if improved_csv.is_file() else []
    pretrain = read_rows(pretrain_csv, "pretrain") if pretrain_csv.is_file() else []
    report.rows_read = {p.name: n for p, n in ((rsna_csv, len(original)), (improved_csv, len(improved)),
                                                (pretrain_csv, len(pretrain))) if p.is_file()}

    def improved_key(row: PointRow) -> tuple[str | None, str | None, str, str]:
        return clean_id(row.study_id), clean_id(row.series_id), row.condition.strip().lower(), row.level.upper()

    covered = {improved_key(r) for r in improved}
    kept_original = []
    for row in original:
        if improved_key(row) in covered:
            rejects.exclude(REPLACED_BY_IMPROVED)
        else:
            kept_original.append(row)
    resolved = resolve_rsna_rows(kept_original + improved, config, rejects)
    pretrain_resolved, pictures = resolve_pretrain_rows(pretrain, config.lumbar_coords_path / "data", rejects)
    resolved += pretrain_resolved

    # levels: a typo'd level is a reject; levels are spelt the one way afterwards
    with_level: list[tuple[Resolved, str]] = []
    for item in resolved:
        try:
            with_level.append((item, check_level(item.row.level)))
        except ValueError:
            rejects.reject(item.row, UNKNOWN_LEVEL)

    images_dir = config.output_path / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, ImageTask] = {}
    for item, _ in with_level:
        if item.image_name not in tasks:
            if item.row.source.startswith("pretrain"):
                tasks[item.image_name] = ImageTask(images_dir / item.image_name, pictures[item.image_name], "picture")
            else:
                path = config.rsna_path / "train_images" / item.study_id / item.series_id / f"{item.instance_number}.dcm"
                tasks[item.image_name] = ImageTask(images_dir / item.image_name, path, "dicom")
    names = sorted(tasks)
    outcomes = dict(zip(names, convert_images([tasks[n] for n in names], config.workers, config.verbose), strict=True))

    annotations: list[dict[str, object]] = []
    seen: set[tuple[str, str, str]] = set()
    for item, level in with_level:
        outcome = outcomes[item.image_name]
        if isinstance(outcome, str):
            rejects.reject(item.row, UNREADABLE_IMAGE, outcome)
            continue
        width, height, _ = outcome
        x, y = point_in_pixels(item.row, width, height)
        if x is None or y is None:
            rejects.reject(item.row, BAD_COORDINATE)
            continue
        if not (0.0 <= x < width and 0.0 <= y < height):
            rejects.reject(item.row, POINT_OUTSIDE)
            continue
        key = (item.image_name, level, item.point)
        if key in seen:
            rejects.reject(item.row, DUPLICATE_POINT)
            continue
        seen.add(key)
        annotations.append({
            "image_path": f"images/{item.image_name}", "level": level,
            "relative_x": round(x / width, 6), "relative_y": round(y / height, 6),
            "series_type": item.series_type, "source": item.row.source, "study_id": item.study_id,
            "series_id": item.series_id, "instance_number": item.instance_number, "point": item.point,
            "x": round(x, 3), "y": round(y, 3), "width": width, "height": height,
        })
    annotations.sort(key=lambda a: (str(a["image_path"]), LEVEL_TO_IDX[str(a["level"])], str(a["point"])))

    used = {str(a["image_path"]).removeprefix("images/") for a in annotations}
    for name, outcome in outcomes.items():
        if name not in used and not isinstance(outcome, str) and outcome[2]:
            (images_dir / name).unlink(missing_ok=True)  # written for rows that all failed later: not part of the set
    report.images_removed = remove_orphans(images_dir, used)
    from spine_lib.io.writers import write_records_csv

    write_records_csv(annotations, config.annotations_path, columns=ANNOTATION_COLUMNS)
    write_records_csv(rejects.rows, config.rejects_path, columns=REJECT_COLUMNS)

    report.annotations = len(annotations)
    report.images = len(used)
    report.studies = len({a["study_id"] for a in annotations})
    report.images_written = sum(1 for n in used if not isinstance(outcomes[n], str) and outcomes[n][2])  # type: ignore[index]
    report.images_reused = report.images - report.images_written
    report.by_series_type = dict(sorted(Counter(str(a["series_type"]) for a in annotations).items()))
    report.by_level = {lv: n for lv, n in sorted(Counter(str(a["level"]) for a in annotations).items(),
                                                   key=lambda kv: LEVEL_TO_IDX[kv[0]])}
    report.by_source = dict(sorted(Counter(str(a["source"]) for a in annotations).items()))
    for a in annotations:
        per_level = report.by_series_level.setdefault(str(a["series_type"]), {})
        per_level[str(a["level"])] = per_level.get(str(a["level"]), 0) + 1
    report.skipped = rejects.counts()
    report.excluded = dict(sorted(rejects.excluded.items()))
    logger.info("IVD coordinates: {} annotations on {} images of {} studies; {} rows rejected {}",
                report.annotations, report.images, report.studies, report.rejected, report.skipped)
    return report


def point_in_pixels(row: PointRow, width: int, height: int) -> tuple[float | None, float | None]:
    """The row's point in pixels of its image: ``x``/``y`` when given, else ``relative_x * width`` ..."""
    x, y = parse_float(row.x), parse_float(row.y)
    if x is None or y is None:
        rx, ry = parse_float(row.relative_x), parse_float(row.relative_y)
        if rx is None or ry is None:
            return None, None
        x, y = rx * width, ry * height
    return x, y


def dataset_version(output_path: Path) -> str:
    """Fingerprint of the localization dataset (annotations.csv, every image): changes when it does."""
    return dataset_fingerprint(output_path, ["annotations.csv"], ["images"])


def remove_orphans(images_dir: Path, used: set[str]) -> int:
    """Delete images of an earlier build that no annotation uses any more (and stray temporary files)."""
    removed = 0
    for path in images_dir.iterdir():
        if path.is_file() and path.name not in used:
            path.unlink(missing_ok=True)
            removed += not path.name.startswith(".")
    return removed


def main(config: IVDDatasetConfig) -> IVDDatasetReport:
    """The seed's entry point: build the dataset."""
    return build_ivd_coords(config)


def report_lines(report: IVDDatasetReport) -> list[str]:
    """The report as aligned text lines (the CLI prints them)."""
    return [f"{key:<34} {value}" for key, value in report.as_metadata().items()] + [
        f"{'dataset':<34} {report.output_path}", "", report.counts_table(),
    ]


@dataclass
class DatasetAudit:
    """What the dataset's checks look at, read back from annotations.csv."""

    annotations: int = 0
    missing_images: list[str] = field(default_factory=list)
    points_outside: list[str] = field(default_factory=list)  # "image_path level" of points not in [0, 1)
    rows_read: int = 0
    rejected: int = 0

    @property
    def reject_rate(self) -> float:
        """Rejected rows per coordinate row considered (annotations + rejects)."""
        total = self.annotations + self.rejected
        return self.rejected / total if total else 0.0


def audit_dataset(output_path: Path) -> DatasetAudit:
    """Every annotation's image exists and its point lies in ``[0, 1)``; rejected rows are counted."""
    output_path = Path(output_path)
    audit = DatasetAudit()
    annotations = output_path / "annotations.csv"
    if not annotations.is_file():
        raise InputPathError(annotations, "annotations.csv not found (build the dataset first)")
    exists: dict[str, bool] = {}
    with annotations.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            audit.annotations += 1
            image = row["image_path"]
            if image not in exists:
                exists[image] = (output_path / image).is_file()
                if not exists[image]:
                    audit.missing_images.append(image)
            x, y = parse_float(row["relative_x"]), parse_float(row["relative_y"])
            if x is None or y is None or not (0.0 <= x < 1.0 and 0.0 <= y < 1.0):
                audit.points_outside.append(f"{image} {row['level']}")
    rejects = output_path / "rejects.csv"
    if rejects.is_file():
        with rejects.open(newline="", encoding="utf-8") as f:
            audit.rejected = sum(1 for _ in csv.DictReader(f))
    return audit


SYNTHETIC_SETTINGS = "rsna_settings.json"


def build_synthetic_ivd_coords(root: Path, studies: int = 48, size: int = 256, slices: int = 14, seed: int = 0,
                               workers: int = 1) -> IVDDatasetReport:
    """A synthetic RSNA source of ``studies`` studies under ``root`` (with ``truth/rsna.json``), and the
    localization dataset built from it at ``<root>/processed/ivd_coords``.

    For benchmarks and quality runs that need more studies than the test fixture: the RSNA source is written
    once per (studies, size, slices, seed) and reused on the next call. A root holding other RSNA data is refused.
    """
    import json

    from spine_lib.io.atomic import atomic_write_text
    from spine_lib.synthetic.rsna import write_rsna
    from spine_lib.synthetic.spider import RenderSize
    from spine_lib.synthetic.truth import TRUTH_FOLDER, write_truth

    root = Path(root)
    layout = DataLayout(root=root)
    settings = {"studies": studies, "size": size, "slices": slices, "seed": seed}
    marker = root / TRUTH_FOLDER / SYNTHETIC_SETTINGS
    written = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    if written != settings:
        if layout.rsna.is_dir() and any(layout.rsna.iterdir()):
            if written is None:
                raise ConfigError(layout.rsna, "holds RSNA data not written by build_synthetic_ivd_coords; "
                                               "choose another root")
            import shutil

            shutil.rmtree(layout.rsna)
        layout.rsna.mkdir(parents=True, exist_ok=True)
        truth = write_rsna(layout, studies, seed, RenderSize(rows=size, columns=size, slices=slices))
        write_truth(root, "rsna", truth)
        atomic_write_text(marker, json.dumps(settings, sort_keys=True) + "\n")
    return build_ivd_coords(IVDDatasetConfig(base_path=root, workers=workers))
