"""Label schemas, remapping, and the grading-table column conventions.

Names are imported lazily: ``spine_lib.labels.gradings`` (column names only) must not pull in SimpleITK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.labels.mapping import LabelSchema, builtin_schemas, load_label_schema, remap_labels

__all__ = ["LabelSchema", "builtin_schemas", "load_label_schema", "remap_labels"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("spine_lib.labels.mapping"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
