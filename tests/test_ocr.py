"""spine_lib.ocr on synthetic reports of known text: real Tesseract (vie), pdfium text layers, error paths."""

from __future__ import annotations

import re
import socket
import string
import sys
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytesseract
import pytest
import yaml
from fpdf import FPDF
from PIL import Image
from rapidfuzz.distance import Levenshtein

from spine_lib.errors import ConfigError, InputPathError, UnsupportedFormatError
from spine_lib.ocr import (
    DocumentExtractor,
    DocumentReadError,
    DocumentText,
    OCREngine,
    OCRUnavailableError,
    PaddleVietOCREngine,
    TesseractEngine,
    TextLine,
    crop_polygon,
    reading_order,
)
from spine_lib.ocr import tesseract as tesseract_module
from spine_lib.ocr.vietocr_paddle import DEFAULT_CONFIG, order_quadrilateral
from spine_lib.synthetic.people import SyntheticPatient, make_patients
from spine_lib.synthetic.reports import render_report_pdf, render_report_png, report_lines

HEADER = (0.0, 0.45)
FINDINGS: dict[str, dict[str, int]] = {
    "L4/L5": {"pfirrmann": 4, "modic": 1, "herniation": 1, "narrowing": 1},
    "L5/S1": {"pfirrmann": 3, "bulging": 1},
}


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _texts(doc: DocumentText) -> list[str]:
    return [_norm(line.text) for line in doc.lines]


class ExplodingEngine:
    """An engine that must not be used."""

    name = "exploding"

    def recognize(self, image: Image.Image) -> list[TextLine]:
        raise AssertionError("the OCR engine was called")


class FixedEngine:
    """Returns one line whose box is the whole image it was given; records the image sizes."""

    name = "fixed"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def recognize(self, image: Image.Image) -> list[TextLine]:
        self.sizes.append(image.size)
        return [TextLine("x", (0, 0, image.width, image.height), 0.5)]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def patient() -> SyntheticPatient:
    return make_patients(3, np.random.default_rng(0))[2]  # Phan Thị Thùy Hạnh: diacritics on 3 of 4 words


@pytest.fixture(scope="module")
def truth(patient: SyntheticPatient) -> dict[str, str]:
    return {
        "name": f"Họ tên người bệnh: {patient.full_name.upper()}",
        "id": f"Số phiếu: {patient.patient_id}",
        "birthday": f"Ngày sinh: {patient.birthday:%d/%m/%Y}",
    }


@pytest.fixture(scope="module")
def lines(patient: SyntheticPatient) -> list[str]:
    return report_lines(patient, FINDINGS)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory, lines: list[str]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    rng = np.random.default_rng(7)
    return {
        "clean": render_report_png(lines, folder / "clean.png", scanned=False, rng=rng),
        "scanned": render_report_png(lines, folder / "scanned.png", scanned=True, rng=rng),
        "text_pdf": render_report_pdf(lines, folder / "text.pdf", text_layer=True, rng=rng),
        "image_pdf": render_report_pdf(lines, folder / "image.pdf", text_layer=False, rng=rng),
    }


@pytest.fixture(scope="module")
def extractor() -> DocumentExtractor:
    return DocumentExtractor()


@pytest.fixture(scope="module")
def clean_header(extractor: DocumentExtractor, docs: dict[str, Path]) -> DocumentText:
    return extractor.extract(docs["clean"], region=HEADER)


# ------------------------------------------------------------------------------------------------ images
def test_clean_png_header_holds_the_patient_fields(clean_header: DocumentText, truth: dict[str, str]) -> None:
    texts = _texts(clean_header)
    for field in ("name", "id", "birthday"):
        assert truth[field] in texts, (field, texts)
    assert clean_header.source == "ocr"
    assert clean_header.pages == 1
    assert clean_header.seconds > 0


def test_clean_png_header_boxes_and_confidences(
    clean_header: DocumentText, docs: dict[str, Path], lines: list[str]
) -> None:
    with Image.open(docs["clean"]) as image:
        width, height = image.size
    assert clean_header.lines
    for line in clean_header.lines:
        x0, y0, x1, y1 = line.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= HEADER[1] * height, line
        assert 0.0 < line.confidence <= 1.0, line
        assert line.page == 0
    tops = [line.box[1] for line in clean_header.lines]
    assert tops == sorted(tops)  # one column: reading order is top to bottom
    assert _norm(lines[-1]) not in _texts(clean_header)  # the date line at the bottom was not OCR'd


