"""The IVD localization dataset for training: one item per annotation (image, level, target point), or, with
``group_levels``, one item per image carrying the points of all its levels.

Reads ``<data_path>/annotations.csv`` written by :func:`spine_lib.datasets.ivd_coords.build_ivd_coords`
(its format: :mod:`spine_lib.formats.ivd_coords`).
Splits go by study (a study never lands in two splits) and are the same for the same seed. Each image is read
once, resized to ``image_size`` and kept in memory (up to :data:`CACHE_BYTES`; all of them when the dataset is
built, up to :data:`PRELOAD_MAX_IMAGES`); an item is then a few array operations. Augmentation moves the landmark with the image: one 2x3 affine matrix warps the image and
maps the points, and a draw that would push a point out of the picture is drawn again.

Grouped items hold ``coords`` ``(K, 2)`` for the dataset's K level slots (all five levels, or the filtered ones)
with NaN where the image has no point of that level, and ``level_idx`` ``(K,)``; one warp moves all points. A
localization model takes such a batch in one backbone pass per image (see ``LocalizationModel.forward``), which
is what makes training on CPU affordable.

Coordinates: ``coords`` is the relative ``(x, y)`` of the target in the item's ``image``; without augmentation it
equals the CSV's ``relative_x, relative_y`` (``pixel / size``), so ``coords * (width, height)`` of the original
image gives the annotated pixel back. Augmentation maps the point ``coords * image_size`` with the warp.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
import torch
from loguru import logger
from torch.utils.data import Dataset

from spine_lib.errors import InputPathError
from spine_lib.formats.ivd_coords import IMAGES_FOLDER, IVDRecord, is_pretraining, read_annotations
from spine_lib.levels import LEVEL_TO_IDX, check_level
from spine_lib.training.preprocessing import IMAGENET_MEAN, IMAGENET_STD

Split = Literal["train", "val", "test", "all"]
SPLITS = ("train", "val", "test", "all")
CACHE_BYTES = 2 * 1024**3  # resized uint8 images kept in memory per process
#: datasets with at most this many images read them all when built: DataLoader workers (forked) inherit them
PRELOAD_MAX_IMAGES = 4000
Augmentation = Literal["light", "scanner", "any_contrast"]


@dataclass(frozen=True)
class AugmentationRanges:
    """How far an augmented item may differ from its image: geometry, then intensity (probabilities per item)."""

    rotation_degrees: float
    scale: tuple[float, float]  # drawn log-uniformly
    translation_fraction: float
    gamma: tuple[float, float]  # drawn log-uniformly
    contrast: tuple[float, float] = (0.8, 1.2)  # multiplies the [0, 1] intensities
    brightness: float = 0.1  # added, up to +- this
    invert: float = 0.0  # probability of inverted contrast (fat/water swapped, T1 vs T2 look)
    blur: float = 0.0  # probability of a Gaussian blur of sigma up to ``blur_sigma`` px
    blur_sigma: float = 1.5
    noise: float = 0.5  # probability of Gaussian noise of sigma up to ``noise_sigma``
    noise_sigma: float = 0.03
    bias: float = 0.0  # probability of a smooth multiplicative bias field of amplitude up to ``bias_amplitude``
    bias_amplitude: float = 0.35
    remap: float = 0.0  # probability of a random smooth intensity curve (any tissue contrast, not only T1/T2)
    remap_knots: int = 6


#: ``light``: small pose and intensity changes (images like the training set); ``scanner``: what real scanners and
#: patients vary: field of view and scale 0.6-1.6x, rotation +-20 deg, the spine anywhere in the frame, gamma,
#: inverted contrast, blur, noise and bias fields; ``any_contrast``: ``scanner`` with tissues in any brightness order.
AUGMENTATIONS: dict[str, AugmentationRanges] = {
    "light": AugmentationRanges(rotation_degrees=10.0, scale=(0.9, 1.1), translation_fraction=0.08,
                                gamma=(0.8, 1.25)),
    "scanner": AugmentationRanges(rotation_degrees=20.0, scale=(0.6, 1.6), translation_fraction=0.2,
                                  gamma=(0.5, 2.0), invert=0.15, blur=0.3, noise=0.6, noise_sigma=0.06, bias=0.5),
}
AUGMENTATIONS["any_contrast"] = replace(AUGMENTATIONS["scanner"], remap=0.5)  # random curves in half the items
POINT_MARGIN = 2.0  # pixels the point keeps from the border after augmentation
AUGMENT_TRIES = 10


def split_studies(studies: Sequence[str], val_fraction: float = 0.2, test_fraction: float = 0.0,
                  seed: int = 42) -> dict[str, str]:
    """Assign every study to ``train``, ``val`` or ``test``: shuffled with ``seed``, test first, then val.

    A non-zero fraction gets at least one study as long as one is left for training.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"fractions must be in [0, 1) and sum below 1, got val={val_fraction}, test={test_fraction}")
    unique = sorted(set(studies))
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    n = len(order)

    def count(fraction: float, left: int) -> int:
        wanted = round(n * fraction)
        if fraction > 0 and wanted == 0:
            wanted = 1
        return max(0, min(wanted, left - 1))

    n_test = count(test_fraction, n)
    n_val = count(val_fraction, n - n_test)
    assignment = {s: "test" for s in order[:n_test]}
    assignment.update({s: "val" for s in order[n_test:n_test + n_val]})
    assignment.update({s: "train" for s in order[n_test + n_val:]})
    return assignment


