"""Resources shared by the assets. Defaults come from the environment so the UI and the demo agree."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from spine_lib.core.layout import DataLayout

DATA_ROOT_ENV = "SPINE_DATA_ROOT"
WEIGHTS_ENV = "SPINE_WEIGHTS"


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


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"paths": data_root_from_env()})
