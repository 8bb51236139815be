"""Step 1: each report read once, when it arrives, into a :class:`ReportFields` record (PHI: interim only).

``<interim>/reports/<report file>.json`` per report and ``<interim>/report_fields.csv`` for all of them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spine_lib.core.markdown import markdown_table
from spine_lib.datasets.phenikaa.config import PreprocessConfig
from spine_lib.datasets.phenikaa.inbox import report_files
from spine_lib.errors import SpineVisionError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.io.records import write_records_csv
from spine_lib.sources.phenikaa import BIRTHDAY_LABEL, ID_LABEL, NAME_LABEL

if TYPE_CHECKING:
    from spine_lib.ocr.document import DocumentExtractor

#: Interim files of this step.
RECORDS_FOLDER = "reports"
REPORT_TABLE_FILE = "report_fields.csv"
FIELDS_REGION = (0.1, 0.27)  # the patient fields sit below the hospital header: OCR that band first


REPORT_FIELD_COLUMNS = [
    "report_file", "report_format", "patient_id", "patient_name", "birthday", "exam_date", "status", "reason",
]


@dataclass
class ReportFields:
    """What one report says about its patient (PHI: stays in the interim folder)."""

    report_file: str
    report_format: str  # png, pdf_text, pdf_ocr, ...
    patient_id: str | None = None
    patient_name: str | None = None
    birthday: str | None = None  # ISO date
    exam_date: str | None = None  # ISO date
    status: str = "ok"  # ok | rejected
    reason: str = ""
    ocr_seconds: float = 0.0
    source_mtime_ns: int = 0
    source_size: int = 0


def make_extractor(config: PreprocessConfig) -> DocumentExtractor:
    """The document extractor with the configured OCR engine (Tesseract unless ``paddle`` is asked for)."""
    from spine_lib.ocr.document import DocumentExtractor

    if config.ocr_engine == "paddle":
        from spine_lib.ocr.vietocr_paddle import PaddleVietOCREngine

        device = "cuda:0" if config.use_gpu else "cpu"
        engine = PaddleVietOCREngine(config.det_model_dir, config.rec_weights, device=device)
        return DocumentExtractor(engine=engine, pdf_dpi=config.pdf_dpi)
    return DocumentExtractor(pdf_dpi=config.pdf_dpi)


def read_report(path: Path, extractor: DocumentExtractor, threshold: float = 80) -> ReportFields:
    """Read one report's patient fields; problems end in ``status='rejected'`` with a reason, never raise."""
    from spine_lib.matching.fuzzy import (
        fuzzy_value_extract,
        parse_birthday,
        parse_exam_date_line,
        parse_report_filename,
    )

    stat = path.stat()
    fields = ReportFields(report_file=path.name, report_format=path.suffix.lower().lstrip("."),
                          source_mtime_ns=stat.st_mtime_ns, source_size=stat.st_size)
    named = parse_report_filename(path)
    if named.kind == "unknown":
        return reject(fields, "file name is neither a patient ID nor NAME[_YYYYMMDD]")
    start = time.perf_counter()
    try:
        document = extractor.extract(path, region=FIELDS_REGION, first_page_only=True)
        lines = [line.text for line in document.lines]
        name = fuzzy_value_extract(lines, NAME_LABEL, threshold)
        birthday_text = fuzzy_value_extract(lines, BIRTHDAY_LABEL, threshold)
        text_id = fuzzy_value_extract(lines, ID_LABEL, threshold)
        if document.source != "text_layer" and not (name and birthday_text and (text_id or named.patient_id)):
            document = extractor.extract(path)  # fields not all in the top band: read the whole document
            lines = [line.text for line in document.lines]
            name = fuzzy_value_extract(lines, NAME_LABEL, threshold)
            birthday_text = fuzzy_value_extract(lines, BIRTHDAY_LABEL, threshold)
            text_id = fuzzy_value_extract(lines, ID_LABEL, threshold)
    except SpineVisionError as error:
        fields.ocr_seconds = time.perf_counter() - start
        return reject(fields, f"unreadable: {error.cause}")
    fields.ocr_seconds = time.perf_counter() - start
    if fields.report_format == "pdf":
        fields.report_format = "pdf_text" if document.source == "text_layer" else "pdf_ocr"
    digits = "".join(ch for ch in (text_id or "") if ch.isdigit())
    fields.patient_id = named.patient_id or (digits or None)
    fields.patient_name = (name or "").strip() or named.name
    birthday = parse_birthday(birthday_text)
    exam = named.exam_date or parse_exam_date_line(lines)
    if exam is None and document.source == "ocr":
        # The date line closes the report: read just the last line of text rather than the whole page.
        try:
            tail = extractor.extract(path, region="last_line", first_page_only=True)
            exam = parse_exam_date_line([line.text for line in tail.lines])
        except SpineVisionError:
            exam = None
        fields.ocr_seconds = time.perf_counter() - start
    fields.birthday = birthday.isoformat() if birthday else None
    fields.exam_date = exam.isoformat() if exam else None
    if not lines:
        return reject(fields, "no text found (blank or unreadable page)")
    if not fields.patient_name:
        return reject(fields, "no patient name in the report")
    if not fields.patient_id:
        return reject(fields, "no patient ID (Số phiếu) in the report")
    if birthday is None:
        # the unparsable text itself stays out of the reason: reasons travel to logs and Dagster metadata
        return reject(fields, "unparsable birthday" if birthday_text else "no birthday in the report")
    return fields


