"""Medical image and table I/O: readers, atomic writers, tabular loading, intensity normalisation.

Names are imported lazily: ``spine_lib.io.atomic`` alone must not pull in pandas, pydicom and SimpleITK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spine_lib.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
    from spine_lib.io.dicom import DicomSeriesInfo, write_dicom_series
    from spine_lib.io.formats import image_suffix, strip_image_suffix
    from spine_lib.io.readers import DicomSeries, list_dicom_series, read_dicom_series, read_medical_image
    from spine_lib.io.records import read_records_csv, write_records_csv
    from spine_lib.io.tabular import TabularData, load_tabular_data
    from spine_lib.io.transforms import normalize_to_uint8
    from spine_lib.io.writers import write_medical_image

_HOMES = {
    "atomic_path": "atomic",
    "atomic_write_bytes": "atomic",
    "atomic_write_text": "atomic",
    "DicomSeriesInfo": "dicom",
    "write_dicom_series": "dicom",
    "image_suffix": "formats",
    "strip_image_suffix": "formats",
    "DicomSeries": "readers",
    "list_dicom_series": "readers",
    "read_dicom_series": "readers",
    "read_medical_image": "readers",
    "TabularData": "tabular",
    "load_tabular_data": "tabular",
    "normalize_to_uint8": "transforms",
    "write_medical_image": "writers",
    "read_records_csv": "records",
    "write_records_csv": "records",
}
__all__ = [
    "DicomSeries",
    "DicomSeriesInfo",
    "TabularData",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "image_suffix",
    "list_dicom_series",
    "load_tabular_data",
    "normalize_to_uint8",
    "read_dicom_series",
    "read_medical_image",
    "read_records_csv",
    "strip_image_suffix",
    "write_dicom_series",
    "write_medical_image",
    "write_records_csv",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"spine_lib.io.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
