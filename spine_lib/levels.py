"""Spinal level names and the numbering conventions of each source. The one place they are spelt.

- Level names (RSNA and us): ``"L1/L2"`` ... ``"L5/S1"``, listed top-down in :data:`LEVELS`.
- SPIDER counts from the bottom: IVD label N is mask value ``200 + N``, 1 = L5/S1, 5 = L1/L2. Vertebrae follow
  the same order: vertebra N (mask value N) is the bone below disc N, so 1 = S1 (sacrum), 2 = L5, ..., 6 = L1;
  disc N lies between vertebra N (below) and N + 1 (above). Partially visible vertebrae are ``100 + N``.
- Phenikaa label tables count from the top: IVD label 1 = L1/L2, 5 = L5/S1.
- RSNA column suffixes: ``l1_l2`` ... ``l5_s1`` (``spinal_canal_stenosis_l4_l5``).

A level mix-up silently poisons a classifier, so every conversion goes through these functions.

Example:
    The same disc, L5/S1, is label 1 in SPIDER (bottom-up) and label 5 in Phenikaa (top-down):

    >>> spider_ivd_label("L5/S1"), phenikaa_ivd_label("L5/S1")
    (1, 5)
    >>> level_from_spider_ivd_label(1), level_from_phenikaa_ivd_label(1)
    ('L5/S1', 'L1/L2')
    >>> level_from_phenikaa_ivd_label(spider_ivd_label("L2/L3"))  # the mix-up these functions prevent
    'L4/L5'
"""

from __future__ import annotations

import re

LEVELS: tuple[str, ...] = ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")
LEVEL_TO_IDX: dict[str, int] = {level: i for i, level in enumerate(LEVELS)}
IDX_TO_LEVEL: dict[int, str] = dict(enumerate(LEVELS))
#: Vertebrae of the lumbar spine plus the sacrum, top-down.
VERTEBRAE: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")

SPIDER_DISC_OFFSET = 200
SPIDER_PARTIAL_OFFSET = 100
SPIDER_CANAL = 100


def check_level(level: str) -> str:
    """``level`` if it is one of :data:`LEVELS` (accepts ``'l4_l5'``, ``'L4-L5'``, ``' l4/l5 '``, and the
    shorthand of tables that leave the lower vertebra's letter out, ``'L4/5'``, or the separator, ``'L4L5'``).

    Args:
        level: a level name in any of the spellings the sources use.

    Returns:
        The canonical name (``'L4/L5'``).

    Raises:
        ValueError: not a lumbar level.

    Example:
        >>> check_level("l4_l5"), check_level(" L5-S1 "), check_level("L4/5"), check_level("l3l4")
        ('L4/L5', 'L5/S1', 'L4/L5', 'L3/L4')
        >>> check_level("T12/L1")
        Traceback (most recent call last):
            ...
        ValueError: unknown level 'T12/L1'; expected one of L1/L2, L2/L3, L3/L4, L4/L5, L5/S1
    """
    name = level.strip().upper().replace("_", "/").replace("-", "/")
    shorthand = re.fullmatch(r"L([1-4])/?L?([2-5])", name)
    if shorthand and int(shorthand[2]) == int(shorthand[1]) + 1:
        name = f"L{shorthand[1]}/L{shorthand[2]}"
    if name not in LEVEL_TO_IDX:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    return name


def spider_ivd_label(level: str) -> int:
    """SPIDER IVD label of a level (bottom-up): L5/S1 -> 1, L1/L2 -> 5.

    Args:
        level: a level name (any spelling :func:`check_level` accepts).

    Example:
        >>> [spider_ivd_label(level) for level in ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")]
        [5, 4, 3, 2, 1]
    """
    return len(LEVELS) - LEVEL_TO_IDX[check_level(level)]