def assign_splits(rows: Sequence[IVDRecord], val_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, str]:
    """The split of every study: RSNA studies by :func:`split_studies`; pretraining pictures (another source,
    extra training data) always train, so validation and test measure the target data alone (unless there is
    nothing else)."""
    pretraining = {r.study_id for r in rows if is_pretraining(r.source)}
    target = [r.study_id for r in rows if r.study_id not in pretraining]
    if not target:
        return split_studies(sorted(pretraining), val_fraction, test_fraction, seed)
    assignment = split_studies(target, val_fraction, test_fraction, seed)
    assignment.update({study: "train" for study in pretraining})
    return assignment


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def affine_matrix(rng: np.random.Generator, width: int, height: int,
                  ranges: AugmentationRanges = AUGMENTATIONS["light"]) -> npt.NDArray[np.float64]:
    """A random rotation/scale about the image centre plus a translation, as the 2x3 matrix cv2 uses."""
    angle = rng.uniform(-ranges.rotation_degrees, ranges.rotation_degrees)
    scale = log_uniform(rng, ranges.scale)
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = np.asarray(cv2.getRotationMatrix2D(centre, angle, scale), dtype=np.float64)
    shift = ranges.translation_fraction
    matrix[0, 2] += rng.uniform(-shift, shift) * width
    matrix[1, 2] += rng.uniform(-shift, shift) * height
    return matrix


def random_curve(rng: np.random.Generator, knots: int = 6) -> npt.NDArray[np.float32]:
    """A random smooth map of the 256 grey values into [0, 1], not necessarily monotonic: tissues of one
    brightness come out at another, as sequences other than the training set's order them. Black (air) stays
    near black."""
    xs = np.linspace(0.0, 1.0, knots)
    ys = rng.uniform(0.0, 1.0, knots)
    ys[0] = rng.uniform(0.0, 0.1)
    grey = np.arange(256, dtype=np.float64) / 255.0
    curve = np.interp(grey, xs, ys)
    curve = np.convolve(np.pad(curve, 12, mode="edge"), np.ones(25) / 25, mode="valid")  # smooth the knots
    curve = np.minimum(curve, ys[0] + grey)  # the darkest greys rise from near black at most one to one
    return curve.astype(np.float32)


