"""Patient names and birthdays kept out of everything that leaves the PHI zone.

The hospital names some files and folders after the patient (``NGUYEN_VAN_SON_20250718.pdf``, image folders
``NGUYEN_VAN_SON_1968_20250718 (2)``). Whatever could carry such a name out of the raw data (a reject reason, a
log line, Dagster metadata, an output file's name) goes through one of these functions:

- :func:`pseudonym`: a file or folder name as it may be shown: an ID-named one (``250010139.png``) as it is,
  any other a stable ``phi-<hash>`` with its suffix kept.
- :func:`safe_path`: a path of the PHI zone shown by its name's pseudonym (folders above it dropped);
  :func:`shown_path` keeps the whole path, each part that may be a name by its pseudonym.
- :func:`redact`: free text (a library's error message, a log line) with every patient-like name in it, and
  every spelling of the names it is given, replaced by pseudonyms.
- :func:`spellings`: the forms a name or a date takes in files and logs (NFC, NFD, ASCII, ``_`` and DICOM ``^``
  joins; ``DD/MM/YYYY``, ISO, ``YYYYMMDD``), for :func:`redact` and for tests that scan outputs for PHI.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from pathlib import PurePath

__all__ = ["PSEUDONYM_PREFIX", "date_spellings", "is_identifier", "pseudonym", "redact", "safe_path", "shown_path",
           "spellings"]

#: what a pseudonym starts with
PSEUDONYM_PREFIX = "phi"
#: a stem that is an identifier (a patient ID, a study number), not a name
_IDENTIFIER = re.compile(r"\d+")
#: the upper-case letters of the scripts names are written in here (Latin with Vietnamese diacritics, Greek,
#: Cyrillic): ``re`` has no ``\\p{Lu}``
_UPPER = "".join(
    re.escape(chr(code))
    for start, end in ((0x41, 0x250), (0x370, 0x530), (0x1E00, 0x1F00))
    for code in range(start, end)
    if chr(code).isupper() and chr(code).isalpha()
)
_LOWER = rf"(?:(?![{_UPPER}])[^\W\d_])"  # a letter that is not upper case
_CAPS = rf"[{_UPPER}]+(?![^\W\d_])"  # a word in capitals
_CAPITALISED = rf"[{_UPPER}](?:{_LOWER}+|[{_UPPER}]*)(?![^\W\d_])"  # Son or SON, not CamelCase
_PARTS = r"(?:_\d{4,8})"  # the birth year and exam date that folder names append
_COUNTER = r"(?: \(\d+\))?"  # the export counter: ``(2)``
#: a name as the hospital writes it into file and folder names, or as DICOM writes it (``^``)
_NAME_LIKE = re.compile(
    rf"(?<![\w^])(?:{_CAPITALISED}(?: {_CAPITALISED})+{_PARTS}+{_COUNTER}"  # NGUYEN VAN SON_20250718 (2)
    rf"|{_CAPITALISED}(?:[_^]{_CAPITALISED})+{_PARTS}*{_COUNTER}"  # NGUYEN_VAN_SON_1968_20250718, Le^Van^An
    rf"|{_CAPS}(?: {_CAPS}){{2,}})(?![\w^])"  # NGUYEN VAN SON
)
#: a Vietnamese syllable without its diacritics: onset, one to three vowels, coda (``NGUYEN``, ``THI``, ``QUYNH``)
_SYLLABLE = re.compile(r"(?:NGH|NG|NH|CH|GH|GI|KH|PH|TH|TR|QU|[BCDGHKLMNPRSTVX])?[AEIOUY]{1,3}(?:NG|NH|CH|[CMNPT])?")
_WORD = re.compile(r"[^\W\d_]+")


def _is_name(text: str) -> bool:
    """True when most words of a name-like run are Vietnamese syllables: ``NGUYEN_VAN_SON`` is a name,
    ``STEP_FAILURE`` or ``RUN_FAILURE`` (words of a program) are not."""
    words = _WORD.findall(_strip_accents(text).upper())
    return 2 * sum(bool(_SYLLABLE.fullmatch(w)) for w in words) > len(words)


def is_identifier(name: str) -> bool:
    """True when a file or folder name is an ID (digits, then suffixes): shown as it is."""
    stem = name.split(".", 1)[0]
    return bool(_IDENTIFIER.fullmatch(stem))


def _suffix(name: str) -> str:
    """The suffixes of a file name (``.nii.gz``, ``.pdf``), lower case; none for a folder-like name."""
    suffixes = PurePath(name).suffixes
    kept = [s for s in suffixes if re.fullmatch(r"\.[A-Za-z][A-Za-z0-9]{0,4}", s)]
    return "".join(kept[-2:]).lower()


def pseudonym(name: str, prefix: str = PSEUDONYM_PREFIX) -> str:
    """``name`` when it is an ID, else ``<prefix>-<16 hex digits><suffix>``: stable, the same on every machine.

    Example:
        >>> pseudonym("250010139.png")
        '250010139.png'
        >>> pseudonym("NGUYEN_VAN_SON_20250718.pdf")
        'phi-c9186f3a18a22649.pdf'
        >>> pseudonym("NGUYEN_VAN_SON_20250718.pdf") == pseudonym(unicodedata.normalize("NFD", "NGUYEN_VAN_SON_20250718.pdf"))
        True
    """
    if is_identifier(name):
        return name
    normalized = unicodedata.normalize("NFC", name)
    suffix = _suffix(normalized)
    stem = normalized[: len(normalized) - len(suffix)] if suffix else normalized
    digest = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{digest}{suffix}"


def safe_path(path: str | PurePath) -> str:
    """A file or folder of the PHI zone as it may be shown outside it: the pseudonym of its name.

    The folders above it are left out (they may be named after the patient too); a name that is an ID stays.

    Example:
        >>> safe_path(PurePath("raw/Phenikaa/images/NGUYEN_VAN_SON_20250718/IMG0001.dcm"))
        'IMG0001.dcm'
        >>> safe_path("raw/Phenikaa/images/NGUYEN_VAN_SON_20250718")
        'phi-c9186f3a18a22649'
    """
    name = PurePath(path).name
    return name if is_identifier(name) or (not _NAME_LIKE.search(name) and _looks_structural(name)) else pseudonym(name)


def shown_path(path: str | PurePath) -> str:
    """A whole path as it may be shown outside the PHI zone: every part that may be a patient's name (by the rule
    of :func:`safe_path`) replaced by its pseudonym, the other parts kept.

    Example:
        >>> shown_path("/data/inputs/NGUYEN_VAN_SON_20250718/1_t2.mha")
        '/data/inputs/phi-c9186f3a18a22649/1_t2.mha'
    """
    parts = PurePath(path).parts
    shown = [part if part in ("/", "\\") or part.endswith((":\\", ":/")) else safe_path(part) for part in parts]
    return PurePath(*shown).as_posix() if shown else str(path)


def _looks_structural(name: str) -> bool:
    """A name that cannot be a person's: one word, or lower-case words with digits (``IMG0001.dcm``, ``sag_t1``)."""
    stem = name.split(".", 1)[0]
    words = [w for w in re.split(r"[\s_^\-]+", stem) if w]
    letter_words = [w for w in words if w.isalpha()]
    return len(letter_words) < 2 or all(w.islower() for w in letter_words)


