"""Model architectures (registered in :class:`~spine_lib.training.registry.ModelRegistry`)."""

from spine_lib.training.models.convnext import ConvNextLocalization
from spine_lib.training.models.disc_detector import ConvNextDiscDetector
from spine_lib.training.models.grading import ConvNextClassifier, MTLPredictions, ResNet50MTL
from spine_lib.training.models.localization import HeatmapHead, LevelEmbedding, LocalizationModel, soft_argmax
from spine_lib.training.models.vit import VisionTransformerLocalization

__all__ = [
    "ConvNextClassifier", "ConvNextDiscDetector", "ConvNextLocalization", "HeatmapHead", "LevelEmbedding",
    "LocalizationModel", "MTLPredictions", "ResNet50MTL", "VisionTransformerLocalization", "soft_argmax",
]
