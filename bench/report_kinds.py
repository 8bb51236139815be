"""Reports of the kinds a hospital inbox really holds, through the real Phenikaa pipeline, against the synthetic truth.

Run: ``uv run python bench/report_kinds.py [--per-kind 6] [--workers 2] [--seed 0]``. Writes a Phenikaa export
whose reports are ``--per-kind`` of each kind of :data:`spine_lib.synthetic.reports.REPORT_KINDS` (turned pages,
stamps, other forms, year-only birthdays, signature blocks, phone photos, two-page scans; a report often has
several of these traits), runs :func:`spine_lib.datasets.phenikaa.preprocess` on it and prints markdown tables:

- per kind, then per trait: field accuracy (patient ID, name, birthday, or birth year where the form prints
  only the year, exam date), match precision and recall, seconds per report (median and p90; the pipeline
  reads the first page, so one page per report);
- the cost of orientation on upright pages: the pipeline's first read (the field band) with orientation on
  (``auto``), off, and with Tesseract's OSD on every page, alternated page by page;
- the orientation detectors on the first page of every OCR'd report: the ink's guess, Tesseract's OSD and the
  best-reading turn (Tesseract on a band of each turn), accuracy and time.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageOps

from spine_lib.core.layout import DataLayout
from spine_lib.core.logging import setup_logger
from spine_lib.datasets.phenikaa import PreprocessConfig, ReportFields, load_report_fields, preprocess
from spine_lib.ocr import DocumentExtractor, TesseractEngine
from spine_lib.ocr.document import best_reading_turn
from spine_lib.ocr.ink import remove_coloured_ink
from spine_lib.ocr.orientation import estimate_geometry, osd_rotation
from spine_lib.synthetic.phenikaa import write_phenikaa
from spine_lib.synthetic.reports import REPORT_KINDS, TRAITS
from spine_lib.synthetic.spider import RenderSize

FIELDS = ("ID", "name", "birthday / year", "exam date")
FIRST_BAND = (0.1, 0.27)  # where the pipeline reads first (the patient fields under the hospital header)


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else float("nan")


def _median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


def _name_form(name: str | None) -> str:
    return " ".join((name or "").split()).upper()


def fields_right(record: ReportFields | None, truth: dict[str, Any]) -> dict[str, bool]:
    """Which fields the pipeline read as the truth says (a missing record: none)."""
    report = truth["report_truth"]
    if record is None:
        return dict.fromkeys(FIELDS, False)
    if report["birthday"] is None:  # the form prints only the year
        year = getattr(record, "birth_year", None) or (int(record.birthday[:4]) if record.birthday else None)
        born = year == report["birth_year"]
    else:
        born = record.birthday == report["birthday"]
    return {
        "ID": record.patient_id == truth["patient_id"],
        "name": _name_form(record.patient_name) == _name_form(truth["full_name"]),
        "birthday / year": born,
        "exam date": record.exam_date == truth["exam_date"],
    }


def match_outcome(match: dict[str, str] | None, truth: dict[str, Any]) -> str:
    """``right``, ``wrong`` (matched to another folder) or ``none`` (not matched)."""
    if match is None or match["status"] != "matched":
        return "none"
    folders = {Path(folder).name for folder in truth["image_folders"]}
    return "right" if match["image_folder"] in folders else "wrong"


def quality_table(title: str, groups: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One markdown row per group of reports: fields, matching, seconds per report."""
    rows = [
        f"| {title} | reports | " + " | ".join(FIELDS) + " | precision | recall | s/report median | p90 |",
        "|---|---|" + "---|" * len(FIELDS) + "---|---|---|---|",
    ]
    for name, items in groups.items():
        if not items:
            continue
        n = len(items)
        accuracy = [sum(item["fields"][field] for item in items) / n for field in FIELDS]
        right = sum(item["match"] == "right" for item in items)
        wrong = sum(item["match"] == "wrong" for item in items)
        precision = right / (right + wrong) if right + wrong else float("nan")
        seconds = [item["seconds"] for item in items]
        rows.append(
            f"| {name} | {n} | " + " | ".join(f"{a:.0%}" for a in accuracy)
            + f" | {precision:.2f} | {right / n:.2f} | {_median(seconds):.2f} | {_p90(seconds):.2f} |"
        )
    return rows


def first_page(path: Path, dpi: int = 200) -> Image.Image:
    """The first page as the extractor sees it before orientation: EXIF applied, coloured ink removed."""
    if path.suffix.lower() == ".pdf":
        document = pdfium.PdfDocument(path)
        image = document[0].render(scale=dpi / 72).to_pil()  # pyright: ignore[reportArgumentType]
        document.close()
    else:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    return remove_coloured_ink(image)[0]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def orientation_cost(paths: list[Path]) -> list[str]:
    """The field band of upright pages read with orientation auto, off and osd, alternated page by page."""
    modes = ("auto", "off", "osd")
    extractors = {mode: DocumentExtractor(orientation=mode) for mode in modes}
    warm_up, paths = paths[-1], paths[:-1]
    for extractor in extractors.values():  # engine start and traineddata load, untimed
        extractor.extract(warm_up, region=FIRST_BAND)
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    spent: dict[str, list[float]] = {mode: [] for mode in modes}
    for i, path in enumerate(paths):
        order = modes[i % 3 :] + modes[: i % 3]
        for mode in order:
            elapsed, doc = timed(lambda path=path, mode=mode: extractors[mode].extract(path, region=FIRST_BAND))
            seconds[mode].append(elapsed)
            spent[mode].append(doc.corrections[0].seconds)
    base = _median(seconds["off"])
    rows = [
        "| orientation | upright pages | s/page median | p90 | vs off | of which cleaning + orientation (median s) |",
        "|---|---|---|---|---|---|",
    ]
    for mode in modes:
        rows.append(
            f"| {mode} | {len(paths)} | {_median(seconds[mode]):.3f} | {_p90(seconds[mode]):.3f} | "
            f"{_median(seconds[mode]) / base:.2f} | {_median(spent[mode]):.3f} |"
        )
    return rows


