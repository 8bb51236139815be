"""Record tables as CSV: rows of dicts, pydantic models or dataclasses written atomically, read back as dicts.

Every table the project writes (annotations, rejects, matches, manifests of counts) goes through these two.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loguru import logger
from pydantic import BaseModel

from spine_lib.core.phi import safe_path
from spine_lib.errors import InputPathError, TabularDataError
from spine_lib.io.atomic import atomic_write_text

#: encodings a CSV file that is not UTF-8 is read with, in order (exports of older Windows tools)
FALLBACK_ENCODINGS = ("cp1252", "latin-1")
#: bytes looked at to tell a text table from a binary file, and the share of control bytes that makes it binary
BINARY_SAMPLE = 8192
BINARY_CONTROL_SHARE = 0.05
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D} | {0x7F}


@dataclasses.dataclass(frozen=True)
class CsvText:
    """The decoded text of a CSV file and the encoding it was read with (``utf-8``, with or without a BOM)."""

    text: str
    encoding: str

    @property
    def is_utf8(self) -> bool:
        return self.encoding == "utf-8"


def read_csv_text(path: Path) -> CsvText:
    r"""The text of a CSV file: UTF-8 (a byte-order mark ignored; a UTF-16 one honoured), else Windows-1252 or
    Latin-1 with a warning in the log.

    Raises:
        InputPathError: the file does not exist, is a folder or cannot be read.
        TabularDataError: the file is binary (not a CSV text table).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "coordinates.csv"
        >>> _ = path.write_bytes("level,note\nL4/L5,d\u00e9g\u00e9n\u00e9r\u00e9\n".encode("latin-1"))
        >>> table = read_csv_text(path)
        >>> table.encoding, table.text.splitlines()[1]
        ('cp1252', 'L4/L5,dégénéré')
        >>> _ = path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
        >>> read_csv_text(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        spine_lib.errors.TabularDataError: .../coordinates.csv: not a CSV text table (binary content)
    """
    path = Path(path)
    if not path.exists():
        raise InputPathError(path, "file does not exist")
    if not path.is_file():
        raise InputPathError(path, "is a folder, expected a CSV file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputPathError(path, f"cannot read file ({error.strerror or type(error).__name__})") from error
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return CsvText(data.decode("utf-16"), "utf-16")
        except UnicodeDecodeError as error:
            raise TabularDataError(path, f"not a CSV text table (invalid UTF-16 at byte {error.start})") from error
    sample = data[:BINARY_SAMPLE]
    if b"\x00" in sample or sum(b in _CONTROL_BYTES for b in sample) > BINARY_CONTROL_SHARE * len(sample):
        raise TabularDataError(path, "not a CSV text table (binary content)")
    try:
        return CsvText(data.decode("utf-8-sig"), "utf-8")
    except UnicodeDecodeError as error:
        position = error.start
    for encoding in FALLBACK_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        logger.warning("{}: not UTF-8 (byte {}); read as {}", safe_path(path), position, encoding)
        return CsvText(text, encoding)
    raise TabularDataError(path, f"not UTF-8 (byte {position}) nor any of {', '.join(FALLBACK_ENCODINGS)}")


def as_record(item: Mapping[str, Any] | BaseModel | Any) -> dict[str, Any]:
    """A plain dict of a mapping, pydantic model or dataclass instance."""
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, BaseModel):
        return item.model_dump()
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    raise TypeError(f"cannot turn {type(item).__name__} into a record")


def write_records_csv(
    records: Iterable[Mapping[str, Any] | BaseModel | Any],
    path: Path,
    columns: Sequence[str] | None = None,
) -> int:
    """Write records (dicts, pydantic models or dataclasses) as a CSV file atomically; return the row count.

    ``columns`` fixes the header (and lets an empty table still have one); otherwise the keys in order of
    first appearance across all records are used. Missing keys are written as empty cells.

    Args:
        records: the rows.
        path: the CSV file (its folder is created; the file is replaced atomically).
        columns: the header, in order; a key outside it raises ``ValueError``.

    Returns:
        The number of rows written.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "rejects.csv"
        >>> write_records_csv([{"case": "1_t2", "reason": "missing mask"}], path, columns=["case", "reason"])
        1
        >>> read_records_csv(path)
        [{'case': '1_t2', 'reason': 'missing mask'}]

        Without ``columns``, the header is every key in order of first appearance; absent keys stay empty:

        >>> write_records_csv([{"case": "1_t2"}, {"case": "2_t1", "reason": "no image"}], path)
        2
        >>> path.read_text().splitlines()
        ['case,reason', '1_t2,', '2_t1,no image']
    """
    rows = [as_record(r) for r in records]
    header: list[str] = list(columns) if columns is not None else []
    if columns is None:
        for row in rows:
            header.extend(k for k in row if k not in header)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path), buffer.getvalue())
    return len(rows)


def read_records_csv(path: Path, required: Sequence[str] = (), missing_ok: bool = True) -> list[dict[str, str]]:
    r"""The rows of a CSV file as dicts of strings (decoded by :func:`read_csv_text`: UTF-8 with or without a
    byte-order mark, UTF-16 with one, else Windows-1252/Latin-1 with a warning; a binary file is refused).

    Args:
        path: the CSV file.
        required: columns the header must have; a missing one raises :class:`TabularDataError`.
        missing_ok: an absent file gives no rows (otherwise it raises :class:`TabularDataError`).

    Returns:
        One dict per row, keyed by the header; every value a string (empty cells are ``''``).

    Raises:
        TabularDataError: a required column is missing, the file is binary, or it is absent and ``missing_ok``
            is False.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "matches.csv"
        >>> read_records_csv(path)
        []
        >>> _ = path.write_text("\ufeffcase,score\n1_t2,97\n", encoding="utf-8")  # as Excel saves it
        >>> read_records_csv(path, required=["case", "score"])
        [{'case': '1_t2', 'score': '97'}]
        >>> read_records_csv(path, required=["case", "folder"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        spine_lib.errors.TabularDataError: .../matches.csv: missing column(s) folder
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return []
        raise TabularDataError(path, "file does not exist")
    reader = csv.DictReader(io.StringIO(read_csv_text(path).text, newline=""))
    if missing := [c for c in required if c not in (reader.fieldnames or [])]:
        raise TabularDataError(path, f"missing column(s) {', '.join(missing)}")
    return list(reader)
