"""The ``spine-vision`` command: each subcommand builds one job config and calls one library function.

``spine-vision synth``, ``spine-vision test``, grouped commands such as ``spine-vision dataset phenikaa``, and
the commands other installed packages add through the ``spine_vision.commands`` entry-point group (the code
location adds ``spine-vision demo``): each entry point names a ``(config model, handler)`` pair. Heavy
libraries are imported by the handlers, so ``--help`` answers at once. Every boolean option is a pair,
``--X`` / ``--no-X``, whatever its default; :func:`parse` builds a config without running its job.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import tyro
from loguru import logger

from spine_lib.core.config import BaseConfig
from spine_lib.core.logging import setup_logger
from spine_lib.datasets.classification.config import ClassificationDatasetConfig
from spine_lib.datasets.ivd_coords import IVDDatasetConfig
from spine_lib.datasets.nnunet import ConvertConfig
from spine_lib.datasets.phenikaa import PreprocessConfig
from spine_lib.errors import SpineVisionError
from spine_lib.segmentation.training import SegmentationTrainConfig
from spine_lib.synthetic.config import SynthConfig
from spine_lib.training.config import ClassificationConfig, LocalizationConfig, ModelTestConfig
from spine_lib.visualization.segmentation_viewer import VisualizeConfig

Handler = Callable[[Any], None]
#: a command: its config model and the function that runs it
Command = tuple[type[BaseConfig], Handler]


def synth(config: SynthConfig) -> None:
    from spine_lib.synthetic.generate import make_synthetic_root

    report = make_synthetic_root(config)
    print(f"Synthetic data root: {report.root}")
    for source, count in report.counts.items():
        print(f"  {source:<9} {count:>3} subjects  {report.seconds[source]:6.1f} s")
    print(f"Ground truth:        {report.root / 'truth'}")


def dataset_phenikaa(config: PreprocessConfig) -> None:
    from spine_lib.datasets.phenikaa import OVERRIDES_FILE, REVIEW_FILE, preprocess

    report = preprocess(config)
    for key, value in report.as_metadata().items():
        print(f"{key:<24} {value}")
    print(f"Dataset:  {config.output_path}")
    print(f"Interim:  {config.interim_path} (report_fields.csv, matches.csv, rejects.csv)")
    if report.waiting_for_review:
        print(f"Review:   {report.waiting_for_review} reports wait in {config.interim_path / REVIEW_FILE}; "
              f"decisions go to {config.interim_path / OVERRIDES_FILE}")


def dataset_nnunet(config: ConvertConfig) -> None:
    from spine_lib.datasets.nnunet import convert_to_nnunet

    report = convert_to_nnunet(config)
    for key, value in report.as_metadata().items():
        print(f"{key:<20} {value}")
    print(f"Dataset:  {report.output_path} (rejects: {report.rejects_path.name})")


def dataset_localization(config: IVDDatasetConfig) -> None:
    from spine_lib.datasets.ivd_coords import build_ivd_coords, report_lines

    report = build_ivd_coords(config)
    print("\n".join(report_lines(report)))
    print(f"Rejected rows: {config.rejects_path}")


def dataset_classification(config: ClassificationDatasetConfig) -> None:
    from spine_lib.datasets.classification import build_classification_dataset

    report = build_classification_dataset(config)
    for key, value in report.as_metadata().items():
        print(f"{key:<32} {value}")
    print(report.counts_table())
    print(f"Dataset:       {report.output_path} (annotations.csv, rejects.csv)")
    if report.contact_sheet.is_file():
        print(f"Contact sheet: {report.contact_sheet}")


def train_localization(config: LocalizationConfig) -> None:
    from spine_lib.training.trainers.localization import train_localization as train

    result = train(config)
    for key, value in result.as_metadata().items():
        if "/" not in key:
            print(f"{key:<24} {value}")
    print(f"Best model:  {result.best_model_path}")
    for name, path in result.plots.items():
        print(f"Plot {name + ':':<18} {path}")


def test_model(config: ModelTestConfig) -> None:
    import json

    from spine_lib.training.inference import check_outcome

    if config.task == "localization":
        from spine_lib.training.inference import run_model_test

        result = run_model_test(config)
    else:
        from spine_lib.inference.grading import run_grading_test

        result = run_grading_test(config)
    print(json.dumps(result, indent=2))
    check_outcome(result, strict=config.strict)


def train_classification(config: ClassificationConfig) -> None:
    from spine_lib.training.trainers.classification import train_classification as train

    result = train(config)
    for key, value in result.as_metadata().items():
        if key.count("/") <= 1 and "baseline" not in key:
            print(f"{key:<36} {value}")
    print(f"Best model:  {result.best_model_path}")
    for name, path in result.plots.items():
        print(f"Plot {name + ':':<30} {path}")


def train_segmentation(config: SegmentationTrainConfig) -> None:
    from spine_lib.segmentation.training import train_segmentation as train

    result = train(config)
    for key, value in result.as_metadata().items():
        print(f"{key:<20} {value}")
    print(result.dice_table_markdown())


def visualize(config: VisualizeConfig) -> None:
    from spine_lib.visualization.segmentation_viewer import visualize_segmentations

    report = visualize_segmentations(config)
    for path in report.outputs:
        print(f"View:     {path}")
    for name, reason in report.failed:
        print(f"Failed:   {name}: {reason}")
    if report.seconds_per_volume:
        print(f"Seconds per volume (inference): {sum(report.seconds_per_volume) / len(report.seconds_per_volume):.2f}")


#: subcommand name -> (config model, handler); groups hold their own subcommands.
COMMANDS: dict[str, Command] = {
    "synth": (SynthConfig, synth),
    "test": (ModelTestConfig, test_model),
    "visualize": (VisualizeConfig, visualize),
}
GROUPS: dict[str, dict[str, Command]] = {
    "train": {"localization": (LocalizationConfig, train_localization),
              "segmentation": (SegmentationTrainConfig, train_segmentation),
              "classification": (ClassificationConfig, train_classification)},
    "dataset": {"phenikaa": (PreprocessConfig, dataset_phenikaa), "localization": (IVDDatasetConfig, dataset_localization),
                "nnunet": (ConvertConfig, dataset_nnunet),
                "classification": (ClassificationDatasetConfig, dataset_classification)},
}


#: entry-point group through which installed packages add commands
COMMAND_ENTRY_POINTS = "spine_vision.commands"


def plugin_commands() -> dict[str, Command]:
    """The commands installed packages add (entry points of :data:`COMMAND_ENTRY_POINTS`), by name."""
    from importlib.metadata import entry_points

    return {point.name: point.load() for point in sorted(entry_points(group=COMMAND_ENTRY_POINTS),
                                                        key=lambda p: p.name)}


def command_models() -> dict[str, type[BaseConfig]]:
    """Every command's config model, by its full name (``synth``, ``dataset phenikaa``, ``demo``...)."""
    models = {name: model for name, (model, _) in {**plugin_commands(), **COMMANDS}.items()}
    for group, commands in GROUPS.items():
        models.update({f"{group} {name}": model for name, (model, _) in commands.items()})
    return models


