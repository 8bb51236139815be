"""Logging, configs, errors, the data-root layout and CSV records."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
from loguru import logger
from pydantic import BaseModel, ValidationError

from spine_lib.core import BaseConfig, DataLayout, setup_logger, track
from spine_lib.errors import MedicalImageError, SpineVisionError
from spine_lib.io import atomic_write_text, write_records_csv


def test_verbose_shows_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logger(verbose=False)
    logger.debug("hidden detail")
    logger.info("shown line")
    setup_logger(verbose=True)
    logger.debug("now visible")
    err = capsys.readouterr().err
    assert "hidden detail" not in err
    assert "shown line" in err and "now visible" in err


def test_file_log_keeps_debug_lines(tmp_path: Path) -> None:
    log_file = setup_logger(verbose=False, enable_file_log=True, log_path=tmp_path / "logs")
    logger.debug("written to file only")
    setup_logger()  # closes the file sink
    assert log_file is not None and log_file.parent == tmp_path / "logs"
    assert "written to file only" in log_file.read_text()


def test_base_config_rejects_unknown_fields() -> None:
    class JobConfig(BaseConfig):
        size: int = 3

    assert JobConfig().verbose is False
    with pytest.raises(ValidationError, match="sizee"):
        JobConfig(sizee=4)  # type: ignore[call-arg]


def test_errors_name_subject_and_cause() -> None:
    error = MedicalImageError(Path("data/raw/x.mha"), "cannot read image")
    assert str(error) == "data/raw/x.mha: cannot read image"
    assert isinstance(error, SpineVisionError)
    assert (error.subject, error.cause) == (Path("data/raw/x.mha"), "cannot read image")


def test_layout_is_the_seed_layout(tmp_path: Path) -> None:
    layout = DataLayout(root=tmp_path / "data", weights=tmp_path / "weights")
    assert layout.phenikaa_reports == tmp_path / "data/raw/Phenikaa/reports"
    assert layout.nnunet_dataset == tmp_path / "data/processed/SPIDER/Dataset501_Spider"
    assert layout.weights_for("localization") == tmp_path / "weights/localization"
    created = layout.ensure()
    assert len(created) == 8 and all(p.is_dir() for p in created)
    assert layout.ensure() == []


def test_inventory_counts_files(tmp_path: Path) -> None:
    layout = DataLayout(root=tmp_path)
    layout.ensure()
    for name in ("250010139.png", "NGUYEN_VAN_SON_20250718.pdf"):
        (layout.phenikaa_reports / name).write_bytes(b"x")
    (layout.phenikaa_images / "NGUYEN_VAN_SON_20250718").mkdir()
    (layout.spider / "images").mkdir()
    (layout.spider / "images" / "1_t1.mha").write_bytes(b"x")
    series = layout.rsna / "train_images" / "100" / "200"
    series.mkdir(parents=True)
    for k in (1, 2, 3):
        (series / f"{k}.dcm").write_bytes(b"x")
    from spine_lib.sources import inventory

    counts = inventory(layout)
    assert counts == {
        "phenikaa_reports": 2, "phenikaa_image_folders": 1, "phenikaa_tables": 0, "spider_images": 1,
        "spider_masks": 0, "rsna_studies": 1, "rsna_dicom_files": 3,
    }


def test_track_yields_everything() -> None:
    assert list(track(range(5), "counting", enabled=True)) == [0, 1, 2, 3, 4]
    assert list(track(iter("ab"), "quiet", enabled=False)) == ["a", "b"]


class Row(BaseModel):
    patient_id: str
    level: str


@dataclass
class Extra:
    patient_id: str
    level: str
    score: float


def test_records_csv_mixes_record_kinds(tmp_path: Path) -> None:
    path = tmp_path / "out" / "rows.csv"
    n = write_records_csv([{"patient_id": "1", "level": "L1/L2"}, Row(patient_id="2", level="L4/L5"),
                           Extra("3", "L5/S1", 0.5)], path)
    assert n == 3
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["patient_id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["score"] == "" and rows[2]["score"] == "0.5"
    assert list(rows[0]) == ["patient_id", "level", "score"]


def test_records_csv_with_fixed_columns(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    assert write_records_csv([], path, columns=["patient_id", "reason"]) == 0
    assert path.read_text() == "patient_id,reason\n"
    with pytest.raises(ValueError, match="score"):
        write_records_csv([{"patient_id": "1", "reason": "x", "score": 1}], path, columns=["patient_id", "reason"])
    assert path.read_text() == "patient_id,reason\n"  # the failed write left the old file


def test_atomic_text_leaves_only_the_target(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "two"
