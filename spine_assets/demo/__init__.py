"""The demo job (``spine-vision demo``): a data root (synthetic where empty) materialized through every asset.

This module prepares the data root and the instance folder without importing Dagster (so that the command's
``--help`` answers at once); the materialization runs in a child process (``python -m
spine_assets.demo.materialize``) that reads the same paths from the environment (``DAGSTER_HOME``,
``SPINE_DATA_ROOT``, ``SPINE_WEIGHTS``), prints a JSON line per asset step as the runs go (:class:`DemoStep`)
and finally one JSON line of what it did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

import tyro
from loguru import logger

from spine_assets.environment import DAGSTER_HOME_ENV, DATA_ROOT_ENV, INSTANCE_TEMPLATE, WEIGHTS_ENV
from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.errors import ConfigError, SpineVisionError
from spine_lib.synthetic.config import SynthConfig

#: RSNA studies per patient of the other sources in a synthetic demo root: the localizer learns from RSNA alone,
#: and with as few studies as the other sources' patients it finds too few Phenikaa discs to crop.
RSNA_PER_PATIENT = 5


class DemoConfig(BaseConfig):
    """Make (or reuse) a data root and materialize every asset into a local SQLite Dagster instance.

    Example:
        >>> DemoConfig(patients=2, size=64).dagster_home  # SQLite storage under ./.dagster
        PosixPath('.dagster')
    """

    data_root: Annotated[Path, tyro.conf.arg(help="Data root (made if absent).")] = DEFAULT_LAYOUT.root
    weights: Annotated[Path, tyro.conf.arg(help="Folder of trained weights.")] = DEFAULT_LAYOUT.weights
    dagster_home: Annotated[Path, tyro.conf.arg(help="DAGSTER_HOME of the local instance.")] = Path(".dagster")
    patients: Annotated[int, tyro.conf.arg(help="Synthetic patients per source (when the root is empty).")] = 8
    rsna_studies: Annotated[int | None, tyro.conf.arg(help=(
        "Synthetic RSNA studies, the localizer's training set (when the root is empty; default: "
        f"{RSNA_PER_PATIENT} x --patients)."))] = None
    size: Annotated[int, tyro.conf.arg(help="In-plane size of synthetic sagittal series.")] = 256
    seed: Annotated[int, tyro.conf.arg(help="Seed of the synthetic data.")] = 0
    quick: Annotated[bool, tyro.conf.arg(help=(
        "Train each model for a moment only: a smoke test of the whole graph (for CI); the models' quality "
        "checks then fail."))] = False


#: The key of the child's progress lines (``{"progress": {...}}``), beside its final summary line.
PROGRESS_KEY = "progress"


@dataclass(frozen=True)
class DemoStep:
    """One event of the demo's runs: an asset step started or ended, or an asset check evaluated.

    ``done`` counts the asset steps ended so far (this one included) of the ``total`` the demo planned: one per
    run of reports, one per other asset; a model trained on the current dataset version counts as ``skipped``.
    """

    event: Literal["started", "done", "failed", "skipped", "check"]
    asset: str
    done: int
    total: int
    seconds: float = 0.0  # the step's own duration (done, failed)
    detail: str = ""  # the reports of a run, why a step was skipped, the check's name
    passed: bool = True  # a check's outcome
    elapsed: float = 0.0  # seconds since the demo started, as the parent received the line

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def parse_progress(line: str) -> DemoStep | None:
    """The :class:`DemoStep` of one of the child's progress lines (None for any other line)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get(PROGRESS_KEY), dict):
        return None
    return DemoStep(**value[PROGRESS_KEY])


@dataclass
class DemoResult:
    """What the demo made and where to look."""

    data_root: Path
    dagster_home: Path
    weights: Path
    run_id: str
    materialized: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    up_to_date: list[str] = field(default_factory=list)
    created_folders: list[Path] = field(default_factory=list)
    synthesized: bool = False
    elapsed: float = 0.0  # seconds, the whole demo

    @property
    def ui_command(self) -> str:
        return (
            f"{DAGSTER_HOME_ENV}={self.dagster_home} {DATA_ROOT_ENV}={self.data_root} {WEIGHTS_ENV}={self.weights} "
            "uv run dagster dev -w workspace.yaml"
        )


