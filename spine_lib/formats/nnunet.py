"""nnU-Net v2's raw dataset layout, and the files we keep beside it: the one place they are spelt.

```
<nnUNet_raw>/DatasetXXX_Name/imagesTr/<case>_0000.nii.gz    the image (channel 0)
<nnUNet_raw>/DatasetXXX_Name/labelsTr/<case>.nii.gz         its labels, values consecutive from 0
<nnUNet_raw>/DatasetXXX_Name/dataset.json                   channel_names, labels, numTraining, file_ending
<nnUNet_raw>/DatasetXXX_Name/rejects.csv                    cases that could not be converted (ours)
<nnUNet_raw>/DatasetXXX_Name/conversion_manifest.json       each case's input fingerprint and result (ours)
```

Written by :mod:`spine_lib.datasets.nnunet`, read by nnU-Net itself, the segmentation trainer and the viewers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from spine_lib.errors import InputPathError
from spine_lib.io.fingerprint import dataset_fingerprint

DATASET_FOLDER = re.compile(r"^Dataset(?P<id>\d{3})_(?P<name>[A-Za-z0-9_\-]+)$")
IMAGES_TR = "imagesTr"
LABELS_TR = "labelsTr"
DATASET_JSON = "dataset.json"
#: the keys of dataset.json every reader relies on
DATASET_JSON_KEYS: tuple[str, ...] = ("channel_names", "labels", "numTraining", "file_ending")
CHANNEL_SUFFIX = "_0000"
DEFAULT_FILE_ENDING = ".nii.gz"
MANIFEST_NAME = "conversion_manifest.json"
REJECTS_NAME = "rejects.csv"
REJECT_COLUMNS: tuple[str, ...] = ("case", "image", "mask", "reason")


def image_path(dataset: Path, case: str, file_ending: str = DEFAULT_FILE_ENDING) -> Path:
    """``imagesTr/<case>_0000<ending>`` of a dataset."""
    return dataset / IMAGES_TR / f"{case}{CHANNEL_SUFFIX}{file_ending}"


def label_path(dataset: Path, case: str, file_ending: str = DEFAULT_FILE_ENDING) -> Path:
    """``labelsTr/<case><ending>`` of a dataset."""
    return dataset / LABELS_TR / f"{case}{file_ending}"


def read_dataset_json(dataset: Path) -> dict[str, Any]:
    """A dataset's ``dataset.json``; :class:`~spine_lib.errors.InputPathError` naming the file when it is
    missing, not JSON, or lacks a key nnU-Net needs."""
    path = dataset / DATASET_JSON
    if not path.is_file():
        raise InputPathError(path, "dataset.json does not exist")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputPathError(path, f"dataset.json is not valid JSON ({error})") from error
    if not isinstance(info, dict):
        raise InputPathError(path, "dataset.json is not a JSON object")
    if missing := [key for key in DATASET_JSON_KEYS if key not in info]:
        raise InputPathError(path, f"dataset.json lacks {', '.join(missing)}")
    return info


def dataset_version(dataset: Path) -> str:
    """Fingerprint of the converted dataset (dataset.json, every image and label file): changes when it does."""
    return dataset_fingerprint(dataset, [DATASET_JSON], [IMAGES_TR, LABELS_TR])
