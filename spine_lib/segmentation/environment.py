"""Where nnU-Net v2 reads and writes, and the environment variables that tell it.

nnU-Net takes its three folders from the environment (``nnUNet_raw``, ``nnUNet_preprocessed``,
``nnUNet_results``). In this project they are derived from the data layout:

```
nnUNet_raw           <data>/processed/SPIDER              (parent of Dataset501_Spider, written by the converter)
nnUNet_preprocessed  <data>/interim/nnUNet_preprocessed   (plans, fingerprints, preprocessed arrays)
nnUNet_results       <weights>/segmentation               (<Dataset>/<trainer>__<plans>__<configuration>/fold_<f>/)
```

A trained model is therefore ``<weights>/segmentation/Dataset501_Spider/<trainer>__nnUNetPlans__<configuration>``:
nnU-Net's own run identity (trainer, plans, configuration, fold) takes the place of a run ID.
``nnUNet_extTrainer`` points at :mod:`spine_lib.segmentation.nnunet_trainers`, so nnU-Net finds this project's
trainers (the short CPU trainer) by name, for training and for prediction.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spine_lib.core.layout import DataLayout

#: Folder of this project's nnU-Net trainer classes (for ``nnUNet_extTrainer``).
TRAINERS_DIR = Path(__file__).resolve().parent / "nnunet_trainers"
SEGMENTATION_TASK = "segmentation"


@dataclass(frozen=True)
class NNUNetPaths:
    """nnU-Net's three folders."""

    raw: Path
    preprocessed: Path
    results: Path

    @classmethod
    def from_layout(cls, layout: DataLayout) -> NNUNetPaths:
        """The project's nnU-Net folders for a data layout (see the module docstring)."""
        return cls(raw=layout.nnunet_raw, preprocessed=layout.nnunet_preprocessed,
                   results=layout.weights_for(SEGMENTATION_TASK))

    def environment(self, processes: int | None = None, augmentation_workers: int | None = None) -> dict[str, str]:
        """The environment variables nnU-Net reads (absolute paths), with optional worker counts."""
        env = {
            "nnUNet_raw": str(self.raw.resolve()),
            "nnUNet_preprocessed": str(self.preprocessed.resolve()),
            "nnUNet_results": str(self.results.resolve()),
            "nnUNet_extTrainer": trainer_search_path(),
        }
        if processes is not None:
            env["nnUNet_def_n_proc"] = str(max(1, processes))
        if augmentation_workers is not None:
            env["nnUNet_n_proc_DA"] = str(max(0, augmentation_workers))
        return env


def trainer_search_path() -> str:
    """``nnUNet_extTrainer`` with this project's trainer folder first (other folders already set are kept)."""
    current = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]  # noqa: SIM112
    return os.pathsep.join([str(TRAINERS_DIR), *(p for p in current if Path(p) != TRAINERS_DIR)])


@contextlib.contextmanager
def nnunet_env(env: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (nnU-Net 2.8 reads its paths when used)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def model_folder(results: Path, dataset: str, trainer: str, plans: str, configuration: str) -> Path:
    """``<results>/<dataset>/<trainer>__<plans>__<configuration>``: nnU-Net's folder of one trained model."""
    return results / dataset / f"{trainer}__{plans}__{configuration}"
