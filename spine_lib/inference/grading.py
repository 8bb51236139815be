"""Grading discs with a trained classifier: from crop images, or from a sagittal series (localized, then cropped).

``spine-vision test --task mtl_classification|classification`` runs :func:`run_grading_test`:

- crop images (PNG/JPEG) are graded as they are; the T1 and T2 crops of one disc, named as the crops dataset names
  them (``<source>_<patient>_<sag_t1|sag_t2>_L<n>.png``), are paired into the ``[T2, T1, T2]`` input first, and
  a crop without its partner fills every channel;
- a sagittal series (DICOM folder or file, ``.mha``/``.nii``) is localized with the disc localizer
  (``--localization-model-path``, default the newest run) and each of its five discs cropped as the crops
  dataset crops them (single sequence: it fills every channel), then graded.

Results are JSON (one row per disc); with ``--output-path x.csv`` the multi-task model's rows are written in the
CSV format of :meth:`~spine_lib.training.models.grading.ResNet50MTL.get_csv_header`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from spine_lib.errors import ConfigError, InputPathError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.training.config import ModelTestConfig

CROP_NAME = re.compile(r"^(?P<source>[a-z]+)_(?P<patient>.+)_(?P<series>sag_t1|sag_t2)_L(?P<level>[1-5])"
                       r"\.(?:png|jpe?g)$", re.IGNORECASE)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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
            discs[str(path)] = (path.stem, "", {"image": path})
            continue
        patient, level, series = match["patient"], match["level"], {}
        disc = f"{match['source']}_{patient}_L{level}"
        _, _, series = discs.setdefault(disc, (patient, level, series))
        series[match["series"].lower()] = path
    return list(discs.values())


def three_channel_inputs(discs: list[tuple[str, str, dict[str, Path]]]) -> list[np.ndarray]:
    """Each disc's ``(H, W, 3)`` uint8 model input: [T2, T1, T2], or its one image in every channel."""
    from PIL import Image

    from spine_lib.training.datasets.classification import construct_3channel

    def grey(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.uint8)

    arrays = []
    for _, _, series in discs:
        if "image" in series:
            t2, t1 = grey(series["image"]), None
        else:
            t2 = grey(series["sag_t2"]) if "sag_t2" in series else None
            t1 = grey(series["sag_t1"]) if "sag_t1" in series else None
            if t2 is None:
                t2, t1 = t1, None
        channels = construct_3channel(t2, t1)  # (3, H, W) in [0, 1]
        arrays.append(np.round(np.moveaxis(channels, 0, -1) * 255).astype(np.uint8))
    return arrays


def series_inputs(path: Path, config: ModelTestConfig) -> tuple[list[tuple[str, str, dict[str, Path]]],
                                                                 list[np.ndarray], list[dict[str, Any]]]:
    """A sagittal series localized and cropped: its discs, their model inputs, and per disc the localization."""
    from spine_lib.inference.disc_crops import disc_crop
    from spine_lib.inference.localization import DiscLocalizer
    from spine_lib.io.readers import read_medical_image
    from spine_lib.io.sagittal import sagittal_volume
    from spine_lib.levels import phenikaa_ivd_label
    from spine_lib.training.datasets.classification import construct_3channel

    localizer = DiscLocalizer(config.localization_model_path, device=config.device)
    volume = sagittal_volume(read_medical_image(path), str(path))
    localization = localizer.localize(volume)
    if not localization.plausible:
        raise InputPathError(path, "implausible disc localization: " + "; ".join(localization.problems))
    pixels = volume.slice(localization.slice_index)
    discs, arrays, located = [], [], []
    for level, point in localization.points.items():
        crop, box = disc_crop(pixels, (point.x, point.y), volume.pixel_spacing)
        arrays.append(np.round(np.moveaxis(construct_3channel(crop), 0, -1) * 255).astype(np.uint8))
        discs.append((path.name, str(phenikaa_ivd_label(level)), {"series": path}))
        located.append({"level": level, "x": round(point.x, 2), "y": round(point.y, 2),
                        "slice_index": localization.slice_index, "crop_box": [round(v, 2) for v in (
                            box.x0, box.y0, box.x1, box.y1)], "localization_run_id": localization.run_id})
    return discs, arrays, located


