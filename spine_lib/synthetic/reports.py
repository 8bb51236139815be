"""Vietnamese lumbar-spine MRI reports of the Phenikaa export, rendered as PNG "scans" or PDFs.

:func:`report_lines` writes the report text (one field per line, findings from per-disc grades);
:func:`render_report_png` draws it on an A4 page, optionally degraded like a scan (rotation, noise, blur,
JPEG); :func:`render_report_pdf` writes it as a PDF with a real text layer or as an image-only scan. All
randomness comes from the ``rng`` argument: the same generator state gives the same bytes.

Reports as a hospital inbox really holds them (:data:`REPORT_KINDS`): pages fed sideways or upside down (PNG
and image-only PDF), colour scans with a round red stamp over the name or birthday line and a blue signature,
other form layouts and label wordings (``Họ và tên:``, ``Tên bệnh nhân:``, ``Mã phiếu:``, several fields per
line, the birthday above the name), year-only birthdays (``Năm sinh: 1975``), a signature block under the date
line, phone photos (perspective, shading, EXIF orientation) and two-page scans. :func:`write_report` writes
one of a kind and returns its :class:`ReportTruth`; :func:`write_report_set` writes N of each kind.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
from fontTools.ttLib import TTFont  # a dependency of fpdf2
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from spine_lib.errors import ConfigError, LabelSchemaError
from spine_lib.io.atomic import atomic_write_bytes
from spine_lib.labels import gradings as g
from spine_lib.levels import LEVEL_TO_IDX, LEVELS, check_level
from spine_lib.sources.phenikaa import BIRTHDAY_LABEL, ID_LABEL, NAME_LABEL, SEX_LABEL
from spine_lib.synthetic.people import SyntheticPatient, ascii_name, make_patients

__all__ = [
    "FONT_CANDIDATES",
    "MAX_LINE_CHARS",
    "REPORT_KINDS",
    "TRAITS",
    "FormStyle",
    "ReportTruth",
    "find_font",
    "form_rows",
    "random_findings",
    "random_form_style",
    "render_report_pdf",
    "render_report_png",
    "report_lines",
    "write_report",
    "write_report_set",
]

HOSPITAL = "BỆNH VIỆN ĐẠI HỌC PHENIKAA"
DEPARTMENT = "KHOA CHẨN ĐOÁN HÌNH ẢNH"
TITLE = "KẾT QUẢ CHỤP CỘNG HƯỞNG TỪ CỘT SỐNG THẮT LƯNG"
FINDINGS_HEADER = "MÔ TẢ:"
CONCLUSION_HEADER = "KẾT LUẬN:"
CITY = "Hà Nội"

#: Longest line :func:`report_lines` writes (fits an A4 text width at 12 pt DejaVuSans and at 32 px / 200 dpi).
MAX_LINE_CHARS = 66

#: Fonts with Vietnamese glyphs, tried in order (Debian packages fonts-dejavu-core, fonts-noto-core).
FONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
)
#: Characters a font must have to render Vietnamese (precomposed vowels with tone marks, đ, ơ, ư, ă).
VIETNAMESE_PROBE = "ĂăÂâĐđÊêÔôƠơƯưẠạẢảẤấẦầẨẩẪẫẬậẮắẶặẸẹẾếỀềỂểỄễỆệỈỉỊịỌọỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"

INDICATIONS: tuple[str, ...] = (
    "Đau thắt lưng lan xuống chân",
    "Đau cột sống thắt lưng kéo dài",
    "Tê bì chân, đau thắt lưng",
    "Hạn chế vận động cột sống thắt lưng",
)
TECHNIQUE = "Chụp CHT 1.5 Tesla, các chuỗi xung T1W, T2W, STIR, Sagittal, Axial."

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}
_GRADE_KEYS: tuple[str, ...] = (
    g.PFIRRMANN_GRADE, g.MODIC, g.DISC_HERNIATION, g.DISC_BULGING, g.DISC_NARROWING,
    g.SPONDYLOLISTHESIS, g.UP_ENDPLATE, g.LOW_ENDPLATE,
)  # fmt: skip
_DATE_LINE = re.compile(r"ngày (\d{1,2}) tháng (\d{1,2}) năm (\d{4})")
_A4_MM = (210.0, 297.0)


# --------------------------------------------------------------------------------------------------- text
def _vertebrae(level: str) -> tuple[str, str]:
    upper, lower = level.split("/")
    return upper, lower


def _canonical_level(level: str) -> str:
    try:
        return check_level(level)
    except ValueError as error:
        raise LabelSchemaError(f"findings[{level!r}]", str(error)) from None


def _normalise_grades(level: str, grades: dict[str, int]) -> dict[str, int]:
    """Grades under the canonical column names (``herniation`` -> ``disc_herniation``), defaults for missing keys."""
    out = {key: 0 for key in _GRADE_KEYS} | {g.PFIRRMANN_GRADE: 1}
    for key, value in grades.items():
        name = g.normalize_column_name(key)
        if name not in out:
            raise LabelSchemaError(f"findings[{level!r}]", f"unknown grade {key!r}")
        low, high = g.VALUE_RANGES[name]
        if not low <= int(value) <= high:
            raise LabelSchemaError(f"findings[{level!r}]", f"{key}={value} outside {low}..{high}")
        out[name] = int(value)
    return out


def _level_findings(level: str, grades: dict[str, int]) -> tuple[list[str], list[str]]:
    """Description sentences and conclusion items for one disc (both empty when the disc is normal)."""
    upper, lower = _vertebrae(level)
    pfirrmann = grades[g.PFIRRMANN_GRADE]
    sentences: list[str] = []
    conclusion: list[str] = []
    if grades[g.DISC_HERNIATION] and grades[g.DISC_BULGING]:
        sentences.append(f"Đĩa đệm {level}: phình lồi, thoát vị khu trú ra sau, chèn ép bao màng cứng.")
        conclusion.append(f"Phình lồi, thoát vị đĩa đệm {level}.")
    elif grades[g.DISC_HERNIATION]:
        sentences.append(f"Đĩa đệm {level}: thoát vị ra sau, chèn ép bao màng cứng.")
        conclusion.append(f"Thoát vị đĩa đệm {level}.")
    elif grades[g.DISC_BULGING]:
        sentences.append(f"Đĩa đệm {level}: phình lồi ra sau, chưa chèn ép rễ thần kinh.")
        conclusion.append(f"Phình lồi đĩa đệm {level}.")
    if pfirrmann >= 3:
        narrowing = ", hẹp khoang gian đốt" if grades[g.DISC_NARROWING] else ""
        sentences.append(f"Thoái hóa đĩa đệm {level} (Pfirrmann {_ROMAN[pfirrmann]}){narrowing}.")
        conclusion.append(f"Thoái hóa đĩa đệm {level} (Pfirrmann {_ROMAN[pfirrmann]}).")
    elif grades[g.DISC_NARROWING]:
        sentences.append(f"Hẹp khoang gian đốt {level}.")
        conclusion.append(f"Hẹp khoang gian đốt {level}.")
    if grades[g.MODIC]:
        sentences.append(f"Biến đổi Modic type {grades[g.MODIC]} tại bờ thân đốt sống kế cận đĩa đệm {level}.")
        conclusion.append(f"Biến đổi Modic type {grades[g.MODIC]} {level}.")
    endplates = [
        text
        for key, text in ((g.UP_ENDPLATE, f"bờ dưới thân {upper}"), (g.LOW_ENDPLATE, f"bờ trên thân {lower}"))
        if grades[key]
    ]
    if endplates:
        sentences.append(f"Tổn thương tấm tận đĩa đệm {level} ({', '.join(endplates)}).")
        conclusion.append(f"Tổn thương tấm tận {level}.")
    if grades[g.SPONDYLOLISTHESIS]:
        sentences.append(f"Trượt thân đốt sống {upper} ra trước so với {lower}.")
        conclusion.append(f"Trượt đốt sống {upper}/{lower}.")
    return sentences, conclusion


def _wrap(text: str, prefix: str = "- ") -> list[str]:
    return textwrap.wrap(
        text, width=MAX_LINE_CHARS, initial_indent=prefix, subsequent_indent=" " * len(prefix), break_on_hyphens=False
    )


def _date_line(day: date) -> str:
    return f"{CITY}, ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def report_lines(patient: SyntheticPatient, findings: dict[str, dict[str, int]]) -> list[str]:
    """The report text, one field per line, lines at most :data:`MAX_LINE_CHARS` long.

    ``findings`` maps a level (``"L4/L5"``) to its grades: ``pfirrmann`` 1-5, ``modic`` 0-3 and 0/1 for
    ``herniation``, ``bulging``, ``narrowing``, ``spondylolisthesis``, ``up_endplate``, ``low_endplate`` (the
    grading-table spellings such as ``disc_herniation`` work too; levels as :func:`spine_lib.levels.check_level`
    accepts them). Missing keys are normal (Pfirrmann 1, 0); levels absent from ``findings`` are reported as
    normal. Invalid levels, keys or values raise LabelSchemaError.
    """
    by_level = {_canonical_level(level): grades for level, grades in findings.items()}
    described: list[str] = []
    concluded: list[str] = []
    normal = len(LEVELS) - len(by_level)  # levels without findings are normal
    for level in sorted(by_level, key=LEVEL_TO_IDX.__getitem__):
        sentences, items = _level_findings(level, _normalise_grades(level, by_level[level]))
        described.extend(sentences)
        concluded.extend(items)
        normal += not sentences
    if not described:
        described.append("Các đĩa đệm cột sống thắt lưng chưa thấy bất thường.")
        concluded.append("Hiện tại chưa phát hiện bất thường cột sống thắt lưng trên phim CHT.")
    elif normal:
        described.append("Các đĩa đệm còn lại chưa thấy bất thường.")
    indication = INDICATIONS[int(patient.patient_id) % len(INDICATIONS)]
    header = [
        HOSPITAL,
        DEPARTMENT,
        TITLE,
        f"{NAME_LABEL}: {patient.full_name.upper()}",
        f"{BIRTHDAY_LABEL}: {patient.birthday:%d/%m/%Y}",
        f"{SEX_LABEL}: {patient.sex}",
        f"{ID_LABEL}: {patient.patient_id}",
        *_wrap(f"Chỉ định: {indication}.", prefix=""),
        *_wrap(f"Kỹ thuật: {TECHNIQUE}", prefix=""),
        FINDINGS_HEADER,
    ]
    body = [line for sentence in described for line in _wrap(sentence)]
    conclusion = [line for item in concluded for line in _wrap(item)]
    return [*header, *body, CONCLUSION_HEADER, *conclusion, _date_line(patient.exam_date)]


# --------------------------------------------------------------------------------------------------- fonts
@functools.lru_cache(maxsize=8)
def _first_vietnamese_font(candidates: tuple[Path, ...]) -> Path | None:
    for path in candidates:
        if not path.is_file():
            continue
        try:
            cmap = TTFont(str(path), lazy=True).getBestCmap() or {}
        except Exception:  # unreadable or not a font: try the next one
            continue
        if all(ord(ch) in cmap for ch in VIETNAMESE_PROBE):
            return path
    return None


def find_font() -> Path:
    """The first of :data:`FONT_CANDIDATES` that has every Vietnamese glyph; ConfigError when none has."""
    path = _first_vietnamese_font(tuple(FONT_CANDIDATES))
    if path is None:
        searched = ", ".join(str(p) for p in FONT_CANDIDATES)
        raise ConfigError(
            "report fonts",
            f"no font with Vietnamese glyphs found (searched {searched}); "
            "install the Debian package fonts-dejavu-core",
        )
    return path


# --------------------------------------------------------------------------------------------------- PNG
def _page_size_px(dpi: int) -> tuple[int, int]:
    return round(_A4_MM[0] / 25.4 * dpi), round(_A4_MM[1] / 25.4 * dpi)


def _draw_page(lines: list[str], dpi: int) -> Image.Image:
    """A clean white A4 page ("L" mode) with the lines in black; shrinks spacing, then font, to fit the page."""
    width, height = _page_size_px(dpi)
    margin_x, margin_top = round(20 / 25.4 * dpi), round(18 / 25.4 * dpi)
    usable = height - 2 * margin_top
    font_px = round(32 * dpi / 200)
    spacing = 1.5
    n = max(len(lines) + 1, 1)  # one blank line of room after the title
    if n * font_px * spacing > usable:
        spacing = max(1.15, usable / (n * font_px))
        font_px = min(font_px, int(usable / (n * spacing)))
    font = ImageFont.truetype(str(find_font()), size=font_px)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = float(margin_top)
    for line in lines:
        text_width = draw.textlength(line, font=font)
        if line == TITLE:
            y += font_px * spacing / 2
            x = (width - text_width) / 2
        elif _DATE_LINE.search(line) and line.startswith(CITY):
            x = width - margin_x - text_width
        else:
            x = margin_x
        draw.text((x, y), line, font=font, fill=0)
        y += font_px * spacing + (font_px * spacing / 2 if line == TITLE else 0)
    return page


def _scan(page: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, bytes]:
    """Degrade a page like a scan: small rotation, blur, paper tint and noise, JPEG at quality 40-60.

    Returns the decoded scan and its JPEG bytes.
    """
    angle = float(rng.uniform(0.5, 2.0)) * (1 if rng.random() < 0.5 else -1)
    rotated = page.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=255)
    blurred = rotated.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 0.9))))
    paper = float(rng.uniform(232, 248))
    ink = float(rng.uniform(15, 45))
    pixels = np.asarray(blurred, dtype=np.float32) / 255.0
    sigma = float(rng.uniform(5, 10))
    pixels = ink + pixels * (paper - ink) + sigma * rng.standard_normal(size=pixels.shape, dtype=np.float32)
    noisy = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG", quality=int(rng.integers(40, 61)))
    jpeg = buffer.getvalue()
    return Image.open(io.BytesIO(jpeg)).convert("L"), jpeg


def render_report_png(
    lines: list[str], path: Path, *, scanned: bool, rng: np.random.Generator, dpi: int = 200
) -> Path:
    """Draw ``lines`` on an A4 page at ``dpi`` (1654x2339 at 200) and write it as a grayscale PNG, atomically.

    ``scanned=True`` degrades the page like a scan (all randomness from ``rng``); a clean page draws nothing
    from ``rng``.
    """
    page = _draw_page(lines, dpi)
    if scanned:
        page, _ = _scan(page, rng)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG", dpi=(dpi, dpi), compress_level=1)  # 4x faster than 6 on noise, ~15% larger
    return atomic_write_bytes(Path(path), buffer.getvalue())


# --------------------------------------------------------------------------------------------------- PDF
def _creation_date(lines: list[str]) -> datetime:
    """A fixed creation date for byte-identical PDFs: the report's date line at 16:00 UTC (else 2025-01-01)."""
    for line in reversed(lines):
        match = _DATE_LINE.search(line)
        if match:
            day, month, year = (int(x) for x in match.groups())
            try:
                return datetime.combine(date(year, month, day), time(16, 0), tzinfo=UTC)
            except ValueError:
                break
    return datetime(2025, 1, 1, 16, 0, tzinfo=UTC)


