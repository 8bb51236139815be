"""Writing a volume as a DICOM MR series (one file per slice) with full patient geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import MRImageStorage, generate_uid

from spine_lib.errors import MedicalImageError
from spine_lib.io.atomic import atomic_path

# Deterministic UIDs derive from this root so that the same inputs give the same bytes.
UID_ROOT = "1.2.826.0.1.3680043.10.1546."


@dataclass(frozen=True)
class DicomSeriesInfo:
    """Patient/study/series attributes written into every slice of a series."""

    series_description: str = "Sagittal T2"
    series_number: int = 1
    patient_id: str = "ANON"
    patient_name: str = ""
    patient_birth_date: date | None = None
    study_date: date = date(2000, 1, 1)
    study_uid: str | None = None
    series_uid: str | None = None
    frame_of_reference_uid: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def deterministic_uid(*parts: object) -> str:
    """A valid DICOM UID derived from ``parts`` (same parts, same UID)."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(p) for p in parts])


def right_handed(image: sitk.Image) -> sitk.Image:
    """The same physical image, with the slice axis reversed if its direction is left-handed.

    DICOM readers rebuild the slice axis as row x column, so only right-handed geometry survives a round-trip.
    """
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if np.linalg.det(direction) > 0:
        return image
    array = sitk.GetArrayFromImage(image)[::-1]
    flipped = sitk.GetImageFromArray(np.ascontiguousarray(array))
    flipped.SetSpacing(image.GetSpacing())
    flipped.SetOrigin(image.TransformIndexToPhysicalPoint((0, 0, image.GetSize()[2] - 1)))
    direction[:, 2] *= -1
    flipped.SetDirection(tuple(direction.ravel()))
    return flipped


def write_dicom_series(image: sitk.Image, folder: Path, info: DicomSeriesInfo | None = None) -> list[Path]:
    """Write a 3D integer volume as ``<folder>/<instance_number>.dcm``, one MR slice per file.

    Geometry (ImagePositionPatient per slice, ImageOrientationPatient, PixelSpacing, SliceThickness) comes
    from the image, so reading the folder back gives the same physical image. Returns the files in
    instance order. Each file is written atomically.
    """
    info = info or DicomSeriesInfo()
    folder = Path(folder)
    if image.GetDimension() != 3:
        raise MedicalImageError(folder, f"DICOM series needs a 3D image, got {image.GetDimension()}D")
    image = right_handed(image)
    array = sitk.GetArrayFromImage(image)
    if array.dtype.kind not in "iu" or array.dtype.itemsize > 2:
        raise MedicalImageError(folder, f"DICOM series needs 8/16-bit integer pixels, got {array.dtype}")
    signed = array.dtype.kind == "i"
    array = array.astype(np.int16 if signed else np.uint16)

    study_uid = info.study_uid or deterministic_uid("study", info.patient_id, info.study_date)
    series_uid = info.series_uid or deterministic_uid("series", study_uid, info.series_number)
    frame_uid = info.frame_of_reference_uid or deterministic_uid("frame", study_uid)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    sx, sy, sz = image.GetSpacing()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for k in range(array.shape[0]):
        sop_uid = deterministic_uid("instance", series_uid, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid  # pyright: ignore[reportAttributeAccessIssue]
        meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"  # pyright: ignore[reportAttributeAccessIssue]
        ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "MR"
        ds.PatientID = info.patient_id
        ds.PatientName = info.patient_name
        if info.patient_birth_date is not None:
            ds.PatientBirthDate = info.patient_birth_date.strftime("%Y%m%d")
        ds.StudyDate = ds.SeriesDate = info.study_date.strftime("%Y%m%d")
        ds.SeriesDescription = info.series_description
        ds.SeriesNumber = info.series_number
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [f"{sy:.6f}", f"{sx:.6f}"]  # row spacing, column spacing
        ds.SliceThickness = f"{sz:.6f}"
        ds.SpacingBetweenSlices = f"{sz:.6f}"
        ds.Rows, ds.Columns = int(array.shape[1]), int(array.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        for keyword, value in info.extra.items():
            setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(array[k]).tobytes()
        target = folder / f"{k + 1}.dcm"
        with atomic_path(target) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(target)
    return written