def jitter_intensity(image: npt.NDArray[np.uint8], rng: np.random.Generator,
                     noise_field: npt.NDArray[np.float32] | None = None,
                     ranges: AugmentationRanges = AUGMENTATIONS["light"]) -> npt.NDArray[np.float32]:
    """An 8-bit image as [0, 1] floats with random contrast, brightness and gamma (one lookup table; inverted at
    times), then, by the ranges' probabilities, a blur, a smooth bias field and Gaussian noise (a random window of
    ``noise_field``, at least twice the image size, when given: cheaper than fresh noise for every item)."""
    values = np.arange(256, dtype=np.float32) / 255.0
    if ranges.remap > 0 and rng.random() < ranges.remap:  # no draw when off: presets keep their streams
        values = random_curve(rng, ranges.remap_knots)
    elif rng.random() < ranges.invert:
        values = 1.0 - values
    contrast = rng.uniform(*ranges.contrast)
    brightness = rng.uniform(-ranges.brightness, ranges.brightness)
    table = np.clip(values * contrast + brightness, 0.0, 1.0) ** log_uniform(rng, ranges.gamma)
    out = table.astype(np.float32).take(image)
    if rng.random() < ranges.blur:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, ranges.blur_sigma)))
    if rng.random() < ranges.bias:
        coarse = rng.uniform(-1.0, 1.0, (4, 4)).astype(np.float32)
        field = cv2.resize(coarse, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
        out = out * (1.0 + np.float32(rng.uniform(0.0, ranges.bias_amplitude)) * field)
    if rng.random() < ranges.noise:
        h, w = out.shape
        if noise_field is None or noise_field.shape[0] < h or noise_field.shape[1] < w:
            noise = rng.standard_normal((h, w), dtype=np.float32)
        else:
            top = int(rng.integers(0, noise_field.shape[0] - h + 1))
            left = int(rng.integers(0, noise_field.shape[1] - w + 1))
            noise = noise_field[top:top + h, left:left + w]
        out += noise * np.float32(rng.uniform(0.005, ranges.noise_sigma))
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def group_by_image(records: Sequence[IVDRecord], level_indices: npt.NDArray[np.int64]) -> list[list[int]]:
    """Record indices grouped by image, one level at most per group (a second point of a level on the same image
    starts another group), in the order the images first appear."""
    groups: list[list[int]] = []
    open_groups: dict[str, list[int]] = {}  # image -> indices into ``groups``
    for index, record in enumerate(records):
        level = int(level_indices[index])
        for g in open_groups.setdefault(record.image_path, []):
            if all(int(level_indices[m]) != level for m in groups[g]):
                groups[g].append(index)
                break
        else:
            open_groups[record.image_path].append(len(groups))
            groups.append([index])
    return groups


def check_split_images(image_paths: Sequence[str], load: Callable[[str], object], folder: Path, split: str,
                       what: str, kind: str) -> list[tuple[str, str]]:
    """Read a split's images with ``load`` (up to :data:`PRELOAD_MAX_IMAGES`; more are only checked to exist)
    (paths relative to the dataset, ``folder``'s parent) and return those that cannot be used, with the reason.
    Every image of a training split failing raises
    :class:`InputPathError`: the dataset, not an image, is broken."""
    preload = len(image_paths) <= PRELOAD_MAX_IMAGES
    rejects: list[tuple[str, str]] = []
    for image_path in image_paths:
        try:
            if preload:
                load(image_path)
            elif not (folder.parent / image_path).is_file():
                raise InputPathError(folder.parent / image_path, f"{kind} missing or unreadable (no such file)")
        except InputPathError as error:
            rejects.append((image_path, error.cause))
    if rejects:
        logger.warning("{}: {} of {} {}s missing or unreadable, left out", what, len(rejects), len(image_paths),
                       kind)
    if image_paths and len(rejects) == len(image_paths) and split in ("train", "all"):
        first, reason = rejects[0]
        raise InputPathError(folder, f"every {kind} missing or unreadable ({len(rejects)} of {len(image_paths)}; "
                                     f"first: {first}: {reason})")
    return rejects


class IVDCoordsDataset(Dataset[dict[str, Any]]):
    """Localization items from an IVD coordinates dataset folder (see the module docstring)."""

    def __init__(
        self,
        data_path: Path,
        split: Split = "train",
        series_types: Sequence[str] | None = None,
        levels: Sequence[str] | None = None,
        points: Sequence[str] | None = None,
        image_size: tuple[int, int] = (224, 224),
        augment: bool = False,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        seed: int = 42,
        group_levels: bool = False,
        augmentation: Augmentation = "scanner",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.data_path = Path(data_path)
        self.split = split
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.augment = augment
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {augmentation!r}")
        self.ranges = AUGMENTATIONS[augmentation]
        self.seed = seed
        rows = read_annotations(self.data_path)
        if series_types is not None:
            wanted_types = set(series_types)
            rows = [r for r in rows if r.series_type in wanted_types]
        if levels is not None:
            wanted_levels = {check_level(level) for level in levels}
            rows = [r for r in rows if r.level in wanted_levels]
        if points is not None:
            wanted_points = set(points)
            rows = [r for r in rows if r.point in wanted_points or not r.point]  # a table without kinds: all
        self.assignment = assign_splits(rows, val_fraction, test_fraction, seed)
        self._cache: dict[str, tuple[npt.NDArray[np.uint8], int, int]] = {}
        self._cache_bytes = 0
        self._noise: npt.NDArray[np.float32] | None = None
        self._mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
        self._inv_std = 1.0 / np.asarray(IMAGENET_STD, dtype=np.float32)
        records = [r for r in rows if split == "all" or self.assignment[r.study_id] == split]
        #: images left out, ``(image_path, reason)``: missing or unreadable (their annotations are dropped)
        self.rejects: list[tuple[str, str]] = self.check_images(list(dict.fromkeys(r.image_path for r in records)))
        left_out = {path for path, _ in self.rejects}
        self.records: list[IVDRecord] = [r for r in records if r.image_path not in left_out]
        self.level_indices = np.array([LEVEL_TO_IDX[r.level] for r in self.records], dtype=np.int64)
        self.group_levels = group_levels
        wanted = range(len(LEVEL_TO_IDX)) if levels is None else sorted(LEVEL_TO_IDX[check_level(v)] for v in levels)
        self.level_slots = np.array(list(wanted), dtype=np.int64)
        self._slot_of = {int(level): slot for slot, level in enumerate(self.level_slots)}
        self.groups = group_by_image(self.records, self.level_indices) if group_levels else []

    def check_images(self, image_paths: list[str]) -> list[tuple[str, str]]:
        """The split's images that cannot be used, with the reason (:func:`check_split_images`)."""
        return check_split_images(image_paths, self.load_image, self.data_path / IMAGES_FOLDER, self.split,
                                  f"IVD coordinates dataset ({self.split})", "image")

    def preload(self) -> int:
        """Read every image of the split into the cache now (as far as :data:`CACHE_BYTES` allows); return how
        many are cached. Worker processes forked afterwards share them instead of reading them each epoch. The
        dataset preloads its images when built, up to :data:`PRELOAD_MAX_IMAGES`."""
        for image_path in dict.fromkeys(r.image_path for r in self.records):
            self.load_image(image_path)
        return len(self._cache)

    def __len__(self) -> int:
        return len(self.groups) if self.group_levels else len(self.records)

    @property
    def studies(self) -> list[str]:
        """The studies of this split, sorted."""
        return sorted({r.study_id for r in self.records})

    def load_image(self, image_path: str) -> tuple[npt.NDArray[np.uint8], int, int]:
        """The image resized to ``image_size`` (uint8) and its original width and height (cached)."""
        cached = self._cache.get(image_path)
        if cached is not None:
            return cached
        path = self.data_path / image_path
        if not path.is_file():
            raise InputPathError(path, "image missing or unreadable (no such file)")
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise InputPathError(path, "image missing or unreadable (not an image OpenCV can decode)")
        height, width = image.shape[:2]
        out_h, out_w = self.image_size
        resized = image if (height, width) == (out_h, out_w) else cv2.resize(
            image, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        entry = (np.ascontiguousarray(resized, dtype=np.uint8), int(width), int(height))
        if self._cache_bytes + resized.nbytes <= CACHE_BYTES:
            self._cache[image_path] = entry
            self._cache_bytes += resized.nbytes
        return entry

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.group_levels:
            return self._group_item(index)
        record = self.records[index]
        image, _, _ = self.load_image(record.image_path)
        out_h, out_w = self.image_size
        points = np.array([[record.relative_x * out_w, record.relative_y * out_h]])
        channels, points = self._pixels(image, points)
        return {
            "image": torch.from_numpy(channels),
            "coords": torch.tensor([points[0, 0] / out_w, points[0, 1] / out_h], dtype=torch.float32),
            "level_idx": torch.tensor(self.level_indices[index], dtype=torch.int64),
            "level": record.level,
            "series_type": record.series_type,
            "image_path": str(self.data_path / record.image_path),
            "study_id": record.study_id,
        }

    def _group_item(self, index: int) -> dict[str, Any]:
        members = self.groups[index]
        first = self.records[members[0]]
        image, _, _ = self.load_image(first.image_path)
        out_h, out_w = self.image_size
        points = np.array([[self.records[m].relative_x * out_w, self.records[m].relative_y * out_h] for m in members])
        channels, points = self._pixels(image, points)
        coords = torch.full((len(self.level_slots), 2), float("nan"), dtype=torch.float32)
        for member, (x, y) in zip(members, points, strict=True):
            coords[self._slot_of[int(self.level_indices[member])]] = torch.tensor([x / out_w, y / out_h])
        return {
            "image": torch.from_numpy(channels),
            "coords": coords,
            "level_idx": torch.from_numpy(self.level_slots.copy()),
            "series_type": first.series_type,
            "image_path": str(self.data_path / first.image_path),
            "study_id": first.study_id,
        }

    def _pixels(self, image: npt.NDArray[np.uint8],
                points: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """The normalized 3-channel input of a cached image and its points (pixels), augmented when enabled."""
        out_h, out_w = self.image_size
        if self.augment:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            warped, points = self.warp(image, points, rng)
            if self._noise is None:
                self._noise = np.random.default_rng(self.seed).standard_normal((2 * out_h, 2 * out_w), dtype=np.float32)
            pixels = jitter_intensity(warped, rng, self._noise, self.ranges)
        else:
            pixels = image.astype(np.float32) * np.float32(1 / 255)
        channels = np.empty((3, out_h, out_w), dtype=np.float32)
        for c in range(3):  # grey replicated to 3 channels, ImageNet normalized
            np.subtract(pixels, self._mean[c], out=channels[c])
            channels[c] *= self._inv_std[c]
        return channels, points

    def warp(self, image: npt.NDArray[np.uint8], points: npt.NDArray[np.float64],
             rng: np.random.Generator) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
        """A random affine of ``image`` and its ``(N, 2)`` pixel points moved with it; redrawn until every point
        stays inside."""
        out_h, out_w = image.shape[:2]
        homogeneous = np.hstack([points, np.ones((len(points), 1))])
        for _ in range(AUGMENT_TRIES):
            matrix = affine_matrix(rng, out_w, out_h, self.ranges)
            moved = homogeneous @ matrix.T
            if (np.all(moved >= POINT_MARGIN) and np.all(moved[:, 0] <= out_w - 1 - POINT_MARGIN)
                    and np.all(moved[:, 1] <= out_h - 1 - POINT_MARGIN)):
                warped = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                return np.asarray(warped, dtype=np.uint8), moved
        return image, points  # points hugging the border: keep the geometry, jitter only the intensity

    def __repr__(self) -> str:
        return (f"IVDCoordsDataset({self.data_path}, split={self.split!r}, items={len(self)}, "
                f"studies={len(self.studies)}, image_size={self.image_size}, augment={self.augment}, "
                f"group_levels={self.group_levels})")
