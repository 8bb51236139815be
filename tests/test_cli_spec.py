"""`spine-vision` speaks the specification's CLI Options tables, read from the specification at test time.

Each ``### spine-vision <command>`` table of the "CLI Options" section lists Flag / Description / Default. For
every command the CLI knows, each flag is parsed (never run) with values of its kind, and the config field the
flag names must hold exactly that value while every other field keeps its default; the table's defaults must
be ours, except the deviations listed below with their reasons.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest

from spine_lib.cli import command_models, parse
from spine_lib.core.config import BaseConfig

REPO = Path(__file__).resolve().parents[1]
SPEC_NAME = "spec/seed-AGENTS.md"
SPEC_CANDIDATES = [Path(os.environ["SPINE_VISION_SPEC"])] if "SPINE_VISION_SPEC" in os.environ else [
    REPO / "shared" / SPEC_NAME, REPO.parent / "shared" / SPEC_NAME]
SPEC = next((path for path in SPEC_CANDIDATES if path.is_file()), None)
if SPEC is None:
    pytest.skip(f"specification not found (looked at {', '.join(map(str, SPEC_CANDIDATES))})",
                allow_module_level=True)

#: commands of the specification not built yet: skipped with this reason until spine_lib.cli knows them
PENDING = {
}
#: (command, flag) -> why our default deliberately differs from the specification's
DEVIATIONS = {
    ("test", "--device"): "auto takes CUDA when there is one, else the CPU (cuda:0 fails without a GPU)",
    ("test", "--model-variant"): "read from the checkpoint, so a model of any variant loads without the flag",
    ("test", "--image-size"): "the checkpoint's training size (224 224 for a checkpoint that does not say)",
    ("train localization", "--wandb-tags"): "an empty list rather than None: no tags either way",
    ("dataset classification", "--device"): "auto takes CUDA when there is one, else the CPU",
    ("dataset classification", "--model-variant"): "read from the checkpoint; given, it must match the checkpoint",
    ("dataset classification", "--image-size"): "the size the localization model was trained at",
    ("train classification", "--pretrained"): "ImageNet weights come only from a local file (nothing is downloaded), "
                                             "so a fresh machine trains from scratch unless told otherwise",
    ("dataset phenikaa", "--output-path"): "the hospital export has a folder of its own (data/processed/phenikaa); "
                                           "data/processed/classification holds the IVD crops",
}
#: (command, flag) -> a default the table describes in words, and the check of it on the parsed config
DESCRIBED: dict[tuple[str, str], Callable[[Any], bool]] = {
    # "Built-in `spider`": no file, the built-in schema named spider
    ("dataset nnunet", "--schema-path"): lambda c: c.schema_path is None and c.schema_name == "spider",
    # "data/processed/classification/images/...": the exported study folders, now in the export's own folder
    ("visualize", "--input-path"): lambda c: c.input_path == Path("data/processed/phenikaa/images"),
    # "weights/segmentation/...": the segmentation weights (the model folder is found below it)
    ("visualize", "--model-path"): lambda c: c.model_path == Path("weights/segmentation"),
    # "weights/<task>/<run_id>": filled in when the run starts
    ("train localization", "--output-path"): lambda c: c.output_path is None and (
        (r := c.resolved()).output_path == Path("weights") / "localization" / r.run_id),
    ("train classification", "--output-path"): lambda c: c.output_path is None and (
        (r := c.resolved()).output_path == Path("weights") / "classification" / r.run_id),
    # "Auto-generated"
    ("train localization", "--run-id"): lambda c: c.run_id is None and bool(c.resolved().run_id),
    # "Same as run_id": None, and the tracker names the run after the run id
    ("train localization", "--wandb-run-name"): lambda c: c.wandb_run_name is None,
}


@dataclass(frozen=True)
class Row:
    """One line of a CLI Options table."""

    command: str
    flag: str  # the long form, --x-y
    aliases: tuple[str, ...]  # short forms such as -g
    description: str
    default: str  # the cell as written

    @property
    def field(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def literal(self) -> str | None:
        """The default when the cell is one value (`224 224`), else None."""
        match = re.fullmatch(r"`([^`]*)`", self.default)
        return match[1] if match and "<" not in match[1] and "..." not in match[1] else None

    @property
    def spans(self) -> list[str]:
        return re.findall(r"`([^`]*)`", self.description)

    @property
    def example(self) -> list[str] | None:
        """The description's example value (``e.g., `sag_t1 sag_t2```), as tokens."""
        match = re.search(r"e\.g\.,? `([^`]*)`", self.description)
        return match[1].split() if match else None

    @property
    def choices(self) -> list[str]:
        """The values the description lists (``(`cosine`, `step`, ...)``)."""
        return self.spans if len(self.spans) >= 2 else []


