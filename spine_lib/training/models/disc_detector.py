"""A level-free disc localizer: every disc a peak of one heatmap, the levels counted up from the sacrum.

The level-conditioned localizer (:mod:`spine_lib.training.models.convnext`) has to tell which disc is L1/L2 from
what the whole image looks like, and on images unlike its training set it finds discs but names them wrongly.
This model asks the network two questions that need no counting:

- ``discs``: where is a disc (a peak at every labelled point; nothing learnt above the top labelled level or
  below the bottom one unless that is L5/S1, so the thoracic discs, unlabelled in RSNA's tables, teach nothing
  false);
- ``anchor``: where is the lumbosacral disc (L5/S1: the one disc above the sacrum, a landmark of its own);
- ``offset`` (with ``offset_head``): where in its cell (4 input pixels) the disc's point lies (CenterNet's
  sub-cell regression, taught in the 3x3 cells around each point); without it a peak is placed at the
  score-weighted centre of its 3x3 cells.

The points then come from the geometry of the chain (:func:`count_up_from_sacrum`): the anchor snapped to the
nearest disc peak, then disc after disc upwards, each step in about the direction and at about the spacing of
the step before (a spine bends and its discs' spacing changes slowly). No contrast, scale or framing changes that
rule; a step with no peak where the chain should go is extrapolated, and :attr:`last_guessed` names those levels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from spine_lib.errors import ConfigError
from spine_lib.training.config import CONVNEXT_VARIANTS
from spine_lib.training.models.localization import LocalizationModel, heatmap_loss
from spine_lib.training.pretrained import create_backbone
from spine_lib.training.registry import register_model

#: Backbone stages feeding the decoder (strides 4, 8, 16, 32): the heatmaps are at stride 4.
DETECTOR_STAGES = (0, 1, 2, 3)
#: Spread of a disc's peak in the ``discs`` heatmap, in cells (4 input pixels each).
DISC_SIGMA = 1.0
#: Spread of the anchor's target, in cells.
ANCHOR_SIGMA = 1.5
#: Cells around a point's own cell (a square of ``2 * OFFSET_RADIUS + 1``) whose offset to the point is taught.
OFFSET_RADIUS = 1
#: Weight of the offsets' L1 loss (in cells) against the discs' focal loss.
OFFSET_WEIGHT = 1.0
#: Lowest sigmoid score of a cell that counts as a disc peak.
PEAK_THRESHOLD = 0.2
#: Farthest a step up the chain may turn from the step before, in degrees (the first step: from "up" in the image).
MAX_TURN_DEG = 40.0
FIRST_TURN_DEG = 60.0
#: A step's length against the one before: shorter or longer steps are not the next disc.
STEP_RATIO = (0.55, 1.6)
#: The first step (the anchor to L4/L5), as a share of the image height (the shortest: ~13 px at 224, two lumbar
#: discs at the smallest scale the augmentation draws).
FIRST_STEP = (0.045, 0.25)
#: Peaks closer than this window (cells, square) are one disc: a long disc can show two maxima.
PEAK_WINDOW = 5
#: Focal-loss exponents of CenterNet (positives, then the down-weighting of negatives near a peak).
FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0
#: Weight of the anchor's loss against the discs' loss.
ANCHOR_WEIGHT = 1.0
#: Past the end of the labelled chain (the top level's side, or the bottom one's unless it is L5/S1), the
#: heatmap is not taught from this share of the neighbouring step on.
IGNORE_BEYOND = 0.5


class DetectionDecoder(nn.Module):
    """Feature maps of strides 4-32 fused at stride 4, then two heatmaps (discs and the L5/S1 anchor) and, with
    ``offsets``, two maps of each cell's offset to its disc's point (x, then y, in cells)."""

    def __init__(self, in_channels: list[int], channels: int = 64, offsets: bool = False) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.GELU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.GELU())
        self.discs = nn.Conv2d(channels, 1, 1)
        self.anchor = nn.Conv2d(channels, 1, 1)
        self.offset = nn.Conv2d(channels, 2, 1) if offsets else None
        assert self.discs.bias is not None
        nn.init.constant_(self.discs.bias, -math.log((1 - 0.01) / 0.01))  # start near "no disc" (CenterNet)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        fused = sum(
            functional.interpolate(lateral(f), size=size, mode="bilinear", align_corners=False)
            if f.shape[-2:] != size else lateral(f)
            for lateral, f in zip(self.laterals, features, strict=True)
        )
        x = self.fuse(fused)  # type: ignore[arg-type]
        maps = [self.discs(x), self.anchor(x)]
        if self.offset is not None:
            maps.append(self.offset(x))
        return torch.cat(maps, dim=1)


def disc_targets(targets: torch.Tensor, levels: torch.Tensor, height: int, width: int, num_levels: int,
                 sigma: float = DISC_SIGMA) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``discs`` heatmap's target (a Gaussian at each point, 1 in the cell holding it: ``(N, h, w)``) and where
    it is taught (``(N, h, w)`` bool): not past the top labelled level, nor past the bottom one unless that is the
    last level (L5/S1), by more than :data:`IGNORE_BEYOND` of the neighbouring step.

    ``targets`` ``(N, K, 2)`` relative ``(x, y)`` (NaN: not labelled); ``levels`` ``(N, K)`` level indices."""
    device = targets.device
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    heat = torch.zeros(targets.shape[0], height, width, device=device)
    taught = torch.ones(targets.shape[0], height, width, dtype=torch.bool, device=device)
    for n in range(targets.shape[0]):
        present = torch.isfinite(targets[n]).all(dim=-1)
        if not bool(present.any()):
            taught[n] = False
            continue
        order = torch.argsort(levels[n][present])
        points = targets[n][present][order] * torch.tensor([width, height], device=device, dtype=torch.float32)
        chain_levels = levels[n][present][order]
        for x, y in points:
            heat[n] = torch.maximum(heat[n], torch.exp(-((grid_x - x) ** 2 + (grid_y - y) ** 2) / (2 * sigma**2)))
        for x, y in points:  # the cell holding the point is the peak (1); its neighbours keep the sub-cell offset
            heat[n, min(height - 1, max(0, int(y))), min(width - 1, max(0, int(x)))] = 1.0
        if len(points) < 2:  # one point: no direction along the spine, taught near it only
            distance = torch.sqrt((grid_x - points[0, 0]) ** 2 + (grid_y - points[0, 1]) ** 2)
            taught[n] = distance <= 3 * sigma
            continue
        ends = [(points[0], points[1])]  # the top end, and the bottom one unless it is the last level
        if int(chain_levels[-1]) != num_levels - 1:
            ends.append((points[-1], points[-2]))
        for end, inner in ends:
            step = end - inner
            length = torch.linalg.vector_norm(step)
            if float(length) == 0:
                continue
            along = ((grid_x - end[0]) * step[0] + (grid_y - end[1]) * step[1]) / length
            taught[n] &= along <= IGNORE_BEYOND * length
    return heat, taught


