"""Deep-learning OCR: PaddleOCR (PP-OCRv5) text detection + VietOCR ``vgg_transformer`` line recognition.

Needs the optional extra (``uv sync --extra ocr-dl``) and two local model files, since neither library can
fetch its models offline:

- ``det_model_dir``: a PaddleOCR 3.x detection model folder (e.g. PP-OCRv5_server_det:
  ``inference.json`` or ``inference.pdmodel``, ``inference.pdiparams``, ``inference.yml``);
- ``rec_weights``: VietOCR ``vgg_transformer`` weights (``.pth``).

The VietOCR configuration is the YAML file kept next to this module (:data:`DEFAULT_CONFIG`). Everything
heavy (paddle, paddleocr, torch, vietocr) is imported in the constructor; importing this module costs only
NumPy and OpenCV.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from PIL import Image

from spine_lib.errors import ConfigError
from spine_lib.ocr.base import OCRUnavailableError, TextLine, reading_order

__all__ = ["DEFAULT_CONFIG", "PaddleVietOCREngine", "crop_polygon", "order_quadrilateral"]

#: The VietOCR vgg_transformer configuration shipped with the library.
DEFAULT_CONFIG = Path(__file__).with_name("configs") / "vgg_transformer.yml"
#: Files of a PaddleOCR 3.x inference model folder (the graph: inference.json, or inference.pdmodel if older).
DET_MODEL_FILES: tuple[str, ...] = ("inference.pdiparams", "inference.yml")
DET_GRAPH_FILES: tuple[str, ...] = ("inference.json", "inference.pdmodel")
DEFAULT_DET_MODEL_NAME = "PP-OCRv5_server_det"
INSTALL_HINT = "install the optional extra with `uv sync --extra ocr-dl`"


# ------------------------------------------------------------------------------------------------ geometry
def order_quadrilateral(polygon: np.ndarray) -> np.ndarray:
    """The corners of ``polygon`` (4x2 x/y, any order) as float32 tl, tr, br, bl (clockwise on screen).

    Corners are sorted clockwise (on screen, y down) around their centroid, starting at the corner with the
    smallest x + y.
    """
    points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if points.shape != (4, 2):
        raise ValueError(f"expected a quadrilateral of 4 (x, y) points, got shape {np.shape(polygon)}")
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    clockwise = points[np.argsort(angles, kind="stable")]
    start = int(np.argmin(clockwise.sum(axis=1)))
    return np.roll(clockwise, -start, axis=0).astype(np.float32)


def crop_polygon(image: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """The quadrilateral ``polygon`` of ``image`` warped to an axis-aligned rectangle (perspective transform).

    ``image``: H x W (x C) array; ``polygon``: 4 (x, y) corners in any order, in pixel coordinates (an
    axis-aligned ``[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]`` gives exactly ``image[y0:y1, x0:x1]``).
    The output width is the longer of the top and bottom edges, its height the longer of the left and right
    edges (rounded, at least 1 pixel); pixels outside the image repeat the border.
    """
    tl, tr, br, bl = order_quadrilateral(polygon)
    width = max(1, round(max(float(np.linalg.norm(tr - tl)), float(np.linalg.norm(br - bl)))))
    height = max(1, round(max(float(np.linalg.norm(bl - tl)), float(np.linalg.norm(br - tr)))))
    source = np.array([tl, tr, br, bl], dtype=np.float32)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


# ------------------------------------------------------------------------------------------------ engine
def _missing_models(det_model_dir: Path, rec_weights: Path) -> list[str]:
    """What is missing, each as an instruction saying what to put where."""
    problems: list[str] = []
    det_ok = det_model_dir.is_dir() and all((det_model_dir / name).is_file() for name in DET_MODEL_FILES)
    det_ok = det_ok and any((det_model_dir / name).is_file() for name in DET_GRAPH_FILES)
    if not det_ok:
        problems.append(
            f"put the PP-OCRv5 detection model (inference.json, inference.pdiparams, inference.yml; e.g. "
            f"{DEFAULT_DET_MODEL_NAME}) in {det_model_dir}"
        )
    if not rec_weights.is_file():
        problems.append(f"put the VietOCR vgg_transformer weights (.pth) at {rec_weights}")
    return problems


def _det_model_name(det_model_dir: Path) -> str:
    """The model name in the folder's inference.yml (``Global.model_name``), else PP-OCRv5_server_det."""
    try:
        config = yaml.safe_load((det_model_dir / "inference.yml").read_text(encoding="utf-8")) or {}
        name = config.get("Global", {}).get("model_name")
    except (OSError, yaml.YAMLError, AttributeError):
        name = None
    return str(name) if name else DEFAULT_DET_MODEL_NAME


def _paddle_device(device: str) -> str:
    """``cuda``/``cuda:1`` (torch spelling) -> ``gpu:0``/``gpu:1`` (Paddle spelling); ``cpu`` unchanged."""
    if device.startswith("cuda"):
        _, _, index = device.partition(":")
        return f"gpu:{index or 0}"
    return device


