"""Reading medical images: one entry point that recognises DICOM folders, single DICOM files and volumes."""

from __future__ import annotations

import gzip
import os
import re
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk
from loguru import logger

from spine_lib.errors import DicomSeriesError, InputPathError, MedicalImageError
from spine_lib.io.formats import DICOM_SUFFIXES, VOLUME_SUFFIXES, image_suffix, volume_suffix

SERIES_UID_TAG = "0020|000e"


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series found on disk: its UID, folder and files in slice order."""

    uid: str
    folder: Path
    files: tuple[Path, ...]

    @property
    def num_slices(self) -> int:
        return len(self.files)


def itk_cause(error: Exception) -> str:
    """The useful line of an ITK exception (they carry file/line noise around the message)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "ERROR" in line or "Unable" in line or "Could not" in line:
            return re.sub(r"\s+", " ", line)[:300]
    return re.sub(r"\s+", " ", lines[-1] if lines else repr(error))[:300]


def nifti_expected_size(header: bytes) -> int | None:
    """Bytes a NIfTI-1/2 file holds when complete (``vox_offset`` + voxel data), from its header."""
    for endian in ("<", ">"):
        (sizeof_hdr,) = struct.unpack(f"{endian}i", header[:4])
        if sizeof_hdr == 348 and len(header) >= 112:
            dims = struct.unpack(f"{endian}8h", header[40:56])
            (bitpix,) = struct.unpack(f"{endian}h", header[72:74])
            (vox_offset,) = struct.unpack(f"{endian}f", header[108:112])
        elif sizeof_hdr == 540 and len(header) >= 176:
            (bitpix,) = struct.unpack(f"{endian}h", header[14:16])
            dims = struct.unpack(f"{endian}8q", header[16:80])
            (vox_offset,) = struct.unpack(f"{endian}q", header[168:176])
        else:
            continue
        if not 1 <= dims[0] <= 7:
            return None
        voxels = 1
        for d in dims[1 : dims[0] + 1]:
            voxels *= max(int(d), 1)
        return int(vox_offset) + voxels * bitpix // 8
    return None


def check_nifti_complete(path: Path, file_size: int) -> None:
    """Raise if a NIfTI file is shorter than its header says (ITK would silently zero-fill the rest).

    For ``.nii.gz`` the gzip trailer's ISIZE (uncompressed size mod 2**32) is compared, which costs no
    decompression beyond the header.
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        if compressed:
            with gzip.open(path, "rb") as stream:
                header = stream.read(540)
        else:
            fd = os.open(path, os.O_RDONLY)
            try:
                header = os.pread(fd, 540, 0)
            finally:
                os.close(fd)
        expected = nifti_expected_size(header)
        if expected is None:
            return
        if compressed:
            fd = os.open(path, os.O_RDONLY)
            try:
                (actual,) = struct.unpack("<I", os.pread(fd, 4, file_size - 4))
            finally:
                os.close(fd)
            complete = actual == expected % 2**32
        else:
            actual = file_size
            complete = actual >= expected
    except (OSError, EOFError, struct.error) as error:
        raise MedicalImageError(path, f"cannot read NIfTI header: {error}") from error
    if not complete:
        raise MedicalImageError(
            path, f"truncated NIfTI file: header promises {expected} bytes, file holds {actual} (uncompressed)"
        )


def series_uid_of(path: Path) -> str | None:
    """SeriesInstanceUID (0020,000E) of one DICOM file, read from its header only."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    return reader.GetMetaData(SERIES_UID_TAG).strip() if reader.HasMetaDataKey(SERIES_UID_TAG) else None


