"""Phenikaa export -> per-report fields (OCR) -> patients matched to image folders and label tables.

Two steps, so that each report is read once, when it arrives:

1. :func:`read_report` reads one report (ID-named PNG scan or patient-named PDF) into :class:`ReportFields` and
   :func:`save_report_fields` stores it as ``<interim>/reports/<report file>.json``.
2. :func:`match_patients` gathers every stored report, matches patients to image folders, joins the label
   tables and writes the dataset: ``<output>/radiological_labels.csv`` and ``<output>/images/<patient_id>/``
   (identified by patient ID only), plus ``report_fields.csv``, ``matches.csv`` and ``rejects.csv`` in the
   interim folder, the only place where names and birthdays are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro
from pydantic import Field

from spine_lib.core.config import BaseConfig
from spine_lib.errors import ConfigError, SpineVisionError
from spine_lib.io.atomic import atomic_path, atomic_write_text
from spine_lib.io.writers import write_records_csv

if TYPE_CHECKING:
    from spine_lib.matching.patients import MatchResult
    from spine_lib.ocr.document import DocumentExtractor

REPORT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf")
NAME_LABEL = "Họ tên người bệnh"
BIRTHDAY_LABEL = "Ngày sinh"
ID_LABEL = "Số phiếu"
FIELDS_REGION = (0.1, 0.27)  # the patient fields sit below the hospital header: OCR that band first
REPORT_FIELD_COLUMNS = [
    "report_file", "report_format", "patient_id", "patient_name", "birthday", "exam_date", "status", "reason",
]
MATCH_COLUMNS = ["patient_id", "report_file", "image_folder", "repeat_folders", "score", "status", "reason"]
REJECT_COLUMNS = ["stage", "item", "reason"]


class PreprocessConfig(BaseConfig):
    """Read the Phenikaa reports, match patients to image folders and label tables, write the dataset."""

    data_path: Annotated[Path, tyro.conf.arg(help="Phenikaa export (reports/, images/, tables/).")] = Path(
        "data/raw/Phenikaa"
    )
    output_path: Annotated[Path, tyro.conf.arg(help="Dataset output (no PHI).")] = Path("data/processed/classification")
    interim_path: Annotated[Path, tyro.conf.arg(help="Per-report fields, matches, rejects (PHI).")] = Path(
        "data/interim/Phenikaa"
    )
    use_gpu: Annotated[bool, tyro.conf.arg(help="Run the deep-learning OCR engine on the GPU.")] = True
    report_fuzzy_threshold: Annotated[int, tyro.conf.arg(help="Field-label matching threshold.")] = 80
    image_fuzzy_threshold: Annotated[int, tyro.conf.arg(help="Folder-name matching threshold.")] = 85
    pdf_dpi: Annotated[int, tyro.conf.arg(help="DPI for rendering image-only PDF pages.")] = 200
    workers: Annotated[int, tyro.conf.arg(help="Processes reading reports in parallel.")] = max(1, os.cpu_count() or 1)
    exam_date_tolerance_days: Annotated[
        int | None, tyro.conf.arg(help="A folder whose exam date is further than this from the report's is never matched.")
    ] = 3
    ocr_engine: Annotated[Literal["tesseract", "paddle"], tyro.conf.arg(help="OCR engine.")] = "tesseract"
    image_export: Annotated[
        Literal["anonymized", "copy", "hardlink"],
        tyro.conf.arg(help="anonymized: DICOM copies with name/birthday removed; copy/hardlink keep them."),
    ] = "anonymized"
    corrupted_ids: Annotated[list[str], tyro.conf.arg(help="Patient IDs of the label tables known to be wrong.")] = Field(
        default_factory=list
    )
    # where the deep-learning OCR engine finds its models (only with --ocr-engine paddle)
    det_model_dir: Path = Path("weights/ocr/det")
    rec_weights: Path = Path("weights/ocr/vgg_transformer.pth")

    @property
    def reports_path(self) -> Path:
        return self.data_path / "reports"


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
    return interim / "reports" / f"{report_file}.json"


def save_report_fields(fields: ReportFields, interim: Path) -> Path:
    """Store one report's fields as ``<interim>/reports/<report file>.json`` (atomic; rerun overwrites)."""
    return atomic_write_text(report_record_path(interim, fields.report_file),
                             json.dumps(asdict(fields), ensure_ascii=False, indent=1, sort_keys=True) + "\n")


