"""Which way up a page is, and how far it leans: quarter turns (90/180/270 degrees) and small skew.

:func:`estimate_geometry` looks only at the ink, on a page shrunk to ~700 px (a few milliseconds): the
direction whose projection profile has the sharpest lines of text is the text direction (telling sideways
pages from upright or upside-down ones), the angle that sharpens it most is the skew, and the ink above
against below each line's core (Vietnamese accents, capitals and ascenders stand above the core far more
than descenders hang below it) tells upright from upside down. :func:`osd_rotation` asks Tesseract's
orientation and script detection (the ``osd`` traineddata) for a second opinion. :func:`turn_upright`
applies a correction.

Angles: ``rotation`` is how far, clockwise, a page must be turned to read upright (Tesseract's "Rotate");
``skew`` is how far, counter-clockwise, its lines lean after that turn (so ``Image.rotate(-skew)`` levels it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "QUARTER_TURNS",
    "PageGeometry",
    "estimate_geometry",
    "ink_mask",
    "osd_available",
    "osd_rotation",
    "turn_upright",
]

#: The rotations a page may need, clockwise degrees.
QUARTER_TURNS: tuple[int, ...] = (0, 90, 180, 270)
#: The long side of the shrunk page the geometry is measured on.
WORKING_SIZE = 720
#: Largest skew searched, in degrees (scans lean 0-3 degrees, phone photos a little more).
MAX_SKEW = 8.0
#: Skews below this are left alone: rotating costs time and softens the glyphs for no gain.
MIN_SKEW = 0.4

_TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,  # PIL's ROTATE_* turn counter-clockwise: 270 of them are 90 clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
_OSD_ROTATE = re.compile(r"Rotate:\s*(\d+)")
_OSD_CONFIDENCE = re.compile(r"Orientation confidence:\s*([0-9.]+)")


@dataclass(frozen=True)
class PageGeometry:
    """What the ink says about a page: its likely rotation, its skew and how sure each answer is."""

    rotation: int  # clockwise degrees to turn the page upright (0, 90, 180 or 270)
    skew: float  # counter-clockwise lean of the lines once turned, degrees
    line_contrast: float  # how much sharper the text direction's profile is than the other one's (>1)
    top_heaviness: float  # ink above the line cores over ink below them, on the upright page (>1: upright)
    ink_pixels: int  # ink pixels of the shrunk page the estimate rests on


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels clearly darker than the paper around them (uint8 page in, bool mask out).

    The paper is the page closed over a window a few strokes wide (a dilation, then an erosion): marks
    thinner than that are filled with paper, while uneven lighting, tinted paper and a dark table around a
    photographed page, edges included, stay what they are and do not count as ink.
    """
    kernel = np.ones((9, 9), np.uint8)
    background = cv2.erode(cv2.dilate(gray, kernel), kernel)
    return (gray.astype(np.int16) < background.astype(np.int16) * 0.62) & (background > 60)


def _shrink(gray: Image.Image) -> tuple[np.ndarray, float]:
    scale = min(1.0, WORKING_SIZE / max(gray.size))
    if scale < 1.0:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.uint8), scale


def _profile_sharpness(coordinate: np.ndarray) -> float:
    """How peaked the histogram of ``coordinate`` (one value per ink pixel) is: variance over squared mean.

    Lines of text with white gaps between them give a comb (high); ink spread evenly gives a plateau (low).
    """
    bins = np.bincount(np.round(coordinate - coordinate.min()).astype(np.int64))
    if bins.size < 3:
        return 0.0
    mean = bins.mean()
    return float(bins.var() / (mean * mean)) if mean > 0 else 0.0


def _best_angle(xs: np.ndarray, ys: np.ndarray, step: float = 0.5) -> tuple[float, float]:
    """``(angle, sharpness)`` of the row profile that is sharpest when the points lean by ``angle`` degrees.

    ``angle`` is counter-clockwise in image terms: rows of points that rise to the right lean by a positive
    angle. Searched coarsely over +-MAX_SKEW, then refined to a tenth of a degree.
    """
    best_angle, best = 0.0, -1.0
    for angles in (np.arange(-MAX_SKEW, MAX_SKEW + 1e-9, step), None):
        if angles is None:
            angles = best_angle + np.arange(-step, step + 1e-9, 0.1)
        for angle in angles:
            radians = np.deg2rad(angle)
            sharpness = _profile_sharpness(ys * np.cos(radians) + xs * np.sin(radians))
            if sharpness > best:
                best_angle, best = float(angle), sharpness
    return best_angle, best


