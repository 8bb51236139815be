"""Finding the cases of a SPIDER source (image, mask, or why a file cannot be a case) and their results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    """The SPIDER series to convert (by the configured sequences) and the files that cannot be cases."""
    images_dir, masks_dir = config.input_path / spider.IMAGES, config.input_path / spider.MASKS
    if not config.input_path.is_dir():
        raise InputPathError(config.input_path, "SPIDER folder does not exist")
    if not images_dir.is_dir():
        raise InputPathError(images_dir, "SPIDER images folder does not exist")
    ext = config.file_extension
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and p.name.endswith(ext))
    if not images:
        raise InputPathError(images_dir, f"no {ext} image in the SPIDER images folder")
    sources: list[CaseSource] = []
    rejects: list[CaseResult] = []
    image_stems = set()
    for image in images:
        stem = image.name[: -len(ext)]
        image_stems.add(stem)
        name = spider.parse_series_stem(stem)
        if name is None:
            rejects.append(CaseResult(stem, "rejected", "file name is not <patient>_<t1|t2|t2_SPACE>", image=image.name))
            continue
        if name[1] not in config.sequences:
            continue
        mask = masks_dir / image.name
        sources.append(CaseSource(stem, image, mask if mask.is_file() else None))
    if masks_dir.is_dir():
        for mask in sorted(p for p in masks_dir.iterdir() if p.is_file() and p.name.endswith(ext)):
            stem = mask.name[: -len(ext)]
            if stem not in image_stems:
                rejects.append(CaseResult(stem, "rejected", "mask without an image", mask=mask.name))
    return sources, rejects


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