def detector_table(pages: list[tuple[Image.Image, int]]) -> list[str]:
    """Accuracy and time of each orientation detector on the first pages (with their true rotation)."""
    engine = TesseractEngine()
    detectors: dict[str, Callable[[Image.Image], int | None]] = {
        "ink (projection profiles + accents)": lambda image: estimate_geometry(image).rotation,
        "Tesseract OSD (full page)": lambda image: (osd_rotation(image) or (None, 0.0))[0],
        "best-reading turn (Tesseract on a band, up to 4 turns)": lambda image: best_reading_turn(image, engine),
    }
    rows = [
        "| detector | pages | right | no answer | turned pages right | s/page median | p90 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, detect in detectors.items():
        right = none = turned_right = 0
        seconds: list[float] = []
        for image, rotation in pages:
            elapsed, answer = timed(lambda image=image, detect=detect: detect(image))
            seconds.append(elapsed)
            right += answer == rotation
            none += answer is None
            turned_right += rotation != 0 and answer == rotation
        turned = sum(rotation != 0 for _, rotation in pages)
        rows.append(
            f"| {name} | {len(pages)} | {right}/{len(pages)} | {none} | {turned_right}/{turned} | "
            f"{_median(seconds):.3f} | {_p90(seconds):.3f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-kind", type=int, default=6, help="reports of each kind (default 6)")
    parser.add_argument("--workers", type=int, default=2, help="processes reading reports (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logger(verbose=False)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")

    def say(*lines: str) -> None:
        print("\n".join(lines), flush=True)

    with tempfile.TemporaryDirectory(prefix="report_kinds_") as tmp:
        layout = DataLayout(root=Path(tmp) / "data")
        patients = args.per_kind * len(REPORT_KINDS)
        elapsed, truth = timed(lambda: write_phenikaa(
            layout, patients, args.seed, RenderSize(rows=48, columns=48, slices=4), report_kinds=REPORT_KINDS
        ))
        say(f"Command: `{shlex.join(['uv', 'run', 'python', 'bench/report_kinds.py', *sys.argv[1:]])}`",
            f"Export: {patients} patients, {args.per_kind} reports per kind, seed {args.seed}; written in "
            f"{elapsed:.1f} s", "")
        config = PreprocessConfig(data_path=layout.phenikaa, output_path=Path(tmp) / "work/processed",
                                  interim_path=Path(tmp) / "work/interim", workers=args.workers,
                                  corrupted_ids=truth["corrupted_ids"])
        elapsed, _ = timed(lambda: preprocess(config))
        say(f"Pipeline (`preprocess`, {args.workers} workers): {elapsed:.1f} s = {patients / elapsed:.2f} reports/s",
            "")
        records = {r.report_file: r for r in load_report_fields(config.interim_path)}
        with (config.interim_path / "matches.csv").open(encoding="utf-8") as f:
            matches = {m["report_file"]: m for m in csv.DictReader(f)}
        items = []
        for patient in truth["patients"]:
            report = patient["report_truth"]
            record = records.get(report["file"])
            items.append({
                "kind": report["kind"],
                "traits": report["traits"],
                "fields": fields_right(record, patient),
                "match": match_outcome(matches.get(report["file"]), patient),
                "seconds": record.ocr_seconds if record else float("nan"),
                "status": f"{record.status}: {record.reason}" if record and record.status != "ok" else "ok",
            })
        by_kind = {kind: [i for i in items if i["kind"] == kind] for kind in REPORT_KINDS}
        by_kind["all"] = items
        say(*quality_table("kind", by_kind), "")
        say(*quality_table("trait", {trait: [i for i in items if trait in i["traits"]] for trait in TRAITS}), "")
        problems: dict[str, int] = {}
        for item in items:
            for field, ok in item["fields"].items():
                if not ok:
                    key = f"{item['kind']}: {field} wrong ({item['status'].split('(')[0]})"
                    problems[key] = problems.get(key, 0) + 1
        say("Fields read wrong, by kind (record status):", *(f"- {n} x {k}" for k, n in sorted(problems.items())), "")

        files = {p["report_truth"]["file"]: p["report_truth"] for p in truth["patients"]}
        upright = [layout.phenikaa_reports / f for f, r in files.items()
                   if not any(r["rotations"]) and r["exif_orientation"] == 1 and not f.endswith(".pdf")]
        say(*orientation_cost(upright[:19]), "")
        pages = []
        for name, report in files.items():
            path = layout.phenikaa_reports / name
            page = first_page(path)
            if path.suffix == ".pdf":
                document = pdfium.PdfDocument(path)
                text = document[0].get_textpage().get_text_range().strip()
                document.close()
                if text:
                    continue  # a text layer is read, not OCR'd
            pages.append((page, report["rotations"][0]))
        say(*detector_table(pages))


if __name__ == "__main__":
    main()
