"""Bad input to the Phenikaa job (``spine-vision dataset phenikaa``): nothing lost, nothing leaked, one clear line.

Each test copies a small export (the synthetic root's image folders and label tables, and a patient-named
text-layer PDF report per patient, read without OCR), spoils one thing and checks the precise outcome: the rejects
row, the exit status and message, the untouched previous outputs, the bytes of a rerun.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spine_lib.cli import main
from spine_lib.core.phi import pseudonym, safe_path, spellings
from spine_lib.datasets.phenikaa import (
    PreprocessConfig,
    ReportFields,
    load_report_fields,
    preprocess,
    save_report_fields,
)
from spine_lib.datasets.phenikaa.export import DICOMDIR, DICOMDIR_SOP_CLASS, NO_SERIES, NOT_DICOM
from spine_lib.formats.phenikaa_export import LABEL_COLUMNS
from spine_lib.io.atomic import is_temporary
from spine_lib.synthetic.people import SyntheticPatient, ascii_name
from spine_lib.synthetic.reports import render_report_pdf, report_lines
from spine_lib.synthetic.truth import read_truth
from tests.phi_support import find_phi, patient_phi, scan_tree

NORMAL = {level: {"pfirrmann": 2} for level in ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")}
#: what the CLI runs in a child process (the console script's code, without its launcher)
CLI_CHILD = "import sys; from spine_lib.cli import main; main(sys.argv[1:])"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def patient(entry: dict[str, Any]) -> SyntheticPatient:
    return SyntheticPatient(entry["patient_id"], entry["full_name"], date.fromisoformat(entry["birthday"]),
                            entry["sex"], date.fromisoformat(entry["exam_date"]))


def report_file(person: SyntheticPatient) -> str:
    return f"{ascii_name(person.full_name)}_{person.exam_date:%Y%m%d}.pdf"


@pytest.fixture(scope="module")
def source(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic export's images and tables, and a patient-named text-layer PDF report for each patient."""
    data = tmp_path_factory.mktemp("phenikaa_source") / "Phenikaa"
    shutil.copytree(synthetic_root / "raw/Phenikaa/images", data / "images")
    shutil.copytree(synthetic_root / "raw/Phenikaa/tables", data / "tables")
    (data / "reports").mkdir()
    for entry in read_truth(synthetic_root, "phenikaa")["patients"]:
        person = patient(entry)
        render_report_pdf(report_lines(person, NORMAL), data / "reports" / report_file(person), text_layer=True,
                          rng=np.random.default_rng(0))
    return data


@pytest.fixture
def truth(synthetic_root: Path) -> dict[str, Any]:
    return read_truth(synthetic_root, "phenikaa")


@pytest.fixture
def config(source: Path, tmp_path: Path, truth: dict[str, Any]) -> PreprocessConfig:
    """A private copy of the export and the job's config over it (one worker, the truth's corrupted IDs)."""
    data = tmp_path / "raw/Phenikaa"
    shutil.copytree(source, data)
    return PreprocessConfig(data_path=data, output_path=tmp_path / "processed/phenikaa",
                            interim_path=tmp_path / "interim/Phenikaa", workers=1,
                            corrupted_ids=truth["corrupted_ids"])


def argv(config: PreprocessConfig, *extra: str, **changes: Path) -> list[str]:
    """The command line of ``config`` (paths replaced by ``changes``), then ``extra`` options."""
    paths = {"data_path": config.data_path, "output_path": config.output_path,
             "interim_path": config.interim_path, **changes}
    return ["dataset", "phenikaa", *(f"--{k.replace('_', '-')}={v}" for k, v in paths.items()), "--workers=1",
            *extra, "--corrupted-ids", *config.corrupted_ids]


