"""Loading the radiological label tables (Excel/CSV), with the mess real exports have.

What is dropped is never lost: every row ends either in ``TabularData.data`` or in ``TabularData.dropped``
with its source file, row number and the reason.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from spine_lib.errors import InputPathError, TabularDataError, UnsupportedFormatError
from spine_lib.io.atomic import atomic_write_bytes
from spine_lib.io.records import read_csv_text
from spine_lib.labels.gradings import (
    FLAG_WORDS,
    IVD_LABEL,
    MODIC,
    MODIC_TYPES,
    PATIENT_ID,
    PFIRRMANN_GRADE,
    ROMAN_GRADES,
    VALUE_RANGES,
    normalize_column_name,
    one_hot_column,
)

TABLE_SUFFIXES = (".xlsx", ".xls", ".csv")
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"
REASON = "reason"
MULTI_VALUE_SEPARATORS = re.compile(r"\s*[&,;+/]\s*|\s+")
#: How an integer cell is written as text: ``3``, ``+3``, ``3.0`` (not ``1e0``, ``0_1`` nor other scripts' digits).
PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


@dataclass
class TabularData:
    """A cleaned label table and the rows that were dropped, each with a reason.

    Args:
        data: the clean rows, one per patient and disc.
        dropped: the dropped rows: ``source_file``, ``source_row``, the original cells and ``reason``.
        files: the table files that were loaded.
        rejected_files: files of a folder that could not be read at all, with the reason.

    Example:
        >>> reasons = ["bad value: pfirrmann_grade=7 outside 1..5", "missing patient ID", "bad value: modic='x'"]
        >>> TabularData(data=pd.DataFrame(), dropped=pd.DataFrame({"reason": reasons})).dropped_reasons()
        {'bad value': 2, 'missing patient ID': 1}
    """

    data: pd.DataFrame
    dropped: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    #: files of a folder that could not be read at all, with the reason (the others are still loaded)
    rejected_files: dict[Path, str] = field(default_factory=dict)

    def dropped_reasons(self) -> dict[str, int]:
        """How many rows were dropped for each kind of reason (the reason's text before any colon)."""
        kinds = self.dropped[REASON].str.split(":").str[0] if len(self.dropped) else pd.Series(dtype=str)
        return {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()}


def table_files(table_path: Path) -> list[Path]:
    """The table files of a folder (sorted; Office lock files skipped), or the single file given."""
    table_path = Path(table_path)
    if not table_path.exists():
        raise InputPathError(table_path, "table path does not exist")
    if table_path.is_file():
        if table_path.suffix.lower() not in TABLE_SUFFIXES:
            raise UnsupportedFormatError(table_path, f"unsupported table extension; expected {TABLE_SUFFIXES}")
        return [table_path]
    files = sorted(
        p
        for p in table_path.iterdir()
        if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith(("~$", "."))
    )
    if not files:
        raise TabularDataError(table_path, f"no table files ({', '.join(TABLE_SUFFIXES)}) in folder")
    return files


def read_table(path: Path) -> pd.DataFrame:
    """One table file as strings (first sheet of a workbook), columns normalised, empty rows removed."""
    text = read_csv_text(path).text if path.suffix.lower() == ".csv" else None
    try:
        if text is not None:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        else:
            engine = "xlrd" if path.suffix.lower() == ".xls" else "openpyxl"
            frame = pd.read_excel(path, dtype=object, engine=engine, sheet_name=0)
    except Exception as error:  # pandas/openpyxl/xlrd raise many types for corrupt files
        raise TabularDataError(path, f"cannot read table: {type(error).__name__}: {error}") from error
    frame.columns = [normalize_column_name(c) for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise TabularDataError(path, f"columns appear twice after normalisation: {duplicated}")
    frame = frame.map(clean_cell)
    frame[SOURCE_FILE] = path.name
    # 1-based line number as a spreadsheet shows it (header is line 1).
    frame[SOURCE_ROW] = [i + 2 for i in range(len(frame))]
    value_columns = [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
    return frame[frame[value_columns].notna().any(axis=1)]


def clean_cell(value: Any) -> Any:
    """Strip strings; turn empty strings and NaN into None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def normalize_id(value: Any) -> str | None:
    """Patient IDs as digit strings: ``250010139.0`` (Excel float) -> ``'250010139'``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return text or None


def parse_int(value: Any) -> int:
    """An integer cell (``3``, ``3.0``, ``'3'``, :data:`PLAIN_INTEGER`); raises ValueError otherwise."""
    if isinstance(value, bool) or (isinstance(value, str) and not PLAIN_INTEGER.fullmatch(value.strip())):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    number = float(str(value).strip())
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def parse_grade(column: str, value: Any) -> int:
    """A graded cell as its integer: a number (:func:`parse_int`), a flag word in a binary column (``yes``,
    ``không``: :data:`~spine_lib.labels.gradings.FLAG_WORDS`), a Roman numeral for Pfirrmann (``III``).

    Example:
        >>> parse_grade("disc_herniation", "Có"), parse_grade("disc_bulging", " no "), parse_grade("pfirrmann_grade", "IV")
        (1, 0, 4)
        >>> parse_grade("pfirrmann_grade", "yes")
        Traceback (most recent call last):
            ...
        ValueError: yes
    """
    if isinstance(value, str):
        word = value.strip()
        if VALUE_RANGES.get(column) == (0, 1):
            folded = "".join(c for c in unicodedata.normalize("NFD", word.lower().replace("đ", "d"))
                             if not unicodedata.combining(c))
            if folded in FLAG_WORDS:
                return FLAG_WORDS[folded]
        if column == PFIRRMANN_GRADE and word.upper() in ROMAN_GRADES:
            return ROMAN_GRADES[word.upper()]
    return parse_int(value)


def parse_multi(value: Any, allowed: Sequence[int]) -> set[int]:
    """A multi-valued cell (``'1&2'``, ``'1, 3'``, ``2``) as a set of types; 0 means none."""
    parts = [p for p in MULTI_VALUE_SEPARATORS.split(str(value).strip()) if p]
    types = {parse_int(p) for p in parts}
    bad = sorted(t for t in types if t != 0 and t not in allowed)
    if bad or not parts:
        raise ValueError(value)
    return types - {0}


def load_tabular_data(
    table_path: Path,
    one_hot_col: str | None = MODIC,
    one_hot_values: Sequence[int] = MODIC_TYPES,
    corrupted_ids: Iterable[int | str] = (),
    key_columns: Sequence[str] = (PATIENT_ID, IVD_LABEL),
    missing: Literal["drop", "keep"] = "drop",
) -> TabularData:
    r"""Load a folder (or one file) of ``.xlsx``/``.xls``/``.csv`` label tables into one clean table.

    - column names are normalised (``'Pfirrman grade'`` -> ``pfirrmann_grade``, ``'Patient'`` -> ``patient_id``);
    - ``one_hot_col`` (Modic by default) may hold several types (``'1&2'``): it becomes ``modic_1..modic_3``;
    - known grading columns are checked as integers within their range;
    - dropped, with a reason: rows without a patient ID, IDs listed in ``corrupted_ids``, bad values,
      rows with missing values (unless ``missing='keep'``), exact duplicates and conflicting rows for the same
      ``key_columns`` (the first occurrence is kept).

    Args:
        table_path: a folder of tables (Office lock files skipped) or one table file. In a folder, a file that
            cannot be read goes to ``rejected_files`` and the others are still loaded.
        one_hot_col: the multi-valued column to one-hot encode, in any spelling (``"Modic"``); None for none.
        one_hot_values: the values that get a column each; 0 in a cell sets none of them.
        corrupted_ids: patient IDs whose rows are dropped (studies known to be unusable).
        key_columns: the columns that identify a row; a second row with the same key is a duplicate.
        missing: ``"drop"`` rows with an empty grading cell, or ``"keep"`` them (an empty key always drops).

    Returns:
        ``data``: the clean rows, gradings as nullable integers and patient IDs as digit strings;
        ``dropped``: the other rows, each with its file, its line as a spreadsheet numbers it and the reason.

    Raises:
        InputPathError: ``table_path`` does not exist.
        UnsupportedFormatError: a single file that is not ``.xlsx``, ``.xls`` or ``.csv``.
        TabularDataError: no table could be read, or a single table lacks a key or the one-hot column.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "gradings.csv").write_text(
        ...     "Patient ID,IVD label,Modic,Pfirrman grade\n"
        ...     "250010139,1,1&2,3\n"
        ...     "250010139,2,0,7\n"
        ...     "25001,1,0,2\n"
        ... )
        >>> tables = load_tabular_data(folder, corrupted_ids=[25001])
        >>> tables.data.to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
        [{'patient_id': '250010139', 'ivd_label': 1, 'pfirrmann_grade': 3,
          'modic_1': 1, 'modic_2': 1, 'modic_3': 0}]
        >>> for row in tables.dropped.itertuples():
        ...     print(f"{row.source_file}:{row.source_row} {row.reason}")
        gradings.csv:3 bad value: pfirrmann_grade=7 outside 1..5
        gradings.csv:4 corrupted ID: 25001 is listed in corrupted_ids
    """
    files = table_files(table_path)
    one_hot = normalize_column_name(one_hot_col) if one_hot_col else None
    required = [*key_columns, *([one_hot] if one_hot else [])]
    frames: list[pd.DataFrame] = []
    rejected_files: dict[Path, str] = {}
    for path in files:
        try:
            table = read_table(path)
            absent = [c for c in required if c not in table.columns]
            if absent:
                found = [c for c in table.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
                raise TabularDataError(path, f"missing required column(s) {absent}; found {found}")
            frames.append(table)
        except TabularDataError as error:
            if len(files) == 1:
                raise
            rejected_files[path] = error.cause
    if not frames:
        raise TabularDataError(table_path, f"no table could be read: {rejected_files}")
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.astype(object).where(frame.notna(), None)  # columns absent from one file -> None
    corrupted = {normalize_id(c) for c in corrupted_ids}
    value_columns = [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]

    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    first_seen: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}
    for raw in frame.to_dict("records"):
        row = {str(k): v for k, v in raw.items()}
        origin = f"{row[SOURCE_FILE]}:{row[SOURCE_ROW]}"
        row[PATIENT_ID] = normalize_id(row.get(PATIENT_ID))
        reason = row_problem(row, value_columns, one_hot, one_hot_values, corrupted, missing, key_columns)
        if reason is None:
            key = tuple(row[c] for c in key_columns)
            values = tuple(row[c] for c in value_columns)
            if key in first_seen:
                first, first_origin = first_seen[key]
                if tuple(first[c] for c in value_columns) == values:
                    reason = f"duplicate row: first seen at {first_origin}"
                else:
                    named = ", ".join(f"{c}={v}" for c, v in zip(key_columns, key, strict=True))
                    reason = f"conflicting duplicate: {named} first seen at {first_origin} with other values"
            else:
                first_seen[key] = (row, origin)
        if reason is None:
            kept.append(row)
        else:
            dropped.append({**row, REASON: reason})

    data = pd.DataFrame(kept, columns=[*value_columns, SOURCE_FILE, SOURCE_ROW])
    if one_hot:
        for t in one_hot_values:
            flags = [pd.NA if r[one_hot] is None else int(t in r[one_hot]) for r in kept]
            data[one_hot_column(one_hot, t)] = pd.array(flags, dtype="Int64")
        data = data.drop(columns=[one_hot])
    for column in data.columns:
        if column in VALUE_RANGES:
            data[column] = data[column].astype("Int64")
    data = data.drop(columns=[SOURCE_FILE, SOURCE_ROW]).reset_index(drop=True)
    dropped_frame = pd.DataFrame(dropped, columns=[SOURCE_FILE, SOURCE_ROW, *value_columns, REASON])
    if one_hot and len(dropped_frame):
        dropped_frame[one_hot] = dropped_frame[one_hot].map(format_multi)
    loaded = [f for f in files if f not in rejected_files]
    return TabularData(data=data, dropped=dropped_frame, files=loaded, rejected_files=rejected_files)


def format_multi(value: Any) -> Any:
    """Show a parsed multi-value set the way the sources write it (``{1, 2}`` -> ``'1&2'``)."""
    if isinstance(value, set):
        return "&".join(str(v) for v in sorted(value)) or "0"
    return value


def row_problem(
    row: dict[str, Any],
    value_columns: Sequence[str],
    one_hot: str | None,
    one_hot_values: Sequence[int],
    corrupted: set[str | None],
    missing: str,
    key_columns: Sequence[str],
) -> str | None:
    """Why ``row`` cannot be kept (parsing its values in place), or None."""
    if row[PATIENT_ID] is None:
        return "missing patient ID"
    if row[PATIENT_ID] in corrupted:
        return f"corrupted ID: {row[PATIENT_ID]} is listed in corrupted_ids"
    graded = [c for c in value_columns if c in VALUE_RANGES or c == one_hot or c in key_columns]
    empty = [c for c in graded if row[c] is None]  # free-text columns may be empty
    for column in value_columns:
        value = row[column]
        if value is None:
            continue
        if column == one_hot:
            try:
                row[column] = parse_multi(value, one_hot_values)
            except ValueError:
                return f"bad value: {column}={value!r} is not a combination of {list(one_hot_values)} (or 0)"
        elif column in VALUE_RANGES:
            low, high = VALUE_RANGES[column]
            try:
                number = parse_grade(column, value)
            except ValueError:
                return f"bad value: {column}={value!r} is not an integer"
            if not low <= number <= high:
                return f"bad value: {column}={number} outside {low}..{high}"
            row[column] = number
    missing_keys = [c for c in key_columns if c in empty]
    if missing_keys or (empty and missing == "drop"):
        return f"missing value: {', '.join(missing_keys or empty)}"
    return None


def write_table_xlsx(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], path: Path, timestamp: datetime, sheet: str = "Sheet1"
) -> Path:
    """Write a one-sheet workbook atomically, byte-for-byte reproducible (fixed document and zip timestamps).

    openpyxl stamps the save time into ``docProps/core.xml`` and every zip entry; both are replaced by
    ``timestamp`` so the same rows give the same file.
    """
    from openpyxl import Workbook

    workbook = Workbook()
    worksheet = workbook.active
    assert worksheet is not None
    worksheet.title = sheet
    worksheet.append(list(columns))
    for row in rows:
        worksheet.append(list(row))
    workbook.properties.creator = "spine-vision"
    raw = io.BytesIO()
    workbook.save(raw)
    stamp = timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                text = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)", rf"\g<1>{stamp}\g<3>",
                              data.decode("utf-8"))
                data = text.encode("utf-8")
            info = zipfile.ZipInfo(item.filename, date_time=timestamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)
    return atomic_write_bytes(path, out.getvalue())
