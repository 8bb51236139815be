"""Model architectures (registered in :class:`~spine_lib.training.registry.ModelRegistry`)."""

from spine_lib.training.models.convnext import ConvNextLocalization
from spine_lib.training.models.localization import HeatmapHead, LevelEmbedding, LocalizationModel, soft_argmax
from spine_lib.training.models.vit import VisionTransformerLocalization

__all__ = [
    "ConvNextLocalization", "HeatmapHead", "LevelEmbedding", "LocalizationModel", "VisionTransformerLocalization",
    "soft_argmax",
]
