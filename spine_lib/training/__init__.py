"""Training framework: base model and trainer (Accelerate), registries, heads, localization models and trainer,
metrics, plots.

Names are imported lazily: ``from spine_lib.training.config import LocalizationConfig`` (what the CLI and the
Dagster assets need) does not import torch, timm or accelerate.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.levels import IDX_TO_LEVEL, LEVEL_TO_IDX
    from spine_lib.training.checkpoints import CheckpointError, model_from_checkpoint
    from spine_lib.training.config import (
        ClassificationConfig,
        HeadConfig,
        LocalizationConfig,
        ModelTestConfig,
        TrainingConfig,
    )
    from spine_lib.training.datasets.classification import (
        ClassificationCollator,
        ClassificationDataset,
        construct_3channel,
    )
    from spine_lib.training.datasets.ivd_coords import IVDCoordsDataset
    from spine_lib.training.grading import MTLTargets
    from spine_lib.training.heads import (
        AttentionHead,
        BaseHead,
        ConvHead,
        HeadFactory,
        LinearHead,
        MLPHead,
        MultiTaskHead,
        ResidualHead,
        create_head,
    )
    from spine_lib.training.metrics import (
        BaseMetrics,
        LocalizationMetrics,
        MetricResult,
        MTLClassificationMetrics,
    )
    from spine_lib.training.models import (
        ConvNextClassifier,
        ConvNextLocalization,
        LevelEmbedding,
        MTLPredictions,
        ResNet50MTL,
        VisionTransformerLocalization,
    )
    from spine_lib.training.models.base import BaseModel
    from spine_lib.training.pretrained import PretrainedWeightsError
    from spine_lib.training.registry import (
        MetricsRegistry,
        ModelRegistry,
        TrainerRegistry,
        register_metrics,
        register_model,
        register_trainer,
    )
    from spine_lib.training.runs import TrainingResult
    from spine_lib.training.trainer import BaseTrainer
    from spine_lib.training.trainers import LocalizationTrainer, train_localization
    from spine_lib.training.trainers.classification import ClassificationTrainer, train_classification
    from spine_lib.training.visualization import TrainingVisualizer

_HOMES = {
    "ClassificationConfig": "spine_lib.training.config",
    "ClassificationTrainer": "spine_lib.training.trainers.classification",
    "train_classification": "spine_lib.training.trainers.classification",
    "MTLTargets": "spine_lib.training.grading",
    "MTLClassificationMetrics": "spine_lib.training.metrics",
    "IDX_TO_LEVEL": "spine_lib.levels",
    "LEVEL_TO_IDX": "spine_lib.levels",
    "BaseModel": "spine_lib.training.models.base",
    "BaseTrainer": "spine_lib.training.trainer",
    "TrainingResult": "spine_lib.training.runs",
    "CheckpointError": "spine_lib.training.checkpoints",
    "model_from_checkpoint": "spine_lib.training.checkpoints",
    "HeadConfig": "spine_lib.training.config",
    "LocalizationConfig": "spine_lib.training.config",
    "ModelTestConfig": "spine_lib.training.config",
    "TrainingConfig": "spine_lib.training.config",
    "ClassificationCollator": "spine_lib.training.datasets.classification",
    "ClassificationDataset": "spine_lib.training.datasets.classification",
    "construct_3channel": "spine_lib.training.datasets.classification",
    "IVDCoordsDataset": "spine_lib.training.datasets.ivd_coords",
    "AttentionHead": "spine_lib.training.heads",
    "BaseHead": "spine_lib.training.heads",
    "ConvHead": "spine_lib.training.heads",
    "HeadFactory": "spine_lib.training.heads",
    "LinearHead": "spine_lib.training.heads",
    "MLPHead": "spine_lib.training.heads",
    "MultiTaskHead": "spine_lib.training.heads",
    "ResidualHead": "spine_lib.training.heads",
    "create_head": "spine_lib.training.heads",
    "BaseMetrics": "spine_lib.training.metrics",
    "LocalizationMetrics": "spine_lib.training.metrics",
    "MetricResult": "spine_lib.training.metrics",
    "ConvNextClassifier": "spine_lib.training.models",
    "ConvNextLocalization": "spine_lib.training.models",
    "MTLPredictions": "spine_lib.training.models",
    "ResNet50MTL": "spine_lib.training.models",
    "LevelEmbedding": "spine_lib.training.models",
    "VisionTransformerLocalization": "spine_lib.training.models",
    "PretrainedWeightsError": "spine_lib.training.pretrained",
    "MetricsRegistry": "spine_lib.training.registry",
    "ModelRegistry": "spine_lib.training.registry",
    "TrainerRegistry": "spine_lib.training.registry",
    "register_metrics": "spine_lib.training.registry",
    "register_model": "spine_lib.training.registry",
    "register_trainer": "spine_lib.training.registry",
    "LocalizationTrainer": "spine_lib.training.trainers",
    "train_localization": "spine_lib.training.trainers",
    "TrainingVisualizer": "spine_lib.training.visualization",
}
__all__ = [
    "IDX_TO_LEVEL",
    "LEVEL_TO_IDX",
    "AttentionHead",
    "BaseHead",
    "BaseMetrics",
    "BaseModel",
    "BaseTrainer",
    "CheckpointError",
    "ClassificationCollator",
    "ClassificationConfig",
    "ClassificationDataset",
    "ClassificationTrainer",
    "ConvHead",
    "ConvNextClassifier",
    "ConvNextLocalization",
    "HeadConfig",
    "HeadFactory",
    "IVDCoordsDataset",
    "LevelEmbedding",
    "LinearHead",
    "LocalizationConfig",
    "LocalizationMetrics",
    "LocalizationTrainer",
    "MLPHead",
    "MTLClassificationMetrics",
    "MTLPredictions",
    "MTLTargets",
    "MetricResult",
    "MetricsRegistry",
    "ModelRegistry",
    "ModelTestConfig",
    "MultiTaskHead",
    "PretrainedWeightsError",
    "ResNet50MTL",
    "ResidualHead",
    "TrainerRegistry",
    "TrainingConfig",
    "TrainingResult",
    "TrainingVisualizer",
    "VisionTransformerLocalization",
    "construct_3channel",
    "create_head",
    "model_from_checkpoint",
    "register_metrics",
    "register_model",
    "register_trainer",
    "train_classification",
    "train_localization",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
