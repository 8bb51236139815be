"""Report fields read out of OCR text and file names, and patients matched to MRI image folders.

```python
from spine_lib.matching import PatientMatcher, fuzzy_value_extract, parse_birthday

name = fuzzy_value_extract(lines, "Họ tên người bệnh")           # "NGUYỄN VĂN SƠN", however OCR spelt the label
birthday = parse_birthday(fuzzy_value_extract(lines, "Ngày sinh"))
result = PatientMatcher(Path("data/raw/Phenikaa/images")).match(name, birthday, exam_date)
result.status, result.folder, result.reason                     # "matched" | "ambiguous" | "no_match"
```
"""

from spine_lib.matching.fuzzy import (
    ReportName,
    fuzzy_value_extract,
    normalize_text,
    parse_birthday,
    parse_exam_date_line,
    parse_report_filename,
)
from spine_lib.matching.patients import ImageFolder, MatchResult, PatientMatcher, parse_folder_name

__all__ = [
    "ImageFolder",
    "MatchResult",
    "PatientMatcher",
    "ReportName",
    "fuzzy_value_extract",
    "normalize_text",
    "parse_birthday",
    "parse_exam_date_line",
    "parse_folder_name",
    "parse_report_filename",
]
