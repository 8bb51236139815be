"""Synthetic Phenikaa patients and their reports, read back the way the pipeline reads them (Tesseract, pdfium)."""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytesseract
import pytest
from PIL import Image, ImageFont
from rapidfuzz.distance import Levenshtein

from spine_lib.errors import ConfigError, LabelSchemaError
from spine_lib.levels import LEVELS
from spine_lib.synthetic import reports
from spine_lib.synthetic.people import SyntheticPatient, ascii_name, lookalike_pairs, make_patients
from spine_lib.synthetic.reports import MAX_LINE_CHARS, render_report_pdf, render_report_png, report_lines

SEED = 20250718
PATIENT = SyntheticPatient(
    patient_id="250010139",
    full_name="Đặng Thị Ánh Tuyết",  # (Tesseract 5.3 reads "ĐẶNG THỊ THU HƯỜNG" as "... THỦ ..." on a clean page)
    birthday=date(1968, 3, 5),
    sex="Nữ",
    exam_date=date(2025, 7, 18),
)
NAME_LINE = "Họ tên người bệnh: ĐẶNG THỊ ÁNH TUYẾT"  # the name upper-cased with its diacritics, written by hand
ID_LINE = "Số phiếu: 250010139"
FINDINGS: dict[str, dict[str, int]] = {
    "L4/L5": {"pfirrmann": 4, "modic": 1, "herniation": 1, "narrowing": 1},
    "L5/S1": {"pfirrmann": 3, "bulging": 1},
    "L3/L4": {"pfirrmann": 2},
}


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _ocr_header_lines(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tesseract (vie) on the top third of the page: the header fields, one normalised line each."""
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")  # OpenMP threads make Tesseract slower on small crops
    with Image.open(path) as image:
        width, height = image.size
        text = pytesseract.image_to_string(image.crop((0, 0, width, height // 3)), lang="vie")
    return [_norm(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------ patients
def test_patient_ids_are_unique_nine_digits_starting_with_exam_year() -> None:
    patients = make_patients(60, np.random.default_rng(SEED))
    ids = [p.patient_id for p in patients]
    assert len(set(ids)) == 60
    for p in patients:
        assert len(p.patient_id) == 9 and p.patient_id.isdigit()
        assert p.patient_id[:2] == f"{p.exam_date.year % 100:02d}"


def test_make_patients_is_deterministic_for_a_seed() -> None:
    first = make_patients(20, np.random.default_rng(SEED))
    assert make_patients(20, np.random.default_rng(SEED)) == first
    assert make_patients(20, np.random.default_rng(SEED + 1)) != first


def test_patient_fields_are_in_range_and_names_match_sex() -> None:
    for p in make_patients(60, np.random.default_rng(SEED)):
        assert date(1940, 1, 1) <= p.birthday <= date(2000, 12, 31)
        assert date(2024, 1, 1) <= p.exam_date <= date(2025, 12, 31)
        assert p.sex in {"Nam", "Nữ"}
        words = p.full_name.split()
        assert 2 <= len(words) <= 4
        assert unicodedata.normalize("NFC", p.full_name) == p.full_name
        middles = words[1:-1]
        if "Văn" in middles:
            assert p.sex == "Nam", p.full_name
        if "Thị" in middles:
            assert p.sex == "Nữ", p.full_name


def test_eight_patients_hold_every_lookalike_kind_as_the_data_says() -> None:
    patients = make_patients(8, np.random.default_rng(SEED))
    by_id = {p.patient_id: p for p in patients}
    pairs = lookalike_pairs(patients)
    assert {kind for _, _, kind in pairs} == {"same_given_name", "one_letter_apart", "same_name_other_birthday"}
    for id_a, id_b, kind in pairs:
        a, b = by_id[id_a], by_id[id_b]
        if kind == "same_name_other_birthday":
            assert a.full_name == b.full_name and a.birthday != b.birthday
        elif kind == "one_letter_apart":
            assert Levenshtein.distance(ascii_name(a.full_name), ascii_name(b.full_name)) == 1
        else:
            assert a.full_name.split()[-1] == b.full_name.split()[-1]
            assert a.full_name.split()[0] != b.full_name.split()[0]


@pytest.mark.parametrize("seed", range(12))
def test_six_patients_always_hold_every_lookalike_kind(seed: int) -> None:
    kinds = {kind for _, _, kind in lookalike_pairs(make_patients(6, np.random.default_rng(seed)))}
    assert kinds == {"same_given_name", "one_letter_apart", "same_name_other_birthday"}


def test_lookalike_pairs_of_a_hand_made_list() -> None:
    def person(pid: str, name: str, born: date) -> SyntheticPatient:
        return SyntheticPatient(pid, name, born, "Nam" if "Văn" in name else "Nữ", date(2025, 1, 2))

    patients = [
        person("250000001", "Trần Thị Lan", date(1970, 1, 1)),
        person("250000002", "Trần Thị Loan", date(1971, 1, 1)),
        person("250000003", "Lê Văn Sơn", date(1960, 5, 5)),
        person("250000004", "Phạm Văn Sơn", date(1962, 5, 5)),
        person("250000005", "Nguyễn Văn Hùng", date(1950, 2, 2)),
        person("250000006", "Nguyễn Văn Hùng", date(1951, 2, 2)),
        person("250000007", "Bùi Thị Mai", date(1980, 3, 3)),
        person("250000008", "Bùi Thị Mai", date(1980, 3, 3)),  # same person twice: not a look-alike
    ]
    assert lookalike_pairs(patients) == [
        ("250000001", "250000002", "one_letter_apart"),
        ("250000003", "250000004", "same_given_name"),
        ("250000005", "250000006", "same_name_other_birthday"),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Nguyễn Văn Sơn", "NGUYEN_VAN_SON"),
        ("Đặng Thị Ánh", "DANG_THI_ANH"),
        ("Trần  Thị Thu Hường", "TRAN_THI_THU_HUONG"),
        (unicodedata.normalize("NFD", "Đỗ Quỳnh Hương"), "DO_QUYNH_HUONG"),
        ("Lê Văn Tám", "LE_VAN_TAM"),
    ],
)
def test_ascii_name(name: str, expected: str) -> None:
    assert ascii_name(name) == expected


def test_make_patients_rejects_a_negative_count() -> None:
    with pytest.raises(ConfigError):
        make_patients(-1, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------ report text
def test_report_lines_hold_the_fields_in_order() -> None:
    lines = report_lines(PATIENT, FINDINGS)
    assert lines[:3] == [
        "BỆNH VIỆN ĐẠI HỌC PHENIKAA",
        "KHOA CHẨN ĐOÁN HÌNH ẢNH",
        "KẾT QUẢ CHỤP CỘNG HƯỞNG TỪ CỘT SỐNG THẮT LƯNG",
    ]
    expected_in_order = [NAME_LINE, "Ngày sinh: 05/03/1968", "Giới tính: Nữ", ID_LINE, "MÔ TẢ:", "KẾT LUẬN:"]
    positions = [lines.index(line) for line in expected_in_order]
    assert positions == sorted(positions)
    chi_dinh = next(i for i, line in enumerate(lines) if line.startswith("Chỉ định: "))
    ky_thuat = next(i for i, line in enumerate(lines) if line.startswith("Kỹ thuật: "))
    assert lines.index(ID_LINE) < chi_dinh < ky_thuat < lines.index("MÔ TẢ:")
    assert lines[-1] == "Hà Nội, ngày 18 tháng 07 năm 2025"


def test_report_findings_follow_the_grades() -> None:
    lines = report_lines(PATIENT, FINDINGS)
    body = " ".join(lines[lines.index("MÔ TẢ:") + 1 : lines.index("KẾT LUẬN:")])
    conclusion = " ".join(lines[lines.index("KẾT LUẬN:") + 1 : -1])
    assert "Đĩa đệm L4/L5: thoát vị ra sau" in body
    assert "Thoái hóa đĩa đệm L4/L5 (Pfirrmann IV), hẹp khoang gian đốt." in body
    assert "Modic type 1" in body and "L4/L5" in body
    assert "Đĩa đệm L5/S1: phình lồi" in body and "(Pfirrmann III)" in body
    assert "Các đĩa đệm còn lại chưa thấy bất thường." in body
    for level in ("L1/L2", "L2/L3", "L3/L4"):  # normal (L3/L4 is Pfirrmann II) or absent
        assert level not in body and level not in conclusion
    assert "Thoát vị đĩa đệm L4/L5." in conclusion
    assert "Modic type 2" not in body


@pytest.mark.parametrize(
    ("grades", "expected"),
    [
        ({"herniation": 1}, "thoát vị"),
        ({"bulging": 1}, "phình lồi"),
        ({"narrowing": 1}, "Hẹp khoang gian đốt L2/L3"),
        ({"modic": 3}, "Modic type 3"),
        ({"pfirrmann": 5}, "(Pfirrmann V)"),
        ({"spondylolisthesis": 1}, "Trượt thân đốt sống L2 ra trước so với L3"),
        ({"up_endplate": 1}, "bờ dưới thân L2"),
        ({"low_endplate": 1}, "bờ trên thân L3"),
    ],
)
def test_each_abnormal_grade_is_described(grades: dict[str, int], expected: str) -> None:
    lines = report_lines(PATIENT, {"L2/L3": grades})
    body = " ".join(lines[lines.index("MÔ TẢ:") + 1 : lines.index("KẾT LUẬN:")])
    conclusion = " ".join(lines[lines.index("KẾT LUẬN:") + 1 : -1])
    assert expected in body
    assert "L2/L3" in conclusion


def test_herniation_and_bulging_of_one_disc_are_both_described() -> None:
    lines = report_lines(PATIENT, {"L5/S1": {"herniation": 1, "bulging": 1}})
    body = " ".join(lines[lines.index("MÔ TẢ:") + 1 : lines.index("KẾT LUẬN:")])
    assert "phình lồi" in body and "thoát vị" in body


def test_report_of_normal_discs_says_so() -> None:
    lines = report_lines(PATIENT, {level: {"pfirrmann": 1} for level in LEVELS})
    text = " ".join(lines)
    assert "chưa thấy bất thường" in text
    assert not any(level in text for level in LEVELS)


def test_report_lines_fit_the_page_width() -> None:
    everything = {
        "pfirrmann": 5, "modic": 3, "herniation": 1, "narrowing": 1,
        "spondylolisthesis": 1, "up_endplate": 1, "low_endplate": 1,
    }  # fmt: skip
    lines = report_lines(PATIENT, dict.fromkeys(LEVELS, everything))
    assert max(len(line) for line in lines) <= MAX_LINE_CHARS
    font = ImageFont.truetype(str(reports.find_font()), size=32)
    text_width_px = 1654 - 2 * round(20 / 25.4 * 200)  # A4 at 200 dpi less 20 mm margins
    assert max(font.getlength(line) for line in lines) <= text_width_px


@pytest.mark.parametrize(
    "findings",
    [{"L4/L5": {"pfirrmann": 6}}, {"L4/L5": {"modic": 4}}, {"L6/L7": {"pfirrmann": 2}}, {"L4/L5": {"colour": 1}}],
)
def test_report_lines_reject_invalid_findings(findings: dict[str, dict[str, int]]) -> None:
    with pytest.raises(LabelSchemaError):
        report_lines(PATIENT, findings)


# ------------------------------------------------------------------------------------------------ PNG
@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("png")
    lines = report_lines(PATIENT, FINDINGS)
    return {
        "clean": render_report_png(lines, folder / "clean.png", scanned=False, rng=np.random.default_rng(SEED)),
        "scanned": render_report_png(lines, folder / "scanned.png", scanned=True, rng=np.random.default_rng(SEED)),
    }


def test_png_is_an_a4_page_at_200_dpi_written_without_leftovers(pngs: dict[str, Path]) -> None:
    for path in pngs.values():
        with Image.open(path) as image:
            assert image.size == (1654, 2339)
    assert sorted(p.name for p in pngs["clean"].parent.iterdir()) == ["clean.png", "scanned.png"]
    with Image.open(pngs["clean"]) as clean, Image.open(pngs["scanned"]) as scanned:
        difference = np.abs(np.asarray(clean, dtype=np.int16) - np.asarray(scanned.convert("L"), dtype=np.int16))
    assert difference.mean() > 5  # rotated, tinted and noisy: not the clean page


def test_clean_png_ocr_recovers_name_and_id(pngs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _ocr_header_lines(pngs["clean"], monkeypatch)
    assert NAME_LINE in lines
    assert ID_LINE in lines


def test_scanned_png_ocr_recovers_name_and_id(pngs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _ocr_header_lines(pngs["scanned"], monkeypatch)
    name_line = min(lines, key=lambda line: Levenshtein.normalized_distance(line, NAME_LINE))
    assert Levenshtein.normalized_distance(name_line, NAME_LINE) <= 0.05, name_line
    assert any(PATIENT.patient_id in line.replace(" ", "") for line in lines), lines


def test_scanned_png_bytes_depend_only_on_the_seed(tmp_path: Path) -> None:
    lines = report_lines(PATIENT, FINDINGS)

    def render(name: str, seed: int) -> bytes:
        return render_report_png(
            lines, tmp_path / name, scanned=True, rng=np.random.default_rng(seed), dpi=100
        ).read_bytes()

    assert render("a.png", SEED) == render("b.png", SEED)
    assert render("c.png", SEED + 1) != render("a.png", SEED)


# ------------------------------------------------------------------------------------------------ PDF
def test_pdf_text_layer_holds_name_id_and_birthday(tmp_path: Path) -> None:
    path = render_report_pdf(
        report_lines(PATIENT, FINDINGS), tmp_path / "r.pdf", text_layer=True, rng=np.random.default_rng(SEED)
    )
    document = pdfium.PdfDocument(path)
    assert len(document) == 1
    text = _norm(document[0].get_textpage().get_text_range())
    assert "ĐẶNG THỊ ÁNH TUYẾT" in text
    assert ID_LINE in text
    assert "05/03/1968" in text


def test_image_only_pdf_has_no_text_and_renders(tmp_path: Path) -> None:
    path = render_report_pdf(
        report_lines(PATIENT, FINDINGS), tmp_path / "r.pdf", text_layer=False, rng=np.random.default_rng(SEED)
    )
    page = pdfium.PdfDocument(path)[0]
    assert page.get_textpage().get_text_range().strip() == ""
    image = np.asarray(page.render(scale=2).to_pil().convert("L"))
    expected = np.array([297, 210]) / 25.4 * 144  # A4 at 144 dpi (scale 2); pdfium rounds the page up
    assert np.abs(np.array(image.shape) - expected).max() <= 1
    assert image.min() < 100 < np.median(image)  # dark text on light paper


@pytest.mark.parametrize("text_layer", [True, False])
def test_pdf_bytes_depend_only_on_the_seed(tmp_path: Path, text_layer: bool) -> None:
    lines = report_lines(PATIENT, FINDINGS)

    def render(name: str) -> bytes:
        path = render_report_pdf(lines, tmp_path / name, text_layer=text_layer, rng=np.random.default_rng(SEED))
        return path.read_bytes()

    first = render("a.pdf")
    assert first == render("b.pdf")
    assert b"/CreationDate (D:20250718" in first  # fixed from the exam date, not the clock


# ------------------------------------------------------------------------------------------------ fonts
def test_missing_font_raises_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = (tmp_path / "DejaVuSans.ttf", tmp_path / "NotoSans-Regular.ttf")
    monkeypatch.setattr(reports, "FONT_CANDIDATES", missing)
    with pytest.raises(ConfigError, match="fonts-dejavu-core") as caught:
        render_report_png(["x"], tmp_path / "r.png", scanned=False, rng=np.random.default_rng(0))
    assert str(missing[0]) in str(caught.value)
    assert not (tmp_path / "r.png").exists()


def test_font_without_vietnamese_glyphs_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    liberation = Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")
    if not liberation.is_file():
        pytest.skip("fonts-liberation not installed")
    monkeypatch.setattr(reports, "FONT_CANDIDATES", (liberation,))
    with pytest.raises(ConfigError):
        reports.find_font()


# ------------------------------------------------------------------------------------------------ report kinds
def test_the_usual_form_prints_exactly_the_report_lines() -> None:
    rows = reports.form_rows(PATIENT, FINDINGS, reports.FormStyle())
    assert [row.text for row in rows] == report_lines(PATIENT, FINDINGS)
    fields = {field: row.text for row in rows for field in row.fields}
    assert fields == {"name": NAME_LINE, "birthday": "Ngày sinh: 05/03/1968", "sex": "Giới tính: Nữ", "id": ID_LINE}


@pytest.mark.parametrize("arrangement", reports.ARRANGEMENTS[1:])
def test_other_forms_put_several_fields_on_a_line(arrangement: str) -> None:
    style = reports.FormStyle(arrangement=arrangement, name_label="Tên bệnh nhân", id_label="Mã phiếu",
                              year_only=True)
    rows = reports.form_rows(PATIENT, FINDINGS, style)
    field_rows = [row for row in rows if row.fields]
    where = {field: i for i, row in enumerate(field_rows) for field in row.fields}
    assert set(where) == {"name", "id", "birthday", "sex"}
    assert len(field_rows) < 4  # fewer rows than fields
    name_row = field_rows[where["name"]].text
    assert name_row.startswith("Tên bệnh nhân: ĐẶNG THỊ ÁNH TUYẾT")
    assert "Năm sinh: 1968" in field_rows[where["birthday"]].text
    assert "Ngày sinh" not in " ".join(row.text for row in rows)
    assert f"Mã phiếu: {PATIENT.patient_id}" in field_rows[where["id"]].text
    if arrangement == reports.ID_RIGHT_OF_NAME:
        assert where["id"] == where["name"] and name_row.index("Tên") < name_row.index("Mã phiếu")
    if arrangement == reports.BIRTHDAY_ABOVE_NAME:
        assert where["birthday"] < where["name"]
    if arrangement == reports.THREE_PER_LINE:
        assert where["name"] == where["birthday"] == where["sex"]


def test_signature_block_follows_the_date_line() -> None:
    style = reports.FormStyle(signature=True, date_line="plain")
    rows = reports.form_rows(PATIENT, FINDINGS, style, np.random.default_rng(1))
    texts = [row.text for row in rows]
    date_row = texts.index("Ngày 18 tháng 7 năm 2025")
    assert texts[date_row + 1].endswith(reports.READER_TITLE)
    assert texts[-1].split()[-1] in {name.split()[-1] for name in reports.DOCTORS}  # the doctor closes the page
    assert date_row < len(texts) - 3


@pytest.fixture(scope="module")
def report_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[reports.ReportTruth]]:
    folder = tmp_path_factory.mktemp("kinds")
    return folder, reports.write_report_set(folder, 2, seed=3, dpi=60)


def test_report_set_writes_every_kind_with_its_truth(report_set: tuple[Path, list[reports.ReportTruth]]) -> None:
    folder, truths = report_set
    assert [t.kind for t in truths] == [*reports.REPORT_KINDS, *reports.REPORT_KINDS]
    assert sorted(p.name for p in folder.iterdir()) == sorted(t.file for t in truths)  # one file each, no leftovers
    a4 = (round(210 / 25.4 * 60), round(297 / 25.4 * 60))
    for t in truths:
        path = folder / t.file
        assert len(t.rotations) == t.pages == len(t.lines)
        assert t.traits[:1] == (() if t.kind == reports.PLAIN else t.traits[:1])
        if path.suffix == ".png":
            with Image.open(path) as image:
                sideways = t.rotations[0] in (90, 270)
                assert image.size == (a4[::-1] if sideways else a4), t
                assert image.mode == ("RGB" if reports.COLOUR in t.traits else "L"), t
        elif path.suffix == ".jpg":
            with Image.open(path) as image:
                assert image.getexif().get(0x0112, 1) == t.exif_orientation
                assert t.kind == reports.PHOTO and image.mode == "RGB"
        else:
            document = pdfium.PdfDocument(path)
            assert len(document) == t.pages
            for page, rotation in zip(document, t.rotations, strict=True):
                width, height = page.get_size()
                assert (width > height) == (rotation in (90, 270))
            document.close()
        printed = " ".join(t.lines[0])
        assert t.name_printed in printed and t.patient_id in printed
        assert (t.birthday is None) == (reports.YEAR_ONLY in t.traits)
        year_line = f"{reports.YEAR_LABEL}: {t.birth_year}"
        assert (year_line in printed) == (t.birthday is None)


def test_report_kinds_have_what_they_are_named_for(report_set: tuple[Path, list[reports.ReportTruth]]) -> None:
    _, truths = report_set
    by_kind: dict[str, list[reports.ReportTruth]] = {}
    for t in truths:
        by_kind.setdefault(t.kind, []).append(t)
    for t in by_kind[reports.ROTATED_PNG] + by_kind[reports.ROTATED_PDF]:
        assert t.rotations[0] in (90, 180, 270) and reports.ROTATED in t.traits
    for t in by_kind[reports.STAMPED]:
        assert t.stamp_over in ("name", "birthday") and t.file.endswith(".png")
    for t in by_kind[reports.LAYOUT]:
        assert t.arrangement != reports.ONE_PER_LINE or t.labels["name"] != "Họ tên người bệnh"
    for t in by_kind[reports.YEAR_ONLY]:
        assert t.birthday is None and t.labels["birthday"] == "Năm sinh"
    for t in by_kind[reports.SIGNATURE]:
        assert any(reports.READER_TITLE in line for line in t.lines[-1])
    for t in by_kind[reports.MULTIPAGE]:
        assert t.pages == 2 and reports.CONCLUSION_HEADER in t.lines[1]
    for t in by_kind[reports.PLAIN]:
        assert t.traits == () and t.rotations == (0,)


def test_report_set_depends_only_on_the_seed(tmp_path: Path) -> None:
    kinds = (reports.STAMPED, reports.MULTIPAGE)
    first = reports.write_report_set(tmp_path / "a", 1, seed=9, kinds=kinds, dpi=50)
    again = reports.write_report_set(tmp_path / "b", 1, seed=9, kinds=kinds, dpi=50)
    assert first == again
    for t in first:
        assert (tmp_path / "a" / t.file).read_bytes() == (tmp_path / "b" / t.file).read_bytes()


def test_write_report_rejects_what_it_cannot_write(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="unknown kind"):
        reports.write_report("fax", PATIENT, FINDINGS, tmp_path, rng)
    with pytest.raises(ConfigError, match="one per page"):
        reports.write_report(reports.MULTIPAGE, PATIENT, FINDINGS, tmp_path, rng, rotations=(0,))
    with pytest.raises(ConfigError, match="one per page"):
        reports.write_report(reports.ROTATED_PNG, PATIENT, FINDINGS, tmp_path, rng, rotations=(45,))
    with pytest.raises(ConfigError, match="colour page"):
        reports.write_report(reports.PLAIN, PATIENT, FINDINGS, tmp_path, rng, stamp_over="name")
    with pytest.raises(ConfigError, match="unknown kinds"):
        reports.write_report_set(tmp_path, 1, seed=0, kinds=("fax",))
    assert list(tmp_path.iterdir()) == []
