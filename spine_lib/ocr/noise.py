"""Scanner noise on a report page (a fax, a worn photocopy, a dark phone photo) removed before OCR.

Tesseract reads speckled or grainy pages badly and slowly (a page of strong grain: ~40 s and no field read). A
page is noisy when many pixels stand out from all eight of their neighbours, which print never does at any
resolution (a stroke's pixel has stroke neighbours; an isolated dot is noise). Such a page is smoothed by a
light Gaussian blur and a 3x3 median, which remove dots and grain and keep strokes; clean pages are left as
they are.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

#: Grey levels by which an isolated pixel differs from each of its eight neighbours.
ISOLATED_CONTRAST = 60
#: Share of isolated pixels above which a page is cleaned (clean scans: < 0.00005 at 70-200 dpi; speckled or
#: grainy ones: 0.005-0.01).
NOISY_SHARE = 5e-4
_RING = np.ones((3, 3), dtype=np.uint8)
_RING[1, 1] = 0


def isolated_pixel_share(gray: npt.NDArray[np.uint8]) -> float:
    """Share of the pixels of a grey page that are darker or brighter than all eight neighbours by
    :data:`ISOLATED_CONTRAST`.

    Example:
        >>> page = np.full((40, 40), 255, dtype=np.uint8)
        >>> page[10:13, 5:35] = 0  # a stroke: no isolated pixel
        >>> isolated_pixel_share(page)
        0.0
        >>> page[30, 20] = page[25, 8] = 0  # two dots of noise
        >>> isolated_pixel_share(page) == 2 / 1600
        True
    """
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"a grey page is a 2-D array, got shape {gray.shape}")
    values = gray.astype(np.int16)
    lowest = cv2.erode(gray, _RING, borderType=cv2.BORDER_REPLICATE).astype(np.int16)
    highest = cv2.dilate(gray, _RING, borderType=cv2.BORDER_REPLICATE).astype(np.int16)
    isolated = (values + ISOLATED_CONTRAST < lowest) | (values > highest + ISOLATED_CONTRAST)
    return float(np.mean(isolated))


def remove_noise(image: Image.Image) -> tuple[Image.Image, float]:
    """``image`` (grey) smoothed when it is noisy (see the module), else unchanged; and its isolated-pixel share."""
    gray = np.asarray(image.convert("L"))
    share = isolated_pixel_share(gray)
    if share <= NOISY_SHARE:
        return image, share
    cleaned = cv2.medianBlur(cv2.GaussianBlur(gray, (0, 0), 1.0), 3)
    return Image.fromarray(cleaned, mode="L"), share
