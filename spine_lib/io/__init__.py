"""Medical image and table I/O: readers, atomic writers, tabular loading, intensity normalisation."""

from spine_lib.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from spine_lib.io.dicom import DicomSeriesInfo, write_dicom_series
from spine_lib.io.formats import image_suffix, strip_image_suffix
from spine_lib.io.readers import DicomSeries, list_dicom_series, read_dicom_series, read_medical_image
from spine_lib.io.tabular import TabularData, load_tabular_data
from spine_lib.io.transforms import normalize_to_uint8
from spine_lib.io.writers import write_medical_image, write_records_csv

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
    "strip_image_suffix",
    "write_dicom_series",
    "write_medical_image",
    "write_records_csv",
]
