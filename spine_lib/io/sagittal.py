"""Sagittal series as radiologists look at them: anterior on the left, superior at the top, one slice at a time.

Scanners store sagittal series in every axis order (SPIDER's ``.mha`` files put the slices on the first axis,
DICOM series on the last). :func:`sagittal_volume` reorients a series, without resampling, so that columns run
from anterior to posterior, rows from superior to inferior and slices across the body; a pixel ``(x, y)`` of slice
``k`` is then column ``x`` and row ``y`` (pixel centres at integers) and maps to the patient's physical point
(LPS, mm) through the image geometry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from spine_lib.errors import MedicalImageError

if TYPE_CHECKING:
    import numpy.typing as npt

#: The orientation code of the canonical view (ITK letters: the direction each axis runs toward):
#: columns toward posterior, rows toward inferior, slices toward the patient's right.
SAGITTAL_ORIENTATION = "PIR"
#: A series whose slice normal is further than this from the left-right axis is not sagittal.
MAX_OBLIQUITY_DEGREES = 45.0


@dataclass(frozen=True)
class SagittalVolume:
    """A sagittal series in the canonical view (see the module docstring).

    Args:
        image: the reoriented series (same voxels and physical positions as ``source``).
        source: the series as it was read.
    """

    image: sitk.Image
    source: sitk.Image

    @property
    def slices(self) -> int:
        return int(self.image.GetSize()[2])

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of a slice."""
        return int(self.image.GetSize()[1]), int(self.image.GetSize()[0])

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """``(column, row)`` spacing of a slice, in mm."""
        spacing = self.image.GetSpacing()
        return float(spacing[0]), float(spacing[1])

    @property
    def slice_thickness(self) -> float:
        return float(self.image.GetSpacing()[2])

    def slice(self, index: int) -> npt.NDArray[np.float32]:
        """The pixels ``(rows, columns)`` of slice ``index`` (float32)."""
        if not 0 <= index < self.slices:
            raise IndexError(f"slice {index} outside 0..{self.slices - 1}")
        return sitk.GetArrayViewFromImage(self.image)[index].astype(np.float32)

    def array(self) -> npt.NDArray[np.float32]:
        """Every slice, ``(slices, rows, columns)``."""
        return sitk.GetArrayFromImage(self.image).astype(np.float32)

    def to_physical(self, index: float, x: float, y: float) -> tuple[float, float, float]:
        """The physical point (mm) of pixel ``(x, y)`` of slice ``index`` (continuous coordinates)."""
        point = self.image.TransformContinuousIndexToPhysicalPoint((float(x), float(y), float(index)))
        return float(point[0]), float(point[1]), float(point[2])

    def to_pixel(self, point: tuple[float, float, float]) -> tuple[float, float, float]:
        """``(slice, x, y)`` of a physical point (continuous; the slice may fall between slices or outside)."""
        i, j, k = self.image.TransformPhysicalPointToContinuousIndex(tuple(float(p) for p in point))
        return float(k), float(i), float(j)

    def centre_slice(self) -> int:
        """The middle slice: the mid-sagittal plane when the spine is centred in the field of view."""
        return (self.slices - 1) // 2


def slice_normal_obliquity(image: sitk.Image) -> tuple[int, float]:
    """The image axis closest to the left-right direction and its angle to it (degrees)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    lateral = np.abs(direction[0, :])  # LPS X component of each axis
    axis = int(np.argmax(lateral))
    return axis, float(np.degrees(np.arccos(np.clip(lateral[axis], -1.0, 1.0))))


def sagittal_volume(image: sitk.Image, source: str | None = None) -> SagittalVolume:
    """The canonical view of a sagittal series; a 2-D image or a series that is not sagittal raises
    :class:`~spine_lib.errors.MedicalImageError` naming ``source``.

    Example:
        >>> img = sitk.Image([6, 20, 16], sitk.sitkInt16)  # LPS axes: 6 slices across, 20 px deep, 16 px tall
        >>> view = sagittal_volume(img)
        >>> view.slices, view.shape  # (rows, columns): superior-inferior by anterior-posterior
        (6, (16, 20))
        >>> view.to_physical(0, 0, 0)  # top-left pixel of the first slice: right-most, anterior, superior
        (5.0, 0.0, 15.0)
    """
    if image.GetDimension() != 3:
        raise MedicalImageError(source, f"not a sagittal series: expected a 3-D series of slices, got a "
                                        f"{image.GetDimension()}-D image")
    _, angle = slice_normal_obliquity(image)
    if angle > MAX_OBLIQUITY_DEGREES:
        raise MedicalImageError(source, f"not a sagittal series (slice normal {angle:.0f} degrees from left-right)")
    oriented = sitk.DICOMOrient(image, SAGITTAL_ORIENTATION)
    return SagittalVolume(image=oriented, source=image)
