"""What every OCR engine returns and how it is called: :class:`TextLine`, :class:`OCREngine`, the OCR errors.

An engine turns one page image into text lines in reading order (top-to-bottom, then left-to-right), each
with its box in page pixels and a confidence in 0..1. Lines taken from a PDF text layer have no box
(``(0, 0, 0, 0)``) and confidence 1.0.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from spine_lib.errors import SpineVisionError

__all__ = [
    "NO_BOX",
    "DocumentReadError",
    "OCREngine",
    "OCRUnavailableError",
    "TextLine",
    "reading_order",
]

#: The box of a line whose position is unknown (a PDF text-layer line).
NO_BOX: tuple[int, int, int, int] = (0, 0, 0, 0)


class OCRUnavailableError(SpineVisionError):
    """An OCR engine that cannot run here: a missing binary, language pack, Python package or model file."""


class DocumentReadError(SpineVisionError):
    """A document (image or PDF) that cannot be read: corrupt, truncated or password-protected."""


@dataclass(frozen=True)
class TextLine:
    """One line of text on a page."""

    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in page pixels; NO_BOX when unknown (text-layer lines)
    confidence: float  # 0..1; 1.0 for text-layer lines
    page: int = 0


@runtime_checkable
class OCREngine(Protocol):
    """Recognizes the text lines of one page image."""

    name: str

    def recognize(self, image: Image.Image) -> list[TextLine]:
        """The lines of ``image`` in reading order (top-to-bottom, then left-to-right)."""
        ...


def reading_order(lines: Iterable[TextLine]) -> list[TextLine]:
    """``lines`` sorted top-to-bottom, then left-to-right.

    Lines whose vertical centres lie within half a typical line height of each other form one row (so a
    slightly tilted scan or two columns at the same height keep left-to-right order); rows go top to bottom.
    """
    items = sorted(lines, key=lambda line: ((line.box[1] + line.box[3]) / 2, line.box[0]))
    if len(items) < 2:
        return items
    heights = [line.box[3] - line.box[1] for line in items if line.box[3] > line.box[1]]
    tolerance = statistics.median(heights) / 2 if heights else 0.0
    rows: list[list[TextLine]] = []
    row_centre = float("-inf")
    for line in items:
        centre = (line.box[1] + line.box[3]) / 2
        if rows and centre - row_centre <= tolerance:
            rows[-1].append(line)
        else:
            rows.append([line])
            row_centre = centre  # anchored on the row's first line, so a row cannot creep downwards
    return [line for row in rows for line in sorted(row, key=lambda item: item.box[0])]
