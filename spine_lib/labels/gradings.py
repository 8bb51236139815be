"""Column names and value ranges of the radiological grading tables (SPIDER and the Phenikaa export).

Both sources spell the same columns slightly differently (SPIDER ``Patient``, Phenikaa ``Patient ID``; both
``Pfirrman grade``, sic). Tables are normalised to the snake_case names below, the only spelling used in code.
Level numbering differs too (SPIDER counts discs from the bottom, Phenikaa from the top): that conversion lives
with the level conventions, not here.
"""

from __future__ import annotations

import re

PATIENT_ID = "patient_id"
IVD_LABEL = "ivd_label"
MODIC = "modic"
UP_ENDPLATE = "up_endplate"
LOW_ENDPLATE = "low_endplate"
SPONDYLOLISTHESIS = "spondylolisthesis"
DISC_HERNIATION = "disc_herniation"
DISC_NARROWING = "disc_narrowing"
DISC_BULGING = "disc_bulging"
PFIRRMANN_GRADE = "pfirrmann_grade"

#: Grading columns in the order the source tables list them (after the patient column).
GRADING_COLUMNS: tuple[str, ...] = (
    IVD_LABEL,
    MODIC,
    UP_ENDPLATE,
    LOW_ENDPLATE,
    SPONDYLOLISTHESIS,
    DISC_HERNIATION,
    DISC_NARROWING,
    DISC_BULGING,
    PFIRRMANN_GRADE,
)

#: Inclusive value range of each integer column; IVD label 0 marks a row without a disc (SPIDER).
VALUE_RANGES: dict[str, tuple[int, int]] = {
    IVD_LABEL: (0, 25),
    MODIC: (0, 3),
    UP_ENDPLATE: (0, 1),
    LOW_ENDPLATE: (0, 1),
    SPONDYLOLISTHESIS: (0, 1),
    DISC_HERNIATION: (0, 1),
    DISC_NARROWING: (0, 1),
    DISC_BULGING: (0, 1),
    PFIRRMANN_GRADE: (1, 5),
}

#: Words a binary cell may hold instead of 1/0 (compared without case or diacritics; ``có``/``không``: Vietnamese)
FLAG_WORDS: dict[str, int] = {"yes": 1, "no": 0, "y": 1, "n": 0, "true": 1, "false": 0, "co": 1, "khong": 0}
#: Roman numerals a Pfirrmann cell may hold (``III``)
ROMAN_GRADES: dict[str, int] = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}

#: Modic types that a one-hot encoding spreads over ``modic_1..modic_3`` (type 0 sets none of them).
MODIC_TYPES: tuple[int, ...] = (1, 2, 3)

#: Spellings seen in the sources that do not normalise to the canonical name by themselves.
ALIASES: dict[str, str] = {
    "patient": PATIENT_ID,
    "patientid": PATIENT_ID,
    "id": PATIENT_ID,
    "pfirrman_grade": PFIRRMANN_GRADE,
    "pfirrman": PFIRRMANN_GRADE,
    "pfirrmann": PFIRRMANN_GRADE,
    "ivd": IVD_LABEL,
    "upper_endplate": UP_ENDPLATE,
    "lower_endplate": LOW_ENDPLATE,
    "herniation": DISC_HERNIATION,
    "narrowing": DISC_NARROWING,
    "bulging": DISC_BULGING,
}


def normalize_column_name(name: object) -> str:
    """``'  Pfirrman grade '`` -> ``'pfirrmann_grade'``; ``'UP endplate'`` -> ``'up_endplate'``."""
    text = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")
    return ALIASES.get(text, text)


def one_hot_column(column: str, value: int) -> str:
    """Name of the one-hot column of ``value`` in ``column`` (``modic``, 2 -> ``modic_2``)."""
    return f"{column}_{value}"
