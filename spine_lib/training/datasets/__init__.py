"""Torch datasets of the training tasks."""

from spine_lib.training.datasets.classification import (
    ClassificationCollator,
    ClassificationDataset,
    construct_3channel,
)
from spine_lib.training.datasets.ivd_coords import (
    IVDCoordsDataset,
    IVDRecord,
    read_annotations,
    split_studies,
)

__all__ = [
    "ClassificationCollator",
    "ClassificationDataset",
    "IVDCoordsDataset",
    "IVDRecord",
    "construct_3channel",
    "read_annotations",
    "split_studies",
]
