"""The reports inbox: which files are reports, why the others are not, which are new or changed, and the names
reports go by in Dagster.

Every entry of the inbox is accounted for: a report file (:data:`REPORT_SUFFIXES`) is read, anything else
(:func:`not_report_reason`) is listed in ``rejects.csv`` with the reason. The sensor and the CLI share
:func:`is_report_file`, so they agree on what a report is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from spine_lib.errors import ConfigError
from spine_lib.sources.phenikaa import REPORT_SUFFIXES

#: What the inbox may hold besides reports, by extension, to say why each is not read.
OTHER_FILE_KINDS: dict[str, str] = {
    ".txt": "a text file",
    ".csv": "a table",
    ".xls": "a spreadsheet",
    ".xlsx": "a spreadsheet",
    ".doc": "a word-processor document (export it as PDF)",
    ".docx": "a word-processor document (export it as PDF)",
    ".odt": "a word-processor document (export it as PDF)",
    ".rtf": "a word-processor document (export it as PDF)",
    ".bmp": "an image format that is not read (save it as PNG or JPEG)",
    ".gif": "an image format that is not read (save it as PNG or JPEG)",
    ".webp": "an image format that is not read (save it as PNG or JPEG)",
    ".heic": "an image format that is not read (save it as PNG or JPEG)",
    ".heif": "an image format that is not read (save it as PNG or JPEG)",
    ".jp2": "an image format that is not read (save it as PNG or JPEG)",
    ".svg": "an image format that is not read (save it as PNG or JPEG)",
    ".dcm": "a DICOM file (studies belong in images/)",
    ".zip": "an archive (unpack the reports into the inbox)",
    ".rar": "an archive (unpack the reports into the inbox)",
    ".7z": "an archive (unpack the reports into the inbox)",
}


def is_report_file(name: str) -> bool:
    """Whether a file of this name is read as a report (its extension is one of :data:`REPORT_SUFFIXES`)."""
    return Path(name).suffix.lower() in REPORT_SUFFIXES


def not_report_reason(path: Path) -> str | None:
    """Why an inbox entry is not a report (no patient data in the reason); ``None`` for a report file.

    An empty report file is still a report: reading it rejects it (and a later, complete upload is read).
    """
    if path.is_dir():
        return "a folder, not a report (reports are read from the top of the inbox only)"
    if not path.is_file():
        return "not a regular file"
    if is_report_file(path.name):
        return None
    suffix = path.suffix.lower()
    kind = OTHER_FILE_KINDS.get(suffix) or (f"{suffix} files are not read" if suffix else "no file extension")
    return f"not a report: {kind}; reports are {', '.join(REPORT_SUFFIXES)}"


def _inbox(reports: Path) -> list[Path]:
    if not reports.is_dir():
        raise ConfigError(reports, "reports folder does not exist")
    return sorted(reports.iterdir())


def report_files(reports: Path) -> list[Path]:
    """Report files of the inbox (sorted); the other entries are :func:`inbox_rejects`."""
    return [p for p in _inbox(reports) if p.is_file() and is_report_file(p.name)]


def inbox_rejects(reports: Path) -> list[tuple[str, str]]:
    """``(entry name, reason)`` for every entry of the inbox that is not a report file (sorted)."""
    return [(p.name, reason) for p in _inbox(reports) if (reason := not_report_reason(p)) is not None]


def file_signature(path: Path) -> str:
    """What identifies one version of a report file: modification time and size."""
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def inbox_changes(
    reports: Path, seen: dict[str, str], limit: int, key: Callable[[str], str] = str
) -> tuple[list[tuple[str, str]], int]:
    """Report files that are new or changed since ``seen`` (``key(file name)`` -> signature), at most ``limit``.

    Returns the chunk (file name, signature) in name order and how many more changes wait for a later tick,
    so a huge inbox is processed in bounded steps.
    """
    changes = []
    with os.scandir(reports) as entries:
        for entry in entries:
            if not entry.is_file() or not is_report_file(entry.name):
                continue
            stat = entry.stat()
            signature = f"{stat.st_mtime_ns}:{stat.st_size}"
            if seen.get(key(entry.name)) != signature:
                changes.append((entry.name, signature))
    changes.sort()
    return changes[:limit], max(0, len(changes) - limit)


def report_partition_key(file_name: str) -> str:
    """The name a report goes by outside the PHI zone (Dagster partitions, run keys, metadata).

    ID-named reports keep their name (``250010139.png``: an ID is not PHI); patient-named ones
    (``NGUYEN_VAN_SON_20250718.pdf``) become ``report-<hash>.pdf``, a stable pseudonym of the file name.
    """
    path = Path(file_name)
    if path.stem.isdigit():
        return file_name
    digest = hashlib.sha256(file_name.encode("utf-8")).hexdigest()[:16]
    return f"report-{digest}{path.suffix.lower()}"


def reports_by_key(reports: Path) -> dict[str, Path]:
    """Every report file of the inbox under its partition key (:func:`report_partition_key`): one listing for a
    run over many partitions."""
    return {report_partition_key(path.name): path for path in report_files(reports)}


def resolve_report_key(reports: Path, key: str) -> Path | None:
    """The inbox file a partition key stands for (None when it is gone)."""
    direct = reports / key
    if not key.startswith("report-"):
        return direct if direct.is_file() else None
    for path in report_files(reports):
        if report_partition_key(path.name) == key:
            return path
    return None
