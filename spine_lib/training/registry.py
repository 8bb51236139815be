"""Registries of models, trainers and metrics: components register themselves by name and are built by name.

```python
@register_model("my_model", task="classification", aliases=["mine"])
class MyModel(BaseModel): ...

ModelRegistry.create("mine", num_classes=3)
TrainerRegistry.create_from_config(config)   # picks the trainer registered for config.task
```
Built-in components register when :func:`load_builtin` imports their modules (the registries call it on first
use), so a lookup never depends on which modules happened to be imported before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar, TypeVar

from spine_lib.errors import ConfigError

T = TypeVar("T")

_BUILTIN_MODULES = (
    "spine_lib.training.models.convnext",
    "spine_lib.training.models.grading",
    "spine_lib.training.models.vit",
    "spine_lib.training.trainers.classification",
    "spine_lib.training.trainers.localization",
    "spine_lib.training.metrics",
)
_loaded = False


def load_builtin() -> None:
    """Import the modules of the built-in models, trainers and metrics (idempotent)."""
    global _loaded
    if _loaded:
        return
    for module in _BUILTIN_MODULES:
        import_module(module)
    _loaded = True


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    name: str
    cls: type
    task: str | None = None
    description: str = ""
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


class _Registry:
    """Name -> component class, with aliases; one subclass per kind of component."""

    kind: ClassVar[str] = "component"
    _entries: ClassVar[dict[str, Entry]]
    _aliases: ClassVar[dict[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._entries = {}
        cls._aliases = {}

    @classmethod
    def register(
        cls, name: str, *, task: str | None = None, description: str = "", aliases: list[str] | tuple[str, ...] = (),
        **extra: Any,
    ) -> Callable[[type[T]], type[T]]:
        """Class decorator registering ``name`` (and its aliases); a name taken by another class is an error."""

        def decorate(target: type[T]) -> type[T]:
            for key in (name, *aliases):
                owner = cls._aliases.get(key)
                if owner is not None and cls._entries[owner].cls.__qualname__ != target.__qualname__:
                    raise ConfigError(key, f"{cls.kind} name already registered by {cls._entries[owner].cls.__name__}")
            cls._entries[name] = Entry(name, target, task, description or (target.__doc__ or "").strip().split("\n")[0],
                                       tuple(aliases), dict(extra))
            for key in (name, *aliases):
                cls._aliases[key] = name
            return target

        return decorate

    @classmethod
    def get(cls, name: str) -> Entry:
        load_builtin()
        key = cls._aliases.get(name)
        if key is None:
            known = ", ".join(sorted(cls._entries)) or "none"
            raise ConfigError(name, f"unknown {cls.kind}; registered: {known}")
        return cls._entries[key]

    @classmethod
    def names(cls, task: str | None = None) -> list[str]:
        load_builtin()
        return sorted(n for n, e in cls._entries.items() if task is None or e.task == task)

    @classmethod
    def create(cls, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the component registered as ``name`` (or an alias) with the given arguments."""
        return cls.get(name).cls(*args, **kwargs)

    @classmethod
    def unregister(cls, name: str) -> None:
        """Remove a component (tests and notebooks that register throwaway classes)."""
        entry = cls._entries.pop(name, None)
        if entry is not None:
            for key in (name, *entry.aliases):
                cls._aliases.pop(key, None)


class ModelRegistry(_Registry):
    """Models by name (``convnext_localization``, ``vit_localization``, ...)."""

    kind = "model"

    @classmethod
    def list_models(cls, task: str | None = None) -> list[str]:
        return cls.names(task)

    @classmethod
    def create_from_config(cls, config: Any) -> Any:
        """The model a training config names (``model_name``), built by the trainer registered for its task."""
        trainer_cls = TrainerRegistry.get(config.task).cls
        return trainer_cls.model_from_config(config)


class TrainerRegistry(_Registry):
    """Trainers by task name (``localization``, ...), each with its config class."""

    kind = "trainer"

    @classmethod
    def list_trainers(cls) -> list[str]:
        return cls.names()

    @classmethod
    def config_class(cls, name: str) -> type:
        return cls.get(name).extra["config_cls"]

    @classmethod
    def create_from_config(cls, config: Any, **kwargs: Any) -> Any:
        """The trainer registered for ``config.task``, built on ``config`` (validated by its config class)."""
        entry = cls.get(config.task)
        config_cls = entry.extra.get("config_cls")
        if config_cls is not None and not isinstance(config, config_cls):
            raise ConfigError(config.task, f"trainer needs a {config_cls.__name__}, got {type(config).__name__}")
        return entry.cls(config, **kwargs)


class MetricsRegistry(_Registry):
    """Metric computers by name (``localization``, ...)."""

    kind = "metrics"

    @classmethod
    def list_metrics(cls, task: str | None = None) -> list[str]:
        return cls.names(task)

    @classmethod
    def create_from_config(cls, config: Any) -> Any:
        return cls.create(config.task)


def register_model(
    name: str, *, task: str | None = None, description: str = "", aliases: list[str] | tuple[str, ...] = ()
) -> Callable[[type[T]], type[T]]:
    return ModelRegistry.register(name, task=task, description=description, aliases=aliases)


def register_trainer(
    name: str, *, config_cls: type | None = None, description: str = "", aliases: list[str] | tuple[str, ...] = ()
) -> Callable[[type[T]], type[T]]:
    return TrainerRegistry.register(name, task=name, description=description, aliases=aliases, config_cls=config_cls)


def register_metrics(
    name: str, *, task: str | None = None, description: str = "", aliases: list[str] | tuple[str, ...] = ()
) -> Callable[[type[T]], type[T]]:
    return MetricsRegistry.register(name, task=task, description=description, aliases=aliases)
