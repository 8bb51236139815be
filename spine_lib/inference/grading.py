"""Grading discs with a trained classifier: from crop images, or from a sagittal series (localized, then cropped).

``spine-vision test --task mtl_classification|classification`` runs :func:`run_grading_test`:

- crop images (PNG/JPEG) are graded as they are; the T1 and T2 crops of one disc, named as the crops dataset names
  them (``<source>_<patient>_<sag_t1|sag_t2>_L<n>.png``), are paired into the ``[T2, T1, T2]`` input first, and
  a crop without its partner fills every channel;
- a sagittal series (DICOM folder or file, ``.mha``/``.nii``) is localized with the disc localizer
  (``--localization-model-path``, default the newest run) and each of its five discs cropped as the crops
  dataset crops them (single sequence: it fills every channel), then graded.

Results are JSON (one row per disc, and a row of ``errors`` per input that could not be graded); with
``--output-path x.csv`` the multi-task model's rows are written in the CSV format of
:meth:`~spine_lib.training.models.grading.ResNet50MTL.get_csv_header` with an ``error`` column, followed by a
row per input that could not be graded.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spine_lib.core.phi import safe_path, shown_path
from spine_lib.errors import ConfigError, InputPathError, UnsupportedFormatError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.io.formats import DICOM_SUFFIXES, VOLUME_SUFFIXES, image_suffix
from spine_lib.training.config import ModelTestConfig
from spine_lib.training.inference import INPUT_ERRORS, input_error, outcome

if TYPE_CHECKING:
    from spine_lib.inference.localization import DiscLocalizer

CROP_NAME = re.compile(r"^(?P<source>[a-z]+)_(?P<patient>.+)_(?P<series>sag_t1|sag_t2)_L(?P<level>[1-5])"
                       r"\.(?:png|jpe?g)$", re.IGNORECASE)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: the CSV column that says why an input could not be graded (empty for graded discs)
ERROR_COLUMN = "error"


def disc_inputs(paths: list[Path]) -> list[tuple[str, str, dict[str, Path]]]:
    """Crop files as discs: ``(patient, ivd_level, {series type: file})``; a file not named like a crop is a disc
    of its own (patient = its name, level empty).

    Example:
        >>> [(p, lv, sorted(s)) for p, lv, s in disc_inputs([Path("spider_7_sag_t2_L4.png"),
        ...                                                 Path("spider_7_sag_t1_L4.png"), Path("x.png")])]
        [('7', '4', ['sag_t1', 'sag_t2']), ('x', '', ['image'])]
    """
    discs: dict[str, tuple[str, str, dict[str, Path]]] = {}
    for path in paths:
        match = CROP_NAME.match(path.name)
        if match is None:
            discs[str(path)] = (Path(safe_path(path)).stem, "", {"image": path})
            continue
        patient, level, series = match["patient"], match["level"], {}
        disc = f"{match['source']}_{patient}_L{level}"
        _, _, series = discs.setdefault(disc, (patient, level, series))
        series[match["series"].lower()] = path
    return list(discs.values())


def disc_array(crops: dict[str, np.ndarray]) -> np.ndarray:
    """A disc's ``(H, W, 3)`` uint8 model input from its grey crops by series type: [T2, T1, T2], or its one
    image (``image``, or one sequence) in every channel."""
    from spine_lib.training.datasets.classification import construct_3channel

    if "image" in crops:
        t2, t1 = crops["image"], None
    else:
        t2, t1 = crops.get("sag_t2"), crops.get("sag_t1")
        if t2 is None:
            t2, t1 = t1, None
    channels = construct_3channel(t2, t1)  # (3, H, W) in [0, 1]
    return np.round(np.moveaxis(channels, 0, -1) * 255).astype(np.uint8)


def three_channel_inputs(discs: list[tuple[str, str, dict[str, Path]]]) -> list[np.ndarray]:
    """Each disc's ``(H, W, 3)`` uint8 model input (:func:`disc_array` of its crop files)."""
    from spine_lib.training.preprocessing import load_grayscale

    return [disc_array({kind: load_grayscale(path) for kind, path in series.items()}) for _, _, series in discs]


