"""OCR of Vietnamese radiology reports: engines (Tesseract; PaddleOCR detection + VietOCR recognition) and
:class:`DocumentExtractor`, which reads PNG/JPEG/TIFF scans and PDFs (text layer first, OCR otherwise), each
page cleaned of red and blue ink (:mod:`.ink`) and set upright and level first (:mod:`.orientation`).

```python
from spine_lib.ocr import DocumentExtractor

doc = DocumentExtractor().extract(Path("reports/250010139.png"), region=(0.0, 0.45))  # header band only
for line in doc.lines:
    print(line.text, line.box, line.confidence)
print(doc.rotations)  # {0: 180}: page 1 was upside down
```

Names are imported lazily: ``import spine_lib.ocr`` pulls in neither pytesseract, pypdfium2 nor OpenCV.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.ocr.base import (
        NO_BOX,
        DocumentReadError,
        OCREngine,
        OCRUnavailableError,
        TextLine,
        reading_order,
    )
    from spine_lib.ocr.document import DocumentExtractor, DocumentText, PageCorrection
    from spine_lib.ocr.ink import remove_coloured_ink
    from spine_lib.ocr.orientation import PageGeometry, estimate_geometry
    from spine_lib.ocr.tesseract import TesseractEngine
    from spine_lib.ocr.vietocr_paddle import PaddleVietOCREngine, crop_polygon

_HOMES = {
    "NO_BOX": "base",
    "DocumentReadError": "base",
    "OCREngine": "base",
    "OCRUnavailableError": "base",
    "TextLine": "base",
    "reading_order": "base",
    "DocumentExtractor": "document",
    "DocumentText": "document",
    "PageCorrection": "document",
    "PageGeometry": "orientation",
    "estimate_geometry": "orientation",
    "remove_coloured_ink": "ink",
    "TesseractEngine": "tesseract",
    "PaddleVietOCREngine": "vietocr_paddle",
    "crop_polygon": "vietocr_paddle",
}
__all__ = [
    "NO_BOX",
    "DocumentExtractor",
    "DocumentReadError",
    "DocumentText",
    "OCREngine",
    "OCRUnavailableError",
    "PaddleVietOCREngine",
    "PageCorrection",
    "PageGeometry",
    "TesseractEngine",
    "TextLine",
    "crop_polygon",
    "estimate_geometry",
    "reading_order",
    "remove_coloured_ink",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"spine_lib.ocr.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