def offset_targets(targets: torch.Tensor, height: int, width: int,
                   radius: int = OFFSET_RADIUS) -> tuple[torch.Tensor, torch.Tensor]:
    """Each cell's offset from its centre to the nearest labelled point (``(N, 2, h, w)``, x then y, in cells) and
    where it is taught (``(N, h, w)`` bool): the cells within ``radius`` of the cell holding a point.

    ``targets`` ``(N, K, 2)`` relative ``(x, y)`` (NaN: not labelled)."""
    device = targets.device
    offsets = torch.zeros(targets.shape[0], 2, height, width, device=device)
    taught = torch.zeros(targets.shape[0], height, width, dtype=torch.bool, device=device)
    nearest = torch.full((targets.shape[0], height, width), math.inf, device=device)
    scale = torch.tensor([width, height], device=device, dtype=torch.float32)
    for n in range(targets.shape[0]):
        present = torch.isfinite(targets[n]).all(dim=-1)
        for x, y in (targets[n][present].float() * scale).tolist():
            column, row = min(width - 1, max(0, int(x))), min(height - 1, max(0, int(y)))
            for i in range(max(0, row - radius), min(height, row + radius + 1)):
                for j in range(max(0, column - radius), min(width, column + radius + 1)):
                    dx, dy = x - (j + 0.5), y - (i + 0.5)
                    distance = math.hypot(dx, dy)
                    if distance < float(nearest[n, i, j]):
                        nearest[n, i, j] = distance
                        offsets[n, 0, i, j], offsets[n, 1, i, j] = dx, dy
                        taught[n, i, j] = True
    return offsets, taught


