"""Phenikaa reports -> fields -> matched patients -> dataset, scored against the synthetic truth."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
import pytest

from spine_lib.datasets.phenikaa import (
    PhenikaaReport,
    PreprocessConfig,
    inbox_changes,
    load_report_fields,
    match_patients,
    process_reports,
)
from spine_lib.levels import level_from_phenikaa_ivd_label
from spine_lib.synthetic.people import ascii_name
from spine_lib.synthetic.truth import read_truth


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def phi_strings(truth: dict[str, Any]) -> list[str]:
    """Every way a synthetic patient's name or birthday could appear in a file."""
    found = []
    for p in truth["patients"]:
        born = date.fromisoformat(p["birthday"])
        found += [p["full_name"], p["full_name"].upper(), ascii_name(p["full_name"]),
                  ascii_name(p["full_name"]).replace("_", " "), born.strftime("%d/%m/%Y"), born.strftime("%Y%m%d"),
                  born.isoformat()]
    return found


@pytest.fixture(scope="module")
def phenikaa_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[PreprocessConfig, PhenikaaReport]:
    """The export copied (so bad files can be added), then one full run of the pipeline."""
    work = tmp_path_factory.mktemp("phenikaa")
    data = work / "raw/Phenikaa"
    shutil.copytree(synthetic_root / "raw/Phenikaa", data)
    (data / "reports/blank.png").write_bytes(b"")  # an empty file
    from PIL import Image

    Image.new("L", (800, 1100), 255).save(data / "reports/250099999.png")  # a blank scan, ID-named
    (data / "reports/TRAN_VAN_A_20250101.pdf").write_bytes(b"%PDF-1.4 garbage")  # a corrupt PDF
    (data / "images/not a patient folder").mkdir()
    truth = read_truth(synthetic_root, "phenikaa")
    # Reports that say too little: no name line (ID-named scan), a birthday no calendar has (text-layer PDF).
    import numpy as np

    from spine_lib.synthetic.people import make_patients
    from spine_lib.synthetic.reports import render_report_pdf, render_report_png, report_lines

    stranger = make_patients(1, np.random.default_rng(99))[0]
    normal = {lv: {"pfirrmann": 2} for lv in ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")}
    lines = report_lines(stranger, normal)
    render_report_png([line for line in lines if not line.startswith("Họ tên")], data / "reports/250077777.png",
                      scanned=False, rng=np.random.default_rng(1))
    bad_birthday = [("Ngày sinh: 31/02/19x7" if line.startswith("Ngày sinh") else line) for line in lines]
    render_report_pdf(bad_birthday, data / "reports/LE_VAN_TAM_20250101.pdf", text_layer=True,
                      rng=np.random.default_rng(2))
    config = PreprocessConfig(
        data_path=data, output_path=work / "processed/phenikaa", interim_path=work / "interim/Phenikaa",
        corrupted_ids=truth["corrupted_ids"],
    )
    process_reports(config)
    return config, match_patients(config)


def test_fields_match_the_truth(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport], synthetic_root: Path) -> None:
    config, _ = phenikaa_run
    truth = {Path(p["report"]).name: p for p in read_truth(synthetic_root, "phenikaa")["patients"]}
    records = {r.report_file: r for r in load_report_fields(config.interim_path)}
    for name, patient in truth.items():
        record = records[name]
        assert record.status == "ok", (name, record.reason)
        assert record.patient_id == patient["patient_id"]
        assert record.birthday == patient["birthday"]
        assert record.exam_date == patient["exam_date"]  # PNGs: read from the report's last line
        assert record.patient_name is not None
        assert ascii_name(record.patient_name) == ascii_name(patient["full_name"])


def test_every_report_ends_matched_or_rejected(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport]) -> None:
    config, report = phenikaa_run
    inbox = {p.name for p in config.reports_path.iterdir() if p.is_file()}
    matched = {m["report_file"] for m in rows(config.interim_path / "matches.csv") if m["status"] == "matched"}
    rejected = {r["item"] for r in rows(config.interim_path / "rejects.csv") if r["stage"] in ("report", "match")}
    assert inbox == matched | rejected
    assert not matched & rejected
    assert report.matched == 6
    reasons = {r["item"]: r["reason"] for r in rows(config.interim_path / "rejects.csv")}
    assert reasons["250099999.png"] == "no text found (blank or unreadable page)"
    assert reasons["TRAN_VAN_A_20250101.pdf"].startswith("unreadable")
    assert "blank.png" in reasons
    assert "not a patient folder" in reasons
    assert reasons["250077777.png"] == "no patient name in the report"
    assert reasons["LE_VAN_TAM_20250101.pdf"] == "unparsable birthday"


