"""The graded discs of each source and the sagittal series they are cut from (reading; nothing is cropped here).

- SPIDER: ``radiological_gradings.csv`` (IVD label N counted from the bottom: 1 = L5/S1) and
  ``images/<patient>_{t1,t2}.mha`` with their masks.
- Phenikaa: the export of the matched patients, ``radiological_labels.csv`` (levels already named) and
  ``images/<patient_id>/``, whose sagittal T1 and T2 series are told apart by their series description.

A row or series that cannot be used becomes a :class:`Reject` with its reason; nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spine_lib.datasets.classification.config import ClassificationDatasetConfig
from spine_lib.errors import SpineVisionError
from spine_lib.formats.classification import GRADE_COLUMNS, SERIES_TYPES
from spine_lib.levels import level_from_spider_ivd_label
from spine_lib.sources import spider

SPIDER_SEQUENCES = {"sag_t1": "t1", "sag_t2": "t2"}

# Reasons a (patient, level, series) is not cropped (rejects.csv).
NO_SERIES = "no_series"
UNREADABLE = "unreadable_file"
NO_GRADING = "no_grading_row"
NOT_LUMBAR = "not_a_lumbar_disc"
BAD_GRADING = "bad_grading_row"
IMPLAUSIBLE = "implausible_localization"
NO_MODEL = "no_localization_model"
DISC_NOT_IN_MASK = "disc_not_in_mask"
OUTSIDE = "outside_the_series"


@dataclass(frozen=True)
class SeriesInput:
    """One sagittal series of a patient: a volume file or a DICOM folder (with the series UID), and its mask."""

    series_type: str
    path: Path
    series_uid: str | None = None
    mask: Path | None = None

    def files(self) -> list[Path]:
        """Every file the series is read from (for the fingerprint of a rerun)."""
        found = sorted(p for p in self.path.rglob("*") if p.is_file()) if self.path.is_dir() else [self.path]
        return found + ([self.mask] if self.mask is not None and self.mask.is_file() else [])


@dataclass
class Reject:
    """A (patient, level, series) that was not cropped, and why."""

    source: str
    patient_id: str
    level: str
    series_type: str
    reason: str
    detail: str = ""

    def row(self) -> dict[str, str]:
        return {"source": self.source, "patient_id": self.patient_id, "level": self.level,
                "series_type": self.series_type, "reason": self.reason, "detail": self.detail}


@dataclass
class PatientInput:
    """A graded patient: grades per level, the series per type, and what was already refused while reading."""

    source: str
    patient_id: str
    grades: dict[str, dict[str, int]] = field(default_factory=dict)
    series: dict[str, SeriesInput] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.patient_id}"


def spider_patients(config: ClassificationDatasetConfig) -> tuple[list[PatientInput], list[Reject]]:
    """The graded SPIDER patients and the grading rows that are no lumbar disc or cannot be read."""
    from spine_lib.io.tabular import load_tabular_data

    root = config.spider_path
    gradings = root / spider.GRADINGS_FILE
    if not gradings.is_file():
        return [], []
    table = load_tabular_data(gradings, one_hot_col=None, missing="drop")
    patients: dict[str, PatientInput] = {}
    loose: list[Reject] = []
    for row in table.dropped.to_dict("records"):
        loose.append(Reject("spider", str(row.get("patient_id") or ""), "", "", BAD_GRADING,
                            f"{row['source_file']}:{row['source_row']} {row['reason']}"))
    for row in table.data.to_dict("records"):
        pid = str(row["patient_id"])
        label = int(row["ivd_label"])
        try:
            level = level_from_spider_ivd_label(label)
        except ValueError:
            loose.append(Reject("spider", pid, "", "", NOT_LUMBAR, f"IVD label {label}"))
            continue
        if level not in config.levels:
            continue
        patient = patients.setdefault(pid, PatientInput("spider", pid))
        patient.grades[level] = grades_of(row)
    for patient in patients.values():
        for series_type, sequence in SPIDER_SEQUENCES.items():
            name = spider.series_file_name(patient.patient_id, sequence)
            image, mask = root / spider.IMAGES / name, root / spider.MASKS / name
            if image.is_file():
                patient.series[series_type] = SeriesInput(series_type, image, mask=mask if mask.is_file() else None)
    return sorted(patients.values(), key=lambda p: int(p.patient_id) if p.patient_id.isdigit() else 0), loose


def phenikaa_patients(config: ClassificationDatasetConfig) -> tuple[list[PatientInput], list[Reject]]:
    """The matched Phenikaa patients with label rows, and their sagittal series found by description."""
    from spine_lib.formats.phenikaa_export import LABELS_FILE, patient_folder, read_label_rows

    export = config.phenikaa_export_path
    if not (export / LABELS_FILE).is_file():
        return [], []
    patients: dict[str, PatientInput] = {}
    for row in read_label_rows(export):
        if row["level"] not in config.levels:
            continue
        patient = patients.setdefault(row["patient_id"], PatientInput("phenikaa", row["patient_id"]))
        patient.grades[row["level"]] = {k: int(row[k]) for k in GRADE_COLUMNS}
    for patient in patients.values():
        folder = patient_folder(export, patient.patient_id)
        try:
            patient.series = find_sagittal_series(folder)
        except SpineVisionError as error:
            patient.rejects += [Reject("phenikaa", patient.patient_id, level, series_type, UNREADABLE, str(error.cause))
                                for level in patient.grades for series_type in SERIES_TYPES]
    return sorted(patients.values(), key=lambda p: p.patient_id), []


def find_sagittal_series(folder: Path) -> dict[str, SeriesInput]:
    """The sagittal T1 and T2 series of a study folder, by series description (see
    :func:`spine_lib.sources.phenikaa.sagittal_series_type`; of several of a kind, the preferred, then the longest)."""
    import pydicom

    from spine_lib.errors import InputPathError
    from spine_lib.io.readers import list_dicom_series
    from spine_lib.sources.phenikaa import sagittal_series_type

    if not folder.is_dir():
        raise InputPathError(folder, "patient folder does not exist")
    found: dict[str, tuple[tuple[int, int], SeriesInput]] = {}
    for series in list_dicom_series(folder):
        header = pydicom.dcmread(series.files[0], stop_before_pixels=True)
        described = sagittal_series_type(str(header.get("SeriesDescription", "")))
        if described is None:
            continue
        kind, rank = described
        preference = (rank, -len(series.files))  # plain before STIR or contrast, then the longest
        if kind not in found or preference < found[kind][0]:
            found[kind] = (preference, SeriesInput(kind, series.folder, series_uid=series.uid))
    return {kind: entry for kind, (_, entry) in sorted(found.items())}


def grades_of(row: Mapping[Any, Any]) -> dict[str, int]:
    """The grade columns of a normalized grading row, as integers."""
    return {k: int(row[k]) for k in GRADE_COLUMNS}


def every_reject(patients: Iterable[PatientInput]) -> list[Reject]:
    return [r for p in patients for r in p.rejects]
