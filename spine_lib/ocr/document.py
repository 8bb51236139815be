"""Text of a report document (scanned image or PDF), from the PDF text layer when it has one, else by OCR.

PDF pages with a real text layer are read exactly and fast (no OCR, no Tesseract needed); image-only pages
and images are rendered/opened and given to an :class:`~spine_lib.ocr.base.OCREngine` (Tesseract by default,
created on the first page that needs OCR). ``region=(top, bottom)`` limits OCR to a horizontal band of the
page, as fractions of its height: ``(0.0, 0.45)`` is the header with the patient fields, ~2x faster than
the whole page. Boxes are always in full-page pixel coordinates.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageSequence

from spine_lib.errors import ConfigError, InputPathError, UnsupportedFormatError
from spine_lib.ocr.base import NO_BOX, DocumentReadError, OCREngine, TextLine

__all__ = ["IMAGE_SUFFIXES", "PDF_SUFFIXES", "DocumentExtractor", "DocumentText"]

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
PDF_SUFFIXES: frozenset[str] = frozenset({".pdf"})

TEXT_LAYER = "text_layer"
OCR = "ocr"
MIXED = "mixed"


LAST_LINE = "last_line"
#: A band of the page to OCR: (top, bottom) fractions, "last_line" (found from the ink), or None (everything).
Region = tuple[float, float] | Literal["last_line"] | None


@dataclass
class DocumentText:
    """The lines of one document and how they were obtained."""

    path: Path
    lines: list[TextLine]  # in page order, each page in reading order; TextLine.page is the 0-based page
    source: str  # "text_layer" (every page from the PDF text layer), "ocr" (every page OCR'd) or "mixed"
    pages: int  # pages read (1 for a single image, or with first_page_only)
    seconds: float  # wall time of extract()

    @property
    def text(self) -> str:
        """All lines joined by newlines."""
        return "\n".join(line.text for line in self.lines)


class DocumentExtractor:
    """Lines of text from ``.png/.jpg/.jpeg/.tif/.tiff`` images and ``.pdf`` documents.

    ``engine``: the OCR engine; None creates a :class:`~spine_lib.ocr.tesseract.TesseractEngine` the
    first time a page needs OCR (so PDFs with a text layer need no Tesseract). ``pdf_dpi``: the resolution
    image-only PDF pages are rendered at for OCR. ``min_text_chars``: a PDF page whose text layer has fewer
    non-space characters than this is OCR'd instead.
    """

    def __init__(self, engine: OCREngine | None = None, pdf_dpi: int = 200, min_text_chars: int = 20) -> None:
        if pdf_dpi <= 0:
            raise ConfigError("DocumentExtractor", f"pdf_dpi must be > 0, got {pdf_dpi}")
        self._engine = engine
        self.pdf_dpi = pdf_dpi
        self.min_text_chars = min_text_chars

    @property
    def engine(self) -> OCREngine:
        """The OCR engine (the default TesseractEngine is created on first access)."""
        if self._engine is None:
            from spine_lib.ocr.tesseract import TesseractEngine

            self._engine = TesseractEngine()
        return self._engine

    def extract(
        self, path: Path, region: Region = None, first_page_only: bool = False
    ) -> DocumentText:
        """The lines of the document at ``path``.

        ``region=(top, bottom)``: OCR only that band of each OCR'd page (fractions of the page height; ignored
        for text-layer pages, which are exact and cheap in full). ``first_page_only``: read page 1 only.
        Raises InputPathError (missing file), UnsupportedFormatError (extension), DocumentReadError
        (corrupt, truncated or password-protected file), ConfigError (invalid ``region``).
        """
        start = time.perf_counter()
        path = Path(path)
        _check_region(region)
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES | PDF_SUFFIXES:
            supported = ", ".join(sorted(IMAGE_SUFFIXES | PDF_SUFFIXES))
            raise UnsupportedFormatError(
                path, f"unsupported document extension {path.suffix!r} (supported: {supported})"
            )
        if not path.exists():
            raise InputPathError(path, "document not found")
        if not path.is_file():
            raise InputPathError(path, "expected a file, found a folder")
        if suffix in PDF_SUFFIXES:
            lines, sources, pages = self._read_pdf(path, region, first_page_only)
        else:
            lines, sources, pages = self._read_image(path, region, first_page_only)
        source = sources.pop() if len(sources) == 1 else MIXED if sources else OCR
        return DocumentText(
            path=path, lines=lines, source=source, pages=pages, seconds=time.perf_counter() - start
        )

    # ------------------------------------------------------------------------------------------- images
    def _read_image(
        self, path: Path, region: Region, first_page_only: bool
    ) -> tuple[list[TextLine], set[str], int]:
        lines: list[TextLine] = []
        pages = 0
        for index, frame in enumerate(_image_frames(path)):
            lines.extend(self._ocr_page(frame, index, region))
            pages += 1
            if first_page_only:
                break
        return lines, {OCR}, pages

    # ------------------------------------------------------------------------------------------- PDFs
    def _read_pdf(
        self, path: Path, region: Region, first_page_only: bool
    ) -> tuple[list[TextLine], set[str], int]:
        try:
            document = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as error:
            raise DocumentReadError(path, f"cannot open PDF ({_pdfium_cause(error)})") from None
        try:
            count = len(document)
            if count == 0:
                raise DocumentReadError(path, "PDF has no pages")
            lines: list[TextLine] = []
            sources: set[str] = set()
            pages = 1 if first_page_only else count
            for index in range(pages):
                try:
                    page = document[index]
                    textpage = page.get_textpage()
                    text = textpage.get_text_range()
                except pdfium.PdfiumError as error:
                    raise DocumentReadError(
                        path, f"cannot read page {index + 1} ({_pdfium_cause(error)})"
                    ) from None
                if sum(not ch.isspace() for ch in text) >= self.min_text_chars:
                    sources.add(TEXT_LAYER)
                    lines.extend(
                        TextLine(text=row.strip(), box=NO_BOX, confidence=1.0, page=index)
                        for row in text.splitlines()
                        if row.strip()
                    )
                    continue
                try:
                    # pypdfium2 annotates `scale` as int (from its default, 1); floats are what it takes
                    image = page.render(scale=self.pdf_dpi / 72).to_pil()  # pyright: ignore[reportArgumentType]
                except pdfium.PdfiumError as error:
                    raise DocumentReadError(
                        path, f"cannot render page {index + 1} ({_pdfium_cause(error)})"
                    ) from None
                sources.add(OCR)
                lines.extend(self._ocr_page(image, index, region))
            return lines, sources, pages
        finally:
            document.close()

    # ------------------------------------------------------------------------------------------- OCR
    def _ocr_page(self, image: Image.Image, page: int, region: Region) -> list[TextLine]:
        """OCR of one page (or of its ``region`` band), boxes in full-page coordinates."""
        top = 0
        if region == LAST_LINE:
            region = last_text_band(image)
            if region is None:
                return []
        if region is not None:
            top = round(region[0] * image.height)
            bottom = round(region[1] * image.height)
            if bottom <= top:
                return []
            image = image.crop((0, top, image.width, bottom))
        return [
            dataclasses.replace(line, page=page, box=_shift(line.box, top))
            for line in self.engine.recognize(image)
        ]


def last_text_band(image: Image.Image, margin: float = 0.004) -> tuple[float, float] | None:
    """The band (fractions of the page height) around the bottom-most line of text, found from the ink.

    Rows holding more dark pixels than scan noise does are text rows; the last run of them (gaps of a few rows
    inside a line are bridged) is the last line. Reading only it costs a tenth of a page's OCR.
    """
    ink = np.asarray(image.convert("L").reduce(2)) < 110
    rows = ink.sum(axis=1) > max(4, 0.004 * ink.shape[1])
    indices = np.flatnonzero(rows)
    if indices.size == 0:
        return None
    end = int(indices[-1])
    start = end
    gap_limit = max(3, ink.shape[0] // 300)
    for i in indices[::-1][1:]:
        if start - int(i) > gap_limit:
            break
        start = int(i)
    height = ink.shape[0]
    top = max(0.0, start / height - margin)
    bottom = min(1.0, (end + 1) / height + margin)
    return (top, bottom) if bottom > top else None


def _shift(box: tuple[int, int, int, int], dy: int) -> tuple[int, int, int, int]:
    """``box`` moved down by ``dy`` pixels (NO_BOX stays NO_BOX)."""
    return box if box == NO_BOX else (box[0], box[1] + dy, box[2], box[3] + dy)


def _check_region(region: Region) -> None:
    if region is None or region == LAST_LINE:
        return
    top, bottom = region
    if not 0.0 <= top < bottom <= 1.0:
        raise ConfigError(
            "region", f"expected (top, bottom) fractions with 0 <= top < bottom <= 1, got {region}"
        )


def _image_frames(path: Path) -> Iterator[Image.Image]:
    """Each frame of an image file (TIFFs may hold several pages), fully decoded."""
    try:
        with Image.open(path) as image:
            for frame in ImageSequence.Iterator(image):
                frame.load()
                yield _on_white(frame)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        cause = str(error) or type(error).__name__
        raise DocumentReadError(path, f"cannot read image ({cause})") from None


def _on_white(image: Image.Image) -> Image.Image:
    """A copy of ``image``; transparent pixels (RGBA, LA, palette with transparency) laid on white paper."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.copy()


def _pdfium_cause(error: Exception) -> str:
    """PDFium's reason, saying "password-protected" when PDFium reports a password error."""
    message = str(error)
    if "password" in message.lower():
        return f"password-protected or encrypted: {message}"
    return message
