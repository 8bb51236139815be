"""Patient fields read off a report form, whatever its layout: labels found anywhere on a line, in any order.

The labels are the table of :mod:`spine_lib.sources.phenikaa` (:data:`FIELD_LABELS`, :data:`OTHER_LABELS`,
:data:`SIGNATURE_LABELS`), compared in :func:`~spine_lib.matching.fuzzy.normalize_text` form with their words run
together, so diacritics, case, punctuation and words OCR glued or split do not matter, and misread letters are
matched with ``fuzz.ratio >= threshold``. A line may hold several fields (``Họ và tên: LÊ HỮU VÝ   Số phiếu:
250010139``); a field's value ends where the next label begins, any label of the table, extracted or not.

Rules that keep a name or a date from being read as a label:

- a short label (5 letters or fewer: ``Họ tên``, ``Mã BN``, ``Giới``) must match exactly, a longer one be
  read with at least 80 % of its letters' length (``Ngày:`` is not ``Ngày in``);
- a one-word label (``Giới``, ``Tuổi``) must be followed by a separator (``:``, ``;``, ``=``), except a signature
  title at the start of a line (``BS. Nguyễn Văn An``), so the last word of a name is never taken for one;
- a label followed by neither a separator (OCR lost the ``:``) nor the end of the line needs ``fuzz.ratio >= 90``;
- a label never spans a separator or a number.

Each value is checked for its kind (:func:`parse_patient_id`, :func:`clean_name`, :func:`parse_birth`); a field
whose value fails is ``None``, never a guess. The exam date has its own pattern (:func:`find_exam_date`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

from rapidfuzz import fuzz, process

from spine_lib.matching.fuzzy import (
    LABEL_SEPARATORS,
    MIN_YEAR,
    date_line_dates,
    normalize_text,
    parse_birthday,
)
from spine_lib.sources.phenikaa import (
    CITY_NAMES,
    FIELD_LABELS,
    OTHER_LABELS,
    REPORT_ID_STEM,
    SIGNATURE_LABELS,
    ReportField,
)

__all__ = [
    "FieldRead",
    "FormFields",
    "LabelHit",
    "LabelKind",
    "clean_name",
    "extract_fields",
    "find_exam_date",
    "find_labels",
    "parse_birth",
    "parse_patient_id",
    "read_fields",
]

#: What a label on the form introduces: a patient field, another field of the form, or the signature block.
LabelKind = ReportField | Literal["other", "signature"]

_SEPARATORS = frozenset(LABEL_SEPARATORS)
_WORD = re.compile(r"[^\W_]+")
#: Labels this short (letters, words run together) must match exactly.
SHORT_LABEL = 5
#: The score a label needs when no separator follows it.
UNSEPARATED_SCORE = 90.0
#: A label read fuzzily is at least this fraction as long as the label, or the label this fraction of it.
MIN_LENGTH_RATIO = 0.8
#: How far above a signature title the date line may be (lines).
SIGNATURE_REACH = 3
_VALUE_LEAD = " \t.," + LABEL_SEPARATORS
_VALUE_TAIL = " \t,;"
_OCR_DIGITS = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8"})
_NAME_JOINERS = "'\u2019-"  # apostrophes and the hyphen, inside a word
_CITIES = "|".join(re.escape(normalize_text(city)) for city in CITY_NAMES)
#: ``"Hà Nội, 18/07/2025"``, ``"Ngày 18-07-2025"`` after normalize_text (digits possibly read as o/l/i).
_CITY_DATE = re.compile(
    rf"(?:^| )(?:ngay|{_CITIES}) ([0-9oli]{{1,2}}) ([0-9oli]{{1,2}}) ([0-9oli]{{4}})(?![0-9a-z])"
)
_NORMALIZED_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1"})


@dataclass(frozen=True)
class _Label:
    kind: LabelKind
    text: str
    rank: int  # position among the wordings of its field (0 = preferred)
    compact: str  # normalized, words run together
    words: int


def _label_table() -> list[_Label]:
    table: list[tuple[LabelKind, tuple[str, ...]]] = list(FIELD_LABELS.items())
    table.extend((("other", OTHER_LABELS), ("signature", SIGNATURE_LABELS)))
    labels: list[_Label] = []
    for kind, wordings in table:
        for rank, text in enumerate(wordings):
            normalized = normalize_text(text)
            labels.append(_Label(kind, text, rank, normalized.replace(" ", ""), len(normalized.split())))
    return labels


_LABELS = _label_table()
_COMPACTS = [label.compact for label in _LABELS]
_MAX_WINDOW = max(label.words for label in _LABELS) + 1


@dataclass(frozen=True)
class LabelHit:
    """One label found on a line: what it introduces and where it sits (characters of the NFC line)."""

    kind: LabelKind
    label: str  # the table's wording
    rank: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class FieldRead:
    """The raw value a label introduces (PHI: the text as read)."""

    kind: LabelKind
    label: str
    rank: int
    score: float
    line: int
    value: str


@dataclass
class FormFields:
    """The patient fields of one form, each checked for its kind (``None``: not found or not valid)."""

    patient_id: str | None = None
    name: str | None = None
    name_cleaned: bool = False  # stray symbols were stripped from the name
    birthday: date | None = None  # the full date; None when only the year is known
    birth_year: int | None = None
    sex: str | None = None  # "Nam" | "Nữ"
    exam_date: date | None = None
    labelled: frozenset[str] = field(default_factory=frozenset)  # fields whose label carried a value

    def merged(self, other: FormFields) -> FormFields:
        """These fields, the gaps filled from ``other`` (a second reading of the same report)."""
        merged = replace(self, labelled=self.labelled | other.labelled)
        if merged.patient_id is None:
            merged.patient_id = other.patient_id
        if merged.name is None:
            merged.name, merged.name_cleaned = other.name, other.name_cleaned
        if merged.birthday is None and other.birthday is not None:
            merged.birthday, merged.birth_year = other.birthday, other.birth_year
        elif merged.birth_year is None:
            merged.birth_year = other.birth_year
        if merged.sex is None:
            merged.sex = other.sex
        if merged.exam_date is None:
            merged.exam_date = other.exam_date
        return merged


def _has_separator(text: str) -> bool:
    return any(ch in _SEPARATORS for ch in text)


def _mostly_digits(token: str) -> bool:
    return sum(ch.isdigit() for ch in token) * 2 > len(token)


def find_labels(line: str, threshold: float = 80) -> list[LabelHit]:
    """The labels of one line, left to right, overlapping readings resolved (see the module docstring).

    Where readings overlap, the one matching more letters wins (``Họ tên người bệnh`` over ``Họ tên``), then
    the better score.
    """
    text = unicodedata.normalize("NFC", line)
    tokens = [(m.start(), m.end(), normalize_text(m.group()).replace(" ", "")) for m in _WORD.finditer(text)]
    numeric = [_mostly_digits(norm) for _, _, norm in tokens]
    best: dict[tuple[int, int], tuple[float, int, int]] = {}  # (first token, label) -> score, last token, length
    for i in range(len(tokens)):
        compact = ""
        for j in range(i, min(len(tokens), i + _MAX_WINDOW)):
            if numeric[j] or (j > i and _has_separator(text[tokens[j - 1][1] : tokens[j][0]])):
                break
            compact += tokens[j][2]
            after = text[tokens[j][1] : tokens[j + 1][0] if j + 1 < len(tokens) else len(text)]
            colon = _has_separator(after)
            separated = colon or j + 1 == len(tokens)  # nothing after it to mistake for the label
            need = threshold if separated else max(threshold, UNSEPARATED_SCORE)
            for _, score, k in process.extract(
                compact, _COMPACTS, scorer=fuzz.ratio, score_cutoff=need, limit=None
            ):
                label = _LABELS[k]
                if j - i + 1 > label.words + 1:
                    continue
                shorter, longer = sorted((len(compact), len(label.compact)))
                if score < 100 and (len(label.compact) <= SHORT_LABEL or shorter < MIN_LENGTH_RATIO * longer):
                    continue
                if label.words == 1 and not colon and not (label.kind == "signature" and i == 0):
                    continue
                previous = best.get((i, k))
                if previous is None or score > previous[0]:
                    best[(i, k)] = (score, j, len(compact))
    ranked = sorted(
        best.items(),
        key=lambda item: (
            -item[1][0] * (item[1][2] + len(_LABELS[item[0][1]].compact)),  # letters matched (x200)
            -item[1][0],
            item[0][0],
        ),
    )
    taken: list[tuple[int, int, _Label, float]] = []
    for (i, k), (score, j, _) in ranked:
        if all(j < a or i > b for a, b, _, _ in taken):
            taken.append((i, j, _LABELS[k], score))
    return [
        LabelHit(label.kind, label.text, label.rank, tokens[i][0], tokens[j][1], score)
        for i, j, label, score in sorted(taken, key=lambda t: t[0])
    ]


def _strip_value(text: str) -> str:
    """The value without the separator that led to it and the spaces around it (stray symbols stay)."""
    return " ".join(text.split()).lstrip(_VALUE_LEAD).rstrip(_VALUE_TAIL)


def _starts_with_label(text: str, hits: list[LabelHit]) -> bool:
    return bool(hits) and _WORD.search(text[: hits[0].start]) is None


def read_fields(lines: Sequence[str], threshold: float = 80) -> list[FieldRead]:
    """Every labelled value of the form, line by line, left to right.

    A value runs from its label to the next label of the line (or its end). A patient field whose label ends
    its line with nothing after it takes the next non-empty line, up to that line's first label, unless that
    line begins with a label.
    """
    texts = [unicodedata.normalize("NFC", line) for line in lines]
    return _read(texts, [find_labels(text, threshold) for text in texts])


def _read(texts: list[str], hits: list[list[LabelHit]]) -> list[FieldRead]:
    reads: list[FieldRead] = []
    for index, (text, line_hits) in enumerate(zip(texts, hits, strict=True)):
        for position, hit in enumerate(line_hits):
            last = position + 1 == len(line_hits)
            value = _strip_value(text[hit.end : len(text) if last else line_hits[position + 1].start])
            if not value and last and hit.kind not in ("other", "signature"):
                following = next((k for k in range(index + 1, len(texts)) if texts[k].strip()), None)
                if following is not None and not _starts_with_label(texts[following], hits[following]):
                    end = hits[following][0].start if hits[following] else len(texts[following])
                    value = _strip_value(texts[following][:end])
            reads.append(FieldRead(hit.kind, hit.label, hit.rank, hit.score, index, value))
    return reads


def _tokens_as_digits(text: str) -> list[str]:
    """The value's words, OCR's letter-for-digit confusions undone in words that are mostly digits."""
    words = []
    for word in re.split(r"[\s/.\-]+", text):
        if sum(ch.isdigit() for ch in word) * 2 >= len(word) > 0:
            word = word.translate(_OCR_DIGITS)
        word = "".join(ch for ch in word if ch.isalnum())
        if word:
            words.append(word)
    return words


def parse_patient_id(text: str | None) -> str | None:
    """``"250010139"`` (also ``"25001O139"``, ``"250 010 139"``): the hospital's patient ID, 6-12 digits
    (:data:`~spine_lib.sources.phenikaa.REPORT_ID_STEM`); ``None`` for anything else.

    The ID is the value's leading run of digit groups; stray symbols around it are ignored.
    """
    words = _tokens_as_digits(text or "")
    digits = ""
    for word in words:
        if not word.isdigit():
            break
        digits += word
    return digits if REPORT_ID_STEM.fullmatch(digits) else None


def _is_name_letter(ch: str) -> bool:
    base = unicodedata.normalize("NFD", ch)[0]
    return ("a" <= base.lower() <= "z" and base.isascii()) or ch in "đĐ"


def clean_name(text: str | None) -> tuple[str | None, bool]:
    """A person's name from a field value, and whether anything but letters and spaces was stripped.

    ``"Lê Hữu Vý */"`` -> ``("Lê Hữu Vý", True)``; ``"  NGUYỄN  VĂN SƠN "`` -> ``("NGUYỄN VĂN SƠN", False)``.
    Letters are Latin letters with any diacritics (Vietnamese); ``'`` and ``-`` stay inside a word. A name
    needs two words or more (``None`` otherwise).
    """
    words: list[str] = []
    cleaned = False
    for token in unicodedata.normalize("NFC", text or "").split():
        kept = "".join(
            ch
            for k, ch in enumerate(token)
            if _is_name_letter(ch)
            or (ch in _NAME_JOINERS and 0 < k < len(token) - 1 and _is_name_letter(token[k - 1])
                and _is_name_letter(token[k + 1]))
        )
        cleaned |= kept != token
        if kept:
            words.append(kept)
    return (" ".join(words), cleaned) if len(words) >= 2 else (None, cleaned)


def parse_birth(text: str | None) -> tuple[date | None, int | None]:
    """``(birthday, birth year)`` of a birthday value: a full date (:func:`parse_birthday`) gives both, a year on
    its own (``"1975"``, ``"l975"``) only the year, anything else ``(None, None)``.

    A date OCR left impossible (``31/02/1957``) gives nothing: its year is no surer than its day.
    """
    full = parse_birthday(text)
    if full is not None:
        return full, full.year
    digits = [word for word in _tokens_as_digits(text or "") if any(ch.isdigit() for ch in word)]
    if len(digits) == 1 and len(digits[0]) == 4 and digits[0].isdigit():
        year = int(digits[0])
        if MIN_YEAR <= year <= date.today().year:
            return None, year
    return None, None


def _parse_sex(text: str) -> str | None:
    words = normalize_text(text).split()
    return {"nam": "Nam", "nu": "Nữ"}.get(words[0]) if words else None


def _parse_date_value(text: str) -> date | None:
    """A date written as the date line does or as ``DD/MM/YYYY``."""
    dates = date_line_dates(text)
    return dates[0] if dates else parse_birthday(text)


def _date_line_dates(text: str) -> list[date]:
    """The dates of the date-line patterns in one line: ``ngày .. tháng .. năm ....``, ``<city>, DD/MM/YYYY``."""
    found = date_line_dates(text)
    for match in _CITY_DATE.finditer(normalize_text(text)):
        day, month, year = (int(group.translate(_NORMALIZED_DIGITS)) for group in match.groups())
        try:
            value = date(year, month, day)
        except ValueError:
            continue
        if value.year >= MIN_YEAR:
            found.append(value)
    return found


def find_exam_date(lines: Sequence[str], threshold: float = 80) -> date | None:
    """The exam date of a report, by the date's own patterns, wherever the lines put it; ``None`` without one.

    In order: the value of an exam-date label (``Ngày chụp: 18/07/2025``); the date line nearest above a
    signature block (``Hà Nội, ngày 18 tháng 07 năm 2025`` over ``BÁC SĨ ĐỌC KẾT QUẢ``, at most
    :data:`SIGNATURE_REACH` lines up); the last date line of the report. Values of other labels (the birthday,
    ``Ngày in``) are never taken for a date line.
    """
    texts = [unicodedata.normalize("NFC", line) for line in lines]
    hits = [find_labels(text, threshold) for text in texts]
    return _exam_date(texts, hits, _read(texts, hits))


def _exam_date(texts: list[str], hits: list[list[LabelHit]], reads: list[FieldRead]) -> date | None:
    labelled = sorted((r for r in reads if r.kind == "exam_date"), key=lambda r: (r.rank, -r.score, r.line))
    for read in labelled:
        value = _parse_date_value(read.value)
        if value is not None:
            return value
    candidates: list[tuple[int, date]] = []
    signatures: list[int] = []
    for index, (text, line_hits) in enumerate(zip(texts, hits, strict=True)):
        if any(hit.kind == "signature" for hit in line_hits):
            signatures.append(index)
        masked = text  # every label's value blanked: a birthday or a print date is no date line
        for position, hit in enumerate(line_hits):
            if hit.kind != "signature":
                end = line_hits[position + 1].start if position + 1 < len(line_hits) else len(text)
                masked = masked[: hit.start] + " " * (end - hit.start) + masked[end:]
        candidates.extend((index, value) for value in _date_line_dates(masked))
    above = [
        (index, value)
        for index, value in candidates
        if any(0 <= s - index <= SIGNATURE_REACH for s in signatures)
    ]
    chosen = above or candidates
    return chosen[-1][1] if chosen else None


def extract_fields(lines: Sequence[str], threshold: float = 80) -> FormFields:
    """The patient fields of a form's lines (see the module docstring); each field from the label the table
    prefers that carries a valid value (then the best score, then the first line)."""
    texts = [unicodedata.normalize("NFC", line) for line in lines]
    hits = [find_labels(text, threshold) for text in texts]
    reads = _read(texts, hits)
    by_kind: dict[str, list[FieldRead]] = {}
    for read in sorted(reads, key=lambda r: (r.rank, -r.score, r.line)):
        by_kind.setdefault(read.kind, []).append(read)
    fields = FormFields(labelled=frozenset(r.kind for r in reads if r.value and r.kind in FIELD_LABELS))
    fields.patient_id = next(
        (pid for r in by_kind.get("patient_id", []) if (pid := parse_patient_id(r.value))), None
    )
    for read in by_kind.get("name", []):
        name, cleaned = clean_name(read.value)
        if name is not None:
            fields.name, fields.name_cleaned = name, cleaned
            break
    births = [parse_birth(r.value) for r in by_kind.get("birthday", [])]
    full = next(((day, year) for day, year in births if day is not None), None)
    fields.birthday, fields.birth_year = full or next(((d, y) for d, y in births if y is not None), (None, None))
    fields.sex = next((sex for r in by_kind.get("sex", []) if (sex := _parse_sex(r.value))), None)
    fields.exam_date = _exam_date(texts, hits, reads)
    return fields
