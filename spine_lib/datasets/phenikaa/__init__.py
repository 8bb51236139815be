"""Phenikaa export -> per-report fields (OCR) -> patients matched to image folders and label tables.

Two steps, so that each report is read once, when it arrives:

1. :func:`read_report` reads one report (ID-named PNG scan or patient-named PDF) into :class:`ReportFields` and
   :func:`save_report_fields` stores it as ``<interim>/reports/<report file>.json``.
2. :func:`match_patients` gathers every stored report, matches patients to image folders, joins the label
   tables and writes the dataset: ``<output>/radiological_labels.csv`` and ``<output>/images/<patient_id>/``
   (identified by patient ID only), plus ``report_fields.csv``, ``matches.csv`` and ``rejects.csv`` in the
   interim folder, the only place where names and birthdays are kept.

Modules by stage: :mod:`.config`, :mod:`.reports` (reading), :mod:`.match` (matching and the tables),
:mod:`.export` (DICOM export), :mod:`.inbox` (the inbox and the names reports go by in Dagster).
"""

from spine_lib.datasets.phenikaa.config import PreprocessConfig
from spine_lib.datasets.phenikaa.export import export_images
from spine_lib.datasets.phenikaa.inbox import (
    file_signature,
    inbox_changes,
    report_files,
    report_partition_key,
    resolve_report_key,
)
from spine_lib.datasets.phenikaa.match import (
    MatchingQuality,
    PhenikaaReport,
    match_patients,
    matching_quality,
)
from spine_lib.datasets.phenikaa.reports import (
    ReportFields,
    load_report_fields,
    make_extractor,
    masked_name,
    process_reports,
    read_report,
    report_table_preview,
    save_report_fields,
    write_report_table,
)

__all__ = [
    "MatchingQuality",
    "PhenikaaReport",
    "PreprocessConfig",
    "ReportFields",
    "export_images",
    "file_signature",
    "inbox_changes",
    "load_report_fields",
    "main",
    "make_extractor",
    "masked_name",
    "match_patients",
    "matching_quality",
    "preprocess",
    "process_reports",
    "read_report",
    "report_files",
    "report_partition_key",
    "report_table_preview",
    "resolve_report_key",
    "save_report_fields",
    "write_report_table",
]


def preprocess(config: PreprocessConfig) -> PhenikaaReport:
    """The whole job (the CLI's ``dataset phenikaa``): read new reports, then match and write everything."""
    process_reports(config)
    return match_patients(config)


def main(config: PreprocessConfig) -> PhenikaaReport:
    """The spec's entry point: the whole job."""
    return preprocess(config)
