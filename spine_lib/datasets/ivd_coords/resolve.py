"""Resolving coordinate rows to the images they point at; rows that cannot be used are rejected with a reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from spine_lib.datasets.ivd_coords.config import IVDDatasetConfig
from spine_lib.datasets.ivd_coords.read import PointRow, clean_id, parse_instance
from spine_lib.formats.ivd_coords import pretrain_image_name, rsna_image_name
from spine_lib.sources import lumbar_coords, rsna
from spine_lib.sources.rsna import SAG_T1, SAG_T2, SeriesMapping, condition_kind, get_series_type

# Reasons a coordinate row is rejected (rejects.csv) ...
MALFORMED_ROW = "malformed_row"
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
    rows: list[PointRow], config: IVDDatasetConfig, mapping: SeriesMapping, rejects: Rejects
) -> list[Resolved]:
    """RSNA rows (original or improved) -> rows pointing to an existing DICOM instance of a sagittal series
    (``mapping``: the series descriptions, :func:`~spine_lib.sources.rsna.load_series_mapping`)."""
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
        if point == "canal" and row.side.upper() == lumbar_coords.CANAL_COPY_SIDE:
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
        dicom = rsna.dicom_path(config.rsna_path, study, series, instance)
        if not dicom.is_file():
            rejects.reject(row, MISSING_DICOM)
            continue
        resolved.append(Resolved(
            row=row, image_name=rsna_image_name(study, series, str(instance)), series_type=series_type,
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
        if key not in lumbar_coords.PRETRAIN_SOURCES:
            rejects.reject(row, UNKNOWN_SOURCE)
            continue
        folder, series_type = lumbar_coords.PRETRAIN_SOURCES[key]
        name = Path(row.filename)
        if not row.filename or name.is_absolute() or ".." in name.parts:
            rejects.reject(row, MISSING_IMAGE)
            continue
        picture = data / folder / name
        if not picture.is_file():
            npy = data / folder.removesuffix(lumbar_coords.PICTURE_FOLDER_SUFFIX) / name.with_suffix(".npy")
            if not npy.is_file():
                rejects.reject(row, MISSING_IMAGE)
                continue
            picture = npy
        stem = "_".join(name.with_suffix("").parts)
        image_name = pretrain_image_name(key, stem)
        sources[image_name] = picture
        resolved.append(Resolved(
            row=row, image_name=image_name, series_type=series_type, point="disc",
            study_id=f"{key}_{stem.split('_')[0]}", series_id="", instance_number="",
        ))
    return resolved, sources