def level_from_spider_ivd_label(label: int) -> str:
    """Level of a SPIDER IVD label: 1 -> L5/S1, 5 -> L1/L2 (labels above 5 are not lumbar).

    Args:
        label: the ``ivd_label`` of a SPIDER grading row (mask value minus 200).

    Raises:
        ValueError: a label outside 1..5 (a thoracic disc, or 0 for a row without a disc).

    Example:
        >>> level_from_spider_ivd_label(1), level_from_spider_ivd_label(5)
        ('L5/S1', 'L1/L2')
        >>> level_from_spider_ivd_label(6)
        Traceback (most recent call last):
            ...
        ValueError: SPIDER IVD label 6 is not a lumbar disc (1..5)
    """
    if not 1 <= label <= len(LEVELS):
        raise ValueError(f"SPIDER IVD label {label} is not a lumbar disc (1..{len(LEVELS)})")
    return LEVELS[len(LEVELS) - label]


def phenikaa_ivd_label(level: str) -> int:
    """Phenikaa IVD label of a level (top-down): L1/L2 -> 1, L5/S1 -> 5.

    Args:
        level: a level name (any spelling :func:`check_level` accepts).

    Example:
        >>> [phenikaa_ivd_label(level) for level in ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")]
        [1, 2, 3, 4, 5]
    """
    return LEVEL_TO_IDX[check_level(level)] + 1


def level_from_phenikaa_ivd_label(label: int) -> str:
    """Level of a Phenikaa IVD label: 1 -> L1/L2, 5 -> L5/S1.

    Args:
        label: the ``ivd_label`` of a Phenikaa table row.

    Raises:
        ValueError: a label outside 1..5.

    Example:
        >>> level_from_phenikaa_ivd_label(1), level_from_phenikaa_ivd_label(5)
        ('L1/L2', 'L5/S1')
        >>> level_from_phenikaa_ivd_label(0)
        Traceback (most recent call last):
            ...
        ValueError: Phenikaa IVD label 0 is not a lumbar disc (1..5)
    """
    if not 1 <= label <= len(LEVELS):
        raise ValueError(f"Phenikaa IVD label {label} is not a lumbar disc (1..{len(LEVELS)})")
    return LEVELS[label - 1]


def spider_disc_value(level: str) -> int:
    """Mask value of a disc in a SPIDER mask: L5/S1 -> 201, L1/L2 -> 205.

    Args:
        level: a level name (any spelling :func:`check_level` accepts).

    Example:
        >>> spider_disc_value("L5/S1"), spider_disc_value("l4_l5"), spider_disc_value("L1/L2")
        (201, 202, 205)
    """
    return SPIDER_DISC_OFFSET + spider_ivd_label(level)


def spider_vertebra_number(vertebra: str) -> int:
    """SPIDER vertebra number (bottom-up): S1 -> 1, L5 -> 2, ..., L1 -> 6.

    Args:
        vertebra: ``'L1'`` ... ``'L5'`` or ``'S1'``.

    Raises:
        ValueError: any other name.

    Example:
        >>> spider_vertebra_number("S1"), spider_vertebra_number("L5"), spider_vertebra_number("L1")
        (1, 2, 6)

        Disc N lies between vertebra N (below) and vertebra N + 1 (above):

        >>> upper, lower = vertebrae_of("L4/L5")
        >>> spider_ivd_label("L4/L5"), spider_vertebra_number(lower), spider_vertebra_number(upper)
        (2, 2, 3)
    """
    if vertebra not in VERTEBRAE:
        raise ValueError(f"unknown vertebra {vertebra!r}; expected one of {', '.join(VERTEBRAE)}")
    return len(VERTEBRAE) - VERTEBRAE.index(vertebra)


def rsna_level_suffix(level: str) -> str:
    """RSNA column suffix of a level: ``'L4/L5'`` -> ``'l4_l5'``.

    Args:
        level: a level name (any spelling :func:`check_level` accepts).

    Example:
        >>> "spinal_canal_stenosis_" + rsna_level_suffix("L5/S1")
        'spinal_canal_stenosis_l5_s1'
    """
    return check_level(level).lower().replace("/", "_")


def vertebrae_of(level: str) -> tuple[str, str]:
    """The vertebra above and below a disc: ``'L4/L5'`` -> ``('L4', 'L5')``.

    Args:
        level: a level name (any spelling :func:`check_level` accepts).

    Example:
        >>> vertebrae_of("L4/L5"), vertebrae_of("l5_s1")
        (('L4', 'L5'), ('L5', 'S1'))
    """
    upper, lower = check_level(level).split("/")
    return upper, lower
