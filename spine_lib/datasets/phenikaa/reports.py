"""Step 1: each report read once, when it arrives, into a :class:`ReportFields` record (PHI: interim only).

``<interim>/reports/<report file>.json`` per report and ``<interim>/report_fields.csv`` for all of them: patient ID,
name (``name_cleaned`` when stray symbols were stripped from it), birthday, birth year (also when the report gives
the year alone), exam date, status and reason.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spine_lib.core.markdown import markdown_table
from spine_lib.core.phi import redact
from spine_lib.datasets.phenikaa.config import PreprocessConfig
from spine_lib.datasets.phenikaa.inbox import report_files
from spine_lib.errors import SpineVisionError
from spine_lib.io.atomic import atomic_write_text, is_temporary, sweep_temporaries
from spine_lib.io.records import write_records_csv

if TYPE_CHECKING:
    from spine_lib.matching.fields import FormFields
    from spine_lib.matching.fuzzy import ReportName
    from spine_lib.ocr.document import DocumentExtractor, DocumentText

#: Interim files of this step.
RECORDS_FOLDER = "reports"
REPORT_TABLE_FILE = "report_fields.csv"
FIELDS_REGION = (0.1, 0.27)  # the patient fields sit below the hospital header: OCR that band first


REPORT_FIELD_COLUMNS = [
    "report_file", "report_format", "patient_id", "patient_name", "name_cleaned", "birthday", "birth_year",
    "exam_date", "status", "reason",
]


@dataclass
class ReportFields:
    """What one report says about its patient (PHI: stays in the interim folder)."""

    report_file: str
    report_format: str  # png, pdf_text, pdf_ocr, ...
    patient_id: str | None = None
    patient_name: str | None = None
    birthday: str | None = None  # ISO date; None when the report gives the year only
    exam_date: str | None = None  # ISO date
    status: str = "ok"  # ok | rejected
    reason: str = ""
    ocr_seconds: float = 0.0
    source_mtime_ns: int = 0
    source_size: int = 0
    birth_year: int | None = None  # the birthday's year, or the year a "Năm sinh" field gives alone
    name_cleaned: bool = False  # stray symbols (a stamp's ink, OCR noise) were stripped from the name


def make_extractor(config: PreprocessConfig) -> DocumentExtractor:
    """The document extractor with the configured OCR engine (Tesseract unless ``paddle`` is asked for)."""
    from spine_lib.ocr.document import DocumentExtractor

    if config.ocr_engine == "paddle":
        from spine_lib.ocr.vietocr_paddle import PaddleVietOCREngine

        device = "cuda:0" if config.use_gpu else "cpu"
        engine = PaddleVietOCREngine(config.det_model_dir, config.rec_weights, device=device)
        return DocumentExtractor(engine=engine, pdf_dpi=config.pdf_dpi)
    return DocumentExtractor(pdf_dpi=config.pdf_dpi)


def _lines(document: DocumentText) -> list[str]:
    return [line.text for line in document.lines]


def _incomplete(found: FormFields, named: ReportName) -> bool:
    """A field the report must give is missing (the file name may give the ID)."""
    return (
        found.name is None
        or (found.patient_id is None and named.patient_id is None)
        or (found.birthday is None and found.birth_year is None)
    )


def read_form(
    path: Path, extractor: DocumentExtractor, named: ReportName, threshold: float = 80
) -> tuple[str, list[str], FormFields]:
    """The report's source (``text_layer`` | ``ocr``), the lines read and the fields found in them.

    The field band of page 1 first (a PDF text layer: page 1 whole); when it misses a field, the whole document
    (whose reading then comes first).
    When the exam date is still missing (and the file name does not give it): the last line of ink of each page
    (cheap, where the date line closes the report), then the whole document (a date line above a signature
    block, a date on another page).
    """
    from spine_lib.matching.fields import extract_fields, find_exam_date

    first = extractor.extract(path, region=FIELDS_REGION, first_page_only=True)
    lines = _lines(first)
    found = extract_fields(lines, threshold)
    whole = False
    if _incomplete(found, named):  # another layout: the whole page's reading first, the band's fills its gaps
        lines = _lines(extractor.extract(path))
        found = extract_fields(lines, threshold).merged(found)
        whole = True
    if named.exam_date is None and found.exam_date is None and not whole:
        if first.source == "ocr":
            found.exam_date = find_exam_date(
                _lines(extractor.extract(path, region="last_line")), threshold
            )
        if found.exam_date is None:
            lines = _lines(extractor.extract(path))
            found = found.merged(extract_fields(lines, threshold))
    return first.source, lines, found


def read_report(path: Path, extractor: DocumentExtractor, threshold: float = 80) -> ReportFields:
    """Read one report's patient fields; problems end in ``status='rejected'`` with a reason, never raise.

    Fields come from :func:`~spine_lib.matching.fields.extract_fields` (any form layout and label wording):
    the patient ID from the file name or the text, the name from the text (else the file name), the birthday
    or its year alone, the exam date from the file name or the text. Reasons never quote what was read, and a
    library's error message is redacted (:func:`reject`).
    """
    from spine_lib.matching.fuzzy import parse_report_filename

    stat = path.stat()
    fields = ReportFields(report_file=path.name, report_format=path.suffix.lower().lstrip("."),
                          source_mtime_ns=stat.st_mtime_ns, source_size=stat.st_size)
    if stat.st_size == 0:
        return reject(fields, "empty file (0 bytes)")
    named = parse_report_filename(path)
    if named.kind == "unknown":
        return reject(fields, "file name is neither a patient ID nor NAME[_YYYYMMDD]")
    start = time.perf_counter()
    try:
        source, lines, found = read_form(path, extractor, named, threshold)
    except SpineVisionError as error:
        fields.ocr_seconds = time.perf_counter() - start
        return reject(fields, f"unreadable: {error.cause}")
    except OSError as error:  # the file went or cannot be opened while it is read
        fields.ocr_seconds = time.perf_counter() - start
        return reject(fields, f"unreadable: {error.strerror or type(error).__name__}")
    fields.ocr_seconds = time.perf_counter() - start
    if fields.report_format == "pdf":
        fields.report_format = "pdf_text" if source == "text_layer" else "pdf_ocr"
    fields.patient_id = named.patient_id or found.patient_id
    fields.patient_name = found.name or named.name
    fields.name_cleaned = found.name is not None and found.name_cleaned
    exam = named.exam_date or found.exam_date
    fields.birthday = found.birthday.isoformat() if found.birthday else None
    fields.birth_year = found.birth_year
    fields.exam_date = exam.isoformat() if exam else None
    if not lines:
        return reject(fields, "no text found (blank or unreadable page)")
    if not fields.patient_name:
        if "name" in found.labelled:
            return reject(fields, "unreadable patient name (not two words of letters)")
        return reject(fields, "no patient name in the report")
    if not fields.patient_id:
        if "patient_id" in found.labelled:
            return reject(fields, "unreadable patient ID (Số phiếu: not 6-12 digits)")
        return reject(fields, "no patient ID (Số phiếu) in the report")
    if found.birth_year is None:
        labelled = "birthday" in found.labelled
        return reject(fields, "unparsable birthday" if labelled else "no birthday in the report")
    return fields


def reject(fields: ReportFields, reason: str) -> ReportFields:
    """``fields`` marked rejected; the reason redacted (no patient-named path in it), as every stored reason is."""
    fields.status, fields.reason = "rejected", redact(reason, paths=[fields.report_file])
    return fields


def _record(data: dict[str, Any]) -> ReportFields:
    """A stored record; its reason redacted again (a record written by an older version may quote a path)."""
    fields = ReportFields(**data)
    if not isinstance(fields.report_file, str) or not isinstance(fields.reason, str):
        raise TypeError("a report record's report_file and reason are text")
    fields.reason = redact(fields.reason, paths=[fields.report_file])
    return fields


def report_record_path(interim: Path, report_file: str) -> Path:
    return interim / RECORDS_FOLDER / f"{report_file}.json"


def save_report_fields(fields: ReportFields, interim: Path) -> Path:
    """Store one report's fields as ``<interim>/reports/<report file>.json`` (atomic; rerun overwrites)."""
    return atomic_write_text(report_record_path(interim, fields.report_file),
                             json.dumps(asdict(fields), ensure_ascii=False, indent=1, sort_keys=True) + "\n")


