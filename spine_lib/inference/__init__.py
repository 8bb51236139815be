"""Inference models: a common base (name, load, predict -> InferenceResult), nnU-Net segmentation, ROI cropping.

Names are imported lazily so that ``import spine_lib.inference`` does not pull in torch or nnU-Net.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.inference.base import InferenceModel, InferenceResult
    from spine_lib.inference.cropping import ROI, ROICropper
    from spine_lib.inference.segmentation import NNUNetSegmentation

_HOMES = {
    "InferenceModel": "base",
    "InferenceResult": "base",
    "ROI": "cropping",
    "ROICropper": "cropping",
    "NNUNetSegmentation": "segmentation",
}
__all__ = ["ROI", "InferenceModel", "InferenceResult", "NNUNetSegmentation", "ROICropper"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"spine_lib.inference.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
