"""spine_lib.matching.fields: patient fields off report forms of any layout, on OCR-like text lines.

The lines are written here as OCR returns them from the hospital's forms (missing diacritics, ``:`` read as
``;``, extra spaces, stray symbols from a stamp); expected values are the ones written into the lines.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date

import pytest

from spine_lib.matching.fields import (
    FormFields,
    clean_name,
    extract_fields,
    find_exam_date,
    find_labels,
    parse_birth,
    parse_patient_id,
    read_fields,
)
from spine_lib.sources.phenikaa import FIELD_LABELS, NAME_LABEL

HEADER = ["BỆNH VIỆN ĐẠI HỌC PHENIKAA", "KHOA CHẨN ĐOÁN HÌNH ẢNH", "KẾT QUẢ CHỤP CỘNG HƯỞNG TỪ CỘT SỐNG THẮT LƯNG"]
NAME = "LÊ HỮU VÝ"
PID = "250010139"
BORN = date(1957, 3, 16)
EXAM = date(2025, 7, 18)
#: What OCR makes of a round red stamp's ink at the end of a line (an asterisk and a fraction slash).
STAMP = "*\u2044"


def ascii_only(text: str) -> str:
    """The text as OCR without Vietnamese gives it: diacritics dropped, đ -> d, case kept."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


#: OCR noise applied to a whole line (label and value): what a wrong extraction would trip on.
NOISE: dict[str, Callable[[str], str]] = {
    "clean": lambda line: line,
    "no_diacritics": ascii_only,
    "semicolon": lambda line: line.replace(":", ";"),
    "extra_spaces": lambda line: "  " + line.replace(" ", "   ").replace(":", " : ") + "  ",
    "upper": str.upper,
    "glued_separator": lambda line: line.replace(": ", ":"),
}


def form(*lines: str) -> list[str]:
    return [*HEADER, *lines, "Chỉ định: Đau thắt lưng lan xuống chân.", "KẾT LUẬN:", "- Thoát vị đĩa đệm L4/L5."]


# ------------------------------------------------------------------------------------------- label wordings
@pytest.mark.parametrize("noise", NOISE)
@pytest.mark.parametrize("label", FIELD_LABELS["name"])
def test_every_name_wording_is_read(label: str, noise: str) -> None:
    lines = form(NOISE[noise](f"{label}: {NAME}"), "Ngày sinh: 16/03/1957", f"Số phiếu: {PID}")
    name = extract_fields(lines).name
    assert name is not None and ascii_only(name).upper() == ascii_only(NAME)


@pytest.mark.parametrize("noise", NOISE)
@pytest.mark.parametrize("label", FIELD_LABELS["patient_id"])
def test_every_id_wording_is_read(label: str, noise: str) -> None:
    lines = form(f"Họ tên: {NAME}", NOISE[noise](f"{label}: {PID}"), "Ngày sinh: 16/03/1957")
    assert extract_fields(lines).patient_id == PID


@pytest.mark.parametrize("noise", NOISE)
@pytest.mark.parametrize("label", [w for w in FIELD_LABELS["birthday"] if w != "Năm sinh"])
def test_every_birthday_wording_gives_the_date(label: str, noise: str) -> None:
    fields = extract_fields(form(f"Họ tên: {NAME}", NOISE[noise](f"{label}: 16/03/1957")))
    assert (fields.birthday, fields.birth_year) == (BORN, 1957)


@pytest.mark.parametrize("noise", NOISE)
@pytest.mark.parametrize(("label", "value", "expected"), [("Giới tính", "Nữ", "Nữ"), ("Giới", "Nam", "Nam")])
def test_every_sex_wording_is_read(label: str, value: str, expected: str, noise: str) -> None:
    assert extract_fields(form(f"Họ tên: {NAME}", NOISE[noise](f"{label}: {value}"))).sex == expected


