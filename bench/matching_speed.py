"""Patient matching at hospital scale: ``PatientMatcher.match_many`` over 10,000 names x 10,000 image folders.

Run: ``uv run python bench/matching_speed.py [--folders 10000 --queries 10000 --repeats 3 --seed 0]``.

Folders: synthetic patients (``make_patients``) named as the hospital exports them (``folder_name``: a quarter
with the birth year), one in twenty exported twice (`` (2)``). Queries: the present patients' full names as
reports print them (upper case with diacritics), three in ten with one OCR error (a letter substituted, dropped
or inserted), the birthday (missing for one in ten) and the exam date (missing for one in twenty); plus one in
twenty patients who have no folder at all (any match of theirs is wrong).

Prints a markdown table: the median time of ``match_many`` (every decision included), of the bare
``rapidfuzz.process.cdist`` (``fuzz.ratio``, all cores) on the same normalized names, and of a per-pair Python
loop over ``fuzz.partial_ratio`` timed on a sample and extrapolated; then precision and recall of the decisions
against the truth.
"""

from __future__ import annotations

import argparse
import statistics
import string
import sys
import time
from collections.abc import Callable
from datetime import date

import numpy as np
from rapidfuzz import fuzz, process

from spine_lib.matching import PatientMatcher, normalize_text
from spine_lib.synthetic.people import SyntheticPatient, make_patients
from spine_lib.synthetic.phenikaa import folder_name


def ocr_noise(name: str, rng: np.random.Generator) -> str:
    """``name`` with one letter substituted, dropped or inserted (never a space)."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    i = letters[int(rng.integers(len(letters)))]
    new = string.ascii_uppercase[int(rng.integers(26))]
    kind = rng.random()
    if kind < 0.5:
        return name[:i] + new + name[i + 1 :]
    if kind < 0.75:
        return name[:i] + name[i + 1 :]
    return name[:i] + new + name[i:]


def build(
    n_folders: int, n_queries: int, seed: int
) -> tuple[list[str], list[str], list[date | None], list[date | None], list[str | None]]:
    """Folder names; query names, birthdays, exam dates; the true folder of each query (``None``: absent)."""
    rng = np.random.default_rng(seed)
    n_repeats = n_folders // 20
    present = make_patients(n_folders - n_repeats, rng)
    folders = [folder_name(p, with_birth_year=i % 4 == 1) for i, p in enumerate(present)]
    repeated = rng.choice(len(present), size=n_repeats, replace=False)
    folders += [folder_name(present[i], with_birth_year=i % 4 == 1, copy=2) for i in repeated]
    n_absent = n_queries // 20
    absent = make_patients(n_absent, np.random.default_rng([seed, 1]))
    asked = [
        int(i) for i in rng.choice(len(present), size=min(n_queries - n_absent, len(present)), replace=False)
    ]
    people: list[tuple[SyntheticPatient, str | None]] = [
        (present[i], folder_name(present[i], with_birth_year=i % 4 == 1)) for i in asked
    ]
    people += [(p, None) for p in absent]
    names, birthdays, exams, truth = [], [], [], []
    for patient, folder in people:
        name = patient.full_name.upper()
        names.append(ocr_noise(name, rng) if rng.random() < 0.3 else name)
        birthdays.append(patient.birthday if rng.random() >= 0.1 else None)
        exams.append(patient.exam_date if rng.random() >= 0.05 else None)
        truth.append(folder)
    return folders, names, birthdays, exams, truth


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--folders", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=300, help="side of the per-pair loop's timed sample")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    folders, names, birthdays, exams, truth = build(args.folders, args.queries, args.seed)
    start = time.perf_counter()
    matcher = PatientMatcher(folders=folders)
    build_s = time.perf_counter() - start
    results = matcher.match_many(names, birthdays, exams)  # warm-up, and the decisions scored below
    ours = median_time(lambda: matcher.match_many(names, birthdays, exams), args.repeats)

    folder_names = [normalize_text(f.name) for f in matcher.folders]  # every folder, duplicates kept
    query_names = [normalize_text(n) for n in names]
    bare = median_time(
        lambda: process.cdist(query_names, folder_names, scorer=fuzz.ratio, workers=-1, dtype=np.float32),
        args.repeats,
    )
    k = args.sample

    def loop() -> None:
        for q in names[:k]:
            for f in folders[:k]:
                fuzz.partial_ratio(q, f)

    loop_s = median_time(loop, 1) * (len(names) * len(folders)) / (k * k)

    print(f"Command: `uv run python {' '.join(sys.argv)}`\n")
    print(
        f"{len(names):,} queries x {len(folders):,} folders ({len(matcher.studies):,} studies, "
        f"{len(matcher._names):,} distinct names); matcher built in {build_s:.2f} s\n"
    )
    print("| what | time (s) | vs match_many |")
    print("|---|---|---|")
    print(f"| `match_many` (cdist + every decision) | {ours:.3f} | 1.0 |")
    print(f"| bare `cdist` (fuzz.ratio, workers=-1, float32) | {bare:.3f} | {bare / ours:.2f} |")
    print(
        f"| per-pair `fuzz.partial_ratio` loop ({k}x{k}, extrapolated) | {loop_s:.1f} | {loop_s / ours:.0f} |"
    )
    print()
    present = sum(t is not None for t in truth)
    print(
        f"Decisions against the truth ({present:,} patients with a folder, {len(truth) - present:,} without):\n"
    )
    print(
        "| matcher | matched | ambiguous | no_match | correct | wrong, has a folder | wrong, has none "
        "| precision | recall |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    tolerant = PatientMatcher(folders=folders, exam_date_tolerance_days=0)
    for label, decided in (
        ("default", results),
        ("exam_date_tolerance_days=0", tolerant.match_many(names, birthdays, exams)),
    ):
        matched = [(r, t) for r, t in zip(decided, truth, strict=True) if r.status == "matched"]
        correct = sum(r.folder is not None and r.folder.folder == t for r, t in matched)
        absent_matched = sum(t is None for _, t in matched)
        statuses = [r.status for r in decided]
        print(
            f"| {label} | {statuses.count('matched')} | {statuses.count('ambiguous')} "
            f"| {statuses.count('no_match')} | {correct} | {len(matched) - correct - absent_matched} "
            f"| {absent_matched} | {correct / max(len(matched), 1):.4f} | {correct / max(present, 1):.4f} |"
        )


if __name__ == "__main__":
    main()
