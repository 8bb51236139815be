"""Speckled, grainy and low-resolution scans: the noise measure against hand-made pages, and real Tesseract
reading the fields of a noisy report once the page is cleaned (which it does not without the cleaning) and of a
70-dpi fax once enlarged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spine_lib.datasets.phenikaa.reports import read_report
from spine_lib.errors import ConfigError
from spine_lib.ocr import DocumentExtractor
from spine_lib.ocr.noise import ISOLATED_CONTRAST, NOISY_SHARE, isolated_pixel_share, remove_noise
from spine_lib.synthetic.reports import ReportTruth, write_report_set


def test_isolated_pixels_are_counted_and_strokes_are_not() -> None:
    page = np.full((50, 80), 250, dtype=np.uint8)
    page[10:12, 5:70] = 20  # a two-pixel stroke
    page[20:40, 30] = 20  # a one-pixel stroke: its pixels have stroke neighbours
    assert isolated_pixel_share(page) == 0.0
    page[45, 10] = 20  # a dark dot
    page[11, 40] = 250  # a bright hole inside a stroke is not isolated (paper neighbours above and below)
    page[5, 75] = 250 - ISOLATED_CONTRAST  # not darker than its neighbours by more than the contrast
    assert isolated_pixel_share(page) == pytest.approx(1 / page.size)
    with pytest.raises(ValueError, match="2-D"):
        isolated_pixel_share(np.zeros((4, 4, 3), dtype=np.uint8))


def test_a_clean_page_is_left_as_it_is_and_a_speckled_one_is_cleaned() -> None:
    rng = np.random.default_rng(0)
    page = np.full((200, 300), 245, dtype=np.uint8)
    page[40:44, 20:280] = 15
    clean = Image.fromarray(page)
    same, share = remove_noise(clean)
    assert same is clean and share <= NOISY_SHARE
    speckled = page.copy()
    draw = rng.random(page.shape)
    speckled[draw < 0.01] = 0
    speckled[draw > 0.99] = 255
    cleaned, share = remove_noise(Image.fromarray(speckled))
    assert share > 10 * NOISY_SHARE
    values = np.asarray(cleaned)
    paper = np.ones(page.shape, dtype=bool)
    paper[36:48, 16:284] = False
    assert (values[paper] < 128).mean() < 1e-3  # the dots are gone from the paper
    assert (values[41:43, 30:270] < 128).all()  # the stroke stays
    assert isolated_pixel_share(values) <= NOISY_SHARE


@pytest.fixture(scope="module")
def noisy_reports(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, ReportTruth]]:
    """Two plain synthetic reports, one with salt-and-pepper speckle on 2 % of its pixels, one with Gaussian
    grain of sigma 40 (a worn copy, a fax)."""
    folder = tmp_path_factory.mktemp("noisy")
    truths = [t for t in write_report_set(folder / "plain", 2, seed=7, kinds=("plain",)) if t.file.endswith(".png")]
    assert len(truths) == 2
    out = []
    for index, truth in enumerate(truths):
        values = np.asarray(Image.open(folder / "plain" / truth.file).convert("L")).copy()
        rng = np.random.default_rng(index)
        if index == 0:
            draw = rng.random(values.shape)
            values[draw < 0.01] = 0
            values[draw > 0.99] = 255
        else:
            values = np.clip(values + rng.normal(0.0, 40.0, values.shape), 0, 255).astype(np.uint8)
        path = folder / truth.file
        Image.fromarray(values).save(path)
        out.append((path, truth))
    return out


def test_noisy_reports_are_read_once_cleaned(noisy_reports: list[tuple[Path, ReportTruth]]) -> None:
    extractor = DocumentExtractor()
    for path, truth in noisy_reports:
        fields = read_report(path, extractor)
        assert fields.status == "ok", fields.reason
        assert fields.patient_id == truth.patient_id
        assert " ".join((fields.patient_name or "").split()).upper() == truth.full_name.upper()
        assert (fields.birthday == truth.birthday) if truth.birthday else (fields.birth_year == truth.birth_year)
        assert fields.exam_date == truth.exam_date
        header = extractor.extract(path, region=(0.0, 0.45))
        assert header.corrections[0].noise > NOISY_SHARE  # measured and cleaned


def test_without_the_cleaning_the_speckled_report_loses_its_name(
        noisy_reports: list[tuple[Path, ReportTruth]]) -> None:
    path, truth = noisy_reports[0]
    fields = read_report(path, DocumentExtractor(remove_noise=False))
    assert " ".join((fields.patient_name or "").split()).upper() != truth.full_name.upper()


def test_a_report_faxed_at_70_dpi_is_read_enlarged(noisy_reports: list[tuple[Path, ReportTruth]],
                                                    tmp_path: Path) -> None:
    plain, truth = noisy_reports[0][0].parent / "plain" / noisy_reports[0][1].file, noisy_reports[0][1]
    with Image.open(plain) as page:
        small = page.resize((round(page.width * 0.35), round(page.height * 0.35)), Image.Resampling.BILINEAR)
    path = tmp_path / truth.file
    small.save(path)
    extractor = DocumentExtractor()
    fields = read_report(path, extractor)
    assert " ".join((fields.patient_name or "").split()).upper() == truth.full_name.upper()
    assert (fields.birthday == truth.birthday) if truth.birthday else (fields.birth_year == truth.birth_year)
    assert extractor.extract(path, region=(0.0, 0.45)).corrections[0].scale > 2.5


def test_a_page_that_takes_too_long_is_given_up_and_the_report_rejected_with_the_reason(
        noisy_reports: list[tuple[Path, ReportTruth]]) -> None:
    from spine_lib.ocr import TesseractEngine

    path, _ = noisy_reports[1]
    engine = TesseractEngine(timeout_s=0.01)  # no real page reads in 10 ms: the process is stopped
    fields = read_report(path, DocumentExtractor(engine=engine))
    assert fields.status == "rejected"
    assert fields.reason == "unreadable: OCR of a page took longer than 0.01 s (stopped)"
    with pytest.raises(ConfigError, match="timeout_s must be > 0"):
        TesseractEngine(timeout_s=0)