def test_patients_matched_to_their_true_folder(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport],
                                               synthetic_root: Path) -> None:
    config, _ = phenikaa_run
    truth = read_truth(synthetic_root, "phenikaa")["patients"]
    matches = {m["patient_id"]: m for m in rows(config.interim_path / "matches.csv")}
    for patient in truth:
        match = matches[patient["patient_id"]]
        folders = [Path(f).name for f in patient["image_folders"]]
        assert match["status"] == "matched"
        assert match["image_folder"] == folders[0]
        assert match["repeat_folders"] == ";".join(folders[1:])


def test_labels_use_top_down_levels_and_reject_unknown_ids(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport],
                                                           synthetic_root: Path) -> None:
    config, _ = phenikaa_run
    truth = read_truth(synthetic_root, "phenikaa")
    grades = {p["patient_id"]: {d["level"]: d["grades"] for d in p["discs"]} for p in truth["patients"]}
    labels = rows(config.output_path / "radiological_labels.csv")
    assert len(labels) == 6 * 5 - 1  # one row lost its Pfirrmann grade in the export
    for row in labels:
        assert row["level"] == level_from_phenikaa_ivd_label(int(row["ivd_label"]))
        assert int(row["pfirrmann_grade"]) == grades[row["patient_id"]][row["level"]]["pfirrmann"]
    rejects = [r for r in rows(config.interim_path / "rejects.csv") if r["stage"] == "label_table"]
    assert sum(r["reason"].startswith("corrupted ID") for r in rejects) == 5


def test_exported_images_are_anonymized(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport]) -> None:
    config, report = phenikaa_run
    patients = sorted(p.name for p in (config.output_path / "images").iterdir())
    assert len(patients) == 6 and report.images_exported > 0
    first = next((config.output_path / "images" / patients[0]).rglob("*.dcm"))
    dataset = pydicom.dcmread(first)
    assert str(dataset.PatientName) == patients[0] == dataset.PatientID
    assert "PatientBirthDate" not in dataset


def test_no_phi_in_the_dataset(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport], synthetic_root: Path) -> None:
    config, _ = phenikaa_run
    needles = [s.encode("utf-8") for s in phi_strings(read_truth(synthetic_root, "phenikaa"))]
    files = [p for p in config.output_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        leaked = [n.decode() for n in needles if n in data]
        assert not leaked, f"{path}: {leaked}"


def test_rerun_reads_nothing_again(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = phenikaa_run

    def no_ocr(*args: object, **kwargs: object) -> None:
        raise AssertionError("a report was read again")

    monkeypatch.setattr("spine_lib.datasets.phenikaa.reports.read_report", no_ocr)
    again = process_reports(config)
    assert len(again) == len([p for p in config.reports_path.iterdir() if p.is_file()])


def test_inbox_changes_chunks_and_sees_changes(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{250000000 + i}.png").write_bytes(b"x" * (i + 1))
    (tmp_path / "notes.txt").write_text("not a report")
    chunk, waiting = inbox_changes(tmp_path, {}, limit=3)
    assert [name for name, _ in chunk] == ["250000000.png", "250000001.png", "250000002.png"] and waiting == 2
    seen = dict(chunk)
    chunk, waiting = inbox_changes(tmp_path, seen, limit=3)
    assert [name for name, _ in chunk] == ["250000003.png", "250000004.png"] and waiting == 0
    seen.update(chunk)
    assert inbox_changes(tmp_path, seen, limit=3) == ([], 0)
    (tmp_path / "250000001.png").write_bytes(b"changed content")
    chunk, _ = inbox_changes(tmp_path, seen, limit=3)
    assert [name for name, _ in chunk] == ["250000001.png"]
