"""Disc localization on a sagittal series: the trained localizer applied to the mid-sagittal slice.

:class:`DiscLocalizer` loads a localization checkpoint (by default the best one of the newest run,
``<weights>/localization/latest.json``), takes a sagittal series (a DICOM folder, a volume file or a SimpleITK
image), picks the mid-sagittal slice and predicts one point per lumbar disc: where the disc meets the spinal
canal (RSNA's spinal-canal point), in slice pixels and in physical coordinates.

Which slice: with a mask of the series, the slice through the middle of the spinal canal (nearest the centroid of
the canal voxels across slices: the midline, wherever the spine lies in the field of view); without one, the
centre slice of the series, and when its answer fails the checks below or has a level the model did not see,
the nearest slice within :data:`SEARCH_SHARE` of the series whose answer passes them (a spine off the series'
centre, a scoliotic or a twisted one, an artefact on the centre slice). Every answer is checked before it is used
(:func:`check_disc_points`): points inside the slice, ordered head to feet, neighbours 15-65 mm apart and evenly
spaced. An implausible answer comes back with ``plausible=False`` and the reasons; callers reject it rather than
crop at it. A level-free model also says which levels it saw no disc at (their points extrapolated along the
chain): those come back in :attr:`DiscLocalization.guessed`, and callers reject those levels alone.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from spine_lib.core.layout import DEFAULT_LAYOUT
from spine_lib.errors import InputPathError
from spine_lib.formats.ivd_coords import NORMALIZE_PERCENTILES
from spine_lib.inference.base import InferenceModel, InferenceResult
from spine_lib.io.sagittal import SAGITTAL_ORIENTATION, SagittalVolume, sagittal_volume
from spine_lib.levels import LEVEL_TO_IDX, LEVELS, SPIDER_CANAL

if TYPE_CHECKING:
    import numpy.typing as npt

LOCALIZATION_TASK = "localization"
#: Distance between the points of neighbouring discs on an adult lumbar spine: a vertebral body and a disc.
NEIGHBOUR_DISTANCE_MM = (15.0, 65.0)
#: Neighbouring gaps may differ by at most this factor (a missed or doubled level breaks it).
MAX_GAP_RATIO = 1.8
#: Without a mask, how far from the centre slice another slice is tried when the centre's answer is implausible
#: or extrapolates a level: this share of the series' slices on either side (at least one slice).
SEARCH_SHARE = 0.2


@dataclass(frozen=True)
class DiscPoint:
    """One disc's point on the chosen slice: pixel ``(x, y)`` (column, row) and the physical point (LPS, mm)."""

    level: str
    x: float
    y: float
    physical: tuple[float, float, float]


@dataclass
class DiscLocalization:
    """The points of one series, the slice they lie on, and whether they are plausible (with the reasons)."""

    slice_index: int
    slice_reason: str  # "canal centre", "centre", or "centre+N"/"centre-N" (the centre's answer failed its checks)
    points: dict[str, DiscPoint]
    pixel_spacing: tuple[float, float]
    shape: tuple[int, int]
    plausible: bool = True
    problems: list[str] = field(default_factory=list)
    run_id: str | None = None
    #: levels whose point the model extrapolated from its neighbours (it saw no disc there)
    guessed: list[str] = field(default_factory=list)


def mid_sagittal_slice(volume: SagittalVolume, mask: sitk.Image | None = None,
                       canal_values: tuple[int, ...] = (SPIDER_CANAL,)) -> tuple[int, str]:
    """The mid-sagittal slice: through the middle of the spinal canal when ``mask`` (on the series' grid) shows
    it (the slice nearest the centroid of the canal voxels across slices), else the centre slice."""
    if mask is not None:
        labels = sitk.GetArrayFromImage(sitk.DICOMOrient(mask, SAGITTAL_ORIENTATION))
        if labels.shape[0] == volume.slices:
            counts = np.isin(labels, canal_values).reshape(labels.shape[0], -1).sum(axis=1)
            if counts.sum() > 0:
                centre = float((counts * np.arange(len(counts))).sum() / counts.sum())
                return int(np.clip(round(centre), 0, volume.slices - 1)), "canal centre"
    return volume.centre_slice(), "centre"


