"""Checkpoint files: what they hold, how they are written (atomically) and read (with clear errors).

A checkpoint is a dict saved with ``torch.save`` holding only tensors and plain values, so it loads with
``weights_only=True``:

- ``model_name`` and ``model_kwargs``: the registered model and its constructor arguments (the architecture),
- ``model_state_dict``, and for resuming ``optimizer_state_dict``, ``scheduler_state_dict``, ``rng_state``,
- ``epoch`` (0-based, completed), ``global_step``, ``best_score``, ``best_epoch``, ``history``, ``run_id``,
  ``config`` (the training config as JSON-able values).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from spine_lib.errors import InputPathError, SpineVisionError
from spine_lib.io.atomic import atomic_path

if TYPE_CHECKING:
    from spine_lib.training.models.base import BaseModel

REQUIRED_KEYS = ("model_name", "model_kwargs", "model_state_dict")


class CheckpointError(SpineVisionError):
    """A checkpoint that cannot be read, lacks what is needed, or belongs to another architecture."""


def capture_rng_state() -> dict[str, Any]:
    """The state of every random generator a training step uses (Python, NumPy, torch CPU and CUDA)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put the generators back where :func:`capture_rng_state` found them."""
    random.setstate(_as_tuple(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(payload: dict[str, Any], path: Path) -> Path:
    """Write ``payload`` to ``path`` atomically (a crash mid-write never leaves a truncated checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint dict onto the CPU; a missing, corrupt or foreign file raises a clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputPathError(path, "checkpoint file does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or non-torch files
        raise CheckpointError(path, f"not a readable checkpoint ({type(error).__name__}: {str(error)[:200]})") from error
    if not isinstance(payload, dict):
        raise CheckpointError(path, f"expected a checkpoint dict, found {type(payload).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(path, f"not a spine-vision checkpoint (missing {', '.join(missing)})")
    return payload


def load_model_state(model: BaseModel, payload: dict[str, Any], path: Path) -> None:
    """Load the weights into ``model``; a checkpoint of another architecture raises :class:`CheckpointError`."""
    expected = (model.registry_name, model.architecture_kwargs())
    found = (payload["model_name"], payload["model_kwargs"])
    try:
        model.load_state_dict(payload["model_state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            path, f"checkpoint is for {_describe(*found)}, the model is {_describe(*expected)} "
                  f"({str(error).splitlines()[0][:200]})"
        ) from error


def model_from_checkpoint(path: Path, **overrides: Any) -> tuple[BaseModel, dict[str, Any]]:
    """Rebuild the checkpoint's model from its stored architecture (``overrides`` change constructor arguments)."""
    from spine_lib.training.registry import ModelRegistry

    payload = read_checkpoint(path)
    kwargs = {**payload["model_kwargs"], **overrides, "pretrained": False}
    try:
        model = ModelRegistry.create(payload["model_name"], **kwargs)
    except SpineVisionError as error:
        raise CheckpointError(path, f"cannot rebuild model {payload['model_name']!r}: {error}") from error
    load_model_state(model, payload, path)
    return model, payload


def _describe(name: str, kwargs: dict[str, Any]) -> str:
    variant = kwargs.get("variant")
    return f"{name} ({variant})" if variant else name