def render_report_pdf(lines: list[str], path: Path, *, text_layer: bool, rng: np.random.Generator) -> Path:
    """Write ``lines`` as a one-page A4 PDF, atomically; same inputs and ``rng`` state give the same bytes.

    ``text_layer=True``: real text in DejaVuSans (extractable, with diacritics; draws nothing from ``rng``).
    ``text_layer=False``: an image-only scan, the page rendered at 200 dpi with scan effects and embedded as a
    full-page JPEG, with no text at all.
    """
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(_creation_date(lines))
    pdf.set_producer("spine_lib.synthetic.reports")
    pdf.set_title(TITLE)
    pdf.set_lang("vi")
    pdf.add_page()
    if text_layer:
        pdf.add_font("DejaVu", "", str(find_font()))
        pdf.set_font("DejaVu", size=12)
        pdf.set_margins(20, 18, 20)
        pdf.set_y(18)
        line_h = max(4.8, min(7.0, (_A4_MM[1] - 2 * 18 - 6) / max(len(lines), 1)))  # one page when it fits
        for line in lines:
            align = "C" if line == TITLE else "R" if line.startswith(CITY) and _DATE_LINE.search(line) else "L"
            if line == TITLE:
                pdf.ln(3)
            pdf.cell(w=0, h=line_h, text=line, align=align, new_x="LMARGIN", new_y="NEXT")
            if line == TITLE:
                pdf.ln(3)
    else:
        _, jpeg = _scan(_draw_page(lines, 200), rng)
        pdf.image(io.BytesIO(jpeg), x=0, y=0, w=_A4_MM[0], h=_A4_MM[1])
    return atomic_write_bytes(Path(path), bytes(pdf.output()))


