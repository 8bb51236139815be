"""Atomic writes: build the output under a temporary name in the target's folder, then rename it into place.

A reader never sees a half-written file, and a failed write leaves the previous version untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

#: the names :func:`atomic_path` (``.<stem>.<32 hex>.tmp<suffix>``) and :func:`atomic_folder_write`
#: (``.<name>.<8 characters>.tmp``) give their temporaries
TEMPORARY_NAME = re.compile(r"^\..+\.(?:[0-9a-f]{32}\.tmp(?:\.[^/]*)?|[a-z0-9_]{8}\.tmp)$")


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing) for the block: writers of the same outputs in
    other processes (two Dagster runs, the CLI beside the daemon) wait for their turn instead of sweeping each
    other's temporaries or swapping in an older view. The lock ends with the process whatever happens."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target`` (same suffixes); on success it replaces ``target``.

    The temporary file keeps the target's suffixes so that writers choosing the format by extension
    (SimpleITK, pandas) pick the right one.
    """
    target = Path(target)
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    # A unique name that is not created here: the writer creates it (no empty file to truncate first).
    tmp = target.parent / f".{target.stem}.{uuid.uuid4().hex}.tmp{suffix}"
    try:
        yield tmp
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder_write(target: Path) -> Iterator[Path]:
    """Yield a path with ``target``'s file name inside a private temporary folder next to it.

    For formats written as several files (MetaImage ``.mhd`` + ``.raw``/``.zraw``) whose header names the
    data file: every file keeps its final name, data files are moved in first and the header last.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp_dir / target.name
        produced = sorted(tmp_dir.iterdir(), key=lambda p: p.name == target.name)  # header last
        for path in produced:
            path.replace(target.parent / path.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def atomic_write_text(target: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding=encoding)
    return target


def atomic_write_bytes(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def is_temporary(path: Path) -> bool:
    """True for a file or folder that an atomic write of this module left behind (a run killed mid-write)."""
    return bool(TEMPORARY_NAME.match(Path(path).name))


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove every temporary an interrupted atomic write left anywhere under ``folder``; return what went.

    A job calls it on its output folder before it writes, so that a run killed by ``kill -9`` leaves nothing a
    rerun (or a tool listing the folder, such as nnU-Net's) would count.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    swept: list[Path] = []
    for current, dirs, files in os.walk(folder):
        for name in [d for d in dirs if TEMPORARY_NAME.match(d)]:
            shutil.rmtree(Path(current) / name, ignore_errors=True)
            swept.append(Path(current) / name)
            dirs.remove(name)
        for name in files:
            if TEMPORARY_NAME.match(name):
                (Path(current) / name).unlink(missing_ok=True)
                swept.append(Path(current) / name)
    return sorted(swept)


def check_output_folder(folder: Path, folders: Sequence[str] = (), files: Sequence[str] = ()) -> None:
    """Fail before anything is written when ``folder`` (or a folder above it, or one of its sub-``folders``) is
    a file, or one of its ``files`` is a folder.

    Raises:
        InputPathError: naming the first path of the wrong kind.
    """
    from spine_lib.errors import InputPathError

    folder = Path(folder)
    for path in (folder, *folder.parents):
        if path.is_dir():
            break
        if path.exists() or path.is_symlink():
            raise InputPathError(path, "is a file, expected a folder")
    for name in folders:
        if (folder / name).exists() and not (folder / name).is_dir():
            raise InputPathError(folder / name, "is a file, expected a folder")
    for name in files:
        if (folder / name).is_dir():
            raise InputPathError(folder / name, "is a folder, expected a file")