def load_report_fields(interim: Path, reports: Path | None = None) -> list[ReportFields]:
    """Every stored report record (only those whose report file still exists, when ``reports`` is given).

    A record that cannot be read (cut short by a killed run, edited by hand) counts as absent, as in
    :func:`current_record`: its report is read again; temporaries of an interrupted write are not records.
    """
    folder = interim / RECORDS_FOLDER
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if is_temporary(path):
            continue
        try:
            fields = _record(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if reports is None or (reports / fields.report_file).is_file():
            records.append(fields)
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


def current_record(interim: Path, path: Path) -> ReportFields | None:
    """The stored record of this version of the report file, or ``None`` when it must be read (again).

    The one definition of "done" that the CLI, the Dagster asset, its sensor and the demo share: a record exists
    for the file's name and was read from a file of the same modification time and size. An unreadable record
    counts as absent.
    """
    record = report_record_path(interim, path.name)
    try:
        stat = path.stat()
        fields = _record(json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return fields if (fields.source_mtime_ns, fields.source_size) == (stat.st_mtime_ns, stat.st_size) else None


@dataclass
class ReportOutcome:
    """One report brought up to date: its record and whether it was read now (``False``: the record was current)."""

    fields: ReportFields
    read: bool


def read_new_reports(config: PreprocessConfig, paths: list[Path], only_new: bool = True) -> list[ReportOutcome]:
    """Bring the records of these report files up to date: each file without a :func:`current_record` is read
    and its record stored; the others are left as they are (unless ``only_new`` is off). Input order is kept.

    ``config.workers`` processes read reports in parallel (OCR is CPU-bound and single-threaded per page).
    """
    config.check_output_folders()
    outcomes: dict[Path, ReportOutcome] = {}
    todo: list[Path] = []
    for path in paths:
        previous = current_record(config.interim_path, path) if only_new else None
        if previous is not None:
            outcomes[path] = ReportOutcome(previous, read=False)
        else:
            todo.append(path)
    if config.workers > 1 and len(todo) > 1:
        from spine_lib.core.processes import worker_pool

        with worker_pool(min(config.workers, len(todo)), [__name__]) as pool:
            for path, fields in zip(todo, pool.map(read_and_save_report, todo, [config] * len(todo), chunksize=4),
                                    strict=True):
                outcomes[path] = ReportOutcome(fields, read=True)
    else:
        extractor = make_extractor(config) if todo else None
        for path in todo:
            assert extractor is not None
            fields = read_report(path, extractor, config.report_fuzzy_threshold)
            save_report_fields(fields, config.interim_path)
            outcomes[path] = ReportOutcome(fields, read=True)
    return [outcomes[path] for path in paths]


def process_reports(config: PreprocessConfig, only_new: bool = True) -> list[ReportFields]:
    """Read every report of the inbox not yet read (or changed since, :func:`current_record`), storing each record;
    returns every report's record in file-name order. Temporaries an interrupted run left among the records go
    first."""
    config.check_output_folders()
    sweep_temporaries(config.interim_path / RECORDS_FOLDER)
    return [outcome.fields for outcome in read_new_reports(config, report_files(config.reports_path), only_new)]


_WORKER_EXTRACTORS: dict[str, DocumentExtractor] = {}


def read_and_save_report(path: Path, config: PreprocessConfig) -> ReportFields:
    """One report read and stored, in a worker process (the extractor is built once per process)."""
    key = config.ocr_engine
    if key not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS[key] = make_extractor(config)
    fields = read_report(path, _WORKER_EXTRACTORS[key], config.report_fuzzy_threshold)
    save_report_fields(fields, config.interim_path)
    return fields
