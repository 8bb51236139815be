"""Coloured ink on a scanned report (round red stamps, blue signatures and pen marks) turned to paper before OCR.

Black print is unsaturated (its red, green and blue are alike) however dark, while stamp and pen ink is
strongly red, magenta, violet or blue: in HSV those pixels are found by hue and chroma. Print is a thin mark
dark in every channel: darker in its brightest channel than what surrounds it (red ink is bright in red, blue
ink in blue, so print under a stamp stays darker than the stamp around it).
Around the ink, whatever is not print (or right next to it) becomes paper: the ink and its blurred, greyish
edges. Next to print, coloured pixels are mostly the edges of letters seen through a stamp (blur and JPEG
colour bleeding tint them): they take their brightest channel, so the letters keep their shape, and become
paper when that is near paper. Yellow, orange, brown, green and cyan (highlighters, tinted paper, a desk
behind a photographed page) are left alone, except orange just around red ink (red blurred into cream paper).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

__all__ = ["coloured_ink_mask", "remove_coloured_ink"]

#: OpenCV hues (0-179, two degrees each) that are not stamp or pen ink: orange, brown, yellow, green, cyan.
_OTHER_HUES = (6, 94)
#: Chroma (max - min channel, 0-255) and saturation (0-255) from which a pixel is coloured ink, not grey print.
STRONG_CHROMA = 45
STRONG_SATURATION = 60
#: Chroma from which a red or blue pixel is an ink fringe (its brightest channel replaces it).
FRINGE_CHROMA = 18
#: Hues up to this (OpenCV, orange) are a fringe too when they touch red ink.
ORANGE_FRINGE_HUE = 20
#: Coloured pixels whose brightest channel is at least this fraction of the paper's brightness are ink alone.
FAINT = 0.72
#: Pixels whose brightest channel is darker than this fraction of the brightest channel around them are print
#: (faint in a dim photo, or seen through a stamp) ...
PRINT_DARKNESS = 0.6
#: ... around them: over a window wider than a stroke (pixels).
PRINT_WINDOW = 11


def _ink_hue(hue: np.ndarray) -> np.ndarray:
    return (hue < _OTHER_HUES[0]) | (hue > _OTHER_HUES[1])


def coloured_ink_mask(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ink, fringe)`` masks of an RGB uint8 array: strongly coloured red/blue ink, and its faint fringes."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hue, saturation = hsv[..., 0], hsv[..., 1]
    chroma = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2).astype(np.int16)
    red_or_blue = _ink_hue(hue)
    ink = red_or_blue & (chroma >= STRONG_CHROMA) & (saturation >= STRONG_SATURATION)
    # red ink blurred into cream paper turns orange: next to ink, orange counts as its fringe
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    fringe = (red_or_blue | (near_ink & (hue <= ORANGE_FRINGE_HUE))) & (chroma >= FRINGE_CHROMA) & ~ink
    return ink, fringe


def remove_coloured_ink(image: Image.Image) -> tuple[Image.Image, float]:
    """``image`` as a grey page without red and blue ink, and the fraction of its pixels that were such ink.

    A grey image (or a colour one without such ink, checked on every fourth pixel first) is only converted.
    """
    if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return image.convert("L"), 0.0
    rgb = np.asarray(image.convert("RGB"))
    gray_image = image.convert("L")
    ink_sample, fringe_sample = coloured_ink_mask(rgb[::4, ::4])
    if not ink_sample.any() and not fringe_sample.any():
        return gray_image, 0.0
    ink, fringe = coloured_ink_mask(rgb)
    gray = np.asarray(gray_image).copy()
    brightest = rgb.max(axis=2)
    plain = ~(ink | fringe)
    sample = gray[::4, ::4][plain[::4, ::4]]  # the paper's brightness, from pixels that are not ink
    paper = int(np.percentile(sample, 90)) if sample.size else 255
    # print: a thin mark dark in every channel, i.e. dark against the brightest channel around it (paper, or
    # the stamp's own colour: red ink is bright in red, blue ink in blue, print under either is not)
    kernel = np.ones((PRINT_WINDOW, PRINT_WINDOW), np.uint8)
    around = cv2.erode(cv2.dilate(brightest, kernel), kernel)
    black = brightest.astype(np.float32) < PRINT_DARKNESS * around.astype(np.float32)
    near_print = cv2.dilate(black.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    coloured = ink | fringe
    # around the ink, its blurred edges (grey on cream paper, JPEG blocks) go too, wherever print is not
    inked = cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    gray[coloured] = brightest[coloured]
    erase = (coloured & (brightest >= FAINT * paper)) | ((inked | coloured) & ~near_print)
    gray[erase] = _local_paper(gray, ~(inked | coloured | near_print), paper)[erase]
    return Image.fromarray(gray, mode="L"), float(ink.mean())


def _local_paper(gray: np.ndarray, paper_mask: np.ndarray, fallback: int, cell: int = 16) -> np.ndarray:
    """The paper's brightness at every pixel (uneven light included), so erased ink matches the paper around
    it: the mean of the paper pixels (``paper_mask``) of each cell ``cell`` pixels wide, the brightest of
    three cells by three, smoothly upscaled; ``fallback`` where no paper is near."""
    height, width = gray.shape
    size = (max(1, width // cell), max(1, height // cell))
    weight = paper_mask.astype(np.float32)
    total = cv2.resize(gray.astype(np.float32) * weight, size, interpolation=cv2.INTER_AREA)
    count = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    means = np.where(count > 0.05, total / np.maximum(count, 1e-6), 0.0).astype(np.float32)
    means = cv2.dilate(means, np.ones((3, 3), np.uint8))
    means[means <= 0] = fallback
    upscaled = cv2.resize(means, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(upscaled, 0, 255).round().astype(np.uint8)