def _strip_accents(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def spellings(name: str) -> set[str]:
    """The forms a person's name takes in files, tables and DICOM headers (case kept and upper-cased).

    Example:
        >>> sorted(form for form in spellings("Lê Văn An") if form.isascii())
        ['LE VAN AN', 'LE^VAN^AN', 'LE_VAN_AN', 'Le Van An', 'Le^Van^An', 'Le_Van_An']
    """
    words = name.split()
    if not words:
        return set()
    forms: set[str] = set()
    for text in {" ".join(words), " ".join(words).upper()}:
        for variant in {unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text), _strip_accents(text)}:
            parts = variant.split(" ")
            forms.update({" ".join(parts), "_".join(parts), "^".join(parts)})
    return {form for form in forms if form}


def date_spellings(day: date) -> set[str]:
    """The forms a birthday takes in reports, tables and DICOM headers (``18/07/1968``, ISO, ``19680718``...)."""
    return {day.strftime(fmt) for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d")}


def redact(text: str, names: Iterable[str] = (), paths: Iterable[str | PurePath] = ()) -> str:
    """``text`` with every patient-like name in it (and every spelling of ``names``, and each part of ``paths``
    that :func:`safe_path` would hide) replaced by a pseudonym.

    Patient-like: two or more capitalised words of letters joined by ``_``, ``^`` or spaces, most of them
    Vietnamese syllables, with the birth year, exam date and export counter that folder names append
    (``NGUYEN_VAN_SON_1968_20250718 (2)``). Words of a program (``STEP_FAILURE``, ``ImageFileReader_Execute``)
    are left as they are.

    Example:
        >>> redact("cannot read raw/images/NGUYEN_VAN_SON_20250718/x.dcm (bad header)")
        'cannot read raw/images/phi-c9186f3a18a22649/x.dcm (bad header)'
        >>> redact("patient le van an seen", names=["Lê Văn An"])
        'patient phi-0c4a8d981bcff1de seen'

        A path the caller knows is patient-named, whatever its shape (``LE_THI_HOA_report.png`` has a lower-case
        word, so the pattern alone would let it through):

        >>> redact("cannot identify image file '/in/LE_THI_HOA_report.png'", paths=["LE_THI_HOA_report.png"])
        "cannot identify image file '/in/phi-1d09f302e797a83b.png'"
    """
    for path in paths:
        anchor = PurePath(path).anchor
        for part in sorted((p for p in PurePath(path).parts if p != anchor), key=len, reverse=True):
            if (shown := safe_path(part)) != part:
                text = text.replace(part, shown)
    for name in names:
        forms = spellings(name) | {form.lower() for form in spellings(name)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, pseudonym(form))
    return _NAME_LIKE.sub(lambda m: pseudonym(m.group(0)) if _is_name(m.group(0)) else m.group(0), text)