def spec_tables(text: str) -> dict[str, list[Row]]:
    """The rows of every ``### spine-vision ...`` table of the "## CLI Options" section, by command."""
    section = text.split("\n## CLI Options\n", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[Row]] = {}
    for block in section.split("\n### spine-vision ")[1:]:
        command, body = block.split("\n", 1)
        rows = tables.setdefault(command.strip(), [])
        for line in body.splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.startswith("|") or len(cells) != 3 or cells[0] == "Flag" or not cells[0].strip("-: "):
                continue  # not a row, the header, or the |---| line
            flags = re.findall(r"--?[a-z0-9][a-z0-9-]*", cells[0])
            long = [f for f in flags if f.startswith("--")]
            assert len(long) == 1, f"{command}: cannot read the flag cell {cells[0]!r}"
            aliases = tuple(f for f in flags if not f.startswith("--"))
            rows.append(Row(command.strip(), long[0], aliases, cells[1], cells[2]))
    return tables


TABLES = spec_tables(SPEC.read_text(encoding="utf-8"))
ROWS = [row for rows in TABLES.values() for row in rows]
MODELS = command_models()


# --- what kind of value a field takes, and values of that kind ---

Scalar = type | tuple[str, ...]  # bool/int/float/str/Path, or a Literal's choices


@dataclass(frozen=True)
class Kind:
    shape: Literal["scalar", "list", "tuple"]
    items: tuple[Scalar, ...]  # one for scalar and list, one per element for tuple

    @property
    def is_bool(self) -> bool:
        return self.shape == "scalar" and self.items[0] is bool


def scalar_of(annotation: Any) -> Scalar:
    if get_origin(annotation) is Literal:
        return tuple(str(choice) for choice in get_args(annotation))
    assert annotation in (bool, int, float, str, Path), f"no test values for {annotation}"
    return annotation


def kind_of(model: type[BaseConfig], field: str) -> Kind:
    annotation = model.model_fields[field].annotation
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    origin = get_origin(annotation)
    if origin is list:
        return Kind("list", (scalar_of(get_args(annotation)[0]),))
    if origin is tuple:
        return Kind("tuple", tuple(scalar_of(arg) for arg in get_args(annotation)))
    return Kind("scalar", (scalar_of(annotation),))


def convert(token: str, scalar: Scalar) -> Any:
    if isinstance(scalar, tuple):
        assert token in scalar, f"{token!r} is not one of {scalar}"
        return token
    if scalar is bool:
        assert token in ("True", "False"), f"{token!r} is not a boolean"
        return token == "True"
    return scalar(token)


def value_of(tokens: list[str], kind: Kind) -> Any:
    """What the command-line tokens mean for a field of this kind."""
    if kind.shape == "scalar":
        assert len(tokens) == 1, f"one value expected, not {tokens}"
        return convert(tokens[0], kind.items[0])
    if kind.shape == "tuple":
        assert len(tokens) == len(kind.items), f"{len(kind.items)} values expected, not {tokens}"
        return tuple(convert(token, scalar) for token, scalar in zip(tokens, kind.items, strict=True))
    return [convert(token, kind.items[0]) for token in tokens]


def another(scalar: Scalar, seed: str | None, default: Any, choices: list[str]) -> str:
    """A value of a scalar kind other than ``default`` (from the spec's ``seed`` where there is one)."""
    if isinstance(scalar, tuple) or (scalar is str and choices):
        return next(c for c in (scalar if isinstance(scalar, tuple) else choices) if c != str(default))
    if scalar is int:
        return str((int(seed) if seed else 6) + 1)
    if scalar is float:
        return str((float(seed) if seed else 0.25) * 2)
    if scalar is Path:
        return str(Path("elsewhere") / (seed or "value"))
    return f"{seed}-alt" if seed else "alt"


def other_tokens(kind: Kind, seed: str | None, default: Any, choices: list[str]) -> list[str]:
    """Tokens of a value of ``kind`` other than ``default``."""
    if kind.shape == "scalar":
        return [another(kind.items[0], seed, default, choices)]
    if kind.shape == "tuple":
        seeds = seed.split() if seed else ["248"] * len(kind.items)
        return [str(int(s) + 8 * (i + 1)) if scalar is int else another(scalar, s, None, [])
                for i, (s, scalar) in enumerate(zip(seeds, kind.items, strict=True))]
    scalar = kind.items[0]
    if isinstance(scalar, tuple):
        return list(scalar[:2])
    return {int: ["1", "3"], float: ["0.5", "0.25"], Path: ["a.png", "b.dcm"]}.get(scalar, ["alt-a", "alt-b"])


def required_tokens(model: type[BaseConfig], leave_out: str = "") -> list[str]:
    """Values for the model's required fields (but ``leave_out``), as command-line tokens (paths only)."""
    tokens = []
    for name, info in model.model_fields.items():
        if info.is_required() and name != leave_out:
            assert kind_of(model, name).items == (Path,), f"{name}: only required paths get a value here"
            tokens += [f"--{name.replace('_', '-')}", f"required/{name}"]
    return tokens


