"""Checks of a converted dataset (labels consecutive, images paired with labels) and its data version."""

from __future__ import annotations

from pathlib import Path

from spine_lib.core.checks import CheckOutcome
from spine_lib.formats.nnunet import (
    CHANNEL_SUFFIX,
    IMAGES_TR,
    LABELS_TR,
    read_dataset_json,
)


def check_labels_consecutive(dataset: Path) -> CheckOutcome:
    """dataset.json's labels run 0..N-1 from background, and every label file uses only those values."""
    import numpy as np
    import SimpleITK as sitk

    info = read_dataset_json(dataset)
    values = sorted(int(v) for v in info["labels"].values())
    outcome = CheckOutcome()
    if values != list(range(len(values))) or info["labels"].get("background") != 0:
        outcome.problems.append(f"dataset.json labels are not consecutive from background = 0: {values}")
    allowed = set(values)
    for path in sorted((dataset / LABELS_TR).glob(f"*{info['file_ending']}")):
        outcome.checked += 1
        present = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).tolist())
        if extra := sorted(present - allowed):
            outcome.problems.append(f"{path.name}: values not in dataset.json: {extra}")
    return outcome


def check_images_have_labels(dataset: Path) -> CheckOutcome:
    """Every image has its label file on the same voxel grid, every label its image, numTraining matches."""
    import SimpleITK as sitk

    info = read_dataset_json(dataset)
    ending = info["file_ending"]
    suffix = f"{CHANNEL_SUFFIX}{ending}"
    images = {p.name[: -len(suffix)]: p for p in (dataset / IMAGES_TR).glob(f"*{suffix}")}
    labels = {p.name[: -len(ending)]: p for p in (dataset / LABELS_TR).glob(f"*{ending}")}
    outcome = CheckOutcome(checked=len(images))
    if len(images) != info["numTraining"]:
        outcome.problems.append(f"numTraining is {info['numTraining']} but imagesTr holds {len(images)} cases")
    for case in sorted(set(labels) - set(images)):
        outcome.problems.append(f"{case}: label without an image")

    def header(path: Path) -> sitk.ImageFileReader:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader

    for case, path in sorted(images.items()):
        if case not in labels:
            outcome.problems.append(f"{case}: image without a label")
            continue
        a, b = header(path), header(labels[case])
        for what in ("Size", "Spacing", "Origin", "Direction"):
            va, vb = getattr(a, f"Get{what}")(), getattr(b, f"Get{what}")()
            if len(va) != len(vb) or any(abs(x - y) > 1e-4 for x, y in zip(va, vb, strict=True)):
                outcome.problems.append(f"{case}: image and label differ in {what.lower()}")
                break
    return outcome
