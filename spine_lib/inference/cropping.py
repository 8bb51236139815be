"""Regions of interest cut from an image around the labels of its segmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from spine_lib.errors import MedicalImageError


@dataclass
class ROI:
    """One label's region: the label value, its crop of the image, and the voxel box (x, y, z index and size)."""

    label: int
    image: sitk.Image
    index: tuple[int, int, int]
    size: tuple[int, int, int]
    voxels: int


class ROICropper:
    """Crop the bounding box of each label of a segmentation, widened by ``padding`` voxels (x, y, z), clipped to
    the image. Crops keep their physical position (origin moves with the box)."""

    def __init__(self, padding: tuple[int, int, int] = (10, 10, 10)) -> None:
        if any(p < 0 for p in padding):
            raise ValueError(f"padding must not be negative, got {padding}")
        self.padding = tuple(int(p) for p in padding)

    def crop_from_segmentation(
        self, image: sitk.Image, segmentation: sitk.Image, labels: list[int] | None = None
    ) -> dict[int, ROI]:
        """One :class:`ROI` per label present (or per requested label that is present), keyed by label value."""
        if image.GetSize() != segmentation.GetSize():
            raise MedicalImageError("segmentation", f"size {segmentation.GetSize()} differs from the image's {image.GetSize()}")
        if image.GetDimension() != 3:
            raise MedicalImageError("image", f"expected a 3D image, got {image.GetDimension()}D")
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(sitk.Cast(segmentation, sitk.sitkUInt32))
        present = [int(v) for v in stats.GetLabels()]
        wanted = [v for v in present if labels is None or v in labels]
        size = np.array(image.GetSize())
        pad = np.array(self.padding)
        rois: dict[int, ROI] = {}
        for value in wanted:
            box = stats.GetBoundingBox(value)  # x, y, z index then x, y, z size
            start = np.maximum(np.array(box[:3]) - pad, 0)
            stop = np.minimum(np.array(box[:3]) + np.array(box[3:]) + pad, size)
            index = tuple(int(v) for v in start)
            extent = tuple(int(v) for v in stop - start)
            crop = sitk.RegionOfInterest(image, extent, index)
            rois[value] = ROI(value, crop, index, extent, int(stats.GetNumberOfPixels(value)))  # type: ignore[arg-type]
        return rois