def load_report_fields(interim: Path, reports: Path | None = None) -> list[ReportFields]:
    """Every stored report record (only those whose report file still exists, when ``reports`` is given)."""
    folder = interim / "reports"
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        if reports is None or (reports / data["report_file"]).is_file():
            records.append(ReportFields(**data))
    return records


def report_files(reports: Path) -> list[Path]:
    """Report files of the inbox (sorted); other files are not reports."""
    if not reports.is_dir():
        raise ConfigError(reports, "reports folder does not exist")
    return sorted(p for p in reports.iterdir() if p.is_file() and p.suffix.lower() in REPORT_SUFFIXES)


def write_report_table(records: list[ReportFields], interim: Path) -> Path:
    """All stored report records as ``<interim>/report_fields.csv`` (one row per report; PHI stays there)."""
    path = interim / "report_fields.csv"
    write_records_csv([asdict(r) for r in records], path,
                      columns=[*REPORT_FIELD_COLUMNS, "ocr_seconds", "source_mtime_ns", "source_size"])
    return path


def report_table_preview(records: list[ReportFields], rows: int = 10) -> str:
    """A markdown preview of the report table without names: format, patient ID, initials, status."""
    lines = ["| report | format | patient_id | initials | status |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {r.report_format} | {r.patient_id or ''} | {masked_name(r.patient_name)} | {r.status} |"
              for i, r in enumerate(records[:rows])]
    return "\n".join(lines)


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


@dataclass
class PhenikaaReport:
    """Counts of one matching run (no PHI: safe as Dagster metadata)."""

    reports: int = 0
    reports_ok: int = 0
    matched: int = 0
    ambiguous: int = 0
    unmatched: int = 0
    label_rows: int = 0
    patients_with_labels: int = 0
    rejects: int = 0
    rejects_by_stage: dict[str, int] = field(default_factory=dict)
    images_exported: int = 0

    def as_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data.update({f"rejects_{k}": v for k, v in data.pop("rejects_by_stage").items()})
        return data


