"""File-name conventions of medical image formats: which suffix means which format."""

from __future__ import annotations

from pathlib import Path

from spine_lib.errors import UnsupportedFormatError

#: Volume formats SimpleITK reads and writes by extension.
VOLUME_SUFFIXES: dict[str, str] = {
    ".nii.gz": "NIfTI (gzip)",
    ".nii": "NIfTI",
    ".mha": "MetaImage",
    ".mhd": "MetaImage (header + data file)",
    ".nrrd": "NRRD",
    ".nhdr": "NRRD (detached header)",
}
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")


def image_suffix(path: Path) -> str:
    """The format suffix of ``path``, lower-cased, with the double suffix ``.nii.gz`` kept whole."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def volume_suffix(path: Path) -> str:
    """The volume-format suffix of ``path``; raises :class:`UnsupportedFormatError` for anything else."""
    suffix = image_suffix(path)
    if suffix not in VOLUME_SUFFIXES:
        known = ", ".join(VOLUME_SUFFIXES)
        raise UnsupportedFormatError(path, f"unsupported extension {suffix or '(none)'!r}; expected one of {known}")
    return suffix


def strip_image_suffix(path: Path) -> str:
    """The file name of ``path`` without its format suffix (``case_0000.nii.gz`` -> ``case_0000``)."""
    name = Path(path).name
    suffix = image_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name
