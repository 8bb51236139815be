"""What every point-localization model shares: level embedding, heads, loss, ``test_inference``.

A localization model maps an image and a disc level to one point, relative ``(x, y)`` in [0, 1]. Two kinds of
head sit on the backbone:

- ``heatmap`` (default): a small feature-pyramid decoder whose features are modulated by the level embedding
  (FiLM), one heatmap, and a soft-argmax giving the expected position; precise because it keeps the spatial
  layout of the image;
- a pooled-feature head (``mlp``, ``linear``, ``attention``, ``residual``, ``conv``): global features concatenated
  with the level embedding, regressed to ``(x, y)`` through a sigmoid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from spine_lib.errors import ConfigError
from spine_lib.training.config import HeadConfig
from spine_lib.training.heads import create_head
from spine_lib.training.models.base import BaseModel

#: Smooth-L1/Huber transition, in relative coordinates (1% of the image, ~2 px at 224).
LOSS_BETA = 0.01
#: Spread of the target heatmap around the true point, in heatmap cells (a cell is 4 input pixels for ConvNeXt).
HEATMAP_SIGMA = 1.5


def heatmap_loss(logits: torch.Tensor, targets: torch.Tensor, sigma: float = HEATMAP_SIGMA) -> torch.Tensor:
    """KL divergence from a Gaussian at each target point to the softmax of its heatmap (0 when they agree):
    supervises where the probability mass lies, not only its mean, which trains the heatmap head much faster.

    ``logits`` ``(N, 1, h, w)``; ``targets`` ``(N, 2)`` relative ``(x, y)`` (cell centres at ``(j + 0.5) / w``)."""
    _, _, height, width = logits.shape
    ys = torch.arange(height, device=logits.device, dtype=torch.float32)
    xs = torch.arange(width, device=logits.device, dtype=torch.float32)
    cx = targets[:, 0].float() * width - 0.5
    cy = targets[:, 1].float() * height - 0.5
    grid = -((xs[None, None, :] - cx[:, None, None]) ** 2 + (ys[None, :, None] - cy[:, None, None]) ** 2)
    target = (grid / (2 * sigma**2)).flatten(1).softmax(dim=1)
    log_probabilities = logits.float().flatten(1).log_softmax(dim=1)
    return functional.kl_div(log_probabilities, target, reduction="batchmean")


class LevelEmbedding(nn.Module):
    """A learned vector per disc level (0 = L1/L2 ... 4 = L5/S1)."""

    def __init__(self, num_levels: int = 5, dim: int = 64) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.embedding = nn.Embedding(num_levels, dim)

    def forward(self, level_idx: torch.Tensor) -> torch.Tensor:
        if level_idx.numel() and (int(level_idx.min()) < 0 or int(level_idx.max()) >= self.num_levels):
            raise ConfigError("level_idx", f"level index out of range 0..{self.num_levels - 1}")
        return self.embedding(level_idx.long())


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """Expected ``(x, y)`` in [0, 1] of a ``(B, 1, h, w)`` heatmap (pixel centres at ``(j + 0.5) / w``)."""
    batch, _, height, width = logits.shape
    probabilities = logits.float().flatten(1).softmax(dim=1).view(batch, height, width)
    xs = (torch.arange(width, device=logits.device, dtype=torch.float32) + 0.5) / width
    ys = (torch.arange(height, device=logits.device, dtype=torch.float32) + 0.5) / height
    x = (probabilities.sum(dim=1) * xs).sum(dim=1)
    y = (probabilities.sum(dim=2) * ys).sum(dim=1)
    return torch.stack([x, y], dim=1)


class HeatmapHead(nn.Module):
    """Feature maps of several strides -> fused at the finest one -> level-modulated -> heatmap -> soft-argmax."""

    def __init__(self, in_channels: Sequence[int], channels: int = 64, embedding_dim: int | None = 64) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.GELU())
        self.film = nn.Linear(embedding_dim, 2 * channels) if embedding_dim else None
        self.refine = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.GELU(),
                                    nn.Conv2d(channels, 1, 1))
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def heatmap(self, features: Sequence[torch.Tensor], embedding: torch.Tensor | None,
                repeats: int = 1) -> torch.Tensor:
        """Heatmap logits ``(B * repeats, 1, h, w)``: the fused features of each image serve ``repeats``
        consecutive embeddings (levels)."""
        size = features[0].shape[-2:]
        fused = sum(
            functional.interpolate(lateral(f), size=size, mode="bilinear", align_corners=False) if f.shape[-2:] != size
            else lateral(f)
            for lateral, f in zip(self.laterals, features, strict=True)
        )
        x = self.fuse(fused)  # type: ignore[arg-type]
        if repeats > 1:
            x = x.repeat_interleave(repeats, dim=0)
        if self.film is not None and embedding is not None:
            gamma, beta = self.film(embedding).chunk(2, dim=1)
            x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return self.refine(x)

    def forward(self, features: Sequence[torch.Tensor], embedding: torch.Tensor | None,
                repeats: int = 1) -> torch.Tensor:
        logits = self.heatmap(features, embedding, repeats)
        # kept while training for the heatmap's own loss (see LocalizationModel.get_loss)
        self.last_logits = logits if self.training else None
        return soft_argmax(logits)


class LocalizationModel(BaseModel):
    """Base of the localization models: subclasses build ``backbone`` and implement :meth:`features`."""

    #: True for a model that finds every level of an image in one pass, without a level input
    #: (:class:`~spine_lib.training.models.disc_detector.ConvNextDiscDetector`): ``forward(x, level_idx)`` picks
    #: the asked levels from its answer for the whole image.
    level_free: bool = False

    def guessed_levels(self) -> list[list[int]] | None:
        """Per image of the last forward pass, the level indices whose point the model could not see and
        extrapolated from the others (None: the model does not tell)."""
        return None

    def _init_heads(self, *, map_channels: Sequence[int], pooled_features: int, num_levels: int,
                    use_level_embedding: bool, level_embedding_dim: int, head_config: HeadConfig,
                    decoder_channels: int, loss_type: str) -> None:
        if loss_type not in ("mse", "smooth_l1", "huber"):
            raise ConfigError(loss_type, "unknown loss type; use mse, smooth_l1 or huber")
        self.loss_type = loss_type
        self.num_levels = num_levels
        self.use_level_embedding = use_level_embedding
        self.head_type = head_config.head_type
        self.level_embedding = LevelEmbedding(num_levels, level_embedding_dim) if use_level_embedding else None
        embedding_dim = level_embedding_dim if use_level_embedding else 0
        if head_config.head_type == "heatmap":
            self.head: nn.Module = HeatmapHead(map_channels, decoder_channels, embedding_dim or None)
        else:
            regression = head_config.model_copy(update={"output_activation": "sigmoid"})
            self.head = create_head(regression, pooled_features + embedding_dim, 2)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps, finest first (for the heatmap head)."""
        raise NotImplementedError

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global image features (for the pooled-feature heads)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, level_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Relative ``(x, y)`` of the point of level ``level_idx`` in each image: ``(B, 2)`` for ``level_idx`` of
        shape ``(B,)``; ``(B, K, 2)`` for ``(B, K)`` (K levels of each image from one backbone pass)."""
        groups = 1
        flat_levels = level_idx
        if level_idx is not None and level_idx.dim() == 2:
            if level_idx.shape[0] != x.shape[0]:
                raise ConfigError("level_idx", f"{level_idx.shape[0]} rows of levels for {x.shape[0]} images")
            groups = int(level_idx.shape[1])
            flat_levels = level_idx.reshape(-1)
        embedding = None
        if self.level_embedding is not None:
            if flat_levels is None:
                raise ConfigError("level_idx", "this model uses a level embedding: pass level_idx")
            embedding = self.level_embedding(flat_levels.to(x.device))
        if self.head_type == "heatmap":
            out = self.head(self.features(x), embedding, groups)
        else:
            pooled = self.pooled(x)
            if groups > 1:
                pooled = pooled.repeat_interleave(groups, dim=0)
            if embedding is not None:
                pooled = torch.cat([pooled, embedding.to(pooled.dtype)], dim=1)
            out = self.head(pooled)
        return out.view(x.shape[0], groups, 2) if level_idx is not None and level_idx.dim() == 2 else out

    def get_loss(self, predictions: torch.Tensor, targets: torch.Tensor, heatmap_weight: float = 0.0,
                 **kwargs: Any) -> torch.Tensor:
        """Coordinate loss over the targets that exist (grouped targets hold NaN for a level an image lacks), plus,
        with ``heatmap_weight`` and a heatmap head in training, that weight times :func:`heatmap_loss` of the
        forward pass that made ``predictions``."""
        predictions, targets = predictions.float(), targets.float()
        present = torch.isfinite(targets).all(dim=-1)
        logits = getattr(self.head, "last_logits", None) if heatmap_weight > 0 else None
        if not bool(present.all()):
            predictions, targets = predictions[present], targets[present]
        if self.loss_type == "mse":
            loss = functional.mse_loss(predictions, targets)
        elif self.loss_type == "huber":
            loss = functional.huber_loss(predictions, targets, delta=LOSS_BETA)
        else:
            loss = functional.smooth_l1_loss(predictions, targets, beta=LOSS_BETA)
        if logits is not None and logits.shape[0] == present.numel():
            loss = loss + heatmap_weight * heatmap_loss(logits[present.reshape(-1)], targets.reshape(-1, 2))
        return loss

    @torch.no_grad()
    def test_inference(self, images: Sequence[Any], image_size: tuple[int, int] = (224, 224), device: str = "cpu",
                       level_indices: Sequence[int] | None = None, pairwise: bool | None = None,
                       **kwargs: Any) -> dict[str, Any]:
        """Predict points on image files or arrays.

        ``level_indices``: one level per image when its length equals the number of images (or ``pairwise``),
        otherwise every listed level on every image; None: every level on every image. Returns
        ``predictions`` (N, 2) relative, ``coords_pixel`` (N, 2) in each original image's pixels,
        ``image_index`` and ``level_indices`` per row, ``guessed`` per row (whether the model extrapolated that
        point, seeing no disc there; None when the model does not tell) and ``inference_time_ms`` (forward pass
        only).
        """
        from spine_lib.training.preprocessing import prepare_batch

        batch, sizes = prepare_batch(images, image_size)
        levels = list(range(self.num_levels)) if level_indices is None else [int(i) for i in level_indices]
        if pairwise is None:
            pairwise = level_indices is not None and len(levels) == len(images)
        if pairwise:
            if len(levels) != len(images):
                raise ConfigError("level_indices", f"{len(levels)} levels for {len(images)} images")
            pairs = list(enumerate(levels))
        else:
            pairs = [(i, level) for i in range(len(images)) for level in levels]
        index = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        level_tensor = torch.tensor([p[1] for p in pairs], dtype=torch.long)
        self.to(device).eval()
        start = time.perf_counter()
        if self.level_free:  # one pass per image gives every level
            predictions = self(batch.to(device), None)[index, level_tensor]
        else:
            inputs = batch[index].to(device)
            predictions = self(inputs, level_tensor.to(device) if self.use_level_embedding else None)
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        elapsed_ms = (time.perf_counter() - start) * 1000
        known = self.guessed_levels() if self.level_free else None
        guessed = None if known is None else [level in known[i] for i, level in pairs]
        predictions = predictions.float().cpu()
        scale = torch.tensor([[sizes[i][1], sizes[i][0]] for i, _ in pairs], dtype=torch.float32)
        return {
            "predictions": predictions,
            "coords_pixel": predictions * scale,
            "image_index": [p[0] for p in pairs],
            "level_indices": [p[1] for p in pairs],
            "guessed": guessed,
            "original_sizes": sizes,
            "inference_time_ms": elapsed_ms,
        }


def as_head_config(head_config: HeadConfig | dict[str, Any] | None) -> HeadConfig:
    if head_config is None:
        return HeadConfig(head_type="heatmap")
    return head_config if isinstance(head_config, HeadConfig) else HeadConfig.model_validate(head_config)
