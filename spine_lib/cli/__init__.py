"""The ``spine-vision`` command: each subcommand builds one job config and calls one library function."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import tyro
from loguru import logger

from spine_lib.core.config import BaseConfig
from spine_lib.core.logging import setup_logger
from spine_lib.demo import DemoConfig, DemoResult, run_demo
from spine_lib.errors import SpineVisionError
from spine_lib.synthetic.config import SynthConfig


def demo(config: DemoConfig) -> None:
    result: DemoResult = run_demo(config)
    print(f"Data root:        {result.data_root}")
    print(f"Dagster instance: {result.dagster_home} (run {result.run_id})")
    if result.synthesized:
        print("Synthetic data:   written (SPIDER, RSNA, Phenikaa layouts; truth/ holds the ground truth)")
    print(f"Materialized:     {', '.join(result.materialized) or 'nothing'}")
    failed = [name for name, passed in result.checks.items() if not passed]
    print(f"Asset checks:     {len(result.checks) - len(failed)}/{len(result.checks)} passed"
          + (f" (failed: {', '.join(failed)})" if failed else ""))
    print(f"Open the UI:      {result.ui_command}")


def synth(config: SynthConfig) -> None:
    from spine_lib.synthetic.generate import make_synthetic_root

    report = make_synthetic_root(config)
    print(f"Synthetic data root: {report.root}")
    for source, count in report.counts.items():
        print(f"  {source:<9} {count:>3} subjects  {report.seconds[source]:6.1f} s")
    print(f"Ground truth:        {report.root / 'truth'}")


#: subcommand name -> (config model, handler)
COMMANDS: dict[str, tuple[type[BaseConfig], Callable[[Any], None]]] = {
    "demo": (DemoConfig, demo),
    "synth": (SynthConfig, synth),
}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, set up logging, run the command; library errors exit 2 with one clear line."""
    config = tyro.extras.subcommand_cli_from_dict(
        {name: model for name, (model, _) in COMMANDS.items()},
        prog="spine-vision",
        description="Spine Vision: lumbar spine MRI datasets, models and the Dagster asset graph.",
        args=argv,
        config=(tyro.conf.FlagCreatePairsOff,),
    )
    setup_logger(config.verbose, config.enable_file_log, config.log_path)
    handler = next(h for model, h in COMMANDS.values() if type(config) is model)
    try:
        handler(config)
    except SpineVisionError as error:
        logger.error("{}: {}", type(error).__name__, error)
        sys.exit(2)
