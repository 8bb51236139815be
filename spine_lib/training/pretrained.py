"""timm backbones with offline pretrained weights.

``pretrained=True`` never reaches the network: the weights come from a file the caller names or from the local
Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``). When neither
has them the call fails at once with a message saying how to provide them, instead of minutes of retries.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from torch import nn

from spine_lib.errors import ConfigError, InputPathError, SpineVisionError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class PretrainedWeightsError(SpineVisionError):
    """Pretrained weights that are absent, unreadable, or do not fit the backbone."""


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface")
    return Path(home) / "hub"


def hub_id(timm_name: str) -> str | None:
    """The Hugging Face repository timm downloads ``timm_name``'s default weights from."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(timm_name)
    except RuntimeError:
        cfg = None
    if cfg is None:
        return None
    return cfg.hf_hub_id or None


def cached_weights(timm_name: str, cache_dir: Path | None = None) -> Path | None:
    """The weights file of ``timm_name`` in the local Hugging Face cache, or None (no network access)."""
    from huggingface_hub import try_to_load_from_cache

    repo = hub_id(timm_name)
    if repo is None:
        return None
    for filename in WEIGHT_FILES:
        found = try_to_load_from_cache(repo, filename, cache_dir=str(cache_dir or hf_cache_dir()))
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def create_backbone(timm_name: str, *, pretrained: bool = False, weights_file: Path | str | None = None,
                    **kwargs: Any) -> nn.Module:
    """``timm.create_model(timm_name, **kwargs)``; with ``pretrained`` the weights are loaded offline."""
    import timm

    if not timm.is_model(timm_name):
        raise ConfigError(timm_name, "unknown timm model")
    if not pretrained:
        return timm.create_model(timm_name, pretrained=False, **kwargs)
    if weights_file is not None:
        source = Path(weights_file)
        if not source.is_file():
            raise InputPathError(source, "pretrained weights file does not exist")
    else:
        found = cached_weights(timm_name)
        if found is None:
            repo = hub_id(timm_name) or f"timm/{timm_name}"
            raise PretrainedWeightsError(
                timm_name,
                f"pretrained weights are not in the local Hugging Face cache ({hf_cache_dir()}). Provide them: "
                f"on a machine with network run `huggingface-cli download {repo}` and copy the cache (or set "
                f"HF_HUB_CACHE to it), or pass the weights file (--weights-file model.safetensors), or train "
                f"without --pretrained",
            )
        source = found
    with _LoadReport() as report:
        try:
            model = timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay={"file": str(source)},
                                      **kwargs)
        except Exception as error:  # unreadable file or mismatched tensors
            raise PretrainedWeightsError(source, f"cannot load as {timm_name} weights: "
                                                 f"{weights_problem(source, error)}") from None
    classifiers = _classifier_names(timm_name)
    missing = [key for key in report.missing if not key.startswith(classifiers)]
    if missing:
        raise PretrainedWeightsError(source, f"cannot load as {timm_name} weights: {len(missing)} of its tensors "
                                             f"are not in the file (first: {missing[0]}): weights of another model")
    return model


def _classifier_names(timm_name: str) -> tuple[str, ...]:
    """The prefixes of the classifier tensors timm drops from pretrained weights (``head.fc.``)."""
    import timm

    try:
        names = timm.models.get_pretrained_cfg(timm_name).classifier  # type: ignore[union-attr]
    except (RuntimeError, AttributeError):
        return ()
    names = (names,) if isinstance(names, str) else tuple(names or ())
    return tuple(f"{name}." for name in names)


def weights_problem(source: Path, error: Exception) -> str:
    """Why a weights file did not load, in words (never PyTorch's advice to load it unsafely)."""
    from spine_lib.training.checkpoints import torch_file_problem, torch_load_cause

    text = str(error)
    if "size mismatch" in text or "Error(s) in loading state_dict" in text:
        return f"its tensors have other shapes ({text.count('size mismatch')} differ): weights of another model"
    if source.suffix.lower() == ".safetensors":
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
        return f"not a readable safetensors file ({first[:160]})"
    problem = torch_file_problem(source)
    if problem is not None:
        return f"not a PyTorch weights file ({problem})"
    if isinstance(error, AttributeError | KeyError | TypeError):
        return "not a state dict of its tensors (the file holds other objects, or another model's weights)"
    return torch_load_cause(error)


class _LoadReport:
    """The tensors timm reports missing while it loads pretrained weights (it only logs them)."""

    _LOGGER = "timm.models._builder"
    _MISSING = re.compile(r"Missing keys \((.*)\) discovered")

    def __init__(self) -> None:
        self.missing: list[str] = []
        self._handler = logging.Handler(logging.INFO)
        self._handler.emit = self._read  # type: ignore[method-assign]

    def _read(self, record: logging.LogRecord) -> None:
        found = self._MISSING.search(record.getMessage())
        if found:
            self.missing += [key for key in found.group(1).split(", ") if key]

    def __enter__(self) -> _LoadReport:
        log = logging.getLogger(self._LOGGER)
        self._saved = (log.level, log.propagate)
        log.setLevel(logging.INFO)
        log.propagate = False  # timm's own lines say "this may be expected": the error below says what is wrong
        log.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        log = logging.getLogger(self._LOGGER)
        log.removeHandler(self._handler)
        log.setLevel(self._saved[0])
        log.propagate = self._saved[1]
