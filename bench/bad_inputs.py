"""Every stage over the bad-input corpus: crashes, items lost, PHI found (the goal of each is 0).

The corpus (:mod:`spine_lib.synthetic.bad_inputs`) is a small data root whose sources also hold bad items. Each
stage runs as a user runs it, ``spine-vision ... -v --enable-file-log`` in its own process, and then the whole
asset graph runs over a copy of the corpus (``spine-vision demo --quick`` on it: every asset, a SQLite instance). For
each stage it counts:

- crashes: the run ended with a traceback, or with an exit status other than the expected one (0 while bad
  items are rejected, 2 with one clear line for a structurally broken input);
- items lost: a bad item that is neither an output nor a row of the stage's rejects table (or, for a broken
  input, an error that does not name the file, or previous outputs that changed);
- PHI: spellings of the patients' names and birthdays found outside the PHI zone: in outputs and their names,
  weights, console output, log files and the Dagster instance (event log, run storage, compute logs).

    uv run python bench/bad_inputs.py [--out /tmp/bad_inputs]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from spine_lib.core.phi import pseudonym  # noqa: E402
from spine_lib.datasets.phenikaa.inbox import report_partition_key  # noqa: E402
from spine_lib.synthetic.bad_inputs import BadInput, make_bad_input_corpus  # noqa: E402
from tests.phi_support import PHI_ZONE, PhiFinding, find_phi, patient_phi, scan_tree  # noqa: E402

#: the assets of the graph, every one of which the demo must materialize over the corpus
EVERY_ASSET = ("classifier_model", "data_root", "ivd_coords_dataset", "ivd_crops", "localization_model", "nnunet_model",
               "phenikaa_patients", "phenikaa_raw", "phenikaa_report", "phenikaa_report_table", "rsna_raw",
               "spider_nnunet_dataset", "spider_raw")
#: what the console may show for a user error: one line, no traceback
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class StageRun:
    """One command over the corpus and what became of it."""

    stage: str
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    expected: int = 0

    @property
    def crashed(self) -> bool:
        """A traceback, or an exit status other than the expected one (0: bad items rejected, the rest done;
        2: a broken input refused with one line)."""
        return TRACEBACK in self.stderr or TRACEBACK in self.stdout or self.returncode != self.expected


@dataclass
class StageResult:
    """The figures of one stage: cases, crashes, items lost (with why), PHI found (where)."""

    stage: str
    cases: int
    runs: list[StageRun] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    phi: list[PhiFinding] = field(default_factory=list)

    @property
    def crashes(self) -> int:
        return sum(run.crashed for run in self.runs)

    def row(self) -> str:
        seconds = sum(run.seconds for run in self.runs)
        return (f"| {self.stage} | {self.cases} | {len(self.runs)} | {self.crashes} | {len(self.lost)} | "
                f"{len(self.phi)} | {seconds:.0f} |")


def spine_vision(*args: str, cwd: Path, stage: str, expected: int = 0) -> StageRun:
    """``spine-vision <args> -v --enable-file-log`` in its own process, its log under ``logs/<stage>`` (and its
    console output beside it, ``console-<n>.txt``)."""
    logs = cwd / "logs" / stage
    command = [sys.executable, "-m", "spine_lib.cli", *args, "-v", "--enable-file-log", "--log-path", str(logs)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    logs.mkdir(parents=True, exist_ok=True)
    console = logs / f"console-{len(list(logs.glob('console-*.txt')))}.txt"
    console.write_text(f"$ spine-vision {' '.join(args)}\nexit {done.returncode}\n--- stdout\n{done.stdout}\n"
                       f"--- stderr\n{done.stderr}", encoding="utf-8")
    return StageRun(stage, list(args), done.returncode, done.stdout, done.stderr, time.perf_counter() - start,
                    expected)


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def names_of(case: BadInput) -> set[str]:
    """The names a case may go by in a rejects table: its own, or its pseudonyms when it is patient-named."""
    name = Path(case.path.split(":")[0]).name
    return {name, pseudonym(name), report_partition_key(name)}


def rejected(case: BadInput, rows: Iterable[dict[str, str]], *, parent: bool = False) -> bool:
    """True when a row of a rejects table names the case (``parent``: or the folder it lies in, by name or
    pseudonym, for a stray file rejected with its study folder)."""
    if ":" in case.path:  # a row of a table: ``<table>:<line>``, one column each or together
        table, line = Path(case.path).name.rsplit(":", 1)
        return any((row.get("file") == table and row.get("line") == line) or f"{table}:{line}" in " ".join(row.values())
                   for row in rows)
    names = names_of(case)
    if parent:
        folder = Path(case.path).parent.name
        names |= {folder, pseudonym(folder)}
    return any(any(n in " ".join(row.values()) for n in names) for row in rows)


def tree_digest(folder: Path) -> str:
    """One digest of every file's path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def check_cases(result: StageResult, cases: list[BadInput], accounted: Callable[[BadInput], bool]) -> None:
    for case in cases:
        if case.outcome == "reject" and not accounted(case):
            result.lost.append(f"{case.name}: {case.path} is neither an output nor a rejects row")


