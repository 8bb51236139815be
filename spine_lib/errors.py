"""One exception family for the whole library.

Every error names the thing it is about (a file, a folder, a schema) and the cause, so a message read in a log
or in the Dagster UI is enough to act on: ``MedicalImageError: data/raw/x.mha: cannot read image (corrupt
header)``.
"""

from __future__ import annotations

from pathlib import Path


class SpineVisionError(Exception):
    """Base class of every error raised on purpose by spine_lib.

    Args:
        subject: what the error is about (a file, a folder, a schema name); None when nothing in particular.
        cause: what is wrong with it, in words.

    Example:
        >>> error = MedicalImageError(Path("data/raw/x.mha"), "cannot read image (corrupt header)")
        >>> str(error)
        'data/raw/x.mha: cannot read image (corrupt header)'
        >>> isinstance(error, SpineVisionError), error.subject.name, error.cause
        (True, 'x.mha', 'cannot read image (corrupt header)')
        >>> str(ConfigError(None, "epochs must be positive"))
        'epochs must be positive'

        One ``except`` catches what any spine_lib function raises on purpose:

        >>> from spine_lib.io.readers import read_medical_image
        >>> try:
        ...     read_medical_image(Path("no/such/study.nii.gz"))
        ... except SpineVisionError as error:
        ...     print(type(error).__name__, "-", error)
        InputPathError - no/such/study.nii.gz: image path does not exist
    """

    def __init__(self, subject: str | Path | None, cause: str) -> None:
        self.subject = subject
        self.cause = cause
        super().__init__(f"{subject}: {cause}" if subject is not None else cause)


class InputPathError(SpineVisionError):
    """A path that should exist does not, or is of the wrong kind (file vs folder)."""


class UnsupportedFormatError(SpineVisionError):
    """A file whose extension no reader or writer handles."""


class MedicalImageError(SpineVisionError):
    """A medical image (DICOM, NIfTI, MetaImage, NRRD) that cannot be read or written."""


class DicomSeriesError(MedicalImageError):
    """A DICOM folder without a usable series (empty, or the requested series is absent)."""


class LabelSchemaError(SpineVisionError):
    """A malformed label schema, or a label value a schema does not map."""


class TabularDataError(SpineVisionError):
    """A label table that cannot be read or lacks a required column."""


class ConfigError(SpineVisionError):
    """A job configuration that cannot work (fails fast, before any item is processed)."""
