"""Finding the cases of a SPIDER source (image, mask, or why a file cannot be a case) and their results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spine_lib.core.phi import safe_path
from spine_lib.datasets.nnunet.config import ConvertConfig
from spine_lib.errors import InputPathError
from spine_lib.sources import spider

if TYPE_CHECKING:
    import SimpleITK as sitk

#: Image and mask geometry must agree to this tolerance (mm, and direction cosines); the label file then takes
#: the image's geometry exactly, so nnU-Net's own check (which is stricter) sees identical headers.
GEOMETRY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CaseSource:
    """One SPIDER series to convert: its case name and input files (the mask may be missing)."""

    case: str
    image: Path
    mask: Path | None

    def fingerprint(self) -> dict[str, int]:
        stats = {"image": self.image.stat()}
        if self.mask is not None and self.mask.is_file():
            stats["mask"] = self.mask.stat()
        return {f"{k}_{what}": getattr(s, attr) for k, s in stats.items()
                for what, attr in (("size", "st_size"), ("mtime_ns", "st_mtime_ns"))}


@dataclass
class CaseResult:
    """What converting one case gave: ``ok`` with per-case statistics, or ``rejected`` with a reason."""

    case: str
    status: str  # ok | rejected
    reason: str = ""
    image: str = ""
    mask: str = ""
    size: list[int] = field(default_factory=list)  # x, y, z
    spacing: list[float] = field(default_factory=list)  # x, y, z (mm)
    label_voxels: dict[str, int] = field(default_factory=dict)  # target value (as str) -> voxel count
    fingerprint: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def find_cases(config: ConvertConfig) -> tuple[list[CaseSource], list[CaseResult]]:
    """The SPIDER series to convert (by the configured sequences), and a reject for every other entry.

    Every entry of ``images/`` and ``masks/`` ends as a case, as a series of a sequence left out by the config,
    or as a reject with its reason: a file of another format, a badly named file, a folder, a mask without an
    image. An input without a single series is refused as a whole (:class:`~spine_lib.errors.InputPathError`).
    """
    images_dir, masks_dir = config.input_path / spider.IMAGES, config.input_path / spider.MASKS
    check_folder(config.input_path, "SPIDER folder")
    check_folder(images_dir, "SPIDER images folder")
    if masks_dir.exists() and not masks_dir.is_dir():
        raise InputPathError(masks_dir, "SPIDER masks path is a file, not a folder")
    ext = config.file_extension
    rejects: list[CaseResult] = []
    series: dict[str, Path] = {}
    image_entries = list_entries(images_dir)
    for entry in image_entries:
        if (why := not_a_series(entry, ext)) is not None:
            rejects.append(CaseResult("", "rejected", f"not a SPIDER image: {why}", image=safe_path(entry)))
        else:
            series[entry.name[: -len(ext)]] = entry
    if not series:
        where = f"among the folder's {len(image_entries)} entries" if image_entries else "(the folder is empty)"
        raise InputPathError(images_dir, f"no SPIDER image named {spider.series_name_pattern(ext)} {where}")
    sources: list[CaseSource] = []
    for stem, image in sorted(series.items()):
        parsed = spider.parse_series_stem(stem)
        if parsed is None or parsed[1] not in config.sequences:
            continue
        mask = masks_dir / image.name
        sources.append(CaseSource(stem, image, mask if mask.is_file() else None))
    for entry in list_entries(masks_dir) if masks_dir.is_dir() else []:
        if (why := not_a_series(entry, ext)) is not None:
            rejects.append(CaseResult("", "rejected", f"not a SPIDER mask: {why}", mask=safe_path(entry)))
        elif (stem := entry.name[: -len(ext)]) not in series:
            rejects.append(CaseResult(stem, "rejected", "mask without an image", mask=entry.name))
    return sources, rejects


def check_folder(folder: Path, what: str) -> None:
    """Raise :class:`~spine_lib.errors.InputPathError` naming ``folder`` unless it is a folder."""
    if not folder.exists():
        raise InputPathError(folder, f"{what} does not exist")
    if not folder.is_dir():
        raise InputPathError(folder, f"{what} is a file, not a folder")


def list_entries(folder: Path) -> list[Path]:
    """Every entry of a folder (files, folders, hidden ones), sorted by name."""
    try:
        return sorted(folder.iterdir())
    except OSError as error:
        raise InputPathError(folder, f"cannot list the folder ({error.strerror or error})") from error


def not_a_series(entry: Path, extension: str) -> str | None:
    """Why a folder entry cannot be a SPIDER series file (``None`` when it can)."""
    pattern = spider.series_name_pattern(extension)
    if entry.is_dir():
        return f"a folder; expected {pattern} files"
    if not entry.is_file():
        return f"not a regular file; expected {pattern}"
    if not entry.name.endswith(extension) or spider.parse_series_stem(entry.name[: -len(extension)]) is None:
        return f"expected {pattern}"
    return None


def volume_problem(image: sitk.Image, what: str) -> str | None:
    """Why an image (or mask) cannot be a case: not 3-D, a single slice, or more than one value per voxel."""
    size = image.GetSize()
    shown = "x".join(str(n) for n in size)
    if image.GetDimension() != 3:
        return f"{what} is {image.GetDimension()}-D ({shown} voxels); expected a 3-D volume"
    if min(size) < 2:
        return f"{what} has a single slice ({shown} voxels); expected a 3-D volume"
    if (components := image.GetNumberOfComponentsPerPixel()) != 1:
        return f"{what} has {components} components per voxel; expected one"
    return None


def same_geometry(a: sitk.Image, b: sitk.Image, tol: float = GEOMETRY_TOLERANCE) -> str | None:
    """Why two images do not share a voxel grid (``None`` when they do)."""
    import numpy as np

    if a.GetSize() != b.GetSize():
        return f"image size {a.GetSize()} != mask size {b.GetSize()}"
    for what in ("Spacing", "Origin", "Direction"):
        va, vb = getattr(a, f"Get{what}")(), getattr(b, f"Get{what}")()
        if not np.allclose(va, vb, rtol=0, atol=tol):
            shown = ", ".join(f"{x:.4g}" for x in va), ", ".join(f"{x:.4g}" for x in vb)
            return f"image {what.lower()} ({shown[0]}) != mask {what.lower()} ({shown[1]})"
    return None
