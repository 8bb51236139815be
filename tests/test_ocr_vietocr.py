"""VietOCR recognition plumbing with random weights the test writes itself (needs the ``ocr-dl`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from spine_lib.ocr.base import OCRUnavailableError
from spine_lib.ocr.vietocr_paddle import (
    DEFAULT_CONFIG,
    VietOCRRecognizer,
    build_vietocr_model,
    crop_polygon,
    load_vietocr_config,
)

pytest.importorskip("vietocr", reason="the ocr-dl extra is not installed (uv sync --extra ocr-dl); CI installs it")
torch = pytest.importorskip("torch")

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


EOS = 2  # VietOCR's vocabulary: 0 pad, 1 go, 2 eos, 3 mask


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random VietOCR weights whose output layer leans to end-of-sequence, so that decoding stops after a few
    steps instead of running to the maximum length (random weights never learnt when to stop)."""
    torch.manual_seed(0)
    model = build_vietocr_model()
    with torch.no_grad():
        model.transformer.fc.bias[EOS] += 6.0
    path = tmp_path_factory.mktemp("vietocr") / "vgg_transformer_random.pth"
    torch.save(model.state_dict(), path)
    return path


def text_line(text: str, width: int) -> Image.Image:
    image = Image.new("RGB", (width, 48), "white")
    ImageDraw.Draw(image).text((6, 8), text, fill="black", font=ImageFont.truetype(str(FONT), 28))
    return image


def test_recognizer_with_random_weights_returns_one_result_per_crop(random_weights: Path) -> None:
    recognizer = VietOCRRecognizer(random_weights)
    crops = [text_line("Họ tên người bệnh", 360), text_line("Số phiếu: 250010139", 380), text_line("L4/L5", 120)]
    results = recognizer.recognize(crops)
    vocab = set(str(load_vietocr_config(DEFAULT_CONFIG)["vocab"])) | {" "}
    assert len(results) == 3
    for text, confidence in results:
        assert set(text) <= vocab  # random weights spell nonsense, but only in the model's alphabet
        assert 0.0 <= confidence <= 1.0
    assert recognizer.recognize([]) == []


def test_crops_of_a_rotated_line_feed_the_recognizer(random_weights: Path) -> None:
    page = Image.new("RGB", (600, 300), "white")
    line = text_line("Ngày sinh: 16/03/1957", 400).rotate(8, expand=True, fillcolor="white")
    page.paste(line, (60, 80))
    w, h = line.size
    polygon = np.array([[60, 80], [60 + w, 80], [60 + w, 80 + h], [60, 80 + h]], dtype=np.float32)
    crop = crop_polygon(np.asarray(page), polygon)
    assert crop.shape[:2] == (h, w)
    [(text, confidence)] = VietOCRRecognizer(random_weights).recognize([Image.fromarray(crop)])
    assert isinstance(text, str) and 0.0 <= confidence <= 1.0


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "not_vietocr.pth"
    torch.save({"layer.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(OCRUnavailableError, match="cannot load the VietOCR weights") as info:
        VietOCRRecognizer(wrong)
    assert str(wrong) in str(info.value)


def test_missing_weights_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(OCRUnavailableError, match=r"put the vgg_transformer \.pth there"):
        VietOCRRecognizer(tmp_path / "absent.pth")
