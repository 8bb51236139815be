"""Step 2: every stored report matched to an image folder, joined with the label tables, written out.

``<output>/radiological_labels.csv`` and ``<output>/images/<patient_id>/`` (patient IDs only), and
``matches.csv`` and ``rejects.csv`` in the interim folder (every report ends matched or rejected).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spine_lib.datasets.phenikaa.config import PreprocessConfig
from spine_lib.datasets.phenikaa.export import export_images
from spine_lib.datasets.phenikaa.inbox import report_files
from spine_lib.datasets.phenikaa.reports import load_report_fields, write_report_table
from spine_lib.formats import phenikaa_export
from spine_lib.formats.phenikaa_export import LABELS_FILE
from spine_lib.io.records import read_records_csv, write_records_csv
from spine_lib.sources.phenikaa import IMAGES, TABLES

if TYPE_CHECKING:
    from spine_lib.matching.patients import MatchResult

MATCHES_FILE = "matches.csv"
REJECTS_FILE = "rejects.csv"
MATCH_COLUMNS = ["patient_id", "report_file", "image_folder", "repeat_folders", "score", "status", "reason"]


REJECT_COLUMNS = ["stage", "item", "reason"]


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

    matcher = PatientMatcher(config.data_path / IMAGES, threshold=config.image_fuzzy_threshold,
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

    tables = load_tabular_data(config.data_path / TABLES, corrupted_ids=config.corrupted_ids)
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

    exported = export_images(matched_folders, config.output_path / phenikaa_export.IMAGES_FOLDER, config.image_export)
    label_columns = ["patient_id", "level", *[c for c in tables.data.columns if c != "patient_id"]]
    write_records_csv(labels, config.output_path / LABELS_FILE, columns=label_columns)
    write_report_table(records, config.interim_path)
    write_records_csv(matches, config.interim_path / MATCHES_FILE, columns=MATCH_COLUMNS)
    write_records_csv(rejects, config.interim_path / REJECTS_FILE, columns=REJECT_COLUMNS)
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
    matches = read_records_csv(config.interim_path / MATCHES_FILE)
    matched = [m for m in matches if m["status"] == "matched"]
    ids = [m["patient_id"] for m in matched]
    folders = [m["image_folder"] for m in matched]
    duplicated = sorted({i for i in ids if ids.count(i) > 1}) + sorted({f for f in folders if folders.count(f) > 1})
    labelled = {r["patient_id"] for r in read_records_csv(config.output_path / LABELS_FILE)}
    return MatchingQuality(
        complete_reports=len(matches),
        matched=len(matched),
        duplicated=duplicated,
        without_labels=sorted(set(ids) - labelled),
    )
