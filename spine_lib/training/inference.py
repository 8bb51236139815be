"""``spine-vision test``: run a trained checkpoint on images or DICOM files, return JSON-ready results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spine_lib.errors import ConfigError, InputPathError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.levels import IDX_TO_LEVEL
from spine_lib.training.config import ModelTestConfig


def run_model_test(config: ModelTestConfig) -> dict[str, Any]:
    """Predict with ``config.model_path`` on ``config.inputs``; write JSON (and plots) when asked.

    For localization each result row is one (image, level): relative and pixel coordinates. The model's
    architecture comes from the checkpoint; a ``model_variant`` that disagrees with it is an error.
    """
    from spine_lib.core.device import select_device
    from spine_lib.training.checkpoints import CheckpointError, model_from_checkpoint, read_checkpoint
    from spine_lib.training.models.localization import LocalizationModel

    if config.task != "localization":
        raise ConfigError(config.task, "this tests localization models; grading models: spine_lib.inference.grading")
    missing = [p for p in config.inputs if not Path(p).exists()]
    if missing:
        raise InputPathError(missing[0], "input image does not exist")
    stored = read_checkpoint(config.model_path)["model_kwargs"]
    if config.model_variant is not None and stored.get("variant") != config.model_variant:
        raise CheckpointError(config.model_path, f"checkpoint holds variant {stored.get('variant')!r}, "
                                                 f"not {config.model_variant!r}")
    for name in ("use_level_embedding", "num_levels"):
        if name in stored and stored[name] != getattr(config, name):
            raise CheckpointError(config.model_path, f"checkpoint has {name}={stored[name]}, not {getattr(config, name)}")
    model, payload = model_from_checkpoint(config.model_path)
    trained_size = (payload.get("config") or {}).get("image_size") or (224, 224)
    image_size = tuple(config.image_size or trained_size)
    if not isinstance(model, LocalizationModel):
        raise CheckpointError(config.model_path, f"{payload['model_name']} is not a localization model")
    device = select_device(config.device, mixed_precision=False).device
    levels = config.level_indices
    if levels is None and not config.test_all_levels:
        levels = [0] * len(config.inputs)
    output = model.test_inference([str(p) for p in config.inputs], image_size, device,  # type: ignore[arg-type]
                                  level_indices=levels)
    rows = []
    for row, (image_index, level) in enumerate(zip(output["image_index"], output["level_indices"], strict=True)):
        rel = output["predictions"][row].tolist()
        px = output["coords_pixel"][row].tolist()
        height, width = output["original_sizes"][image_index]
        rows.append({
            "input": str(config.inputs[image_index]), "level_idx": level, "level": IDX_TO_LEVEL.get(level, str(level)),
            "relative_x": round(rel[0], 6), "relative_y": round(rel[1], 6),
            "x": round(px[0], 2), "y": round(px[1], 2), "width": width, "height": height,
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
    }
    if config.output_path is not None:
        atomic_write_text(config.output_path, json.dumps(result, indent=2))
    if config.visualize:
        result["visualizations"] = [str(p) for p in _draw(config, output)]
    return result


def _draw(config: ModelTestConfig, output: dict[str, Any]) -> list[Path]:
    """One figure per input image with its predicted points."""
    from spine_lib.training.preprocessing import load_grayscale
    from spine_lib.training.visualization import TrainingVisualizer

    folder = (config.output_path.parent if config.output_path is not None else Path(config.model_path).parent) / "test"
    visualizer = TrainingVisualizer(folder, output_mode="html")
    paths: list[Path] = []
    for image_index, source in enumerate(config.inputs):
        rows = [r for r, i in enumerate(output["image_index"]) if i == image_index]
        image = load_grayscale(source)
        points = output["predictions"][rows].numpy()
        name = f"test_{image_index:03d}_{Path(source).stem}"
        paths.append(visualizer.plot_multi_points(image, points, [output["level_indices"][r] for r in rows], name))
    return paths
