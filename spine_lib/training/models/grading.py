"""Grading models of the disc classifier: the multi-task :class:`ResNet50MTL` (six heads, see
:mod:`spine_lib.training.grading`) and the single-task :class:`ConvNextClassifier`.

```python
model = ResNet50MTL(backbone="resnet50", pretrained=True)       # weights from the local HF cache
outputs = model(batch)                                           # MTLPredictions: logits per head
loss = model.get_loss(outputs, targets, label_smoothing=0.1)     # targets: MTLTargets
grades = outputs.decoded()                                       # {"pfirrmann": [4, 2], "herniation": [[1, 0], ...]}
row = model.to_csv_row(outputs, patient_id="P001", ivd_level=4)  # columns: ResNet50MTL.get_csv_header()
```
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from spine_lib.errors import ConfigError
from spine_lib.training.config import CONVNEXT_VARIANTS, HeadConfig
from spine_lib.training.grading import GRADING_HEADS, HEADS, LABELS, MTLTargets
from spine_lib.training.heads import LinearHead, MLPHead, create_head
from spine_lib.training.models.base import BaseModel
from spine_lib.training.pretrained import create_backbone
from spine_lib.training.registry import register_model

#: Per-head loss options: a value per head name.
PerHead = Mapping[str, Any]
#: A feature map of the backbone (:data:`LAYOUT_STAGE`: the stride-16 stage before the last) is also reduced to
#: :data:`LAYOUT_CHANNELS` channels by a 1x1 convolution and pooled to a grid of this size: a crop holds its disc at
#: the centre, the disc's upper and lower endplates just above and below it, and the neighbouring discs' endplates a
#: vertebra away, and a grade belongs to one of those places, which global average pooling alone throws away (a
#: Schmorl node of the disc above looks like one of this disc's). At 128 px the stride-16 map is 8x8, cells of 16
#: px, so the rows tell this disc's endplates from the neighbours'; the last map (4x4, 32 px) does not.
LAYOUT_GRID = 8
LAYOUT_CHANNELS = 16
#: Which of the backbone's feature stages (``backbone.feature_info``, Python indexing) the layout reads.
LAYOUT_STAGE = -2
#: The binary heads' outputs in order (``herniation``'s two, ``endplate``'s two, ...): one decision offset each.
BINARY_OUTPUTS: tuple[str, ...] = tuple(c for head in GRADING_HEADS if head.kind == "binary" for c in head.columns)


@dataclass
class MTLPredictions:
    """A batch of logits, one tensor per head: ``(B, classes)`` for multiclass heads, ``(B, k)`` for binary ones."""

    pfirrmann: torch.Tensor
    modic: torch.Tensor
    herniation: torch.Tensor
    endplate: torch.Tensor
    spondylolisthesis: torch.Tensor
    narrowing: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {head.name: getattr(self, head.name) for head in GRADING_HEADS}

    def to(self, device: Any) -> MTLPredictions:
        return MTLPredictions(**{k: v.to(device) for k, v in self.as_dict().items()})

    def detach(self) -> MTLPredictions:
        return MTLPredictions(**{k: v.detach() for k, v in self.as_dict().items()})

    def __len__(self) -> int:
        return int(self.pfirrmann.shape[0])

    def probabilities(self) -> dict[str, torch.Tensor]:
        """Softmax over the classes of multiclass heads, sigmoid of each binary output."""
        return {
            head.name: logits.float().softmax(dim=-1) if head.kind == "multiclass" else logits.float().sigmoid()
            for head, logits in zip(GRADING_HEADS, self.as_dict().values(), strict=True)
        }

    def decoded(self) -> dict[str, list[Any]]:
        """Per item: the grade of the most likely class (Pfirrmann 1..5, Modic 0..3); for binary heads a 0/1 per
        output, 1 when its probability exceeds 0.5."""
        out: dict[str, list[Any]] = {}
        for head, probabilities in zip(GRADING_HEADS, self.detach().probabilities().values(), strict=True):
            probabilities = probabilities.cpu()
            if head.kind == "multiclass":
                out[head.name] = [head.grade_of(int(i)) for i in probabilities.argmax(dim=-1).tolist()]
            else:
                out[head.name] = (probabilities > 0.5).long().reshape(len(probabilities), head.outputs).tolist()
        return out


def _per_head(name: str, values: PerHead | None, kind: str | None = None) -> dict[str, Any]:
    """Per-head options, checked: known head names only (and of ``kind`` when given)."""
    values = dict(values or {})
    for head_name in values:
        if head_name not in HEADS:
            raise ConfigError(name, f"unknown head {head_name!r}; heads: {', '.join(HEADS)}")
        if kind is not None and HEADS[head_name].kind != kind:
            raise ConfigError(name, f"head {head_name!r} is {HEADS[head_name].kind}, {name} apply to {kind} heads")
    return values


def _as_vector(value: Any, size: int, name: str, like: torch.Tensor) -> torch.Tensor:
    vector = torch.as_tensor(value, dtype=torch.float32, device=like.device).reshape(-1)
    if vector.numel() == 1 and size > 1:
        vector = vector.expand(size)
    if vector.numel() != size:
        raise ConfigError(name, f"expected {size} values, got {vector.numel()}")
    return vector


def _model_inputs(model: nn.Module, inputs: torch.Tensor | Sequence[Any], image_size: tuple[int, int]) -> torch.Tensor:
    """A batch on the model's device from a tensor ``(N, 3, H, W)`` / ``(3, H, W)`` or image files / arrays."""
    from spine_lib.training.preprocessing import prepare_batch

    device = next(model.parameters()).device
    if isinstance(inputs, torch.Tensor):
        return (inputs[None] if inputs.dim() == 3 else inputs).to(device)
    return prepare_batch(inputs, image_size, keep_channels=True)[0].to(device)


