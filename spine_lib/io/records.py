"""Record tables as CSV: rows of dicts, pydantic models or dataclasses written atomically, read back as dicts.

Every table the project writes (annotations, rejects, matches, manifests of counts) goes through these two.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from spine_lib.errors import TabularDataError
from spine_lib.io.atomic import atomic_write_text


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
    r"""The rows of a CSV file as dicts of strings (a UTF-8 byte-order mark is ignored).

    Args:
        path: the CSV file.
        required: columns the header must have; a missing one raises :class:`TabularDataError`.
        missing_ok: an absent file gives no rows (otherwise it raises :class:`TabularDataError`).

    Returns:
        One dict per row, keyed by the header; every value a string (empty cells are ``''``).

    Raises:
        TabularDataError: a required column is missing, or the file is absent and ``missing_ok`` is False.

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
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if missing := [c for c in required if c not in (reader.fieldnames or [])]:
            raise TabularDataError(path, f"missing column(s) {', '.join(missing)}")
        return list(reader)
