"""Resources shared by the assets. Defaults come from the environment so the UI and the demo agree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from spine_assets.environment import DATA_ROOT_ENV, DEVICE_ENV, TRACKING_ENV, WEIGHTS_ENV
from spine_assets.run_config import derived_config, library_overrides
from spine_lib.core.layout import DataLayout
from spine_lib.datasets.phenikaa.config import PreprocessConfig

if TYPE_CHECKING:
    from spine_lib.core.device import DeviceChoice



class DataRoot(dg.ConfigurableResource):
    """Where the data root and the weights folder are (seed layout under ``root``)."""

    root: str = "data"
    weights: str = "weights"

    @property
    def layout(self) -> DataLayout:
        return DataLayout(root=Path(self.root), weights=Path(self.weights))


def data_root_from_env() -> DataRoot:
    """The data root named by ``SPINE_DATA_ROOT``/``SPINE_WEIGHTS``, else ``./data`` and ``./weights``."""
    return DataRoot(root=os.environ.get(DATA_ROOT_ENV, "data"), weights=os.environ.get(WEIGHTS_ENV, "weights"))


class PhenikaaSettings(
    derived_config(PreprocessConfig, base=dg.ConfigurableResource, exclude={
        "data_path", "output_path", "interim_path", "det_model_dir", "rec_weights", "use_gpu"})
):
    """How Phenikaa reports are read and matched (the flags of ``spine-vision dataset phenikaa``; the paths from
    the data root; the deep-learning OCR engine runs on the CPU here)."""

    def preprocess_config(self, paths: DataRoot) -> PreprocessConfig:
        return PreprocessConfig.for_layout(paths.layout, **library_overrides(self, use_gpu=False))


class TorchDevice(dg.ConfigurableResource):
    """The torch device of training and inference assets: ``auto`` (the visible CUDA device with the most free
    memory, else CPU), ``cpu``, ``cuda`` or ``cuda:N``. Mixed precision applies on CUDA only."""

    device: str = "auto"
    mixed_precision: bool = True

    def choice(self) -> DeviceChoice:
        from spine_lib.core.device import select_device

        return select_device(self.device, mixed_precision=self.mixed_precision)


class ExperimentTracking(dg.ConfigurableResource):
    """Where training runs are logged besides their own folder: wandb ``disabled``, ``offline`` or ``online``."""

    mode: str = "disabled"
    project: str = "spine-vision"

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"


def in_process_by_default() -> dg.ExecutorDefinition:
    """Dagster's own executor (``in_process`` or ``multiprocess`` by run config, as always), in-process unless a run
    asks otherwise: a step then starts without a new Python interpreter and a new import of the code location
    (3-5 s each on a small machine, more than reading a report). Parallel work happens inside the steps (the
    report readers' and dataset builders' worker pools, the training loaders); the assets that share an
    accelerator queue on their concurrency pool either way. A run that wants a process per step says
    ``execution: {config: {multiprocess: {}}}``."""
    base = dg.multi_or_in_process_executor
    return dg.ExecutorDefinition(
        name="in_process_or_multiprocess",
        config_schema=dg.Field(base.config_schema.as_field().config_type, default_value={"in_process": {}}),
        executor_creation_fn=base.executor_creation_fn,
        requirements=base.get_requirements,
        description=in_process_by_default.__doc__,
    )


DEFAULT_EXECUTOR = in_process_by_default()


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(executor=DEFAULT_EXECUTOR, resources={
        "paths": data_root_from_env(),
        "phenikaa": PhenikaaSettings(),
        "torch_device": TorchDevice(device=os.environ.get(DEVICE_ENV, "auto")),
        "tracking": ExperimentTracking(mode=os.environ.get(TRACKING_ENV, "disabled")),
    })
