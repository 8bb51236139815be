"""Content fingerprints of dataset folders: one short hash that changes whenever the dataset does.

Small index files (``dataset.json``, ``annotations.csv``) are hashed by content; the bulk files under the
listed folders by relative path, size and modification time, so that fingerprinting a large dataset costs one
``stat`` per file. Used to skip redundant work (nnU-Net preprocessing) and as Dagster data versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path


def dataset_fingerprint(root: Path, index_files: Sequence[str], folders: Sequence[str] = ()) -> str:
    """Hex SHA-256 of ``index_files`` (content) and every file under ``folders`` (path, size, mtime).

    Hidden files (temporary files of atomic writes) are left out; a missing index file or folder counts as
    absent, so the fingerprint still changes when it appears.
    """
    digest = hashlib.sha256()
    for name in index_files:
        path = root / name
        digest.update(f"index:{name}:".encode())
        digest.update(path.read_bytes() if path.is_file() else b"<absent>")
    for folder in folders:
        base = root / folder
        digest.update(f"folder:{folder}:".encode())
        if not base.is_dir():
            digest.update(b"<absent>")
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")):
            stat = path.stat()
            digest.update(f"{path.relative_to(base).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
