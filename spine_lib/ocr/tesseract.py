"""Tesseract OCR (Debian tesseract-ocr, tesseract-ocr-vie) through pytesseract: the offline default engine.

Measured here: ``lang="vie"`` alone reads Vietnamese reports best (``vie+eng`` is worse), and one OpenMP
thread per Tesseract process is ~1.7x faster than the default on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import os
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytesseract
from PIL import Image

from spine_lib.errors import ConfigError
from spine_lib.ocr.base import DocumentReadError, OCRUnavailableError, TextLine, reading_order

__all__ = ["TesseractEngine"]

#: Seconds one page may take (a clean A4 page: ~1 s; a pathological one could take minutes).
PAGE_TIMEOUT_S = 120.0
_ENV_LOCK = threading.Lock()  # OMP_THREAD_LIMIT is process-wide: one Tesseract call sets it at a time


def _debian_package(lang: str) -> str:
    """The Debian package of a Tesseract language (``chi_sim`` -> ``tesseract-ocr-chi-sim``)."""
    return f"tesseract-ocr-{lang.lower().replace('_', '-')}"


@contextlib.contextmanager
def _omp_thread_limit(threads: int) -> Iterator[None]:
    """``OMP_THREAD_LIMIT=threads`` in the environment the Tesseract subprocess inherits, restored after."""
    with _ENV_LOCK:
        previous = os.environ.get("OMP_THREAD_LIMIT")
        os.environ["OMP_THREAD_LIMIT"] = str(threads)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("OMP_THREAD_LIMIT", None)
            else:
                os.environ["OMP_THREAD_LIMIT"] = previous


class TesseractEngine:
    """Tesseract OCR of one page image into lines with union word boxes and mean word confidence.

    ``lang`` is a Tesseract language (``"vie"``, or ``"vie+eng"``), ``psm`` the page segmentation mode
    (6: one uniform block of text, right for a report's lines), ``threads`` the OpenMP threads each Tesseract
    process may use, ``timeout_s`` how long one page may take before its Tesseract process is stopped and the
    page given up (DocumentReadError: the report becomes a reject with that reason, the batch goes on). Construction
    fails with OCRUnavailableError when the binary or a language is missing.
    """

    def __init__(self, lang: str = "vie", psm: int = 6, threads: int = 1, timeout_s: float = PAGE_TIMEOUT_S) -> None:
        if threads < 1:
            raise ConfigError("TesseractEngine", f"threads must be >= 1, got {threads}")
        if not timeout_s > 0:
            raise ConfigError("TesseractEngine", f"timeout_s must be > 0, got {timeout_s}")
        langs = [part for part in lang.split("+") if part]
        packages = " ".join(["tesseract-ocr", *(_debian_package(part) for part in langs)])
        try:
            version = pytesseract.get_tesseract_version()
            installed = set(pytesseract.get_languages(config=""))
        except (pytesseract.TesseractNotFoundError, OSError) as error:
            raise OCRUnavailableError(
                "tesseract",
                f"the Tesseract binary is not usable ({error}); install the Debian packages {packages} "
                "(apt-get install tesseract-ocr tesseract-ocr-vie)",
            ) from None
        missing = [part for part in langs if part not in installed]
        if not langs or missing:
            raise OCRUnavailableError(
                "tesseract",
                f"language {lang!r} is not installed (installed: {', '.join(sorted(installed)) or 'none'}); "
                f"install the Debian packages {packages}",
            )
        self.lang = lang
        self.psm = psm
        self.threads = threads
        self.timeout_s = timeout_s
        self.version = str(version)
        self.name = f"tesseract-{self.version}-{lang}"

    def __repr__(self) -> str:
        return f"TesseractEngine(lang={self.lang!r}, psm={self.psm}, threads={self.threads})"

    def recognize(self, image: Image.Image) -> list[TextLine]:
        """The lines of ``image`` in reading order; a blank image gives ``[]``."""
        gray = image.convert("L")
        try:
            with _omp_thread_limit(self.threads):
                data: dict[str, list[Any]] = pytesseract.image_to_data(
                    gray, lang=self.lang, config=f"--psm {self.psm}", output_type=pytesseract.Output.DICT,
                    timeout=self.timeout_s,  # pyright: ignore[reportArgumentType]  # typed int; seconds, any float
                )
        except RuntimeError as error:  # pytesseract stops the process and says "Tesseract process timeout"
            if "timeout" not in str(error).lower():
                raise
            raise DocumentReadError("tesseract", f"OCR of a page took longer than {self.timeout_s:g} s "
                                                 "(stopped)") from None
        return _lines_from_data(data)


def _lines_from_data(data: dict[str, list[Any]]) -> list[TextLine]:
    """Group Tesseract's words by (block, paragraph, line); empty words and negative confidences dropped."""
    grouped: dict[tuple[int, int, int, int], list[int]] = {}
    for i, text in enumerate(data["text"]):
        conf = float(data["conf"][i])
        if conf < 0 or not str(text).strip():
            continue
        key = (
            int(data["page_num"][i]),
            int(data["block_num"][i]),
            int(data["par_num"][i]),
            int(data["line_num"][i]),
        )
        grouped.setdefault(key, []).append(i)
    lines: list[TextLine] = []
    for words in grouped.values():
        words.sort(key=lambda i: (int(data["word_num"][i]), int(data["left"][i])))
        text = unicodedata.normalize("NFC", " ".join(str(data["text"][i]).strip() for i in words))
        x0 = min(int(data["left"][i]) for i in words)
        y0 = min(int(data["top"][i]) for i in words)
        x1 = max(int(data["left"][i]) + int(data["width"][i]) for i in words)
        y1 = max(int(data["top"][i]) + int(data["height"][i]) for i in words)
        confidence = sum(float(data["conf"][i]) for i in words) / len(words) / 100.0
        lines.append(TextLine(text=text, box=(x0, y0, x1, y1), confidence=min(max(confidence, 0.0), 1.0)))
    return reading_order(lines)
