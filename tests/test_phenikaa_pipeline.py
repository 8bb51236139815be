"""Phenikaa reports -> fields -> matched patients -> dataset, scored against the synthetic truth.

The module fixture OCRs the synthetic export plus a few files an inbox really holds (not reports, broken, of
another form layout); the review and override tests plant report records as if read, so they need no OCR.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from spine_lib.core.phi import safe_path
from spine_lib.datasets.phenikaa import (
    PhenikaaReport,
    PreprocessConfig,
    ReportFields,
    inbox_changes,
    inbox_rejects,
    load_report_fields,
    match_patients,
    process_reports,
    report_files,
    save_report_fields,
)
from spine_lib.errors import TabularDataError
from spine_lib.io import write_dicom_series
from spine_lib.levels import level_from_phenikaa_ivd_label
from spine_lib.synthetic.people import SyntheticPatient, ascii_name
from spine_lib.synthetic.truth import read_truth

#: The report of another form layout the module fixture adds: its ID, and its patient (set by the fixture).
OTHER_LAYOUT_ID = "250066666"


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
    (data / "reports/notes.txt").write_text("ghi chú", encoding="utf-8")  # files that are not reports
    (data / "reports/NGUYEN_VAN_SON_20250718.docx").write_bytes(b"PK\x03\x04")
    (data / "reports/250011111.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (data / "images/not a patient folder").mkdir()
    truth = read_truth(synthetic_root, "phenikaa")
    # Reports that say too little: no name line (ID-named scan), a birthday no calendar has (text-layer PDF).
    import numpy as np

    from spine_lib.synthetic.people import make_patients
    from spine_lib.synthetic.phenikaa import folder_name
    from spine_lib.synthetic.reports import render_report_pdf, render_report_png, report_lines

    stranger = make_patients(1, np.random.default_rng(99))[0]
    normal = {lv: {"pfirrmann": 2} for lv in ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")}
    lines = report_lines(stranger, normal)
    render_report_png([line for line in lines if not line.startswith("Họ tên")], data / "reports/250077777.png",
                      scanned=False, rng=np.random.default_rng(1))
    bad_birthday = [("Ngày sinh: 31/02/19x7" if line.startswith("Ngày sinh") else line) for line in lines]
    render_report_pdf(bad_birthday, data / "reports/LE_VAN_TAM_20250101.pdf", text_layer=True,
                      rng=np.random.default_rng(2))
    # Another form layout: the year-only birthday above the name line, the ID on the name line, and a signature
    # block under the date line. A namesake's folder of the same exam date differs by the birth year only.
    other = other_layout_patient()
    standard = report_lines(other, normal)
    layout = [
        *standard[:3],
        f"Năm sinh: {other.birthday.year}    Giới tính: {other.sex}",
        f"Họ và tên: {other.full_name.upper()}    Số phiếu: {OTHER_LAYOUT_ID}",
        *standard[7:],
        "BÁC SĨ ĐỌC KẾT QUẢ",
        "",
        "BS. Trần Văn Minh",
    ]
    render_report_png(layout, data / f"reports/{OTHER_LAYOUT_ID}.png", scanned=False, rng=np.random.default_rng(3))
    (data / "images" / folder_name(other, with_birth_year=True)).mkdir()
    (data / "images" / f"{ascii_name(other.full_name)}_{other.birthday.year + 7}_{other.exam_date:%Y%m%d}").mkdir()
    config = PreprocessConfig(
        data_path=data, output_path=work / "processed/phenikaa", interim_path=work / "interim/Phenikaa",
        corrupted_ids=truth["corrupted_ids"],
    )
    process_reports(config)
    return config, match_patients(config)


def other_layout_patient() -> SyntheticPatient:
    import numpy as np

    from spine_lib.synthetic.people import make_patients

    return make_patients(1, np.random.default_rng(98))[0]


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


def test_a_report_of_another_layout_is_read_and_matched_by_birth_year(
    phenikaa_run: tuple[PreprocessConfig, PhenikaaReport],
) -> None:
    config, _ = phenikaa_run
    other = other_layout_patient()
    record = {r.report_file: r for r in load_report_fields(config.interim_path)}[f"{OTHER_LAYOUT_ID}.png"]
    assert record.status == "ok", record.reason
    assert record.patient_name is not None and ascii_name(record.patient_name) == ascii_name(other.full_name)
    assert (record.birthday, record.birth_year) == (None, other.birthday.year)
    assert record.exam_date == other.exam_date.isoformat()  # the date line above the signature block
    table = {r["report_file"]: r for r in rows(config.interim_path / "report_fields.csv")}
    assert table[f"{OTHER_LAYOUT_ID}.png"]["birth_year"] == str(other.birthday.year)
    match = {m["report_file"]: m for m in rows(config.interim_path / "matches.csv")}[f"{OTHER_LAYOUT_ID}.png"]
    assert match["status"] == "matched" and match["decision"] == "auto"
    assert match["image_folder"] == f"{ascii_name(other.full_name)}_{other.birthday.year}_{other.exam_date:%Y%m%d}"
    assert "birth year" in match["reason"]


def test_every_report_ends_matched_or_rejected(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport]) -> None:
    config, report = phenikaa_run
    inbox = {safe_path(p.name) for p in config.reports_path.iterdir()}  # rejects name files by their pseudonym
    matched = {safe_path(m["report_file"])
               for m in rows(config.interim_path / "matches.csv") if m["status"] == "matched"}
    rejected = {r["item"] for r in rows(config.interim_path / "rejects.csv") if r["stage"] in ("report", "match")}
    assert inbox == matched | rejected
    assert not matched & rejected
    assert report.matched == 6 + 1  # the truth's patients and the report of another layout
    assert report.not_reports == 3
    reasons = {r["item"]: r["reason"] for r in rows(config.interim_path / "rejects.csv")}
    assert reasons["250099999.png"] == "no text found (blank or unreadable page)"
    assert reasons[safe_path("TRAN_VAN_A_20250101.pdf")].startswith("unreadable")
    assert reasons["blank.png"] == "empty file (0 bytes)"
    assert reasons["notes.txt"].startswith("not a report: a text file")
    assert reasons[safe_path("NGUYEN_VAN_SON_20250718.docx")].startswith("not a report: a word-processor document")
    assert reasons["250011111.heic"].startswith("not a report: an image format that is not read")
    assert "not a patient folder" in reasons
    assert reasons["250077777.png"] == "no patient name in the report"
    assert reasons[safe_path("LE_VAN_TAM_20250101.pdf")] == "unparsable birthday"


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
    assert len(again) == len(report_files(config.reports_path))


def test_a_rerun_leaves_an_unchanged_export_untouched(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport]) -> None:
    """The same matches export the same files: they keep their times, so what is built on them (the IVD crops,
    whose rebuild follows the series files' times, and the classifier after them) is not redone."""
    config, _ = phenikaa_run
    images = config.output_path / "images"

    def times() -> dict[str, int]:
        return {str(p.relative_to(images)): p.stat().st_mtime_ns for p in images.rglob("*") if p.is_file()}

    before = times()
    assert len(before) > 10
    match_patients(config)
    assert times() == before


def test_a_second_matching_waits_for_the_first(phenikaa_run: tuple[PreprocessConfig, PhenikaaReport]) -> None:
    """Matchings and report-table rewrites take turns (two Dagster runs, the CLI beside the daemon): while one
    holds the data root's matching lock the others do not start, then run to the same result."""
    import threading

    from spine_lib.datasets.phenikaa import rewrite_report_table
    from spine_lib.datasets.phenikaa.match import MATCHING_LOCK
    from spine_lib.io.atomic import exclusive

    config, first = phenikaa_run
    matched: list[PhenikaaReport] = []
    tabled: list[list[ReportFields]] = []
    waiting = [threading.Thread(target=lambda: matched.append(match_patients(config))),
               threading.Thread(target=lambda: tabled.append(rewrite_report_table(config)))]
    with exclusive(config.interim_path / MATCHING_LOCK):  # another matcher (a separate open file: flock blocks)
        for thread in waiting:
            thread.start()
        waiting[0].join(timeout=1.5)
        assert all(thread.is_alive() for thread in waiting) and matched == [] and tabled == []
    for thread in waiting:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert matched[0].as_metadata()["matched"] == first.as_metadata()["matched"]
    assert len(tabled[0]) == len(load_report_fields(config.interim_path, config.reports_path)) > 0


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


# ------------------------------------------------------------------------- review and overrides (no OCR)
FOLDERS = [
    "PHAM_VAN_DUC_20240101", "PHAM_VAN_DUC_20250101", "LE_THI_HOA_1970_20250301", "LE_THI_HOA_1985_20250301",
    "TRAN_VAN_BINH_20240404", "TRAN_VAN_BINH_20250505",
]  # fmt: skip


def plant(config: PreprocessConfig, name: str, **fields: Any) -> None:
    """An inbox file and its stored record, as if the report had been read."""
    path = config.reports_path / name
    path.write_bytes(b"scan")
    stat = path.stat()
    save_report_fields(ReportFields(report_file=name, report_format="png", patient_id=path.stem, **fields,
                                    source_mtime_ns=stat.st_mtime_ns, source_size=stat.st_size),
                       config.interim_path)


@pytest.fixture
def review_config(tmp_path: Path) -> PreprocessConfig:
    """Four reports read: two ambiguous (two studies of one name, no date), one year-only birthday, one with no
    folder; an empty report; and files that are not reports."""
    data = tmp_path / "raw/Phenikaa"
    slice_ = sitk.GetImageFromArray(np.zeros((1, 4, 4), dtype=np.int16))
    for folder in FOLDERS:
        write_dicom_series(slice_, data / "images" / folder)  # a study of one slice: the patient is exported
    (data / "tables").mkdir()
    (data / "tables/labels.csv").write_text("Patient ID,IVD label,Modic,Pfirrman grade\n250088801,1,0,2\n")
    (data / "reports").mkdir()
    config = PreprocessConfig(data_path=data, output_path=tmp_path / "processed/phenikaa",
                              interim_path=tmp_path / "interim/Phenikaa", workers=1)
    plant(config, "250088801.png", patient_name="PHẠM VĂN ĐỨC", birthday="1980-02-03", birth_year=1980)
    plant(config, "250088802.png", patient_name="LÊ THỊ HOA", birth_year=1970)
    plant(config, "250088803.png", patient_name="HOÀNG VĂN NAM", birthday="1966-05-06", birth_year=1966)
    plant(config, "250088805.png", patient_name="TRẦN VĂN BÌNH", birthday="1971-07-08", birth_year=1971)
    reports = config.reports_path
    (reports / "250088804.png").write_bytes(b"")
    (reports / "notes.txt").write_text("ghi chú", encoding="utf-8")
    (reports / "LE_THI_HOA_report.docx").write_bytes(b"PK\x03\x04")
    (reports / "250088806.webp").write_bytes(b"RIFF")
    (reports / "older").mkdir()
    return config


def write_overrides(config: PreprocessConfig, *lines: str) -> None:
    text = "report_file,patient_id,image_folder,note\n" + "".join(f"{line}\n" for line in lines)
    (config.interim_path / "overrides.csv").write_text(text, encoding="utf-8")


def by_report(path: Path) -> dict[str, dict[str, str]]:
    return {row["report_file"]: row for row in rows(path)}


def test_everything_in_the_inbox_is_accounted_for(review_config: PreprocessConfig,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ocr(*args: object, **kwargs: object) -> None:
        raise AssertionError("an empty file was given to OCR")

    monkeypatch.setattr("spine_lib.ocr.document.DocumentExtractor.extract", no_ocr)
    config = review_config
    process_reports(config)
    report = match_patients(config)
    reasons = {r["item"]: r["reason"] for r in rows(config.interim_path / "rejects.csv") if r["stage"] == "report"}
    assert reasons["250088804.png"] == "empty file (0 bytes)"
    assert reasons["notes.txt"].startswith("not a report: a text file")
    assert reasons[safe_path("LE_THI_HOA_report.docx")].startswith("not a report: a word-processor document")
    assert reasons["250088806.webp"].startswith("not a report: an image format that is not read")
    assert reasons["older"].startswith("a folder")
    assert report.not_reports == 4 and report.reports == 5
    inbox = {safe_path(p.name) for p in config.reports_path.iterdir()}
    matched = {safe_path(m["report_file"])
               for m in rows(config.interim_path / "matches.csv") if m["status"] == "matched"}
    rejected = {r["item"] for r in rows(config.interim_path / "rejects.csv") if r["stage"] in ("report", "match")}
    assert inbox == matched | rejected and not matched & rejected
    # the sensor makes partitions of exactly the files the CLI reads; the rest are the rejects above
    chunk, waiting = inbox_changes(config.reports_path, {}, limit=100)
    assert {name for name, _ in chunk} == {p.name for p in report_files(config.reports_path)} and waiting == 0
    assert {safe_path(name) for name, _ in inbox_rejects(config.reports_path)} == inbox - {
        safe_path(name) for name, _ in chunk}


def test_a_year_only_birthday_matches_by_its_year(review_config: PreprocessConfig) -> None:
    match_patients(review_config)
    match = by_report(review_config.interim_path / "matches.csv")["250088802.png"]
    assert (match["status"], match["decision"]) == ("matched", "auto")
    assert match["image_folder"] == "LE_THI_HOA_1970_20250301"
    assert "birth year" in match["reason"]
    record = by_report(review_config.interim_path / "report_fields.csv")["250088802.png"]
    assert (record["birthday"], record["birth_year"]) == ("", "1970")


def test_refused_reports_wait_in_the_review_table(review_config: PreprocessConfig) -> None:
    report = match_patients(review_config)
    review = by_report(review_config.interim_path / "review.csv")
    assert sorted(review) == ["250088801.png", "250088803.png", "250088805.png"]
    assert report.waiting_for_review == 3 and report.manual == 0
    duc = review["250088801.png"]
    assert (duc["status"], duc["patient_id"], duc["patient_name"]) == ("ambiguous", "250088801", "PHẠM VĂN ĐỨC")
    assert (duc["birthday"], duc["birth_year"]) == ("1980-02-03", "1980")
    assert "PHAM_VAN_DUC_20240101 (100.0)" in duc["candidates"] and "PHAM_VAN_DUC_20250101" in duc["candidates"]
    assert "no date separates them" in duc["reason"]
    assert review["250088803.png"]["status"] == "no_match"
    # the counts carry no names
    metadata = json.dumps(report.as_metadata(), ensure_ascii=False)
    assert not [n for n in ("PHẠM", "PHAM", "HOÀNG", "TRẦN", "1980-02-03") if n in metadata]


def test_overrides_are_applied_first_and_marked_manual(review_config: PreprocessConfig) -> None:
    config = review_config
    write_overrides(
        config,
        "250088801.png,,PHAM_VAN_DUC_20250101,checked the scan",
        ",250088803,No folder,",
        "GONE_REPORT_20250101.pdf,,PHAM_VAN_DUC_20240101,",
        "250088805.png,,TRAN_VAN_BINH_20990101,",
        "250088802.png,250088899,LE_THI_HOA_1985_20250301,",
        "250088805.png,,,",
    )
    report = match_patients(config)
    matches = by_report(config.interim_path / "matches.csv")
    duc = matches["250088801.png"]
    assert (duc["status"], duc["image_folder"], duc["decision"]) == ("matched", "PHAM_VAN_DUC_20250101", "manual")
    assert "overrides.csv line 2" in duc["reason"]
    nam = matches["250088803.png"]
    assert (nam["status"], nam["image_folder"], nam["decision"]) == ("no_match", "", "manual")
    assert matches["250088805.png"]["decision"] == "auto" and matches["250088805.png"]["status"] == "ambiguous"
    assert matches["250088802.png"]["image_folder"] == "LE_THI_HOA_1970_20250301"  # its override did not apply
    assert sorted(by_report(config.interim_path / "review.csv")) == ["250088805.png"]
    stale = {r["item"]: r["reason"] for r in rows(config.interim_path / "rejects.csv") if r["stage"] == "override"}
    assert stale == {
        "overrides.csv:4": "report no longer in the inbox",
        "overrides.csv:5": f"image folder no longer exists: {safe_path('TRAN_VAN_BINH_20990101')}",
        "overrides.csv:6": "the report's patient ID is 250088802, not 250088899",
        "overrides.csv:7": "no decision: image_folder is empty (a folder of images/ or 'no folder')",
    }
    assert (report.manual, report.stale_overrides, report.waiting_for_review) == (2, 4, 1)
    labels = rows(config.output_path / "radiological_labels.csv")
    assert [row["patient_id"] for row in labels] == ["250088801"]  # the manual match joins its labels


def test_a_manual_decision_claims_its_folder_before_the_matcher(review_config: PreprocessConfig) -> None:
    write_overrides(review_config, "250088803.png,,LE_THI_HOA_1970_20250301,")
    match_patients(review_config)
    matches = by_report(review_config.interim_path / "matches.csv")
    assert matches["250088803.png"]["image_folder"] == "LE_THI_HOA_1970_20250301"
    hoa = matches["250088802.png"]
    assert hoa["status"] == "conflict" and hoa["reason"] == "folder already matched to patient 250088803"
    assert "250088802.png" in by_report(review_config.interim_path / "review.csv")


def test_the_review_table_goes_when_nothing_waits(review_config: PreprocessConfig) -> None:
    assert match_patients(review_config).waiting_for_review == 3
    write_overrides(review_config, "250088801.png,,PHAM_VAN_DUC_20240101,", "250088803.png,,no folder,",
                    "250088805.png,,TRAN_VAN_BINH_20250505,")
    report = match_patients(review_config)
    assert (report.waiting_for_review, report.manual, report.matched) == (0, 3, 3)
    assert not (review_config.interim_path / "review.csv").exists()


def test_contradicting_decisions_are_not_applied(review_config: PreprocessConfig) -> None:
    write_overrides(review_config, "250088801.png,,PHAM_VAN_DUC_20250101,", ",250088801,PHAM_VAN_DUC_20240101,")
    report = match_patients(review_config)
    assert by_report(review_config.interim_path / "matches.csv")["250088801.png"]["decision"] == "auto"
    stale = [r for r in rows(review_config.interim_path / "rejects.csv") if r["stage"] == "override"]
    assert [r["item"] for r in stale] == ["overrides.csv:2", "overrides.csv:3"]
    assert all("contradicting decisions" in r["reason"] for r in stale) and report.manual == 0


def test_an_overrides_file_without_its_columns_names_the_file(review_config: PreprocessConfig) -> None:
    (review_config.interim_path / "overrides.csv").write_text("report,folder\n250088801.png,X\n")
    with pytest.raises(TabularDataError, match=r"overrides\.csv: missing column\(s\) report_file"):
        match_patients(review_config)
