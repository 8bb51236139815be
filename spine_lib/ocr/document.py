"""Text of a report document (scanned image or PDF), from the PDF text layer when it has one, else by OCR.

PDF pages with a real text layer are read exactly and fast (no OCR, no Tesseract needed); image-only pages
and images are rendered/opened and given to an :class:`~spine_lib.ocr.base.OCREngine` (Tesseract by default,
created on the first page that needs OCR). ``region=(top, bottom)`` limits OCR to a horizontal band of the
page, as fractions of its height: ``(0.0, 0.45)`` is the header with the patient fields, ~2x faster than
the whole page.

Before OCR every page is cleaned and set upright: red and blue ink (stamps, signatures) is turned to paper
(:mod:`spine_lib.ocr.ink`), a speckled or grainy page is smoothed (:mod:`spine_lib.ocr.noise`), a
low-resolution one enlarged (:mod:`spine_lib.ocr.resolution`), a JPEG's EXIF orientation is applied, and the
page is turned a quarter, half or three quarters and levelled as its ink says (:mod:`spine_lib.ocr.orientation`).
That guess costs a few milliseconds; when the page then reads with good confidence it is kept, so an upright
page pays nothing more. A page that reads badly gets a second opinion (Tesseract's orientation detection where its ``osd``
data is installed, else OCR of the candidate turns) and is read again if that disagrees. The turn found for
a page is remembered, so reading another band of the same file does not decide it again. Boxes are in the
pixel coordinates of the page as read: upright and levelled, at the page's own resolution
(:attr:`DocumentText.corrections` says how).
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageOps, ImageSequence

from spine_lib.errors import ConfigError, InputPathError, UnsupportedFormatError
from spine_lib.ocr.base import NO_BOX, DocumentReadError, OCREngine, TextLine
from spine_lib.ocr.ink import remove_coloured_ink
from spine_lib.ocr.noise import remove_noise
from spine_lib.ocr.orientation import (
    QUARTER_TURNS,
    estimate_geometry,
    osd_available,
    osd_rotation,
    turn_upright,
)
from spine_lib.ocr.resolution import enlarge_small_page

__all__ = ["IMAGE_SUFFIXES", "ORIENTATIONS", "PDF_SUFFIXES", "DocumentExtractor", "DocumentText", "PageCorrection"]

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
PDF_SUFFIXES: frozenset[str] = frozenset({".pdf"})

TEXT_LAYER = "text_layer"
OCR = "ocr"
MIXED = "mixed"


LAST_LINE = "last_line"
#: A band of the page to OCR: (top, bottom) fractions, "last_line" (found from the ink), or None (everything).
Region = tuple[float, float] | Literal["last_line"] | None

#: How pages are set upright: "auto" (the ink's guess, checked by how well the page reads), "osd" (Tesseract's
#: orientation detection on every page, slower), "off" (pages read as they are, not levelled either).
ORIENTATIONS: tuple[str, ...] = ("auto", "osd", "off")
#: A page read at least this well (mean confidence over its letters and digits) is taken as the right way up.
CONFIDENT = 0.6
#: ... when it has at least this many letters and digits; fewer say nothing either way.
CONFIDENT_CHARS = 12
#: Pages with less ink than this (pixels of the page shrunk for the estimate) are blank: nothing to turn.
BLANK_INK = 200
#: OSD answers below this confidence are ignored (Tesseract is often wrong there).
OSD_MIN_CONFIDENCE = 1.0
_MAX_REMEMBERED = 512


@dataclass(frozen=True)
class PageCorrection:
    """How one page was prepared for OCR."""

    page: int  # 0-based
    rotation: int = 0  # clockwise degrees the page was turned by to read it upright (0, 90, 180, 270)
    skew: float = 0.0  # degrees of counter-clockwise lean removed after the turn
    method: str = "off"  # how the turn was decided, see below
    coloured_ink: float = 0.0  # fraction of the page's pixels that were red/blue ink turned to paper
    seconds: float = 0.0  # time spent on cleaning and orientation, beyond the one OCR of the page kept
    noise: float = 0.0  # share of isolated pixels (speckle, grain); above ocr.noise.NOISY_SHARE it was cleaned
    scale: float = 1.0  # a low-resolution page was read enlarged by this (ocr.resolution); boxes are not

    # method: "text_layer" (not OCR'd), "off" (orientation off), "blank" (no ink), "ink" (the ink's guess read
    # well), "confirmed" (read badly; the second opinion agreed), "osd" / "ocr" (the second opinion turned it),
    # "remembered" (decided by an earlier call on the same file), "osd_only" (orientation="osd")


@dataclass
class DocumentText:
    """The lines of one document and how they were obtained."""

    path: Path
    lines: list[TextLine]  # in page order, each page in reading order; TextLine.page is the 0-based page
    source: str  # "text_layer" (every page from the PDF text layer), "ocr" (every page OCR'd) or "mixed"
    pages: int  # pages read (1 for a single image, or with first_page_only)
    seconds: float  # wall time of extract()
    corrections: list[PageCorrection] = field(default_factory=list)  # one per page read, in page order

    @property
    def text(self) -> str:
        """All lines joined by newlines."""
        return "\n".join(line.text for line in self.lines)

    @property
    def rotations(self) -> dict[int, int]:
        """Page -> clockwise degrees it was turned by to read it (0 for text-layer pages)."""
        return {correction.page: correction.rotation for correction in self.corrections}


class DocumentExtractor:
    """Lines of text from ``.png/.jpg/.jpeg/.tif/.tiff`` images and ``.pdf`` documents.

    ``engine``: the OCR engine; None creates a :class:`~spine_lib.ocr.tesseract.TesseractEngine` the
    first time a page needs OCR (so PDFs with a text layer need no Tesseract). ``pdf_dpi``: the resolution
    image-only PDF pages are rendered at for OCR. ``min_text_chars``: a PDF page whose text layer has fewer
    non-space characters than this is OCR'd instead. ``orientation``: one of :data:`ORIENTATIONS`.
    ``remove_colour``: turn red and blue ink to paper before OCR. ``remove_noise``: smooth a speckled or grainy
    page before OCR (:mod:`spine_lib.ocr.noise`; clean pages are left as they are). ``enlarge_small_pages``:
    enlarge a low-resolution scan to ~200 dpi before OCR (:mod:`spine_lib.ocr.resolution`).
    """

    def __init__(
        self,
        engine: OCREngine | None = None,
        pdf_dpi: int = 200,
        min_text_chars: int = 20,
        orientation: str = "auto",
        remove_colour: bool = True,
        remove_noise: bool = True,
        enlarge_small_pages: bool = True,
    ) -> None:
        if pdf_dpi <= 0:
            raise ConfigError("DocumentExtractor", f"pdf_dpi must be > 0, got {pdf_dpi}")
        if orientation not in ORIENTATIONS:
            raise ConfigError(
                "DocumentExtractor", f"orientation must be one of {', '.join(ORIENTATIONS)}, got {orientation!r}"
            )
        self._engine = engine
        self.pdf_dpi = pdf_dpi
        self.min_text_chars = min_text_chars
        self.orientation = orientation
        self.remove_colour = remove_colour
        self.remove_noise = remove_noise
        self.enlarge_small_pages = enlarge_small_pages
        self._osd: bool | None = None  # whether Tesseract's OSD is usable, found on first need
        self._turns: OrderedDict[tuple[str, int, int, int], tuple[int, float]] = OrderedDict()

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
        stat = path.stat()
        identity = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        corrections: list[PageCorrection] = []
        if suffix in PDF_SUFFIXES:
            lines, sources, pages = self._read_pdf(path, region, first_page_only, identity, corrections)
        else:
            lines, sources, pages = self._read_image(path, region, first_page_only, identity, corrections)
        source = sources.pop() if len(sources) == 1 else MIXED if sources else OCR
        return DocumentText(
            path=path,
            lines=lines,
            source=source,
            pages=pages,
            seconds=time.perf_counter() - start,
            corrections=corrections,
        )

    # ------------------------------------------------------------------------------------------- images
    def _read_image(
        self,
        path: Path,
        region: Region,
        first_page_only: bool,
        identity: tuple[str, int, int],
        corrections: list[PageCorrection],
    ) -> tuple[list[TextLine], set[str], int]:
        lines: list[TextLine] = []
        pages = 0
        for index, frame in enumerate(_image_frames(path)):
            page_lines, correction = self._ocr_page(frame, index, region, (*identity, index))
            lines.extend(page_lines)
            corrections.append(correction)
            pages += 1
            if first_page_only:
                break
        return lines, {OCR}, pages

    # ------------------------------------------------------------------------------------------- PDFs
    def _read_pdf(
        self,
        path: Path,
        region: Region,
        first_page_only: bool,
        identity: tuple[str, int, int],
        corrections: list[PageCorrection],
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
                    corrections.append(PageCorrection(page=index, method=TEXT_LAYER))
                    continue
                try:
                    # pypdfium2 annotates `scale` as int (from its default, 1); floats are what it takes
                    image = page.render(scale=self.pdf_dpi / 72).to_pil()  # pyright: ignore[reportArgumentType]
                except pdfium.PdfiumError as error:
                    raise DocumentReadError(
                        path, f"cannot render page {index + 1} ({_pdfium_cause(error)})"
                    ) from None
                sources.add(OCR)
                page_lines, correction = self._ocr_page(image, index, region, (*identity, index))
                lines.extend(page_lines)
                corrections.append(correction)
            return lines, sources, pages
        finally:
            document.close()

    # ------------------------------------------------------------------------------------------- OCR
    def _ocr_page(
        self, image: Image.Image, page: int, region: Region, key: tuple[str, int, int, int]
    ) -> tuple[list[TextLine], PageCorrection]:
        """OCR of one page (or of its ``region`` band) once cleaned and set upright; how it was corrected."""
        start = time.perf_counter()
        ink = noise = 0.0
        if self.remove_colour:
            image, ink = remove_coloured_ink(image)
        if self.remove_noise:
            image, noise = remove_noise(image)
        scale = 1.0
        if self.enlarge_small_pages:
            image, scale = enlarge_small_page(image)
        lines, correction = self._ocr_clean_page(image, page, region, key, ink, start)
        if scale != 1.0:  # boxes on the page at its own resolution
            lines = [dataclasses.replace(line, box=_unscaled(line.box, scale)) for line in lines]
        return lines, dataclasses.replace(correction, noise=noise, scale=scale)

    def _ocr_clean_page(
        self, image: Image.Image, page: int, region: Region, key: tuple[str, int, int, int], ink: float,
        start: float,
    ) -> tuple[list[TextLine], PageCorrection]:
        """:meth:`_ocr_page` once the page is cleaned: set upright as :attr:`orientation` says, then read."""
        remembered = self._turns.get(key)
        if self.orientation == "off":
            rotation, skew, method = 0, 0.0, "off"
        elif remembered is not None:
            self._turns.move_to_end(key)
            (rotation, skew), method = remembered, "remembered"
        elif self.orientation == "osd":
            rotation, skew, method = self._osd_turn(image)
            self._remember(key, rotation, skew)
        else:
            return self._ocr_page_auto(image, page, region, key, ink, start)
        lines, read = self._timed_read(turn_upright(image, rotation, skew), page, region)
        return lines, PageCorrection(page, rotation, skew, method, ink, time.perf_counter() - start - read)

    def _ocr_page_auto(
        self, image: Image.Image, page: int, region: Region, key: tuple[str, int, int, int], ink: float,
        start: float,
    ) -> tuple[list[TextLine], PageCorrection]:
        """The ink's guess read first; a second opinion only when that reads badly (see the module)."""
        geometry = estimate_geometry(image)
        if geometry.ink_pixels < BLANK_INK:
            lines, read = self._timed_read(image, page, region)
            return lines, PageCorrection(page, 0, 0.0, "blank", ink, time.perf_counter() - start - read)
        rotation, skew, method = geometry.rotation, geometry.skew, "ink"
        lines, read = self._timed_read(turn_upright(image, rotation, skew), page, region)
        if not reads_well(lines):
            second, how = self._second_opinion(image, rotation)
            if second == rotation:
                method = "confirmed"
            else:
                if (second - rotation) % 180:  # the other axis: the lean is measured anew
                    skew = estimate_geometry(turn_upright(image, second)).skew
                rotation, method = second, how
                lines, read = self._timed_read(turn_upright(image, rotation, skew), page, region)
        self._remember(key, rotation, skew)
        return lines, PageCorrection(page, rotation, skew, method, ink, time.perf_counter() - start - read)

    def _timed_read(self, image: Image.Image, page: int, region: Region) -> tuple[list[TextLine], float]:
        start = time.perf_counter()
        lines = self._ocr_region(image, page, region)
        return lines, time.perf_counter() - start

    def _ocr_region(self, image: Image.Image, page: int, region: Region) -> list[TextLine]:
        """OCR of ``image`` (or of its ``region`` band), boxes in full-page coordinates."""
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

    def _remember(self, key: tuple[str, int, int, int], rotation: int, skew: float) -> None:
        self._turns[key] = (rotation, skew)
        self._turns.move_to_end(key)
        while len(self._turns) > _MAX_REMEMBERED:
            self._turns.popitem(last=False)

    def _has_osd(self) -> bool:
        if self._osd is None:
            self._osd = osd_available()
        return self._osd

    def _osd_turn(self, image: Image.Image) -> tuple[int, float, str]:
        """Rotation by Tesseract's OSD (the ink's guess when it cannot tell), then the lean of the turned page."""
        answer = osd_rotation(image) if self._has_osd() else None
        if answer is not None and answer[1] >= OSD_MIN_CONFIDENCE:
            rotation, method = answer[0], "osd_only"
        else:
            rotation, method = estimate_geometry(image).rotation, "ink"
        return rotation, estimate_geometry(turn_upright(image, rotation)).skew, method

    def _second_opinion(self, image: Image.Image, guess: int) -> tuple[int, str]:
        """The rotation of a page that read badly the way the ink said: OSD's, else the best-reading turn."""
        if self._has_osd():
            answer = osd_rotation(image)
            if answer is not None and answer[1] >= OSD_MIN_CONFIDENCE:
                return answer[0], "osd"
        return best_reading_turn(image, self.engine, guess), "ocr"


