"""Phenikaa export -> per-report fields (OCR) -> patients matched to image folders and label tables.

Two steps, so that each report is read once, when it arrives:

1. :func:`read_report` reads one report (ID-named PNG scan or patient-named PDF) into :class:`ReportFields` and
   :func:`save_report_fields` stores it as ``<interim>/reports/<report file>.json``.
2. :func:`match_patients` gathers every stored report, matches patients to image folders, joins the label
   tables and writes the dataset: ``<output>/radiological_labels.csv`` and ``<output>/images/<patient_id>/``
   (identified by patient ID only), plus ``report_fields.csv``, ``matches.csv``, ``rejects.csv`` and
   ``review.csv`` in the interim folder, the only place where names and birthdays are kept; a reviewer's
   decisions (``overrides.csv`` there) are applied first.

Modules by stage: :mod:`.config`, :mod:`.reports` (reading), :mod:`.match` (matching and the tables),
:mod:`.review` (the review table and the reviewer's decisions), :mod:`.export` (DICOM export), :mod:`.rejects`
(the rejects table, pseudonymized), :mod:`.inbox` (the inbox, what in it is not a report, and the names reports go
by in Dagster).
"""

from spine_lib.datasets.phenikaa.config import PreprocessConfig
from spine_lib.datasets.phenikaa.export import ImageExport, export_images
from spine_lib.datasets.phenikaa.inbox import (
    file_signature,
    inbox_changes,
    inbox_rejects,
    is_report_file,
    not_report_reason,
    report_files,
    report_partition_key,
    reports_by_key,
    resolve_report_key,
)
from spine_lib.datasets.phenikaa.match import (
    MatchingQuality,
    PhenikaaReport,
    match_patients,
    matching_quality,
    rewrite_report_table,
)
from spine_lib.datasets.phenikaa.rejects import REJECTS_FILE, reject_row
from spine_lib.datasets.phenikaa.reports import (
    ReportFields,
    ReportOutcome,
    current_record,
    load_report_fields,
    make_extractor,
    masked_name,
    process_reports,
    read_form,
    read_new_reports,
    read_report,
    report_table_preview,
    save_report_fields,
    write_report_table,
)
from spine_lib.datasets.phenikaa.review import (
    NO_FOLDER,
    OVERRIDES_FILE,
    REVIEW_FILE,
    Decision,
    read_overrides,
    resolve_decisions,
)

__all__ = [
    "NO_FOLDER",
    "OVERRIDES_FILE",
    "REJECTS_FILE",
    "REVIEW_FILE",
    "Decision",
    "ImageExport",
    "MatchingQuality",
    "PhenikaaReport",
    "PreprocessConfig",
    "ReportFields",
    "ReportOutcome",
    "current_record",
    "export_images",
    "file_signature",
    "inbox_changes",
    "inbox_rejects",
    "is_report_file",
    "load_report_fields",
    "main",
    "make_extractor",
    "masked_name",
    "match_patients",
    "matching_quality",
    "not_report_reason",
    "preprocess",
    "process_reports",
    "read_form",
    "read_new_reports",
    "read_overrides",
    "read_report",
    "reject_row",
    "report_files",
    "report_partition_key",
    "report_table_preview",
    "reports_by_key",
    "resolve_decisions",
    "resolve_report_key",
    "rewrite_report_table",
    "save_report_fields",
    "write_report_table",
]


def preprocess(config: PreprocessConfig) -> PhenikaaReport:
    """The whole job (the CLI's ``dataset phenikaa``): read new reports, then match and write everything.

    The folders it reads and writes are checked first, so a wrong path fails before any report is read.
    """
    config.check_output_folders()
    config.check_input_folders()
    process_reports(config)
    return match_patients(config)


def main(config: PreprocessConfig) -> PhenikaaReport:
    """The spec's entry point: the whole job."""
    return preprocess(config)