class VietOCRRecognizer:
    """VietOCR ``vgg_transformer`` recognition of line crops, from a config kept in the repo and local weights."""

    def __init__(self, rec_weights: Path, config_path: Path | None = None, device: str = "cpu") -> None:
        rec_weights = Path(rec_weights)
        config_path = Path(config_path) if config_path is not None else DEFAULT_CONFIG
        if not rec_weights.is_file():
            raise OCRUnavailableError(rec_weights, "VietOCR weights not found: put the vgg_transformer .pth there")
        config = load_vietocr_config(config_path)
        try:
            from vietocr.tool.config import Cfg  # pyright: ignore[reportMissingImports]
            from vietocr.tool.predictor import Predictor  # pyright: ignore[reportMissingImports]
        except ImportError as error:
            raise OCRUnavailableError(
                "VietOCRRecognizer", f"cannot import {error.name or error} ({error}); {INSTALL_HINT}"
            ) from None
        config["weights"] = str(rec_weights)
        config["device"] = device
        config.setdefault("cnn", {})["pretrained"] = False
        try:
            self._predictor: Any = Predictor(Cfg(config))
        except (RuntimeError, OSError, KeyError, ValueError) as error:  # e.g. weights of another architecture
            raise OCRUnavailableError(rec_weights, f"cannot load the VietOCR weights ({error})") from None
        self.device = device

    def recognize(self, crops: list[Image.Image]) -> list[tuple[str, float]]:
        """Text and mean character probability (0..1) of each line crop, in order."""
        if not crops:
            return []
        texts, probs = self._predictor.predict_batch([c.convert("RGB") for c in crops], return_prob=True)
        out = []
        for text, prob in zip(texts, probs, strict=True):
            confidence = float(prob) if np.isfinite(prob) else 0.0
            out.append((" ".join(str(text).split()), min(max(confidence, 0.0), 1.0)))
        return out


def load_vietocr_config(config_path: Path) -> dict[str, Any]:
    """The VietOCR configuration YAML kept in the repo (never fetched from the internet)."""
    if not config_path.is_file():
        raise ConfigError(config_path, "VietOCR configuration file not found")
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(config_path, f"cannot read the VietOCR configuration ({error})") from None
    if not isinstance(config, dict):
        raise ConfigError(config_path, "the VietOCR configuration must be a YAML mapping")
    return config


def build_vietocr_model(config_path: Path | None = None) -> Any:
    """A VietOCR model built from the repo's config, with random weights (``torch.save(m.state_dict())``)."""
    from vietocr.tool.config import Cfg  # pyright: ignore[reportMissingImports]
    from vietocr.tool.translate import build_model  # pyright: ignore[reportMissingImports]

    config = load_vietocr_config(Path(config_path) if config_path is not None else DEFAULT_CONFIG)
    config.setdefault("cnn", {})["pretrained"] = False
    config["device"] = "cpu"
    model, _vocab = build_model(Cfg(config))
    return model


class PaddleVietOCREngine:
    """PaddleOCR text detection and VietOCR recognition of each detected line, fully offline.

    ``det_model_dir``: local PaddleOCR 3.x detection model folder; ``rec_weights``: VietOCR
    vgg_transformer ``.pth``; ``config_path``: VietOCR YAML (default :data:`DEFAULT_CONFIG`); ``device``:
    ``cpu`` or ``cuda[:N]``. Raises OCRUnavailableError when a model file is missing (saying what to put
    where) or the ``ocr-dl`` extra is not installed.
    """

    def __init__(
        self, det_model_dir: Path, rec_weights: Path, config_path: Path | None = None, device: str = "cpu"
    ) -> None:
        det_model_dir, rec_weights = Path(det_model_dir), Path(rec_weights)
        config_path = Path(config_path) if config_path is not None else DEFAULT_CONFIG
        problems = _missing_models(det_model_dir, rec_weights)
        if problems:
            raise OCRUnavailableError("PaddleVietOCREngine", "; ".join(problems))
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")  # no model-host probing
        try:
            from paddleocr import TextDetection  # pyright: ignore[reportMissingImports]
        except ImportError as error:
            raise OCRUnavailableError(
                "PaddleVietOCREngine", f"cannot import {error.name or error} ({error}); {INSTALL_HINT}"
            ) from None
        self.det_model_name = _det_model_name(det_model_dir)
        try:
            self._detector: Any = TextDetection(
                model_name=self.det_model_name, model_dir=str(det_model_dir), device=_paddle_device(device)
            )
        except Exception as error:  # paddlex raises plain Exceptions for bad model folders
            raise OCRUnavailableError(
                det_model_dir, f"cannot load the PaddleOCR detection model ({error})"
            ) from None
        self._recognizer = VietOCRRecognizer(rec_weights, config_path, device)
        self.device = device
        self.name = f"paddle-{self.det_model_name}+vietocr-vgg_transformer"

    def __repr__(self) -> str:
        return f"PaddleVietOCREngine(det={self.det_model_name!r}, device={self.device!r})"

    def recognize(self, image: Image.Image) -> list[TextLine]:
        """Detected lines recognized by VietOCR, in reading order (confidence: mean character probability)."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # Paddle expects OpenCV channel order
        results = list(self._detector.predict(bgr, batch_size=1))
        if not results:
            return []
        polygons = [np.asarray(poly, dtype=np.float32).reshape(-1, 2) for poly in results[0]["dt_polys"]]
        polygons = [poly for poly in polygons if poly.shape == (4, 2)]
        if not polygons:
            return []
        crops = [Image.fromarray(crop_polygon(rgb, poly)) for poly in polygons]
        lines: list[TextLine] = []
        for poly, (text, confidence) in zip(polygons, self._recognizer.recognize(crops), strict=True):
            if not text:
                continue
            x0, y0 = np.floor(poly.min(axis=0)).astype(int)
            x1, y1 = np.ceil(poly.max(axis=0)).astype(int)
            lines.append(TextLine(text=text, box=(int(x0), int(y0), int(x1), int(y1)), confidence=confidence))
        return reading_order(lines)