def offset_loss(predicted: torch.Tensor, target: torch.Tensor, taught: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance (in cells) of predicted to target offsets over the taught cells (0 where none is)."""
    if not bool(taught.any()):
        return predicted.sum() * 0.0
    error = (predicted.float() - target).abs().sum(dim=1)
    return error[taught].mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, taught: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss over the taught cells, per image normalised by its number of peaks."""
    probability = logits.float().sigmoid().clamp(1e-4, 1 - 1e-4)
    peak = target >= 1.0 - 1e-3
    positive = -torch.log(probability) * (1 - probability) ** FOCAL_ALPHA * peak
    negative = (-torch.log(1 - probability) * probability**FOCAL_ALPHA * (1 - target) ** FOCAL_BETA * ~peak)
    per_image = ((positive + negative) * taught).flatten(1).sum(dim=1)
    peaks = (peak & taught).flatten(1).sum(dim=1).clamp(min=1)
    return (per_image / peaks).mean()


def peak_points(scores: torch.Tensor, threshold: float = PEAK_THRESHOLD, window: int = PEAK_WINDOW,
                offsets: torch.Tensor | None = None) -> list[tuple[float, float, float]]:
    """Local maxima (in a ``window`` square) of a ``(h, w)`` sigmoid map above ``threshold``: ``(x, y, score)`` in
    cell units (cell centres at ``j + 0.5``). Each is placed by the peak cell's predicted offset (``offsets``,
    ``(2, h, w)``, clamped to the taught range), else at the score-weighted centre of its 3x3 neighbourhood."""
    pooled = functional.max_pool2d(scores[None, None], window, stride=1, padding=window // 2)[0, 0]
    found = torch.nonzero((scores == pooled) & (scores > threshold))
    padded = functional.pad(scores[None, None], (1, 1, 1, 1))[0, 0]
    steps = torch.tensor([-1.0, 0.0, 1.0])
    limit = OFFSET_RADIUS + 0.5
    out: list[tuple[float, float, float]] = []
    for row, column in found.tolist():
        if offsets is not None:
            dx = max(-limit, min(limit, float(offsets[0, row, column])))
            dy = max(-limit, min(limit, float(offsets[1, row, column])))
            out.append((column + 0.5 + dx, row + 0.5 + dy, float(scores[row, column])))
            continue
        around = padded[row:row + 3, column:column + 3]
        total = float(around.sum())
        dy = float((around.sum(dim=1) * steps).sum()) / total
        dx = float((around.sum(dim=0) * steps).sum()) / total
        out.append((column + 0.5 + dx, row + 0.5 + dy, float(scores[row, column])))
    return out


def soft_peak(logits: torch.Tensor, radius: int = 2) -> tuple[float, float]:
    """The arg-max cell of a ``(h, w)`` map, refined by the softmax-weighted centre of its ``radius`` window,
    ``(x, y)`` in cell units."""
    height, width = logits.shape
    index = int(torch.argmax(logits))
    row, column = divmod(index, width)
    top, bottom = max(0, row - radius), min(height, row + radius + 1)
    left, right = max(0, column - radius), min(width, column + radius + 1)
    window = logits[top:bottom, left:right].float()
    weights = (window - window.max()).exp()
    weights = weights / weights.sum()
    ys = torch.arange(top, bottom, dtype=torch.float32) + 0.5
    xs = torch.arange(left, right, dtype=torch.float32) + 0.5
    return float((weights.sum(dim=0) * xs).sum()), float((weights.sum(dim=1) * ys).sum())


def count_up_from_sacrum(anchor: tuple[float, float], peaks: list[tuple[float, float, float]], count: int,
                         height: int) -> tuple[list[tuple[float, float]], list[int]]:
    """The chain of ``count`` disc points from the L5/S1 ``anchor`` upwards (bottom first), in cell units, and the
    positions in the chain that were extrapolated (no peak where the chain goes on; 0: the anchor had no peak).

    The anchor snaps to a peak within 1.5 cells. Each next disc is the peak nearest to where the chain's last step
    points, among those within :data:`MAX_TURN_DEG` of it and :data:`STEP_RATIO` of its length (the first step:
    within :data:`FIRST_TURN_DEG` of straight up and :data:`FIRST_STEP` of the image height, the nearest)."""
    x0, y0 = anchor
    near = [(x, y) for x, y, _ in peaks if math.hypot(x - x0, y - y0) <= 1.5]
    chain = [min(near, key=lambda p: math.hypot(p[0] - x0, p[1] - y0)) if near else (x0, y0)]
    used = {chain[0]}
    guessed = [] if near else [0]
    step: tuple[float, float] | None = None
    for _ in range(count - 1):
        cx, cy = chain[-1]
        best: tuple[float, float] | None = None
        best_cost = math.inf
        for x, y, _score in peaks:
            if (x, y) in used:
                continue
            dx, dy = x - cx, y - cy
            length = math.hypot(dx, dy)
            if length == 0:
                continue
            if step is None:
                turn = math.degrees(math.acos(max(-1.0, min(1.0, -dy / length))))  # from straight up
                if turn > FIRST_TURN_DEG or not FIRST_STEP[0] * height <= length <= FIRST_STEP[1] * height:
                    continue
                cost = length
            else:
                previous = math.hypot(*step)
                cosine = (dx * step[0] + dy * step[1]) / (length * previous)
                turn = math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
                if turn > MAX_TURN_DEG or not STEP_RATIO[0] * previous <= length <= STEP_RATIO[1] * previous:
                    continue
                cost = math.hypot(x - (cx + step[0]), y - (cy + step[1]))
            if cost < best_cost:
                best, best_cost = (x, y), cost
        if best is None:
            guessed.append(len(chain))
            if step is None:  # nothing above the anchor at all: a typical lumbar step straight up
                step = (0.0, -0.09 * height)
            best = (cx + step[0], cy + step[1])
        else:
            step = (best[0] - cx, best[1] - cy)
            used.add(best)
        chain.append(best)
    return chain, guessed


@register_model("convnext_disc_detector", task="localization", aliases=["disc_detector"],
                description="ConvNeXt disc heatmap + L5/S1 anchor -> the levels counted up from the sacrum")
class ConvNextDiscDetector(LocalizationModel):
    """Level-free localization on a ConvNeXt backbone (variants as :class:`ConvNextLocalization`).

    ``forward(x, level_idx)`` answers like the level-conditioned models (``(B, 2)`` or ``(B, K, 2)`` relative
    points), so the trainer, metrics and inference use it alike; the level embedding and the coordinate loss are
    not used (``get_loss`` is the heatmaps' own loss)."""

    registry_name = "convnext_disc_detector"
    level_free = True

    def __init__(self, variant: str = "atto", pretrained: bool = False, weights_file: Path | str | None = None,
                 num_levels: int = 5, decoder_channels: int = 64, offset_head: bool = False, **unused: Any) -> None:
        super().__init__()
        if variant not in CONVNEXT_VARIANTS:
            raise ConfigError(variant, f"unknown ConvNeXt variant; use one of {', '.join(CONVNEXT_VARIANTS)}")
        self.variant = variant
        self.remember_architecture(variant=variant, num_levels=num_levels, decoder_channels=decoder_channels,
                                   offset_head=offset_head)
        self.backbone = create_backbone(CONVNEXT_VARIANTS[variant], pretrained=pretrained, weights_file=weights_file,
                                        features_only=True, out_indices=DETECTOR_STAGES)
        channels: list[int] = self.backbone.feature_info.channels()  # type: ignore[union-attr, operator]
        self.decoder = DetectionDecoder(channels, decoder_channels, offsets=offset_head)
        self.num_levels = num_levels
        self.use_level_embedding = False
        self.level_embedding = None
        self.head_type = "heatmap"
        self.loss_type = "focal"
        self.last_logits: torch.Tensor | None = None
        self.last_levels: torch.Tensor | None = None
        self.last_guessed: list[list[int]] = []

    @property
    def name(self) -> str:
        return f"ConvNextDiscDetector({self.variant})"

    def guessed_levels(self) -> list[list[int]]:
        return self.last_guessed

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2, h, w)`` logits, discs then the L5/S1 anchor, and with the offset head its two maps
        (``(B, 4, h, w)``)."""
        return self.decoder(list(self.backbone(x)))

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, num_levels, 2)`` relative points of every level from the heatmaps (level 0 = the top one)."""
        batch, _, height, width = logits.shape
        out = torch.empty(batch, self.num_levels, 2)
        scores = logits[:, 0].detach().float().sigmoid().cpu()
        anchors = logits[:, 1].detach().float().cpu()
        offsets = logits[:, 2:4].detach().float().cpu() if logits.shape[1] >= 4 else None
        self.last_guessed = []
        for n in range(batch):
            peaks = peak_points(scores[n], offsets=None if offsets is None else offsets[n])
            chain, guessed = count_up_from_sacrum(soft_peak(anchors[n]), peaks, self.num_levels, height)
            self.last_guessed.append(sorted(self.num_levels - 1 - i for i in guessed))
            for i, (x, y) in enumerate(chain):  # bottom (last level) first
                out[n, self.num_levels - 1 - i] = torch.tensor([x / width, y / height])
        return out.to(logits.device)

    def forward(self, x: torch.Tensor, level_idx: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.heatmaps(x)
        self.last_logits = logits
        points = self.decode(logits)
        if level_idx is None:
            self.last_levels = None
            return points
        levels = level_idx.to(points.device).long()
        if levels.numel() and (int(levels.min()) < 0 or int(levels.max()) >= self.num_levels):
            raise ConfigError("level_idx", f"level index out of range 0..{self.num_levels - 1}")
        self.last_levels = levels
        if levels.dim() == 2:
            return torch.gather(points, 1, levels[..., None].expand(-1, -1, 2))
        return points[torch.arange(points.shape[0], device=points.device), levels]

    def get_loss(self, predictions: torch.Tensor, targets: torch.Tensor, heatmap_weight: float = 0.0,
                 **kwargs: Any) -> torch.Tensor:
        """Focal loss of the discs' heatmap over its taught cells, the offsets' L1 loss around each point and the
        anchor's heatmap loss (on images whose L5/S1 is labelled) of the forward pass that made ``predictions``;
        ``targets`` as that pass's levels."""
        logits, levels = self.last_logits, self.last_levels
        if logits is None or levels is None:
            raise ConfigError("get_loss", "call the model with level_idx before get_loss")
        if targets.dim() == 2:  # one point per image
            targets, levels = targets[:, None], levels[:, None]
        _, _, height, width = logits.shape
        heat, taught = disc_targets(targets.float(), levels, height, width, self.num_levels)
        loss = focal_loss(logits[:, 0], heat, taught)
        if logits.shape[1] >= 4:
            offsets, near = offset_targets(targets.float(), height, width)
            loss = loss + OFFSET_WEIGHT * offset_loss(logits[:, 2:4], offsets, near)
        last = levels == self.num_levels - 1
        has_anchor = (last & torch.isfinite(targets).all(dim=-1)).any(dim=1)
        if bool(has_anchor.any()):
            column = last.float().argmax(dim=1)
            anchor = targets[torch.arange(targets.shape[0], device=targets.device), column]
            loss = loss + ANCHOR_WEIGHT * heatmap_loss(logits[has_anchor][:, 1:2], anchor[has_anchor], ANCHOR_SIGMA)
        return loss