def prepare_dagster_home(dagster_home: Path, template: Path = INSTANCE_TEMPLATE) -> Path:
    """Create ``dagster_home`` with the project's ``dagster.yaml`` (an existing one is left as it is)."""
    if dagster_home.exists() and not dagster_home.is_dir():
        raise ConfigError(dagster_home, f"{DAGSTER_HOME_ENV} exists and is not a folder")
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    if not target.exists():
        if not template.is_file():
            raise ConfigError(template, "instance template dagster.yaml not found in the spine_assets package")
        shutil.copyfile(template, target)
    return target


def run_demo(config: DemoConfig, on_progress: Callable[[DemoStep], None] | None = None) -> DemoResult:
    """Prepare the data root and the instance, then materialize every asset; raises if a step fails.

    ``on_progress`` receives every asset step as it starts and ends (and every check), while the runs execute.
    """
    started = time.monotonic()
    data_root = config.data_root.resolve()
    weights = config.weights.resolve()
    dagster_home = config.dagster_home.resolve()
    layout = DataLayout(root=data_root, weights=weights)
    prepare_dagster_home(dagster_home)  # fail fast on a bad instance folder, before any data is written
    from spine_lib.synthetic.generate import make_synthetic_root, raw_has_files

    synthesized = not raw_has_files(layout)
    if synthesized:
        logger.info("no raw data under {}: writing a synthetic data root", data_root)
        rsna = config.rsna_studies if config.rsna_studies is not None else RSNA_PER_PATIENT * config.patients
        make_synthetic_root(SynthConfig(out=data_root, patients=config.patients, rsna_studies=rsna, size=config.size,
                                        seed=config.seed))
    created = layout.ensure()
    env = {
        **os.environ,
        DAGSTER_HOME_ENV: str(dagster_home),
        DATA_ROOT_ENV: str(data_root),
        WEIGHTS_ENV: str(weights),
    }
    logger.info("materializing every asset into the instance at {}", dagster_home)
    stdout: list[str] = []
    with tempfile.TemporaryFile("w+") as stderr_file:
        with subprocess.Popen([sys.executable, "-m", "spine_assets.demo.materialize",
                               *(["--quick"] if config.quick else [])], env=env,
                              stdout=subprocess.PIPE, stderr=stderr_file, text=True) as process:
            assert process.stdout is not None
            for line in process.stdout:  # progress lines as the runs go, then the summary
                step = parse_progress(line)
                if step is None:
                    stdout.append(line)
                elif on_progress is not None:
                    on_progress(replace(step, elapsed=time.monotonic() - started))
        returncode = process.returncode
        stderr_file.seek(0)
        stderr = stderr_file.read()
    for line in stderr.splitlines():
        logger.debug("dagster: {}", line)
    summary = parse_summary("".join(stdout))
    if returncode != 0 or summary is None or not summary.get("success"):
        tail = "\n".join(stderr.splitlines()[-20:])
        raise SpineVisionError(dagster_home, f"asset materialization failed (exit {returncode}):\n{tail}")
    return DemoResult(
        data_root=data_root,
        dagster_home=dagster_home,
        weights=weights,
        run_id=str(summary["run_id"]),
        materialized=list(summary["materialized"]),
        checks={str(k): bool(v) for k, v in dict(summary.get("checks", {})).items()},
        up_to_date=[str(k) for k in summary.get("up_to_date", [])],
        created_folders=created,
        synthesized=synthesized,
        elapsed=time.monotonic() - started,
    )


def parse_summary(stdout: str) -> dict | None:
    """The JSON summary line the Dagster child prints last."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and PROGRESS_KEY not in value:
            return value
    return None
