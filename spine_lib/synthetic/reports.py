"""Vietnamese lumbar-spine MRI reports of the Phenikaa export, rendered as PNG "scans" or PDFs.

:func:`report_lines` writes the report text (one field per line, findings from per-disc grades);
:func:`render_report_png` draws it on an A4 page, optionally degraded like a scan (rotation, noise, blur,
JPEG); :func:`render_report_pdf` writes it as a PDF with a real text layer or as an image-only scan. All
randomness comes from the ``rng`` argument: the same generator state gives the same bytes.
"""

from __future__ import annotations

import functools
import io
import re
import textwrap
from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTFont  # a dependency of fpdf2
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from spine_lib.errors import ConfigError, LabelSchemaError
from spine_lib.io.atomic import atomic_write_bytes
from spine_lib.labels import gradings as g
from spine_lib.levels import LEVEL_TO_IDX, LEVELS, check_level
from spine_lib.sources.phenikaa import BIRTHDAY_LABEL, ID_LABEL, NAME_LABEL, SEX_LABEL
from spine_lib.synthetic.people import SyntheticPatient

__all__ = [
    "FONT_CANDIDATES",
    "MAX_LINE_CHARS",
    "find_font",
    "render_report_pdf",
    "render_report_png",
    "report_lines",
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
