"""Reading patient fields out of OCR text and report file names, tolerant of diacritics, case and OCR noise.

- :func:`normalize_text`: the one comparison form of Vietnamese text (``"Họ tên"`` -> ``"ho ten"``).
- :func:`fuzzy_value_extract`: the value of a ``Label: value`` line whose label matches, however OCR spelt it.
- :func:`parse_birthday`, :func:`date_line_dates`, :func:`parse_exam_date_line`: dates as reports write them
  (``DD/MM/YYYY``, the ``"Hà Nội, ngày 18 tháng 07 năm 2025"`` date line), with OCR's letter-for-digit confusions.
- :func:`parse_report_filename`: what a report's file name says (``250010139.png``: a patient ID;
  ``NGUYEN_VAN_SON_20250718.pdf``: a name and the exam date).

Nothing here guesses: a field that cannot be read with confidence is ``None``. Whole forms (any layout, several
fields per line, the label table of :mod:`spine_lib.sources.phenikaa`) are read by :mod:`spine_lib.matching.fields`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from rapidfuzz import fuzz, process

from spine_lib.sources.phenikaa import FIELD_LABELS, OTHER_LABELS, REPORT_ID_STEM, REPORT_NAME_STEM

__all__ = [
    "LABEL_SEPARATORS",
    "ReportKind",
    "ReportName",
    "date_line_dates",
    "fuzzy_value_extract",
    "normalize_text",
    "parse_birthday",
    "parse_exam_date_line",
    "parse_report_filename",
]

_NON_ALNUM = re.compile(r"[\W_]+")
#: Label/value separators: ':', what OCR makes of it, and the full-width colon.
LABEL_SEPARATORS = ":;=\uff1a"
_SEPARATOR = re.compile(f"[{re.escape(LABEL_SEPARATORS)}]")
_TOKEN = re.compile(r"\S+")
#: Characters stripped from the start of a value (a doubled or misread separator).
_VALUE_LEAD = LABEL_SEPARATORS + ".,"

#: OCR's letter-for-digit confusions inside dates.
_OCR_DIGITS = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8"})
_DMY = re.compile(r"(?<!\d)(\d{1,2})(?:\s*[/\-.,]\s*|\s+)(\d{1,2})(?:\s*[/\-.,]\s*|\s+)(\d{4})(?!\d)")
_DMY_COMPACT = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{4})(?!\d)")
#: The report's date line after :func:`normalize_text`, digits possibly read as o/l/i.
_EXAM_LINE = re.compile(r"ngay ?([0-9oli]{1,2}) ?thang ?([0-9oli]{1,2}) ?nam ?([0-9oli]{4})(?![0-9a-z])")
_NORMALIZED_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1"})

MIN_YEAR = 1900


ReportKind = Literal["id", "name", "unknown"]


def normalize_text(text: str) -> str:
    """``"Họ tên  NGƯỜI-bệnh:"`` -> ``"ho ten nguoi benh"``.

    Diacritics stripped (NFD, combining marks dropped, đ/Đ -> d), lower case, every run of characters that are
    not letters or digits -> one space, stripped.
    """
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", stripped.lower()).strip()


def _label_parts(line: str, label_length: int) -> list[tuple[str, str]]:
    """``(normalized label part, original value part)`` readings of one line.

    With a separator (:data:`LABEL_SEPARATORS`) the label is the text before the first one. Without, the label is
    the line's first words: every prefix of whole words up to the first as long as the label (so a label
    whose words OCR glued together, ``"Ngàysinh"``, still lines up).
    """
    separator = _SEPARATOR.search(line)
    if separator is not None:
        return [(normalize_text(line[: separator.start()]), line[separator.end() :])]
    readings: list[tuple[str, str]] = []
    for token in _TOKEN.finditer(line):
        prefix = normalize_text(line[: token.end()])
        if prefix:
            readings.append((prefix, line[token.end() :]))
        if len(prefix) >= label_length:
            break
    return readings


@cache
def _label_groups() -> tuple[tuple[str, ...], ...]:
    """The form's label wordings (:mod:`spine_lib.sources.phenikaa`) in :func:`normalize_text` form: one group
    per patient field, one per other label."""
    groups = [tuple(normalize_text(wording) for wording in wordings) for wordings in FIELD_LABELS.values()]
    groups.extend((normalize_text(wording),) for wording in OTHER_LABELS)
    return tuple(groups)


def _rival_labels(label: str) -> list[str]:
    """The wordings of every label but ``label``'s own field (the group holding its closest wording)."""
    groups = _label_groups()
    own = max(range(len(groups)), key=lambda g: max(fuzz.ratio(label, wording) for wording in groups[g]))
    return [wording for g, group in enumerate(groups) if g != own for wording in group]


def _reads_as(label_part: str, labels: Sequence[str], score: float) -> bool:
    """Whether ``label_part`` scores at least ``score`` against one of ``labels``."""
    return process.extractOne(label_part, labels, scorer=fuzz.ratio, score_cutoff=score) is not None


def _is_labelled(line: str, threshold: float) -> bool:
    """Whether ``line`` begins with a label of the form (any field's, or another label's)."""
    wordings = [wording for group in _label_groups() for wording in group]
    longest = max(len(wording) for wording in wordings)
    return any(_reads_as(part, wordings, threshold) for part, _ in _label_parts(line, longest))