# --------------------------------------------------------------------------------------------------- report kinds
PLAIN = "plain"  # the usual form, scanned: the reference the other kinds are compared with
ROTATED_PNG = "rotated_png"  # a scan fed sideways or upside down
ROTATED_PDF = "rotated_pdf"  # an image-only PDF whose page is turned
STAMPED = "stamped"  # a colour scan with a round red stamp over the name or birthday line
LAYOUT = "layout"  # another form: other label wordings, several fields per line, the birthday above the name
YEAR_ONLY = "year_only"  # "Năm sinh: 1975"
SIGNATURE = "signature"  # a signature block (date, "BÁC SĨ ĐỌC KẾT QUẢ", the doctor) closes the report
PHOTO = "photo"  # a phone photo of the page: perspective, shading, JPEG, sometimes an EXIF orientation
MULTIPAGE = "multipage"  # a two-page image-only PDF, the second page sometimes turned
#: Every kind :func:`write_report` writes.
REPORT_KINDS: tuple[str, ...] = (
    PLAIN, ROTATED_PNG, ROTATED_PDF, STAMPED, LAYOUT, YEAR_ONLY, SIGNATURE, PHOTO, MULTIPAGE,
)  # fmt: skip
ROTATED = "rotated"
COLOUR = "colour"
#: What a report may have whatever its kind (a report of one kind often has several).
TRAITS: tuple[str, ...] = (ROTATED, STAMPED, COLOUR, LAYOUT, YEAR_ONLY, SIGNATURE, PHOTO, MULTIPAGE)

#: Label wordings of the patient fields on the forms of different departments and years.
NAME_LABELS: tuple[str, ...] = (NAME_LABEL, "Họ và tên", "Họ tên BN", "Tên bệnh nhân")
ID_LABELS: tuple[str, ...] = (ID_LABEL, "Mã phiếu")
SEX_LABELS: tuple[str, ...] = (SEX_LABEL, "Giới")
YEAR_LABEL = "Năm sinh"
ONE_PER_LINE = "one_per_line"
ID_RIGHT_OF_NAME = "id_right_of_name"
BIRTHDAY_ABOVE_NAME = "birthday_above_name"
THREE_PER_LINE = "three_per_line"
#: How a form arranges its patient fields.
ARRANGEMENTS: tuple[str, ...] = (ONE_PER_LINE, ID_RIGHT_OF_NAME, BIRTHDAY_ABOVE_NAME, THREE_PER_LINE)
DATE_LINE_STYLES: tuple[str, ...] = ("city", "plain", "numeric")
FONT_FAMILIES: tuple[str, ...] = ("sans", "serif", "condensed")
_FONT_FILES = {"sans": "DejaVuSans", "serif": "DejaVuSerif", "condensed": "DejaVuSansCondensed"}
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

COUNTRY = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
FORM_TITLE = "PHIẾU KẾT QUẢ CHỤP CỘNG HƯỞNG TỪ"
FORM_SUBTITLE = "CỘT SỐNG THẮT LƯNG"
READER_TITLE = "BÁC SĨ ĐỌC KẾT QUẢ"
TECHNICIAN_TITLE = "KỸ THUẬT VIÊN"
SIGN_HINT = "(Ký, ghi rõ họ tên)"
STAMP_TEXT = "BỆNH VIỆN ĐẠI HỌC PHENIKAA * P. YÊN NGHĨA - HÀ ĐÔNG *"
DOCTORS: tuple[str, ...] = (
    "ThS. BS. Trần Minh Đức", "BS. CKI. Nguyễn Thị Hồng Nhung", "BS. Lê Quang Huy", "TS. BS. Phạm Văn Toàn",
    "BS. Đỗ Thị Thanh Vân", "ThS. BS. Vũ Hải Long", "BS. CKII. Hoàng Thị Mai", "BS. Bùi Đức Thắng",
)  # fmt: skip
ADDRESSES: tuple[str, ...] = (
    "Hà Đông, Hà Nội", "Số 12 ngõ 45 Quang Trung, Hà Đông, Hà Nội", "Nam Từ Liêm, Hà Nội", "Thanh Xuân, Hà Nội",
    "Hoài Đức, Hà Nội", "Phủ Lý, Hà Nam", "Từ Sơn, Bắc Ninh", "Số 3 Trần Phú, Văn Quán, Hà Đông",
)  # fmt: skip
_RED_INKS = ((214, 38, 52), (196, 30, 60), (226, 62, 70), (183, 36, 88))
_BLUE_INKS = ((28, 52, 168), (40, 70, 190), (22, 36, 120), (52, 40, 150))


@dataclass(frozen=True)
class FormStyle:
    """How one report form prints its header, patient fields and close. ``FormStyle()`` is the usual form."""

    arrangement: str = ONE_PER_LINE
    name_label: str = NAME_LABEL
    id_label: str = ID_LABEL
    sex_label: str = SEX_LABEL
    year_only: bool = False  # "Năm sinh: 1975" instead of "Ngày sinh: 05/03/1975"
    date_format: str = "%d/%m/%Y"  # a full birthday as printed
    name_case: str = "upper"  # "upper" or "title"
    two_column_header: bool = False  # the hospital on the left, the national motto on the right
    extras: bool = False  # address, age, insurance number and referring doctor: fields that are not ours
    signature: bool = False  # date, "BÁC SĨ ĐỌC KẾT QUẢ", a signature and the doctor's name close the report
    date_line: str = "city"  # "city": Hà Nội, ngày 18 tháng 07 năm 2025; "plain": Ngày 18 tháng 7 năm 2025
    font: str = "sans"
    font_px: int = 32  # body text height at 200 dpi

    @property
    def is_usual(self) -> bool:
        """Whether the patient fields are printed as on the usual form (labels, order, one field per line)."""
        return (self.arrangement, self.name_label, self.id_label, self.sex_label, self.year_only) == (
            ONE_PER_LINE, NAME_LABEL, ID_LABEL, SEX_LABEL, False,
        ) and not self.two_column_header  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """Text at a place on a row: ``at`` is the left edge ("L"), centre ("C") or right edge ("R") of the text,
    as a fraction of the text width."""

    text: str
    at: float = 0.0
    align: str = "L"
    bold: bool = False
    scale: float = 1.0  # font size relative to the body text
    field: str = ""  # the patient field the cell prints ("name", "id", "birthday", "sex"), if any