@pytest.mark.parametrize(
    ("line", "kind", "value"),
    [
        (f"Hq tên người bệnh: {NAME}", "name", NAME),  # o read as q
        (f"Họ và tèn: {NAME}", "name", NAME),  # a wrong accent
        ("Ngày slnh: 16/03/1957", "birthday", "16/03/1957"),  # i read as l
        ("Ngàysinh: 16/03/1957", "birthday", "16/03/1957"),  # words glued
        ("Ng ày sinh: 16/03/1957", "birthday", "16/03/1957"),  # a word split
        (f"S0 phiếu: {PID}", "patient_id", PID),  # o read as 0
        (f"Mã bệnh nhãn: {PID}", "patient_id", PID),
    ],
)
def test_misread_labels_are_still_labels(line: str, kind: str, value: str) -> None:
    assert [(r.kind, r.value) for r in read_fields([line])] == [(kind, value)]


def test_the_preferred_id_label_wins_when_a_form_has_two() -> None:
    for lines in (["Mã BN: 123456", f"Số phiếu: {PID}"], [f"Số phiếu: {PID}", "Mã BN: 123456"]):
        assert extract_fields(form(f"Họ tên: {NAME}", *lines)).patient_id == PID


def test_a_name_label_without_separator_at_the_line_start() -> None:
    fields = extract_fields(form("Ho ten nguoi benh LE HUU VY", "Ngay sinh 16/03/1957"))
    assert fields.name == "LE HUU VY" and fields.birthday == BORN


def test_the_longest_label_is_read_not_its_prefix() -> None:
    hits = find_labels("Họ tên người bệnh: NGUYỄN VĂN SƠN")
    assert [(hit.kind, hit.label) for hit in hits] == [("name", "Họ tên người bệnh")]
    hits = find_labels("Ngày tháng năm sinh: 16/03/1957")
    assert [(hit.kind, hit.label) for hit in hits] == [("birthday", "Ngày tháng năm sinh")]
    # the relative's name is another field, not the patient's
    assert [hit.kind for hit in find_labels("Họ tên người nhà: TRẦN VĂN BA")] == ["other"]


def test_short_or_one_word_labels_need_an_exact_match_and_a_separator() -> None:
    # "Tuổi" ends the name only as a label (with ':'), never as the last word of a name
    assert extract_fields(form("Họ tên: LÊ VĂN TUỔI", f"Số phiếu: {PID}")).name == "LÊ VĂN TUỔI"
    assert extract_fields(form("Họ tên: LÊ VĂN TÂM Tuổi: 50", f"Số phiếu: {PID}")).name == "LÊ VĂN TÂM"
    assert [hit.kind for hit in find_labels("Ngày: 18/07/2025")] == []  # not "Ngày in"


# ------------------------------------------------------------------------------------- several fields a line
@pytest.mark.parametrize("noise", NOISE)
def test_name_and_id_on_one_line(noise: str) -> None:
    line = NOISE[noise](f"Họ và tên: {NAME}      Số phiếu: {PID}")
    fields = extract_fields(form(line, "Ngày sinh: 16/03/1957"))
    assert fields.name is not None and ascii_only(fields.name).upper() == "LE HUU VY"
    assert fields.patient_id == PID and not fields.name_cleaned


def test_fields_in_any_order_on_a_line() -> None:
    fields = extract_fields(form(f"Số phiếu: {PID}   Họ tên BN: {NAME}", "Giới tính: Nam   Ngày sinh: 16/03/1957"))
    assert (fields.patient_id, fields.name, fields.sex, fields.birthday) == (PID, NAME, "Nam", BORN)


def test_three_fields_on_a_line_and_a_label_that_is_not_extracted() -> None:
    fields = extract_fields(form(f"Tên bệnh nhân; {NAME}", "Năm sinh: 1975    Tuổi: 50    Giới tính: Nữ"))
    assert (fields.birthday, fields.birth_year, fields.sex) == (None, 1975, "Nữ")


def test_a_value_stops_at_the_next_label() -> None:
    reads = read_fields([f"Họ tên BN: {NAME}   Địa chỉ: Hà Đông, Hà Nội   Mã BN: {PID}"])
    assert [(r.kind, r.value) for r in reads] == [("name", NAME), ("other", "Hà Đông, Hà Nội"), ("patient_id", PID)]


