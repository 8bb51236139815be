"""Torch datasets of the training tasks."""

from spine_lib.training.datasets.ivd_coords import (
    IVDCoordsDataset,
    IVDRecord,
    read_annotations,
    split_studies,
)

__all__ = ["IVDCoordsDataset", "IVDRecord", "read_annotations", "split_studies"]