def cli(args: list[str]) -> int:
    """Run the CLI in this process; its exit status."""
    try:
        main(args)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def tree_bytes(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders, by path, with its bytes."""
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def study(truth: dict[str, Any], index: int) -> tuple[str, list[str]]:
    """A truth patient's ID and image folder names."""
    entry = truth["patients"][index]
    return entry["patient_id"], [Path(f).name for f in entry["image_folders"]]


def reasons_of(config: PreprocessConfig, stage: str) -> dict[str, str]:
    return {r["item"]: r["reason"] for r in rows(config.interim_path / "rejects.csv") if r["stage"] == stage}


def write_dicomdir(path: Path) -> None:
    """A DICOMDIR-class file carrying a patient name, as export media index their studies."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DICOMDIR_SOP_CLASS  # pyright: ignore[reportAttributeAccessIssue]
    meta.MediaStorageSOPInstanceUID = generate_uid()  # pyright: ignore[reportAttributeAccessIssue]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian  # pyright: ignore[reportAttributeAccessIssue]
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.PatientName = "NGUYEN^THANH^MANH^TAM"
    dataset.save_as(path, enforce_file_format=True)


# ------------------------------------------------------------------------------------------------ PHI
def test_label_columns_outside_the_allow_list_are_never_exported(config: PreprocessConfig,
                                                                 truth: dict[str, Any]) -> None:
    tables = config.data_path / "tables"
    frame = pd.concat([pd.read_excel(p, dtype=object) for p in sorted(tables.glob("*.xlsx"))], ignore_index=True)
    people = {e["patient_id"]: e for e in truth["patients"]}
    known = frame["Patient ID"].astype(str).map(people.get)
    frame["Họ tên"] = [e["full_name"] if e else "Lê Văn An" for e in known]
    frame["Ngày sinh"] = [date.fromisoformat(e["birthday"]).strftime("%d/%m/%Y") if e else "01/02/1960" for e in known]
    frame["Địa chỉ"] = "Hà Đông, Hà Nội"
    frame["Level"] = "L9/L9"  # a table's own level column does not overrule the top-down conversion
    for path in tables.glob("*.xlsx"):
        path.unlink()
    frame.to_csv(tables / "labels.csv", index=False)
    report = preprocess(config)
    labels = config.output_path / "radiological_labels.csv"
    with labels.open(encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    assert header == list(LABEL_COLUMNS)
    assert report.label_columns_dropped == 3 and report.label_rows == 6 * 5 - 1
    assert {r["level"] for r in rows(labels)} == {"L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"}
    forms = {f for e in truth["patients"] for f in spellings(e["full_name"])} | spellings("Lê Văn An")
    forms |= {date.fromisoformat(e["birthday"]).strftime("%d/%m/%Y") for e in truth["patients"]} | {"01/02/1960"}
    forms |= {"Hà Đông", "Ha Dong"}
    assert not scan_tree(config.output_path, forms)


def test_the_export_holds_no_name_or_birthday_in_any_file_or_header(config: PreprocessConfig,
                                                                    synthetic_root: Path,
                                                                    truth: dict[str, Any]) -> None:
    pid, folders = study(truth, 0)
    first = sorted((config.data_path / "images" / folders[0]).rglob("*.dcm"))[0]
    dataset = pydicom.dcmread(first)
    dataset.OtherPatientNames = ascii_name(truth["patients"][0]["full_name"]).replace("_", "^")
    dataset.PatientBirthTime = "101500"
    dataset.save_as(first, enforce_file_format=True)
    assert "PatientBirthDate" in dataset  # the hospital's files carry the birthday...
    preprocess(config)
    assert not scan_tree(config.output_path, patient_phi(synthetic_root))
    exported = [pydicom.dcmread(p) for p in sorted((config.output_path / "images" / pid).rglob("*.dcm"))]
    assert len(exported) == len(list((config.data_path / "images" / folders[0]).rglob("*.dcm")))
    for header in exported:  # ...the export does not
        assert str(header.PatientName) == header.PatientID == pid
        assert not {"PatientBirthDate", "PatientBirthTime", "OtherPatientNames"} & set(header.dir())


def test_an_unreadable_patient_named_report_gets_a_reason_without_the_name(config: PreprocessConfig) -> None:
    from spine_lib.errors import SpineVisionError
    from spine_lib.ocr.document import DocumentExtractor

    scan = config.reports_path / "LE_THI_HOA_20250301.png"
    scan.write_bytes(b"not an image")
    with pytest.raises(SpineVisionError) as error:  # the library's message quotes the path, name and all
        DocumentExtractor().extract(scan)
    assert "LE_THI_HOA" in error.value.cause
    report = preprocess(config)
    record = {r.report_file: r for r in load_report_fields(config.interim_path)}[scan.name]
    assert record.status == "rejected" and record.reason.startswith("unreadable: cannot read image")
    assert "LE_THI_HOA" not in record.reason and pseudonym(scan.name) in record.reason
    rejected = reasons_of(config, "report")
    assert rejected[safe_path(scan.name)] == record.reason
    text = (config.interim_path / "rejects.csv").read_text(encoding="utf-8")
    assert not find_phi(text, spellings("Lê Thị Hoa"), "rejects.csv")
    assert not find_phi(json.dumps(report.as_metadata()), spellings("Lê Thị Hoa"), "metadata")


def test_a_stored_reason_quoting_a_path_is_redacted_when_read_back(tmp_path: Path) -> None:
    name = "LE_THI_HOA_20250301.png"
    save_report_fields(ReportFields(report_file=name, report_format="png", status="rejected",
                                    reason=f"unreadable: cannot identify image file '/in/{name}'"), tmp_path)
    (record,) = load_report_fields(tmp_path)
    assert record.reason == f"unreadable: cannot identify image file '/in/{pseudonym(name)}'"


def test_no_rejects_row_names_a_patient(config: PreprocessConfig, truth: dict[str, Any]) -> None:
    _, folders = study(truth, 0)
    images = config.data_path / "images"
    (images / folders[0] / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (images / "LE VAN AN").mkdir()  # a folder whose name fits no pattern
    (images / "HOANG_VAN_NAM_20250101").mkdir()  # a study no report claims
    (config.reports_path / "LE_VAN_AN notes.docx").write_bytes(b"PK")  # not a report
    stranger = SyntheticPatient("250099001", "Phạm Văn Đức", date(1970, 1, 2), "Nam", date(2025, 1, 1))
    render_report_pdf(report_lines(stranger, NORMAL), config.reports_path / report_file(stranger), text_layer=True,
                      rng=np.random.default_rng(0))  # a report with no folder
    config.interim_path.mkdir(parents=True)
    (config.interim_path / "overrides.csv").write_text(
        f"report_file,patient_id,image_folder,note\n{report_file(stranger)},,PHAM_VAN_DUC_20990101,\n")
    report = preprocess(config)
    table = rows(config.interim_path / "rejects.csv")
    stages = {r["stage"] for r in table}
    assert {"report", "match", "image_folder", "image_file", "override", "label_table"} <= stages
    forms = {f for name in ("Lê Văn An", "Hoàng Văn Nam", "Phạm Văn Đức") for f in spellings(name)}
    forms |= {f for e in truth["patients"] for f in spellings(e["full_name"])}
    text = (config.interim_path / "rejects.csv").read_text(encoding="utf-8")
    assert not find_phi(text, forms, "rejects.csv")
    assert not find_phi(json.dumps(report.as_metadata()), forms, "metadata")
    assert reasons_of(config, "image_folder")[safe_path("HOANG_VAN_NAM_20250101")] == "no report matched this folder"


# ------------------------------------------------------------------------------- stray and empty folders
@pytest.mark.parametrize("mode", ["anonymized", "copy"])
def test_stray_files_in_an_image_folder_are_skipped_and_recorded(config: PreprocessConfig, truth: dict[str, Any],
                                                                 mode: str) -> None:
    pid, folders = study(truth, 0)
    folder = config.data_path / "images" / folders[0]
    dicoms = sorted(folder.rglob("*.dcm"))
    series = dicoms[0].parent.name
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500)
    (folder / series / "README.txt").write_text("exported by the PACS", encoding="utf-8")
    write_dicomdir(folder / "DICOMDIR")
    (folder / series / "99.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    assert cli(argv(config, f"--image-export={mode}")) == 0
    files = reasons_of(config, "image_file")
    shown = safe_path(folders[0])
    assert files[f"{shown}/Thumbs.db"] == NOT_DICOM
    assert files[f"{shown}/{series}/README.txt"] == NOT_DICOM
    assert files[f"{shown}/DICOMDIR"] == DICOMDIR
    assert files[f"{shown}/{series}/99.dcm"].startswith("unreadable DICOM file")
    assert len(files) == 4
    out = config.output_path / "images" / pid
    exported = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert exported == sorted(p.relative_to(folder).as_posix() for p in dicoms)  # every DICOM file, nothing else
    assert len({r["patient_id"] for r in rows(config.output_path / "radiological_labels.csv")}) == 6


def test_an_empty_image_folder_rejects_its_patient_and_labels(config: PreprocessConfig,
                                                              truth: dict[str, Any]) -> None:
    pid, folders = study(truth, 0)
    preprocess(config)
    before = [r for r in rows(config.output_path / "radiological_labels.csv") if r["patient_id"] == pid]
    assert before and (config.output_path / "images" / pid).is_dir()
    folder = config.data_path / "images" / folders[0]
    shutil.rmtree(folder)
    folder.mkdir()
    report = preprocess(config)
    assert report.patients_without_images == 1 and report.patients_exported == 5
    assert not (config.output_path / "images" / pid).exists()  # the previous run's copy goes too
    assert pid not in {r["patient_id"] for r in rows(config.output_path / "radiological_labels.csv")}
    assert reasons_of(config, "image_folder")[safe_path(folders[0])].startswith(f"{NO_SERIES} (patient {pid})")
    labels = {k: v for k, v in reasons_of(config, "label_table").items() if k.startswith(f"patient {pid} ")}
    assert len(labels) == len(before) and set(labels.values()) == {f"the patient's {NO_SERIES}"}


def test_a_folder_of_stray_files_only_has_no_series(config: PreprocessConfig, truth: dict[str, Any]) -> None:
    pid, folders = study(truth, 0)
    folder = config.data_path / "images" / folders[0]
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    preprocess(config)
    assert reasons_of(config, "image_file") == {f"{safe_path(folders[0])}/Thumbs.db": NOT_DICOM}
    assert reasons_of(config, "image_folder")[safe_path(folders[0])].startswith(NO_SERIES)
    assert not (config.output_path / "images" / pid).exists()


def test_a_repeat_export_stands_in_for_an_empty_first_one(config: PreprocessConfig, truth: dict[str, Any]) -> None:
    pid, folders = study(truth, 3)
    assert len(folders) == 2  # the study exported twice
    preprocess(config)
    clean = tree_bytes(config.output_path / "images" / pid)
    first = config.data_path / "images" / folders[0]
    shutil.rmtree(first)
    first.mkdir()
    report = preprocess(config)
    assert report.patients_without_images == 0
    again = tree_bytes(config.output_path / "images" / pid)
    assert again == clean and len(clean) > 10


# ------------------------------------------------------------------------- configuration and broken input
@pytest.mark.parametrize("where", ["output_path", "interim_path", "above_output"])
def test_an_output_path_that_is_a_file_exits_2_naming_it(config: PreprocessConfig, tmp_path: Path, where: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    path = blocker / "phenikaa" if where == "above_output" else blocker
    changes = {("output_path" if where == "above_output" else where): path}
    assert cli(argv(config, **changes)) == 2
    err = capsys.readouterr().err
    assert "InputPathError" in err and str(blocker) in err and ("is a file" in err or "a file, not a folder" in err)
    assert "Traceback" not in err
    assert blocker.read_text() == "keep me"
    assert not config.output_path.exists() and not config.interim_path.exists()  # failed before any write


@pytest.mark.parametrize("breakage", ["tables unreadable", "images gone", "overrides malformed"])
def test_a_broken_input_leaves_the_previous_outputs_untouched(config: PreprocessConfig, breakage: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(argv(config)) == 0
    before = tree_bytes(config.output_path, config.interim_path)
    if breakage == "tables unreadable":
        for table in (config.data_path / "tables").iterdir():
            table.write_bytes(b"PK\x03\x04 truncated")
        named = "labels_part1.xlsx"
    elif breakage == "images gone":
        shutil.rmtree(config.data_path / "images")
        named = str(config.data_path / "images")
    else:
        (config.interim_path / "overrides.csv").write_text("report,folder\nX.pdf,Y\n")
        named = "overrides.csv"
        before = tree_bytes(config.output_path, config.interim_path)
    capsys.readouterr()
    assert cli(argv(config)) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert tree_bytes(config.output_path, config.interim_path) == before


# --------------------------------------------------------------------------------- hard stop, temporaries
def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """The CLI in a child process of its own session, SIGINT and SIGTERM at their defaults."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", CLI_CHILD, *args], stdout=out, stderr=subprocess.STDOUT,
                                cwd=log.parent, start_new_session=True, preexec_fn=_default_signals)


