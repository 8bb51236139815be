"""Time and accuracy of report text extraction (spine_lib.ocr.DocumentExtractor) per document kind.

Run: ``uv run python bench/ocr_speed.py [--n 20] [--seed 0]``. Writes N scanned PNG reports, N image-only PDFs
and N text-layer PDFs, each of a distinct synthetic patient, then extracts every one twice, header band only
(``region=(0.0, 0.45)``, where the patient fields are) and the full page, the two calls alternated so that drift
hits both alike. Prints a markdown table: median and max seconds per document and how many documents gave each
field exactly (patient ID, upper-case name with diacritics, birthday ``DD/MM/YYYY`` found in a line), and the
command line. One extractor (one Tesseract engine) serves every call, after one untimed warm-up call.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spine_lib.ocr import DocumentExtractor, DocumentText
from spine_lib.synthetic.people import SyntheticPatient, make_patients
from spine_lib.synthetic.reports import render_report_pdf, render_report_png, report_lines

HEADER = (0.0, 0.45)
FINDINGS: dict[str, dict[str, int]] = {
    "L4/L5": {"pfirrmann": 4, "modic": 1, "herniation": 1, "narrowing": 1},
    "L5/S1": {"pfirrmann": 3, "bulging": 1},
}
KINDS = ("scanned PNG", "image-only PDF", "text-layer PDF")
FIELDS = ("id", "name", "birthday")


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def fields_found(doc: DocumentText, patient: SyntheticPatient) -> dict[str, bool]:
    """Whether each field appears exactly in one line of ``doc`` (whitespace normalised)."""
    texts = [_norm(line.text) for line in doc.lines]
    wanted = {
        "id": patient.patient_id,
        "name": _norm(patient.full_name.upper()),
        "birthday": f"{patient.birthday:%d/%m/%Y}",
    }
    return {field: any(value in text for text in texts) for field, value in wanted.items()}


def write_documents(folder: Path, n: int, seed: int) -> dict[str, list[tuple[Path, SyntheticPatient]]]:
    """N documents per kind, every one of another patient."""
    rng = np.random.default_rng(seed)
    patients = make_patients(n * len(KINDS), rng)
    documents: dict[str, list[tuple[Path, SyntheticPatient]]] = {kind: [] for kind in KINDS}
    for index, patient in enumerate(patients):
        kind = KINDS[index % len(KINDS)]
        lines = report_lines(patient, FINDINGS)
        stem = folder / f"{index:03d}_{patient.patient_id}"
        if kind == "scanned PNG":
            path = render_report_png(lines, stem.with_suffix(".png"), scanned=True, rng=rng)
        else:
            path = render_report_pdf(
                lines, stem.with_suffix(".pdf"), text_layer=kind == "text-layer PDF", rng=rng
            )
        documents[kind].append((path, patient))
    return documents


def timed(fn: Callable[[], DocumentText]) -> tuple[float, DocumentText]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description="Time and accuracy of report text extraction per kind.")
    parser.add_argument("--n", type=int, default=20, help="documents per kind (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic patients and scans")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ocr_speed_") as tmp:
        start = time.perf_counter()
        documents = write_documents(Path(tmp), args.n, args.seed)
        generation = time.perf_counter() - start

        extractor = DocumentExtractor()
        warm_path = documents["scanned PNG"][0][0]
        warm_up, _ = timed(lambda: extractor.extract(warm_path, region=HEADER))  # engine + traineddata load

        rows: list[str] = []
        for kind in KINDS:
            seconds: dict[str, list[float]] = {"header": [], "full": []}
            found: dict[str, dict[str, int]] = {
                "header": dict.fromkeys(FIELDS, 0),
                "full": dict.fromkeys(FIELDS, 0),
            }
            sources: set[str] = set()
            for i, (path, patient) in enumerate(documents[kind]):
                calls = {"header": HEADER, "full": None}
                order = ["header", "full"] if i % 2 == 0 else ["full", "header"]
                for which in order:
                    region = calls[which]
                    elapsed, doc = timed(
                        lambda path=path, region=region: extractor.extract(path, region=region)
                    )
                    seconds[which].append(elapsed)
                    sources.add(doc.source)
                    for field, ok in fields_found(doc, patient).items():
                        found[which][field] += ok
            n = len(documents[kind])
            header, full = statistics.median(seconds["header"]), statistics.median(seconds["full"])

            def accuracy(which: str, n: int = n, found: dict[str, dict[str, int]] = found) -> str:
                return " | ".join(f"{found[which][field]}/{n}" for field in FIELDS)

            rows.append(
                f"| {kind} | {'+'.join(sorted(sources))} | {n} | {header:.3f} | {max(seconds['header']):.3f} | "
                f"{full:.3f} | {max(seconds['full']):.3f} | {full / header:.2f} | {accuracy('header')} | "
                f"{accuracy('full')} |"
            )

    command = shlex.join(["uv", "run", "python", "bench/ocr_speed.py", *sys.argv[1:]])
    print(f"Command: `{command}`")
    print(f"Documents: {args.n} per kind, seed {args.seed}; generated in {generation:.1f} s")
    print(
        f"Engine: {extractor.engine.name}; warm-up call (engine start, first Tesseract run): {warm_up:.2f} s"
    )
    print()
    print(
        "| kind | source | docs | header median (s) | header max (s) | full median (s) | full max (s) | "
        "full/header | header: ID | name | birthday | full: ID | name | birthday |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
