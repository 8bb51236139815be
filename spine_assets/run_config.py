"""Dagster run configs derived from the library's job configs, never copied by hand.

:func:`derived_config` turns a spine_lib config model into a ``dg.Config`` class with the same fields, help
texts and defaults (the launchpad shows them), leaving out the fields the asset sets itself (paths from the
``paths`` resource, the device, tracking, logging); the asset's own fields (quality floors of its checks) are
declared on a subclass.
Types Dagster's config system cannot hold become their plain equivalents (``Path`` -> ``str``, ``tuple`` ->
``list``); the library config validates the values again when the asset builds it, so a bad value fails the
run at once with the library's message.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, create_model

#: Fields of every library config that a Dagster run never sets (logging goes through Dagster's own).
LOGGING_FIELDS = frozenset({"verbose", "enable_file_log", "log_path"})

B = TypeVar("B", bound=BaseModel)


def dagster_type(annotation: Any, nested: bool = False) -> Any:
    """The type Dagster's config system accepts for a library field's annotation (a ``Literal`` stays a choice
    at the top level; inside a list it becomes ``str``, which the library config validates)."""
    origin = get_origin(annotation)
    if annotation is Path:
        return str
    if origin is tuple:
        items = [a for a in get_args(annotation) if a is not Ellipsis]
        return list[dagster_type(items[0], nested=True)] if items else list[Any]
    if origin is list:
        return list[dagster_type(get_args(annotation)[0], nested=True)]
    if origin in (Union, types.UnionType):
        members = tuple(dagster_type(a, nested) for a in get_args(annotation))
        return Union[members]  # noqa: UP007 (built at run time)
    if origin is Literal and nested:
        return str
    return annotation


def plain_value(value: Any) -> Any:
    """A default in the form its Dagster type holds (paths as strings, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain_value(v) for v in value]
    return value


def derived_config(
    library_config: type[BaseModel],
    *,
    exclude: set[str] | frozenset[str] = frozenset(),
    defaults: dict[str, Any] | None = None,
    base: type[B] = dg.Config,  # type: ignore[assignment]
) -> type[B]:
    """A ``dg.Config`` (or ``base``) class holding ``library_config``'s fields, to subclass with the asset's own.

    Args:
        library_config: the spine_lib job config whose fields the run config offers.
        exclude: fields the asset fills itself (besides :data:`LOGGING_FIELDS`).
        defaults: the asset's own defaults for some fields (a quick CPU run, say); the rest keep the library's.
        base: the class to derive from (``dg.Config``, or ``dg.ConfigurableResource`` for a resource).

    Example (the asset's own fields are declared on the subclass)::

        class LocalizationTrainingSettings(derived_config(LocalizationConfig, exclude={"data_path"})):
            min_val_pck_05: float = 0.3
    """
    defaults = defaults or {}
    unknown = (set(defaults) | set(exclude)) - set(library_config.model_fields)
    if unknown:
        raise ValueError(f"{library_config.__name__} has no fields {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for field_name, info in library_config.model_fields.items():
        if field_name in exclude or field_name in LOGGING_FIELDS:
            continue
        if field_name in defaults:
            default = plain_value(defaults[field_name])
        elif info.default_factory is not None:
            default = plain_value(info.default_factory())  # type: ignore[call-arg]
        else:
            default = plain_value(info.default)
        fields[field_name] = (dagster_type(info.annotation), Field(default=default, description=_help_of(info)))
    model = create_model(f"{library_config.__name__}Fields", __base__=base, **fields)
    model.library_fields = frozenset(fields)  # type: ignore[attr-defined]
    return model  # type: ignore[return-value]


def library_overrides(config: BaseModel, **values: Any) -> dict[str, Any]:
    """The values of a derived run config that belong to the library config (the asset's own left out),
    updated with ``values`` (what the asset sets from its resources)."""
    names: frozenset[str] = type(config).library_fields  # type: ignore[attr-defined]
    return {**{k: v for k, v in config.model_dump().items() if k in names}, **values}


def _help_of(info: Any) -> str | None:
    """The help text of a field annotated with ``tyro.conf.arg(help=...)``."""
    for meta in info.metadata:
        text = getattr(meta, "help", None)
        if isinstance(text, str):
            return text
    return None
