"""Step 2: every stored report matched to an image folder, joined with the label tables, written out.

``<output>/radiological_labels.csv`` and ``<output>/images/<patient_id>/`` (patient IDs only), and in the interim
folder ``matches.csv`` (``decision``: ``auto`` or ``manual``), ``rejects.csv`` (:mod:`.rejects`), ``review.csv``
and ``overrides.csv`` (:mod:`.review`).

Nothing is lost: every inbox entry ends matched or rejected (files that are not reports too), every image folder
exported (with its patient's study) or rejected, every file of an exported folder exported or rejected, every
label-table row exported or rejected. Every input is read and checked before anything is written, so a broken
input (a missing folder, an unreadable table, a malformed ``overrides.csv``) stops the job with a message that
names it and leaves the previous outputs as they were.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from loguru import logger

from spine_lib.datasets.phenikaa.config import PreprocessConfig
from spine_lib.datasets.phenikaa.export import IMAGE_FOLDER_STAGE, NO_SERIES, export_images
from spine_lib.datasets.phenikaa.inbox import inbox_rejects, report_files
from spine_lib.datasets.phenikaa.rejects import REJECTS_FILE, count_by_stage, reject_row, write_rejects
from spine_lib.datasets.phenikaa.reports import ReportFields, load_report_fields, write_report_table
from spine_lib.datasets.phenikaa.review import (
    REFUSED,
    REVIEW_FILE,
    read_overrides,
    resolve_decisions,
    review_row,
    write_review_table,
)
from spine_lib.formats import phenikaa_export
from spine_lib.formats.phenikaa_export import LABEL_COLUMNS, LABELS_FILE, LEVEL
from spine_lib.io.atomic import exclusive, is_temporary, sweep_temporaries
from spine_lib.io.records import read_records_csv, write_records_csv
from spine_lib.labels.gradings import IVD_LABEL, PATIENT_ID
from spine_lib.sources.phenikaa import IMAGES, TABLES

if TYPE_CHECKING:
    from spine_lib.matching.patients import MatchResult

MATCHES_FILE = "matches.csv"
#: Held (in the interim folder) while a matching runs: two at once would sweep each other's temporaries.
MATCHING_LOCK = ".matching.lock"
MATCH_COLUMNS = [
    "patient_id", "report_file", "image_folder", "repeat_folders", "score", "status", "decision", "reason",
]


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
    patients_exported: int = 0
    patients_without_images: int = 0  # matched, but no folder of theirs holds a DICOM file: not exported
    files_skipped: int = 0  # files of exported folders that are not DICOM images (listed in rejects.csv)
    label_columns_dropped: int = 0  # columns of the label tables outside the export's allow-list
    not_reports: int = 0  # inbox entries that are not report files (listed in rejects.csv)
    manual: int = 0  # reports settled by a reviewer's decision
    waiting_for_review: int = 0  # rows of review.csv
    stale_overrides: int = 0  # decisions not applied (report or folder gone, contradictions)

    def as_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data.update({f"rejects_{k}": v for k, v in data.pop("rejects_by_stage").items()})
        return data


class _Settlement:
    """The outcome of every report that reached matching: matches, claimed folders, review rows, rejects."""

    def __init__(self) -> None:
        self.matches: list[dict[str, object]] = []
        self.folders: dict[str, list[Path]] = {}  # patient ID -> its study's exports, first one first
        self.owner: dict[str, str] = {}  # folder -> patient ID
        self.review: list[dict[str, object]] = []
        self.rejects: list[dict[str, str]] = []

    def settle(
        self,
        record: ReportFields,
        status: str,
        exports: list[Path],
        *,
        score: float | None,
        reason: str,
        decision: str,
        candidates: list[tuple[str, float]],
    ) -> None:
        pid = str(record.patient_id)
        folder = exports[0].name if exports else ""
        if status == "matched" and folder in self.owner and self.owner[folder] != pid:
            status, reason = "conflict", f"folder already matched to patient {self.owner[folder]}"
        if status == "matched" and pid in self.folders:
            status, reason = "conflict", "patient ID already matched by another report"
        self.matches.append({
            "patient_id": pid, "report_file": record.report_file, "image_folder": folder,
            "repeat_folders": ";".join(p.name for p in exports[1:]),
            "score": "" if score is None else round(score, 2),
            "status": status, "decision": decision, "reason": reason,
        })
        if status == "matched":
            self.owner[folder] = pid
            self.folders[pid] = exports
            return
        self.rejects.append(reject_row("match", PurePath(record.report_file), f"{status}: {reason}"))
        if status in REFUSED and not (decision == "manual" and status == "no_match"):
            listed = candidates or ([(folder, score or 0.0)] if folder else [])
            self.review.append(review_row(record, status, listed, reason))


def rewrite_report_table(config: PreprocessConfig) -> list[ReportFields]:
    """Every stored report record, written again as the report table; under the matching's lock, so a table
    written from fewer records never replaces one a concurrent matching wrote from more."""
    config.check_output_folders()
    with exclusive(config.interim_path / MATCHING_LOCK):
        records = load_report_fields(config.interim_path, config.reports_path)
        write_report_table(records, config.interim_path)
    return records


def match_patients(config: PreprocessConfig) -> PhenikaaReport:
    """Match every stored report to an image folder, join the label tables, write the dataset and tables.

    A reviewer's decisions (``overrides.csv``) are applied first; what the matcher then refuses lands in
    ``review.csv``. Inbox entries that are not reports are rejects with their reason. A matched patient none of
    whose folders holds a DICOM file is rejected, and so are its label rows. Every input is read before anything
    is written; temporaries an interrupted run left in the outputs go first.

    One matching at a time per data root: a second (another run, the CLI) waits for the first to finish, then
    matches what is stored by then.

    Raises:
        SpineVisionError: an input cannot be read at all (the message names it); nothing is written then.
    """
    config.check_output_folders()
    with exclusive(config.interim_path / MATCHING_LOCK):
        return _match_patients(config)


def _match_patients(config: PreprocessConfig) -> PhenikaaReport:
    from spine_lib.io.tabular import load_tabular_data
    from spine_lib.levels import level_from_phenikaa_ivd_label
    from spine_lib.matching.fuzzy import normalize_text
    from spine_lib.matching.patients import PatientMatcher

    records = load_report_fields(config.interim_path, config.reports_path)
    inbox = {p.name for p in report_files(config.reports_path)}
    not_reports = inbox_rejects(config.reports_path)
    rejects = [reject_row("report", PurePath(n), why) for n, why in not_reports]
    unread = sorted(inbox - {r.report_file for r in records})
    rejects.extend(reject_row("report", PurePath(name), "not read yet") for name in unread)
    rejects.extend(reject_row("report", PurePath(r.report_file), r.reason) for r in records if r.status != "ok")
    ok = [r for r in records if r.status == "ok"]

    images = config.data_path / IMAGES
    matcher = PatientMatcher(images, threshold=config.image_fuzzy_threshold,
                             exam_date_tolerance_days=config.exam_date_tolerance_days)
    rejects.extend(reject_row(IMAGE_FOLDER_STAGE, PurePath(f), why) for f, why in matcher.rejected_folders)
    decisions, stale = resolve_decisions(read_overrides(config.interim_path), records, inbox,
                                         lambda folder: (images / folder).is_dir())
    rejects.extend(reject_row("override", item, why) for item, why in stale)
    studies = {export.folder: study for study in matcher.studies for export in study}
    tables = load_tabular_data(config.data_path / TABLES, corrupted_ids=config.corrupted_ids)

    outcome = _Settlement()
    for record in (r for r in ok if r.report_file in decisions):
        decision = decisions[record.report_file]
        if decision.folder is None:
            outcome.settle(record, "no_match", [], score=None, decision="manual", candidates=[],
                           reason=f"reviewer decided: no image folder ({decision.source})")
            continue
        study = studies.get(decision.folder, ())
        others = [f.path for f in study if f.folder != decision.folder]
        outcome.settle(record, "matched", [images / decision.folder, *others], score=None, decision="manual",
                       candidates=[], reason=f"reviewer's decision ({decision.source})")
    auto = [r for r in ok if r.report_file not in decisions]
    results: list[MatchResult] = matcher.match_many(
        [normalize_text(r.patient_name or "").upper() for r in auto],
        [date.fromisoformat(r.birthday) if r.birthday else None for r in auto],
        [date.fromisoformat(r.exam_date) if r.exam_date else None for r in auto],
        birth_years=[r.birth_year for r in auto],
    )
    for record, result in zip(auto, results, strict=True):
        exports = [result.folder.path, *(f.path for f in result.repeats)] if result.folder else []
        outcome.settle(record, result.status, exports, score=result.score, reason=result.reason,
                       decision="auto", candidates=result.candidates)
    rejects.extend(outcome.rejects)
    claimed = {path.name for paths in outcome.folders.values() for path in paths}
    rejects.extend(reject_row(IMAGE_FOLDER_STAGE, PurePath(f.folder), "no report matched this folder")
                   for f in matcher.folders if f.folder not in claimed)

    _sweep(config)
    export = export_images(outcome.folders, config.output_path / phenikaa_export.IMAGES_FOLDER, config.image_export)
    rejects.extend(export.rejects)
    rejects.extend(reject_row("label_table", PurePath(str(r["source_file"])), r["reason"], line=int(r["source_row"]))
                   for r in tables.dropped.to_dict("records"))
    rejects.extend(reject_row("label_table", PurePath(p.name), why) for p, why in tables.rejected_files.items())
    columns = [c for c in LABEL_COLUMNS if c in (PATIENT_ID, LEVEL) or c in tables.data.columns]
    dropped_columns = [c for c in tables.data.columns if c not in LABEL_COLUMNS]
    if dropped_columns:
        logger.info("label tables: {} column(s) outside the export's allow-list not exported", len(dropped_columns))
    labels = []
    for row in tables.data.to_dict("records"):
        pid = str(row[PATIENT_ID])
        item = f"patient {pid} IVD {row[IVD_LABEL]}"
        if pid in export.without_series:
            rejects.append(reject_row("label_table", item, f"the patient's {NO_SERIES}"))
        elif pid not in export.sources:
            rejects.append(reject_row("label_table", item, "no matched report/image folder for this patient ID"))
        else:
            level = level_from_phenikaa_ivd_label(int(row[IVD_LABEL]))
            labels.append({**{c: row[c] for c in columns if c in row}, PATIENT_ID: pid, LEVEL: level})

    write_records_csv(labels, config.output_path / LABELS_FILE, columns=columns)
    write_report_table(records, config.interim_path)
    write_records_csv(outcome.matches, config.interim_path / MATCHES_FILE, columns=MATCH_COLUMNS)
    write_rejects(rejects, config.interim_path)
    write_review_table(outcome.review, config.interim_path)
    statuses = [m["status"] for m in outcome.matches]
    return PhenikaaReport(
        reports=len(inbox), reports_ok=len(ok), matched=statuses.count("matched"),
        ambiguous=statuses.count("ambiguous"), unmatched=len(statuses) - statuses.count("matched") - statuses.count("ambiguous"),
        label_rows=len(labels), patients_with_labels=len({r[PATIENT_ID] for r in labels}), rejects=len(rejects),
        rejects_by_stage=count_by_stage(rejects), images_exported=export.files, not_reports=len(not_reports),
        manual=sum(m["decision"] == "manual" for m in outcome.matches), waiting_for_review=len(outcome.review),
        stale_overrides=len(stale), patients_exported=len(export.sources),
        patients_without_images=len(export.without_series), files_skipped=export.files_skipped,
        label_columns_dropped=len(dropped_columns),
    )


def _sweep(config: PreprocessConfig) -> None:
    """Remove what an interrupted run left: temporaries anywhere in the export and among the interim tables (the
    report records are swept by the step that writes them)."""
    sweep_temporaries(config.output_path)
    if config.interim_path.is_dir():
        for path in config.interim_path.iterdir():
            if path.is_file() and is_temporary(path):
                path.unlink(missing_ok=True)


@dataclass
class MatchingQuality:
    """What the matching checks look at (IDs and counts only)."""

    complete_reports: int
    matched: int
    duplicated: list[str]  # patient IDs or folders claimed twice
    without_labels: list[str]  # matched patient IDs without a label row
    waiting_for_review: int = 0  # rows of review.csv
    stale_overrides: int = 0  # reviewer's decisions not applied

    @property
    def match_rate(self) -> float:
        return self.matched / self.complete_reports if self.complete_reports else 0.0


def matching_quality(config: PreprocessConfig) -> MatchingQuality:
    """Match rate, double claims, missing labels and the review queue, read back from the written tables."""
    matches = read_records_csv(config.interim_path / MATCHES_FILE)
    matched = [m for m in matches if m["status"] == "matched"]
    ids = [m["patient_id"] for m in matched]
    folders = [m["image_folder"] for m in matched]
    duplicated = sorted({i for i in ids if ids.count(i) > 1}) + sorted({f for f in folders if folders.count(f) > 1})
    labelled = {r["patient_id"] for r in read_records_csv(config.output_path / LABELS_FILE)}
    rejects = read_records_csv(config.interim_path / REJECTS_FILE)
    return MatchingQuality(
        complete_reports=len(matches),
        matched=len(matched),
        duplicated=duplicated,
        without_labels=sorted(set(ids) - labelled),
        waiting_for_review=len(read_records_csv(config.interim_path / REVIEW_FILE)),
        stale_overrides=sum(r["stage"] == "override" for r in rejects),
    )