def test_the_birthday_line_above_the_name_line() -> None:
    fields = extract_fields(form("Ngày sinh: 16/03/1957   Giới tính: Nam", f"Họ và tên: {NAME}   Mã phiếu: {PID}"))
    assert (fields.name, fields.patient_id, fields.birthday) == (NAME, PID, BORN)


def test_a_value_on_the_next_line() -> None:
    fields = extract_fields(form("Họ và tên:", f"{NAME}      Số phiếu: {PID}", "Ngày sinh:", "Giới tính: Nam"))
    assert (fields.name, fields.patient_id) == (NAME, PID)
    assert fields.birthday is None and fields.birth_year is None  # the next line begins with a label


def test_a_form_without_the_fields() -> None:
    fields = extract_fields(form("Giới tính: Nam"))
    assert (fields.name, fields.patient_id, fields.birthday, fields.birth_year) == (None, None, None, None)
    assert fields.labelled == frozenset({"sex"})
    assert extract_fields([]) == FormFields()


# ------------------------------------------------------------------------------------------ values by kind
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250010139", "250010139"),
        ("25001O139", "250010139"),  # O read for 0
        ("250 010 139", "250010139"),
        ("250010139 *", "250010139"),  # a stamp's mark after it
        ("123456", "123456"),
        ("123456789012", "123456789012"),
        ("12345", None),  # shorter than the hospital's IDs
        ("1234567890123", None),
        ("không rõ", None),
        ("", None),
    ],
)
def test_parse_patient_id(text: str, expected: str | None) -> None:
    assert parse_patient_id(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Lê Hữu Vý {STAMP}", ("Lê Hữu Vý", True)),  # a round stamp over the name line
        ("LÊ HỮU VÝ |", ("LÊ HỮU VÝ", True)),
        ("LÊ HỮ©U VÝ", ("LÊ HỮU VÝ", True)),
        ("  Lê   Hữu  Vý ", ("Lê Hữu Vý", False)),  # spaces are not symbols
        ("H'Hen Niê", ("H'Hen Niê", False)),
        ("ĐẶNG THỊ ÁNH TUYẾT", ("ĐẶNG THỊ ÁNH TUYẾT", False)),
        ("NGUYỄN 1957", (None, True)),  # one word of letters is no name
        (STAMP, (None, True)),
        ("", (None, False)),
    ],
)
def test_clean_name(text: str, expected: tuple[str | None, bool]) -> None:
    assert clean_name(text) == expected


def test_stray_symbols_are_stripped_and_flagged() -> None:
    fields = extract_fields(form(f"{NAME_LABEL}: Lê Hữu Vý {STAMP}", f"Số phiếu: {PID}", "Ngày sinh: 16/03/1957"))
    assert fields.name == "Lê Hữu Vý" and fields.name_cleaned
    assert not extract_fields(form(f"{NAME_LABEL}: Lê Hữu Vý", "Ngày sinh: 16/03/1957")).name_cleaned


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16/03/1957", (BORN, 1957)),
        ("1975", (None, 1975)),
        ("l975", (None, 1975)),  # l read for 1
        ("1975 *", (None, 1975)),
        ("31/02/1957", (None, None)),  # an impossible date: its year is no surer than its day
        ("31/02/19x7", (None, None)),
        ("16/03/57", (None, None)),
        ("1899", (None, None)),
        (str(date.today().year + 1), (None, None)),
        ("không rõ", (None, None)),
    ],
)
def test_parse_birth(text: str, expected: tuple[date | None, int | None]) -> None:
    assert parse_birth(text) == expected


@pytest.mark.parametrize("noise", NOISE)
def test_a_year_only_birthday_gives_the_birth_year(noise: str) -> None:
    fields = extract_fields(form(f"Họ tên: {NAME}", NOISE[noise]("Năm sinh: 1975")))
    assert (fields.birthday, fields.birth_year) == (None, 1975)
    assert "birthday" in fields.labelled


def test_an_unreadable_birthday_is_labelled_but_empty() -> None:
    fields = extract_fields(form(f"Họ tên: {NAME}", "Ngày sinh: 31/02/19x7"))
    assert (fields.birthday, fields.birth_year) == (None, None) and "birthday" in fields.labelled


