"""The base every job configuration extends (one pydantic model per job, defined once in spine_lib).

Path fields are named by kind, the same way in every job:

- ``base_path``: a data root laid out as :class:`~spine_lib.core.layout.DataLayout` (jobs reading several
  sources of it: ``dataset localization``, ``dataset classification``);
- ``input_path``: one source converted or shown item by item (``dataset nnunet``: SPIDER; ``visualize``);
- ``data_path``: a folder a job reads as a whole (the Phenikaa export; the dataset a trainer learns from);
- ``output_path``: what the job writes; ``interim_path``, ``weights_path``, ``model_path`` and nnU-Net's own
  ``preprocessed_path``/``results_path`` say what they hold.

Defaults point into :data:`~spine_lib.core.layout.DEFAULT_LAYOUT` (``./data``, ``./weights``); a job config for
another data root comes from ``Config.for_layout(layout, **overrides)``, the one way the CLI's defaults and
the Dagster assets agree.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self

import tyro
from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from spine_lib.core.layout import DataLayout


class BaseConfig(BaseModel):
    """Options every job shares: console verbosity and an optional log file.

    Subclasses add the job's own fields; the CLI builds them from flags, Dagster assets from resources.
    Unknown fields are errors, so a misspelt option fails fast instead of being ignored.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    verbose: Annotated[bool, tyro.conf.arg(aliases=("-v",), help="Log debug messages to the console.")] = False
    enable_file_log: Annotated[bool, tyro.conf.arg(help="Also write the log to a file under --log-path.")] = False
    log_path: Annotated[Path, tyro.conf.arg(help="Folder of the log files.")] = Path("logs")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Give every job config's docstring an ``Args:`` section made from its fields' help texts (the same text
        ``--help`` shows), placed before its ``Example:``."""
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("__doc__"):
            cls.__doc__ = with_args_section(inspect.cleandoc(cls.__dict__["__doc__"]), cls.model_fields)

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        """The job's path fields for a data root (a job that reads or writes one says which paths it takes)."""
        return {}

    @classmethod
    def for_layout(cls, layout: DataLayout, **overrides: Any) -> Self:
        """The job's config for a data root: its paths from ``layout``, every other field from ``overrides``
        (validated; an unknown field is an error)."""
        return cls.model_validate({**cls.layout_paths(layout), **overrides})


def field_help(info: FieldInfo) -> str:
    """The help text of a config field (its ``tyro.conf.arg(help=...)``, else its description)."""
    for meta in info.metadata:
        text = getattr(meta, "help", None)
        if isinstance(text, str):
            return text
    return info.description or ""


def with_args_section(doc: str, fields: dict[str, FieldInfo]) -> str:
    """``doc`` with an ``Args:`` section listing ``fields`` (help and default), before its ``Example:``."""
    if "\nArgs:\n" in f"\n{doc}\n":
        return doc
    lines = ["Args:"]
    for name, info in fields.items():
        if info.is_required():
            default = "required"
        else:
            value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
            default = f"default: {value}" if isinstance(value, Path) else f"default: {value!r}"
        text = field_help(info).rstrip(".")
        lines.append(f"    {name}: {text} ({default})." if text else f"    {name}: ({default}).")
    section = "\n".join(lines)
    head, marker, example = doc.partition("\nExample:\n")
    return f"{head.rstrip()}\n\n{section}\n" + (f"\nExample:\n{example}" if marker else "")
