"""Checkpoint files: what they hold, how they are written (atomically) and read (with clear errors).

A checkpoint is a dict saved with ``torch.save`` holding only tensors and plain values, so it loads with
``weights_only=True``:

- ``model_name`` and ``model_kwargs``: the registered model and its constructor arguments (the architecture),
- ``model_state_dict``, and for resuming ``optimizer_state_dict``, ``scheduler_state_dict``, ``rng_state`` (not in
  a best-model checkpoint, which is for inference),
- ``epoch`` (0-based, completed), ``global_step``, ``best_score``, ``best_epoch``, ``history``, ``run_id``,
  ``config`` (the training config as JSON-able values).
"""

from __future__ import annotations

import random
import re
import zipfile
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


#: the first bytes of the two formats ``torch.save`` writes: a zip archive (the default) and a legacy pickle
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"
#: what a weights-only load refuses, as PyTorch names it (``Unsupported global: GLOBAL numpy.dtype ...``)
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def torch_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a file written by ``torch.save`` (empty, text, foreign bytes, cut short), or None
    when its first bytes and its archive index look right."""
    with Path(path).open("rb") as stream:
        head = stream.read(512)
    if not head:
        return "the file is empty"
    if head.startswith(_ZIP_MAGIC):
        return None if zipfile.is_zipfile(path) else "truncated or damaged archive: its index is missing"
    if head.startswith(_PICKLE_MAGIC):
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3 or len(head) < 512:  # not merely a character cut at the 512th byte
            return "unknown binary content, neither a zip archive nor a pickle"
    return "it holds text" if b"\0" not in head else "unknown binary content, neither a zip archive nor a pickle"


def weights_only_refusal(error: BaseException) -> str | None:
    """What a weights-only ``torch.load`` refused to unpickle (``Python objects (numpy.dtype)``), or None when
    ``error`` is another failure."""
    text = str(error)
    if "Weights only load failed" not in text and "WeightsUnpickler" not in text:
        return None
    refused = _UNSUPPORTED_GLOBAL.search(text)
    return f"Python objects ({refused.group(1)})" if refused else "Python objects"


def torch_load_cause(error: BaseException) -> str:
    """A ``torch.load`` failure in words, without PyTorch's advice to load the file unsafely."""
    refused = weights_only_refusal(error)
    if refused is not None:
        return f"it holds {refused} besides tensors and plain values"
    text = str(error)
    if isinstance(error, EOFError | zipfile.BadZipFile) or "failed finding central directory" in text:
        return "truncated or damaged: the file ends before its data"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"unreadable: {type(error).__name__}{': ' + first[:160] if first else ''}"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint dict onto the CPU; a missing, corrupt or foreign file raises one clear sentence.

    Raises:
        InputPathError: ``path`` does not exist or is a folder.
        CheckpointError: ``<file>: not a PyTorch checkpoint (...)`` for an empty, text, foreign or truncated
            file; ``<file>: checkpoint refused: ...`` for one holding objects a weights-only load refuses;
            ``<file>: not a spine-vision checkpoint (...)`` for a PyTorch file without the model's name,
            architecture and weights.
    """
    path = Path(path)
    if path.is_dir():
        raise InputPathError(path, "is a folder, expected a checkpoint file (.pt)")
    if not path.is_file():
        raise InputPathError(path, "checkpoint file does not exist")
    problem = torch_file_problem(path)
    if problem is not None:
        raise CheckpointError(path, f"not a PyTorch checkpoint ({problem})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged or foreign files
        if weights_only_refusal(error) is not None:
            raise CheckpointError(path, f"checkpoint refused: {torch_load_cause(error)}; only weights-only "
                                        "checkpoints are loaded, as they cannot run code") from None
        raise CheckpointError(path, f"not a PyTorch checkpoint ({torch_load_cause(error)})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(path, f"not a spine-vision checkpoint (it holds a {type(payload).__name__}, "
                                    "not a dict of model name, architecture and weights)")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(path, f"not a spine-vision checkpoint (missing {', '.join(missing)})")
    if not isinstance(payload["model_kwargs"], dict) or not isinstance(payload["model_state_dict"], dict):
        raise CheckpointError(path, "not a spine-vision checkpoint (model_kwargs and model_state_dict must be "
                                    "dicts)")
    return payload


def architecture_mismatch(found: tuple[str, dict[str, Any]], expected: tuple[str, dict[str, Any]]) -> str | None:
    """How a checkpoint's architecture differs from the model's, in one phrase (None when they agree).

    Example:
        >>> architecture_mismatch(("convnext_localization", {"variant": "atto"}),
        ...                       ("convnext_localization", {"variant": "femto"}))
        'checkpoint of model variant atto, expected femto'
        >>> architecture_mismatch(("resnet50_mtl", {}), ("convnext_localization", {"variant": "atto"}))
        'checkpoint of model resnet50_mtl, expected convnext_localization'
        >>> architecture_mismatch(("m", {"num_levels": 5}), ("m", {"num_levels": 3}))
        'checkpoint of m with num_levels=5, expected num_levels=3'
    """
    (found_name, found_kwargs), (name, kwargs) = found, expected
    if found_name != name:
        return f"checkpoint of model {found_name}, expected {name}"
    if found_kwargs.get("variant") != kwargs.get("variant"):
        return f"checkpoint of model variant {found_kwargs.get('variant')}, expected {kwargs.get('variant')}"
    ignored = {"pretrained", "weights_file"}
    differing = sorted(k for k in set(found_kwargs) | set(kwargs)
                       if k not in ignored and found_kwargs.get(k) != kwargs.get(k))
    if not differing:
        return None
    return (f"checkpoint of {name} with {', '.join(f'{k}={found_kwargs.get(k)}' for k in differing)}, expected "
            f"{', '.join(f'{k}={kwargs.get(k)}' for k in differing)}")


def load_model_state(model: BaseModel, payload: dict[str, Any], path: Path) -> None:
    """Load the weights into ``model``; weights of another architecture raise :class:`CheckpointError` saying
    which (``checkpoint of model variant atto, expected femto``) and leave ``model`` as it was."""
    state, own = payload["model_state_dict"], model.state_dict()
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & state.keys()
                      if tuple(own[k].shape) != tuple(getattr(state[k], "shape", ())))
    if missing or unexpected or reshaped:
        mismatch = architecture_mismatch((payload["model_name"], payload["model_kwargs"]),
                                         (model.registry_name, model.architecture_kwargs()))
        counts = ", ".join(f"{len(keys)} tensors {what}" for keys, what in (
            (missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape")) if keys)
        raise CheckpointError(path, mismatch or "its weights do not fit the architecture it names "
                                                f"({_describe(model.registry_name, model.architecture_kwargs())}: "
                                                f"{counts})")
    model.load_state_dict(state, strict=True)


def model_from_checkpoint(path: Path, **overrides: Any) -> tuple[BaseModel, dict[str, Any]]:
    """Rebuild the checkpoint's model from its stored architecture (``overrides`` change constructor arguments)."""
    from spine_lib.training.registry import ModelRegistry

    payload = read_checkpoint(path)
    kwargs = {**payload["model_kwargs"], **overrides, "pretrained": False}
    try:
        model = ModelRegistry.create(payload["model_name"], **kwargs)
    except SpineVisionError as error:
        raise CheckpointError(path, f"cannot rebuild model {payload['model_name']!r}: {error.cause}") from error
    except (TypeError, ValueError) as error:  # constructor arguments of another version of the model
        raise CheckpointError(path, f"cannot rebuild model {payload['model_name']!r} from its stored "
                                    f"architecture ({error})") from None
    load_model_state(model, payload, path)
    return model, payload


def _describe(name: str, kwargs: dict[str, Any]) -> str:
    variant = kwargs.get("variant")
    return f"{name} ({variant})" if variant else name
