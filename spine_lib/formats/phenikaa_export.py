"""The export of the matched Phenikaa patients: the one place its files and columns are spelt.

```
<export>/radiological_labels.csv     patient_id, level (L1/L2 ... L5/S1), ivd_label (the table's top-down number),
                                     the grading columns, Modic one-hot (modic_1..modic_3: a disc may have several)
<export>/images/<patient_id>/...     the patient's DICOM study (series sub-folders kept; no name, no birthday)
```

Written by :mod:`spine_lib.datasets.phenikaa`, read by the crops builder. Patient IDs only: no PHI here. The labels
file holds the columns of :data:`LABEL_COLUMNS` only, whatever else the hospital's tables hold (a name or birthday
column is never exported).
"""

from __future__ import annotations

from pathlib import Path

from spine_lib.io.records import read_records_csv
from spine_lib.labels.gradings import GRADING_COLUMNS, MODIC, MODIC_TYPES, PATIENT_ID, one_hot_column

LABELS_FILE = "radiological_labels.csv"
IMAGES_FOLDER = "images"
LEVEL = "level"
#: The allow-list of ``radiological_labels.csv``, in order: IDs, levels and grades (a table's present ones).
LABEL_COLUMNS: tuple[str, ...] = (
    PATIENT_ID, LEVEL, *(c for c in GRADING_COLUMNS if c != MODIC), *(one_hot_column(MODIC, t) for t in MODIC_TYPES),
)


def patient_folder(export: Path, patient_id: str) -> Path:
    """``<export>/images/<patient_id>``."""
    return Path(export) / IMAGES_FOLDER / patient_id


def modic_type(row: dict[str, str]) -> int:
    """The Modic type of an exported row: the lowest type its one-hot columns set (a mixed 1/2 change counts as
    type 1), 0 for none; a row that carries ``modic`` itself keeps it.

    Example:
        >>> modic_type({"modic_1": "1", "modic_2": "1", "modic_3": "0"}), modic_type({"modic_1": "0", "modic_2": "0"})
        (1, 0)
    """
    if row.get(MODIC) not in (None, ""):
        return int(row[MODIC])
    return next((t for t in MODIC_TYPES if row.get(one_hot_column(MODIC, t)) in ("1", "1.0", "True")), 0)


def read_label_rows(export: Path) -> list[dict[str, str]]:
    """The rows of ``<export>/radiological_labels.csv`` with a single ``modic`` column added (none if absent)."""
    rows = read_records_csv(Path(export) / LABELS_FILE, required=(PATIENT_ID, LEVEL))
    return [{**row, MODIC: str(modic_type(row))} for row in rows]
