"""A reviewer's part: the reports the matcher refuses, and the decisions a reviewer writes back (interim: PHI).

```
<interim>/review.csv     every report matching refused (ambiguous, no match, conflict): what was read (name,
                         birthday, birth year, exam date), the candidate folders with their scores, and why;
                         no file when nothing waits
<interim>/overrides.csv  written by the reviewer: report_file,patient_id,image_folder,note, one decision a row:
                         a report (report_file, or patient_id for all of a patient's reports) -> a folder of
                         images/, or "no folder"; note: free text, never read
```

:func:`~spine_lib.datasets.phenikaa.match_patients` applies the decisions before matching anything else and marks
them ``manual`` in ``matches.csv``; a decision whose report or folder is gone, or that contradicts another, is not
applied but listed in ``rejects.csv`` (stage ``override``). These two files are the only place besides the
interim tables where names appear: Dagster sees the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spine_lib.io.records import read_records_csv, write_records_csv

if TYPE_CHECKING:
    from spine_lib.datasets.phenikaa.reports import ReportFields

REVIEW_FILE = "review.csv"
OVERRIDES_FILE = "overrides.csv"
REVIEW_COLUMNS = [
    "report_file", "patient_id", "status", "patient_name", "birthday", "birth_year", "exam_date", "candidates",
    "reason",
]
OVERRIDE_COLUMNS = ["report_file", "patient_id", "image_folder", "note"]
#: The decision that a report has no image folder (case does not matter).
NO_FOLDER = "no folder"
#: The statuses a reviewer is asked to decide.
REFUSED = ("ambiguous", "no_match", "conflict")


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision for one report: its folder, or ``None`` for "no folder"."""

    report_file: str
    folder: str | None
    row: int  # the line of overrides.csv (the header is line 1)

    @property
    def source(self) -> str:
        return f"{OVERRIDES_FILE} line {self.row}"


def read_overrides(interim: Path) -> list[dict[str, str]]:
    """The rows of ``<interim>/overrides.csv`` (none when it is absent).

    Raises TabularDataError naming the file when a column of :data:`OVERRIDE_COLUMNS` but ``note`` is missing.
    """
    return read_records_csv(interim / OVERRIDES_FILE, required=OVERRIDE_COLUMNS[:3])


def write_review_table(rows: list[dict[str, object]], interim: Path) -> Path | None:
    """``<interim>/review.csv`` with the refused reports; when none waits, no file (an old one is removed)."""
    path = interim / REVIEW_FILE
    if not rows:
        path.unlink(missing_ok=True)
        return None
    write_records_csv(rows, path, columns=REVIEW_COLUMNS)
    return path


def resolve_decisions(
    rows: Iterable[dict[str, str]],
    records: Iterable[ReportFields],
    inbox: Iterable[str],
    folder_exists: Callable[[str], bool],
) -> tuple[dict[str, Decision], list[tuple[str, str]]]:
    """The decisions that apply, by report file, and ``(item, reason)`` for every row that does not.

    A row names a report by ``report_file`` or, for all of a patient's reports, by ``patient_id`` (both: they
    must agree). It applies to reports read completely (``status == "ok"``) whose file is in the inbox, and
    names a folder that exists or ``no folder``. Two rows giving one report different folders both fail.
    """
    records = list(records)
    by_file = {r.report_file: r for r in records}
    waiting = set(inbox) - set(by_file)
    decided: dict[str, Decision] = {}
    contested: dict[str, list[int]] = {}
    problems: list[tuple[str, str]] = []
    for line, row in enumerate(rows, start=2):
        item = f"{OVERRIDES_FILE}:{line}"
        report_file = (row.get("report_file") or "").strip()
        patient_id = (row.get("patient_id") or "").strip()
        folder_text = (row.get("image_folder") or "").strip()
        if not report_file and not patient_id:
            problems.append((item, "names no report: give report_file or patient_id"))
            continue
        if not folder_text:
            problems.append((item, f"no decision: image_folder is empty (a folder of images/ or {NO_FOLDER!r})"))
            continue
        if report_file:
            if report_file in waiting:
                problems.append((item, "report not read yet: the decision applies once it is"))
                continue
            if report_file not in by_file:
                problems.append((item, "report no longer in the inbox"))
                continue
            targets = [by_file[report_file]]
            if patient_id and targets[0].patient_id != patient_id:
                problems.append((item, f"the report's patient ID is {targets[0].patient_id}, not {patient_id}"))
                continue
        else:
            targets = [r for r in records if r.patient_id == patient_id]
            if not targets:
                problems.append((item, f"no report of patient ID {patient_id} in the inbox"))
                continue
        unread = [r for r in targets if r.status != "ok"]
        targets = [r for r in targets if r.status == "ok"]
        if not targets:
            problems.append((item, f"report rejected when read ({unread[0].reason}): fix the reading first"))
            continue
        folder = None if folder_text.casefold() == NO_FOLDER else folder_text
        if folder is not None and not folder_exists(folder):
            problems.append((item, f"image folder no longer exists: {folder}"))
            continue
        for record in targets:
            name = record.report_file
            earlier = decided.get(name)
            if name in contested:
                contested[name].append(line)
            elif earlier is not None and earlier.folder != folder:
                contested[name] = [earlier.row, line]
                del decided[name]
            elif earlier is None:
                decided[name] = Decision(name, folder, line)
    for lines in contested.values():
        others = ", ".join(str(n) for n in lines)
        problems.extend(
            (f"{OVERRIDES_FILE}:{n}", f"contradicting decisions for one report (lines {others}): none applied")
            for n in lines
        )
    return decided, problems


def review_row(
    record: ReportFields, status: str, candidates: list[tuple[str, float]], reason: str
) -> dict[str, object]:
    """One row of ``review.csv``: the report, what was read, the candidate folders (best first) and why."""
    return {
        "report_file": record.report_file, "patient_id": record.patient_id or "", "status": status,
        "patient_name": record.patient_name or "", "birthday": record.birthday or "",
        "birth_year": record.birth_year or "", "exam_date": record.exam_date or "",
        "candidates": "; ".join(f"{folder} ({score:.1f})" for folder, score in candidates), "reason": reason,
    }