@dataclass(frozen=True)
class Row:
    """One printed row of a form."""

    cells: tuple[Cell, ...]
    role: str = ""  # "title", "date", "reader", "sign", "doctor", "footer" or ""
    gap: float = 0.0  # extra space above, in line heights

    @property
    def text(self) -> str:
        """The row's text, cells joined by one space."""
        return " ".join(cell.text for cell in self.cells if cell.text)

    @property
    def fields(self) -> tuple[str, ...]:
        """The patient fields the row holds, left to right."""
        return tuple(cell.field for cell in self.cells if cell.field)


@dataclass(frozen=True)
class ReportTruth:
    """What one written report holds and how it was made: the reference its reading is scored against."""

    file: str
    kind: str
    traits: tuple[str, ...]  # the kind's own trait first, then what else the report has (see TRAITS)
    patient_id: str
    full_name: str
    name_printed: str  # the name as the form prints it (upper or title case, diacritics kept)
    birthday: str | None  # ISO date; None when the form prints only the year
    birth_year: int
    sex: str
    exam_date: str  # ISO date
    pages: int
    rotations: tuple[int, ...]  # per page: clockwise degrees that turn the page upright (after EXIF)
    exif_orientation: int  # the JPEG's EXIF orientation tag (1: none)
    stamp_over: str | None  # "name" or "birthday": the field line under the red stamp
    arrangement: str
    labels: dict[str, str] = field(default_factory=dict)  # field -> label printed
    field_lines: dict[str, str] = field(default_factory=dict)  # field -> text of the row that holds it
    lines: tuple[tuple[str, ...], ...] = ()  # per page, the text of every printed row

    def as_dict(self) -> dict[str, Any]:
        """The truth as JSON-ready values."""
        out = asdict(self)
        out["traits"] = list(self.traits)
        out["rotations"] = list(self.rotations)
        out["lines"] = [list(page) for page in self.lines]
        return out


# --------------------------------------------------------------------------------------------------- form text
def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def random_form_style(rng: np.random.Generator, *, other_layout: bool | None = None, year_only: bool = False,
                      signature: bool = False) -> FormStyle:
    """A form style drawn from ``rng``: the usual form or (``other_layout``; drawn when None) another one."""
    if other_layout is None:
        other_layout = bool(rng.random() < 0.5)
    font = str(_pick(rng, FONT_FAMILIES))
    font_px = int(rng.integers(29, 35))
    date_line = str(rng.choice(DATE_LINE_STYLES, p=[0.55, 0.3, 0.15]))
    date_format = str(rng.choice(["%d/%m/%Y", "%d-%m-%Y", "{day}/{month}/%Y"], p=[0.7, 0.15, 0.15]))
    if not other_layout:
        return FormStyle(year_only=year_only, signature=signature, font=font, font_px=font_px, date_line=date_line,
                         date_format=date_format, name_case="upper" if rng.random() < 0.8 else "title")
    name_label = str(_pick(rng, NAME_LABELS[1:]))  # another wording than the usual form's
    return FormStyle(
        arrangement=str(_pick(rng, ARRANGEMENTS[1:])),
        name_label=name_label,
        id_label=str(_pick(rng, ID_LABELS)),
        sex_label=str(_pick(rng, SEX_LABELS)),
        year_only=year_only,
        date_format=date_format,
        name_case="upper" if rng.random() < 0.7 else "title",
        two_column_header=bool(rng.random() < 0.6),
        extras=bool(rng.random() < 0.6),
        signature=signature,
        date_line=date_line,
        font=font,
        font_px=font_px,
    )


