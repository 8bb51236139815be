"""Interactive views of images and their segmentations (plotly, imported lazily)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.visualization.plotly_viewer import PlotlyViewer

__all__ = ["PlotlyViewer"]


def __getattr__(name: str) -> Any:
    if name == "PlotlyViewer":
        return import_module("spine_lib.visualization.plotly_viewer").PlotlyViewer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