def run_fatal(work: Path, cases: list[BadInput], result: StageResult) -> None:
    """Each broken coordinates table as ``train_label_coordinates.csv`` of a root whose previous dataset must
    survive: exit 2, one line naming the table, the previous dataset byte for byte unchanged."""
    good = work / "data"
    for case in (c for c in cases if c.outcome == "error"):
        root = work / "fatal_roots" / case.name
        rsna = root / "raw" / "RSNA"
        rsna.mkdir(parents=True)
        for entry in (good / "raw" / "RSNA").iterdir():
            if entry.name != "train_label_coordinates.csv":
                (rsna / entry.name).symlink_to(entry)
        shutil.copyfile(work / case.path, rsna / "train_label_coordinates.csv")
        shutil.copytree(good / "processed" / "ivd_coords", root / "processed" / "ivd_coords")
        before = tree_digest(root / "processed" / "ivd_coords")
        run = spine_vision("dataset", "localization", "--base-path", str(root), cwd=work, stage="localization",
                           expected=2)
        result.runs.append(run)
        error_lines = [line for line in run.stderr.splitlines() if "ERROR" in line]
        if run.returncode != 2 or not any("train_label_coordinates.csv" in line for line in error_lines):
            result.lost.append(f"{case.name}: exit {run.returncode}, error lines {error_lines[-1:]}")
        if tree_digest(root / "processed" / "ivd_coords") != before:
            result.lost.append(f"{case.name}: the previous dataset changed")


def account_phenikaa(data: Path, by_stage: dict[str, list[BadInput]], result: StageResult) -> None:
    """Each bad report, stray file, damaged slice, emptied folder and bad cell is a rejects row; each inbox entry
    a report record or a reject."""
    rejects = read_rows(data / "interim/Phenikaa/rejects.csv")
    fields = read_rows(data / "interim/Phenikaa/report_fields.csv")
    refused = [row for row in fields if row.get("status") == "rejected"]
    check_cases(result, by_stage["reports"], lambda c: rejected(c, rejects) or rejected(c, refused))
    check_cases(result, by_stage["phenikaa"], lambda c: rejected(c, rejects, parent=c.name != "not_a_grade"))
    recorded = {row["report_file"] for row in fields}
    for entry in sorted((data / "raw/Phenikaa/reports").iterdir()):
        if entry.name not in recorded and not rejected(BadInput("reports", entry.name, entry.name, ""), rejects):
            result.lost.append(f"inbox entry {entry.name} is neither a report record nor a reject")


def account_nnunet(dataset: Path, by_stage: dict[str, list[BadInput]], result: StageResult) -> None:
    rows = [row for folder in (dataset.parent, dataset) for path in sorted(folder.glob("*rejects*.csv"))
            for row in read_rows(path)]
    check_cases(result, by_stage["nnunet"], lambda c: rejected(c, rows))


def account_localization(data: Path, by_stage: dict[str, list[BadInput]], result: StageResult) -> None:
    rows = read_rows(data / "processed/ivd_coords/rejects.csv")
    check_cases(result, by_stage["localization"], lambda c: rejected(c, rows))


