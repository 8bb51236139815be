"""Writing medical images, atomically."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from spine_lib.errors import MedicalImageError
from spine_lib.io.atomic import atomic_folder_write, atomic_path
from spine_lib.io.formats import volume_suffix
from spine_lib.io.readers import itk_cause


def write_medical_image(image: sitk.Image, path: Path, compress: bool = True) -> Path:
    """Write ``image`` in the format its extension names (compressed unless ``compress`` is False).

    The write is atomic: the file appears complete or not at all. Formats written as a header plus a data
    file (MetaImage ``.mhd``, NRRD ``.nhdr``) move the data file in before the header.

    Args:
        image: the image; its spacing, origin and direction are written with it.
        path: the file to write (its folder is created); the extension (``.nii.gz``, ``.nii``, ``.mha``,
            ``.mhd``, ``.nrrd``, ``.nhdr``) picks the format.
        compress: compress the voxel data (a ``.mhd`` header then names a ``.zraw`` data file, else ``.raw``).

    Returns:
        ``path``.

    Raises:
        UnsupportedFormatError: the extension is not a volume format (DICOM series have their own writer).
        MedicalImageError: ITK cannot write the file.

    Example:
        >>> import tempfile
        >>> import SimpleITK as sitk
        >>> folder = Path(tempfile.mkdtemp())
        >>> image = sitk.Image([4, 3, 2], sitk.sitkUInt8)
        >>> image.SetSpacing((0.5, 0.5, 3.0))
        >>> write_medical_image(image, folder / "case_0000.mhd").name
        'case_0000.mhd'
        >>> _ = write_medical_image(image, folder / "plain.mhd", compress=False)
        >>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
        ['case_0000.mhd', 'case_0000.zraw', 'plain.mhd', 'plain.raw']
        >>> sitk.ReadImage(str(folder / "case_0000.mhd")).GetSpacing()
        (0.5, 0.5, 3.0)
        >>> write_medical_image(image, folder / "case_0000.png")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        spine_lib.errors.UnsupportedFormatError: .../case_0000.png: unsupported extension '.png'; expected one of ...
    """
    path = Path(path)
    suffix = volume_suffix(path)
    writer = atomic_folder_write if suffix in (".mhd", ".nhdr") else atomic_path
    try:
        with writer(path) as tmp:
            sitk.WriteImage(image, str(tmp), useCompression=compress)
    except RuntimeError as error:
        raise MedicalImageError(path, f"cannot write image: {itk_cause(error)}") from error
    return path


