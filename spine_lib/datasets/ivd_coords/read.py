"""Reading the coordinate tables (RSNA's, Lumbar Coords') into :class:`PointRow`, values still as text.

A table is checked as a whole before any of its rows is used: a file that is not a CSV text table, a header
without a required column (or with one twice) and a table without rows are errors naming the file, so that a
broken input never replaces a dataset. A row whose cells do not match the header is kept with its problem (the
build rejects it); every other value is parsed later, so a bad value is a reject of its row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spine_lib.errors import TabularDataError
from spine_lib.sources import lumbar_coords, rsna

#: the columns each kind of coordinate table must have
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "rsna": rsna.COORDINATE_COLUMNS,
    "rsna_improved": lumbar_coords.IMPROVED_COLUMNS,
    "pretrain": lumbar_coords.PRETRAIN_COLUMNS,
}


@dataclass
class PointRow:
    """One coordinate row of any input CSV, as read (strings are parsed later, so bad values become rejects)."""

    source: str  # rsna | rsna_improved | pretrain_<source>
    file: str
    line: int
    level: str
    x: str = ""
    y: str = ""
    relative_x: str = ""
    relative_y: str = ""
    study_id: str = ""
    series_id: str = ""
    instance_number: str = ""
    condition: str = ""
    side: str = ""
    filename: str = ""  # pretraining image
    problem: str = ""  # why the row cannot be read as its header says (cells missing or in excess)


#: the fields of a row that come from a table's columns
VALUE_FIELDS = frozenset(PointRow.__dataclass_fields__) - {"source", "file", "line", "problem"}


@dataclass
class CoordinateTable:
    """The rows of one coordinate CSV and the encoding it was read with."""

    path: Path
    rows: list[PointRow] = field(default_factory=list)
    encoding: str = "utf-8"  # or the fallback encoding of a file that is not UTF-8


def header_problem(columns: list[str], source: str) -> str | None:
    """What makes a header unusable for ``source``'s table (a column missing or twice), or None."""
    named = [c for c in columns if c]
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        return f"column(s) {', '.join(twice)} appear twice"
    missing = [c for c in REQUIRED_COLUMNS[source] if c not in named]
    if source != "rsna" and not any(all(c in named for c in pair) for pair in lumbar_coords.POINT_COLUMNS):
        pairs = " or ".join("/".join(pair) for pair in lumbar_coords.POINT_COLUMNS)
        missing.append(pairs)
    if missing:
        return f"missing column(s) {', '.join(missing)} (found: {', '.join(named) or 'none'})"
    return None


def read_coordinate_table(path: Path, source: str) -> CoordinateTable:
    """A coordinate CSV as :class:`PointRow` (columns by name; an unnamed index column is ignored).

    ``coords_pretrain.csv`` names each row's own source (spider, lsd, osf, tseg): it becomes ``pretrain_<it>``.

    Raises:
        InputPathError: the file does not exist or is a folder.
        TabularDataError: the file is not a CSV text table, lacks a required column or has no rows.
    """
    from spine_lib.io.records import read_csv_text

    path = Path(path)
    text = read_csv_text(path)
    reader = csv.DictReader(io.StringIO(text.text, newline=""))
    table = CoordinateTable(path=path, encoding=text.encoding)
    try:
        columns = [(c or "").strip() for c in reader.fieldnames or []]
        if not columns:
            raise TabularDataError(path, "empty file: no header row")
        if problem := header_problem(columns, source):
            raise TabularDataError(path, problem)
        reader.fieldnames = columns
        for record in reader:
            line = reader.line_num
            values = {k: (v or "").strip() for k, v in record.items() if k in VALUE_FIELDS and isinstance(v, str)}
            own = (record.get("source") or "").strip().lower() if source == "pretrain" else ""
            table.rows.append(PointRow(source=f"{source}_{own}" if own else source, file=path.name, line=line,
                                       problem=cell_problem(record, len(columns)), **values))
    except csv.Error as error:
        raise TabularDataError(path, f"line {reader.line_num}: not a CSV text table ({error})") from error
    if not table.rows:
        raise TabularDataError(path, f"no coordinate rows (only a header: {', '.join(c for c in columns if c)})")
    return table


def cell_problem(record: Mapping[Any, object], width: int) -> str:
    """``''`` for a row with one cell per column, else what is wrong with it."""
    extra = record.get(None)
    if isinstance(extra, list):
        return f"{width + len(extra)} cells for {width} columns"
    missing = sum(1 for value in record.values() if value is None)
    return f"{width - missing} cells for {width} columns" if missing else ""


def parse_instance(text: str) -> int | None:
    """An instance number (>= 1) or None for anything else (``-1``, ``''``, ``'3.5'``, ``'abc'``)."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value != int(value) or value < 1:
        return None
    return int(value)


def parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def clean_id(text: str) -> str | None:
    """A study/series id as its integer spelling (``'123.0'`` -> ``'123'``), None if not an id."""
    value = parse_instance(text)
    return str(value) if value is not None else None


def point_in_pixels(row: PointRow, width: int, height: int) -> tuple[float | None, float | None]:
    """The row's point in pixels of its image: ``x``/``y`` when given, else ``relative_x * width`` ..."""
    x, y = parse_float(row.x), parse_float(row.y)
    if x is None or y is None:
        rx, ry = parse_float(row.relative_x), parse_float(row.relative_y)
        if rx is None or ry is None:
            return None, None
        x, y = rx * width, ry * height
    return x, y