def random_findings(rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """Per-disc grades as :func:`report_lines` takes them: about half the discs abnormal, L4-S1 most often."""
    findings: dict[str, dict[str, int]] = {}
    for index, level in enumerate(LEVELS):
        if rng.random() > 0.25 + 0.12 * index:
            continue
        findings[level] = {
            "pfirrmann": int(rng.choice([2, 3, 4, 5], p=[0.3, 0.35, 0.25, 0.1])),
            "modic": int(rng.choice([0, 1, 2, 3], p=[0.75, 0.1, 0.1, 0.05])),
            "herniation": int(rng.random() < 0.3),
            "bulging": int(rng.random() < 0.35),
            "narrowing": int(rng.random() < 0.25),
            "spondylolisthesis": int(rng.random() < 0.05),
            "up_endplate": int(rng.random() < 0.1),
            "low_endplate": int(rng.random() < 0.1),
        }
    return findings


def _birthday_text(patient: SyntheticPatient, style: FormStyle) -> str:
    if style.year_only:
        return str(patient.birthday.year)
    fmt = style.date_format.replace("{day}", str(patient.birthday.day)).replace("{month}", str(patient.birthday.month))
    return patient.birthday.strftime(fmt)


def _printed_name(patient: SyntheticPatient, style: FormStyle) -> str:
    return patient.full_name.upper() if style.name_case == "upper" else patient.full_name


def _closing_date(day: date, style: FormStyle) -> str:
    if style.date_line == "plain":
        return f"Ngày {day.day} tháng {day.month} năm {day.year}"
    if style.date_line == "numeric":
        return f"{CITY}, ngày {day:%d/%m/%Y}"
    return _date_line(day)


def _field_rows(patient: SyntheticPatient, style: FormStyle, rng: np.random.Generator | None) -> list[Row]:
    birthday_label = YEAR_LABEL if style.year_only else BIRTHDAY_LABEL
    small = 0.92 if style.arrangement == THREE_PER_LINE else 1.0
    name = Cell(f"{style.name_label}: {_printed_name(patient, style)}", scale=small, field="name")
    born = f"{birthday_label}: {_birthday_text(patient, style)}"
    sex = f"{style.sex_label}: {patient.sex}"
    pid = f"{style.id_label}: {patient.patient_id}"
    age = f"Tuổi: {patient.exam_date.year - patient.birthday.year}"
    if style.arrangement == ONE_PER_LINE:
        rows = [Row((name,)), Row((Cell(born, field="birthday"),)), Row((Cell(sex, field="sex"),)),
                Row((Cell(pid, field="id"),))]
    elif style.arrangement == ID_RIGHT_OF_NAME:
        rows = [Row((name, Cell(pid, 0.64, field="id"))),
                Row((Cell(born, field="birthday"), Cell(age if style.extras else "", 0.4),
                     Cell(sex, 0.64, field="sex")))]
    elif style.arrangement == BIRTHDAY_ABOVE_NAME:
        rows = [Row((Cell(pid, field="id"), Cell("Khoa chỉ định: Khám bệnh", 0.52))),
                Row((Cell(born, field="birthday"), Cell(sex, 0.52, field="sex"))),
                Row((name,))]
    elif style.arrangement == THREE_PER_LINE:
        rows = [Row((name, Cell(born, 0.52, scale=small, field="birthday"),
                     Cell(sex, 1.0, "R", scale=small, field="sex"))),
                Row((Cell(pid, scale=small, field="id"), Cell(age if style.extras else "", 0.52, scale=small)))]
    else:
        raise ConfigError("FormStyle", f"unknown arrangement {style.arrangement!r} (known: {', '.join(ARRANGEMENTS)})")
    if style.extras and rng is not None:
        extra = [Row((Cell(f"Địa chỉ: {_pick(rng, ADDRESSES)}"),)),
                 Row((Cell(f"Bác sĩ chỉ định: {_pick(rng, DOCTORS)}"),))]
        if rng.random() < 0.5:
            insurance = "".join(str(int(d)) for d in rng.integers(0, 10, size=12))
            extra.insert(1, Row((Cell(f"Số thẻ BHYT: HN4{insurance}"),)))
        if style.arrangement == ONE_PER_LINE:
            rows.insert(2, Row((Cell(age),)))
        rows.extend(extra)
    return rows


def _closing_rows(patient: SyntheticPatient, style: FormStyle, doctor: str, technician: str | None) -> list[Row]:
    when = _closing_date(patient.exam_date, style)
    if not style.signature:
        return [Row((Cell(when, 1.0, "R"),), role="date")]
    rows = [Row((Cell(when, 0.75, "C"),), role="date", gap=0.4)]
    if technician:
        rows.append(Row((Cell(TECHNICIAN_TITLE, 0.22, "C", bold=True), Cell(READER_TITLE, 0.75, "C", bold=True)),
                        role="reader"))
    else:
        rows.append(Row((Cell(READER_TITLE, 0.75, "C", bold=True),), role="reader"))
    rows.append(Row((Cell(SIGN_HINT, 0.75, "C", scale=0.8),), role="sign"))
    rows.extend(Row((Cell(""),), role="sign") for _ in range(3))
    names = (Cell(technician, 0.22, "C", bold=True),) if technician else ()
    rows.append(Row((*names, Cell(doctor, 0.75, "C", bold=True)), role="doctor"))
    return rows


def form_rows(patient: SyntheticPatient, findings: dict[str, dict[str, int]], style: FormStyle | None = None,
              rng: np.random.Generator | None = None) -> list[Row]:
    """The printed rows of one report in ``style``; ``FormStyle()`` prints exactly :func:`report_lines`.

    ``rng`` draws the decoys (address, insurance number, referring doctor) and the doctors who sign.
    """
    style = style or FormStyle()
    lines = report_lines(patient, findings)
    first_intro = next(i for i, line in enumerate(lines) if line.startswith("Chỉ định: "))
    body = [Row((Cell(text),)) for text in lines[first_intro:-1]]  # indication to conclusion; the date closes
    if style.two_column_header:
        header = [
            Row((Cell(HOSPITAL, 0.0, bold=True, scale=0.78), Cell(COUNTRY, 1.0, "R", bold=True, scale=0.78))),
            Row((Cell(DEPARTMENT, 0.0, scale=0.78), Cell(MOTTO, 0.99, "R", bold=True, scale=0.78))),
            Row((Cell(FORM_TITLE, 0.5, "C", bold=True, scale=1.1),), role="title", gap=0.6),
            Row((Cell(FORM_SUBTITLE, 0.5, "C", bold=True),), role="title"),
        ]
    else:
        header = [Row((Cell(HOSPITAL),)), Row((Cell(DEPARTMENT),)),
                  Row((Cell(TITLE, 0.5, "C"),), role="title", gap=0.5)]
    fields = _field_rows(patient, style, rng)
    fields[0] = dataclasses.replace(fields[0], gap=0.5)  # half a line of room under the title
    doctor = str(_pick(rng, DOCTORS)) if rng is not None else DOCTORS[0]
    technician = str(_pick(rng, DOCTORS)) if rng is not None and style.signature and rng.random() < 0.4 else None
    if technician == doctor:
        technician = None
    return [*header, *fields, *body, *_closing_rows(patient, style, doctor, technician)]


# --------------------------------------------------------------------------------------------------- form pages
@functools.lru_cache(maxsize=64)
def _form_font(family: str, bold: bool, size: int) -> ImageFont.FreeTypeFont:
    """A DejaVu face of ``family`` (regular or bold); the first Vietnamese font when that face is not installed."""
    path = _FONT_DIR / f"{_FONT_FILES.get(family, 'DejaVuSans')}{'-Bold' if bold else ''}.ttf"
    if not path.is_file() or _first_vietnamese_font((path,)) is None:
        path = find_font()
    return ImageFont.truetype(str(path), size=max(6, size))


Box = tuple[int, int, int, int]


def _text_frame(dpi: int) -> tuple[int, int]:
    """Left margin and text width of an A4 page at ``dpi``, in pixels."""
    margin_x = round(20 / 25.4 * dpi)
    return margin_x, _page_size_px(dpi)[0] - 2 * margin_x


def _draw_rows(rows: Sequence[Row], dpi: int, style: FormStyle, mode: str
               ) -> tuple[Image.Image, list[list[tuple[Cell, Box]]]]:
    """An A4 page (``mode`` "L" or "RGB") with ``rows`` printed in black; per row, each cell and its ink box
    (an empty row gets one empty cell whose box is the row's room).

    Cells sit where their ``at``/``align`` put them, pushed right past the cell before them; a row too wide for
    the text width is printed smaller. Spacing, then the font, shrink when the rows do not fit the page.
    """
    width, height = _page_size_px(dpi)
    (margin_x, text_width), margin_top = _text_frame(dpi), round(18 / 25.4 * dpi)
    usable = height - 2 * margin_top
    font_px = round(style.font_px * dpi / 200)
    spacing = 1.5
    units = sum(max(cell.scale for cell in row.cells) + row.gap for row in rows if row.role != "footer") + 1
    if units * font_px * spacing > usable:
        spacing = max(1.15, usable / (units * font_px))
        font_px = min(font_px, int(usable / (units * spacing)))
    page = Image.new(mode, (width, height), 255 if mode == "L" else (255, 255, 255))
    draw = ImageDraw.Draw(page)
    ink = 0 if mode == "L" else (0, 0, 0)
    boxes: list[list[tuple[Cell, Box]]] = []
    y = float(margin_top)
    for row in rows:
        row_scale = max(cell.scale for cell in row.cells)
        top = float(height - margin_top - font_px) if row.role == "footer" else y + row.gap * font_px * spacing
        placed: list[tuple[float, Cell, ImageFont.FreeTypeFont]] = []
        shrink = 1.0
        for _ in range(10):
            placed, end, fits = [], float("-inf"), True
            for cell in row.cells:
                if not cell.text:
                    continue
                font = _form_font(style.font, cell.bold, round(font_px * cell.scale * shrink))
                text_w = draw.textlength(cell.text, font=font)
                anchor = margin_x + cell.at * text_width
                x = anchor if cell.align == "L" else anchor - text_w / 2 if cell.align == "C" else anchor - text_w
                x = max(x, float(margin_x), end + 1.5 * font_px * shrink)
                end = x + text_w
                fits = fits and end <= margin_x + text_width + 1
                placed.append((x, cell, font))
            if fits:
                break
            shrink *= 0.94
        cells: list[tuple[Cell, Box]] = []
        for x, cell, font in placed:
            draw.text((x, top), cell.text, font=font, fill=ink)
            x0, y0, x1, y1 = draw.textbbox((x, top), cell.text, font=font)
            cells.append((cell, (int(x0), int(y0), int(x1), int(y1))))
        if not placed:  # an empty row (room for a signature): its box is the line's room
            cells.append((Cell(""), (margin_x, round(top), margin_x + text_width, round(top + font_px * spacing))))
        boxes.append(cells)
        if row.role != "footer":
            y = top + font_px * row_scale * spacing
    return page, boxes


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int, low: float, high: float) -> np.ndarray:
    """A smooth random field over ``shape`` in ``[low, high]`` (coarse noise upscaled bicubically)."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    field_image = Image.fromarray((coarse * 255).astype(np.uint8)).resize(
        (shape[1], shape[0]), Image.Resampling.BICUBIC
    )
    values = np.asarray(field_image, dtype=np.float32) / 255.0
    return low + (high - low) * values


def _stamp_mask(radius: int, rng: np.random.Generator) -> Image.Image:
    """A round hospital stamp as ink amounts ("L", 0 = none): two rings, the hospital's name around, a star.

    The ink is uneven like a real stamp's: a smooth random density and speckles where the pad was dry.
    """
    size = 2 * radius + 8
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    centre = size / 2
    outer = max(2, round(radius * 0.05))
    draw.ellipse((centre - radius, centre - radius, centre + radius, centre + radius), outline=255, width=outer)
    inner = radius * 0.66
    draw.ellipse((centre - inner, centre - inner, centre + inner, centre + inner), outline=255,
                 width=max(1, round(radius * 0.025)))
    font = _form_font("sans", True, round(radius * 0.17))
    text = STAMP_TEXT
    ring = radius * 0.83
    for index, char in enumerate(text):
        theta = 360.0 * index / len(text)  # clockwise from the top
        glyph = Image.new("L", (round(radius * 0.3), round(radius * 0.3)), 0)
        ImageDraw.Draw(glyph).text((glyph.width / 2, glyph.height / 2), char, font=font, fill=255, anchor="mm")
        glyph = glyph.rotate(-theta, resample=Image.Resampling.BICUBIC)
        radians = np.deg2rad(theta)
        x = centre + ring * np.sin(radians) - glyph.width / 2
        y = centre - ring * np.cos(radians) - glyph.height / 2
        mask.paste(255, (round(x), round(y)), glyph)
    star = [
        (centre + (0.38 if k % 2 == 0 else 0.15) * radius * np.sin(np.deg2rad(36 * k)),
         centre - (0.38 if k % 2 == 0 else 0.15) * radius * np.cos(np.deg2rad(36 * k)))
        for k in range(10)
    ]
    draw.polygon(star, fill=255)
    density = _smooth_field((size, size), rng, 5, 0.6, 1.0)
    speckle = rng.random((size, size)) > 0.1
    ink = np.asarray(mask, dtype=np.float32) * density * speckle
    angle = float(rng.uniform(0, 360))
    return Image.fromarray(np.clip(ink, 0, 255).astype(np.uint8)).rotate(angle, resample=Image.Resampling.BICUBIC)


def _signature_mask(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A hand signature as ink amounts ("L"): a few loops of a smooth pen stroke across ``width`` x ``height``."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    t = np.linspace(0, 1, 400)
    loops = float(rng.uniform(2.5, 5.0))
    xs = 0.08 * width + 0.84 * width * t + 0.06 * width * np.sin(2 * np.pi * loops * t + rng.uniform(0, 6))
    ys = height * (0.5 + 0.32 * np.sin(2 * np.pi * (loops * 0.5) * t + rng.uniform(0, 6)) * (1 - 0.5 * t))
    points = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    pen = max(2, round(height * 0.04))
    draw.line(points, fill=255, width=pen, joint="curve")
    tail = [(points[-1][0], points[-1][1]), (float(width * 0.98), float(height * rng.uniform(0.2, 0.5)))]
    draw.line(tail, fill=255, width=pen)
    return mask.filter(ImageFilter.GaussianBlur(0.8))


def _apply_ink(page: Image.Image, mask: Image.Image, colour: tuple[int, int, int], at: tuple[int, int],
               opacity: float) -> Image.Image:
    """``page`` (RGB) with ``mask`` inked in ``colour`` at ``at`` (top-left), multiplied like ink on paper:
    black print under it stays black."""
    rgb = np.asarray(page, dtype=np.float32).copy()
    amount = np.asarray(mask, dtype=np.float32) / 255.0 * opacity
    x, y = at
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(page.width, x + mask.width), min(page.height, y + mask.height)
    if x1 <= x0 or y1 <= y0:
        return page
    patch = amount[y0 - y : y1 - y, x0 - x : x1 - x, None]
    tint = np.asarray(colour, dtype=np.float32) / 255.0
    rgb[y0:y1, x0:x1] *= 1.0 - patch * (1.0 - tint)
    return Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8), mode="RGB")


def _stamp_page(page: Image.Image, box: Box, rng: np.random.Generator, dpi: int) -> Image.Image:
    """A red round stamp pressed over the row whose ink box is ``box`` (over its value, right of the label)."""
    radius = round(float(rng.uniform(16, 20)) / 25.4 * dpi)  # 32-40 mm stamps
    mask = _stamp_mask(radius, rng)
    x0, y0, x1, y1 = box
    cx = x0 + (x1 - x0) * float(rng.uniform(0.6, 0.95))
    cy = (y0 + y1) / 2 + float(rng.uniform(-0.25, 0.25)) * radius
    at = (round(cx - mask.width / 2), round(cy - mask.height / 2))
    return _apply_ink(page, mask, _pick(rng, _RED_INKS), at, float(rng.uniform(0.85, 1.0)))


def _sign_page(page: Image.Image, box: Box, rng: np.random.Generator, colour: bool
               ) -> Image.Image:
    """A signature scribbled in the room ``box`` (blue ink on colour pages, dark grey on grey ones)."""
    x0, y0, x1, y1 = box
    width, height = max(40, x1 - x0), max(30, y1 - y0)
    mask = _signature_mask(width, height, rng)
    if page.mode == "RGB":
        ink = _pick(rng, _BLUE_INKS) if colour else (40, 40, 40)
        return _apply_ink(page, mask, ink, (x0, y0), float(rng.uniform(0.8, 1.0)))
    gray = np.asarray(page, dtype=np.float32) * 1.0
    amount = np.asarray(mask, dtype=np.float32)[: gray.shape[0] - y0, : gray.shape[1] - x0] / 255.0
    region = gray[y0 : y0 + amount.shape[0], x0 : x0 + amount.shape[1]]
    region *= 1.0 - 0.8 * amount
    return Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8), mode="L")


def _jpeg(image: Image.Image, quality: int, **options: Any) -> tuple[Image.Image, bytes]:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, **options)
    data = buffer.getvalue()
    return Image.open(io.BytesIO(data)).convert(image.mode), data


def _scan_colour(page: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, bytes]:
    """A colour scan of an RGB page: small rotation, blur, warm paper, noise, JPEG 55-80 (chroma subsampled)."""
    angle = float(rng.uniform(0.3, 2.0)) * (1 if rng.random() < 0.5 else -1)
    rotated = page.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=(255, 255, 255))
    blurred = rotated.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 0.9))))
    paper = np.array([rng.uniform(236, 250), rng.uniform(230, 246), rng.uniform(215, 238)], dtype=np.float32)
    ink = np.array([rng.uniform(15, 40)] * 3, dtype=np.float32)
    pixels = np.asarray(blurred, dtype=np.float32) / 255.0
    sigma = float(rng.uniform(3, 7))
    pixels = ink + pixels * (paper - ink) + sigma * rng.standard_normal(size=pixels.shape, dtype=np.float32)
    noisy = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="RGB")
    return _jpeg(noisy, int(rng.integers(55, 81)))


def _photo(page: Image.Image, rng: np.random.Generator, dpi: int) -> Image.Image:
    """A phone photo of an RGB page on a desk: perspective, a small turn, uneven light, a shadow, blur, noise.

    The frame is 3:4 portrait with a long side of ~1700-2400 px (at ``dpi`` 200; scaled with it), as messaging
    apps pass photos on; the page fills 78-92 % of its height.
    """
    import cv2

    long_side = round(float(rng.uniform(1700, 2400)) * dpi / 200)
    frame_w, frame_h = round(long_side * 0.75), long_side
    fill = float(rng.uniform(0.78, 0.92))
    page_h = fill * frame_h
    page_w = page_h * page.width / page.height
    angle = np.deg2rad(float(rng.uniform(-4, 4)))
    cx = frame_w / 2 + float(rng.uniform(-0.03, 0.03)) * frame_w
    cy = frame_h / 2 + float(rng.uniform(-0.03, 0.03)) * frame_h
    corners = np.array([[-page_w / 2, -page_h / 2], [page_w / 2, -page_h / 2],
                        [page_w / 2, page_h / 2], [-page_w / 2, page_h / 2]])
    # keystone: the edge farther from the camera is shorter
    keystone = float(rng.uniform(0.0, 0.06))
    far = int(rng.integers(4))
    pairs = ((0, 1), (1, 2), (2, 3), (3, 0))[far]
    for corner in pairs:
        corners[corner] *= 1 - keystone
    corners += rng.uniform(-0.012, 0.012, size=corners.shape) * np.array([page_w, page_h])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = (corners @ rotation.T + np.array([cx, cy])).astype(np.float32)
    source = np.array([[0, 0], [page.width, 0], [page.width, page.height], [0, page.height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    rgb = np.asarray(page.convert("RGB"))
    warped = cv2.warpPerspective(rgb, matrix, (frame_w, frame_h), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    inside = cv2.warpPerspective(np.full(rgb.shape[:2], 255, np.uint8), matrix, (frame_w, frame_h),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    red = float(rng.uniform(60, 170))
    green = red * float(rng.uniform(0.78, 0.97))
    desk = np.array([red, green, green * float(rng.uniform(0.7, 0.97))], dtype=np.float32)  # wood to grey
    texture = _smooth_field((frame_h, frame_w), rng, 12, 0.75, 1.15)[..., None]
    background = desk * texture
    alpha = inside.astype(np.float32)[..., None] / 255.0
    image = warped.astype(np.float32) * alpha + background * (1 - alpha)
    yy, xx = np.mgrid[0:frame_h, 0:frame_w].astype(np.float32)
    direction = float(rng.uniform(0, 2 * np.pi))
    ramp = (np.cos(direction) * (xx / frame_w - 0.5) + np.sin(direction) * (yy / frame_h - 0.5)) + 0.5
    light = 1.0 - float(rng.uniform(0.1, 0.35)) * ramp
    light *= _smooth_field((frame_h, frame_w), rng, 4, 0.88, 1.0)
    if rng.random() < 0.6:  # the phone's shadow: a soft dark blob near one edge
        sx, sy = float(rng.uniform(0.1, 0.9)) * frame_w, float(rng.choice([0.05, 0.95])) * frame_h
        spread = float(rng.uniform(0.15, 0.3)) * frame_w
        light *= 1.0 - float(rng.uniform(0.15, 0.3)) * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * spread**2))
    warm = np.array([1.0, float(rng.uniform(0.94, 0.99)), float(rng.uniform(0.82, 0.93))], dtype=np.float32)
    image = image * light[..., None] * warm
    image += float(rng.uniform(2, 5)) * rng.standard_normal(size=image.shape, dtype=np.float32)
    photo = Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8), mode="RGB")
    return photo.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 1.1))))


# --------------------------------------------------------------------------------------------------- writing kinds
#: PIL transposes that turn an upright page so that reading it needs ``rotation`` degrees clockwise.
_FEED = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
QUARTER_TURNS: tuple[int, ...] = (0, 90, 180, 270)
#: EXIF orientation tag -> PIL transpose from the upright photo to the pixels stored with that tag.
_EXIF_STORED = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _cell_box(cells: list[list[tuple[Cell, Box]]], wanted: str) -> Box | None:
    return next((box for row in cells for cell, box in row if cell.field == wanted), None)


def _signature_room(rows: Sequence[Row], cells: list[list[tuple[Cell, Box]]], dpi: int) -> Box | None:
    """Where the doctor signs: the empty rows under "BÁC SĨ ĐỌC KẾT QUẢ", around the doctor's column."""
    rooms = [cells[i][0][1] for i, row in enumerate(rows) if row.role == "sign" and not row.text]
    if not rooms:
        return None
    margin_x, text_width = _text_frame(dpi)
    centre = margin_x + 0.75 * text_width
    return (round(centre - 0.16 * text_width), rooms[0][1], round(centre + 0.16 * text_width), rooms[-1][3])


