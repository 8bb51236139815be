"""Every stage over the bad-input corpus, as a user runs it (``-v``, file logs), and the whole asset graph over it.

Each bad item ends as an output or a row of its stage's rejects table; a structurally broken input ends with one
line naming the file and leaves the previous outputs as they were; no run crashes; no spelling of a patient's
name or birthday reaches an output, a file name, a log, the console or the Dagster instance
(:mod:`bench.bad_inputs` does the running and the counting; its table is in bench/RESULTS.md).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.bad_inputs import StageResult, run_corpus
from spine_lib.synthetic.bad_inputs import read_bad_inputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, StageResult]]:
    work = tmp_path_factory.mktemp("bad_inputs")
    return work, {result.stage: result for result in run_corpus(work)}


def test_the_corpus_holds_cases_for_every_stage(corpus: tuple[Path, dict[str, StageResult]]) -> None:
    work, _ = corpus
    counts = Counter(case.stage for case in read_bad_inputs(work))
    assert set(counts) == {"reports", "phenikaa", "nnunet", "localization", "test"}
    assert all(count >= 3 for count in counts.values())
    assert Counter(case.outcome for case in read_bad_inputs(work))["error"] == 5


@pytest.mark.parametrize("stage", ["reports + phenikaa export", "nnunet conversion", "localization dataset",
                                   "synth, training, crops, test", "every asset (demo on the corpus)"])
def test_no_run_crashes(corpus: tuple[Path, dict[str, StageResult]], stage: str) -> None:
    result = corpus[1][stage]
    crashed = [f"{' '.join(run.args[:2])} exit {run.returncode}: {run.stderr[-1500:]}" for run in result.runs
               if run.crashed]
    assert not crashed


@pytest.mark.parametrize("stage", ["reports + phenikaa export", "nnunet conversion", "localization dataset",
                                   "synth, training, crops, test"])
def test_no_item_is_lost(corpus: tuple[Path, dict[str, StageResult]], stage: str) -> None:
    assert corpus[1][stage].lost == []


@pytest.mark.parametrize("stage", ["reports + phenikaa export", "nnunet conversion", "localization dataset",
                                   "synth, training, crops, test", "every asset (demo on the corpus)"])
def test_no_name_or_birthday_leaves_the_phi_zone(corpus: tuple[Path, dict[str, StageResult]], stage: str) -> None:
    assert [str(finding) for finding in corpus[1][stage].phi] == []


def test_the_scan_finds_what_it_looks_for(corpus: tuple[Path, dict[str, StageResult]]) -> None:
    """The PHI zone does hold the names (the scan is not blind): report names, folders, DICOM headers."""
    from tests.phi_support import patient_phi, scan_tree

    work, _ = corpus
    forms = patient_phi(work / "data")
    found = {finding.where.split("/")[1] for finding in scan_tree(work / "data" / "raw" / "Phenikaa", forms)}
    assert {"images", "reports"} <= found
