"""Canal points of Sagittal T2 placed on the same study's Sagittal T1 series, through patient coordinates.

RSNA marks the spinal-canal point of each level on Sagittal T2/STIR only, and the foramina on parasagittal
Sagittal T1 slices, so a localizer trained on it never sees a mid-sagittal T1 image with its disc points. Both
sagittal series of a study are acquired in one session in one patient frame: the physical point of a canal
annotation (its instance's ``ImagePositionPatient``, ``ImageOrientationPatient`` and ``PixelSpacing``) lies on
the T1 slice whose plane passes nearest to it. The transferred point is kept only when that plane lies within
half a slice spacing (plus a tolerance) of it and the point falls inside the slice; each point that is not
transferred is counted by reason in the report's ``excluded``. A patient who moved between the two series
moves the point with them: that is the cost of the option (``--canal-points-on-t1``, on by default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from loguru import logger

from spine_lib.datasets.ivd_coords.read import point_in_pixels
from spine_lib.datasets.ivd_coords.resolve import Rejects, Resolved
from spine_lib.formats.ivd_coords import rsna_image_name
from spine_lib.sources import rsna
from spine_lib.sources.rsna import SAG_T1, SAG_T2, SeriesMapping, series_type_of

FloatArray = npt.NDArray[np.float64]

#: How far (mm) past half a slice spacing the nearest T1 plane may lie from a point (rounding of positions) ...
PLANE_TOLERANCE_MM = 0.25
#: ... and the most half a spacing counts for (a series of widely spaced or single slices).
MAX_HALF_SPACING_MM = 10.0
# Reasons a canal point was not transferred (counted in the report's ``excluded``).
NO_T1_SERIES = "canal_t1_no_series"
T1_UNREADABLE = "canal_t1_unreadable_geometry"
T1_OFF_SLAB = "canal_t1_outside_slab"
T1_OUTSIDE_SLICE = "canal_t1_outside_slice"


@dataclass(frozen=True)
class SliceGeometry:
    """Where one DICOM instance lies in patient space."""

    instance_number: int
    origin: FloatArray  # ImagePositionPatient: centre of the first pixel (mm)
    row_direction: FloatArray  # unit vector of increasing column index (x)
    column_direction: FloatArray  # unit vector of increasing row index (y)
    spacing: tuple[float, float]  # (between columns = x, between rows = y), mm
    size: tuple[int, int]  # (columns, rows)

    @property
    def normal(self) -> FloatArray:
        return np.asarray(np.cross(self.row_direction, self.column_direction), dtype=np.float64)

    def to_patient(self, x: float, y: float) -> FloatArray:
        """The physical point of pixel ``(x, y)`` (column, row; pixel centres at integers)."""
        return self.origin + x * self.spacing[0] * self.row_direction + y * self.spacing[1] * self.column_direction

    def to_pixel(self, point: FloatArray) -> tuple[float, float, float]:
        """``(x, y, distance)``: the point's pixel on this plane and its signed distance (mm) from the plane."""
        offset = point - self.origin
        return (float(offset @ self.row_direction) / self.spacing[0],
                float(offset @ self.column_direction) / self.spacing[1], float(offset @ self.normal))


