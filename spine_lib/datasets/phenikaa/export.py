"""Exporting matched patients' DICOM studies under their patient ID (names and birthdays removed by default).

Each patient's folder is built whole under a temporary name inside the export, then swapped into place: a run
killed mid-way leaves complete patient folders and temporaries (which the next run sweeps), never a half-written
folder under a patient ID. A file that is not a DICOM image (``Thumbs.db``, a ``README.txt``, a ``DICOMDIR``
index) is skipped and becomes a rejects row; a patient none of whose folders holds a DICOM file is not exported.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from loguru import logger

from spine_lib.core.phi import redact
from spine_lib.datasets.phenikaa.rejects import reject_row
from spine_lib.errors import MedicalImageError
from spine_lib.io.atomic import is_temporary

#: Attributes an anonymized export removes from every file (the name and ID become the patient ID).
IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "PatientBirthDate", "PatientBirthTime", "PatientBirthName", "PatientMotherBirthName", "OtherPatientNames",
    "OtherPatientIDs", "OtherPatientIDsSequence", "PatientAddress", "PatientTelephoneNumbers", "ResponsiblePerson",
)
#: The reason a patient's folder is not exported.
NO_SERIES = "image folder has no DICOM series"
NOT_DICOM = "not a DICOM file (no DICOM header): skipped"
DICOMDIR = "a DICOMDIR (the index of an export medium, not an image): skipped"
UNREADABLE = "unreadable DICOM file"
#: Media Storage Directory Storage: the SOP class of a DICOMDIR
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Stage names of the rejects table.
IMAGE_FILE_STAGE = "image_file"
IMAGE_FOLDER_STAGE = "image_folder"


@dataclass
class ImageExport:
    """What :func:`export_images` wrote (IDs, counts and pseudonymized rejects: no PHI)."""

    files: int = 0
    #: patient ID -> the export folder its images came from (the first of its folders that holds DICOM files)
    sources: dict[str, Path] = field(default_factory=dict)
    #: patient ID -> its folders, none of which holds a DICOM file (the patient is not exported)
    without_series: dict[str, list[Path]] = field(default_factory=dict)
    rejects: list[dict[str, str]] = field(default_factory=list)

    @property
    def files_skipped(self) -> int:
        return sum(r["stage"] == IMAGE_FILE_STAGE for r in self.rejects)


def export_images(folders: dict[str, list[Path]], target: Path, mode: str) -> ImageExport:
    """Put each matched patient's DICOM files under ``target/<patient_id>/`` (series sub-folders kept).

    ``anonymized`` rewrites each file with the patient's name and ID replaced by the patient ID and
    :data:`IDENTITY_ATTRIBUTES` removed; ``copy``/``hardlink`` keep the hospital's bytes. Repeat exports hold the
    same study: the first folder holding DICOM files is exported. ``target`` ends holding exactly the exported
    patients (a folder of a patient no longer exported goes).
    """
    if mode != "anonymized":
        logger.warning("image export {!r} keeps the hospital's DICOM headers: the exported files carry the patients' "
                       "names and birthdays (PHI outside the interim folder)", mode)
    target.mkdir(parents=True, exist_ok=True)
    result = ImageExport()
    for pid, sources in sorted(folders.items()):
        for source in sources:
            written = _export_study(source, target / pid, mode, result.rejects)
            if written:
                result.files += written
                result.sources[pid] = source
                break
        else:
            result.without_series[pid] = list(sources)
            result.rejects.extend(
                reject_row(IMAGE_FOLDER_STAGE, PurePath(source.name),
                           f"{NO_SERIES} (patient {pid}): the patient's labels are not exported")
                for source in sources
            )
    for entry in sorted(target.iterdir()):
        if entry.name not in result.sources and not is_temporary(entry):
            _discard(entry)
    return result


def _export_study(source: Path, destination: Path, mode: str, rejects: list[dict[str, str]]) -> int:
    """Build ``destination`` from the DICOM files of ``source``; returns how many (none: nothing changes)."""
    build = _temporary_folder(destination)
    try:
        count = 0
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = path.relative_to(source)
            problem = _export_file(path, build / exported_path(relative), destination.name, mode)
            if problem is None:
                count += 1
            else:
                rejects.append(reject_row(IMAGE_FILE_STAGE, relative, problem, folder=source.name))
        if count and not same_files(build, destination):  # an unchanged export keeps its files (and their times)
            _discard(destination)
            build.replace(destination)
        return count
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)


def same_files(first: Path, second: Path) -> bool:
    """Whether two folders hold the same files with the same bytes."""
    if not second.is_dir():
        return False

    def listing(root: Path) -> list[PurePath]:
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())

    names = listing(first)
    return names == listing(second) and all(filecmp.cmp(first / n, second / n, shallow=False) for n in names)


def exported_path(relative: PurePath) -> PurePath:
    """Where a file of a study folder goes in the patient's export: the same path, any patient-like name in it
    replaced by a pseudonym (a series sub-folder may be named after the patient).

    Example:
        >>> exported_path(PurePath("SAG_T2/1.dcm")), exported_path(PurePath("NGUYEN_VAN_SON_20250718/1.dcm"))
        (PurePosixPath('SAG_T2/1.dcm'), PurePosixPath('phi-c9186f3a18a22649/1.dcm'))
    """
    return PurePath(*(redact(part) for part in relative.parts))


def _export_file(source: Path, destination: Path, pid: str, mode: str) -> str | None:
    """Write one file into the patient's export; returns why it is skipped (``None``: written)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(source, stop_before_pixels=mode != "anonymized")
    except InvalidDicomError:
        return NOT_DICOM
    except Exception as error:  # pydicom raises many types for a damaged file
        return f"{UNREADABLE} ({type(error).__name__}: {redact(str(error), paths=[source.name])})"
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_SOP_CLASS:
        return DICOMDIR
    if len(dataset) == 0:
        return f"{UNREADABLE} (a DICOM header and no data elements)"
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        if mode == "hardlink":
            os.link(source, destination)
        elif mode == "copy":
            shutil.copyfile(source, destination)
        else:
            dataset.PatientName = pid
            dataset.PatientID = pid
            for keyword in IDENTITY_ATTRIBUTES:
                if keyword in dataset:
                    delattr(dataset, keyword)
            dataset.save_as(destination, enforce_file_format=True)
    except OSError as error:  # the export's disk, not the input: the job cannot go on
        raise MedicalImageError(destination.parent, f"cannot write the export ({error.strerror or error})") from error
    except Exception as error:  # a header pydicom reads but cannot write back
        return f"{UNREADABLE} (cannot be written back: {type(error).__name__}: {redact(str(error), paths=[source.name])})"
    return None


def _temporary_folder(target: Path) -> Path:
    """A new empty folder next to ``target``, named as :func:`~spine_lib.io.atomic.is_temporary` recognises."""
    folder = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    folder.mkdir()
    return folder


def _discard(path: Path) -> None:
    """Remove a file or folder; a folder is first renamed to a temporary, so it goes as a whole."""
    if path.is_dir() and not path.is_symlink():
        doomed = _temporary_folder(path)
        path.replace(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
