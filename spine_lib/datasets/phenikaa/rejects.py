"""The Phenikaa job's rejects table (``<interim>/rejects.csv``): every item that ended neither matched nor exported.

:func:`reject_row` is the only way a row is made, so no row can carry a patient's name: a file or folder of the
raw data is shown part by part by its pseudonym (:func:`~spine_lib.core.phi.shown_path`), and every reason and
description is redacted (:func:`~spine_lib.core.phi.redact`, with the row's own paths: a library's error message
may quote a patient-named path).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath

from spine_lib.core.phi import redact, shown_path
from spine_lib.io.records import write_records_csv

REJECTS_FILE = "rejects.csv"
REJECT_COLUMNS = ["stage", "item", "reason"]


def reject_row(
    stage: str, item: str | PurePath, reason: str, *, folder: str | PurePath | None = None, line: int | None = None
) -> dict[str, str]:
    """One row of ``rejects.csv``.

    ``item`` is a file or folder of the raw data (a path: shown by :func:`~spine_lib.core.phi.shown_path`, after its ``folder`` and
    before ``:line`` when given) or a description such as ``"patient 250010139 IVD 3"`` (a ``str``: redacted).

    Example:
        >>> reject_row("image_file", PurePath("Thumbs.db"), "not a DICOM file", folder="NGUYEN_VAN_SON_20250718")
        {'stage': 'image_file', 'item': 'phi-c9186f3a18a22649/Thumbs.db', 'reason': 'not a DICOM file'}
        >>> reject_row("report", PurePath("NGUYEN_VAN_SON_20250718.pdf"), "cannot open /in/NGUYEN_VAN_SON_20250718.pdf")
        {'stage': 'report', 'item': 'phi-c9186f3a18a22649.pdf', 'reason': 'cannot open /in/phi-c9186f3a18a22649.pdf'}
    """
    shown = shown_path(item) if isinstance(item, PurePath) else redact(item)
    if folder is not None:
        shown = f"{shown_path(folder)}/{shown}"
    if line is not None:
        shown = f"{shown}:{line}"
    names = [n for n in (item if isinstance(item, PurePath) else None, folder) if n is not None]
    return {"stage": stage, "item": shown, "reason": redact(reason, paths=names)}


def count_by_stage(rows: Iterable[dict[str, str]]) -> dict[str, int]:
    """How many rows each stage has."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["stage"]] = counts.get(row["stage"], 0) + 1
    return counts


def write_rejects(rows: list[dict[str, str]], interim: Path) -> Path:
    """``<interim>/rejects.csv`` (atomic)."""
    path = interim / REJECTS_FILE
    write_records_csv(rows, path, columns=REJECT_COLUMNS)
    return path