def test_scanned_png_header_recovers_the_fields(
    extractor: DocumentExtractor, docs: dict[str, Path], truth: dict[str, str]
) -> None:
    texts = _texts(extractor.extract(docs["scanned"], region=HEADER))
    name_line = min(texts, key=lambda text: Levenshtein.normalized_distance(text, truth["name"]))
    assert Levenshtein.normalized_distance(name_line, truth["name"]) <= 0.05, name_line
    assert truth["id"] in texts, texts
    assert truth["birthday"] in texts, texts


def test_blank_image_has_no_lines(extractor: DocumentExtractor, tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("L", (800, 1100), 255).save(path)
    doc = extractor.extract(path)
    assert doc.lines == [] and doc.source == "ocr" and doc.pages == 1


def test_region_boxes_are_in_page_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "page.tif"
    Image.new("L", (100, 200), 255).save(path)
    engine = FixedEngine()
    doc = DocumentExtractor(engine=engine, enlarge_small_pages=False).extract(path, region=(0.5, 0.75))
    assert engine.sizes == [(100, 50)]
    assert [line.box for line in doc.lines] == [(0, 100, 100, 150)]


def test_a_low_resolution_page_is_read_enlarged_and_its_boxes_are_on_the_page(tmp_path: Path) -> None:
    path = tmp_path / "fax.png"
    Image.new("L", (578, 818), 255).save(path)  # A4 at 70 dpi
    engine = FixedEngine()
    doc = DocumentExtractor(engine=engine).extract(path, region=(0.5, 0.75))
    assert engine.sizes == [(1653, 584)]  # enlarged to 1653 x 2339, then the band (rows 1170-1754)
    assert doc.corrections[0].scale == pytest.approx(2339 / 818)
    assert [line.box for line in doc.lines] == [(0, 409, 578, 613)]  # on the 578 x 818 page
    engine = FixedEngine()
    DocumentExtractor(engine=engine).extract(tmp_path / "fax.png")
    assert engine.sizes == [(1653, 2339)]


def test_transparent_image_is_read_on_white_paper(tmp_path: Path) -> None:
    path = tmp_path / "transparent.png"
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(path)  # fully transparent black: blank paper
    seen: list[Image.Image] = []

    class Recorder(FixedEngine):
        def recognize(self, image: Image.Image) -> list[TextLine]:
            seen.append(image)
            return []

    DocumentExtractor(engine=Recorder()).extract(path)
    assert np.asarray(seen[0].convert("L")).min() == 255


@pytest.mark.parametrize("region", [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.2)])
def test_invalid_region_is_rejected(tmp_path: Path, region: tuple[float, float]) -> None:
    path = tmp_path / "page.png"
    Image.new("L", (10, 10), 255).save(path)
    with pytest.raises(ConfigError):
        DocumentExtractor(engine=ExplodingEngine()).extract(path, region=region)


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_png_is_a_document_read_error(tmp_path: Path, docs: dict[str, Path], kind: str) -> None:
    path = tmp_path / f"{kind}.png"
    if kind == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(2000))
    else:
        data = docs["clean"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DocumentReadError, match="cannot read image") as caught:
        DocumentExtractor(engine=ExplodingEngine()).extract(path)
    assert str(path) in str(caught.value)


# ------------------------------------------------------------------------------------------------ PDFs
def test_text_layer_pdf_is_read_exactly_without_ocr(docs: dict[str, Path], lines: list[str]) -> None:
    doc = DocumentExtractor(engine=ExplodingEngine()).extract(docs["text_pdf"], region=HEADER)
    assert doc.source == "text_layer"
    assert [line.text for line in doc.lines] == lines  # the region does not apply to a text layer
    assert all(line.confidence == 1.0 and line.box == (0, 0, 0, 0) and line.page == 0 for line in doc.lines)


