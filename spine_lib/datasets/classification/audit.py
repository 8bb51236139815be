"""Reading a built crops dataset back: is every graded disc accounted for, and do the crops exist?"""

from __future__ import annotations

from dataclasses import dataclass, field

from spine_lib.core.checks import CheckOutcome
from spine_lib.datasets.classification.config import ClassificationDatasetConfig
from spine_lib.datasets.classification.discs import phenikaa_patients, spider_patients
from spine_lib.formats.classification import SERIES_TYPES, read_crop_annotations, read_crop_rejects


@dataclass
class CropAudit:
    """What the crops dataset's checks look at."""

    graded: int = 0  # (patient, level, series) the inputs ask for
    cropped: int = 0
    rejected: int = 0
    unaccounted: list[str] = field(default_factory=list)  # "source patient level series"
    missing_files: list[str] = field(default_factory=list)

    def completeness(self) -> CheckOutcome:
        return CheckOutcome(checked=self.graded, problems=[f"{item}: neither cropped nor rejected"
                                                           for item in self.unaccounted]
                            + [f"{path}: listed but missing" for path in self.missing_files])


def audit_crops(config: ClassificationDatasetConfig) -> CropAudit:
    """Every graded (patient, level) of the configured sources has, for each sequence, a crop or a reject."""
    audit = CropAudit()
    wanted: set[tuple[str, str, str, str]] = set()
    sources = []
    if config.include_spider:
        sources.append(spider_patients(config)[0])
    if config.include_phenikaa:
        sources.append(phenikaa_patients(config)[0])
    for patients in sources:
        for patient in patients:
            wanted |= {(patient.source, patient.patient_id, level, s) for level in patient.grades for s in SERIES_TYPES}
    rows = read_crop_annotations(config.output_path)
    rejects = read_crop_rejects(config.output_path)
    done = {(r["source"], r["patient_id"], r["level"], r["series_type"]) for r in rows}
    refused = {(r["source"], r["patient_id"], r["level"], r["series_type"]) for r in rejects}
    audit.graded = len(wanted)
    audit.cropped = len(done)
    audit.rejected = len(rejects)
    audit.unaccounted = sorted(" ".join(key) for key in wanted - done - refused)
    audit.missing_files = sorted(r["image_path"] for r in rows if not (config.output_path / r["image_path"]).is_file())
    return audit
