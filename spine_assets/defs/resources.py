"""Resources shared by the assets. Defaults come from the environment so the UI and the demo agree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from spine_lib.core.layout import DataLayout

if TYPE_CHECKING:
    from spine_lib.core.device import DeviceChoice
    from spine_lib.datasets.phenikaa import PreprocessConfig

DATA_ROOT_ENV = "SPINE_DATA_ROOT"
WEIGHTS_ENV = "SPINE_WEIGHTS"
DEVICE_ENV = "SPINE_DEVICE"
TRACKING_ENV = "SPINE_TRACKING"


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


class PhenikaaSettings(dg.ConfigurableResource):
    """How Phenikaa reports are read and matched (the flags of ``spine-vision dataset phenikaa``)."""

    ocr_engine: str = "tesseract"
    pdf_dpi: int = 200
    report_fuzzy_threshold: int = 80
    image_fuzzy_threshold: int = 85
    image_export: str = "anonymized"
    corrupted_ids: list[str] = Field(default_factory=list)

    def preprocess_config(self, paths: DataRoot) -> PreprocessConfig:
        from spine_lib.datasets.phenikaa import PreprocessConfig

        layout = paths.layout
        return PreprocessConfig.model_validate({
            "data_path": layout.phenikaa,
            "output_path": layout.classification,
            "interim_path": layout.interim / "Phenikaa",
            "ocr_engine": self.ocr_engine,
            "pdf_dpi": self.pdf_dpi,
            "report_fuzzy_threshold": self.report_fuzzy_threshold,
            "image_fuzzy_threshold": self.image_fuzzy_threshold,
            "image_export": self.image_export,
            "corrupted_ids": self.corrupted_ids,
            "use_gpu": False,
        })


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


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "paths": data_root_from_env(),
        "phenikaa": PhenikaaSettings(),
        "torch_device": TorchDevice(device=os.environ.get(DEVICE_ENV, "auto")),
        "tracking": ExperimentTracking(mode=os.environ.get(TRACKING_ENV, "disabled")),
    })