def read_slice_geometry(path: Path) -> SliceGeometry:
    """The geometry of one instance from its header (no pixels read).

    Raises:
        ValueError: a geometry attribute is missing or malformed.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as error:
        raise ValueError(f"{path}: not a DICOM file ({error})") from error
    try:
        position = np.array([float(v) for v in dataset.ImagePositionPatient], dtype=np.float64)
        orientation = np.array([float(v) for v in dataset.ImageOrientationPatient], dtype=np.float64)
        row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        number = int(dataset.InstanceNumber)
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: no usable slice geometry ({error})") from error
    if position.shape != (3,) or orientation.shape != (6,) or min(row_spacing, column_spacing) <= 0:
        raise ValueError(f"{path}: malformed ImagePositionPatient/ImageOrientationPatient/PixelSpacing")
    row_direction, column_direction = orientation[:3], orientation[3:]
    norms = np.linalg.norm(row_direction), np.linalg.norm(column_direction)
    if min(norms) < 1e-6:
        raise ValueError(f"{path}: ImageOrientationPatient has a zero direction")
    return SliceGeometry(number, position, row_direction / norms[0], column_direction / norms[1],
                         (column_spacing, row_spacing), (columns, rows))


def read_series_geometry(folder: Path) -> list[SliceGeometry]:
    """Every instance of a series folder, sorted along the slice normal.

    Raises:
        ValueError: the folder holds no instance, or one whose geometry cannot be read.
    """
    slices = [read_slice_geometry(path) for path in sorted(folder.glob(f"*{rsna.DICOM_EXTENSION}"))]
    if not slices:
        raise ValueError(f"{folder}: no DICOM instance")
    normal = slices[0].normal
    return sorted(slices, key=lambda s: float(s.origin @ normal))


def slice_spacing(slices: list[SliceGeometry]) -> float:
    """The median distance between neighbouring planes (inf for a single slice)."""
    if len(slices) < 2:
        return float("inf")
    normal = slices[0].normal
    positions = np.array([float(s.origin @ normal) for s in slices])
    return float(np.median(np.diff(positions)))


def nearest_slice(slices: list[SliceGeometry], point: FloatArray) -> tuple[SliceGeometry, float, float, float]:
    """The slice whose plane lies nearest to ``point``: ``(slice, x, y, distance)``."""
    return min(((s, *s.to_pixel(point)) for s in slices), key=lambda item: abs(item[3]))


def t1_series_of(mapping: SeriesMapping) -> dict[str, list[str]]:
    """Study id -> its Sagittal T1 series ids (as strings), from the series descriptions."""
    studies: dict[str, list[str]] = {}
    for (study, series), description in sorted(mapping.items()):
        if series_type_of(description) == SAG_T1:
            studies.setdefault(str(study), []).append(str(series))
    return studies


def transfer_canal_points(resolved: list[Resolved], rsna_path: Path, mapping: SeriesMapping,
                          rejects: Rejects) -> list[Resolved]:
    """The canal points of ``resolved`` (Sagittal T2) placed on their study's Sagittal T1 series.

    A transferred row keeps the original row's source, file and line (it is derived from it), and points at the
    T1 instance with pixel ``x``/``y``; its point kind stays ``canal`` and its series type is ``sag_t1``. A T2
    point that is itself unusable (unreadable instance, no coordinate, outside its image) is not transferred: it is
    a reject of its own.
    """
    t1_series = t1_series_of(mapping)
    geometry: dict[tuple[str, str], tuple[list[SliceGeometry], float] | None] = {}

    def series_slices(study: str, series: str) -> tuple[list[SliceGeometry], float] | None:
        """A T1 series' slices and the largest distance a point may lie from its nearest plane."""
        key = (study, series)
        if key not in geometry:
            try:
                slices = read_series_geometry(rsna.series_folder(rsna_path, study, series))
                reach = min(slice_spacing(slices) / 2, MAX_HALF_SPACING_MM) + PLANE_TOLERANCE_MM
                geometry[key] = (slices, reach)
            except (OSError, ValueError) as error:
                logger.warning("canal points not placed on Sagittal T1 {}/{}: {}", study, series, error)
                geometry[key] = None
        return geometry[key]

    out: list[Resolved] = []
    source_slices: dict[Path, SliceGeometry | None] = {}
    for item in resolved:
        if item.point != "canal" or item.series_type != SAG_T2:
            continue
        path = rsna.dicom_path(rsna_path, item.study_id, item.series_id, item.instance_number)
        if path not in source_slices:
            try:
                source_slices[path] = read_slice_geometry(path)
            except (OSError, ValueError) as error:
                logger.warning("canal point not placed on Sagittal T1: {}", error)
                source_slices[path] = None
        source = source_slices[path]
        if source is None:
            continue  # the T2 instance itself is rejected (unreadable image)
        x, y = point_in_pixels(item.row, *source.size)
        if x is None or y is None or not (0.0 <= x < source.size[0] and 0.0 <= y < source.size[1]):
            continue  # the T2 point itself is rejected (bad coordinate, point outside)
        targets = t1_series.get(item.study_id, [])
        if not targets:
            rejects.exclude(NO_T1_SERIES)
            continue
        point = source.to_patient(x, y)
        for series in targets:
            found = series_slices(item.study_id, series)
            if found is None:
                rejects.exclude(T1_UNREADABLE)
                continue
            slices, reach = found
            target, tx, ty, distance = nearest_slice(slices, point)
            if abs(distance) > reach:
                rejects.exclude(T1_OFF_SLAB)
                continue
            columns, rows = target.size
            if not (0.0 <= tx < columns and 0.0 <= ty < rows):
                rejects.exclude(T1_OUTSIDE_SLICE)
                continue
            number = str(target.instance_number)
            row = replace(item.row, x=f"{tx:.3f}", y=f"{ty:.3f}", relative_x="", relative_y="",
                          series_id=series, instance_number=number)
            out.append(Resolved(row=row, image_name=rsna_image_name(item.study_id, series, number),
                                series_type=SAG_T1, point="canal", study_id=item.study_id, series_id=series,
                                instance_number=number))
    return out