def _select(args: list[str]) -> tuple[dict[str, Command], str, list[str]]:
    """The commands the arguments choose from (a group's, or the top level's), the program name, the rest."""
    if args and args[0] in GROUPS:
        return GROUPS[args[0]], f"spine-vision {args[0]}", args[1:]
    return {**plugin_commands(), **COMMANDS}, "spine-vision", args


def _parse(commands: dict[str, Command], prog: str, args: list[str]) -> BaseConfig:
    """The config of the one command of ``commands`` that ``args`` names, built from its flags."""
    groups = "; ".join(f"{g} ({', '.join(c)})" for g, c in GROUPS.items())
    return tyro.extras.subcommand_cli_from_dict(
        {name: model for name, (model, _) in commands.items()},
        prog=prog,
        description=f"Spine Vision: lumbar spine MRI datasets, models and the Dagster asset graph. Groups: {groups}.",
        args=args,
    )


def parse(argv: Sequence[str]) -> BaseConfig:
    """The job config a command line (without the program name) asks for, without running the job.

    ``--help`` and bad arguments exit as argparse does (status 0 and 2). Every boolean option comes as a
    pair, ``--X`` and ``--no-X``.
    """
    return _parse(*_select(list(argv)))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, set up logging, run the command; library errors exit 2 with one clear line."""
    commands, prog, args = _select(list(sys.argv[1:] if argv is None else argv))
    config = _parse(commands, prog, args)
    setup_logger(config.verbose, config.enable_file_log, config.log_path)
    handler = next(h for model, h in commands.values() if type(config) is model)
    try:
        handler(config)
    except SpineVisionError as error:
        logger.error("{}: {}", type(error).__name__, error)
        sys.exit(2)
