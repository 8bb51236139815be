"""The contract every inference model follows: a name, ``load()`` once, ``predict(image)`` many times."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import SimpleITK as sitk


@dataclass
class InferenceResult:
    """What a model returns for one image: the prediction (a mask image, points, a crop...) and extras."""

    prediction: Any
    probabilities: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class InferenceModel(ABC):
    """Base of inference models. Subclasses set up their weights in :meth:`load` and answer :meth:`predict`.

    ``predict`` loads the model on first use, so callers may skip ``load()``.
    """

    def __init__(self, model_path: Path | None = None, device: str = "auto") -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.device_spec = device
        self._loaded = False

    @property
    @abstractmethod
    def name(self) -> str:
        """A human-readable model name."""

    @abstractmethod
    def load(self) -> None:
        """Load weights and set up the model (called once)."""

    @abstractmethod
    def predict(self, image: sitk.Image) -> InferenceResult:
        """Predict on one image."""

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def predict_batch(self, images: list[sitk.Image]) -> list[InferenceResult]:
        """Predict each image in turn."""
        return [self.predict(image) for image in images]