def _line_runs(profile: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of rows holding a line of text (more ink than a fifth of the median)."""
    filled = profile > 0
    if not filled.any():
        return []
    threshold = max(1.0, 0.2 * float(np.median(profile[filled])))
    rows = np.flatnonzero(profile > threshold)
    runs: list[tuple[int, int]] = []
    start = previous = int(rows[0])
    for row in rows[1:]:
        if row > previous + 1:
            runs.append((start, previous + 1))
            start = int(row)
        previous = int(row)
    runs.append((start, previous + 1))
    return runs


def _top_heaviness(rows: np.ndarray) -> float:
    """Ink above the core of each text line over ink below it (``rows``: one row coordinate per ink pixel).

    A line's core is its run of rows denser than half the line's densest row: the x-height of lower-case
    text, the cap height of capitals.
    """
    profile = np.bincount(np.round(rows - rows.min()).astype(np.int64)).astype(np.float64)
    above = below = 0.0
    for start, end in _line_runs(profile):
        line = profile[start:end]
        if line.size < 3:
            continue
        core = np.flatnonzero(line >= 0.5 * line.max())
        above += float(line[: core[0]].sum())
        below += float(line[core[-1] + 1 :].sum())
    return (above + 1.0) / (below + 1.0)


def estimate_geometry(image: Image.Image) -> PageGeometry:
    """The page's likely rotation and skew, from its ink alone (a few milliseconds).

    A blank page (too little ink to judge) is taken as upright and level.
    """
    gray, _ = _shrink(image.convert("L"))
    ink = ink_mask(gray)
    ys, xs = np.nonzero(ink)
    if ys.size < 200:
        return PageGeometry(0, 0.0, 1.0, 1.0, int(ys.size))
    ys = ys.astype(np.float64) - gray.shape[0] / 2
    xs = xs.astype(np.float64) - gray.shape[1] / 2
    across_angle, across = _best_angle(xs, ys)  # lines running left to right
    down_angle, down = _best_angle(-ys, xs)  # lines running top to bottom (a page turned a quarter)
    if across >= down:
        radians = np.deg2rad(across_angle)
        rows = ys * np.cos(radians) + xs * np.sin(radians)
        heaviness = _top_heaviness(rows)
        rotation = 0 if heaviness >= 1.0 else 180
        heaviness = max(heaviness, 1.0 / heaviness)
        skew = across_angle
        contrast = across / max(down, 1e-9)
    else:
        radians = np.deg2rad(down_angle)
        # Turned 90 degrees clockwise, the page's x becomes the upright page's row.
        rows = xs * np.cos(radians) - ys * np.sin(radians)
        heaviness = _top_heaviness(rows)
        rotation = 90 if heaviness >= 1.0 else 270
        heaviness = max(heaviness, 1.0 / heaviness)
        skew = down_angle
        contrast = down / max(across, 1e-9)
    return PageGeometry(rotation, float(skew), float(contrast), float(heaviness), int(ys.size))


def turn_upright(image: Image.Image, rotation: int, skew: float = 0.0) -> Image.Image:
    """``image`` turned ``rotation`` degrees clockwise, then levelled by ``skew`` degrees (see the module)."""
    if rotation not in QUARTER_TURNS:
        raise ValueError(f"rotation must be one of {QUARTER_TURNS}, got {rotation}")
    turned = image.transpose(_TRANSPOSE[rotation]) if rotation else image
    if abs(skew) < MIN_SKEW:
        return turned
    paper = 255 if turned.mode in ("L", "1") else (255,) * len(turned.getbands())
    return turned.rotate(
        -skew, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=paper  # pyright: ignore[reportArgumentType]
    )


def osd_available() -> bool:
    """Whether Tesseract and its ``osd`` traineddata (Debian's tesseract-ocr ships it) are installed."""
    import pytesseract

    try:
        return "osd" in pytesseract.get_languages(config="")
    except (pytesseract.TesseractNotFoundError, OSError):
        return False


def osd_rotation(image: Image.Image) -> tuple[int, float] | None:
    """``(rotation, confidence)`` from Tesseract's orientation detection; None when it cannot tell.

    Tesseract gives up on pages with too few characters; its confidence is ~1-15 (below ~1.5 it is often
    wrong).
    """
    import pytesseract

    try:
        report = pytesseract.image_to_osd(image.convert("L"), config="--psm 0")
    except pytesseract.TesseractError:
        return None
    rotate = _OSD_ROTATE.search(report)
    confidence = _OSD_CONFIDENCE.search(report)
    if rotate is None or int(rotate.group(1)) not in QUARTER_TURNS:
        return None
    return int(rotate.group(1)), float(confidence.group(1)) if confidence else 0.0
