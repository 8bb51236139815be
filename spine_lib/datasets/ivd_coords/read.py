"""Reading the coordinate tables (RSNA's, Lumbar Coords') into :class:`PointRow`, values still as text."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from spine_lib.errors import InputPathError


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


def read_rows(path: Path, source: str) -> list[PointRow]:
    """Rows of a coordinate CSV as :class:`PointRow` (columns by name; an unnamed index column is ignored).

    ``coords_pretrain.csv`` names each row's own source (spider, lsd, osf, tseg): it becomes ``pretrain_<it>``.
    """
    wanted = set(PointRow.__dataclass_fields__) - {"source", "file", "line"}
    rows: list[PointRow] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "level" not in fields:
            raise InputPathError(path, "coordinate table has no 'level' column")
        for line, record in enumerate(reader, start=2):
            values = {k: (v or "").strip() for k, v in record.items() if k in wanted and isinstance(v, str)}
            own = (record.get("source") or "").strip().lower() if source == "pretrain" else ""
            rows.append(PointRow(source=f"{source}_{own}" if own else source, file=path.name, line=line, **values))
    return rows


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