def list_dicom_series(folder: Path, recursive: bool = True) -> list[DicomSeries]:
    """Every DICOM series under ``folder`` (sub-folders too when ``recursive``), files sorted by position."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputPathError(folder, "DICOM folder does not exist or is not a folder")
    dirs = [folder]
    if recursive:
        dirs += sorted(Path(d) for d, _, _ in os.walk(folder) if Path(d) != folder)
    series: list[DicomSeries] = []
    for directory in dirs:
        num_files = sum(1 for p in directory.iterdir() if p.is_file())
        if num_files == 0:
            continue
        # Common case first: every file of the folder belongs to one series -> one GDCM scan, not two.
        first = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory))
        if first and len(first) == num_files:
            uid = series_uid_of(Path(first[0]))
            if uid is not None:
                series.append(DicomSeries(uid=uid, folder=directory, files=tuple(Path(f) for f in first)))
                continue
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory)):
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid)
            series.append(DicomSeries(uid=uid, folder=directory, files=tuple(Path(f) for f in files)))
    return series


def read_dicom_series(folder: Path, series_uid: str | None = None, recursive: bool = True) -> sitk.Image:
    """Read one DICOM series of ``folder``: ``series_uid`` if given, else the one with the most slices."""
    folder = Path(folder)
    if series_uid is None and folder.is_dir():
        entries = list(folder.iterdir())
        if entries and all(p.is_file() for p in entries):
            # A flat folder holding exactly one series (the usual export): one GDCM scan, no listing.
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
            if len(files) == len(entries):
                return execute_series_reader(folder, files, "the only series")
    found = list_dicom_series(folder, recursive=recursive)
    if not found:
        raise DicomSeriesError(folder, "no DICOM series found (folder empty or no readable DICOM files)")
    if series_uid is not None:
        matches = [s for s in found if s.uid == series_uid]
        if not matches:
            known = ", ".join(sorted({s.uid for s in found}))
            raise DicomSeriesError(folder, f"series {series_uid} not found; series present: {known}")
        chosen = max(matches, key=lambda s: s.num_slices)
    else:
        chosen = max(found, key=lambda s: (s.num_slices, s.uid))
        if len(found) > 1:
            # no folder path in the log line: hospital folders are named after the patient
            logger.debug("{} series found, reading {} ({} slices)", len(found), chosen.uid, chosen.num_slices)
    return execute_series_reader(chosen.folder, [str(f) for f in chosen.files], chosen.uid)


def execute_series_reader(folder: Path, files: Sequence[str], what: str) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files))
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise MedicalImageError(folder, f"cannot read DICOM series {what}: {itk_cause(error)}") from error


def read_medical_image(path: Path, series_uid: str | None = None) -> sitk.Image:
    """Read a medical image, recognising the format from the path.

    - a folder: a DICOM series (``series_uid``, else the series with the most slices; sub-folders searched);
    - ``.dcm``/``.dicom``: a single DICOM file;
    - ``.nii``/``.nii.gz``/``.mha``/``.mhd``/``.nrrd``/``.nhdr``: a volume. A NIfTI file shorter than its
      header promises is refused (ITK would fill the missing voxels with zeros).

    Args:
        path: a DICOM folder, a DICOM file or a volume file.
        series_uid: the SeriesInstanceUID to read when ``path`` is a folder holding several series.

    Returns:
        The image, with its spacing, origin and direction.

    Raises:
        InputPathError: ``path`` does not exist.
        UnsupportedFormatError: the extension is neither DICOM nor a volume format.
        DicomSeriesError: a folder without any DICOM series, or without ``series_uid``.
        MedicalImageError: a file that is empty, truncated or unreadable.

    Example:
        >>> import tempfile
        >>> import SimpleITK as sitk
        >>> from spine_lib.io.dicom import DicomSeriesInfo, write_dicom_series
        >>> folder = Path(tempfile.mkdtemp())
        >>> volume = sitk.Image([4, 3, 2], sitk.sitkInt16)
        >>> volume.SetSpacing((0.5, 0.5, 3.0))
        >>> sitk.WriteImage(volume, str(folder / "case.nii"))
        >>> image = read_medical_image(folder / "case.nii")
        >>> image.GetSize(), image.GetSpacing()
        ((4, 3, 2), (0.5, 0.5, 3.0))

        A study folder with a 2-slice scout and a 5-slice T2 series gives the T2, unless a UID is asked for:

        >>> scout, t2 = sitk.Image([4, 4, 2], sitk.sitkInt16), sitk.Image([4, 4, 5], sitk.sitkInt16)
        >>> _ = write_dicom_series(scout, folder / "study" / "1", DicomSeriesInfo(series_uid="1.2.3.1"))
        >>> _ = write_dicom_series(t2, folder / "study" / "2", DicomSeriesInfo(series_uid="1.2.3.2"))
        >>> read_medical_image(folder / "study").GetSize()
        (4, 4, 5)
        >>> read_medical_image(folder / "study", series_uid="1.2.3.1").GetSize()
        (4, 4, 2)

        A NIfTI file cut short (352 header bytes + 24 voxels of 2 bytes = 400 bytes) is an error:

        >>> _ = (folder / "cut.nii").write_bytes((folder / "case.nii").read_bytes()[:-4])
        >>> read_medical_image(folder / "cut.nii")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        spine_lib.errors.MedicalImageError: .../cut.nii: truncated NIfTI file: header promises 400 bytes, ...
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputPathError(path, "image path does not exist") from None
    if stat.S_ISDIR(info.st_mode):
        return read_dicom_series(path, series_uid=series_uid)
    suffix = image_suffix(path)
    if suffix not in DICOM_SUFFIXES:
        volume_suffix(path)  # raises for unknown extensions
    if info.st_size == 0:
        raise MedicalImageError(path, "file is empty")
    if suffix in (".nii", ".nii.gz"):
        check_nifti_complete(path, info.st_size)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        kind = "DICOM file" if suffix in DICOM_SUFFIXES else VOLUME_SUFFIXES[suffix]
        raise MedicalImageError(path, f"cannot read {kind}: {itk_cause(error)}") from error
