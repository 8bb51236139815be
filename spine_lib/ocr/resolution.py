"""Low-resolution scans enlarged before OCR.

Tesseract reads text best at 200-300 dpi; a report scanned or faxed at ~70-100 dpi has letters a few pixels
high, and accented Vietnamese names lose their diacritics. A page whose longer side is below
:data:`MIN_LONG_SIDE` pixels (an A4 page under ~100 dpi) is enlarged (Lanczos) so that its longer side is
:data:`TARGET_LONG_SIDE` (A4 at 200 dpi), at most :data:`MAX_SCALE` times; larger pages are left as they are.
"""

from __future__ import annotations

from PIL import Image

#: Pages whose longer side is below this many pixels are enlarged (A4: 1170 px at 100 dpi). Not higher: a grainy
#: or blocky page of 120 dpi reads worse enlarged (its noise grows with it).
MIN_LONG_SIDE = 1200
#: ... to this longer side (A4 at 200 dpi), ...
TARGET_LONG_SIDE = 2339
#: ... by at most this factor.
MAX_SCALE = 4.0


def enlarge_small_page(image: Image.Image) -> tuple[Image.Image, float]:
    """``image`` enlarged when its resolution is low (see the module), else unchanged; and the scale applied.

    Example:
        >>> page, scale = enlarge_small_page(Image.new("L", (578, 818), 255))  # A4 at 70 dpi
        >>> page.size, round(scale, 3)
        ((1653, 2339), 2.859)
        >>> enlarge_small_page(Image.new("L", (1654, 2339), 255))[1]  # A4 at 200 dpi
        1.0
    """
    longer = max(image.size)
    if longer >= MIN_LONG_SIDE or longer == 0:
        return image, 1.0
    scale = min(TARGET_LONG_SIDE / longer, MAX_SCALE)
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS), scale