def same(parsed: Any, expected: Any) -> bool:
    """Equal and of the same type, element by element (so 80 is not 80.0, a tuple not a list)."""
    if isinstance(expected, list | tuple):
        return (type(parsed) is type(expected) and len(parsed) == len(expected)
                and all(same(p, e) for p, e in zip(parsed, expected, strict=True)))
    return type(parsed) is type(expected) and parsed == expected


def model_of(command: str) -> type[BaseConfig]:
    if command not in MODELS:
        if command in PENDING:
            pytest.skip(PENDING[command])
        pytest.fail(f"spine-vision {command} is in the specification but not in spine_lib.cli (nor PENDING)")
    return MODELS[command]


def baseline(command: str, model: type[BaseConfig]) -> BaseConfig:
    return parse([*command.split(), *required_tokens(model)])


def command_lines(row: Row, model: type[BaseConfig], default: Any) -> list[tuple[list[str], Any]]:
    """(flags, the value they set) for a row: its spec value, listed choices, example, a non-default value."""
    assert row.field in model.model_fields, f"{row.flag} names no field of {model.__name__}"
    kind = kind_of(model, row.field)
    if kind.is_bool:
        negated = f"--no-{row.flag.removeprefix('--')}"
        aliases = [([alias], True) for alias in row.aliases] + [([negated, a], True) for a in row.aliases]
        return [([row.flag], True), ([negated], False), *aliases]
    assert not row.aliases, f"{row.flag}: short aliases of non-boolean flags are not exercised here"
    values = [row.literal.split()] if row.literal is not None else []
    values += [[choice] for choice in row.choices if kind.shape == "scalar"]
    values += [row.example] if row.example else []
    values.append(other_tokens(kind, row.literal, default, row.choices))
    unique = [tokens for i, tokens in enumerate(values) if tokens not in values[:i]]
    return [([row.flag, *tokens], value_of(tokens, kind)) for tokens in unique]


def row_id(row: Row) -> str:
    return f"{row.command}:{row.flag}"


def test_the_spec_tables_are_read() -> None:
    assert {"dataset phenikaa", "train localization", "test", *PENDING} <= set(TABLES)
    assert all(TABLES.values()), "a command table without rows"
    verbose = {row.command for row in ROWS if row.flag == "--verbose" and row.aliases == ("-v",)}
    assert verbose == set(TABLES), "every table lists -v, --verbose"
    assert next(r for r in TABLES["dataset phenikaa"] if r.flag == "--use-gpu").aliases == ("-g",)


def test_the_lists_of_exceptions_name_rows_of_the_spec() -> None:
    rows = {(row.command, row.flag) for row in ROWS}
    assert set(DEVIATIONS) <= rows and set(DESCRIBED) <= rows
    assert set(PENDING) <= set(TABLES)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_flag_sets_its_own_field(row: Row) -> None:
    model = model_of(row.command)
    base = baseline(row.command, model)
    others = base.model_dump(exclude={row.field})
    lines = command_lines(row, model, getattr(base, row.field))
    assert any(not same(getattr(base, row.field), value) for _, value in lines), "no line changes the field"
    for flags, value in lines:
        argv = [*row.command.split(), *required_tokens(model, leave_out=row.field), *flags]
        config = parse(argv)
        assert type(config) is model
        assert same(getattr(config, row.field), value), f"{' '.join(argv)}: {getattr(config, row.field)!r}"
        assert config.model_dump(exclude={row.field}) == others, f"{' '.join(argv)} changed another field"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_default_is_the_specs(row: Row, capsys: pytest.CaptureFixture[str]) -> None:
    model = model_of(row.command)
    key = (row.command, row.flag)
    if row.default == "Required":
        assert model.model_fields[row.field].is_required()
        with pytest.raises(SystemExit) as exit_info:
            parse([*row.command.split(), *required_tokens(model, leave_out=row.field)])
        assert exit_info.value.code == 2 and row.flag in capsys.readouterr().err
        return
    base = baseline(row.command, model)
    ours = getattr(base, row.field)
    if row.literal is None and row.default != "None":
        assert key in DESCRIBED, f"{row.default!r} is no value: add a check of it to DESCRIBED"
        assert DESCRIBED[key](base), f"default {ours!r} is not {row.default}"
        return
    spec = None if row.literal is None else value_of(row.literal.split(), kind_of(model, row.field))
    if key in DEVIATIONS:
        assert not same(ours, spec), f"listed as a deviation ({DEVIATIONS[key]}) but the defaults agree"
        return
    assert same(ours, spec), f"spec default {row.default}, ours {ours!r}"


@pytest.mark.parametrize("command", sorted(MODELS))
def test_every_boolean_comes_as_a_pair(command: str) -> None:
    model = MODELS[command]
    flags = [name for name, info in model.model_fields.items() if info.annotation is bool]
    assert "verbose" in flags
    for name in flags:
        flag = name.replace("_", "-")
        for given, value in ((f"--{flag}", True), (f"--no-{flag}", False)):
            config = parse([*command.split(), *required_tokens(model), given])
            assert getattr(config, name) is value, f"spine-vision {command} {given}"
    assert parse([*command.split(), *required_tokens(model), "-v"]).verbose is True