def _write_image_pdf(scans: Sequence[tuple[bytes, int]], path: Path, exam_date: date) -> Path:
    """An image-only PDF, one JPEG per page; a page turned a quarter is laid out landscape."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(datetime.combine(exam_date, time(16, 0), tzinfo=UTC))
    pdf.set_producer("spine_lib.synthetic.reports")
    pdf.set_title(TITLE)
    pdf.set_lang("vi")
    for jpeg, rotation in scans:
        landscape = rotation in (90, 270)
        pdf.add_page(orientation="L" if landscape else "P")
        width, height = (_A4_MM[1], _A4_MM[0]) if landscape else _A4_MM
        pdf.image(io.BytesIO(jpeg), x=0, y=0, w=width, h=height)
    return atomic_write_bytes(Path(path), bytes(pdf.output()))


def _write_text_pdf(pages: Sequence[Sequence[Row]], path: Path, style: FormStyle, exam_date: date) -> Path:
    """A PDF with a real text layer: every row's cells placed as on the printed form (12 pt)."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(datetime.combine(exam_date, time(16, 0), tzinfo=UTC))
    pdf.set_producer("spine_lib.synthetic.reports")
    pdf.set_title(TITLE)
    pdf.set_lang("vi")
    for bold, face in ((False, ""), (True, "B")):
        pdf.add_font("Form", face, str(_form_font(style.font, bold, 12).path))
    margin, text_width = 20.0, _A4_MM[0] - 40.0
    for rows in pages:
        pdf.add_page()
        body = [row for row in rows if row.role != "footer"]
        line_h = max(4.6, min(7.0, (_A4_MM[1] - 2 * 18 - 6) / max(sum(1 + row.gap for row in body), 1)))
        y = 18.0
        for row in rows:
            top = _A4_MM[1] - 14.0 if row.role == "footer" else y + row.gap * line_h
            shrink = 1.0
            placed: list[tuple[float, Cell, float, float]] = []
            for _ in range(10):
                placed, end = [], float("-inf")
                for cell in row.cells:
                    if not cell.text:
                        continue
                    pdf.set_font("Form", "B" if cell.bold else "", 12 * cell.scale * shrink)
                    text_w = pdf.get_string_width(cell.text)
                    anchor = margin + cell.at * text_width
                    x = anchor if cell.align == "L" else anchor - text_w / 2 if cell.align == "C" else anchor - text_w
                    x = max(x, margin, end + 4.0)
                    end = x + text_w
                    placed.append((x, cell, 12 * cell.scale * shrink, text_w))
                if end <= margin + text_width + 0.5:
                    break
                shrink *= 0.94
            for x, cell, size, text_w in placed:
                pdf.set_font("Form", "B" if cell.bold else "", size)
                pdf.set_xy(x, top)
                pdf.cell(w=text_w + 0.5, h=line_h, text=cell.text)
            if row.role != "footer":
                y = top + line_h * max(cell.scale for cell in row.cells)
    return atomic_write_bytes(Path(path), bytes(pdf.output()))


