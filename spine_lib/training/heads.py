"""Configurable prediction heads on pooled backbone features: mlp, linear, attention, residual, conv.

```python
head = create_head(HeadConfig(head_type="mlp", hidden_dims=[512, 256]), in_features=768, out_features=2)
head = HeadFactory.create("attention", in_features=768, out_features=4, num_heads=8)

@HeadFactory.register("my_head")
class MyHead(BaseHead): ...
```
Every head maps ``(B, in_features)`` to ``(B, out_features)``; the conv head also takes ``(B, C, H, W)`` maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from spine_lib.errors import ConfigError
from spine_lib.training.config import HeadConfig

__all__ = [
    "AttentionHead", "BaseHead", "ConvHead", "HeadConfig", "HeadFactory", "LinearHead", "MLPHead", "MultiTaskHead",
    "ResidualHead", "create_head",
]

H = TypeVar("H", bound="BaseHead")

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def make_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ConfigError(name, f"unknown activation; use one of {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def output_activation(name: str) -> nn.Module:
    """The head's final activation: ``sigmoid`` for coordinates in [0, 1], ``none`` for logits."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softmax":
        return nn.Softmax(dim=-1)
    if name == "tanh":
        return nn.Tanh()
    return nn.Identity()


class BaseHead(nn.Module):
    """A head: ``in_features`` -> ``out_features`` with an optional output activation."""

    def __init__(self, in_features: int, out_features: int, output_activation_name: str = "none") -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.final = output_activation(output_activation_name)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.body(x))


class HeadFactory:
    """Head types by name; ``register`` adds one."""

    _heads: ClassVar[dict[str, type[BaseHead]]] = {}

    @classmethod
    def register(cls, name: str) -> Callable[[type[H]], type[H]]:
        def decorate(head: type[H]) -> type[H]:
            cls._heads[name] = head
            return head

        return decorate

    @classmethod
    def available(cls) -> list[str]:
        return sorted(cls._heads)

    @classmethod
    def create(cls, head_type: str, in_features: int, out_features: int, **kwargs: Any) -> BaseHead:
        if head_type not in cls._heads:
            raise ConfigError(head_type, f"unknown head type; available: {', '.join(cls.available())}")
        return cls._heads[head_type](in_features, out_features, **kwargs)


def _mlp_layers(in_features: int, hidden_dims: Sequence[int], dropout: float, activation: str,
                use_layer_norm: bool) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    width = in_features
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden))
        if use_layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    return nn.Sequential(*layers), width


@HeadFactory.register("linear")
class LinearHead(BaseHead):
    """Dropout + one linear layer."""

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.0,
                 output_activation_name: str = "none", **_: Any) -> None:
        super().__init__(in_features, out_features, output_activation_name)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, out_features)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x))


@HeadFactory.register("mlp")
class MLPHead(BaseHead):
    """Linear (+LayerNorm) + activation + dropout blocks, then a linear output layer."""

    def __init__(self, in_features: int, out_features: int, hidden_dims: Sequence[int] = (256,), dropout: float = 0.1,
                 activation: str = "gelu", use_layer_norm: bool = True, output_activation_name: str = "none",
                 **_: Any) -> None:
        super().__init__(in_features, out_features, output_activation_name)
        self.layers, width = _mlp_layers(in_features, hidden_dims, dropout, activation, use_layer_norm)
        self.out = nn.Linear(width, out_features)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(x))


@HeadFactory.register("residual")
class ResidualHead(BaseHead):
    """A projection, then pre-norm residual MLP blocks, then a linear output layer."""

    def __init__(self, in_features: int, out_features: int, hidden_dims: Sequence[int] = (256,), dropout: float = 0.1,
                 activation: str = "gelu", num_blocks: int = 2, output_activation_name: str = "none",
                 **_: Any) -> None:
        super().__init__(in_features, out_features, output_activation_name)
        width = hidden_dims[0] if hidden_dims else in_features
        self.proj = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width * 2), make_activation(activation),
                          nn.Dropout(dropout), nn.Linear(width * 2, width))
            for _ in range(num_blocks)
        )
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_features)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(self.norm(h))


@HeadFactory.register("attention")
class AttentionHead(BaseHead):
    """The feature vector split into tokens, self-attention over them, pooled, then an MLP output."""

    def __init__(self, in_features: int, out_features: int, hidden_dims: Sequence[int] = (256,), dropout: float = 0.1,
                 activation: str = "gelu", num_heads: int = 4, num_tokens: int = 8,
                 output_activation_name: str = "none", **_: Any) -> None:
        super().__init__(in_features, out_features, output_activation_name)
        width = hidden_dims[0] if hidden_dims else 256
        width = max(num_heads, width - width % num_heads)
        self.num_tokens = num_tokens
        self.width = width
        self.to_tokens = nn.Linear(in_features, num_tokens * width)
        self.attention = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Sequential(make_activation(activation), nn.Dropout(dropout), nn.Linear(width, out_features))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.to_tokens(x).view(x.shape[0], self.num_tokens, self.width)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.out(self.norm(tokens + attended).mean(dim=1))


@HeadFactory.register("conv")
class ConvHead(BaseHead):
    """3x3 conv blocks on a feature map (a vector counts as a 1x1 map), global pooling, a linear output."""

    def __init__(self, in_features: int, out_features: int, hidden_dims: Sequence[int] = (256,), dropout: float = 0.1,
                 activation: str = "gelu", output_activation_name: str = "none", **_: Any) -> None:
        super().__init__(in_features, out_features, output_activation_name)
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers += [nn.Conv2d(width, hidden, 3, padding=1), nn.BatchNorm2d(hidden), make_activation(activation)]
            width = hidden
        self.convs = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, out_features)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x[:, :, None, None]
        return self.out(self.dropout(self.convs(x).mean(dim=(2, 3))))


class MultiTaskHead(nn.Module):
    """Several heads on the same features; returns ``{task: output}``."""

    def __init__(self, in_features: int, tasks: dict[str, int], config: HeadConfig | None = None) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({name: create_head(config or HeadConfig(), in_features, n) for name, n in tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(x) for name, head in self.heads.items()}


def create_head(config: HeadConfig, in_features: int, out_features: int) -> BaseHead:
    """Build the head ``config`` describes (``heatmap`` is spatial: localization models build it themselves)."""
    if config.head_type == "heatmap":
        raise ConfigError("heatmap", "a heatmap head needs feature maps; use a localization model's head_type")
    return HeadFactory.create(
        config.head_type, in_features, out_features,
        hidden_dims=config.hidden_dims, dropout=config.dropout, activation=config.activation,
        use_layer_norm=config.use_layer_norm, output_activation_name=config.output_activation,
        num_heads=config.num_heads, num_blocks=config.num_blocks,
    )