def run_corpus(work: Path) -> list[StageResult]:
    """Write the corpus under ``work`` and run every stage over it; the figures per stage."""
    cases = make_bad_input_corpus(work)
    shutil.copytree(work / "data", work / "assets" / "data")  # the asset graph gets its own copy
    by_stage: dict[str, list[BadInput]] = {}
    for case in cases:
        by_stage.setdefault(case.stage, []).append(case)
    data = work / "data"
    results: list[StageResult] = []

    # Reports and the hospital export: one job.
    phenikaa = StageResult("reports + phenikaa export", len(by_stage["reports"]) + len(by_stage["phenikaa"]))
    phenikaa.runs.append(spine_vision("dataset", "phenikaa", "--data-path", str(data / "raw/Phenikaa"),
                                      "--output-path", str(data / "processed/phenikaa"), "--interim-path",
                                      str(data / "interim/Phenikaa"), "--workers", "2", cwd=work, stage="phenikaa"))
    account_phenikaa(data, by_stage, phenikaa)
    results.append(phenikaa)

    # SPIDER -> nnU-Net.
    nnunet = StageResult("nnunet conversion", len(by_stage["nnunet"]))
    dataset = data / "processed/SPIDER/Dataset501_Spider"
    nnunet.runs.append(spine_vision("dataset", "nnunet", "--input-path", str(data / "raw/SPIDER"), "--output-path",
                                    str(dataset), "--workers", "2", cwd=work, stage="nnunet"))
    account_nnunet(dataset, by_stage, nnunet)
    results.append(nnunet)

    # RSNA -> IVD localization dataset, then the broken tables.
    localization = StageResult("localization dataset", len(by_stage["localization"]))
    localization.runs.append(spine_vision("dataset", "localization", "--base-path", str(data), cwd=work,
                                          stage="localization"))
    account_localization(data, by_stage, localization)
    run_fatal(work, by_stage["localization"], localization)
    results.append(localization)

    # Models: a one-epoch localizer, the crops at its points, a one-epoch grading model, then `test`.
    models = StageResult("synth, training, crops, test", len(by_stage["test"]))
    models.runs.append(spine_vision("synth", "--out", str(work / "synth"), "--patients", "1", "--size", "64",
                                    "--slices", "8", cwd=work, stage="synth"))
    common = ("--device", "cpu", "--num-epochs", "1", "--batch-size", "8", "--weights-path", str(work / "weights"),
              "--no-visualize-predictions")
    models.runs.append(spine_vision("train", "localization", "--data-path", str(data / "processed/ivd_coords"),
                                    "--model-variant", "atto", "--image-size", "64", "64", "--run-id", "corpus",
                                    *common, cwd=work, stage="train_localization"))
    localizer = work / "weights/localization/corpus/best_model.pt"
    models.runs.append(spine_vision("dataset", "classification", "--base-path", str(data), "--weights-path",
                                    str(work / "weights"), "--include-phenikaa", "--include-spider", "--device",
                                    "cpu", cwd=work, stage="crops"))
    models.runs.append(spine_vision("train", "classification", "--data-path", str(data / "processed/classification"),
                                    "--backbone", "resnet18", "--output-size", "64", "64", "--run-id", "corpus",
                                    *common, cwd=work, stage="train_classification"))
    inputs = sorted(str(p) for p in (work / "inputs/test").iterdir())
    crops = sorted((data / "processed/classification/images").glob("*.png"))[:1]
    for task, model, extra in (("localization", localizer, inputs),
                               ("mtl_classification", work / "weights/classification/corpus/best_model.pt",
                                [*(str(c) for c in crops), *inputs[:-1]])):
        out = work / f"test_{task}.csv"
        run = spine_vision("test", "--task", task, "--model-path", str(model), "--inputs", *extra, "--device", "cpu",
                           "--output-path", str(out), "--localization-model-path", str(localizer), cwd=work,
                           stage=f"test_{task}")
        models.runs.append(run)
        try:
            errors = json.loads(run.stdout).get("errors", [])
        except json.JSONDecodeError:
            errors = []
        for case in by_stage["test"]:
            name = Path(case.path).name
            if str(work / case.path) in extra and not any(name in e.get("input", "") or pseudonym(name) in
                                                          e.get("input", "") for e in errors):
                models.lost.append(f"test {task}: {case.name} is neither a prediction nor an error row")
    results.append(models)

    # Every asset over its own copy of the corpus, into a SQLite instance; then `visualize` with its nnU-Net.
    assets = StageResult("every asset (demo on the corpus)", sum(c.outcome == "reject" and c.stage != "test"
                                                                 for c in cases))
    home = work / "assets"
    assets.runs.append(spine_vision("demo", "--data-root", str(home / "data"), "--weights", str(home / "weights"),
                                    "--dagster-home", str(home / "dh"), "--size", "64", "--quick", cwd=work, stage="demo"))
    materialized = assets.runs[-1].stdout.partition("Materialized:")[2].partition("\n")[0]
    if len([name for name in materialized.split(",") if name.strip()]) != len(EVERY_ASSET):
        assets.lost.append(f"the demo materialized {materialized.strip() or 'nothing'}; expected {len(EVERY_ASSET)}")
    # the assets' own rejects tables account for the same items as the commands'
    account_phenikaa(home / "data", by_stage, assets)
    account_nnunet(home / "data/processed/SPIDER/Dataset501_Spider", by_stage, assets)
    account_localization(home / "data", by_stage, assets)
    assets.runs.append(spine_vision("visualize", "--batch", "--input-path", str(home / "data/raw/Phenikaa/images"),
                                    "--output-path", str(work / "views"), "--model-path",
                                    str(home / "weights/segmentation"), "--configuration", "2d", "--fold", "0",
                                    "--device", "cpu", "--output-mode", "html", cwd=work, stage="visualize"))
    results.append(assets)

    forms = patient_phi(data) | patient_phi(home / "data") | patient_phi(work / "synth")
    for result in results:
        for run in result.runs:
            result.phi += find_phi(run.stdout + run.stderr, forms, f"console of {' '.join(run.args[:2])}")
    scans = {
        "reports + phenikaa export": [scan_tree(data / "processed/phenikaa", forms)],
        "nnunet conversion": [scan_tree(data / "processed/SPIDER", forms)],
        "localization dataset": [scan_tree(data / "processed/ivd_coords", forms)],
        "synth, training, crops, test": [scan_tree(data / "processed/classification", forms),
                                         scan_tree(work / "weights", forms)]
                                        + [find_phi(p.read_text(errors="ignore"), forms, p.name)
                                           for p in work.glob("test_*.csv")],
        "every asset (demo on the corpus)": [scan_tree(home / "data", forms, skip=PHI_ZONE),
                                             scan_tree(home / "weights", forms), scan_tree(home / "dh", forms),
                                             scan_tree(work / "views", forms)],
    }
    for result in results:
        for found in scans[result.stage]:
            result.phi += found
        logs = work / "logs"
        for log in sorted(logs.rglob("*.log")):
            stage = log.parent.name
            if stage in _LOG_STAGES.get(result.stage, ()):
                result.phi += find_phi(log.read_text(errors="ignore"), forms, f"logs/{stage}/{log.name}")
    return results


_LOG_STAGES = {
    "reports + phenikaa export": ("phenikaa",),
    "nnunet conversion": ("nnunet",),
    "localization dataset": ("localization",),
    "synth, training, crops, test": ("synth", "train_localization", "crops",
                                     "train_classification", "test_localization", "test_mtl_classification"),
    "every asset (demo on the corpus)": ("demo", "visualize"),
}

HEADER = ("| stage | bad-input cases | runs | crashes | items lost | PHI strings found | seconds |\n"
          "|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: a temporary one).")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="bad_inputs_"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work}: not empty")
    results = run_corpus(work)
    print(HEADER)
    for result in results:
        print(result.row())
    for result in results:
        for line in result.lost + [str(p) for p in result.phi]:
            print(f"{result.stage}: {line}")
        for run in result.runs:
            if run.crashed:
                print(f"{result.stage}: crash in {' '.join(run.args[:2])} (exit {run.returncode}):\n"
                      f"{run.stderr[-2000:]}")
    print(json.dumps({r.stage: {"cases": r.cases, "crashes": r.crashes, "lost": len(r.lost), "phi": len(r.phi)}
                      for r in results}))
    print(f"Work folder: {work}")


if __name__ == "__main__":
    main()