def test_default_engine_is_created_only_when_ocr_is_needed(
    docs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_tesseract(*args: object, **kwargs: object) -> None:
        raise AssertionError("TesseractEngine was created")

    monkeypatch.setattr(tesseract_module, "TesseractEngine", no_tesseract)
    assert DocumentExtractor().extract(docs["text_pdf"]).source == "text_layer"


def test_image_only_pdf_is_ocrd(
    extractor: DocumentExtractor, docs: dict[str, Path], truth: dict[str, str]
) -> None:
    doc = extractor.extract(docs["image_pdf"], region=HEADER)
    assert doc.source == "ocr" and doc.pages == 1
    texts = _texts(doc)
    name_line = min(texts, key=lambda text: Levenshtein.normalized_distance(text, truth["name"]))
    assert Levenshtein.normalized_distance(name_line, truth["name"]) <= 0.05, name_line
    assert truth["id"] in texts, texts
    assert truth["birthday"] in texts, texts
    height = 297 / 25.4 * 200  # A4 rendered at pdf_dpi=200
    assert all(line.box[3] <= HEADER[1] * height + 1 for line in doc.lines)


def test_mixed_pdf_pages_and_first_page_only(docs: dict[str, Path], tmp_path: Path, lines: list[str]) -> None:
    merged = pdfium.PdfDocument.new()
    for name in ("text_pdf", "image_pdf"):
        source = pdfium.PdfDocument(docs[name])
        merged.import_pages(source)
        source.close()
    path = tmp_path / "mixed.pdf"
    merged.save(path)
    merged.close()
    engine = FixedEngine()
    doc = DocumentExtractor(engine=engine).extract(path)
    assert doc.source == "mixed" and doc.pages == 2
    assert [line.text for line in doc.lines if line.page == 0] == lines
    assert [(line.text, line.page) for line in doc.lines if line.page == 1] == [("x", 1)]
    assert engine.sizes == [(1654, 2339)]  # A4 at 200 dpi
    first = DocumentExtractor(engine=ExplodingEngine()).extract(path, first_page_only=True)
    assert first.source == "text_layer" and first.pages == 1


def test_corrupt_pdf_is_a_document_read_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pdf"
    path.write_bytes(b"%PDF-1.7\n" + np.random.default_rng(1).bytes(4000))
    with pytest.raises(DocumentReadError, match="cannot open PDF") as caught:
        DocumentExtractor(engine=ExplodingEngine()).extract(path)
    assert str(path) in str(caught.value)


def test_encrypted_pdf_is_a_document_read_error(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Ho ten nguoi benh: NGUYEN VAN A, So phieu: 250000001")
    pdf.set_encryption(owner_password="owner", user_password="user")
    path = tmp_path / "locked.pdf"
    path.write_bytes(bytes(pdf.output()))
    with pytest.raises(DocumentReadError, match="password") as caught:
        DocumentExtractor(engine=ExplodingEngine()).extract(path)
    assert str(path) in str(caught.value)


# ------------------------------------------------------------------------------------------------ paths
def test_missing_file_is_an_input_path_error(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="not found"):
        DocumentExtractor(engine=ExplodingEngine()).extract(tmp_path / "absent.pdf")


def test_folder_is_an_input_path_error(tmp_path: Path) -> None:
    folder = tmp_path / "scan.png"
    folder.mkdir()
    with pytest.raises(InputPathError):
        DocumentExtractor(engine=ExplodingEngine()).extract(folder)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFormatError, match=r"\.docx"):
        DocumentExtractor(engine=ExplodingEngine()).extract(path)


# ------------------------------------------------------------------------------------------------ Tesseract
def test_tesseract_engine_is_an_ocr_engine() -> None:
    engine = TesseractEngine()
    assert isinstance(engine, OCREngine)
    assert "vie" in engine.name


@pytest.mark.parametrize(
    ("lang", "package"), [("xyz", "tesseract-ocr-xyz"), ("vie+chi_sim", "tesseract-ocr-chi-sim")]
)
def test_tesseract_language_not_installed(lang: str, package: str) -> None:
    with pytest.raises(OCRUnavailableError, match="tesseract-ocr ") as caught:
        TesseractEngine(lang=lang)
    assert package in str(caught.value)


def test_tesseract_binary_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found() -> None:
        raise pytesseract.TesseractNotFoundError()

    monkeypatch.setattr(pytesseract, "get_tesseract_version", not_found)
    with pytest.raises(OCRUnavailableError) as caught:
        TesseractEngine()
    assert "tesseract-ocr" in str(caught.value) and "tesseract-ocr-vie" in str(caught.value)


def test_tesseract_words_are_grouped_into_lines() -> None:
    # level 4 rows (conf -1) and an empty word are dropped; two lines of one block, given out of order
    data = {
        "page_num": [1, 1, 1, 1, 1, 1],
        "block_num": [1, 1, 1, 1, 1, 1],
        "par_num": [1, 1, 1, 1, 1, 1],
        "line_num": [2, 2, 2, 1, 1, 1],
        "word_num": [0, 1, 2, 1, 2, 3],
        "left": [0, 10, 60, 10, 50, 90],
        "top": [0, 52, 50, 10, 12, 10],
        "width": [0, 40, 30, 35, 30, 5],
        "height": [0, 20, 22, 20, 20, 20],
        "conf": [-1, 90, 70, 80, 100, 95],
        "text": ["", "Số", "phiếu:", "Họ", "tên", " "],
    }
    lines = tesseract_module._lines_from_data(data)
    assert [line.text for line in lines] == ["Họ tên", "Số phiếu:"]
    assert lines[0].box == (10, 10, 80, 32) and lines[0].confidence == pytest.approx(0.9)
    assert lines[1].box == (10, 50, 90, 72) and lines[1].confidence == pytest.approx(0.8)


def test_reading_order_groups_rows_then_left_to_right() -> None:
    right = TextLine("right", (500, 102, 700, 130), 1.0)
    left = TextLine("left", (100, 100, 300, 128), 1.0)
    below = TextLine("below", (100, 150, 300, 178), 1.0)
    top = TextLine("top", (400, 40, 600, 68), 1.0)
    assert [line.text for line in reading_order([below, right, left, top])] == [
        "top",
        "left",
        "right",
        "below",
    ]


# -------------------------------------------------------------------------------------------- Paddle + VietOCR
def test_paddle_vietocr_missing_models_say_what_to_put_where(tmp_path: Path) -> None:
    det_dir = tmp_path / "models" / "PP-OCRv5_server_det"
    weights = tmp_path / "models" / "vgg_transformer.pth"
    with pytest.raises(OCRUnavailableError) as caught:
        PaddleVietOCREngine(det_dir, weights)
    message = str(caught.value)
    assert str(det_dir) in message and "inference.pdiparams" in message
    assert str(weights) in message and "vgg_transformer" in message


def test_paddle_vietocr_missing_packages_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    det_dir = tmp_path / "det"
    det_dir.mkdir()
    for name in ("inference.json", "inference.pdiparams", "inference.yml"):
        (det_dir / name).write_text("x")
    weights = tmp_path / "vgg_transformer.pth"
    weights.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "paddleocr", None)  # import fails even where the extra is installed
    monkeypatch.setenv("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")  # the engine sets it: restore after
    with pytest.raises(OCRUnavailableError, match="uv sync --extra ocr-dl"):
        PaddleVietOCREngine(det_dir, weights)