def comparable(folder: Path) -> dict[str, object]:
    """Every file under ``folder`` by relative path: its bytes, or for the report records and table their content
    without ``ocr_seconds`` (the time a read took, different in every run)."""
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        key = path.relative_to(folder).as_posix()
        if path.parent.name == "reports" and path.suffix == ".json":
            found[key] = {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k != "ocr_seconds"}
        elif path.name == "report_fields.csv":
            found[key] = [{k: v for k, v in row.items() if k != "ocr_seconds"} for row in rows(path)]
        else:
            found[key] = path.read_bytes()
    return found


def test_a_run_killed_mid_export_then_rerun_equals_an_uninterrupted_run(config: PreprocessConfig,
                                                                        tmp_path: Path) -> None:
    reference = config.model_copy(update={"output_path": tmp_path / "reference/out",
                                          "interim_path": tmp_path / "reference/interim"})
    preprocess(reference)  # the uninterrupted run

    images = config.output_path / "images"
    run = start(argv(config), tmp_path / "killed.log")
    labels_at_kill = True
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            if images.is_dir() and any(p.is_dir() and not is_temporary(p) for p in images.iterdir()):
                labels_at_kill = (config.output_path / "radiological_labels.csv").exists()
                os.killpg(run.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == -signal.SIGKILL, "the run ended before the export began"
    assert not labels_at_kill  # killed mid-way: some patients exported, the labels not written yet

    assert cli(argv(config)) == 0  # the rerun
    assert comparable(config.output_path) == comparable(reference.output_path)
    assert comparable(config.interim_path) == comparable(reference.interim_path)
    left = [p for folder in (config.output_path, config.interim_path) for p in folder.rglob("*") if is_temporary(p)]
    assert not left


def test_temporaries_and_broken_records_of_an_interrupted_run_are_cleared(config: PreprocessConfig) -> None:
    preprocess(config)
    reference = comparable(config.output_path)
    records = config.interim_path / "reports"
    first = sorted(records.glob("*.json"))[0]
    first.write_text('{"report_file": "cut sh', encoding="utf-8")  # a record cut short
    planted = [
        config.output_path / "images" / ".250010139.ab12cd34.tmp",
        config.output_path / f".radiological_labels.{'0' * 32}.tmp.csv",
        config.interim_path / f".rejects.{'1' * 32}.tmp.csv",
        records / f".X.pdf.{'2' * 32}.tmp.pdf.json",
    ]
    planted[0].mkdir()
    (planted[0] / "1.dcm").write_bytes(b"half")
    for path in planted[1:]:
        path.write_text('{"report_fi', encoding="utf-8")
    report = preprocess(config)
    assert report.reports_ok == 6
    assert not any(p.exists() for p in planted)
    assert json.loads(first.read_text(encoding="utf-8"))["status"] == "ok"  # read again
    assert comparable(config.output_path) == reference


# -------------------------------------------------------------------------------------------- accounting
def test_every_input_item_ends_exported_or_rejected(config: PreprocessConfig, truth: dict[str, Any]) -> None:
    images = config.data_path / "images"
    pid_stray, stray_folders = study(truth, 0)
    _, empty_folders = study(truth, 1)
    gone = patient(truth["patients"][2])
    (images / stray_folders[0] / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    for name in empty_folders:
        shutil.rmtree(images / name)
        (images / name).mkdir()
    (config.reports_path / report_file(gone)).unlink()  # its folder waits for its report
    (images / "not a study").mkdir()
    (config.reports_path / "notes.txt").write_text("ghi chú", encoding="utf-8")
    report = preprocess(config)
    rejects = rows(config.interim_path / "rejects.csv")
    matches = rows(config.interim_path / "matches.csv")

    inbox = {safe_path(p.name) for p in config.reports_path.iterdir()}
    matched = {safe_path(m["report_file"]) for m in matches if m["status"] == "matched"}
    rejected = [r["item"] for r in rejects if r["stage"] in ("report", "match")]
    assert len(inbox) == len(matched) + len(rejected) and inbox == matched | set(rejected)

    exported = {m["patient_id"] for m in matches} & {p.name for p in (config.output_path / "images").iterdir()}
    exported_folders = [f for m in matches if m["patient_id"] in exported
                        for f in [m["image_folder"], *filter(None, m["repeat_folders"].split(";"))]]
    folder_rejects = [r["item"] for r in rejects if r["stage"] == "image_folder"]
    assert len(list(images.iterdir())) == len(exported_folders) + len(folder_rejects)
    assert {safe_path(p.name) for p in images.iterdir()} == {safe_path(f) for f in exported_folders} | set(
        folder_rejects)

    source_rows = sum(len(pd.read_excel(p)) for p in (config.data_path / "tables").glob("*.xlsx"))
    label_rows = rows(config.output_path / "radiological_labels.csv")
    label_rejects = [r for r in rejects if r["stage"] == "label_table"]
    assert source_rows == len(label_rows) + len(label_rejects)

    stray = images / stray_folders[0]
    files = [p for p in stray.rglob("*") if p.is_file()]
    copied = [p for p in (config.output_path / "images" / pid_stray).rglob("*") if p.is_file()]
    skipped = [r for r in rejects if r["stage"] == "image_file" and r["item"].startswith(safe_path(stray.name))]
    assert len(files) == len(copied) + len(skipped) and len(skipped) == 1
    assert (report.patients_exported, report.patients_without_images) == (4, 1)
