"""timm backbones with offline pretrained weights.

``pretrained=True`` never reaches the network: the weights come from a file the caller names or from the local
Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``). When neither
has them the call fails at once with a message saying how to provide them, instead of minutes of retries.
"""

from __future__ import annotations

import os
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
    try:
        return timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay={"file": str(source)}, **kwargs)
    except Exception as error:  # unreadable file or mismatched tensors
        raise PretrainedWeightsError(source, f"cannot load as {timm_name} weights ({type(error).__name__}: "
                                             f"{str(error).splitlines()[0][:200] if str(error) else ''})") from error