def vietnamese_alphabet() -> set[str]:
    """Vietnamese letters (12 vowels x 6 tones, 20 Latin consonants and đ) in both cases, digits, ASCII
    punctuation and the space: what a Vietnamese report line can hold."""
    vowels, tones = "aăâeêioôơuưy", ("", "\u0300", "\u0309", "\u0303", "\u0301", "\u0323")
    lower = {unicodedata.normalize("NFC", v + t) for v in vowels for t in tones} | set("bcdfghjklmnpqrstvwxzđ")
    return lower | {c.upper() for c in lower} | set(string.digits) | set(string.punctuation) | {" "}


def strings_in(value: object) -> list[str]:
    """Every string inside a parsed YAML value (keys and values, nested)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return [value] if isinstance(value, str) else []


def test_vietocr_config_keeps_the_engine_offline() -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert not re.search(r"https?:|ftp:|://|www\.", text)  # no URL anywhere, comments included
    config = yaml.safe_load(text)
    assert not any(s.startswith("http") for s in strings_in(config))  # VietOCR downloads what starts so
    assert config["cnn"]["pretrained"] is False  # torchvision would fetch ImageNet weights
    assert config["weights"] is None and config["pretrain"] is None  # the engine sets the local weights path


def test_vietocr_vocabulary_is_the_vietnamese_alphabet(lines: list[str], patient: SyntheticPatient) -> None:
    vocab = str(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["vocab"])
    assert len(vocab) == len(set(vocab))  # a repeated character would shift every class after it
    assert set(vocab) == vietnamese_alphabet()
    report = unicodedata.normalize("NFC", "".join(lines) + patient.full_name + patient.full_name.upper())
    assert set(report) <= set(vocab)  # everything our reports print can be spelt


def test_vietocr_engine_builds_offline_on_local_random_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("vietocr", reason="the ocr-dl extra is not installed (uv sync --extra ocr-dl)")
    torch = pytest.importorskip("torch")
    from spine_lib.ocr.vietocr_paddle import VietOCRRecognizer, build_vietocr_model

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access: {args!r}")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    torch.manual_seed(0)
    model = build_vietocr_model()
    classes = len(vietnamese_alphabet()) + 4  # VietOCR adds pad, go, end-of-sequence and mask
    assert model.transformer.fc.out_features == classes  # the shape of the published vgg_transformer weights
    weights = tmp_path / "vgg_transformer.pth"
    torch.save(model.state_dict(), weights)
    recognizer = VietOCRRecognizer(weights, DEFAULT_CONFIG)
    predictor = recognizer._predictor
    assert predictor.config["weights"] == str(weights) and predictor.config["cnn"]["pretrained"] is False
    loaded = predictor.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in model.state_dict().items())  # our file's weights


def test_order_quadrilateral_from_any_order() -> None:
    corners = np.array([[10, 5], [90, 8], [88, 30], [8, 27]], dtype=np.float32)  # tl, tr, br, bl
    for permutation in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]):
        np.testing.assert_array_equal(order_quadrilateral(corners[permutation]), corners)


def test_crop_polygon_of_an_axis_aligned_box_is_exact() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    polygon = np.array([[50, 40], [10, 40], [50, 15], [10, 15]], dtype=np.float32)
    np.testing.assert_array_equal(crop_polygon(image, polygon), image[15:40, 10:50])


def test_crop_polygon_undoes_a_rotation() -> None:
    height, width = 40, 160
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = (128 + 90 * np.sin(xx / 7.0) * np.cos(yy / 5.0)).astype(np.uint8)  # smooth: interpolation-safe
    canvas = np.full((300, 300), 255, dtype=np.uint8)
    x0, y0 = 70, 130
    canvas[y0 : y0 + height, x0 : x0 + width] = pattern
    rotation = cv2.getRotationMatrix2D((150.0, 150.0), 17.0, 1.0)
    rotated = cv2.warpAffine(canvas, rotation, (300, 300), flags=cv2.INTER_LINEAR, borderValue=255)
    corners = np.array(
        [[x0, y0], [x0 + width, y0], [x0 + width, y0 + height], [x0, y0 + height]], dtype=np.float64
    )
    polygon = np.hstack([corners, np.ones((4, 1))]) @ rotation.T
    crop = crop_polygon(rotated, polygon[[2, 0, 3, 1]])  # any corner order
    assert crop.shape == (height, width)
    inner = (slice(2, -2), slice(2, -2))  # the outermost pixels mix with the white background
    error = np.abs(crop[inner].astype(np.int16) - pattern[inner].astype(np.int16))
    assert error.mean() < 4 and np.percentile(error, 99) < 25, (error.mean(), error.max())


def test_last_line_band_reads_only_the_date_line(
    extractor: DocumentExtractor, docs: dict[str, Path], lines: list[str]
) -> None:
    for kind in ("clean", "scanned"):
        document = extractor.extract(docs[kind], region="last_line")
        assert len(document.lines) == 1, (kind, [line.text for line in document.lines])
        assert " ".join(document.lines[0].text.split()) == lines[-1]  # "Hà Nội, ngày DD tháng MM năm YYYY"
        assert document.lines[0].box[1] > 0.5 * Image.open(docs[kind]).height


def test_last_text_band_of_a_blank_page_is_none() -> None:
    from spine_lib.ocr.document import last_text_band

    assert last_text_band(Image.new("L", (400, 600), 255)) is None
    page = Image.new("L", (400, 600), 255)
    page.paste(0, (50, 500, 350, 512))  # one dark bar standing in for a line of text
    band = last_text_band(page)
    assert band is not None and band[0] < 500 / 600 < 512 / 600 < band[1] and band[1] - band[0] < 0.05


# -------------------------------------------------------------------------------------------- orientation and ink
class CountingEngine:
    """Tesseract, counting the pages (or bands) it is asked to read."""

    def __init__(self) -> None:
        self.inner = TesseractEngine()
        self.name = self.inner.name
        self.calls = 0

    def recognize(self, image: Image.Image) -> list[TextLine]:
        self.calls += 1
        return self.inner.recognize(image)


def _feed(image: Image.Image, rotation: int) -> Image.Image:
    """``image`` turned so that reading it needs ``rotation`` degrees clockwise (PIL turns counter-clockwise)."""
    return image.rotate(rotation, expand=True) if rotation else image.copy()


@pytest.fixture(scope="module")
def upright_page(docs: dict[str, Path]) -> Image.Image:
    with Image.open(docs["clean"]) as image:
        return image.convert("L")


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("lean", [0.0, 2.5, -4.0])
def test_geometry_finds_the_turn_and_the_lean_from_the_ink(
    upright_page: Image.Image, rotation: int, lean: float
) -> None:
    from spine_lib.ocr.orientation import estimate_geometry

    leaning = upright_page.rotate(lean, resample=Image.Resampling.BICUBIC, fillcolor=255) if lean else upright_page
    geometry = estimate_geometry(_feed(leaning, rotation))
    assert geometry.rotation == rotation
    assert geometry.skew == pytest.approx(lean, abs=0.35)
    assert geometry.line_contrast > 1.5 and geometry.top_heaviness > 1.2


def test_turn_upright_undoes_each_quarter_turn_exactly(upright_page: Image.Image) -> None:
    from spine_lib.ocr.orientation import turn_upright

    small = upright_page.reduce(4)
    for rotation in (0, 90, 180, 270):
        np.testing.assert_array_equal(np.asarray(turn_upright(_feed(small, rotation), rotation)), np.asarray(small))
    with pytest.raises(ValueError, match="rotation"):
        turn_upright(small, 45)


def test_blank_page_is_upright_and_level() -> None:
    from spine_lib.ocr.orientation import estimate_geometry

    geometry = estimate_geometry(Image.new("L", (600, 800), 250))
    assert (geometry.rotation, geometry.skew, geometry.ink_pixels) == (0, 0.0, 0)


def test_tesseract_osd_is_installed_and_reads_the_turn(upright_page: Image.Image) -> None:
    from spine_lib.ocr.orientation import osd_available, osd_rotation

    assert osd_available()  # Debian's tesseract-ocr ships osd.traineddata
    for rotation in (90, 180):
        answer = osd_rotation(_feed(upright_page, rotation))
        assert answer is not None and answer[0] == rotation, (rotation, answer)
    assert osd_rotation(Image.new("L", (400, 500), 255)) is None  # nothing to read: no answer


def test_reads_well_needs_enough_confident_text() -> None:
    from spine_lib.ocr.document import reads_well

    good = [TextLine("Họ tên người bệnh: NGUYỄN VĂN SƠN", (0, 0, 1, 1), 0.92)]
    assert reads_well(good)
    assert not reads_well([TextLine("Số", (0, 0, 1, 1), 0.95)])  # too few letters to say
    assert not reads_well([TextLine("yl LAÌ S=) là) E lu) c l0) xwj œ ®", (0, 0, 1, 1), 0.27)])  # sideways nonsense


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_turned_scan_is_read_upright_with_one_ocr_pass(
    tmp_path: Path, docs: dict[str, Path], truth: dict[str, str], rotation: int
) -> None:
    with Image.open(docs["scanned"]) as image:
        path = tmp_path / f"turned_{rotation}.png"
        _feed(image, rotation).save(path)
    engine = CountingEngine()
    doc = DocumentExtractor(engine=engine).extract(path, region=HEADER)
    (correction,) = doc.corrections
    assert (correction.rotation, correction.method) == (rotation, "ink")
    assert engine.calls == 1  # the ink's guess read well: no second opinion, no second pass
    assert doc.rotations == {0: rotation}
    texts = _texts(doc)
    assert truth["id"] in texts and truth["birthday"] in texts, texts


def test_a_wrong_guess_is_caught_by_the_second_opinion(
    docs: dict[str, Path], truth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from spine_lib.ocr import document
    from spine_lib.ocr.orientation import PageGeometry

    def upside_down(image: Image.Image) -> PageGeometry:
        return PageGeometry(rotation=180, skew=0.0, line_contrast=2.0, top_heaviness=1.1, ink_pixels=10_000)

    monkeypatch.setattr(document, "estimate_geometry", upside_down)
    for has_osd, method in ((True, "osd"), (False, "ocr")):
        extractor = DocumentExtractor()
        extractor._osd = has_osd
        doc = extractor.extract(docs["scanned"], region=HEADER)
        assert (doc.corrections[0].rotation, doc.corrections[0].method) == (0, method)
        assert truth["id"] in _texts(doc)


def test_a_page_decided_once_is_remembered(tmp_path: Path, docs: dict[str, Path], lines: list[str]) -> None:
    with Image.open(docs["scanned"]) as image:
        path = tmp_path / "upside_down.png"
        _feed(image, 180).save(path)
    extractor = DocumentExtractor()
    first = extractor.extract(path, region=(0.1, 0.27))
    tail = extractor.extract(path, region="last_line")
    assert first.corrections[0].method == "ink" and tail.corrections[0].method == "remembered"
    assert tail.rotations == {0: 180}
    assert [_norm(line.text) for line in tail.lines] == [lines[-1]]  # the date line, found on the turned page


def test_orientation_off_reads_the_page_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    Image.new("L", (100, 200), 255).save(path)
    engine = FixedEngine()
    doc = DocumentExtractor(engine=engine, orientation="off", enlarge_small_pages=False).extract(path)
    assert doc.corrections[0].method == "off" and doc.rotations == {0: 0}
    assert engine.sizes == [(100, 200)]
    with pytest.raises(ConfigError, match="orientation"):
        DocumentExtractor(orientation="sideways")


def test_exif_orientation_of_a_photo_is_applied(tmp_path: Path) -> None:
    upright = Image.new("L", (60, 90), 255)
    upright.paste(0, (5, 5, 25, 15))  # a mark in the top-left corner
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone held sideways stores, tagged 6
    tags = Image.Exif()
    tags[0x0112] = 6
    path = tmp_path / "photo.jpg"
    stored.save(path, exif=tags.tobytes(), quality=95)
    seen: list[Image.Image] = []

    class Recorder(FixedEngine):
        def recognize(self, image: Image.Image) -> list[TextLine]:
            seen.append(image)
            return []

    DocumentExtractor(engine=Recorder(), orientation="off", enlarge_small_pages=False).extract(path)
    pixels = np.asarray(seen[0].convert("L"))
    assert pixels.shape == (90, 60) and pixels[5:15, 5:25].mean() < 60 and pixels[70:, 40:].mean() > 200


BARS = (85, 97, 109, 121)  # columns where strokes of print run under the stamp, 3 px wide


def _ink_test_page() -> tuple[Image.Image, dict[str, tuple[slice, slice]]]:
    """An RGB page: black print, a red stamp over strokes of print, a red disc, a blue stroke, yellow, grey."""
    page = np.full((120, 200, 3), 245, np.uint8)
    regions = {
        "print": (slice(10, 30), slice(10, 90)),
        "red": (slice(50, 70), slice(150, 190)),
        "blue": (slice(90, 95), slice(20, 180)),
        "yellow": (slice(10, 30), slice(120, 180)),
        "grey": (slice(50, 70), slice(10, 60)),
        "stamp": (slice(40, 80), slice(80, 140)),
    }
    page[regions["print"]] = (25, 25, 25)
    page[regions["red"]] = (214, 38, 52)
    page[regions["blue"]] = (28, 52, 168)
    page[regions["yellow"]] = (250, 240, 120)
    page[regions["grey"]] = (128, 128, 128)
    page[regions["stamp"]] = (214, 38, 52)
    for x in BARS:
        page[40:80, x : x + 3] = (20, 8, 10)  # print under the stamp: the inks multiply to near black
    return Image.fromarray(page), regions


def test_coloured_ink_becomes_paper_and_print_stays() -> None:
    from spine_lib.ocr.ink import remove_coloured_ink

    page, regions = _ink_test_page()
    cleaned, fraction = remove_coloured_ink(page)
    gray = np.asarray(cleaned)
    luminance = np.asarray(page.convert("L"))
    assert cleaned.mode == "L"
    under = np.zeros(gray.shape, bool)
    for x in BARS:
        under[40:80, x : x + 3] = True
    stamp = np.zeros(gray.shape, bool)
    stamp[regions["stamp"]] = True
    for name in ("red", "blue"):
        assert gray[regions[name]].min() >= 230, name  # paper
    assert gray[stamp & ~under].min() >= 230  # the stamp between the strokes: paper
    assert gray[under].max() <= 30  # the strokes under it: still print
    for name in ("print", "grey", "yellow"):
        np.testing.assert_array_equal(gray[regions[name]], luminance[regions[name]], err_msg=name)
    red_or_blue = 20 * 40 + (40 * 60 - 40 * 3 * len(BARS)) + 5 * 160
    assert fraction == pytest.approx(red_or_blue / (120 * 200))


def test_grey_pages_pass_through_ink_removal_unchanged(upright_page: Image.Image) -> None:
    from spine_lib.ocr.ink import remove_coloured_ink

    small = upright_page.reduce(4)
    cleaned, fraction = remove_coloured_ink(small)
    assert fraction == 0.0
    np.testing.assert_array_equal(np.asarray(cleaned), np.asarray(small))
    cleaned_rgb, fraction_rgb = remove_coloured_ink(small.convert("RGB"))
    assert fraction_rgb == 0.0
    np.testing.assert_array_equal(np.asarray(cleaned_rgb), np.asarray(small))


def test_black_text_under_a_red_stamp_reads_exactly(tmp_path: Path, extractor: DocumentExtractor) -> None:
    from PIL import ImageDraw, ImageFont

    from spine_lib.synthetic.reports import find_font

    texts = ["Họ tên người bệnh: PHAN THỊ THÙY HẠNH", "Ngày sinh: 14/02/1957", "Số phiếu: 250010139"]
    page = Image.new("RGB", (1400, 400), (245, 243, 235))
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(find_font()), 40)
    for row, text in enumerate(texts):
        draw.text((40, 70 + 70 * row), text, font=font, fill=(20, 20, 20))
    ink = Image.new("L", page.size, 0)
    ring = ImageDraw.Draw(ink)
    ring.ellipse((520, 10, 700, 190), outline=255, width=12)  # a stamp's ring across the name
    ring.polygon([(610, 40), (630, 95), (690, 95), (640, 125), (660, 180), (610, 145), (560, 180), (580, 125),
                  (530, 95), (590, 95)], fill=255)  # and its star, over the name's first letters
    stamp = np.asarray(ink, dtype=np.float32)[..., None] / 255 * 0.9
    rgb = np.asarray(page, dtype=np.float32) * (1 - stamp * (1 - np.array([214, 38, 52]) / 255))
    path = tmp_path / "stamped.png"
    Image.fromarray(rgb.round().astype(np.uint8)).save(path)
    doc = extractor.extract(path)
    assert [_norm(line.text) for line in doc.lines] == texts
    assert doc.corrections[0].coloured_ink > 0.01


class _Seen(FixedEngine):
    """Records the images it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[Image.Image] = []

    def recognize(self, image: Image.Image) -> list[TextLine]:
        self.images.append(image.copy())
        return super().recognize(image)


