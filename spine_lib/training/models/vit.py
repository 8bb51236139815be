"""Vision Transformer (timm) localization model with a level embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spine_lib.errors import ConfigError
from spine_lib.training.config import VIT_VARIANTS, HeadConfig
from spine_lib.training.models.localization import LocalizationModel, as_head_config
from spine_lib.training.pretrained import create_backbone
from spine_lib.training.registry import register_model


@register_model("vit_localization", task="localization", aliases=["vit"],
                description="ViT backbone + level embedding -> one point per (image, level)")
class VisionTransformerLocalization(LocalizationModel):
    """ViT localization (``variant``: tiny, small, base, large; patch 16). Patch tokens form the heatmap's map."""

    registry_name = "vit_localization"

    def __init__(self, variant: str = "small", pretrained: bool = False, weights_file: Path | str | None = None,
                 num_levels: int = 5, use_level_embedding: bool = True, level_embedding_dim: int = 64,
                 head_config: HeadConfig | dict[str, Any] | None = None, decoder_channels: int = 64,
                 loss_type: str = "smooth_l1", image_size: tuple[int, int] | list[int] = (224, 224)) -> None:
        super().__init__()
        if variant not in VIT_VARIANTS:
            raise ConfigError(variant, f"unknown ViT variant; use one of {', '.join(VIT_VARIANTS)}")
        head = as_head_config(head_config)
        self.variant = variant
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.remember_architecture(variant=variant, num_levels=num_levels, use_level_embedding=use_level_embedding,
                                   level_embedding_dim=level_embedding_dim, head_config=head.model_dump(),
                                   decoder_channels=decoder_channels, loss_type=loss_type,
                                   image_size=list(self.image_size))
        self.backbone = create_backbone(VIT_VARIANTS[variant], pretrained=pretrained, weights_file=weights_file,
                                        num_classes=0, img_size=self.image_size, dynamic_img_size=True)
        width = int(self.backbone.num_features)  # type: ignore[arg-type]
        self._init_heads(map_channels=[width], pooled_features=width, num_levels=num_levels,
                         use_level_embedding=use_level_embedding, level_embedding_dim=level_embedding_dim,
                         head_config=head, decoder_channels=decoder_channels, loss_type=loss_type)

    @property
    def name(self) -> str:
        return f"VisionTransformerLocalization({self.variant})"

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)  # type: ignore[operator]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens = self._tokens(x)
        prefix = int(getattr(self.backbone, "num_prefix_tokens", 1))
        patches = tokens[:, prefix:]
        height, width = x.shape[-2] // 16, x.shape[-1] // 16
        return [patches.transpose(1, 2).reshape(x.shape[0], -1, height, width)]

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self._tokens(x), pre_logits=True)  # type: ignore[operator]
