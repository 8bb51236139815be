"""Writing medical images and record tables, atomically."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from pydantic import BaseModel

from spine_lib.errors import MedicalImageError
from spine_lib.io.atomic import atomic_folder_write, atomic_path, atomic_write_text
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


def as_record(item: Mapping[str, Any] | BaseModel | Any) -> dict[str, Any]:
    """A plain dict of a mapping, pydantic model or dataclass instance."""
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, BaseModel):
        return item.model_dump()
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    raise TypeError(f"cannot turn {type(item).__name__} into a record")


def write_records_csv(
    records: Iterable[Mapping[str, Any] | BaseModel | Any],
    path: Path,
    columns: Sequence[str] | None = None,
) -> int:
    """Write records (dicts, pydantic models or dataclasses) as a CSV file atomically; return the row count.

    ``columns`` fixes the header (and lets an empty table still have one); otherwise the keys in order of
    first appearance across all records are used. Missing keys are written as empty cells.
    """
    rows = [as_record(r) for r in records]
    header: list[str] = list(columns) if columns is not None else []
    if columns is None:
        for row in rows:
            header.extend(k for k in row if k not in header)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path), buffer.getvalue())
    return len(rows)
