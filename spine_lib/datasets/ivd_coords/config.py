"""Options and counts of one IVD localization dataset build (:func:`~spine_lib.datasets.ivd_coords.build_ivd_coords`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.core.markdown import markdown_table
from spine_lib.formats.ivd_coords import ANNOTATIONS_FILE, REJECTS_FILE
from spine_lib.levels import LEVEL_TO_IDX, LEVELS


class IVDDatasetConfig(BaseConfig):
    """Build the IVD localization dataset (images + annotations.csv) from RSNA 2024 and Lumbar Coords.

    Example:
        >>> config = IVDDatasetConfig.for_layout(DataLayout(root=Path("/srv/spine")), include_neural_foraminal=False)
        >>> config.rsna_path, config.annotations_path
        (PosixPath('/srv/spine/raw/RSNA'), PosixPath('/srv/spine/processed/ivd_coords/annotations.csv'))
    """

    base_path: Annotated[Path, tyro.conf.arg(help="Data root (raw/RSNA, raw/Lumbar Coords, processed/).")] = (
        DEFAULT_LAYOUT.root
    )
    output_name: Annotated[str, tyro.conf.arg(help="Dataset folder under <base>/processed.")] = (
        DEFAULT_LAYOUT.ivd_coords.name
    )
    include_neural_foraminal: Annotated[
        bool, tyro.conf.arg(help="Include the Neural Foraminal Narrowing points (Sagittal T1).")
    ] = True
    include_spinal_canal: Annotated[bool, tyro.conf.arg(help="Include the Spinal Canal Stenosis points (Sagittal T2).")] = True
    canal_points_on_t1: Annotated[
        bool,
        tyro.conf.arg(help="Also place each Sagittal T2 canal point on its study's Sagittal T1 series (the "
                           "nearest slice, through the DICOM patient coordinates), so that a localizer learns "
                           "what the discs look like on T1."),
    ] = True
    skip_invalid_instances: Annotated[
        bool,
        tyro.conf.arg(help="Skip rows with an invalid instance number (off: take the instance of the same "
                           "series, condition and side from a sibling row when there is one)."),
    ] = True
    workers: Annotated[int, tyro.conf.arg(help="Processes converting DICOM instances to PNG.")] = max(
        1, min(4, os.cpu_count() or 1)
    )

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"base_path": layout.root}

    @property
    def layout(self) -> DataLayout:
        return DataLayout(root=self.base_path)

    @property
    def rsna_path(self) -> Path:
        return self.layout.rsna

    @property
    def lumbar_coords_path(self) -> Path:
        return self.layout.lumbar_coords

    @property
    def output_path(self) -> Path:
        return self.layout.processed / self.output_name

    @property
    def annotations_path(self) -> Path:
        return self.output_path / ANNOTATIONS_FILE

    @property
    def rejects_path(self) -> Path:
        return self.output_path / REJECTS_FILE


@dataclass
class IVDDatasetReport:
    """Counts of one build (ids and counts only: safe as Dagster metadata)."""

    annotations: int = 0
    images: int = 0
    studies: int = 0
    images_written: int = 0
    images_reused: int = 0
    images_removed: int = 0
    rows_read: dict[str, int] = field(default_factory=dict)  # per input file
    encodings: dict[str, str] = field(default_factory=dict)  # input files that were not UTF-8 -> encoding read
    by_series_type: dict[str, int] = field(default_factory=dict)
    by_level: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    by_series_level: dict[str, dict[str, int]] = field(default_factory=dict)  # series type -> level -> count
    skipped: dict[str, int] = field(default_factory=dict)  # rejected rows by reason (rejects.csv)
    excluded: dict[str, int] = field(default_factory=dict)  # valid rows left out on purpose, by reason
    output_path: str = ""

    @property
    def rejected(self) -> int:
        return sum(self.skipped.values())

    def counts_table(self) -> str:
        """Annotations per series type and level, as a markdown table."""
        rows = []
        for series_type, levels in sorted(self.by_series_level.items()):
            counts = [levels.get(level, 0) for level in LEVELS]
            rows.append([series_type, *counts, sum(counts)])
        return markdown_table(["series type", *LEVELS, "total"], rows)

    def as_metadata(self) -> dict[str, Any]:
        """Flat numbers for Dagster: ``series_sag_t2``, ``level_L4/L5``, ``source_rsna``, ``skipped_<reason>``..."""
        data: dict[str, Any] = {
            "annotations": self.annotations, "images": self.images, "studies": self.studies,
            "images_written": self.images_written, "images_reused": self.images_reused,
            "images_removed": self.images_removed, "rejected": self.rejected,
        }
        data.update({f"rows_{k}": v for k, v in sorted(self.rows_read.items())})
        data.update({f"encoding_{k}": v for k, v in sorted(self.encodings.items())})
        data.update({f"series_{k}": v for k, v in sorted(self.by_series_type.items())})
        data.update({f"level_{k}": v for k, v in sorted(self.by_level.items(), key=lambda kv: LEVEL_TO_IDX.get(kv[0], 9))})
        data.update({f"source_{k}": v for k, v in sorted(self.by_source.items())})
        data.update({f"skipped_{k}": v for k, v in sorted(self.skipped.items())})
        data.update({f"excluded_{k}": v for k, v in sorted(self.excluded.items())})
        return data
