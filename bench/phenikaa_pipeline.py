"""Phenikaa reports end to end on synthetic data: field accuracy, OCR speed, matching quality, incremental cost.

Run: ``uv run python bench/phenikaa_pipeline.py [--patients 100] [--workers 2]``. The synthetic truth is the
reference. Prints markdown tables:
- per report kind (clean PNG, scanned PNG, text-layer PDF, image-only PDF): exact patient ID, name and birthday
  rates and the median seconds per report;
- inbox throughput (reports per second with ``--workers`` processes);
- matching precision and recall against the true image folders;
- the cost of one new report when 10 versus 1,000 reports are already processed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from spine_lib.core.logging import setup_logger
from spine_lib.datasets.phenikaa import (
    PreprocessConfig,
    ReportFields,
    match_patients,
    process_reports,
    report_files,
    save_report_fields,
)
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root
from spine_lib.synthetic.truth import read_truth


def config_for(data: Path, work: Path, workers: int, corrupted: list[str]) -> PreprocessConfig:
    return PreprocessConfig(data_path=data, output_path=work / "processed", interim_path=work / "interim",
                            workers=workers, corrupted_ids=corrupted)


def accuracy_table(records: list[ReportFields], truth: dict[str, dict[str, str]]) -> None:
    kinds: dict[str, list[tuple[ReportFields, dict[str, str]]]] = {}
    for record in records:
        expected = truth[record.report_file]
        kinds.setdefault(expected["report_format"], []).append((record, expected))
    print("| report kind | reports | exact ID | exact name | exact birthday | median s/report |")
    print("|---|---|---|---|---|---|")
    for kind in sorted(kinds):
        pairs = kinds[kind]
        n = len(pairs)
        ids = sum(r.patient_id == t["patient_id"] for r, t in pairs) / n
        names = sum((r.patient_name or "") == t["full_name"].upper() for r, t in pairs) / n
        born = sum(r.birthday == t["birthday"] for r, t in pairs) / n
        median = statistics.median(r.ocr_seconds for r, _ in pairs)
        print(f"| {kind} | {n} | {ids:.1%} | {names:.1%} | {born:.1%} | {median:.3f} |")
    n = len(records)
    overall = [
        sum(r.patient_id == truth[r.report_file]["patient_id"] for r in records) / n,
        sum((r.patient_name or "") == truth[r.report_file]["full_name"].upper() for r in records) / n,
        sum(r.birthday == truth[r.report_file]["birthday"] for r in records) / n,
    ]
    scanned = [r.ocr_seconds for r in records if truth[r.report_file]["report_format"] == "png_scanned"]
    print(f"| all | {n} | {overall[0]:.1%} | {overall[1]:.1%} | {overall[2]:.1%} | "
          f"{statistics.median(r.ocr_seconds for r in records):.3f} |")
    print(f"\nmedian per scanned report: {statistics.median(scanned):.3f} s")


def matching_table(config: PreprocessConfig, truth: dict[str, dict[str, str]]) -> None:
    import csv

    with (config.interim_path / "matches.csv").open(encoding="utf-8") as f:
        matches = list(csv.DictReader(f))
    right = wrong = 0
    for m in matches:
        if m["status"] != "matched":
            continue
        expected = Path(truth[m["report_file"]]["image_folders"][0]).name  # type: ignore[index]
        right += m["image_folder"] == expected
        wrong += m["image_folder"] != expected
    total = len(truth)
    precision = right / (right + wrong) if right + wrong else 0.0
    print("| reports | matched right | matched wrong | not matched | precision | recall |")
    print("|---|---|---|---|---|---|")
    print(f"| {total} | {right} | {wrong} | {total - right - wrong} | {precision:.2%} | {right / total:.2%} |")
    reasons: dict[str, int] = {}
    for m in matches:
        if m["status"] != "matched":
            kind = f"{m['status']}: {m['reason'].split('(')[0].split(':')[0].strip()}"
            reasons[kind] = reasons.get(kind, 0) + 1
    for kind, count in sorted(reasons.items()):
        print(f"- {count} x {kind}")


def incremental(data: Path, work: Path, processed: int, new_report: Path) -> float:
    """Seconds to process one new report when ``processed`` reports are already done."""
    inbox = work / f"inbox_{processed}"
    reports = inbox / "reports"
    reports.mkdir(parents=True)
    for sub in ("images", "tables"):
        (inbox / sub).symlink_to(data / sub)
    config = config_for(inbox, work / f"run_{processed}", 1, [])
    for i in range(processed):  # processed reports: a file and its stored record
        path = reports / f"{260000000 + i}.png"
        path.write_bytes(b"x")
        stat = path.stat()
        save_report_fields(ReportFields(report_file=path.name, report_format="png", patient_id=path.stem,
                                        patient_name="A B", birthday="1960-01-01", exam_date="2025-01-01",
                                        source_mtime_ns=stat.st_mtime_ns, source_size=stat.st_size),
                           config.interim_path)
    shutil.copyfile(new_report, reports / new_report.name)
    start = time.perf_counter()
    results = process_reports(config)
    seconds = time.perf_counter() - start
    assert len(results) == processed + 1
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logger(verbose=False)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        start = time.perf_counter()
        make_synthetic_root(SynthConfig(out=root, spider_patients=1, rsna_studies=1, phenikaa_patients=args.patients,
                                        size=64, slices=6, seed=args.seed))
        print(f"synthetic root with {args.patients} Phenikaa patients: {time.perf_counter() - start:.1f} s\n")
        truth_data = read_truth(root, "phenikaa")
        truth = {Path(p["report"]).name: p for p in truth_data["patients"]}
        data = root / "raw/Phenikaa"
        config = config_for(data, Path(tmp) / "work", args.workers, truth_data["corrupted_ids"])
        start = time.perf_counter()
        records = process_reports(config)
        seconds = time.perf_counter() - start
        accuracy_table(records, truth)
        print(f"\ninbox of {len(records)} mixed reports with {args.workers} workers: {seconds:.1f} s "
              f"= {len(records) / seconds:.2f} reports/s\n")
        start = time.perf_counter()
        match_patients(config)
        print(f"matching + labels + anonymized image export: {time.perf_counter() - start:.1f} s\n")
        matching_table(config, truth)
        scanned = next(p for p in report_files(data / "reports") if truth[p.name]["report_format"] == "png_scanned")
        small = incremental(data, Path(tmp), 10, scanned)
        large = incremental(data, Path(tmp), 1000, scanned)
        print(f"\none new scanned report: {small:.2f} s with 10 processed, {large:.2f} s with 1,000 "
              f"({large / small:.2f}x)")


if __name__ == "__main__":
    main()
