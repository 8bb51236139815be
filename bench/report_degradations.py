"""Scanned reports degraded in ways the synthetic generator does not draw, read by the real pipeline.

Run: ``uv run python bench/report_degradations.py [--reports 6] [--seed 7] [--no-remove-noise]``. Writes plain
synthetic report PNGs (:func:`spine_lib.synthetic.reports.write_report_set`), degrades each page as a bad
scanner, fax or copier would (a lean of 3 or 6 degrees, 100 or 70 dpi, JPEG quality 10, Gaussian grain of
sigma 40, salt-and-pepper speckle on 2 % of the pixels, faint ink, blur, and a mix), reads every copy with
:func:`spine_lib.datasets.phenikaa.reports.read_report` (real Tesseract ``vie``) and prints a markdown table: per
degradation, how many reports had their ID, name, birthday (or birth year) and exam date read as the truth says,
and the median seconds per report; then the same for the file formats scanners and faxes write (16-bit grey PNG,
palette PNG, CMYK JPEG, bilevel TIFF G4 at 200 dpi and in fax standard mode, 200 x 100 dpi). ``--no-remove-noise``
reads without :mod:`spine_lib.ocr.noise`.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from spine_lib.datasets.phenikaa.reports import read_report
from spine_lib.ocr import DocumentExtractor
from spine_lib.synthetic.reports import ReportTruth, write_report_set

Degradation = Callable[[Image.Image], Image.Image]


def lean(degrees: float) -> Degradation:
    return lambda im: im.convert("L").rotate(degrees, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)


def resolution(factor: float) -> Degradation:
    return lambda im: im.resize((round(im.width * factor), round(im.height * factor)), Image.Resampling.BILINEAR)


def jpeg(quality: int) -> Degradation:
    def apply(im: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        im.convert("L").save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return apply


def grain(sigma: float, seed: int = 0) -> Degradation:
    def apply(im: Image.Image) -> Image.Image:
        values = np.asarray(im.convert("L"), dtype=np.float32)
        values = values + np.random.default_rng(seed).normal(0.0, sigma, values.shape)
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
    return apply


def speckle(share: float, seed: int = 1) -> Degradation:
    def apply(im: Image.Image) -> Image.Image:
        values = np.asarray(im.convert("L")).copy()
        draw = np.random.default_rng(seed).random(values.shape)
        values[draw < share / 2] = 0
        values[draw > 1 - share / 2] = 255
        return Image.fromarray(values)
    return apply


def faint(im: Image.Image) -> Image.Image:
    values = np.asarray(im.convert("L"), dtype=np.float32)
    return Image.fromarray((150 + values * (95 / 255)).astype(np.uint8))  # grey ink on grey paper


DEGRADATIONS: dict[str, Degradation] = {
    "none": lambda im: im,
    "lean 3 deg": lean(3.0), "lean -6 deg": lean(-6.0),
    "100 dpi": resolution(0.5), "70 dpi": resolution(0.35),
    "JPEG quality 10": jpeg(10),
    "grain sigma 40": grain(40.0), "speckle 2 %": speckle(0.02),
    "faint ink": faint, "blur 1.5 px": lambda im: im.convert("L").filter(ImageFilter.GaussianBlur(1.5)),
    "mix (120 dpi, lean 2.5, grain 15, JPEG 30)": lambda im: jpeg(30)(grain(15.0)(lean(2.5)(resolution(0.6)(im)))),
}


def _bilevel(grey: Image.Image) -> Image.Image:
    """Black where the grey page is darker than mid-grey, white elsewhere (mode "1")."""
    return Image.fromarray(np.asarray(grey) > 128).convert("1")


def _save_as(kind: str, page: Image.Image, stem: Path) -> Path:
    """``page`` written as a scanner or fax would write it."""
    grey = page.convert("L")
    if kind == "16-bit grey PNG":
        path = stem.with_suffix(".png")
        Image.fromarray(np.asarray(grey).astype(np.uint16) * 257).save(path)
    elif kind == "palette PNG":
        path = stem.with_suffix(".png")
        grey.convert("P").save(path)
    elif kind == "CMYK JPEG":
        path = stem.with_suffix(".jpg")
        page.convert("CMYK").save(path, quality=90)
    elif kind == "bilevel TIFF G4, 200 dpi":
        path = stem.with_suffix(".tif")
        _bilevel(grey).save(path, compression="group4", dpi=(200, 200))
    elif kind == "fax standard mode, TIFF G4 200 x 100 dpi":
        path = stem.with_suffix(".tif")
        half = grey.resize((grey.width, grey.height // 2), Image.Resampling.BILINEAR)
        _bilevel(half).save(path, compression="group4", dpi=(200, 100))
    else:
        raise ValueError(kind)
    return path


FORMATS = ("16-bit grey PNG", "palette PNG", "CMYK JPEG", "bilevel TIFF G4, 200 dpi",
           "fax standard mode, TIFF G4 200 x 100 dpi")


def score_row(label: str, copies: list[tuple[Path, ReportTruth]], extractor: DocumentExtractor,
              first: str) -> None:
    """Read every copy and print one table row: how many had the ``first`` column right (``id``: the patient ID,
    ``ok``: read without reject), the name, birthday (or birth year), exam date; the median seconds."""
    right = {first: 0, "name": 0, "birthday": 0, "exam": 0}
    seconds = []
    for path, truth in copies:
        fields = read_report(path, extractor)
        right[first] += fields.patient_id == truth.patient_id if first == "id" else fields.status == "ok"
        right["name"] += " ".join((fields.patient_name or "").split()).upper() == truth.full_name.upper()
        right["birthday"] += (fields.birthday == truth.birthday if truth.birthday
                              else fields.birth_year == truth.birth_year)
        right["exam"] += fields.exam_date == truth.exam_date
        seconds.append(fields.ocr_seconds)
    counts = " | ".join(f"{value}/{len(copies)}" for value in right.values())
    print(f"| {label} | {counts} | {statistics.median(seconds):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=6, help="plain reports, each read in every degradation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--remove-noise", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    extractor = DocumentExtractor(remove_noise=args.remove_noise)
    print(f"remove_noise={args.remove_noise}, {args.reports} reports per row\n")
    print("| degradation | ID | name | birthday / year | exam date | s/report median |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "plain"
        truths = [t for t in write_report_set(base, args.reports, seed=args.seed, kinds=("plain",))
                  if t.file.endswith(".png")]
        for index, (name, degrade) in enumerate(DEGRADATIONS.items()):
            folder = Path(tmp) / f"case{index}"
            folder.mkdir()
            for truth in truths:
                with Image.open(base / truth.file) as page:
                    degrade(page).save(folder / truth.file)
            score_row(name, [(folder / truth.file, truth) for truth in truths], extractor, first="id")
        print("\n| file format | read (status ok) | name | birthday / year | exam date | s/report median |")
        print("|---|---|---|---|---|---|")
        for index, kind in enumerate(FORMATS):
            folder = Path(tmp) / f"format{index}"
            folder.mkdir()
            copies = []
            for truth in truths:
                with Image.open(base / truth.file) as page:
                    copies.append((_save_as(kind, page, folder / Path(truth.file).stem), truth))
            score_row(kind, copies, extractor, first="ok")


if __name__ == "__main__":
    main()
