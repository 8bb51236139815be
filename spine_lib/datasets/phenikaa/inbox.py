"""The reports inbox: which files are reports, which are new or changed, and the names they go by in Dagster."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from spine_lib.errors import ConfigError
from spine_lib.sources.phenikaa import REPORT_SUFFIXES


def report_files(reports: Path) -> list[Path]:
    """Report files of the inbox (sorted); other files are not reports."""
    if not reports.is_dir():
        raise ConfigError(reports, "reports folder does not exist")
    return sorted(p for p in reports.iterdir() if p.is_file() and p.suffix.lower() in REPORT_SUFFIXES)


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
            if not entry.is_file() or Path(entry.name).suffix.lower() not in REPORT_SUFFIXES:
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


def resolve_report_key(reports: Path, key: str) -> Path | None:
    """The inbox file a partition key stands for (None when it is gone)."""
    direct = reports / key
    if not key.startswith("report-"):
        return direct if direct.is_file() else None
    for path in report_files(reports):
        if report_partition_key(path.name) == key:
            return path
    return None