def test_merged_fills_the_gaps_of_the_first_reading() -> None:
    band = FormFields(patient_id=PID, name=NAME, name_cleaned=True, birth_year=1957, labelled=frozenset({"name"}))
    whole = FormFields(patient_id="999999", name="OTHER NAME", birthday=BORN, birth_year=1957, exam_date=EXAM,
                       labelled=frozenset({"birthday"}))
    merged = band.merged(whole)
    assert (merged.patient_id, merged.name, merged.name_cleaned) == (PID, NAME, True)
    assert (merged.birthday, merged.birth_year, merged.exam_date) == (BORN, 1957, EXAM)
    assert merged.labelled == frozenset({"name", "birthday"})


# --------------------------------------------------------------------------------------------- exam date
SIGNATURE = ["BÁC SĨ ĐỌC KẾT QUẢ", "", "BS. Nguyễn Văn An"]


@pytest.mark.parametrize("noise", NOISE)
def test_exam_date_above_a_signature_block(noise: str) -> None:
    lines = form(f"Họ tên: {NAME}", "Ngày sinh: 16/03/1957")
    lines += [NOISE[noise]("Hà Nội, ngày 18 tháng 07 năm 2025"), *(NOISE[noise](line) for line in SIGNATURE)]
    assert find_exam_date(lines) == EXAM
    assert extract_fields(lines).exam_date == EXAM


def test_the_date_above_the_signature_wins_over_other_date_lines() -> None:
    lines = form(f"Họ tên: {NAME}")
    lines.insert(-1, "- So với phim chụp ngày 02 tháng 01 năm 2024: tiến triển.")  # an earlier exam, in the text
    lines += ["Hà Nội, ngày 18 tháng 07 năm 2025", "BS. Nguyễn Văn An", "Bản sao ngày 25 tháng 07 năm 2025"]
    assert find_exam_date(lines) == EXAM


@pytest.mark.parametrize("title", ["BÁC SỸ ĐỌC KẾT QUẢ", "Bác sỹ", "ThS.BS. Nguyễn Văn An", "NGƯỜI ĐỌC KẾT QUẢ"])
def test_signature_titles_as_forms_spell_them(title: str) -> None:
    lines = [*form(f"Họ tên: {NAME}"), "Hà Nội, ngày 18 tháng 07 năm 2025", title, "Bản sao ngày 25 tháng 07 năm 2025"]
    assert find_exam_date(lines) == EXAM


def test_a_city_date_line_above_the_signature() -> None:
    assert find_exam_date([*form(f"Họ tên: {NAME}"), "Ha Noi, 18/07/2025", "Bac si doc ket qua"]) == EXAM
    assert find_exam_date([*form(f"Họ tên: {NAME}"), "Hà Nội, ngày 18/07/2025", *SIGNATURE]) == EXAM


@pytest.mark.parametrize("label", FIELD_LABELS["exam_date"])
def test_an_exam_date_label_is_read(label: str) -> None:
    lines = [*form(f"Họ tên: {NAME}   {label}: 18/07/2025"), "Hà Nội, ngày 19 tháng 07 năm 2025", *SIGNATURE]
    assert find_exam_date(lines) == EXAM


def test_without_a_signature_the_last_date_line_is_the_exam_date() -> None:
    lines = [*form(f"Họ tên: {NAME}"), "Hà Nội, ngày 18 tháng 07 năm 2025"]
    lines.insert(3, "Hà Nội, ngày 01 tháng 01 năm 2020")
    assert find_exam_date(lines) == EXAM


def test_birthdays_and_print_dates_are_no_exam_date() -> None:
    assert find_exam_date(form("Ngày sinh: ngày 16 tháng 03 năm 1957", "Ngày in: 20/07/2025")) is None
    assert find_exam_date(form("Ngày sinh: 16/03/1957", *SIGNATURE)) is None
    assert find_exam_date(["Hà Nội, ngày 31 tháng 02 năm 2025", *SIGNATURE]) is None  # no such day
