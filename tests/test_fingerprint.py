"""Dataset fingerprints (Dagster data versions, nnU-Net preprocessing stamps) change exactly when the data does."""

from __future__ import annotations

import os
from pathlib import Path

from spine_lib.io.fingerprint import dataset_fingerprint


def make_dataset(root: Path) -> Path:
    (root / "images/a").mkdir(parents=True)
    (root / "annotations.csv").write_text("image_path,level\nimages/a/1.png,L1/L2\n")
    (root / "images/a/1.png").write_bytes(b"png-bytes")
    return root


def test_fingerprint_is_stable_and_follows_every_kind_of_change(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    first = dataset_fingerprint(root, ["annotations.csv"], ["images"])
    assert first == dataset_fingerprint(root, ["annotations.csv"], ["images"])
    assert len(first) == 64

    (root / "images/.tmp-write.png").write_bytes(b"half")  # an atomic write in progress is not data
    assert dataset_fingerprint(root, ["annotations.csv"], ["images"]) == first

    (root / "annotations.csv").write_text("image_path,level\nimages/a/1.png,L2/L3\n")  # same size, other content
    edited = dataset_fingerprint(root, ["annotations.csv"], ["images"])
    assert edited != first

    image = root / "images/a/1.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # rewritten in place
    touched = dataset_fingerprint(root, ["annotations.csv"], ["images"])
    assert touched != edited

    (root / "images/a/2.png").write_bytes(b"more")
    assert dataset_fingerprint(root, ["annotations.csv"], ["images"]) != touched


def test_absent_index_and_folder_count_as_absent(tmp_path: Path) -> None:
    empty = dataset_fingerprint(tmp_path, ["dataset.json"], ["imagesTr"])
    (tmp_path / "imagesTr").mkdir()
    assert dataset_fingerprint(tmp_path, ["dataset.json"], ["imagesTr"]) != empty  # an empty folder is not absence
    (tmp_path / "dataset.json").write_text("{}")
    assert dataset_fingerprint(tmp_path, ["dataset.json"], ["imagesTr"]) != empty