def _timed_forward(model: nn.Module, images: Sequence[Any], image_size: tuple[int, int],
                   device: str) -> tuple[Any, list[tuple[int, int]], float]:
    """The outputs of ``model`` on image files or arrays (3-channel crops kept, grey images replicated), each
    image's original size, and the forward time in ms."""
    from spine_lib.training.preprocessing import prepare_batch

    batch, sizes = prepare_batch(images, image_size, keep_channels=True)
    model.to(device).eval()
    start = time.perf_counter()
    outputs = model(batch.to(device))
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return outputs, sizes, (time.perf_counter() - start) * 1000


@register_model("resnet50_mtl", task="classification", aliases=["mtl"],
                description="timm backbone (ResNet50) + six grading heads: Pfirrmann, Modic and six binary labels")
class ResNet50MTL(BaseModel):
    """Multi-task disc grading: a timm backbone's features feed one head per task of
    :data:`~spine_lib.training.grading.GRADING_HEADS` (dropout + an MLP). ``backbone``: any timm model name.

    The heads see the globally pooled features and, with ``layout_grid`` > 0, the feature map of stage
    ``layout_stage`` (of ``backbone.feature_info``; -1: the last) reduced to :data:`LAYOUT_CHANNELS` channels and
    pooled to a ``layout_grid`` x ``layout_grid`` grid (where in the crop a finding lies: see :data:`LAYOUT_GRID`);
    ``layout_grid=0``: global pooling only.

    ``decision_offsets`` (a buffer, saved in the checkpoint; zero until :meth:`set_decision_thresholds`) holds a
    logit threshold per binary output (:data:`BINARY_OUTPUTS`): in eval mode the binary logits come out shifted
    by it, so a positive is ``logit >= 0`` (probability >= 0.5) everywhere downstream. Training sees raw logits."""

    registry_name = "resnet50_mtl"
    decision_offsets: torch.Tensor

    def __init__(self, backbone: str = "resnet50", pretrained: bool = False, weights_file: Path | str | None = None,
                 dropout: float = 0.3, hidden_dim: int = 512, layout_grid: int = LAYOUT_GRID,
                 layout_stage: int = LAYOUT_STAGE) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError("dropout", f"must be in [0, 1), got {dropout}")
        if hidden_dim < 1:
            raise ConfigError("hidden_dim", f"must be positive, got {hidden_dim}")
        if layout_grid < 0:
            raise ConfigError("layout_grid", f"must be 0 (off) or positive, got {layout_grid}")
        self.backbone_name = backbone
        self.remember_architecture(backbone=backbone, dropout=dropout, hidden_dim=hidden_dim, layout_grid=layout_grid,
                                   layout_stage=layout_stage)
        self.backbone = create_backbone(backbone, pretrained=pretrained, weights_file=weights_file, num_classes=0)
        features = int(self.backbone.num_features)  # type: ignore[arg-type]
        stages = list(getattr(self.backbone, "feature_info", []))
        if layout_grid and not -len(stages) <= layout_stage < len(stages):
            raise ConfigError("layout_stage", f"{backbone} has {len(stages)} feature stages, got {layout_stage}")
        #: the stage's index among the backbone's intermediates (timm's ``forward_intermediates``)
        self.layout_index = layout_stage % len(stages) if layout_grid else -1
        self.layout = nn.Sequential(
            nn.Conv2d(int(stages[self.layout_index]["num_chs"]), LAYOUT_CHANNELS, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(layout_grid), nn.Flatten(),
        ) if layout_grid else None
        features += LAYOUT_CHANNELS * layout_grid**2
        self.register_buffer("decision_offsets", torch.zeros(len(BINARY_OUTPUTS)))
        self.heads = nn.ModuleDict({
            head.name: nn.Sequential(
                nn.Dropout(dropout),
                MLPHead(features, head.outputs, hidden_dims=[hidden_dim], dropout=dropout, activation="relu",
                        use_layer_norm=False),
            )
            for head in GRADING_HEADS
        })

    @property
    def name(self) -> str:
        return f"ResNet50MTL({self.backbone_name})"

    def forward(self, x: torch.Tensor) -> MTLPredictions:
        if self.layout is None:
            features = self.backbone(x)
        else:
            maps, (stage,) = self.backbone.forward_intermediates(  # type: ignore[operator]
                x, indices=[self.layout_index])
            pooled = self.backbone.forward_head(maps, pre_logits=True)  # type: ignore[operator]
            features = torch.cat([pooled, self.layout(stage)], dim=1)
        logits = {name: head(features) for name, head in self.heads.items()}
        if not self.training:
            offsets = self.decision_offsets.split([HEADS[name].outputs for name in self.binary_heads])
            for name, offset in zip(self.binary_heads, offsets, strict=True):
                logits[name] = logits[name] - offset.to(logits[name].dtype)
        return MTLPredictions(**logits)

    @property
    def binary_heads(self) -> list[str]:
        return [head.name for head in GRADING_HEADS if head.kind == "binary"]

    def decision_thresholds(self) -> dict[str, float]:
        """The logit threshold of each binary output (0: probability 0.5)."""
        return dict(zip(BINARY_OUTPUTS, self.decision_offsets.tolist(), strict=True))

    def set_decision_thresholds(self, thresholds: Mapping[str, float]) -> None:
        """Set the logit threshold of binary outputs by column name (``spondylolisthesis``...); others keep theirs."""
        unknown = sorted(set(thresholds) - set(BINARY_OUTPUTS))
        if unknown:
            raise ConfigError("thresholds", f"unknown binary outputs {unknown}; outputs: {', '.join(BINARY_OUTPUTS)}")
        values = self.decision_offsets.clone()
        for i, column in enumerate(BINARY_OUTPUTS):
            if column in thresholds:
                values[i] = float(thresholds[column])
        self.decision_offsets.copy_(values)

    def head_losses(self, predictions: MTLPredictions, targets: MTLTargets, label_smoothing: float = 0.0,
                    class_weights: PerHead | None = None, pos_weights: PerHead | None = None) -> dict[str, torch.Tensor]:
        """The loss of each head: cross-entropy with label smoothing (and optional per-class weights) for
        multiclass heads, BCE-with-logits (optional ``pos_weight`` per output) for binary ones."""
        class_weights = _per_head("class_weights", class_weights, "multiclass")
        pos_weights = _per_head("pos_weights", pos_weights, "binary")
        wanted = targets.as_dict()
        losses: dict[str, torch.Tensor] = {}
        for head, logits in zip(GRADING_HEADS, predictions.as_dict().values(), strict=True):
            logits = logits.float()
            if head.kind == "multiclass":
                weight = class_weights.get(head.name)
                losses[head.name] = functional.cross_entropy(
                    logits, wanted[head.name].to(logits.device).long().reshape(-1),
                    weight=None if weight is None else _as_vector(weight, head.outputs, "class_weights", logits),
                    label_smoothing=label_smoothing,
                )
            else:
                pos_weight = pos_weights.get(head.name)
                losses[head.name] = functional.binary_cross_entropy_with_logits(
                    logits, wanted[head.name].to(logits.device, logits.dtype).reshape(logits.shape),
                    pos_weight=None if pos_weight is None else _as_vector(pos_weight, head.outputs, "pos_weights",
                                                                          logits),
                )
        return losses

    def get_loss(self, predictions: MTLPredictions, targets: MTLTargets,  # type: ignore[override]
                 head_weights: PerHead | None = None, label_smoothing: float = 0.0,
                 class_weights: PerHead | None = None, pos_weights: PerHead | None = None,
                 **kwargs: Any) -> torch.Tensor:
        """The weighted sum of :meth:`head_losses` (``head_weights``: per head name, 1 for a head not named)."""
        weights = _per_head("head_weights", head_weights)
        losses = self.head_losses(predictions, targets, label_smoothing, class_weights, pos_weights)
        return torch.stack([float(weights.get(name, 1.0)) * loss for name, loss in losses.items()]).sum()

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor | Sequence[Any], image_size: tuple[int, int] = (224, 224)) -> dict[str, list[Any]]:
        """Decoded grades per item (see :meth:`MTLPredictions.decoded`) of a batch or of image files / arrays."""
        was_training = self.training
        self.eval()
        try:
            return self(_model_inputs(self, inputs, image_size)).decoded()
        finally:
            self.train(was_training)

    @staticmethod
    def get_csv_header() -> list[str]:
        """``patient_id, ivd_level``, the eight labels, then a probability per class / binary output."""
        probabilities = [
            f"{head.name}_p{head.grade_of(i)}" for head in GRADING_HEADS if head.kind == "multiclass"
            for i in range(head.outputs)
        ] + [f"{column}_p" for head in GRADING_HEADS if head.kind == "binary" for column in head.columns]
        return ["patient_id", "ivd_level", *LABELS, *probabilities]

    def to_csv_row(self, predictions: MTLPredictions, patient_id: str, ivd_level: int | str,
                   index: int = 0) -> list[Any]:
        """One disc's row (item ``index`` of ``predictions``), in the order of :meth:`get_csv_header`."""
        if not -len(predictions) <= index < len(predictions):
            raise ConfigError("index", f"item {index} of a batch of {len(predictions)}")
        decoded = predictions.decoded()
        probabilities = {k: v[index].tolist() for k, v in predictions.probabilities().items()}
        labels: list[int] = []
        for head in GRADING_HEADS:
            value = decoded[head.name][index]
            labels += [value] if head.kind == "multiclass" else value
        probs = [p for head in GRADING_HEADS if head.kind == "multiclass" for p in probabilities[head.name]]
        probs += [p for head in GRADING_HEADS if head.kind == "binary" for p in probabilities[head.name]]
        return [patient_id, ivd_level, *labels, *probs]

    @torch.no_grad()
    def test_inference(self, images: Sequence[Any], image_size: tuple[int, int] = (224, 224),
                       device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
        """Grade disc crops (files or arrays): ``predictions`` (decoded grades per head and item),
        ``probabilities`` (per head and item), ``original_sizes`` and ``inference_time_ms`` (forward only)."""
        outputs, sizes, elapsed_ms = _timed_forward(self, images, image_size, device)
        outputs = outputs.to("cpu")
        return {
            "predictions": outputs.decoded(),
            "probabilities": {k: v.tolist() for k, v in outputs.probabilities().items()},
            "original_sizes": sizes,
            "inference_time_ms": elapsed_ms,
        }


@register_model("convnext_classifier", task="classification",
                description="ConvNeXt backbone + a classification head (one task, num_classes classes)")
class ConvNextClassifier(BaseModel):
    """Single-task classification on a ConvNeXt backbone (variants of
    :data:`~spine_lib.training.config.CONVNEXT_VARIANTS`): dropout + a linear layer, or the ``head_config`` head."""

    registry_name = "convnext_classifier"

    def __init__(self, variant: str = "atto", num_classes: int = 4, pretrained: bool = False,
                 weights_file: Path | str | None = None, dropout: float = 0.3,
                 head_config: HeadConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        if variant not in CONVNEXT_VARIANTS:
            raise ConfigError(variant, f"unknown ConvNeXt variant; use one of {', '.join(CONVNEXT_VARIANTS)}")
        if num_classes < 2:
            raise ConfigError("num_classes", f"a classifier needs at least 2 classes, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError("dropout", f"must be in [0, 1), got {dropout}")
        head = None if head_config is None else (
            head_config if isinstance(head_config, HeadConfig) else HeadConfig.model_validate(head_config))
        if head is not None and head.output_activation != "none":
            raise ConfigError("head_config", "the classifier's head outputs logits: use output_activation='none'")
        self.variant = variant
        self.num_classes = num_classes
        self.timm_name = CONVNEXT_VARIANTS[variant]
        self.remember_architecture(variant=variant, num_classes=num_classes, dropout=dropout,
                                   head_config=None if head is None else head.model_dump())
        self.backbone = create_backbone(self.timm_name, pretrained=pretrained, weights_file=weights_file,
                                        num_classes=0)
        features = int(self.backbone.num_features)  # type: ignore[arg-type]
        self.head: nn.Module = (LinearHead(features, num_classes, dropout=dropout) if head is None
                                else create_head(head, features, num_classes))

    @property
    def name(self) -> str:
        return f"ConvNextClassifier({self.variant})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.head(self.backbone(x))

    def get_loss(self, predictions: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
                 class_weights: Any = None, **kwargs: Any) -> torch.Tensor:
        """Cross-entropy with label smoothing (optional per-class weights)."""
        logits = predictions.float()
        weight = None if class_weights is None else _as_vector(class_weights, self.num_classes, "class_weights",
                                                               logits)
        return functional.cross_entropy(logits, targets.to(logits.device).long().reshape(-1), weight=weight,
                                        label_smoothing=label_smoothing)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor | Sequence[Any], image_size: tuple[int, int] = (224, 224)) -> list[int]:
        """The most likely class of each item of a batch or of image files / arrays."""
        was_training = self.training
        self.eval()
        try:
            return [int(i) for i in self(_model_inputs(self, inputs, image_size)).argmax(dim=-1).tolist()]
        finally:
            self.train(was_training)

    @torch.no_grad()
    def test_inference(self, images: Sequence[Any], image_size: tuple[int, int] = (224, 224),
                       device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
        """Classify images (files or arrays): ``predictions`` (class per item), ``probabilities`` (per item and
        class), ``original_sizes`` and ``inference_time_ms`` (forward only)."""
        logits, sizes, elapsed_ms = _timed_forward(self, images, image_size, device)
        probabilities = logits.float().softmax(dim=-1).cpu()
        return {
            "predictions": [int(i) for i in probabilities.argmax(dim=-1).tolist()],
            "probabilities": probabilities.tolist(),
            "original_sizes": sizes,
            "inference_time_ms": elapsed_ms,
        }
