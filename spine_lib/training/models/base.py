"""The base of every trainable model: loss, backbone freezing, architecture kept for checkpoints, test inference."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn


class BaseModel(nn.Module, ABC):
    """A trainable model: ``forward``, ``get_loss``, backbone freezing and ``test_inference``.

    Subclasses set ``self.backbone`` and store their constructor arguments with :meth:`remember_architecture`,
    so a checkpoint can rebuild the same architecture.
    """

    registry_name: ClassVar[str] = ""
    backbone: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self._architecture: dict[str, Any] = {}

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def get_loss(self, predictions: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> torch.Tensor: ...

    def remember_architecture(self, **kwargs: Any) -> None:
        """Record the constructor arguments that define the architecture (saved in every checkpoint)."""
        self._architecture = {k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()}

    def architecture_kwargs(self) -> dict[str, Any]:
        return dict(self._architecture)

    def freeze_backbone(self) -> None:
        for parameter in self.backbone.parameters():
            parameter.requires_grad = False

    def unfreeze_backbone(self) -> None:
        for parameter in self.backbone.parameters():
            parameter.requires_grad = True

    @property
    def backbone_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def count_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @torch.no_grad()
    def test_inference(self, images: Sequence[Any], image_size: tuple[int, int] = (224, 224),
                       device: str = "cpu", **kwargs: Any) -> dict[str, Any]:
        """Run the model on image files (PNG/JPEG/DICOM/NIfTI) or arrays; return predictions and timing."""
        from spine_lib.training.preprocessing import prepare_batch

        batch, sizes = prepare_batch(images, image_size)
        self.to(device).eval()
        start = time.perf_counter()
        outputs = self(batch.to(device))
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        elapsed_ms = (time.perf_counter() - start) * 1000
        return {"predictions": outputs.detach().cpu(), "original_sizes": sizes, "inference_time_ms": elapsed_ms}
