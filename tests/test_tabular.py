"""Label tables: the mess of real exports is cleaned, and every dropped row says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import xlwt

from spine_lib.errors import InputPathError, TabularDataError, UnsupportedFormatError
from spine_lib.io import load_tabular_data

PHENIKAA_HEADER = [" Patient ID ", "IVD label", "Modic", "UP endplate", "LOW endplate", "Spondylolisthesis",
                   "Disc herniation", "Disc narrowing", "Disc bulging", "Pfirrman  grade"]
SPIDER_HEADER = ["Patient", "IVD label", "Modic", "UP endplate", "LOW endplate", "Spondylolisthesis",
                 "Disc herniation", "Disc narrowing", "Disc bulging", "Pfirrman grade"]

# (row as written, expected fate) -- spreadsheet line numbers start at 2 below the header.
XLSX_ROWS = [
    [250010139, 1, "1&2", 0, 0, 0, 1, 0, 0, 3],  # line 2: kept, Modic 1 and 2
    [250010139, 2, 0, 1, 0, 0, 0, 1, 1, 2],      # line 3: kept, no Modic
    [250010139, 1, "1&2", 0, 0, 0, 1, 0, 0, 3],  # line 4: exact duplicate of line 2
    [250010139, 2, 0, 1, 0, 0, 0, 1, 1, 4],      # line 5: conflicts with line 3
    [25001, 1, 0, 0, 0, 0, 0, 0, 0, 1],          # line 6: corrupted ID
    [250010140, 1, 3, 0, 0, 0, 0, 0, 0, None],   # line 7: missing Pfirrmann
    [None, 3, 0, 0, 0, 0, 0, 0, 0, 2],           # line 8: no patient ID
    [250010140, 2, "4", 0, 0, 0, 0, 0, 0, 2],    # line 9: Modic 4 does not exist
    [250010140, 3, 1, 0, 0, 0, 0, 0, 0, 7],      # line 10: Pfirrmann out of range
    [250010140, 4, "2 & 3", 0, 1, 1, 0, 0, 0, 5],  # line 11: kept, Modic 2 and 3
]
CSV_ROWS = [
    ["250010141.0", "5", "1", "1", "0", "0", "0", "0", "0", "4"],  # line 2: kept (Excel-float ID)
    ["250010141", "4", "x", "0", "0", "0", "0", "0", "0", "4"],    # line 3: Modic not a number
]


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    folder = tmp_path / "tables"
    folder.mkdir()
    pd.DataFrame(XLSX_ROWS, columns=PHENIKAA_HEADER).to_excel(folder / "a_labels.xlsx", index=False)
    pd.DataFrame(CSV_ROWS, columns=SPIDER_HEADER).to_csv(folder / "b_labels.csv", index=False)
    (folder / "~$a_labels.xlsx").write_bytes(b"office lock file")
    return folder


def load(folder: Path, **kwargs: object) -> pd.DataFrame:
    return load_tabular_data(folder, corrupted_ids=[25001], **kwargs).data  # type: ignore[arg-type]


def by_key(data: pd.DataFrame) -> dict[tuple[str, int], dict[Any, Any]]:
    """Kept rows by (patient_id, ivd_label)."""
    return {(str(r["patient_id"]), int(r["ivd_label"])): dict(r) for r in data.to_dict("records")}


MODIC_COLUMNS = ("modic_1", "modic_2", "modic_3")


def test_kept_rows_are_exactly_the_clean_ones(tables: Path) -> None:
    data = load(tables)
    keys = sorted(zip(data["patient_id"], data["ivd_label"], strict=True))
    assert keys == [("250010139", 1), ("250010139", 2), ("250010140", 4), ("250010141", 5)]


def test_columns_are_normalised(tables: Path) -> None:
    data = load(tables)
    assert list(data.columns) == [
        "patient_id", "ivd_label", "up_endplate", "low_endplate", "spondylolisthesis", "disc_herniation",
        "disc_narrowing", "disc_bulging", "pfirrmann_grade", "modic_1", "modic_2", "modic_3",
    ]
    assert str(data["pfirrmann_grade"].dtype) == "Int64"


def test_multi_valued_modic_is_one_hot(tables: Path) -> None:
    rows = by_key(load(tables))
    modic = {key: [row[c] for c in MODIC_COLUMNS] for key, row in rows.items()}
    assert modic[("250010139", 1)] == [1, 1, 0]
    assert modic[("250010139", 2)] == [0, 0, 0]
    assert modic[("250010140", 4)] == [0, 1, 1]
    assert modic[("250010141", 5)] == [1, 0, 0]
    assert rows[("250010140", 4)]["pfirrmann_grade"] == 5


def test_every_dropped_row_has_its_reason_and_origin(tables: Path) -> None:
    result = load_tabular_data(tables, corrupted_ids=[25001])
    reasons = {(r["source_file"], r["source_row"]): r["reason"] for r in result.dropped.to_dict("records")}
    assert set(reasons) == {("a_labels.xlsx", n) for n in (4, 5, 6, 7, 8, 9, 10)} | {("b_labels.csv", 3)}
    assert reasons[("a_labels.xlsx", 4)] == "duplicate row: first seen at a_labels.xlsx:2"
    assert reasons[("a_labels.xlsx", 5)] == (
        "conflicting duplicate: patient_id=250010139, ivd_label=2 first seen at a_labels.xlsx:3 with other values"
    )
    assert reasons[("a_labels.xlsx", 6)].startswith("corrupted ID: 25001")
    assert reasons[("a_labels.xlsx", 7)] == "missing value: pfirrmann_grade"
    assert reasons[("a_labels.xlsx", 8)] == "missing patient ID"
    assert "modic='4'" in reasons[("a_labels.xlsx", 9)]
    assert "pfirrmann_grade=7 outside 1..5" in reasons[("a_labels.xlsx", 10)]
    assert "modic='x'" in reasons[("b_labels.csv", 3)]
    assert result.dropped_reasons() == {
        "bad value": 3, "conflicting duplicate": 1, "corrupted ID": 1, "duplicate row": 1,
        "missing patient ID": 1, "missing value": 1,
    }


def test_nothing_is_lost(tables: Path) -> None:
    result = load_tabular_data(tables, corrupted_ids=[25001])
    assert len(result.data) + len(result.dropped) == len(XLSX_ROWS) + len(CSV_ROWS)
    assert [f.name for f in result.files] == ["a_labels.xlsx", "b_labels.csv"]


def test_missing_values_can_be_kept(tables: Path) -> None:
    row = by_key(load(tables, missing="keep"))[("250010140", 1)]
    assert pd.isna(row["pfirrmann_grade"])
    assert [row[c] for c in MODIC_COLUMNS] == [0, 0, 1]


def test_single_file_and_xls(tmp_path: Path) -> None:
    book = xlwt.Workbook()
    sheet = book.add_sheet("labels")
    for j, name in enumerate(SPIDER_HEADER):
        sheet.write(0, j, name)
    for j, value in enumerate([7, 2, "1&3", 0, 1, 0, 0, 1, 0, 4]):
        sheet.write(1, j, value)
    book.save(str(tmp_path / "old.xls"))
    result = load_tabular_data(tmp_path / "old.xls")
    row = result.data.iloc[0]
    assert (row["patient_id"], row["ivd_label"], row["pfirrmann_grade"]) == ("7", 2, 4)
    assert [row["modic_1"], row["modic_2"], row["modic_3"]] == [1, 0, 1]


def test_unreadable_table_in_folder_is_recorded_and_others_load(tables: Path) -> None:
    (tables / "c_broken.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    result = load_tabular_data(tables, corrupted_ids=[25001])
    assert len(result.data) == 4
    assert list(result.rejected_files) == [tables / "c_broken.xlsx"]
    assert "cannot read table" in result.rejected_files[tables / "c_broken.xlsx"]


def test_corrupt_single_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not a workbook")
    with pytest.raises(TabularDataError, match="cannot read table") as info:
        load_tabular_data(path)
    assert str(path) in str(info.value)


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no_level.csv"
    pd.DataFrame({"Patient ID": [1], "Modic": [0]}).to_csv(path, index=False)
    with pytest.raises(TabularDataError, match=r"missing required column\(s\) \['ivd_label'\]") as info:
        load_tabular_data(path)
    assert str(path) in str(info.value)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="does not exist"):
        load_tabular_data(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TabularDataError, match="no table files"):
        load_tabular_data(tmp_path / "empty")
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(UnsupportedFormatError, match=r"labels\.json"):
        load_tabular_data(tmp_path / "labels.json")
