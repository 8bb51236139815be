"""RSNA 2024 coordinates (and the Lumbar Coords CSVs, when present) -> the IVD localization dataset.

```
<base>/processed/<output_name>/
    images/rsna_<study>_<series>_<instance>.png     the labelled instance, normalized to 8 bits
    images/pretrain_<source>_<name>.png              Lumbar Coords pretraining images (when present)
    annotations.csv                                  one row per (image, level, point)
    rejects.csv                                      coordinate rows that could not be used, with the reason
```

One point per level and image: RSNA's Spinal Canal Stenosis point on Sagittal T2 (where the disc meets the
canal) and the left/right Neural Foraminal Narrowing points on Sagittal T1. Subarticular points (Axial T2) are
not sagittal and are left out (counted). ``coords_rsna_improved.csv`` replaces the RSNA point of the same
study, series, condition and level; ``coords_pretrain.csv`` adds its own images.

Lumbar Coords (``<base>/raw/Lumbar Coords/``, optional; columns by name, an unnamed index column is ignored):
- ``coords_rsna_improved.csv``: study_id, series_id, instance_number (``-1`` when unknown), condition, level,
  x, y (pixels; or relative_x, relative_y) and side (L/R; the canal point is taken from side R);
- ``coords_pretrain.csv``: source (spider, lsd, osf, tseg), filename, level, relative_x, relative_y (or x, y);
  pictures under ``data/processed_<source>_jpgs/`` (or ``.npy`` arrays under ``data/processed_<source>/``).

Pixel convention: ``x`` is the column, ``y`` the row, pixel centres at integers (as RSNA's coordinates);
``relative_x = x / width`` and ``relative_y = y / height``.

The package is cut by stage: :mod:`.read` (coordinate tables), :mod:`.resolve` (rows to images, rejects),
:mod:`.images` (PNG writing), :mod:`.build` (the job), :mod:`.audit` (checks); the dataset's files, columns and
data version are spelt in :mod:`spine_lib.formats.ivd_coords`, shared with the training reader.

A bad row (missing DICOM, invalid instance number, point outside the image, unknown series type, cells that do
not match the header, ...) is skipped, counted by reason in the report and written to ``rejects.csv``; the build
carries on, and every row read is an annotation, a reject or a row left out on purpose (counted by reason).
A broken input fails before anything of a previous dataset is replaced, with an error naming the file and the
cause: a table that is not CSV text, lacks a required column or has no rows, a file where the dataset's folder
belongs, a build whose rows all fail. A table that is not UTF-8 is read as Windows-1252/Latin-1 (a warning, and
``encodings`` in the report). New images are staged in a temporary folder and moved in at the end; images are
reused when newer than their source, so a rerun gives the same dataset, and it sweeps the temporaries a killed
run left.
"""

from spine_lib.datasets.ivd_coords.audit import DatasetAudit, audit_dataset
from spine_lib.datasets.ivd_coords.build import build_ivd_coords, main, report_lines
from spine_lib.datasets.ivd_coords.config import IVDDatasetConfig, IVDDatasetReport
from spine_lib.formats.ivd_coords import ANNOTATION_COLUMNS, REJECT_COLUMNS, dataset_version, read_annotations

__all__ = [
    "ANNOTATION_COLUMNS",
    "REJECT_COLUMNS",
    "DatasetAudit",
    "IVDDatasetConfig",
    "IVDDatasetReport",
    "audit_dataset",
    "build_ivd_coords",
    "dataset_version",
    "main",
    "read_annotations",
    "report_lines",
]