def reject(fields: ReportFields, reason: str) -> ReportFields:
    fields.status, fields.reason = "rejected", reason
    return fields


def report_record_path(interim: Path, report_file: str) -> Path:
    return interim / RECORDS_FOLDER / f"{report_file}.json"


def save_report_fields(fields: ReportFields, interim: Path) -> Path:
    """Store one report's fields as ``<interim>/reports/<report file>.json`` (atomic; rerun overwrites)."""
    return atomic_write_text(report_record_path(interim, fields.report_file),
                             json.dumps(asdict(fields), ensure_ascii=False, indent=1, sort_keys=True) + "\n")


def load_report_fields(interim: Path, reports: Path | None = None) -> list[ReportFields]:
    """Every stored report record (only those whose report file still exists, when ``reports`` is given)."""
    folder = interim / RECORDS_FOLDER
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        if reports is None or (reports / data["report_file"]).is_file():
            records.append(ReportFields(**data))
    return records


def write_report_table(records: list[ReportFields], interim: Path) -> Path:
    """All stored report records as ``<interim>/report_fields.csv`` (one row per report; PHI stays there)."""
    path = interim / REPORT_TABLE_FILE
    write_records_csv([asdict(r) for r in records], path,
                      columns=[*REPORT_FIELD_COLUMNS, "ocr_seconds", "source_mtime_ns", "source_size"])
    return path


def report_table_preview(records: list[ReportFields], rows: int = 10) -> str:
    """A markdown preview of the report table without names: format, patient ID, initials, status."""
    return markdown_table(["report", "format", "patient_id", "initials", "status"],
                          [[i, r.report_format, r.patient_id or "", masked_name(r.patient_name), r.status]
                           for i, r in enumerate(records[:rows])])


def masked_name(name: str | None) -> str:
    """A name reduced to its initials (``NGUYỄN VĂN SƠN`` -> ``N. V. S.``): enough to eyeball, not to identify."""
    return " ".join(f"{word[0]}." for word in (name or "").split() if word)


def process_reports(config: PreprocessConfig, only_new: bool = True) -> list[ReportFields]:
    """Read every report of the inbox not yet read (or changed since), storing each record.

    ``config.workers`` processes read reports in parallel (OCR is CPU-bound and single-threaded per page).
    """
    done = {r.report_file: r for r in load_report_fields(config.interim_path)}
    results: dict[str, ReportFields] = {}
    todo: list[Path] = []
    for path in report_files(config.reports_path):
        stat = path.stat()
        previous = done.get(path.name)
        if only_new and previous and (previous.source_mtime_ns, previous.source_size) == (stat.st_mtime_ns, stat.st_size):
            results[path.name] = previous
        else:
            todo.append(path)
    if config.workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=config.workers) as pool:
            for fields in pool.map(read_and_save_report, todo, [config] * len(todo), chunksize=4):
                results[fields.report_file] = fields
    else:
        extractor = make_extractor(config) if todo else None
        for path in todo:
            assert extractor is not None
            fields = read_report(path, extractor, config.report_fuzzy_threshold)
            save_report_fields(fields, config.interim_path)
            results[path.name] = fields
    return [results[name] for name in sorted(results)]


_WORKER_EXTRACTORS: dict[str, DocumentExtractor] = {}


def read_and_save_report(path: Path, config: PreprocessConfig) -> ReportFields:
    """One report read and stored, in a worker process (the extractor is built once per process)."""
    key = config.ocr_engine
    if key not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS[key] = make_extractor(config)
    fields = read_report(path, _WORKER_EXTRACTORS[key], config.report_fuzzy_threshold)
    save_report_fields(fields, config.interim_path)
    return fields