def run_grading_test(config: ModelTestConfig) -> dict[str, Any]:
    """Grade the inputs of ``config`` (crops or series) with the classifier at ``config.model_path``."""
    import torch

    from spine_lib.core.device import select_device
    from spine_lib.training.checkpoints import CheckpointError, model_from_checkpoint
    from spine_lib.training.models.grading import ConvNextClassifier, ResNet50MTL

    missing = [p for p in config.inputs if not Path(p).exists()]
    if missing:
        raise InputPathError(missing[0], "input does not exist")
    model, payload = model_from_checkpoint(config.model_path)
    if config.task == "mtl_classification" and not isinstance(model, ResNet50MTL):
        raise CheckpointError(config.model_path, f"{payload['model_name']} is not the multi-task grading model")
    if not isinstance(model, ResNet50MTL | ConvNextClassifier):
        raise CheckpointError(config.model_path, f"{payload['model_name']} is not a grading model")
    trained = (payload.get("config") or {}).get("output_size") or (224, 224)
    image_size = tuple(config.image_size or trained)
    device = select_device(config.device, mixed_precision=False).device
    pictures = [Path(p) for p in config.inputs if Path(p).suffix.lower() in PICTURE_SUFFIXES]
    series = [Path(p) for p in config.inputs if Path(p).suffix.lower() not in PICTURE_SUFFIXES]
    discs = disc_inputs(pictures)
    arrays = three_channel_inputs(discs)
    located: list[dict[str, Any] | None] = [None] * len(discs)
    for path in series:
        more, inputs, where = series_inputs(path, config)
        discs += more
        arrays += inputs
        located += where
    if not arrays:
        raise ConfigError("inputs", "nothing to grade")
    model = model.to(device).eval()
    output = model.test_inference(arrays, image_size, device)  # type: ignore[arg-type]
    rows = []
    for n, (patient, level, files) in enumerate(discs):
        if isinstance(model, ResNet50MTL):
            grades = {head: values[n] for head, values in output["predictions"].items()}
            probabilities = {head: values[n] for head, values in output["probabilities"].items()}
        else:
            classes = config.class_names or [str(i) for i in range(len(output["probabilities"][n]))]
            grades = {"class": output["predictions"][n], "class_name": classes[output["predictions"][n]]}
            probabilities = {"class": output["probabilities"][n]}
        row = {"patient_id": patient, "ivd_level": level, "inputs": {k: str(v) for k, v in files.items()},
               "grades": grades, "probabilities": probabilities}
        if located[n] is not None:
            row["localization"] = located[n]
        rows.append(row)
    result: dict[str, Any] = {
        "task": config.task, "model_path": str(config.model_path), "model": payload["model_name"],
        "run_id": payload.get("run_id"), "device": device, "image_size": list(image_size),
        "inference_time_ms": round(output["inference_time_ms"], 3), "predictions": rows,
    }
    if config.output_path is not None:
        if config.output_path.suffix.lower() == ".csv" and isinstance(model, ResNet50MTL):
            with torch.no_grad():
                from spine_lib.training.preprocessing import prepare_batch

                batch, _ = prepare_batch(arrays, image_size, keep_channels=True)  # type: ignore[arg-type]
                predictions = model(batch.to(device)).to("cpu")
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(ResNet50MTL.get_csv_header())
            for n, (patient, level, _) in enumerate(discs):
                writer.writerow(model.to_csv_row(predictions, patient, level, index=n))
            atomic_write_text(config.output_path, buffer.getvalue())
        else:
            atomic_write_text(config.output_path, json.dumps(result, indent=2))
    return result
