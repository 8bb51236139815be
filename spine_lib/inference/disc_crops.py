"""Where a disc's crop is cut: its reference point from a mask, the crop box around it, the crop itself (shared
by the crops dataset and the grading of a new series).

The reference point of a disc is the same whichever way it is found: where the disc meets the spinal canal, on
the disc's mid-height line (RSNA's spinal-canal point, what the localizer predicts). From a mask it is found in
the disc's own frame (principal axes of its pixels, in mm): the centre of the disc's full-height part, then the
posterior end of the mid-height line; a posterior protrusion (herniation) beyond the disc's symmetric extent is
left out, so that the point is the disc's margin, not the tip of the herniation.

Crop deltas (left, right, top, bottom: anterior, posterior, up, down) are in pixels of ``crop_spacing`` mm (the
original system's 96/32/64/64 px at ~0.5 mm: the whole disc with its endplates and the canal edge), so a crop
covers the same anatomy on a 0.3 mm and on a 1 mm scan; ``crop_spacing=None`` takes them in the slice's own
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from spine_lib.formats.classification import CROP_DELTA, CROP_SIZE, CROP_SPACING_MM

if TYPE_CHECKING:
    import numpy.typing as npt

#: Fewest disc pixels on a slice from which a point is derived.
MIN_DISC_PIXELS = 12
#: Share of the disc's typical (median) height that counts as its full-height part (a protrusion is thinner).
FULL_HEIGHT_SHARE = 0.65
#: A posterior end further than the anterior half-depth plus this (mm) is a protrusion, not the margin.
PROTRUSION_MM = 3.0


@dataclass(frozen=True)
class CropBox:
    """A crop's box in slice pixels (continuous: pixel centres at integers; ``x1``/``y1`` exclusive edges)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def inside(self, shape: tuple[int, int]) -> bool:
        rows, columns = shape
        return self.x0 >= -0.5 and self.y0 >= -0.5 and self.x1 <= columns - 0.5 and self.y1 <= rows - 0.5

    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


def disc_point_from_mask(labels: npt.NDArray[Any], disc_value: int,
                         pixel_spacing: tuple[float, float]) -> tuple[float, float] | None:
    """The disc's reference point ``(x, y)`` in pixels of a label slice (``(rows, columns)``), or None when the
    disc is not on the slice.

    Example:
        >>> labels = np.zeros((40, 60), dtype=np.int16)
        >>> labels[18:23, 10:41] = 203          # a flat disc, columns 10..40 (anterior to posterior), rows 18..22
        >>> labels[19:22, 41:45] = 203          # and a protrusion at its posterior end
        >>> x, y = disc_point_from_mask(labels, 203, (1.0, 1.0))
        >>> round(x, 1), round(y, 1)            # the margin behind column 40, on the middle row: not the tip
        (40.5, 20.0)
    """
    rows, columns = np.nonzero(labels == disc_value)
    if rows.size < MIN_DISC_PIXELS:
        return None
    sx, sy = pixel_spacing
    points = np.stack([columns * sx, rows * sy], axis=1).astype(np.float64)
    mean = points.mean(axis=0)
    centred = points - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    along = eigenvectors[:, int(np.argmax(eigenvalues))]
    if along[0] < 0:  # run toward posterior (+x: columns run anterior to posterior)
        along = -along
    across = np.array([-along[1], along[0]])
    if across[1] < 0:  # run toward inferior (+y)
        across = -across
    s = centred @ along
    t = centred @ across
    step = max(sx, sy)  # one column per bin: thinner bins alias between pixel columns
    bins = np.floor((s - s.min()) / step).astype(int)
    lows = np.full(bins.max() + 1, np.inf)
    highs = np.full(bins.max() + 1, -np.inf)
    np.minimum.at(lows, bins, t)
    np.maximum.at(highs, bins, t)
    height = np.where(np.isfinite(lows), highs - lows, 0.0)
    typical = float(np.median(height[height > 0]))  # not the largest: an endplate defect makes a column taller
    in_full = np.isin(bins, np.flatnonzero(height >= FULL_HEIGHT_SHARE * typical))
    s_full = (float(s[in_full].min()), float(s[in_full].max()))
    s_centre = (s_full[0] + s_full[1]) / 2
    band = np.abs(s - s_centre) <= 0.4 * (s_full[1] - s_full[0])
    t_centre = float(np.median((lows[bins[band]] + highs[bins[band]]) / 2)) if band.any() else 0.0
    half_pixel = 0.5 * float(np.hypot(sx * along[0], sy * along[1]))
    on_line = np.abs(t - t_centre) <= 0.75 * max(sx, sy)
    anterior = s_centre - float(s.min()) + half_pixel  # the anterior end: no protrusion there
    posterior_end = float(s[on_line].max()) - s_centre + half_pixel if on_line.any() else anterior
    # Beyond the anterior half-depth by more than a rounding's worth, the posterior end is a protrusion: mirror.
    reach = anterior if posterior_end > anterior + PROTRUSION_MM else posterior_end
    point = mean + (s_centre + reach) * along + t_centre * across
    return float(point[0] / sx), float(point[1] / sy)


def crop_box(point: tuple[float, float], delta: tuple[int, int, int, int], pixel_spacing: tuple[float, float],
             crop_spacing: float | None = 0.5) -> CropBox:
    """The box around a reference point: ``delta`` (anterior, posterior, up, down) in pixels of ``crop_spacing``
    mm (or of the slice itself when None).

    Example:
        >>> crop_box((100.0, 80.0), (96, 32, 64, 64), (1.0, 1.0), crop_spacing=0.5)  # 48 mm in front, 16 behind
        CropBox(x0=52.0, y0=48.0, x1=116.0, y1=112.0)
    """
    left, right, top, bottom = delta
    sx, sy = pixel_spacing
    fx, fy = (crop_spacing / sx, crop_spacing / sy) if crop_spacing else (1.0, 1.0)
    x, y = point
    return CropBox(x - left * fx, y - top * fy, x + right * fx, y + bottom * fy)


def cut_crop(pixels: npt.NDArray[Any], box: CropBox, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """The box resampled to ``size`` (H, W) with bilinear interpolation; outside the slice is 0."""
    import cv2

    height, width = size
    xs = box.x0 + (np.arange(width) + 0.5) * (box.x1 - box.x0) / width
    ys = box.y0 + (np.arange(height) + 0.5) * (box.y1 - box.y0) / height
    map_x, map_y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    crop = cv2.remap(np.ascontiguousarray(pixels, dtype=np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return np.asarray(crop, dtype=np.float32)


def windowed(pixels: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """A slice scaled to 0..255 by its 0.5-99.5 percentiles (every crop of a slice shares its window)."""
    from spine_lib.formats.ivd_coords import NORMALIZE_PERCENTILES

    low, high = np.percentile(pixels, NORMALIZE_PERCENTILES)
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip((np.asarray(pixels, dtype=np.float32) - low) * scale, 0, 255).astype(np.float32)


def disc_crop(pixels: npt.NDArray[Any], point: tuple[float, float], pixel_spacing: tuple[float, float],
              delta: tuple[int, int, int, int] = CROP_DELTA, crop_spacing: float | None = CROP_SPACING_MM,
              size: tuple[int, int] = CROP_SIZE) -> tuple[npt.NDArray[np.uint8], CropBox]:
    """The 8-bit crop of one disc from a slice (windowed by the whole slice) and its box."""
    box = crop_box(point, delta, pixel_spacing, crop_spacing)
    crop = cut_crop(windowed(pixels), box, size)
    return np.clip(np.round(crop), 0, 255).astype(np.uint8), box
