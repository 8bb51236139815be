"""Reports of the kinds a hospital inbox really holds, read by real Tesseract (vie) against their synthetic truth:
turned pages, stamps, other forms, year-only birthdays, signature blocks, phone photos, two-page scans."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from spine_lib.core.layout import DataLayout
from spine_lib.ocr import DocumentExtractor, DocumentText
from spine_lib.synthetic.people import SyntheticPatient, ascii_name, make_patients
from spine_lib.synthetic.phenikaa import write_phenikaa
from spine_lib.synthetic.reports import (
    MULTIPAGE,
    PHOTO,
    REPORT_KINDS,
    ROTATED_PDF,
    ROTATED_PNG,
    SIGNATURE,
    STAMPED,
    FormStyle,
    ReportTruth,
    random_findings,
    render_report_pdf,
    report_lines,
    write_report,
)
from spine_lib.synthetic.spider import RenderSize

DPI = 150  # modest: every page here is read by real Tesseract
HEADER = (0.0, 0.5)
#: The letters a Vietnamese name is spelt with (and the space): anything else in a read name is a stray symbol.
NAME_CHARACTER = re.compile(r"[^\W\d_]| ")


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _texts(doc: DocumentText, page: int | None = None) -> list[str]:
    return [_norm(line.text) for line in doc.lines if page is None or line.page == page]


def _closest(texts: list[str], wanted: str) -> tuple[str, float]:
    """The read line nearest to ``wanted`` and its normalised Levenshtein distance."""
    best = min(texts, key=lambda text: Levenshtein.normalized_distance(text, wanted), default="")
    return best, Levenshtein.normalized_distance(best, wanted)


def _printed_birthday(truth: ReportTruth) -> str:
    """The birthday as the form prints it (the year, or the date in the form's format)."""
    line = truth.field_lines["birthday"]
    return line.split(f"{truth.labels['birthday']}: ", 1)[1].split(" ")[0]


@pytest.fixture(scope="module")
def extractor() -> DocumentExtractor:
    return DocumentExtractor(pdf_dpi=DPI)


@pytest.fixture(scope="module")
def patients() -> list[SyntheticPatient]:
    return make_patients(24, np.random.default_rng(2026))


def _write(kind: str, patient: SyntheticPatient, folder: Path, seed: int, **options: object) -> ReportTruth:
    rng = np.random.default_rng([seed, 16])
    dpi = 200 if kind == PHOTO else DPI  # a phone photo is already smaller than a scan
    return write_report(kind, patient, random_findings(rng), folder, rng, dpi=dpi, **options)  # type: ignore[arg-type]


def _assert_fields_read(doc: DocumentText, truth: ReportTruth, page: int = 0) -> None:
    """Every patient field line of the truth is read (within OCR's slips: 8 % of a line, 2 characters on a
    short one); the ID and the birthday exactly."""
    texts = _texts(doc, page)
    joined = " ".join(texts)
    for field, line in truth.field_lines.items():
        read, _ = _closest(texts, line)
        assert Levenshtein.distance(read, line) <= max(2, 0.08 * len(line)), (truth.kind, field, line, read)
    assert truth.patient_id in joined, (truth.kind, texts)
    assert _printed_birthday(truth) in joined, (truth.kind, texts)


# ------------------------------------------------------------------------------------------------ every kind
@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_each_kind_reads_its_patient_fields_and_turns(
    kind: str, patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path
) -> None:
    index = REPORT_KINDS.index(kind)
    truth = _write(kind, patients[index], tmp_path, seed=index)
    assert truth.kind == kind and bool(truth.traits) == (kind != "plain")  # every other kind has its trait
    doc = extractor.extract(tmp_path / truth.file, region=HEADER)
    assert doc.pages == truth.pages
    assert doc.rotations == dict(enumerate(truth.rotations)), [c.method for c in doc.corrections]
    _assert_fields_read(doc, truth)


# ------------------------------------------------------------------------------------------------ turned pages
def test_four_turns_of_one_report_read_the_same_lines(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path
) -> None:
    truth = _write(ROTATED_PNG, patients[10], tmp_path, seed=10, rotations=(0,), style=FormStyle(signature=True))
    with Image.open(tmp_path / truth.file) as upright:
        for rotation in (90, 180, 270):
            upright.rotate(rotation, expand=True).save(tmp_path / f"turned_{rotation}.png")  # PIL turns anticlockwise
    reads = {0: extractor.extract(tmp_path / truth.file, region=HEADER)}
    for rotation in (90, 180, 270):
        reads[rotation] = extractor.extract(tmp_path / f"turned_{rotation}.png", region=HEADER)
    for rotation, doc in reads.items():
        assert doc.rotations == {0: rotation}
        _assert_fields_read(doc, truth)
        assert len(doc.lines) == len(reads[0].lines), rotation
        distance = Levenshtein.normalized_distance("\n".join(_texts(doc)), "\n".join(_texts(reads[0])))
        assert distance <= 0.01, (rotation, _texts(doc))


@pytest.mark.parametrize("rotation", [90, 270])
def test_sideways_image_pdf_is_read(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path, rotation: int
) -> None:
    truth = _write(ROTATED_PDF, patients[11], tmp_path, seed=11, rotations=(rotation,))
    document = pdfium.PdfDocument(tmp_path / truth.file)
    width, height = document[0].get_size()
    document.close()
    assert width > height  # fed sideways: the scanner made a landscape page
    doc = extractor.extract(tmp_path / truth.file, region=HEADER)
    assert doc.source == "ocr" and doc.rotations == {0: rotation}
    _assert_fields_read(doc, truth)


def test_orientation_is_found_per_page_of_a_mixed_pdf(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path
) -> None:
    text_patient = patients[12]
    render_report_pdf(report_lines(text_patient, {}), tmp_path / "text.pdf", text_layer=True,
                      rng=np.random.default_rng(0))
    scans = [_write(ROTATED_PDF, patients[13 + i], tmp_path, seed=13 + i, rotations=(turn,))
             for i, turn in enumerate((180, 90, 0))]
    merged = pdfium.PdfDocument.new()
    for name in ["text.pdf", *(truth.file for truth in scans)]:
        source = pdfium.PdfDocument(tmp_path / name)
        merged.import_pages(source)
        source.close()
    merged.save(tmp_path / "mixed.pdf")
    merged.close()
    doc = extractor.extract(tmp_path / "mixed.pdf", region=HEADER)
    assert doc.source == "mixed" and doc.pages == 4
    assert [c.method for c in doc.corrections] == ["text_layer", "ink", "ink", "ink"]
    assert doc.rotations == {0: 0, 1: 180, 2: 90, 3: 0}
    assert text_patient.patient_id in " ".join(_texts(doc, 0))
    for page, truth in enumerate(scans, start=1):
        _assert_fields_read(doc, truth, page)


def test_two_page_scan_keeps_each_pages_turn(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path
) -> None:
    truth = _write(MULTIPAGE, patients[16], tmp_path, seed=16, rotations=(0, 180))  # page 2 fed the other way
    assert truth.pages == 2 and truth.file.endswith(".pdf")
    doc = extractor.extract(tmp_path / truth.file)
    assert doc.pages == 2 and doc.rotations == {0: 0, 1: 180}
    _assert_fields_read(doc, truth, page=0)
    date_line = truth.lines[1][next(i for i, line in enumerate(truth.lines[1]) if "năm" in line)]
    assert _closest(_texts(doc, 1), date_line)[1] <= 0.05  # the closing date is on page 2, read upright


# ------------------------------------------------------------------------------------------------ stamps, colour
@pytest.mark.parametrize(("seed", "over"), [(20, "name"), (21, "name"), (22, "birthday")])
def test_a_stamp_over_a_field_adds_no_stray_characters(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path, seed: int, over: str
) -> None:
    truth = _write(STAMPED, patients[seed], tmp_path, seed=seed, stamp_over=over, style=FormStyle())
    with Image.open(tmp_path / truth.file) as image:
        rgb = np.asarray(image.convert("RGB")).astype(np.int16)
    red = (rgb[..., 0] - rgb[..., 1] > 60).mean()
    assert image.mode == "RGB" and red > 0.001  # a colour scan with a red stamp on it
    doc = extractor.extract(tmp_path / truth.file, region=HEADER)
    assert doc.corrections[0].coloured_ink > 0.001
    texts = _texts(doc)
    name_line, _ = _closest(texts, truth.field_lines["name"])
    name = name_line.split(":", 1)[1].strip()
    assert all(NAME_CHARACTER.fullmatch(ch) for ch in name), name_line  # letters and spaces only
    assert ascii_name(name) == ascii_name(truth.full_name), name_line
    assert Levenshtein.distance(name, truth.name_printed) <= 1, name_line  # at most one accent misread
    assert _norm(truth.field_lines["birthday"]) in texts, texts  # under the stamp or not, exactly
    assert _norm(truth.field_lines["id"]) in texts, texts


def test_colour_removal_keeps_the_black_text_of_a_stamped_scan(
    patients: list[SyntheticPatient], tmp_path: Path
) -> None:
    from spine_lib.ocr.ink import remove_coloured_ink

    truth = _write(STAMPED, patients[23], tmp_path, seed=23, stamp_over="name", style=FormStyle())
    with Image.open(tmp_path / truth.file) as image:
        rgb = np.asarray(image.convert("RGB")).astype(np.int16)
        cleaned, _ = remove_coloured_ink(image)
    gray = np.asarray(cleaned).astype(np.int16)
    stamp = (rgb[..., 0] - rgb[..., 1] > 60) & (rgb.max(axis=2) > 150)  # red ink on paper
    black = rgb.max(axis=2) < 100  # print, dark in every channel
    assert stamp.sum() > 2000 and black.sum() > 10_000
    assert np.percentile(gray[stamp], 10) > 200  # the stamp became paper
    assert np.abs(gray[black] - rgb[black].mean(axis=1)).mean() < 6  # print kept its darkness


# ------------------------------------------------------------------------------------------------ forms, photos
def test_signature_block_comes_after_the_date_line(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path
) -> None:
    truth = _write(SIGNATURE, patients[8], tmp_path, seed=8)
    page = truth.lines[0]
    date_index = next(i for i, line in enumerate(page) if "tháng" in line or re.search(r"ngày \d\d/", line))
    assert "BÁC SĨ ĐỌC KẾT QUẢ" in page[date_index + 1] and page[-1].split()[0] in {"BS.", "ThS.", "TS."}
    doc = extractor.extract(tmp_path / truth.file)
    texts = _texts(doc)
    read_date, distance = _closest(texts, page[date_index])
    assert distance <= 0.05, (page[date_index], texts[-6:])
    read_doctor, doctor_distance = _closest(texts, page[-1])
    assert doctor_distance <= 0.15, (page[-1], texts[-6:])
    assert texts.index(read_date) < texts.index(read_doctor)  # the doctor's name, not the date, ends the page


def test_another_phone_photo_still_reads(
    patients: list[SyntheticPatient], extractor: DocumentExtractor, tmp_path: Path
) -> None:
    truth = _write(PHOTO, patients[4], tmp_path, seed=31)
    assert truth.file.endswith(".jpg") and truth.traits[:2] == ("photo", "colour")
    doc = extractor.extract(tmp_path / truth.file, region=HEADER)
    assert doc.rotations == {0: 0}
    _assert_fields_read(doc, truth)


# ------------------------------------------------------------------------------------------------ the export
def test_phenikaa_export_writes_the_report_kinds_in_turn(tmp_path: Path) -> None:
    layout = DataLayout(root=tmp_path / "data")
    kinds = (ROTATED_PNG, STAMPED, MULTIPAGE)
    truth = write_phenikaa(layout, 6, seed=5, size=RenderSize(rows=32, columns=32, slices=3), report_kinds=kinds)
    written = [patient["report_truth"] for patient in truth["patients"]]
    assert [report["kind"] for report in written] == [*kinds, *kinds]
    for patient, report in zip(truth["patients"], written, strict=True):
        assert patient["report_format"] == report["kind"]
        assert (layout.phenikaa_reports / report["file"]).is_file()
        assert report["patient_id"] == patient["patient_id"] and report["birth_year"] == int(patient["birthday"][:4])
    assert len({report["file"] for report in written}) == 6
    assert sorted(p.name for p in layout.phenikaa_reports.iterdir()) == sorted(r["file"] for r in written)