def match_patients(config: PreprocessConfig) -> PhenikaaReport:
    """Match every stored report to an image folder, join the label tables, write the dataset and tables."""
    from spine_lib.io.tabular import load_tabular_data
    from spine_lib.levels import level_from_phenikaa_ivd_label
    from spine_lib.matching.fuzzy import normalize_text
    from spine_lib.matching.patients import PatientMatcher

    records = load_report_fields(config.interim_path, config.reports_path)
    inbox = {p.name for p in report_files(config.reports_path)}
    rejects: list[dict[str, str]] = []
    unread = sorted(inbox - {r.report_file for r in records})
    rejects.extend({"stage": "report", "item": name, "reason": "not read yet"} for name in unread)
    rejects.extend({"stage": "report", "item": r.report_file, "reason": r.reason} for r in records if r.status != "ok")
    ok = [r for r in records if r.status == "ok"]

    matcher = PatientMatcher(config.data_path / "images", threshold=config.image_fuzzy_threshold,
                             exam_date_tolerance_days=config.exam_date_tolerance_days)
    rejects.extend({"stage": "image_folder", "item": f, "reason": why} for f, why in matcher.rejected_folders)
    results: list[MatchResult] = matcher.match_many(
        [normalize_text(r.patient_name or "").upper() for r in ok],
        [date.fromisoformat(r.birthday) if r.birthday else None for r in ok],
        [date.fromisoformat(r.exam_date) if r.exam_date else None for r in ok],
    )
    matches: list[dict[str, object]] = []
    matched_folders: dict[str, list[Path]] = {}
    folder_owner: dict[str, str] = {}
    for record, result in zip(ok, results, strict=True):
        pid = str(record.patient_id)
        folder = result.folder.folder if result.folder else ""
        status, reason = result.status, result.reason
        if status == "matched" and folder in folder_owner and folder_owner[folder] != pid:
            status, reason = "conflict", f"folder already matched to patient {folder_owner[folder]}"
        if status == "matched" and pid in matched_folders:
            status, reason = "conflict", "patient ID already matched by another report"
        matches.append({
            "patient_id": pid, "report_file": record.report_file, "image_folder": folder,
            "repeat_folders": ";".join(f.folder for f in result.repeats), "score": round(result.score, 2),
            "status": status, "reason": reason,
        })
        if status == "matched" and result.folder is not None:
            folder_owner[folder] = pid
            matched_folders[pid] = [result.folder.path, *(f.path for f in result.repeats)]
        else:
            rejects.append({"stage": "match", "item": record.report_file, "reason": f"{status}: {reason}"})

    tables = load_tabular_data(config.data_path / "tables", corrupted_ids=config.corrupted_ids)
    rejects.extend({"stage": "label_table", "item": f"{r['source_file']}:{r['source_row']}", "reason": r["reason"]}
                   for r in tables.dropped.to_dict("records"))
    rejects.extend({"stage": "label_table", "item": p.name, "reason": why} for p, why in tables.rejected_files.items())
    labels = []
    for row in tables.data.to_dict("records"):
        pid = str(row["patient_id"])
        if pid not in matched_folders:
            rejects.append({"stage": "label_table", "item": f"patient {pid} IVD {row['ivd_label']}",
                            "reason": "no matched report/image folder for this patient ID"})
            continue
        level = level_from_phenikaa_ivd_label(int(row["ivd_label"]))
        labels.append({"patient_id": pid, "level": level, **{k: v for k, v in row.items() if k != "patient_id"}})

    exported = export_images(matched_folders, config.output_path / "images", config.image_export)
    label_columns = ["patient_id", "level", *[c for c in tables.data.columns if c != "patient_id"]]
    write_records_csv(labels, config.output_path / "radiological_labels.csv", columns=label_columns)
    write_report_table(records, config.interim_path)
    write_records_csv(matches, config.interim_path / "matches.csv", columns=MATCH_COLUMNS)
    write_records_csv(rejects, config.interim_path / "rejects.csv", columns=REJECT_COLUMNS)
    by_stage: dict[str, int] = {}
    for r in rejects:
        by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + 1
    statuses = [m["status"] for m in matches]
    return PhenikaaReport(
        reports=len(inbox), reports_ok=len(ok), matched=statuses.count("matched"),
        ambiguous=statuses.count("ambiguous"), unmatched=len(statuses) - statuses.count("matched") - statuses.count("ambiguous"),
        label_rows=len(labels), patients_with_labels=len({r["patient_id"] for r in labels}), rejects=len(rejects),
        rejects_by_stage=by_stage, images_exported=exported,
    )


def export_images(folders: dict[str, list[Path]], target: Path, mode: str) -> int:
    """Put each matched patient's DICOM files under ``target/<patient_id>/`` (series sub-folders kept).

    ``anonymized`` rewrites each file with the patient's name and birthday removed (the dataset carries
    patient IDs only); ``copy``/``hardlink`` keep the hospital's bytes. Returns the number of files written.
    """
    import pydicom

    count = 0
    for pid, sources in sorted(folders.items()):
        first = sources[0]  # repeat exports hold the same study: export the first one
        for source in sorted(p for p in first.rglob("*") if p.is_file()):
            destination = target / pid / source.relative_to(first)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if mode == "hardlink":
                destination.unlink(missing_ok=True)
                os.link(source, destination)
            elif mode == "copy":
                shutil.copyfile(source, destination)
            else:
                dataset = pydicom.dcmread(source)
                dataset.PatientName = pid
                dataset.PatientID = pid
                for keyword in ("PatientBirthDate", "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers"):
                    if keyword in dataset:
                        delattr(dataset, keyword)
                with atomic_path(destination) as tmp:
                    dataset.save_as(tmp, enforce_file_format=True)
            count += 1
    return count


