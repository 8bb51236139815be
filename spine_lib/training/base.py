"""The spec's names of the training framework, from their homes: :class:`BaseModel`
(:mod:`spine_lib.training.models.base`), :class:`BaseTrainer` (:mod:`spine_lib.training.trainer`),
:class:`TrainingConfig` (:mod:`spine_lib.training.config`) and :class:`TrainingResult`
(:mod:`spine_lib.training.runs`)."""

from spine_lib.training.config import TrainingConfig
from spine_lib.training.models.base import BaseModel
from spine_lib.training.runs import TrainingResult
from spine_lib.training.trainer import BaseTrainer

__all__ = ["BaseModel", "BaseTrainer", "TrainingConfig", "TrainingResult"]
