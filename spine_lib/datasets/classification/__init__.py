"""SPIDER and Phenikaa -> per-disc crops for the grading classifier (``spine-vision dataset classification``).

```
<base>/processed/<output_name>/
    images/<source>_<patient_id>_<sag_t1|sag_t2>_L<ivd_level>.png   one crop per disc and sequence
    annotations.csv                                                 the crop, its grades, where it was cut
    rejects.csv                                                     every (patient, level, series) not cropped
    contact_sheet.png                                               sample T2 crops, for people
```

Each crop is cut around the same reference point whichever way it was found: where the disc meets the spinal
canal on its mid-height line (RSNA's spinal-canal point). SPIDER's points come from its masks by default (IVD
label N is mask value 200 + N, counted from the bottom), the matched Phenikaa patients' from the localization
model on their sagittal T2 series (:class:`spine_lib.inference.localization.DiscLocalizer`, checked for
plausibility). Level numbering goes through :mod:`spine_lib.levels` only.

Modules by stage: :mod:`.config`, :mod:`.discs` (the graded discs and their series), :mod:`.build` (the job),
:mod:`.audit` (checks); the crop geometry (points from masks, crop boxes, resampling) is
:mod:`spine_lib.inference.disc_crops`, shared with grading a new series; the files and columns are spelt in
:mod:`spine_lib.formats.classification`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.datasets.classification.audit import CropAudit, audit_crops
    from spine_lib.datasets.classification.build import ClassificationReport, build_classification_dataset
    from spine_lib.datasets.classification.config import ClassificationDatasetConfig
    from spine_lib.formats.classification import dataset_version

#: Names are imported lazily: the CLI reads the config without NumPy or OpenCV.
_HOMES = {
    "CropAudit": "spine_lib.datasets.classification.audit",
    "audit_crops": "spine_lib.datasets.classification.audit",
    "ClassificationReport": "spine_lib.datasets.classification.build",
    "build_classification_dataset": "spine_lib.datasets.classification.build",
    "ClassificationDatasetConfig": "spine_lib.datasets.classification.config",
    "dataset_version": "spine_lib.formats.classification",
}
__all__ = [
    "ClassificationDatasetConfig",
    "ClassificationReport",
    "CropAudit",
    "audit_crops",
    "build_classification_dataset",
    "dataset_version",
    "main",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(config: ClassificationDatasetConfig) -> ClassificationReport:
    """The spec's entry point: build the crops dataset."""
    from spine_lib.datasets.classification.build import build_classification_dataset

    return build_classification_dataset(config)