def reads_well(lines: list[TextLine]) -> bool:
    """Whether OCR lines read like text the right way up: enough letters and digits at good mean confidence.

    Text read sideways or upside down comes out as a few low-confidence fragments (mean ~0.1-0.4 here,
    against ~0.9 for the same page upright).
    """
    weights = [sum(ch.isalnum() for ch in line.text) for line in lines]
    total = sum(weights)
    if total < CONFIDENT_CHARS:
        return False
    return sum(w * line.confidence for w, line in zip(weights, lines, strict=True)) / total >= CONFIDENT


def reading_score(lines: list[TextLine]) -> float:
    """Letters and digits read, weighted by their line's confidence (higher: reads more like text)."""
    return sum(sum(ch.isalnum() for ch in line.text) * line.confidence**2 for line in lines)


def best_reading_turn(image: Image.Image, engine: OCREngine, guess: int = 0, band: float = 0.3) -> int:
    """The quarter turn under which the page reads best, tried from the ink's ``guess`` on.

    Each turn is read at half resolution on the ``band`` (fraction of the turned page's height) that holds
    the most ink: enough to tell text from nonsense. Turns are tried in the order guess, half a turn from it,
    then the other two; the first that reads well is taken, else the one that read most like text.
    """
    small = image.convert("L").reduce(2)
    scores: dict[int, float] = {}
    for rotation in (guess, (guess + 180) % 360, (guess + 90) % 360, (guess + 270) % 360):
        turned = turn_upright(small, rotation)
        top, bottom = _densest_band(turned, band)
        lines = engine.recognize(turned.crop((0, top, turned.width, bottom)))
        if reads_well(lines):
            return rotation
        scores[rotation] = reading_score(lines)
    return max(QUARTER_TURNS, key=lambda rotation: (scores[rotation], rotation == guess))