def search_order(centre: int, slices: int, share: float = SEARCH_SHARE) -> list[int]:
    """The centre slice, then its neighbours by distance (the lower index first), up to ``share`` of ``slices``
    on either side (at least one slice).

    Example:
        >>> search_order(7, 14)
        [7, 6, 8, 5, 9]
    """
    reach = max(1, round(share * slices))
    order = [centre]
    for distance in range(1, reach + 1):
        order += [i for i in (centre - distance, centre + distance) if 0 <= i < slices]
    return order


def check_disc_points(points: dict[str, DiscPoint], shape: tuple[int, int],
                      pixel_spacing: tuple[float, float]) -> list[str]:
    """Why a set of disc points is implausible (empty when it is plausible).

    Points must lie inside the slice, run head to feet in level order, and neighbours must be
    :data:`NEIGHBOUR_DISTANCE_MM` apart with gaps that differ by less than :data:`MAX_GAP_RATIO`.
    """
    rows, columns = shape
    problems = [f"{p.level} outside the slice ({p.x:.1f}, {p.y:.1f})" for p in points.values()
                if not (0 <= p.x < columns and 0 <= p.y < rows)]
    ordered = [points[level] for level in LEVELS if level in points]
    gaps: list[float] = []
    for upper, lower in itertools.pairwise(ordered):
        if lower.y <= upper.y:
            problems.append(f"{lower.level} is not below {upper.level}")
        gap = math.hypot((lower.x - upper.x) * pixel_spacing[0], (lower.y - upper.y) * pixel_spacing[1])
        if not NEIGHBOUR_DISTANCE_MM[0] <= gap <= NEIGHBOUR_DISTANCE_MM[1]:
            problems.append(f"{upper.level} to {lower.level} is {gap:.0f} mm (expected {NEIGHBOUR_DISTANCE_MM[0]:.0f}"
                            f"-{NEIGHBOUR_DISTANCE_MM[1]:.0f} mm)")
        gaps.append(gap)
    positive = [g for g in gaps if g > 0]
    if len(positive) >= 2 and max(positive) / min(positive) > MAX_GAP_RATIO:
        problems.append(f"uneven spacing between discs ({min(positive):.0f} to {max(positive):.0f} mm)")
    return problems


def slice_to_uint8(pixels: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.uint8]:
    """A slice windowed as the localization dataset's images are (percentiles of the slice)."""
    from spine_lib.io.transforms import normalize_to_uint8

    return normalize_to_uint8(pixels, percentiles=NORMALIZE_PERCENTILES)


