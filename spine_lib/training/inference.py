"""``spine-vision test``: run a trained checkpoint on images or DICOM files, return JSON-ready results.

Every input ends in the result: as prediction rows, or as one row of ``errors`` (``input``, ``error``: the file and
the cause in one sentence) when it is missing, unreadable or of the wrong kind; the other inputs are predicted all
the same. ``inputs``, ``predicted`` and ``failed`` count them (``inputs == predicted + failed``).
:func:`check_outcome` says whether the test as a whole failed: no input predicted, or, when ``strict``, any input
not predicted. A checkpoint that cannot be used fails the whole test at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from spine_lib.core.phi import redact, safe_path, shown_path
from spine_lib.errors import ConfigError, InputPathError, SpineVisionError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.levels import IDX_TO_LEVEL
from spine_lib.training.config import ModelTestConfig

if TYPE_CHECKING:
    import numpy as np

#: what reading one input may raise besides the library's own errors (image decoders, odd pixel layouts)
INPUT_ERRORS: tuple[type[Exception], ...] = (SpineVisionError, OSError, ValueError)


class PredictionError(SpineVisionError):
    """A model test that predicted nothing, or (``--strict``) left inputs unpredicted."""


def input_error(path: Path | str, error: Exception) -> dict[str, str]:
    """The result row of an input that could not be predicted: the input and one sentence naming it and the cause
    (a part of the path that may be a patient's name shown by its pseudonym, :func:`~spine_lib.core.phi.shown_path`).

    Example:
        >>> input_error("a.png", InputPathError("a.png", "input does not exist"))
        {'input': 'a.png', 'error': 'a.png: input does not exist'}
        >>> input_error("b.png", ValueError("T2 and T1 crops differ in shape"))["error"]
        'b.png: cannot use this input (T2 and T1 crops differ in shape)'
    """
    if isinstance(error, SpineVisionError):
        message = str(error) if error.subject is not None else f"{path}: {error.cause}"
    else:
        message = f"{path}: cannot use this input ({str(error) or type(error).__name__})"
    shown = shown_path(path)
    message = redact(message, paths=[path])
    logger.warning("test input {} not predicted: {}", safe_path(path), message.split(": ", 1)[-1])
    return {"input": shown, "error": message}


def outcome(inputs: int, errors: list[dict[str, str]]) -> dict[str, Any]:
    """The counts and error rows every test result carries."""
    return {"inputs": inputs, "predicted": inputs - len(errors), "failed": len(errors), "errors": errors}


def check_outcome(result: dict[str, Any], strict: bool = False) -> None:
    """Raise :class:`PredictionError` when no input was predicted, or with ``strict`` when any was not.

    Example:
        >>> check_outcome({"inputs": 2, "predicted": 1, "failed": 1, "errors": [{"input": "b", "error": "b: x"}]})
        >>> check_outcome({"inputs": 2, "predicted": 1, "failed": 1, "errors": [{"input": "b", "error": "b: x"}]},
        ...               strict=True)
        Traceback (most recent call last):
            ...
        spine_lib.training.inference.PredictionError: 1 of 2 inputs not predicted (--strict); first: b: x
    """
    failed, total = int(result.get("failed", 0)), int(result.get("inputs", 0))
    if failed == 0 or (failed < total and not strict):
        return
    first = result["errors"][0]["error"]
    if failed == total:
        raise PredictionError(None, f"no input could be predicted ({failed} of {total} failed); first: {first}")
    raise PredictionError(None, f"{failed} of {total} inputs not predicted (--strict); first: {first}")


def load_test_image(path: Path) -> np.ndarray:
    """A localization test input as a 2-D uint8 image: a picture, a DICOM file or folder, or a volume (its
    middle slice); a missing or unreadable input raises an error naming it."""
    from spine_lib.training.preprocessing import load_grayscale

    if not Path(path).exists():
        raise InputPathError(path, "input does not exist")
    return load_grayscale(path)


def paired_levels(config: ModelTestConfig, kept: Sequence[int]) -> tuple[list[int] | None, bool]:
    """The levels to predict for the readable inputs (``kept``: their positions in ``config.inputs``) and whether
    they pair one to one with the images (one level per input), else apply to every image."""
    levels = config.level_indices
    if levels is None:
        return (None, False) if config.test_all_levels else ([0] * len(kept), True)
    if len(levels) == len(config.inputs):
        return [levels[i] for i in kept], True
    return list(levels), False


def run_model_test(config: ModelTestConfig) -> dict[str, Any]:
    """Predict with ``config.model_path`` on ``config.inputs``; write JSON (and plots) when asked.

    For localization each result row is one (image, level): relative and pixel coordinates. The model's
    architecture comes from the checkpoint; a ``model_variant`` that disagrees with it is an error, as is a
    checkpoint that cannot be read. An input that cannot be read is a row of ``errors``.
    """
    from spine_lib.core.device import select_device
    from spine_lib.training.checkpoints import CheckpointError, model_from_checkpoint, read_checkpoint
    from spine_lib.training.models.localization import LocalizationModel

    if config.task != "localization":
        raise ConfigError(config.task, "this tests localization models; grading models: spine_lib.inference.grading")
    stored = read_checkpoint(config.model_path)["model_kwargs"]
    if config.model_variant is not None and stored.get("variant") != config.model_variant:
        raise CheckpointError(config.model_path, f"checkpoint of model variant {stored.get('variant')}, "
                                                 f"expected {config.model_variant}")
    for name in ("use_level_embedding", "num_levels"):
        if name in stored and stored[name] != getattr(config, name):
            raise CheckpointError(config.model_path, f"checkpoint of a model with {name}={stored[name]}, "
                                                     f"expected {name}={getattr(config, name)}")
    model, payload = model_from_checkpoint(config.model_path)
    if not isinstance(model, LocalizationModel):
        raise CheckpointError(config.model_path, f"checkpoint of model {payload['model_name']}, expected a "
                                                 "localization model")
    trained_size = (payload.get("config") or {}).get("image_size") or (224, 224)
    image_size = tuple(config.image_size or trained_size)
    device = select_device(config.device, mixed_precision=False).device
    images: list[np.ndarray] = []
    kept: list[int] = []
    errors: list[dict[str, str]] = []
    for index, source in enumerate(config.inputs):
        try:
            images.append(load_test_image(Path(source)))
            kept.append(index)
        except INPUT_ERRORS as error:
            errors.append(input_error(source, error))
    rows: list[dict[str, Any]] = []
    output: dict[str, Any] = {"inference_time_ms": 0.0}
    if images:
        levels, pairwise = paired_levels(config, kept)
        output = model.test_inference(images, image_size, device,  # type: ignore[arg-type]
                                      level_indices=levels, pairwise=pairwise)
        for row, (image_index, level) in enumerate(zip(output["image_index"], output["level_indices"], strict=True)):
            rel = output["predictions"][row].tolist()
            px = output["coords_pixel"][row].tolist()
            height, width = output["original_sizes"][image_index]
            rows.append({
                "input": shown_path(config.inputs[kept[image_index]]), "level_idx": level,
                "level": IDX_TO_LEVEL.get(level, str(level)),
                "relative_x": round(rel[0], 6), "relative_y": round(rel[1], 6),
                "x": round(px[0], 2), "y": round(px[1], 2), "width": width, "height": height,
                **({} if output["guessed"] is None else {"extrapolated": output["guessed"][row]}),
            })
    result: dict[str, Any] = {
        "task": config.task,
        "model_path": str(config.model_path),
        "model": f"{payload['model_name']} ({stored.get('variant')})",
        "run_id": payload.get("run_id"),
        "device": device,
        "image_size": list(image_size),
        "inference_time_ms": round(output["inference_time_ms"], 3),
        "predictions": rows,
        **outcome(len(config.inputs), errors),
    }
    if config.output_path is not None:
        atomic_write_text(config.output_path, json.dumps(result, indent=2))
    if config.visualize and images:
        result["visualizations"] = [str(p) for p in _draw(config, output, images, kept)]
    return result


def _draw(config: ModelTestConfig, output: dict[str, Any], images: list[np.ndarray], kept: list[int]) -> list[Path]:
    """One figure per readable input image with its predicted points."""
    from spine_lib.training.visualization import TrainingVisualizer

    folder = (config.output_path.parent if config.output_path is not None else Path(config.model_path).parent) / "test"
    visualizer = TrainingVisualizer(folder, output_mode="html")
    paths: list[Path] = []
    for image_index, (image, position) in enumerate(zip(images, kept, strict=True)):
        rows = [r for r, i in enumerate(output["image_index"]) if i == image_index]
        points = output["predictions"][rows].numpy()
        name = f"test_{position:03d}_{safe_path(config.inputs[position]).split('.')[0]}"
        paths.append(visualizer.plot_multi_points(image, points, [output["level_indices"][r] for r in rows], name))
    return paths
