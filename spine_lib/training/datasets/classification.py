"""The grading dataset for training: one item per disc, its sagittal T2 and T1 crops as one [T2, T1, T2] image.

Reads ``<data_path>/annotations.csv`` and the crops written by
:func:`spine_lib.datasets.classification.build_classification_dataset` (its format:
:mod:`spine_lib.formats.classification`). A disc is ``(source, patient_id, level)``; its ``sag_t2`` and ``sag_t1``
crops fill the channels ``[T2, T1, T2]`` (:func:`construct_3channel`); a disc cropped on one sequence only repeats
that one in every channel and is counted in :attr:`ClassificationDataset.single_sequence`. Targets come from the
disc's grades through :func:`spine_lib.training.grading.targets_of_row`.

Splits go by patient, ``(source, patient_id)``: each source's patients are shuffled with the seed and split by
:func:`split_studies`, before any level or source filter, so a patient's split never depends on the filters and
never differs between two datasets of the same seed and fractions. Crops are read once, resized to
``output_size`` and kept in memory (like :class:`IVDCoordsDataset`).

Augmentation stays within what a radiologist accepts for a sagittal disc crop: one affine warp (rotation +-6 deg,
scale 0.94-1.06, shift +-4 %) moves both sequences of a disc alike, then each sequence gets its own contrast
(+-8 %), brightness (+-0.03), gamma (0.92-1.09) and a little noise: small against the signal steps between grades. No flips: anterior stays on its side, the upper endplate on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from loguru import logger
from torch.utils.data import Dataset

import spine_lib.formats.classification as fmt
from spine_lib.errors import InputPathError, TabularDataError
from spine_lib.levels import check_level
from spine_lib.training.datasets.ivd_coords import (
    CACHE_BYTES,
    SPLITS,
    AugmentationRanges,
    Split,
    affine_matrix,
    check_split_images,
    jitter_intensity,
    split_studies,
)
from spine_lib.training.grading import GRADING_HEADS, MTLTargets, targets_of_row
from spine_lib.training.preprocessing import IMAGENET_MEAN, IMAGENET_STD

T2, T1 = "sag_t2", "sag_t1"
#: Pose and intensity changes of a disc crop: small rotation, scale and shift, and intensity changes well below the
#: steps between grades (Pfirrmann 3-5 differ by ~0.2 of the nucleus' T2 signal); no inversion, blur or bias field.
CROP_AUGMENTATION = AugmentationRanges(rotation_degrees=6.0, scale=(0.94, 1.06), translation_fraction=0.04,
                                       gamma=(0.92, 1.09), contrast=(0.92, 1.08), brightness=0.03, noise=0.5,
                                       noise_sigma=0.015)


def as_unit(image: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """A grey image as float32 in [0, 1]: uint8 divided by 255, floats clipped."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def construct_3channel(t2: npt.NDArray[Any] | None,
                       t1: npt.NDArray[Any] | None = None) -> npt.NDArray[np.float32]:
    """The ``(3, H, W)`` float32 input in [0, 1] of a disc: channels ``[T2, T1, T2]``.

    Images are ``(H, W)`` uint8 (scaled by 1/255) or floats in [0, 1]; with one sequence missing, the other fills
    every channel.

    Example:
        >>> t2, t1 = np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8)
        >>> construct_3channel(t2, t1)[:, 0, 0].tolist(), construct_3channel(None, t1).max().item()
        ([1.0, 0.0, 1.0], 0.0)
    """
    outer = t2 if t2 is not None else t1
    if outer is None:
        raise ValueError("a disc needs at least one of its T2 and T1 crops")
    if outer.ndim != 2:
        raise ValueError(f"expected 2-D crops, got shape {outer.shape}")
    if t1 is not None and t1.shape != outer.shape:
        raise ValueError(f"T2 and T1 crops differ in shape: {outer.shape} vs {t1.shape}")
    first = as_unit(outer)
    middle = as_unit(t1) if t1 is not None and t2 is not None else first
    return np.stack([first, middle, first])


@dataclass(frozen=True)
class DiscRecord:
    """One disc of the dataset: who, which level, its crops by series type, its grades' targets."""

    source: str
    patient_id: str
    level: str
    image_paths: dict[str, str]  # series type -> ``image_path`` entry of annotations.csv
    targets: dict[str, list[float] | int]

    @property
    def patient(self) -> tuple[str, str]:
        return self.source, self.patient_id

    @property
    def paired(self) -> bool:
        return T2 in self.image_paths and T1 in self.image_paths


