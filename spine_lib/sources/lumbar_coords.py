"""Lumbar Coords (a public Kaggle set of refined RSNA points and pretraining images), when present.

```
raw/Lumbar Coords/coords_rsna_improved.csv   study_id, series_id, instance_number (-1: unknown), condition,
                                             level, x, y (or relative_x, relative_y), side (L/R)
raw/Lumbar Coords/coords_pretrain.csv        source (spider, lsd, osf, tseg), filename, level,
                                             relative_x, relative_y (or x, y)
raw/Lumbar Coords/data/processed_<source>_jpgs/<filename>     pictures (or .npy arrays under
                                                              data/processed_<source>/)
```

Columns are read by name; an unnamed index column is ignored. The canal point is marked twice (sides L and R);
public solutions use side R.
"""

from __future__ import annotations

from spine_lib.sources.rsna import SAG_T1, SAG_T2

IMPROVED_FILE = "coords_rsna_improved.csv"
PRETRAIN_FILE = "coords_pretrain.csv"
DATA_FOLDER = "data"
#: columns each table must have (besides one pair of :data:`POINT_COLUMNS`); ``side`` is optional
IMPROVED_COLUMNS: tuple[str, ...] = ("study_id", "series_id", "instance_number", "condition", "level")
PRETRAIN_COLUMNS: tuple[str, ...] = ("source", "filename", "level")
#: the point as pixels or as fractions of the image: a table has at least one of these pairs
POINT_COLUMNS: tuple[tuple[str, str], ...] = (("x", "y"), ("relative_x", "relative_y"))
#: The side whose canal point is a copy of the other's (left out; side R is kept).
CANAL_COPY_SIDE = "L"
#: pretraining sources -> (picture folder under data/, series type)
PRETRAIN_SOURCES: dict[str, tuple[str, str]] = {
    "spider": ("processed_spider_jpgs", SAG_T2),
    "lsd": ("processed_lsd_jpgs", SAG_T2),
    "osf": ("processed_osf_jpgs", SAG_T1),
    "tseg": ("processed_tseg_jpgs", "ct"),
}
PICTURE_FOLDER_SUFFIX = "_jpgs"