def readable_discs(discs: list[tuple[str, str, dict[str, Path]]]) -> tuple[
        list[tuple[str, str, dict[str, Path]]], list[np.ndarray], list[dict[str, str]]]:
    """The discs whose crops can be read, their model inputs, and an error row per crop that cannot be used.

    A crop that cannot be read leaves its disc to the other sequence's crop (graded alone, as a disc cropped on
    one sequence is); crops that cannot be combined (sizes differ) fail their disc.
    """
    from spine_lib.training.preprocessing import load_grayscale

    kept: list[tuple[str, str, dict[str, Path]]] = []
    arrays: list[np.ndarray] = []
    errors: list[dict[str, str]] = []
    for patient, level, series in discs:
        crops: dict[str, np.ndarray] = {}
        for kind, path in series.items():
            try:
                crops[kind] = load_grayscale(path)
            except INPUT_ERRORS as error:
                errors.append(input_error(path, error))
        if not crops:
            continue
        try:
            arrays.append(disc_array(crops))
        except INPUT_ERRORS as error:
            errors += [input_error(series[kind], error) for kind in crops]
            continue
        kept.append((patient, level, {kind: series[kind] for kind in crops}))
    return kept, arrays, errors


def input_kind(path: Path) -> str:
    """``picture`` (a disc crop) or ``series`` (a sagittal series, localized first); an input that is missing or
    of another kind raises an error naming it."""
    if not path.exists():
        raise InputPathError(path, "input does not exist")
    if path.is_dir():
        return "series"
    suffix = image_suffix(path)
    if suffix in PICTURE_SUFFIXES:
        return "picture"
    if suffix in DICOM_SUFFIXES or suffix in VOLUME_SUFFIXES:
        return "series"
    raise UnsupportedFormatError(path, f"unsupported extension {suffix or '(none)'!r}; expected a disc crop "
                                       f"({', '.join(PICTURE_SUFFIXES)}) or a sagittal series (a DICOM folder or "
                                       f"file, {', '.join(VOLUME_SUFFIXES)})")


def series_inputs(path: Path, localizer: DiscLocalizer) -> tuple[list[tuple[str, str, dict[str, Path]]],
                                                                 list[np.ndarray], list[dict[str, Any]]]:
    """A sagittal series localized and cropped: its discs, their model inputs, and per disc the localization."""
    from spine_lib.inference.disc_crops import disc_crop
    from spine_lib.io.readers import read_medical_image
    from spine_lib.io.sagittal import sagittal_volume
    from spine_lib.levels import phenikaa_ivd_label
    from spine_lib.training.datasets.classification import construct_3channel

    volume = sagittal_volume(read_medical_image(path), str(path))
    localization = localizer.localize(volume)
    if not localization.plausible:
        raise InputPathError(path, "implausible disc localization: " + "; ".join(localization.problems))
    pixels = volume.slice(localization.slice_index)
    discs, arrays, located = [], [], []
    for level, point in localization.points.items():
        crop, box = disc_crop(pixels, (point.x, point.y), volume.pixel_spacing)
        arrays.append(np.round(np.moveaxis(construct_3channel(crop), 0, -1) * 255).astype(np.uint8))
        discs.append((safe_path(path), str(phenikaa_ivd_label(level)), {"series": path}))
        located.append({"level": level, "x": round(point.x, 2), "y": round(point.y, 2),
                        "slice_index": localization.slice_index, "crop_box": [round(v, 2) for v in (
                            box.x0, box.y0, box.x1, box.y1)], "localization_run_id": localization.run_id})
    return discs, arrays, located