def patient_key(source: str, patient_id: str) -> str:
    return f"{source}/{patient_id}"


def read_discs(data_path: Path) -> list[DiscRecord]:
    """Every disc of a crops dataset, its crops grouped by series type, in order of first appearance.

    Raises:
        InputPathError: no ``annotations.csv``.
        TabularDataError: a row with an unknown series type or level, bad grades, a crop listed twice, or the two
            crops of a disc graded differently.
    """
    annotations = Path(data_path) / fmt.ANNOTATIONS_FILE
    if not annotations.is_file():
        raise InputPathError(annotations, "IVD crops annotations missing (build the crops dataset first)")
    grouped: dict[tuple[str, str, str], dict[str, Mapping[str, str]]] = {}
    for row in fmt.read_crop_annotations(Path(data_path)):
        image_path, series_type = row["image_path"], row.get("series_type", "")
        if series_type not in fmt.SERIES_TYPES:
            raise TabularDataError(annotations, f"{image_path}: series_type {series_type!r} is not one of "
                                                f"{', '.join(fmt.SERIES_TYPES)}")
        try:
            level = check_level(row["level"])
        except ValueError as error:
            raise TabularDataError(annotations, f"{image_path}: {error}") from error
        crops = grouped.setdefault((row.get("source", ""), row["patient_id"], level), {})
        if series_type in crops:
            raise TabularDataError(annotations, f"{image_path}: a second {series_type} crop of the same disc "
                                                f"({crops[series_type]['image_path']})")
        crops[series_type] = row
    discs: list[DiscRecord] = []
    for (source, patient_id, level), crops in grouped.items():
        targets = []
        for row in crops.values():
            try:
                targets.append(targets_of_row(row))
            except (KeyError, ValueError) as error:
                raise TabularDataError(annotations, f"{row['image_path']}: bad grades ({error})") from error
        if any(t != targets[0] for t in targets[1:]):
            names = ", ".join(r["image_path"] for r in crops.values())
            raise TabularDataError(annotations, f"the crops of one disc are graded differently: {names}")
        paths = {s: crops[s]["image_path"] for s in (T2, T1) if s in crops}
        discs.append(DiscRecord(source, patient_id, level, paths, targets[0]))
    return discs


def split_patients(discs: Sequence[DiscRecord], val_fraction: float = 0.2, test_fraction: float = 0.0,
                   seed: int = 42) -> dict[tuple[str, str], str]:
    """Each patient ``(source, patient_id)`` to ``train``, ``val`` or ``test``, source by source (each source
    gives its share of every split)."""
    assignment: dict[tuple[str, str], str] = {}
    for source in sorted({d.source for d in discs}):
        ids = [d.patient_id for d in discs if d.source == source]
        split = split_studies(ids, val_fraction, test_fraction, seed)
        assignment.update({(source, pid): name for pid, name in split.items()})
    return assignment


