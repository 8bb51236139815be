"""Shared ground of every job: logging, the base config, progress bars, the data-root layout.

Names are imported lazily so that light users (the Dagster code location reads only the layout) do not pay
for tyro and rich at import time.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.core.config import BaseConfig
    from spine_lib.core.layout import DataLayout
    from spine_lib.core.logging import setup_logger
    from spine_lib.core.progress import track

__all__ = ["BaseConfig", "DataLayout", "setup_logger", "track"]

_HOMES = {
    "BaseConfig": "spine_lib.core.config",
    "DataLayout": "spine_lib.core.layout",
    "setup_logger": "spine_lib.core.logging",
    "track": "spine_lib.core.progress",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
