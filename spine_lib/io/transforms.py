"""Intensity transforms for turning MR volumes into 8-bit pictures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def normalize_to_uint8(
    array: npt.ArrayLike, percentiles: tuple[float, float] | None = None
) -> npt.NDArray[np.uint8]:
    """Scale ``array`` linearly into 0..255.

    Without ``percentiles`` the window is the finite min..max; with ``percentiles=(1, 99)`` it is those
    percentiles and values outside are clipped (robust to a few hot voxels). A constant array (or one with no
    finite value) gives zeros. NaN maps to 0.

    Args:
        array: the intensities, any shape and numeric type.
        percentiles: the low and high percentile of the window, ``0 <= low < high <= 100``; None for min..max.

    Returns:
        A ``uint8`` array of the same shape, rounded to the nearest integer.

    Raises:
        ValueError: ``percentiles`` out of order or outside 0..100.

    Example:
        >>> normalize_to_uint8(np.array([10.0, 12.0, 20.0]))
        array([  0,  51, 255], dtype=uint8)

        One hot voxel squeezes a min..max window; a percentile window clips it instead:

        >>> mri = np.array([0.0, 20.0, 40.0, 60.0, 100.0, 5000.0])
        >>> normalize_to_uint8(mri)
        array([  0,   1,   2,   3,   5, 255], dtype=uint8)
        >>> normalize_to_uint8(mri, percentiles=(0, 80))  # the 80th percentile of these six values is 100
        array([  0,  51, 102, 153, 255, 255], dtype=uint8)
        >>> normalize_to_uint8([np.nan, 0.0, 2.0]), normalize_to_uint8(np.full(3, 7.0))
        (array([  0,   0, 255], dtype=uint8), array([0, 0, 0], dtype=uint8))
    """
    values = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    if percentiles is None:
        low, high = float(values[finite].min()), float(values[finite].max())
    else:
        lo_pct, hi_pct = percentiles
        if not 0 <= lo_pct < hi_pct <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
        low, high = (float(v) for v in np.percentile(values[finite], [lo_pct, hi_pct]))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.clip(values, low, high) - low) * (255.0 / (high - low))
    scaled[~finite] = 0
    return np.rint(scaled).astype(np.uint8)
