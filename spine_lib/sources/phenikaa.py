"""The Phenikaa hospital export as it arrives: the one home of its names, patterns, labels and columns.

```
raw/Phenikaa/reports/     the inbox: ID-named scans (250010139.png) and patient-named PDFs
                          (NGUYEN_VAN_SON_20250718.pdf: the name and the exam date)
raw/Phenikaa/images/      one DICOM study folder per export: NAME[_YYYY]_YYYYMMDD[ (n)]
raw/Phenikaa/tables/      Excel/CSV label tables, one row per (patient, IVD label)
```

The label tables count discs from the top (IVD label 1 = L1/L2): the conversion is
:func:`spine_lib.levels.level_from_phenikaa_ivd_label`. The reports are Vietnamese forms whose patient fields
carry the labels of :data:`FIELD_LABELS` (any wording of a field, in any order, several on a line); names and
birthdays are PHI and never leave the raw data and the interim folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from spine_lib.core.checks import CheckOutcome
from spine_lib.core.layout import PHENIKAA_IMAGES as IMAGES
from spine_lib.core.layout import PHENIKAA_REPORTS as REPORTS
from spine_lib.core.layout import PHENIKAA_TABLES as TABLES
from spine_lib.errors import SpineVisionError

__all__ = [
    "BIRTHDAY_LABEL",
    "CITY_NAMES",
    "FIELD_LABELS",
    "FOLDER_FORMAT",
    "FOLDER_PATTERN",
    "ID_LABEL",
    "IMAGES",
    "LABEL_TABLE_COLUMNS",
    "NAME_LABEL",
    "OTHER_LABELS",
    "REPORTS",
    "REPORT_ID_STEM",
    "REPORT_NAME_STEM",
    "REPORT_SUFFIXES",
    "SAGITTAL_WORDS",
    "SEX_LABEL",
    "SIGNATURE_LABELS",
    "TABLES",
    "ReportField",
    "check_label_tables",
    "describe_phenikaa",
    "sagittal_series_type",
]

#: File types a report may arrive as.
REPORT_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf")
#: ``250010139.png``: the hospital's patient ID (9 ASCII digits today; 6-12 accepted).
REPORT_ID_STEM = re.compile(r"\d{6,12}", re.ASCII)
#: ``NGUYEN_VAN_SON`` or ``NGUYEN_VAN_SON_20250718``: at least two upper-case ASCII words, optional YYYYMMDD.
REPORT_NAME_STEM = re.compile(r"(?P<name>[A-Z]+(?:[_ ]+[A-Z]+)+)(?:[_ ]+(?P<date>\d{8}))?", re.ASCII)
#: A patient field of the report form.
ReportField = Literal["name", "patient_id", "birthday", "sex", "exam_date"]
#: Every wording a field's label may take on the hospital's forms, the preferred first (when a form carries two
#: of them, ``Số phiếu`` and ``Mã BN`` say, the earlier one is the field). Labels are compared in their
#: :func:`~spine_lib.matching.fuzzy.normalize_text` form, so each wording also stands for its spelling without
#: diacritics, in any case, with any punctuation (``"Ho va ten"``, ``"HỌ VÀ TÊN"``, ``"Mã BN."``), and OCR's
#: misspellings are matched fuzzily (:mod:`spine_lib.matching.fields`).
FIELD_LABELS: dict[ReportField, tuple[str, ...]] = {
    "name": (
        "Họ tên người bệnh", "Họ và tên người bệnh", "Họ tên bệnh nhân", "Họ và tên bệnh nhân", "Họ tên BN",
        "Tên bệnh nhân", "Tên người bệnh", "Họ và tên", "Họ tên",
    ),
    "patient_id": ("Số phiếu", "Mã phiếu", "Mã bệnh nhân", "Mã người bệnh", "Mã BN", "Mã số BN"),
    "birthday": ("Ngày sinh", "Ngày tháng năm sinh", "Ngày/tháng/năm sinh", "Năm sinh"),
    "sex": ("Giới tính", "Giới"),
    "exam_date": ("Ngày chụp", "Ngày chụp phim", "Ngày thực hiện", "Ngày khám"),
}
#: Labels a form carries besides those: never extracted, but a field's value ends where one of them begins.
OTHER_LABELS: tuple[str, ...] = (
    "Tuổi", "Địa chỉ", "Chẩn đoán", "Chỉ định", "Kỹ thuật", "Khoa", "Phòng", "Buồng", "Giường", "Nghề nghiệp",
    "Dân tộc", "Quốc tịch", "Điện thoại", "SĐT", "Số điện thoại", "Đối tượng", "BHYT", "Số BHYT", "Mã BHYT",
    "Số thẻ BHYT", "Nơi chỉ định", "Nơi gửi", "Bác sĩ chỉ định", "Bác sĩ điều trị", "Người nhà",
    "Họ tên người nhà", "Người liên hệ", "Ngày vào viện", "Ngày nhập viện", "Ngày in", "Ngày chỉ định",
    "Mô tả", "Kết luận", "Kết quả", "Đề nghị", "Lời dặn", "Ghi chú",
)
#: How the signature block under the report's date line begins (the reading doctor's title, then the name).
SIGNATURE_LABELS: tuple[str, ...] = (
    "Bác sĩ đọc kết quả", "Người đọc kết quả", "Bác sĩ chuyên khoa", "Trưởng khoa", "Kỹ thuật viên",
    "Người thực hiện", "Bác sĩ", "Bác sỹ", "ThS. BS.", "TS. BS.", "BSCKI", "BSCKII", "BS.",
)
#: Places a report's date line may start with (``"Hà Nội, ngày 18 tháng 07 năm 2025"``, ``"Hà Nội, 18/07/2025"``).
CITY_NAMES: tuple[str, ...] = ("Hà Nội", "Hà Đông", "TP. Hồ Chí Minh", "Hồ Chí Minh", "Hải Phòng", "Đà Nẵng")
#: The preferred label of each patient field (the wording the hospital's standard form uses).
NAME_LABEL = FIELD_LABELS["name"][0]
BIRTHDAY_LABEL = FIELD_LABELS["birthday"][0]
ID_LABEL = FIELD_LABELS["patient_id"][0]
SEX_LABEL = FIELD_LABELS["sex"][0]
#: ``NAME[_YYYY]_YYYYMMDD[ (n)]``: upper-case ASCII words joined by ``_``, birth year, exam date, copy counter.
FOLDER_PATTERN = re.compile(
    r"(?P<name>[A-Z]+(?:_[A-Z]+)*)(?:_(?P<year>\d{4}))?_(?P<date>\d{8})(?: \((?P<copy>\d+)\))?", re.ASCII
)
FOLDER_FORMAT = "NAME[_YYYY]_YYYYMMDD[ (n)]"
#: How the hospital's sequences describe themselves (``SeriesDescription``): the plane and the weighting, in any
#: order and case (``Sag T2 TSE``, ``T2_TSE_SAG_384``, ``t1w sag``, ``SAG STIR``).
SAGITTAL_WORDS = re.compile(r"(?<![a-z])sag(?:ittal)?(?![a-z])")
OTHER_PLANE_WORDS = re.compile(r"(?<![a-z])(?:ax|axial|tra|transverse|cor|coronal|localizer|scout)(?![a-z])")
T1_WORDS = re.compile(r"(?<![a-z0-9])t1(?:w|tse|fse|se)?(?![a-z0-9])")
T2_WORDS = re.compile(r"(?<![a-z0-9])t2(?:w|tse|fse|se)?(?![a-z0-9])")
STIR_WORDS = re.compile(r"(?<![a-z])(?:stir|tirm)(?![a-z])")
CONTRAST_WORDS = re.compile(r"(?<![a-z])(?:gd|post|contrast|c)(?![a-z])|\+c")
#: Column names of the label tables, spelt as the hospital spells them (``Pfirrman``, sic).
LABEL_TABLE_COLUMNS: tuple[str, ...] = (
    "Patient ID", "IVD label", "Modic", "UP endplate", "LOW endplate", "Spondylolisthesis", "Disc herniation",
    "Disc narrowing", "Disc bulging", "Pfirrman grade",
)


def sagittal_series_type(description: str) -> tuple[str, int] | None:
    """``('sag_t1' | 'sag_t2', rank)`` of a series description, None for anything but a sagittal T1/T2/STIR.

    A lower rank is preferred when a study holds several series of a kind: plain T2 before STIR (fat-suppressed),
    and a series without contrast agent before one with it.

    Example:
        >>> [sagittal_series_type(d) for d in ("Sag T2 TSE", "T1_TSE_SAG_320", "SAG STIR", "Ax T2", "Localizer")]
        [('sag_t2', 0), ('sag_t1', 0), ('sag_t2', 1), None, None]
    """
    text = re.sub(r"[^a-z0-9+]+", " ", description.lower().replace("_", " "))
    if not SAGITTAL_WORDS.search(text) or OTHER_PLANE_WORDS.search(text):
        return None
    contrast = 2 if CONTRAST_WORDS.search(text) else 0
    if T1_WORDS.search(text):
        return "sag_t1", contrast
    if T2_WORDS.search(text) and not STIR_WORDS.search(text):
        return "sag_t2", contrast
    if STIR_WORDS.search(text):
        return "sag_t2", 1 + contrast
    return None


def describe_phenikaa(root: Path) -> dict[str, int]:
    """Counts of a Phenikaa export: reports by kind, image folders, tables and their rows."""
    from spine_lib.io.tabular import load_tabular_data

    root = Path(root)
    reports = [p for p in (root / REPORTS).iterdir() if p.is_file()] if (root / REPORTS).is_dir() else []
    images = root / IMAGES
    tables = root / TABLES
    rows = 0
    if tables.is_dir() and any(tables.iterdir()):
        try:
            result = load_tabular_data(tables, missing="keep")
            rows = len(result.data) + len(result.dropped)
        except SpineVisionError:
            rows = 0
    return {
        "reports": len(reports),
        "png_reports": sum(p.suffix.lower() == ".png" for p in reports),
        "pdf_reports": sum(p.suffix.lower() == ".pdf" for p in reports),
        "image_folders": sum(1 for p in images.iterdir() if p.is_dir()) if images.is_dir() else 0,
        "tables": len([p for p in tables.iterdir() if p.is_file()]) if tables.is_dir() else 0,
        "label_rows": rows,
    }


def check_label_tables(root: Path, corrupted_ids: tuple[str, ...] = ()) -> tuple[CheckOutcome, dict[str, int]]:
    """Every label table parses; returns the outcome and how many rows were dropped for each reason."""
    from spine_lib.io.tabular import load_tabular_data, table_files

    tables = Path(root) / TABLES
    outcome = CheckOutcome()
    try:
        files = table_files(tables)
        result = load_tabular_data(tables, corrupted_ids=corrupted_ids)
    except SpineVisionError as error:
        outcome.problems.append(str(error))
        return outcome, {}
    outcome.checked = len(files)
    outcome.problems.extend(f"{path.name}: {reason}" for path, reason in result.rejected_files.items())
    return outcome, {"kept_rows": len(result.data), **result.dropped_reasons()}