def test_a_16_bit_grey_scan_is_read_as_grey_levels_not_a_white_page(tmp_path: Path) -> None:
    page = np.full((1700, 1200), 60000, dtype=np.uint16)
    page[200:220, 100:1100] = 3000  # a dark stroke on 16-bit paper
    path = tmp_path / "scan16.png"
    Image.fromarray(page).save(path)
    assert Image.open(path).mode.startswith("I")
    engine = _Seen()
    DocumentExtractor(engine=engine, orientation="off").extract(path)
    seen = np.asarray(engine.images[0].convert("L"))
    assert seen.shape == (1700, 1200) and seen[205:215, 200:1000].max() < 10 and seen[400:, :].min() > 245


def test_a_fax_in_standard_mode_is_squared_and_a_fine_one_left_alone(tmp_path: Path) -> None:
    page = Image.new("1", (1700, 1100), 1)  # 200 x 100 dpi: half as many rows as a square-pixel page
    page.paste(0, (100, 200, 1600, 210))
    standard = tmp_path / "standard.tif"
    page.save(standard, compression="group4", dpi=(200, 100))
    engine = _Seen()
    DocumentExtractor(engine=engine, orientation="off").extract(standard)
    assert engine.images[0].size == (1700, 2200)  # rows doubled: letters of their real height
    stroke = np.asarray(engine.images[0].convert("L"))[395:425, 800]
    assert stroke.min() < 30 and 10 <= (stroke < 128).sum() <= 30  # 10 rows then, about 20 now
    fine = tmp_path / "fine.tif"
    page.save(fine, compression="group4", dpi=(200, 200))
    engine = _Seen()
    DocumentExtractor(engine=engine, orientation="off").extract(fine)
    assert engine.images[0].size == (1700, 1100)
    assert np.array_equal(np.asarray(engine.images[0].convert("L")), np.asarray(page.convert("L")))


def test_a_colour_scan_of_two_resolutions_keeps_its_colour_until_the_stamp_is_removed(tmp_path: Path) -> None:
    page = Image.new("RGB", (1400, 1000), (250, 250, 250))
    page.paste((210, 30, 40), (300, 300, 700, 500))  # a red stamp
    page.paste((10, 10, 10), (100, 100, 1300, 110))  # print
    path = tmp_path / "colour.png"
    page.save(path, dpi=(200, 100))
    engine = _Seen()
    DocumentExtractor(engine=engine, orientation="off").extract(path)
    seen = np.asarray(engine.images[0].convert("L"))
    assert seen.shape == (2000, 1400)
    assert seen[700:900, 350:650].min() > 200  # the stamp turned to paper (it was still red when removed)
    assert seen[205:215, 200:1200].max() < 80  # the print stays
