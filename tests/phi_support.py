"""Scanning outputs, logs and Dagster instances for the PHI of synthetic patients (their names and birthdays).

The PHI zone of a data root (``raw/Phenikaa``, ``interim/Phenikaa``: the reports, image folders, label tables,
OCR results and the patient-matching table) and the generator's ``truth/`` may hold names; nothing else may.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from spine_lib.core.phi import date_spellings, spellings

#: folders of a data root where names and birthdays belong
PHI_ZONE = ("raw/Phenikaa", "interim/Phenikaa", "truth")


@dataclass(frozen=True)
class PhiFinding:
    """One spelling of a patient's name or birthday found where it must not be."""

    where: str
    spelling: str

    def __str__(self) -> str:
        return f"{self.where}: {self.spelling!r}"


def patient_phi(root: Path) -> set[str]:
    """Every spelling of the names and birthdays of a synthetic root's Phenikaa patients (from its truth)."""
    truth = json.loads((root / "truth" / "phenikaa.json").read_text(encoding="utf-8"))
    forms: set[str] = set()
    for patient in truth["patients"]:
        forms |= spellings(patient["full_name"])
        forms |= date_spellings(date.fromisoformat(patient["birthday"]))
    return forms


def find_phi(text: str, forms: Iterable[str], where: str) -> list[PhiFinding]:
    """The spellings of ``forms`` that occur in ``text``."""
    return [PhiFinding(where, form) for form in sorted(forms) if form in text]


def scan_tree(folder: Path, forms: set[str], skip: Iterable[str] = ()) -> list[PhiFinding]:
    """Names and birthdays in the names and bytes of every file under ``folder`` (SQLite databases, compute
    logs, DICOM headers, CSV, JSON, HTML, checkpoints...), the folders in ``skip`` (relative) left out."""
    skipped = [folder / s for s in skip]
    # One pass of one pattern over a file's bytes says whether any spelling is there (checkpoints are hundreds
    # of MB); only a file where one is gets the per-spelling search that names them all.
    anywhere = re.compile(b"|".join(re.escape(form.encode()) for form in sorted(forms, key=len, reverse=True)))
    found: list[PhiFinding] = []
    for path in sorted(folder.rglob("*")):
        if any(path == s or s in path.parents for s in skipped):
            continue
        relative = path.relative_to(folder).as_posix()
        found += find_phi(relative, forms, f"{folder.name}/{relative} (name)")
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if forms and anywhere.search(data):
                found += find_phi(data.decode("utf-8", errors="ignore"), forms, f"{folder.name}/{relative}")
    return found