def fuzzy_value_extract(lines: Sequence[str], field_label: str, threshold: float = 80) -> str | None:
    """The value of the line whose label best matches ``field_label``, in its original form; ``None`` if no label
    scores ``>= threshold``.

    Labels are compared whole (rapidfuzz ``fuzz.ratio`` on :func:`normalize_text` forms, 0-100), so
    ``"Ho tên ngưòi bệnh : NGUYỄN VĂN SƠN"`` answers ``"Họ tên người bệnh"`` with ``"NGUYỄN VĂN SƠN"``, while
    ``"Hà Nội, ngày 18 tháng 07 năm 2025"`` does not answer ``"Ngày sinh"``. A line whose label reads at least as
    well as a wording of another field of the form (:data:`~spine_lib.sources.phenikaa.FIELD_LABELS`,
    :data:`~spine_lib.sources.phenikaa.OTHER_LABELS`) is that field's: ``"Họ tên người nhà: ..."`` (a relative)
    does not answer ``"Họ tên người bệnh"``, nor ``"Ngày in: ..."`` ``"Ngày sinh"``. The first line wins a tie.
    When the best line has nothing after its label, the value is the next non-empty line, unless that line
    begins with a label (``None`` then, or if there is no such line).
    """
    label = normalize_text(field_label)
    if not label:
        return None
    rivals = _rival_labels(label)
    best_score, best_line, best_value = -1.0, -1, ""
    for index, line in enumerate(lines):
        for label_part, value in _label_parts(line, len(label)):
            score = fuzz.ratio(label_part, label)
            if score > best_score and not (score >= threshold and _reads_as(label_part, rivals, score)):
                best_score, best_line, best_value = score, index, value
    if best_score < threshold:
        return None
    value = best_value.strip().lstrip(_VALUE_LEAD).strip()
    if value:
        return value
    following = next((line.strip() for line in lines[best_line + 1 :] if line.strip()), None)
    return None if following is None or _is_labelled(following, threshold) else following


def _valid_date(year: int, month: int, day: int, *, latest: date | None = None) -> date | None:
    try:
        value = date(year, month, day)
    except ValueError:
        return None
    if year < MIN_YEAR or (latest is not None and value > latest):
        return None
    return value


def parse_birthday(text: str | None) -> date | None:
    """A birthday written ``DD/MM/YYYY`` and the ways OCR writes it; ``None`` when it is not a possible birthday.

    Accepted: ``16/03/1957``, ``16 / 03 / 1957``, ``16-03-1957``, ``16.03.1957``, ``6/3/1957``, ``16 03 1957``,
    ``16031957`` (no separator), with O/o -> 0, l/I/| -> 1, S -> 5, B -> 8 read as digits. Rejected: impossible
    dates (31/02), years before 1900, dates after today. The first possible date in ``text`` wins.
    """
    if not text:
        return None
    digits = text.translate(_OCR_DIGITS)
    today = date.today()
    for pattern in (_DMY, _DMY_COMPACT):
        for match in pattern.finditer(digits):
            day, month, year = (int(group) for group in match.groups())
            value = _valid_date(year, month, day, latest=today)
            if value is not None:
                return value
    return None


def date_line_dates(text: str) -> list[date]:
    """The valid dates written ``ngày 18 tháng 07 năm 2025`` in ``text``, in order.

    Read on :func:`normalize_text` forms (diacritics, case and punctuation do not matter; digits read as o/l/i
    are taken as 0/1/1); impossible dates (31/02) are left out.
    """
    found: list[date] = []
    for match in _EXAM_LINE.finditer(normalize_text(text)):
        day, month, year = (int(group.translate(_NORMALIZED_DIGITS)) for group in match.groups())
        value = _valid_date(year, month, day)
        if value is not None:
            found.append(value)
    return found


def parse_exam_date_line(lines: Sequence[str]) -> date | None:
    """The exam date of the report's date line ``"Hà Nội, ngày 18 tháng 07 năm 2025"``; ``None`` without one.

    The last valid date line wins (:func:`date_line_dates` of each line). Forms whose date line sits above a
    signature block, or whose exam date has a label of its own, are read by
    :func:`spine_lib.matching.fields.find_exam_date`.
    """
    found: date | None = None
    for line in lines:
        dates = date_line_dates(line)
        found = dates[-1] if dates else found
    return found


@dataclass(frozen=True)
class ReportName:
    """What a report's file name says about its patient."""

    kind: ReportKind  # "id": ID-named scan; "name": patient-named report; "unknown": neither
    patient_id: str | None = None
    name: str | None = None  # ASCII upper case, single spaces: "NGUYEN VAN SON"
    exam_date: date | None = None


def parse_report_filename(path: Path | str) -> ReportName:
    """``250010139.png`` -> kind ``"id"``; ``NGUYEN_VAN_SON_20250718.pdf`` -> ``"name"`` with the exam date;
    ``NGUYEN_VAN_SON.pdf`` -> ``"name"`` without one; anything else -> ``"unknown"``.

    A name is two or more upper-case ASCII words joined by ``_`` (or spaces). A trailing 8-digit group must be a
    valid ``YYYYMMDD`` date, or the name cannot be told apart from it and the file is ``"unknown"``.
    """
    stem = Path(path).stem.strip()
    if REPORT_ID_STEM.fullmatch(stem):
        return ReportName(kind="id", patient_id=stem)
    match = REPORT_NAME_STEM.fullmatch(stem)
    if match is None:
        return ReportName(kind="unknown")
    name = " ".join(match["name"].replace("_", " ").split())
    if match["date"] is None:
        return ReportName(kind="name", name=name)
    stamp = match["date"]
    exam = _valid_date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))
    if exam is None:
        return ReportName(kind="unknown")
    return ReportName(kind="name", name=name, exam_date=exam)
