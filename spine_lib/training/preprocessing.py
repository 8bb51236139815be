"""Turning an image file or array into a model input: grayscale, resized, replicated to 3 channels, ImageNet
normalized (the same recipe as the training datasets). With ``keep_channels`` a 3-channel image (a grading crop
stacking sequences, e.g. ``[T2, T1, T2]``) keeps its channels; a grey one is still replicated."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from spine_lib.errors import MedicalImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def picture_failure(path: Path, error: Exception) -> str:
    """Why a PNG/JPEG/BMP/TIFF file could not be decoded, in words (missing, empty, truncated, not a picture).

    Example:
        >>> picture_failure(Path("a.png"), OSError("image file is truncated"))
        'cannot read image: truncated file'
    """
    from PIL import UnidentifiedImageError

    if isinstance(error, FileNotFoundError) or not path.exists():
        return "cannot read image: no such file"
    if path.is_file() and path.stat().st_size == 0:
        return "cannot read image: the file is empty"
    if isinstance(error, UnidentifiedImageError):
        return "cannot read image: not a picture (expected PNG, JPEG, BMP or TIFF)"
    if "truncated" in str(error):
        return "cannot read image: truncated file"
    text = str(error).replace(f"'{path}'", "the file").replace(str(path), "the file")
    return f"cannot read image: damaged ({text[:160]})"


def load_grayscale(source: Path | str | np.ndarray) -> np.ndarray:
    """A 2-D uint8 image from a PNG/JPEG, a DICOM file or volume (middle slice), or an array."""
    from spine_lib.io.transforms import normalize_to_uint8

    if isinstance(source, np.ndarray):
        array = source
    else:
        path = Path(source)
        if path.suffix.lower() in RASTER_SUFFIXES:
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(path) as image:
                    return np.asarray(image.convert("L"), dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as error:
                raise MedicalImageError(path, picture_failure(path, error)) from None
        import SimpleITK as sitk

        from spine_lib.io.readers import read_medical_image

        volume = sitk.GetArrayFromImage(read_medical_image(path))
        array = volume[volume.shape[0] // 2] if volume.ndim == 3 else volume
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].mean(axis=-1)
    if array.ndim != 2:
        raise MedicalImageError(str(source) if not isinstance(source, np.ndarray) else None,
                                f"expected a 2-D image, got shape {array.shape}")
    return array if array.dtype == np.uint8 else normalize_to_uint8(array)


def load_image(source: Path | str | np.ndarray) -> np.ndarray:
    """A uint8 image with its channels: ``(H, W, 3)`` for a colour raster (RGB order) or a channel-last array of
    3 or 4 channels (alpha dropped), else the 2-D image of :func:`load_grayscale`."""
    from spine_lib.io.transforms import normalize_to_uint8

    if isinstance(source, np.ndarray):
        if source.ndim == 3 and source.shape[-1] in (3, 4):
            array = source[..., :3]
            return np.ascontiguousarray(array if array.dtype == np.uint8 else normalize_to_uint8(array))
        return load_grayscale(source)
    path = Path(source)
    if path.suffix.lower() in RASTER_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                if len(image.getbands()) >= 3 or image.mode in ("P", "PA"):
                    return np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as error:
            raise MedicalImageError(path, picture_failure(path, error)) from None
    return load_grayscale(path)


def to_model_input(image: np.ndarray, image_size: tuple[int, int]) -> torch.Tensor:
    """``(3, H, W)`` float32: resized (bilinear), scaled to [0, 1], replicated (a 2-D image) or kept (an
    ``(H, W, 3)`` one), ImageNet normalized."""
    if image.ndim == 3:
        channels = torch.from_numpy(np.ascontiguousarray(image[..., :3], dtype=np.float32) / 255.0)
        tensor = functional.interpolate(channels.permute(2, 0, 1)[None], size=tuple(image_size), mode="bilinear",
                                        align_corners=False)[0]
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32) / 255.0)[None, None]
        tensor = functional.interpolate(tensor, size=tuple(image_size), mode="bilinear", align_corners=False)[0]
        tensor = tensor.expand(3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (tensor - mean) / std


def prepare_batch(images: Sequence[Any], image_size: tuple[int, int],
                  keep_channels: bool = False) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """A batch ``(N, 3, H, W)`` and each image's original ``(height, width)``; ``keep_channels``: 3-channel
    images keep their channels instead of being averaged to grey."""
    arrays = [load_image(image) if keep_channels else load_grayscale(image) for image in images]
    batch = torch.stack([to_model_input(a, image_size) for a in arrays])
    return batch, [(int(a.shape[0]), int(a.shape[1])) for a in arrays]


def denormalize(tensor: torch.Tensor) -> np.ndarray:
    """A model input ``(3, H, W)`` back to a displayable uint8 ``(H, W)`` image."""
    mean = torch.tensor(IMAGENET_MEAN, device=tensor.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=tensor.device).view(3, 1, 1)
    image = (tensor.float() * std + mean).mean(dim=0).clamp(0, 1)
    return (image.cpu().numpy() * 255).round().astype(np.uint8)
