"""Report fields read out of OCR text and file names, and patients matched to MRI image folders.

```python
from spine_lib.matching import PatientMatcher, extract_fields

fields = extract_fields(lines)  # any form layout: .name, .patient_id, .birthday, .birth_year, .exam_date
result = PatientMatcher(Path("data/raw/Phenikaa/images")).match(
    fields.name or "", fields.birthday, fields.exam_date, birth_year=fields.birth_year
)
result.status, result.folder, result.reason                     # "matched" | "ambiguous" | "no_match"
```
"""

from spine_lib.matching.fields import (
    FormFields,
    clean_name,
    extract_fields,
    find_exam_date,
    find_labels,
    parse_birth,
    parse_patient_id,
    read_fields,
)
from spine_lib.matching.fuzzy import (
    ReportName,
    date_line_dates,
    fuzzy_value_extract,
    normalize_text,
    parse_birthday,
    parse_exam_date_line,
    parse_report_filename,
)
from spine_lib.matching.patients import ImageFolder, MatchResult, PatientMatcher, parse_folder_name

__all__ = [
    "FormFields",
    "ImageFolder",
    "MatchResult",
    "PatientMatcher",
    "ReportName",
    "clean_name",
    "date_line_dates",
    "extract_fields",
    "find_exam_date",
    "find_labels",
    "fuzzy_value_extract",
    "normalize_text",
    "parse_birth",
    "parse_birthday",
    "parse_exam_date_line",
    "parse_folder_name",
    "parse_patient_id",
    "parse_report_filename",
    "read_fields",
]