class DiscLocalizer(InferenceModel):
    """The five disc points of a sagittal series from a trained localization model.

    Args:
        model_path: a checkpoint (``best_model.pt``); default: the best model of the newest localization run
            under ``weights_path`` (``localization/latest.json``).
        weights_path: the weights folder searched when ``model_path`` is not given.
        device: ``auto`` (the CUDA device with most free memory, else CPU), ``cpu`` or ``cuda:N``.
        image_size: the model input ``(H, W)``; default: the size the model was trained at.
        levels: the levels to predict (default all five).
    """

    def __init__(self, model_path: Path | None = None, weights_path: Path = DEFAULT_LAYOUT.weights,
                 device: str = "auto", image_size: tuple[int, int] | None = None,
                 levels: tuple[str, ...] = LEVELS) -> None:
        super().__init__(model_path, device)
        self.weights_path = Path(weights_path)
        self.image_size = image_size
        self.levels = tuple(levels)
        self.run_id: str | None = None
        self._model: Any = None
        self._device = "cpu"
        self.last_guessed: list[str] = []

    @property
    def name(self) -> str:
        return f"disc localizer ({self.model_path.name if self.model_path else 'latest'})"

    def resolve_model_path(self) -> Path:
        """The checkpoint this localizer uses (``model_path`` or the newest run's best model)."""
        if self.model_path is not None:
            return self.model_path
        from spine_lib.training.runs import latest_run

        found = latest_run(self.weights_path, LOCALIZATION_TASK)
        if found is None:
            raise InputPathError(self.weights_path / LOCALIZATION_TASK,
                                 "no trained localization model (train one, or give --localization-model-path)")
        return found

    def load(self) -> None:
        from spine_lib.core.device import select_device
        from spine_lib.training.checkpoints import CheckpointError, model_from_checkpoint
        from spine_lib.training.models.localization import LocalizationModel

        path = self.resolve_model_path()
        model, payload = model_from_checkpoint(path)
        if not isinstance(model, LocalizationModel):
            raise CheckpointError(path, f"checkpoint of model {payload['model_name']}, expected a localization model")
        self.model_path = path
        self.run_id = payload.get("run_id")
        trained = (payload.get("config") or {}).get("image_size") or (224, 224)
        self.image_size = tuple(self.image_size or trained)  # type: ignore[assignment]
        self._device = select_device(self.device_spec, mixed_precision=False).device
        self._model = model.to(self._device).eval()

    def predict_slice(self, pixels: npt.NDArray[np.floating[Any]]) -> dict[str, tuple[float, float]]:
        """Pixel ``(x, y)`` of each level's point on one slice (``(rows, columns)`` array); the levels the model
        extrapolated are then in :attr:`last_guessed`."""
        import torch

        from spine_lib.training.preprocessing import to_model_input

        self.ensure_loaded()
        image = slice_to_uint8(pixels)
        batch = to_model_input(image, self.image_size)[None].to(self._device)  # type: ignore[arg-type]
        indices = torch.tensor([[LEVEL_TO_IDX[level] for level in self.levels]], device=self._device)
        with torch.no_grad():
            relative = self._model(batch, indices)[0].float().cpu().numpy()
        guessed = self._model.guessed_levels()
        self.last_guessed = [level for level in self.levels if guessed and LEVEL_TO_IDX[level] in guessed[0]]
        rows, columns = image.shape
        return {level: (float(rx) * columns, float(ry) * rows) for level, (rx, ry) in zip(self.levels, relative,
                                                                                        strict=True)}

    def localize(self, volume: SagittalVolume, mask: sitk.Image | None = None) -> DiscLocalization:
        """The disc points of a series in the canonical view: on the slice of :func:`mid_sagittal_slice`; without
        the canal from a mask, on the nearest slice of :func:`search_order` whose answer is plausible and sees
        every level (else the nearest plausible one, else the centre's answer with its problems)."""
        index, reason = mid_sagittal_slice(volume, mask)
        first = self.localize_slice(volume, index, reason)
        if reason != "centre" or (first.plausible and not first.guessed):
            return first
        fallback = first if first.plausible else None
        for other in search_order(index, volume.slices)[1:]:
            result = self.localize_slice(volume, other, f"centre{other - index:+d}")
            if result.plausible and not result.guessed:
                return result
            if result.plausible and fallback is None:
                fallback = result
        return fallback or first

    def localize_slice(self, volume: SagittalVolume, index: int, reason: str) -> DiscLocalization:
        """The checked disc points of one slice of ``volume``."""
        predicted = self.predict_slice(volume.slice(index))
        points = {level: DiscPoint(level, x, y, volume.to_physical(index, x, y)) for level, (x, y) in predicted.items()}
        result = DiscLocalization(slice_index=index, slice_reason=reason, points=points,
                                  pixel_spacing=volume.pixel_spacing, shape=volume.shape, run_id=self.run_id,
                                  guessed=list(self.last_guessed))
        result.problems = check_disc_points(points, volume.shape, volume.pixel_spacing)
        result.plausible = not result.problems
        return result

    def predict(self, image: sitk.Image | Path, mask: sitk.Image | None = None) -> InferenceResult:
        """Localize the discs of a series (a SimpleITK image, a DICOM folder or a volume file)."""
        from spine_lib.io.readers import read_medical_image

        start = time.perf_counter()
        source = None
        if not isinstance(image, sitk.Image):
            source = str(image)
            image = read_medical_image(Path(image))
        localization = self.localize(sagittal_volume(image, source), mask)
        return InferenceResult(prediction=localization, metadata={"plausible": localization.plausible,
                                                                  "problems": localization.problems,
                                                                  "guessed": localization.guessed,
                                                                  "run_id": localization.run_id},
                               seconds=time.perf_counter() - start)