def _densest_band(image: Image.Image, fraction: float) -> tuple[int, int]:
    """``(top, bottom)`` rows of the band ``fraction`` of the page high that holds the most dark pixels."""
    ink = (np.asarray(image) < 128).sum(axis=1).astype(np.int64)
    height = max(1, min(image.height, round(fraction * image.height)))
    sums = np.convolve(ink, np.ones(height, dtype=np.int64), mode="valid")
    top = int(np.argmax(sums)) if sums.size else 0
    return top, top + height


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


def _unscaled(box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    """A box read on a page enlarged by ``scale``, on the page itself."""
    x0, y0, x1, y1 = box
    return round(x0 / scale), round(y0 / scale), round(x1 / scale), round(y1 / scale)


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
                page = _on_white(ImageOps.exif_transpose(frame))  # a phone photo's EXIF orientation applied
                yield _square_pixels(_eight_bit(page), frame.info.get("dpi"))  # 16-bit grey; a fax's pixels
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


#: Horizontal and vertical resolutions further apart than this (fax "standard" mode: 204 x 98 dpi) are squared.
_MAX_DPI_RATIO = 1.2


def _eight_bit(image: Image.Image) -> Image.Image:
    """A grey image of more than 8 bits (16-bit PNG or TIFF scans, 32-bit integer or float) as 8-bit grey,
    stretched over its own range (PIL's plain conversion clips 16-bit values and leaves a white page)."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return Image.new("L", image.size, 255 if high > 0 else 0)
    return Image.fromarray(np.round((values - low) * (255.0 / (high - low))).astype(np.uint8), mode="L")


def _square_pixels(image: Image.Image, dpi: object) -> Image.Image:
    """``image`` resampled to square pixels when its file says the two axes were scanned at different
    resolutions (a fax in standard mode is half as fine vertically: its text is squashed to half height)."""
    if not (isinstance(dpi, tuple) and len(dpi) == 2):
        return image
    try:
        x_dpi, y_dpi = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError):
        return image
    if x_dpi <= 0 or y_dpi <= 0 or max(x_dpi, y_dpi) / min(x_dpi, y_dpi) <= _MAX_DPI_RATIO:
        return image
    finest = max(x_dpi, y_dpi)
    size = (round(image.width * finest / x_dpi), round(image.height * finest / y_dpi))
    if image.mode in ("1", "P"):  # PIL resizes these by the nearest pixel only; colour ink stays for its removal
        image = image.convert("L")
    return image.resize(size, Image.Resampling.LANCZOS)


def _pdfium_cause(error: Exception) -> str:
    """PDFium's reason, saying "password-protected" when PDFium reports a password error."""
    message = str(error)
    if "password" in message.lower():
        return f"password-protected or encrypted: {message}"
    return message
