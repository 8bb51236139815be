"""ConvNeXt (v1 and v2, timm) localization model with a level embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from spine_lib.errors import ConfigError
from spine_lib.training.config import CONVNEXT_VARIANTS, HeadConfig
from spine_lib.training.models.localization import LocalizationModel, as_head_config
from spine_lib.training.pretrained import create_backbone
from spine_lib.training.registry import register_model

#: Backbone stages feeding the heatmap decoder (strides 8, 16, 32).
FEATURE_STAGES = (1, 2, 3)


@register_model("convnext_localization", task="localization", aliases=["convnext"],
                description="ConvNeXt backbone + level embedding -> one point per (image, level)")
class ConvNextLocalization(LocalizationModel):
    """ConvNeXt localization. ``variant``: atto, femto, pico, nano (CPU-sized), tiny, small, base, large, xlarge,
    and the v2 family (``v2_tiny`` ... ``v2_huge``)."""

    registry_name = "convnext_localization"

    def __init__(self, variant: str = "base", pretrained: bool = False, weights_file: Path | str | None = None,
                 num_levels: int = 5, use_level_embedding: bool = True, level_embedding_dim: int = 64,
                 head_config: HeadConfig | dict[str, Any] | None = None, decoder_channels: int = 64,
                 loss_type: str = "smooth_l1", drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if variant not in CONVNEXT_VARIANTS:
            raise ConfigError(variant, f"unknown ConvNeXt variant; use one of {', '.join(CONVNEXT_VARIANTS)}")
        head = as_head_config(head_config)
        self.variant = variant
        self.timm_name = CONVNEXT_VARIANTS[variant]
        self.remember_architecture(variant=variant, num_levels=num_levels, use_level_embedding=use_level_embedding,
                                   level_embedding_dim=level_embedding_dim, head_config=head.model_dump(),
                                   decoder_channels=decoder_channels, loss_type=loss_type)
        self.backbone = create_backbone(self.timm_name, pretrained=pretrained, weights_file=weights_file,
                                        features_only=True, out_indices=FEATURE_STAGES, drop_path_rate=drop_path_rate)
        channels: list[int] = self.backbone.feature_info.channels()  # type: ignore[union-attr, operator]
        self.pool_norm = nn.LayerNorm(channels[-1])
        self._init_heads(map_channels=channels, pooled_features=channels[-1], num_levels=num_levels,
                         use_level_embedding=use_level_embedding, level_embedding_dim=level_embedding_dim,
                         head_config=head, decoder_channels=decoder_channels, loss_type=loss_type)

    @property
    def name(self) -> str:
        return f"ConvNextLocalization({self.variant})"

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.backbone(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_norm(self.backbone(x)[-1].mean(dim=(2, 3)))
