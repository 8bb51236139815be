"""Reading medical images: one entry point that recognises DICOM folders, single DICOM files and volumes."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk
from loguru import logger

from spine_lib.errors import DicomSeriesError, InputPathError, MedicalImageError, UnsupportedFormatError
from spine_lib.io.formats import DICOM_SUFFIXES, VOLUME_SUFFIXES, image_suffix

SERIES_UID_TAG = "0020|000e"
#: what :func:`read_medical_image` reads, in the words its errors use
EXPECTED_INPUT = (f"expected a volume ({', '.join(sorted(VOLUME_SUFFIXES))}), a DICOM file "
                  f"({', '.join(DICOM_SUFFIXES)}) or a DICOM folder")


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series found on disk: its UID, folder and files in slice order."""

    uid: str
    folder: Path
    files: tuple[Path, ...]

    @property
    def num_slices(self) -> int:
        return len(self.files)


def itk_cause(error: Exception, path: Path | None = None) -> str:
    """The useful line of an ITK exception, without ITK's source locations, object addresses and, when given,
    ``path`` (the error's subject names the file already)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = next((text for text in lines if "ERROR" in text or "Unable" in text or "Could not" in text),
                lines[-1] if lines else repr(error))
    if path is not None:
        for spelling in (str(path), Path(path).name):
            line = line.replace(f'"{spelling}"', "the file").replace(spelling, "the file")
    line = re.sub(r"^(?:sitk::ERROR:|ITK ERROR:|ERROR:)\s*", "", line)
    line = re.sub(r"\b\w+\(0x[0-9a-fA-F]+\):\s*", "", line)  # ITK's ``MetaImageIO(0x55d...):``
    line = re.sub(r"\s*the file(?: for reading)?[.:]?$", "", line)  # ``... the file for reading.``
    line = re.sub(r"\s+", " ", line).strip(" :.")
    return line[:200]


def read_failure(path: Path, kind: str, error: Exception) -> str:
    """Why ITK could not read ``path`` (a ``kind`` file), in words, then what a reader expects."""
    cause = itk_cause(error, path)
    if "Unable to determine ImageIO reader" in str(error):
        return f"cannot read {kind}: not an image (no image reader recognises its contents); {EXPECTED_INPUT}"
    return (f"cannot read {kind}: damaged or truncated, its header or pixel data cannot be read (ITK: {cause}); "
            f"{EXPECTED_INPUT}")


@contextlib.contextmanager
def quiet_itk() -> Iterator[None]:
    """ITK's global warnings off (GDCM's "No Series were found" and the like go to stderr, not to our errors)."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


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
                try:
                    header = stream.read(540)
                except gzip.BadGzipFile:
                    raise MedicalImageError(path, f"cannot read NIfTI (gzip): not gzip-compressed data, as a "
                                                  f".nii.gz file must be; {EXPECTED_INPUT}") from None
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
        raise MedicalImageError(path, f"cannot read NIfTI header: damaged or truncated ({error})") from None
    if not complete and compressed:
        raise MedicalImageError(path, f"truncated NIfTI file: the compressed data does not hold the {expected} "
                                      "bytes its header promises")
    if not complete:
        raise MedicalImageError(
            path, f"truncated NIfTI file: header promises {expected} bytes, file holds {actual} (uncompressed)"
        )


def series_uid_of(path: Path) -> str | None:
    """SeriesInstanceUID (0020,000E) of one DICOM file, read from its header only."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with quiet_itk():
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
        with quiet_itk():
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
            with quiet_itk():
                files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
            if len(files) == len(entries):
                return execute_series_reader(folder, files, "the only series")
    found = list_dicom_series(folder, recursive=recursive)
    if not found:
        raise DicomSeriesError(folder, f"no DICOM series found ({_folder_contents(folder, recursive)}); "
                                       f"{EXPECTED_INPUT}")
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


def _folder_contents(folder: Path, recursive: bool) -> str:
    """What a folder without a DICOM series holds, in words (``the folder is empty``, ``3 files, none DICOM``)."""
    files = [p for p in (folder.rglob("*") if recursive else folder.iterdir()) if p.is_file()]
    if not files:
        return "the folder is empty" if not any(folder.iterdir()) else "its folders hold no files"
    return f"{len(files)} file{'s' if len(files) != 1 else ''}, none a readable DICOM image"


def execute_series_reader(folder: Path, files: Sequence[str], what: str) -> sitk.Image:
    """Read the DICOM ``files`` of ``folder`` as one volume (``what`` names the series in errors)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files))
    try:
        with quiet_itk():
            return reader.Execute()
    except RuntimeError as error:
        raise MedicalImageError(folder, f"cannot read DICOM series {what}: damaged or truncated "
                                        f"({itk_cause(error, folder)})") from None


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
    if suffix not in DICOM_SUFFIXES and suffix not in VOLUME_SUFFIXES:
        raise UnsupportedFormatError(path, f"unsupported extension {suffix or '(none)'!r}; {EXPECTED_INPUT}")
    kind = "DICOM file" if suffix in DICOM_SUFFIXES else VOLUME_SUFFIXES[suffix]
    if info.st_size == 0:
        raise MedicalImageError(path, f"cannot read {kind}: the file is empty; {EXPECTED_INPUT}")
    if suffix in (".nii", ".nii.gz"):
        check_nifti_complete(path, info.st_size)
    try:
        with quiet_itk():
            return sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise MedicalImageError(path, read_failure(path, kind, error)) from None