def _report_format(kind: str, rng: np.random.Generator) -> str:
    """The file a kind arrives as: ``png``, ``jpg``, ``pdf_image`` or ``pdf_text``."""
    if kind in (ROTATED_PDF, MULTIPAGE):
        return "pdf_image"
    if kind == PHOTO:
        return "jpg"
    if kind == LAYOUT:
        return str(_pick(rng, ("png", "pdf_image", "pdf_text")))
    if kind == YEAR_ONLY:
        return str(_pick(rng, ("png", "pdf_image")))
    return "png"


def _file_name(patient: SyntheticPatient, report_format: str, rng: np.random.Generator, used: set[str]) -> str:
    """ID-named images (``250010139.png``); PDFs named for the patient, mostly with the exam date."""
    if report_format in ("png", "jpg"):
        name = f"{patient.patient_id}.{report_format}"
    else:
        dated = rng.random() < 0.75
        name = f"{ascii_name(patient.full_name)}{patient.exam_date:_%Y%m%d}.pdf" if dated else \
            f"{ascii_name(patient.full_name)}.pdf"
        if name in used:  # a namesake's report already took it
            name = f"{patient.patient_id}.pdf"
    used.add(name)
    return name


def write_report(
    kind: str,
    patient: SyntheticPatient,
    findings: dict[str, dict[str, int]],
    folder: Path,
    rng: np.random.Generator,
    *,
    dpi: int = 200,
    rotations: Sequence[int] | None = None,
    style: FormStyle | None = None,
    stamp_over: str | None = None,
    used_names: set[str] | None = None,
) -> ReportTruth:
    """Write one report of ``kind`` (one of :data:`REPORT_KINDS`) for ``patient`` into ``folder``.

    ``rotations`` (per page, 0, 90, 180 or 270: clockwise degrees to read it upright) fixes how the pages
    are fed (drawn otherwise: the rotated kinds a quarter, half or three quarters turn, the second page of a
    two-page scan now and then; the others upright); ``style`` fixes the form (drawn otherwise: the plain kind is the
    usual form, the layout kind another form, the others either, with a year-only birthday or a signature
    block now and then). ``stamp_over`` ("name" or "birthday") fixes the line under the red stamp of a stamped
    report (drawn otherwise; photos get one now and then). ``used_names`` holds the file names already
    written, so namesakes do not overwrite each other. Everything random comes from ``rng``.
    """
    if kind not in REPORT_KINDS:
        raise ConfigError("report kind", f"unknown kind {kind!r} (known: {', '.join(REPORT_KINDS)})")
    if stamp_over not in (None, "name", "birthday"):
        raise ConfigError("report stamp", f"a stamp goes over the 'name' or 'birthday' line, not {stamp_over!r}")
    if style is None:
        if kind == PLAIN:
            style = FormStyle()
        else:
            style = random_form_style(
                rng, other_layout=True if kind == LAYOUT else None,
                year_only=kind == YEAR_ONLY or (kind != SIGNATURE and rng.random() < 0.2),
                signature=kind == SIGNATURE or rng.random() < 0.4,
            )
    rows = form_rows(patient, findings, style, rng)
    if kind == MULTIPAGE:
        split = next(i for i, row in enumerate(rows) if row.text == CONCLUSION_HEADER)
        footer = Cell("", 0.5, "C", scale=0.8)
        pages = [[*rows[:split], Row((dataclasses.replace(footer, text="Trang 1/2"),), role="footer")],
                 [*rows[split:], Row((dataclasses.replace(footer, text="Trang 2/2"),), role="footer")]]
    else:
        pages = [rows]
    if kind in (ROTATED_PNG, ROTATED_PDF):
        turns = [int(_pick(rng, (90, 180, 270)))]
    elif kind == MULTIPAGE:
        turns = [0, int(rng.choice([0, 180, 90, 270], p=[0.5, 0.3, 0.1, 0.1]))]
    else:
        turns = [0] * len(pages)
    if rotations is not None:
        if len(rotations) != len(pages) or any(turn not in QUARTER_TURNS for turn in rotations):
            raise ConfigError(
                "report rotations", f"expected {len(pages)} of 0, 90, 180, 270 degrees (one per page), got {rotations}"
            )
        turns = [int(turn) for turn in rotations]
    colour = kind in (STAMPED, PHOTO)
    if stamp_over is not None and not colour:
        raise ConfigError("report stamp", f"a red stamp needs a colour page ({STAMPED} or {PHOTO}), not {kind}")
    if stamp_over is None and (kind == STAMPED or (kind == PHOTO and rng.random() < 0.3)):
        stamp_over = str(_pick(rng, ("name", "birthday")))
    report_format = _report_format(kind, rng)
    name = _file_name(patient, report_format, rng, used_names if used_names is not None else set())
    path = Path(folder) / name
    exif = 1
    if report_format == "pdf_text":
        _write_text_pdf(pages, path, style, patient.exam_date)
    else:
        scans: list[tuple[bytes, int]] = []
        image: Image.Image | None = None
        for page_rows, turn in zip(pages, turns, strict=True):
            page, cells = _draw_rows(page_rows, dpi, style, "RGB" if colour else "L")
            room = _signature_room(page_rows, cells, dpi)
            if room is not None:
                page = _sign_page(page, room, rng, colour)
            box = _cell_box(cells, stamp_over) if stamp_over else None
            if box is not None:
                page = _stamp_page(page, box, rng, dpi)
            if room is not None and colour and rng.random() < 0.7:  # the usual place: over the signature
                page = _stamp_page(page, room, rng, dpi)
            if turn:
                page = page.transpose(_FEED[turn])
            if kind == PHOTO:
                image = _photo(page, rng, dpi)
                exif = int(rng.choice([1, 6, 8], p=[0.6, 0.2, 0.2]))
            elif colour:
                image, jpeg = _scan_colour(page, rng)
                scans.append((jpeg, turn))
            else:
                image, jpeg = _scan(page, rng)
                scans.append((jpeg, turn))
        assert image is not None
        if report_format == "pdf_image":
            _write_image_pdf(scans, path, patient.exam_date)
        elif report_format == "jpg":
            stored = image.transpose(_EXIF_STORED[exif]) if exif in _EXIF_STORED else image
            tags = Image.Exif()
            if exif != 1:
                tags[0x0112] = exif
            buffer = io.BytesIO()
            stored.save(buffer, format="JPEG", quality=int(rng.integers(72, 90)), exif=tags.tobytes())
            atomic_write_bytes(path, buffer.getvalue())
        else:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", dpi=(dpi, dpi), compress_level=1)
            atomic_write_bytes(path, buffer.getvalue())
    traits = [kind] if kind in TRAITS else []
    extra = {
        ROTATED: any(turns) and report_format != "pdf_text",
        STAMPED: stamp_over is not None,
        COLOUR: colour,
        LAYOUT: not style.is_usual,
        YEAR_ONLY: style.year_only,
        SIGNATURE: style.signature,
        PHOTO: kind == PHOTO,
        MULTIPAGE: len(pages) > 1,
    }
    traits += [trait for trait in TRAITS if extra[trait] and trait not in traits]
    field_lines = {f: row.text for f in ("name", "id", "birthday", "sex") for row in rows if f in row.fields}
    birthday_label = YEAR_LABEL if style.year_only else BIRTHDAY_LABEL
    return ReportTruth(
        file=name,
        kind=kind,
        traits=tuple(traits),
        patient_id=patient.patient_id,
        full_name=patient.full_name,
        name_printed=_printed_name(patient, style),
        birthday=None if style.year_only else patient.birthday.isoformat(),
        birth_year=patient.birthday.year,
        sex=patient.sex,
        exam_date=patient.exam_date.isoformat(),
        pages=len(pages),
        rotations=tuple(turns) if report_format != "pdf_text" else (0,) * len(pages),
        exif_orientation=exif,
        stamp_over=stamp_over,
        arrangement=style.arrangement,
        labels={"name": style.name_label, "id": style.id_label, "birthday": birthday_label, "sex": style.sex_label},
        field_lines=field_lines,
        lines=tuple(tuple(row.text for row in page_rows if row.text) for page_rows in pages),
    )


def write_report_set(folder: Path, per_kind: int, seed: int, kinds: Sequence[str] = REPORT_KINDS, *,
                     dpi: int = 200) -> list[ReportTruth]:
    """``per_kind`` reports of each of ``kinds`` in ``folder``, each of another synthetic patient; their truth.

    Patients come from :func:`~spine_lib.synthetic.people.make_patients` (look-alikes included), findings from
    :func:`random_findings`; the same ``seed`` gives the same files.
    """
    if per_kind < 0:
        raise ConfigError("write_report_set", f"per_kind must be >= 0, got {per_kind}")
    unknown = [kind for kind in kinds if kind not in REPORT_KINDS]
    if unknown:
        raise ConfigError("write_report_set", f"unknown kinds {unknown} (known: {', '.join(REPORT_KINDS)})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    patients = make_patients(per_kind * len(kinds), np.random.default_rng([seed, 16]))
    used: set[str] = set()
    truths: list[ReportTruth] = []
    for index, patient in enumerate(patients):
        rng = np.random.default_rng([seed, 16, index])
        kind = kinds[index % len(kinds)]
        truths.append(write_report(kind, patient, random_findings(rng), folder, rng, dpi=dpi, used_names=used))
    return truths