def preprocess(config: PreprocessConfig) -> PhenikaaReport:
    """The whole job (the CLI's ``dataset phenikaa``): read new reports, then match and write everything."""
    process_reports(config)
    return match_patients(config)


def file_signature(path: Path) -> str:
    """What identifies one version of a report file: modification time and size."""
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def inbox_changes(
    reports: Path, seen: dict[str, str], limit: int, key: Callable[[str], str] = str
) -> tuple[list[tuple[str, str]], int]:
    """Report files that are new or changed since ``seen`` (``key(file name)`` -> signature), at most ``limit``.

    Returns the chunk (file name, signature) in name order and how many more changes wait for a later tick,
    so a huge inbox is processed in bounded steps.
    """
    changes = []
    with os.scandir(reports) as entries:
        for entry in entries:
            if not entry.is_file() or Path(entry.name).suffix.lower() not in REPORT_SUFFIXES:
                continue
            stat = entry.stat()
            signature = f"{stat.st_mtime_ns}:{stat.st_size}"
            if seen.get(key(entry.name)) != signature:
                changes.append((entry.name, signature))
    changes.sort()
    return changes[:limit], max(0, len(changes) - limit)


def masked_name(name: str | None) -> str:
    """A name reduced to its initials (``NGUYỄN VĂN SƠN`` -> ``N. V. S.``): enough to eyeball, not to identify."""
    return " ".join(f"{word[0]}." for word in (name or "").split() if word)


@dataclass
class MatchingQuality:
    """What the matching checks look at (IDs only)."""

    complete_reports: int
    matched: int
    duplicated: list[str]  # patient IDs or folders claimed twice
    without_labels: list[str]  # matched patient IDs without a label row

    @property
    def match_rate(self) -> float:
        return self.matched / self.complete_reports if self.complete_reports else 0.0


def matching_quality(config: PreprocessConfig) -> MatchingQuality:
    """Match rate, double claims and missing labels, read back from the written tables."""
    import csv

    def rows(path: Path) -> list[dict[str, str]]:
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    matches = rows(config.interim_path / "matches.csv")
    matched = [m for m in matches if m["status"] == "matched"]
    ids = [m["patient_id"] for m in matched]
    folders = [m["image_folder"] for m in matched]
    duplicated = sorted({i for i in ids if ids.count(i) > 1}) + sorted({f for f in folders if folders.count(f) > 1})
    labelled = {r["patient_id"] for r in rows(config.output_path / "radiological_labels.csv")}
    return MatchingQuality(
        complete_reports=len(matches),
        matched=len(matched),
        duplicated=duplicated,
        without_labels=sorted(set(ids) - labelled),
    )


def report_partition_key(file_name: str) -> str:
    """The name a report goes by outside the PHI zone (Dagster partitions, run keys, metadata).

    ID-named reports keep their name (``250010139.png``: an ID is not PHI); patient-named ones
    (``NGUYEN_VAN_SON_20250718.pdf``) become ``report-<hash>.pdf``, a stable pseudonym of the file name.
    """
    path = Path(file_name)
    if path.stem.isdigit():
        return file_name
    digest = hashlib.sha256(file_name.encode("utf-8")).hexdigest()[:16]
    return f"report-{digest}{path.suffix.lower()}"


def resolve_report_key(reports: Path, key: str) -> Path | None:
    """The inbox file a partition key stands for (None when it is gone)."""
    direct = reports / key
    if not key.startswith("report-"):
        return direct if direct.is_file() else None
    for path in report_files(reports):
        if report_partition_key(path.name) == key:
            return path
    return None