class ClassificationDataset(Dataset[dict[str, Any]]):
    """Grading items from an IVD crops dataset folder (see the module docstring).

    An item: ``image`` ``(3, H, W)`` float32, ImageNet normalized, channels [T2, T1, T2]; ``targets`` per head (a
    class index for multiclass heads, a list of 0/1 floats for binary heads); ``patient_id``, ``source``,
    ``level``; ``paired`` (both sequences present); ``image_paths`` (series type -> crop file).
    """

    def __init__(
        self,
        data_path: Path,
        split: Split = "train",
        levels: Sequence[str] | None = None,
        output_size: tuple[int, int] = (224, 224),
        augment: bool = False,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        seed: int = 42,
        sources: Sequence[str] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if sources is not None and (unknown := sorted(set(sources) - set(fmt.SOURCES))):
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; expected {', '.join(fmt.SOURCES)}")
        self.data_path = Path(data_path)
        self.split = split
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.augment = augment
        self.ranges = CROP_AUGMENTATION
        self.seed = seed
        discs = read_discs(self.data_path)
        self.assignment = split_patients(discs, val_fraction, test_fraction, seed)
        if levels is not None:
            wanted_levels = {check_level(level) for level in levels}
            discs = [d for d in discs if d.level in wanted_levels]
        if sources is not None:
            wanted_sources = set(sources)
            discs = [d for d in discs if d.source in wanted_sources]
        self._cache: dict[str, npt.NDArray[np.uint8]] = {}
        self._cache_bytes = 0
        self._noise: npt.NDArray[np.float32] | None = None
        self._mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
        self._inv_std = (1.0 / np.asarray(IMAGENET_STD, dtype=np.float32)).reshape(3, 1, 1)
        chosen = [d for d in discs if split == "all" or self.assignment[d.patient] == split]
        #: crops left out, ``(image_path, reason)``: missing or unreadable (a disc keeps its other sequence)
        self.rejects: list[tuple[str, str]] = self.check_crops(chosen)
        left_out = {path for path, _ in self.rejects}
        self.discs: list[DiscRecord] = []
        for disc in chosen:
            paths = {s: p for s, p in disc.image_paths.items() if p not in left_out}
            if paths:
                self.discs.append(disc if len(paths) == len(disc.image_paths) else replace(disc, image_paths=paths))
        #: discs of this split cropped on one sequence only (their input repeats it in all channels)
        self.single_sequence = sum(not d.paired for d in self.discs)
        if self.single_sequence:
            t1_only = sum(T2 not in d.image_paths for d in self.discs)
            logger.info("IVD crops {} ({}): {} of {} discs have a single sequence ({} T1 only, {} T2 only)",
                        self.data_path, split, self.single_sequence, len(self.discs), t1_only,
                        self.single_sequence - t1_only)

    def check_crops(self, discs: Sequence[DiscRecord]) -> list[tuple[str, str]]:
        """The discs' crops that cannot be used, with the reason (:func:`check_split_images`)."""
        image_paths = list(dict.fromkeys(p for d in discs for p in d.image_paths.values()))
        return check_split_images(image_paths, self.load_crop, self.data_path / fmt.IMAGES_FOLDER, self.split,
                                  f"IVD crops ({self.split})", "crop image")

    def preload(self) -> int:
        """Read every crop of the split into the cache now (as far as :data:`CACHE_BYTES` allows); return how many
        are cached. DataLoader workers forked afterwards share them."""
        for disc in self.discs:
            for image_path in disc.image_paths.values():
                self.load_crop(image_path)
        return len(self._cache)

    def __len__(self) -> int:
        return len(self.discs)

    @property
    def patients(self) -> list[tuple[str, str]]:
        """The patients ``(source, patient_id)`` of this split, sorted."""
        return sorted({d.patient for d in self.discs})

    def load_crop(self, image_path: str) -> npt.NDArray[np.uint8]:
        """A crop resized to ``output_size`` (uint8, cached).

        Raises:
            InputPathError: the file is missing or not a readable image.
        """
        cached = self._cache.get(image_path)
        if cached is not None:
            return cached
        path = self.data_path / image_path
        if not path.is_file():
            raise InputPathError(path, "crop image missing or unreadable (no such file)")
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise InputPathError(path, "crop image missing or unreadable (not an image OpenCV can decode)")
        out_h, out_w = self.output_size
        if image.shape[:2] != (out_h, out_w):
            image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        crop = np.ascontiguousarray(image, dtype=np.uint8)
        if self._cache_bytes + crop.nbytes <= CACHE_BYTES:
            self._cache[image_path] = crop
            self._cache_bytes += crop.nbytes
        return crop

    def __getitem__(self, index: int) -> dict[str, Any]:
        disc = self.discs[index]
        crops = {s: self.load_crop(p) for s, p in disc.image_paths.items()}
        pixels = self._augmented(crops) if self.augment else {s: as_unit(c) for s, c in crops.items()}
        channels = construct_3channel(pixels.get(T2), pixels.get(T1))
        channels -= self._mean
        channels *= self._inv_std
        return {
            "image": torch.from_numpy(channels),
            "targets": {k: list(v) if isinstance(v, list) else v for k, v in disc.targets.items()},
            "patient_id": disc.patient_id,
            "source": disc.source,
            "level": disc.level,
            "paired": disc.paired,
            "image_paths": {s: str(self.data_path / p) for s, p in disc.image_paths.items()},
        }

    def _augmented(self, crops: Mapping[str, npt.NDArray[np.uint8]]) -> dict[str, npt.NDArray[np.float32]]:
        """One warp for all crops of a disc, then an intensity jitter of each (random state drawn from torch)."""
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        out_h, out_w = self.output_size
        matrix = affine_matrix(rng, out_w, out_h, self.ranges)
        if self._noise is None:
            self._noise = np.random.default_rng(self.seed).standard_normal((2 * out_h, 2 * out_w), dtype=np.float32)
        pixels: dict[str, npt.NDArray[np.float32]] = {}
        for series_type in (T2, T1):
            if series_type in crops:
                warped = cv2.warpAffine(crops[series_type], matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                pixels[series_type] = jitter_intensity(np.asarray(warped, dtype=np.uint8), rng, self._noise,
                                                       self.ranges)
        return pixels

    def targets_table(self) -> MTLTargets:
        """The targets of this split's discs, in item order."""
        return MTLTargets.stack([d.targets for d in self.discs])

    def class_counts(self) -> dict[str, list[int]]:
        """Discs per class, keyed by annotation column (one count per disc, not per crop): a multiclass head's one
        column (``pfirrmann_grade``, ``modic``) counts each class index; a binary output's column counts
        ``[negatives, positives]``. Columns in :data:`spine_lib.training.grading.LABELS` order."""
        counts: dict[str, list[int]] = {}
        for head in GRADING_HEADS:
            classes = head.classes if head.kind == "multiclass" else 2
            for name in head.columns[:1] if head.kind == "multiclass" else head.columns:
                values = self._column_values(name)
                counts[name] = [values.count(k) for k in range(classes)]
        return counts

    def sample_weights(self, cap: float = 10.0) -> list[float]:
        """A drawing weight per disc, in item order, for a sampler that balances the rare grades: each disc weighs
        as its rarest label, where a class seen ``n`` times among ``N`` discs in a column of ``K`` classes seen
        weighs ``N / (K n)`` (1 for a balanced column), capped at ``cap``.

        Example: a binary column with 8 negatives and 2 positives gives weights 10/16 and 10/4 = 2.5; a disc
        carrying that positive is drawn 4x as often as one without it (unless another label of it is rarer)."""
        weights = [0.0] * len(self.discs)
        for column, counts in self.class_counts().items():
            seen = sum(1 for c in counts if c > 0)
            total = sum(counts)
            for i, value in enumerate(self._column_values(column)):
                weights[i] = max(weights[i], min(cap, total / (seen * counts[value])))
        return weights

    def _column_values(self, column: str) -> list[int]:
        """Each disc's class index in an annotation column (see :meth:`class_counts`)."""
        for head in GRADING_HEADS:
            if column in head.columns:
                k = head.columns.index(column)
                values = [d.targets[head.name] for d in self.discs]
                if head.kind == "multiclass":
                    return [v if isinstance(v, int) else int(v[0]) for v in values]
                return [int(v[k]) if isinstance(v, list) else int(v) for v in values]
        raise KeyError(column)

    def __repr__(self) -> str:
        return (f"ClassificationDataset({self.data_path}, split={self.split!r}, discs={len(self)}, "
                f"patients={len(self.patients)}, single_sequence={self.single_sequence}, "
                f"output_size={self.output_size}, augment={self.augment})")


class ClassificationCollator:
    """Items of :class:`ClassificationDataset` to a batch: ``image`` ``(B, 3, H, W)``, ``targets``
    (:meth:`MTLTargets.stack`), ``patient_id``/``source``/``level``/``image_paths`` lists, ``paired`` ``(B,)``
    bool."""

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("cannot collate an empty batch")
        return {
            "image": torch.stack([item["image"] for item in items]),
            "targets": MTLTargets.stack([item["targets"] for item in items]),
            "patient_id": [item["patient_id"] for item in items],
            "source": [item["source"] for item in items],
            "level": [item["level"] for item in items],
            "paired": torch.tensor([bool(item["paired"]) for item in items], dtype=torch.bool),
            "image_paths": [item["image_paths"] for item in items],
        }


__all__ = ["CROP_AUGMENTATION", "ClassificationCollator", "ClassificationDataset", "DiscRecord",
           "construct_3channel", "read_discs", "split_patients"]
