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

    The write is atomic; MetaImage ``.mhd`` files move their data file in before the header.
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