def run_grading_test(config: ModelTestConfig) -> dict[str, Any]:
    """Grade the inputs of ``config`` (crops or series) with the classifier at ``config.model_path``.

    A checkpoint or localizer that cannot be used fails at once; an input that is missing, unreadable or of
    another kind is a row of ``errors`` and the others are graded (see :mod:`spine_lib.training.inference`).
    """
    from spine_lib.core.device import select_device
    from spine_lib.inference.localization import DiscLocalizer
    from spine_lib.training.checkpoints import CheckpointError, model_from_checkpoint
    from spine_lib.training.models.grading import ConvNextClassifier, ResNet50MTL

    model, payload = model_from_checkpoint(config.model_path)
    if config.task == "mtl_classification" and not isinstance(model, ResNet50MTL):
        raise CheckpointError(config.model_path, f"checkpoint of model {payload['model_name']}, expected the "
                                                 "multi-task grading model (resnet50_mtl)")
    if not isinstance(model, ResNet50MTL | ConvNextClassifier):
        raise CheckpointError(config.model_path, f"checkpoint of model {payload['model_name']}, expected a grading "
                                                 "model")
    if isinstance(model, ConvNextClassifier) and config.class_names and len(config.class_names) != model.num_classes:
        raise ConfigError("--class-names", f"{len(config.class_names)} names for the {model.num_classes} classes of "
                                           f"{config.model_path}")
    trained = (payload.get("config") or {}).get("output_size") or (224, 224)
    image_size = tuple(config.image_size or trained)
    device = select_device(config.device, mixed_precision=False).device
    inputs = list(dict.fromkeys(Path(p) for p in config.inputs))
    errors: list[dict[str, str]] = []
    pictures: list[Path] = []
    series: list[Path] = []
    for path in inputs:
        try:
            (pictures if input_kind(path) == "picture" else series).append(path)
        except INPUT_ERRORS as error:
            errors.append(input_error(path, error))
    discs, arrays, unreadable = readable_discs(disc_inputs(pictures))
    errors += unreadable
    located: list[dict[str, Any] | None] = [None] * len(discs)
    if series:
        localizer = DiscLocalizer(config.localization_model_path, device=config.device)
        localizer.ensure_loaded()  # a localizer that cannot be used fails the test, not each series
        for path in series:
            try:
                more, crops, where = series_inputs(path, localizer)
            except INPUT_ERRORS as error:
                errors.append(input_error(path, error))
                continue
            discs += more
            arrays += crops
            located += where
    rows = []
    output: dict[str, Any] = {"inference_time_ms": 0.0}
    if arrays:
        model = model.to(device).eval()
        output = model.test_inference(arrays, image_size, device)  # type: ignore[arg-type]
    for n, (patient, level, files) in enumerate(discs):
        if isinstance(model, ResNet50MTL):
            grades = {head: values[n] for head, values in output["predictions"].items()}
            probabilities = {head: values[n] for head, values in output["probabilities"].items()}
        else:
            classes = config.class_names or [str(i) for i in range(len(output["probabilities"][n]))]
            grades = {"class": output["predictions"][n], "class_name": classes[output["predictions"][n]]}
            probabilities = {"class": output["probabilities"][n]}
        row = {"patient_id": patient, "ivd_level": level, "inputs": {k: shown_path(v) for k, v in files.items()},
               "grades": grades, "probabilities": probabilities}
        if located[n] is not None:
            row["localization"] = located[n]
        rows.append(row)
    order = {shown_path(path): n for n, path in enumerate(inputs)}
    errors.sort(key=lambda e: order.get(e["input"], len(order)))
    result: dict[str, Any] = {
        "task": config.task, "model_path": str(config.model_path), "model": payload["model_name"],
        "run_id": payload.get("run_id"), "device": device, "image_size": list(image_size),
        "inference_time_ms": round(output["inference_time_ms"], 3), "predictions": rows,
        **outcome(len(inputs), errors),
    }
    if config.output_path is not None:
        if config.output_path.suffix.lower() == ".csv" and isinstance(model, ResNet50MTL):
            atomic_write_text(config.output_path, grades_csv(model, arrays, discs, errors, image_size, device))
        else:
            atomic_write_text(config.output_path, json.dumps(result, indent=2))
    return result


def grades_csv(model: Any, arrays: list[np.ndarray], discs: list[tuple[str, str, dict[str, Path]]],
               errors: list[dict[str, str]], image_size: tuple[int, ...], device: str) -> str:
    """The multi-task model's CSV: a row per graded disc (:meth:`ResNet50MTL.get_csv_header` and an empty
    ``error``), then a row per input that could not be graded (its disc's name and level, and the error)."""
    import torch

    from spine_lib.training.models.grading import ResNet50MTL
    from spine_lib.training.preprocessing import prepare_batch

    header = [*ResNet50MTL.get_csv_header(), ERROR_COLUMN]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    if arrays:
        with torch.no_grad():
            batch, _ = prepare_batch(arrays, image_size, keep_channels=True)  # type: ignore[arg-type]
            predictions = model(batch.to(device)).to("cpu")
        for n, (patient, level, _) in enumerate(discs):
            writer.writerow([*model.to_csv_row(predictions, patient, level, index=n), ""])
    for error in errors:
        (patient, level, _), = disc_inputs([Path(error["input"])])
        writer.writerow([patient, level, *[""] * (len(header) - 3), error["error"]])
    return buffer.getvalue()
