"""spine_lib.matching: report fields out of OCR text and file names, and patients matched to image folders.

Inputs are built here (hand-written OCR lines, folder names as the hospital writes them, synthetic patients);
expected values come from their construction. Speed is measured, never asserted: ``uv run python
bench/matching_speed.py`` (10,000 names x 10,000 folders, every decision included) on the 2-core dev VM, which
is shared and drifts by up to 2x between runs: ``match_many`` 0.81 s in the recorded run (0.78-1.46 s over
all runs; target <= 1.5 s), the bare ``rapidfuzz.process.cdist`` over all 10,000 x 10,000 names 0.97 s (0.83-2.3 s;
``match_many`` scores distinct names only, ~6,400 x 4,400), a per-pair Python loop over ``fuzz.partial_ratio``
~280-460 s extrapolated from 300 x 300.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from spine_lib.errors import ConfigError, InputPathError
from spine_lib.matching import (
    ImageFolder,
    PatientMatcher,
    ReportName,
    fuzzy_value_extract,
    normalize_text,
    parse_birthday,
    parse_exam_date_line,
    parse_folder_name,
    parse_report_filename,
)
from spine_lib.synthetic.people import SyntheticPatient, ascii_name, make_patients
from spine_lib.synthetic.phenikaa import folder_name
from spine_lib.synthetic.reports import report_lines

NAME = "Họ tên người bệnh"
BIRTHDAY = "Ngày sinh"
ID = "Số phiếu"
SON = SyntheticPatient(
    patient_id="250010139",
    full_name="Nguyễn Văn Sơn",
    birthday=date(1957, 3, 16),
    sex="Nam",
    exam_date=date(2025, 7, 18),
)


# ----------------------------------------------------------------------------------------------- normalize_text
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Họ tên người bệnh", "ho ten nguoi benh"),
        ("  Họ  tên  NGƯỜI-bệnh: ", "ho ten nguoi benh"),
        ("ĐẶNG Thị Ánh Tuyết", "dang thi anh tuyet"),
        ("NGUYEN_VAN_SON_1962", "nguyen van son 1962"),
        ("Hà Nội, ngày 18 tháng 07 năm 2025", "ha noi ngay 18 thang 07 nam 2025"),
        (" :;- ", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


# ------------------------------------------------------------------------------------------ fuzzy_value_extract
def test_fields_of_a_clean_report() -> None:
    lines = report_lines(SON, {})
    assert fuzzy_value_extract(lines, NAME) == "NGUYỄN VĂN SƠN"
    assert fuzzy_value_extract(lines, BIRTHDAY) == "16/03/1957"
    assert fuzzy_value_extract(lines, ID) == "250010139"
    assert fuzzy_value_extract(lines, "Giới tính") == "Nam"


@pytest.mark.parametrize(
    "line",
    [
        "Họ tên người bệnh: NGUYỄN VĂN SƠN",
        "Ho tên ngưòi bệnh : NGUYỄN VĂN SƠN",  # OCR: missing and wrong diacritics, space before ':'
        "Ho ten nguoi benh: NGUYỄN VĂN SƠN",  # no diacritics at all
        "HỌ TÊN NGƯỜI BỆNH:NGUYỄN VĂN SƠN",  # case, no space
        "  Họ   tên  người   bệnh  :   NGUYỄN VĂN SƠN  ",  # extra spaces
        "Họ tên người bệnh; NGUYỄN VĂN SƠN",  # ';' for ':'
        "Họ tên người bệnh = NGUYỄN VĂN SƠN",  # '=' for ':'
        "Họ tên ngươi bênh NGUYỄN VĂN SƠN",  # separator lost: the label is the line's first words
        "Họ tên người bẹnh :: NGUYỄN VĂN SƠN",  # doubled separator
    ],
)
def test_name_is_found_on_ocr_noisy_lines(line: str) -> None:
    lines = ["BỆNH VIỆN ĐẠI HỌC PHENIKAA", line, "Ngày sinh: 16/03/1957", "Giới tính: Nam"]
    assert fuzzy_value_extract(lines, NAME) == "NGUYỄN VĂN SƠN"
    assert fuzzy_value_extract(lines, "Ho ten nguoi benh") == "NGUYỄN VĂN SƠN"


def test_value_on_the_next_line() -> None:
    lines = ["Họ tên người bệnh:", "", "  NGUYỄN VĂN SƠN ", "Ngày sinh: 16/03/1957"]
    assert fuzzy_value_extract(lines, NAME) == "NGUYỄN VĂN SƠN"
    assert fuzzy_value_extract(["Ngày sinh:"], BIRTHDAY) is None  # nothing after it


def test_absent_label_gives_none() -> None:
    lines = ["Giới tính: Nam", "Số phiếu: 250010139", "KẾT LUẬN:", "Thoát vị đĩa đệm L4/L5."]
    assert fuzzy_value_extract(lines, NAME) is None
    assert fuzzy_value_extract([], NAME) is None


def test_date_line_is_not_taken_for_the_birthday() -> None:
    date_line = "Hà Nội, ngày 18 tháng 07 năm 2025"
    assert fuzzy_value_extract(["Giới tính: Nam", date_line], BIRTHDAY) is None
    assert fuzzy_value_extract(["Ngày 18 tháng 07", date_line, "Ngày chụp: 18/07/2025"], BIRTHDAY) is None
    assert fuzzy_value_extract([date_line, "Ngay sinh: 16/03/1957", date_line], BIRTHDAY) == "16/03/1957"


def test_a_lower_threshold_accepts_a_badly_read_label() -> None:
    lines = ["Hq tcn ngucl bcnh: NGUYỄN VĂN SƠN"]  # five letters misread: fuzz.ratio ~70.6
    assert fuzzy_value_extract(lines, NAME) is None
    assert fuzzy_value_extract(lines, NAME, threshold=70) == "NGUYỄN VĂN SƠN"


# ------------------------------------------------------------------------------------------------------ dates
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16/03/1957", date(1957, 3, 16)),
        ("16 / 03 / 1957", date(1957, 3, 16)),
        ("16-03-1957", date(1957, 3, 16)),
        ("16.03.1957", date(1957, 3, 16)),
        ("6/3/1957", date(1957, 3, 6)),
        ("16 03 1957", date(1957, 3, 16)),
        ("16031957", date(1957, 3, 16)),
        ("l6/O3/1957", date(1957, 3, 16)),  # l -> 1, O -> 0
        ("I6/o3/19S7", date(1957, 3, 16)),  # I -> 1, o -> 0, S -> 5
        ("|8/03/19B7", date(1987, 3, 18)),  # | -> 1, B -> 8
        ("Ngày sinh: 29/02/1960", date(1960, 2, 29)),  # a leap day, inside a longer text
    ],
)
def test_parse_birthday(text: str, expected: date) -> None:
    assert parse_birthday(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "không rõ",
        "31/02/1957",
        "29/02/1957",
        "16/13/1957",
        "00/03/1957",
        "16/03/1899",
        "16/03/57",
        "1957",
        "160319570",
        "16/03/" + str(date.today().year + 1),
    ],
)
def test_parse_birthday_rejects_impossible_dates(text: str | None) -> None:
    assert parse_birthday(text) is None


def test_birthday_of_tomorrow_is_rejected() -> None:
    tomorrow = date.today() + timedelta(days=1)
    assert parse_birthday(f"{tomorrow:%d/%m/%Y}") is None
    assert parse_birthday(f"{date.today():%d/%m/%Y}") == date.today()


def test_exam_date_from_the_report_date_line() -> None:
    assert parse_exam_date_line(report_lines(SON, {})) == SON.exam_date


@pytest.mark.parametrize(
    "line",
    [
        "Hà Nội, ngày 18 tháng 07 năm 2025",
        "Ha Noi, ngay 18 thang 07 nam 2025",
        "HÀ NỘI, NGÀY 18 THÁNG 7 NĂM 2025",
        "Hà Nội, ngàv 18 thảng O7 nãm 2025".replace("ngàv", "ngày"),
        "Hà Nội,ngày l8 tháng 07 năm 2O25",
    ],
)
def test_exam_date_line_tolerates_ocr(line: str) -> None:
    assert parse_exam_date_line(["Số phiếu: 250010139", line]) == date(2025, 7, 18)


def test_exam_date_line_absent_or_impossible() -> None:
    assert parse_exam_date_line(["Ngày sinh: 16/03/1957", "Giới tính: Nam"]) is None
    assert parse_exam_date_line(["Hà Nội, ngày 31 tháng 02 năm 2025"]) is None
    assert parse_exam_date_line([]) is None


# ------------------------------------------------------------------------------------------------- file names
@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("250010139.png", ReportName(kind="id", patient_id="250010139")),
        (Path("reports/250010139.PNG"), ReportName(kind="id", patient_id="250010139")),
        (
            "NGUYEN_VAN_SON_20250718.pdf",
            ReportName(kind="name", name="NGUYEN VAN SON", exam_date=date(2025, 7, 18)),
        ),
        ("NGUYEN_VAN_SON.pdf", ReportName(kind="name", name="NGUYEN VAN SON")),
        (
            "DANG_THI_ANH_TUYET_20241231.pdf",
            ReportName(kind="name", name="DANG THI ANH TUYET", exam_date=date(2024, 12, 31)),
        ),
        ("NGUYEN_VAN_SON_20251399.pdf", ReportName(kind="unknown")),  # not a date: the name is unparsable
        ("NGUYEN_VAN_SON_2025071.pdf", ReportName(kind="unknown")),
        ("NGUYEN_VAN_SON_1962_20250718.pdf", ReportName(kind="unknown")),
        ("scan final.pdf", ReportName(kind="unknown")),
        ("SCAN.pdf", ReportName(kind="unknown")),  # one word is not a name
        ("1234.png", ReportName(kind="unknown")),  # too short for a patient ID
    ],
)
def test_parse_report_filename(file: str | Path, expected: ReportName) -> None:
    assert parse_report_filename(Path(file)) == expected


# ------------------------------------------------------------------------------------------------ folder names
@pytest.mark.parametrize(
    ("folder", "name", "birth_year", "exam", "copy"),
    [
        ("NGUYEN_VAN_SON_20250718", "NGUYEN VAN SON", None, date(2025, 7, 18), 1),
        ("NGUYEN_VAN_SON_1962_20250718", "NGUYEN VAN SON", 1962, date(2025, 7, 18), 1),
        ("NGUYEN_VAN_SON_20250718 (2)", "NGUYEN VAN SON", None, date(2025, 7, 18), 2),
        ("DANG_THI_ANH_TUYET_1968_20240229 (3)", "DANG THI ANH TUYET", 1968, date(2024, 2, 29), 3),
    ],
)
def test_parse_folder_name(folder: str, name: str, birth_year: int | None, exam: date, copy: int) -> None:
    assert parse_folder_name(folder) == ImageFolder(
        path=Path(folder), folder=folder, name=name, birth_year=birth_year, exam_date=exam, copy=copy
    )


def test_parse_folder_name_keeps_the_given_path() -> None:
    parsed = parse_folder_name("NGUYEN_VAN_SON_20250718", Path("/data/images/NGUYEN_VAN_SON_20250718"))
    assert parsed is not None and parsed.path == Path("/data/images/NGUYEN_VAN_SON_20250718")


@pytest.mark.parametrize(
    "folder",
    [
        "random folder",
        "NGUYEN_VAN_SON_2025071",
        "NGUYEN_VAN_SON_20251399",
        "NGUYEN_VAN_SON_20250230",
        "NGUYEN_VAN_SON_1850_20250718",
        "NGUYEN_VAN_SON",
        "nguyen_van_son_20250718",
        "NGUYEN_VAN_SON_20250718 (x)",
        "NGUYEN_VAN_SON_20250718_extra",
        "20250718",
    ],
)
def test_parse_folder_name_rejects(folder: str) -> None:
    assert parse_folder_name(folder) is None


# --------------------------------------------------------------------------------------------- PatientMatcher
def test_exact_name_matches() -> None:
    matcher = PatientMatcher(folders=["NGUYEN_VAN_SON_20250718", "TRAN_THI_HOA_1960_20250102"])
    result = matcher.match("NGUYỄN VĂN SƠN", date(1957, 3, 16))
    assert result.status == "matched"
    assert result.folder is not None and result.folder.folder == "NGUYEN_VAN_SON_20250718"
    assert result.score == 100 and result.repeats == []
    assert matcher.match_by_name("Nguyen Van Son").status == "matched"


def test_a_longer_name_is_not_a_match_without_confirmation() -> None:
    matcher = PatientMatcher(folders=["NGUYEN_VAN_SONG_20250101"])
    result = matcher.match("NGUYỄN VĂN SƠN", date(1962, 5, 1))
    assert result.status == "no_match" and result.folder is None
    assert "NGUYEN_VAN_SONG_20250101" in result.reason and "nothing confirms" in result.reason
    assert result.candidates == [("NGUYEN_VAN_SONG_20250101", pytest.approx(96.55, abs=0.01))]


def test_a_longer_name_matches_when_the_birth_year_confirms_it() -> None:
    matcher = PatientMatcher(folders=["NGUYEN_VAN_SONG_1962_20250101"])
    result = matcher.match("NGUYỄN VĂN SƠN", date(1962, 5, 1))
    assert result.status == "matched"
    assert result.folder is not None and result.folder.folder == "NGUYEN_VAN_SONG_1962_20250101"
    assert "birth year" in result.reason


def test_a_near_name_matches_when_the_exam_date_confirms_it() -> None:
    matcher = PatientMatcher(folders=["NGUYEN_VAN_SONG_20250101"])
    assert matcher.match_by_name("NGUYEN VAN SON", date(2025, 1, 1)).status == "matched"
    assert matcher.match_by_name("NGUYEN VAN SON", date(2025, 1, 2)).status == "no_match"


def test_namesakes_are_separated_by_birth_year() -> None:
    folders = ["NGUYEN_VAN_SON_1962_20250718", "NGUYEN_VAN_SON_1975_20250301"]
    matcher = PatientMatcher(folders=folders)
    for birthday, expected in ((date(1962, 1, 2), folders[0]), (date(1975, 12, 31), folders[1])):
        result = matcher.match("NGUYỄN VĂN SƠN", birthday)
        assert result.status == "matched" and result.folder is not None and result.folder.folder == expected
    assert matcher.match("NGUYỄN VĂN SƠN").status == "ambiguous"


def test_a_namesake_of_another_birth_year_is_no_match() -> None:
    result = PatientMatcher(folders=["NGUYEN_VAN_SON_1962_20250718"]).match(
        "NGUYỄN VĂN SƠN", date(1980, 1, 1)
    )
    assert result.status == "no_match" and "birth year" in result.reason
    assert result.candidates == [("NGUYEN_VAN_SON_1962_20250718", 100.0)]


def test_a_year_only_birthday_separates_namesakes() -> None:
    # the same exam date: only the birth year tells the two apart
    folders = ["NGUYEN_VAN_SON_1962_20250718", "NGUYEN_VAN_SON_1975_20250718"]
    matcher = PatientMatcher(folders=folders)
    for year, expected in ((1962, folders[0]), (1975, folders[1])):
        result = matcher.match("NGUYỄN VĂN SƠN", None, date(2025, 7, 18), birth_year=year)
        assert result.status == "matched" and result.folder is not None and result.folder.folder == expected
        assert "birth year" in result.reason
    assert matcher.match("NGUYỄN VĂN SƠN", None, date(2025, 7, 18)).status == "ambiguous"
    result = matcher.match("NGUYỄN VĂN SƠN", birth_year=1980)
    assert result.status == "no_match" and "birth year" in result.reason


def test_a_birth_year_confirms_a_near_name() -> None:
    matcher = PatientMatcher(folders=["NGUYEN_VAN_SONG_1962_20250101"])
    assert matcher.match("NGUYỄN VĂN SƠN", birth_year=1962).status == "matched"
    assert matcher.match("NGUYỄN VĂN SƠN", birth_year=1963).status == "no_match"
    assert matcher.match("NGUYỄN VĂN SƠN").status == "no_match"


def test_a_known_birthday_outranks_a_birth_year() -> None:
    folders = ["NGUYEN_VAN_SON_1962_20250718", "NGUYEN_VAN_SON_1975_20250301"]
    result = PatientMatcher(folders=folders).match("NGUYỄN VĂN SƠN", date(1962, 1, 2), birth_year=1975)
    assert result.status == "matched" and result.folder is not None and result.folder.folder == folders[0]


def test_birth_years_are_one_per_name() -> None:
    with pytest.raises(ValueError, match="birth years"):
        PatientMatcher(folders=[]).match_many(["A B"], birth_years=[1960, 1961])


def test_same_name_and_birth_year_are_separated_by_exam_date() -> None:
    folders = ["NGUYEN_VAN_SON_1962_20240305", "NGUYEN_VAN_SON_1962_20250718"]
    matcher = PatientMatcher(folders=folders)
    result = matcher.match("NGUYỄN VĂN SƠN", date(1962, 4, 1), date(2025, 7, 18))
    assert result.status == "matched" and result.folder is not None and result.folder.folder == folders[1]
    assert result.reason == "exact name, confirmed by birth year and exam date"
    assert matcher.match("NGUYỄN VĂN SƠN", date(1962, 4, 1)).status == "ambiguous"


def test_indistinguishable_folders_are_ambiguous() -> None:
    folders = ["NGUYEN_VAN_SON_20240305", "NGUYEN_VAN_SON_20250718", "NGUYEN_VAN_SONG_20250101"]
    result = PatientMatcher(folders=folders).match("NGUYỄN VĂN SƠN", date(1957, 3, 16))
    assert result.status == "ambiguous" and result.folder is None
    assert sorted(folder for folder, _ in result.candidates) == folders[:2]
    assert all(score == 100 for _, score in result.candidates)


def test_an_exam_date_no_folder_has_does_not_separate() -> None:
    folders = ["NGUYEN_VAN_SON_20240305", "NGUYEN_VAN_SON_20250718"]
    assert (
        PatientMatcher(folders=folders).match_by_name("NGUYEN VAN SON", date(2023, 1, 1)).status
        == "ambiguous"
    )


def test_repeat_exports_are_one_study() -> None:
    folders = ["LE_VAN_AN_1950_20250101 (2)", "LE_VAN_AN_1950_20250101", "LE_VAN_AN_1950_20250101 (3)"]
    result = PatientMatcher(folders=folders).match("Lê Văn An", date(1950, 6, 1))
    assert result.status == "matched"
    assert result.folder is not None and result.folder.folder == "LE_VAN_AN_1950_20250101"
    assert [f.folder for f in result.repeats] == [
        "LE_VAN_AN_1950_20250101 (2)",
        "LE_VAN_AN_1950_20250101 (3)",
    ]
    assert [f.copy for f in result.repeats] == [2, 3]


def test_one_ocr_error_matches_when_the_birthday_confirms_it() -> None:
    matcher = PatientMatcher(folders=["PHAM_THI_HUONG_1970_20250101", "TRAN_VAN_HAI_20250101"])
    result = matcher.match("PHẠM THỊ HƯƠNC", date(1970, 8, 9))  # G read as C
    assert result.status == "matched"
    assert result.folder is not None and result.folder.folder == "PHAM_THI_HUONG_1970_20250101"
    assert 85 <= result.score < 100 and "birth year" in result.reason
    assert matcher.match("PHẠM THỊ HƯƠNC").status == "no_match"


def test_one_letter_apart_lookalikes_are_told_apart() -> None:
    matcher = PatientMatcher(folders=["TRAN_THI_LOAN_20250103", "TRAN_THI_LAN_20250102"])
    for name, expected in (
        ("TRẦN THỊ LAN", "TRAN_THI_LAN_20250102"),
        ("TRẦN THỊ LOAN", "TRAN_THI_LOAN_20250103"),
    ):
        result = matcher.match(name, date(1960, 1, 1))
        assert result.status == "matched" and result.folder is not None and result.folder.folder == expected


def test_an_exact_name_outranks_a_confirmed_lookalike() -> None:
    matcher = PatientMatcher(folders=["TRAN_THI_LAN_20250102", "TRAN_THI_LOAN_1960_20250103"])
    result = matcher.match("TRẦN THỊ LAN", date(1960, 1, 1))  # LOAN's birth year fits too, its name does not
    assert result.status == "matched"
    assert result.folder is not None and result.folder.folder == "TRAN_THI_LAN_20250102"
    assert [folder for folder, _ in result.candidates] == [
        "TRAN_THI_LAN_20250102",
        "TRAN_THI_LOAN_1960_20250103",
    ]


def test_an_unconfirmed_near_miss_as_close_as_the_best_makes_it_ambiguous() -> None:
    # HUONG (no birth year) and HUONK (birth year confirms) are equally far from the OCR-read HUONC.
    matcher = PatientMatcher(folders=["PHAM_THI_HUONG_20250101", "PHAM_THI_HUONK_1970_20250101"])
    result = matcher.match("PHẠM THỊ HƯƠNC", date(1970, 1, 1))
    assert result.status == "ambiguous"
    assert {folder for folder, _ in result.candidates} == {
        "PHAM_THI_HUONG_20250101",
        "PHAM_THI_HUONK_1970_20250101",
    }


def test_names_far_from_every_folder_are_no_match() -> None:
    matcher = PatientMatcher(folders=["NGUYEN_VAN_SON_20250718"])
    result = matcher.match("HOÀNG THỊ MAI", date(1970, 1, 1))
    assert result.status == "no_match" and "no folder name scores >= 85" in result.reason
    assert matcher.match("").status == "no_match"
    assert PatientMatcher(folders=[]).match("NGUYỄN VĂN SƠN").status == "no_match"


def test_exam_date_tolerance_keeps_a_report_off_a_namesakes_study() -> None:
    folders = ["NGUYEN_VAN_SON_20240305"]
    exam = date(2025, 7, 18)
    assert PatientMatcher(folders=folders).match("NGUYỄN VĂN SƠN", None, exam).status == "matched"
    strict = PatientMatcher(folders=folders, exam_date_tolerance_days=3)
    assert strict.match("NGUYỄN VĂN SƠN", None, exam).status == "no_match"
    assert strict.match("NGUYỄN VĂN SƠN", None, date(2024, 3, 7)).status == "matched"
    assert strict.match("NGUYỄN VĂN SƠN").status == "matched"


def test_folders_are_listed_and_bad_names_rejected(tmp_path: Path) -> None:
    for folder in [
        "NGUYEN_VAN_SON_20250718",
        "NGUYEN_VAN_SON_20250718 (2)",
        "random folder",
        "NGUYEN_VAN_SON_20251399",
    ]:
        (tmp_path / folder).mkdir()
    (tmp_path / "notes.txt").write_text("not a folder")
    matcher = PatientMatcher(tmp_path)
    assert [f.folder for f in matcher.folders] == ["NGUYEN_VAN_SON_20250718", "NGUYEN_VAN_SON_20250718 (2)"]
    assert dict(matcher.rejected_folders).keys() == {"random folder", "NGUYEN_VAN_SON_20251399"}
    assert "not a valid" in dict(matcher.rejected_folders)["NGUYEN_VAN_SON_20251399"]
    result = matcher.match("NGUYỄN VĂN SƠN")
    assert result.folder is not None and result.folder.path == tmp_path / "NGUYEN_VAN_SON_20250718"
    assert [f.path for f in result.repeats] == [tmp_path / "NGUYEN_VAN_SON_20250718 (2)"]


def test_matcher_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InputPathError):
        PatientMatcher(tmp_path / "missing")
    with pytest.raises(ConfigError):
        PatientMatcher()
    with pytest.raises(ConfigError):
        PatientMatcher(folders=[], threshold=0)
    with pytest.raises(ValueError, match="birthdays"):
        PatientMatcher(folders=[]).match_many(["A B"], [None, None])
    assert PatientMatcher(folders=[]).match_many([]) == []


def test_match_many_decides_each_row_as_match_does() -> None:
    folders = [
        "NGUYEN_VAN_SON_1962_20240305",
        "NGUYEN_VAN_SON_20250718",
        "NGUYEN_VAN_SONG_20250101",
        "TRAN_THI_LAN_20250102",
        "TRAN_THI_LOAN_1960_20250103",
        "LE_VAN_AN_1950_20250101",
        "LE_VAN_AN_1950_20250101 (2)",
        "PHAM_THI_HUONG_1970_20250101",
    ]
    queries: list[tuple[str, date | None, date | None]] = [
        ("NGUYỄN VĂN SƠN", date(1962, 1, 1), None),
        ("NGUYỄN VĂN SƠN", None, date(2025, 7, 18)),
        ("NGUYỄN VĂN SƠN", None, None),
        ("TRẦN THỊ LAN", date(1960, 1, 1), None),
        ("TRẦN THỊ LAN", None, None),
        ("Lê Văn An", None, None),
        ("PHẠM THỊ HƯƠNC", date(1970, 1, 1), None),
        ("PHẠM THỊ HƯƠNC", None, None),
        ("", None, None),
        ("NGUYỄN VĂN SƠN", date(1962, 1, 1), None),
        ("HOÀNG THỊ MAI", None, None),
        ("NGUYEN VAN SON", date(1980, 1, 1), date(2025, 1, 1)),
    ]
    matcher = PatientMatcher(folders=folders)
    many = matcher.match_many([q[0] for q in queries], [q[1] for q in queries], [q[2] for q in queries])
    assert many == [matcher.match(*q) for q in queries]
    assert [r.status for r in many] == [
        "ambiguous",
        "matched",
        "ambiguous",
        "matched",
        "matched",
        "matched",
        "matched",
        "no_match",
        "no_match",
        "ambiguous",
        "no_match",
        "matched",
    ]
    # The last: SON_1962 has another birth year, SONG is the one folder of that exam date, which confirms it.
    assert many[-1].folder is not None and many[-1].folder.folder == "NGUYEN_VAN_SONG_20250101"


def test_synthetic_patients_end_to_end() -> None:
    """200 synthetic patients (look-alikes included), folders named as the hospital does (a quarter with the
    birth year, some exported twice).

    With the reports' names and birthdays only, no match is ever wrong, but 33 of the 200 patients (16.5%) share
    their exact name with another patient whose folder carries no birth year: nothing in the query tells the two
    apart, so they are ambiguous (recall 83.5%; no rule reaches 97% here without guessing). With the exam date
    every report also carries (the date line, or the PDF's file name), all 200 are matched to their own study.
    """
    patients = make_patients(200, np.random.default_rng(1))
    truth = [folder_name(p, with_birth_year=i % 4 == 1) for i, p in enumerate(patients)]
    folders = truth + [
        folder_name(p, with_birth_year=i % 4 == 1, copy=2) for i, p in enumerate(patients) if i % 5 == 3
    ]
    matcher = PatientMatcher(folders=folders)
    assert matcher.rejected_folders == []
    names = [p.full_name.upper() for p in patients]

    results = matcher.match_many(names, [p.birthday for p in patients])
    for patient, target, result in zip(patients, truth, results, strict=True):
        if result.status == "matched":
            assert result.folder is not None and result.folder.folder == target  # precision 100%
            assert [f.folder for f in result.repeats] == [f"{target} (2)"] * (f"{target} (2)" in folders)
            continue
        assert result.status == "ambiguous" and target in dict(result.candidates)
        own = ascii_name(patient.full_name).replace("_", " ")
        assert any(
            f.folder != target
            and f.copy == 1
            and f.name == own
            and f.birth_year in (None, patient.birthday.year)
            for f in matcher.folders
        )  # a namesake's folder nothing rules out
    assert sum(r.status == "matched" for r in results) >= 0.8 * len(patients)

    with_dates = matcher.match_many(names, [p.birthday for p in patients], [p.exam_date for p in patients])
    matched = [r.folder.folder if r.folder else None for r in with_dates]
    assert sum(m == t for m, t in zip(matched, truth, strict=True)) >= 0.97 * len(patients)
    assert all(m in (None, t) for m, t in zip(matched, truth, strict=True))
