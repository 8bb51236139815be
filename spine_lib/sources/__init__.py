"""The raw sources as they lie on disk, one module each: their folder and file names, patterns, columns,
sequences and level conventions, read at the top of the module, and the counts and checks that guard them.

- :mod:`spine_lib.sources.spider`: SPIDER (``images/<id>_<seq>.mha``, masks, gradings counted bottom-up).
- :mod:`spine_lib.sources.rsna`: RSNA 2024 (DICOM studies, series descriptions, conditions and their points).
- :mod:`spine_lib.sources.lumbar_coords`: Lumbar Coords (refined RSNA points, pretraining pictures).
- :mod:`spine_lib.sources.phenikaa`: the hospital export (reports, study folders, label tables counted top-down).

The same code reads real data and a synthetic root: only the published layouts are assumed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from spine_lib.sources.phenikaa import check_label_tables, describe_phenikaa
from spine_lib.sources.rsna import check_rsna_coordinates, describe_rsna
from spine_lib.sources.spider import check_spider_masks, describe_spider

if TYPE_CHECKING:
    from spine_lib.core.layout import DataLayout

__all__ = [
    "check_label_tables",
    "check_rsna_coordinates",
    "check_spider_masks",
    "describe_phenikaa",
    "describe_rsna",
    "describe_spider",
    "inventory",
]


def inventory(layout: DataLayout) -> dict[str, int]:
    """Files each raw source of a data root holds (what a user checks first when a run finds nothing)."""
    from spine_lib.sources import rsna, spider

    def count(folder: Path, pattern: str = "*") -> int:
        return sum(1 for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else 0

    def count_dirs(folder: Path) -> int:
        return sum(1 for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else 0

    train_images = layout.rsna / rsna.TRAIN_IMAGES
    return {
        "phenikaa_reports": count(layout.phenikaa_reports),
        "phenikaa_image_folders": count_dirs(layout.phenikaa_images),
        "phenikaa_tables": count(layout.phenikaa_tables),
        "spider_images": len(spider.image_files(layout.spider)),
        "spider_masks": len(spider.mask_files(layout.spider)),
        "rsna_studies": count_dirs(train_images),
        "rsna_dicom_files": count(train_images, f"*{rsna.DICOM_EXTENSION}"),
    }
