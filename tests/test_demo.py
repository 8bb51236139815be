"""`spine-vision demo`: the README's main command, run for real into a SQLite instance."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from spine_assets.demo import DemoStep
from spine_assets.demo.command import progress_line
from spine_assets.demo.materialize import needs_training

REPO = Path(__file__).resolve().parents[1]
#: ``[ 3/14] ####................ 0:41 spider_nnunet_dataset done in 12.3 s``: count, bar, elapsed, asset, what
PROGRESS = re.compile(r"^\[ *(\d+)/(\d+)\] [#.]{20} \d+:\d\d (\w+) "
                      r"(started|done in \d+\.\d s|FAILED after \d+\.\d s|skipped)(?: \(.*\))?$")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spine_lib.cli", *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def progress_of(stdout: str) -> list[tuple[int, int, str, str]]:
    """(done, total, asset, what) of each progress line, in order; what: started, done, failed or skipped."""
    found = [PROGRESS.match(line) for line in stdout.splitlines()]
    return [(int(m[1]), int(m[2]), m[3], m[4].split()[0].lower()) for m in found if m]


def assert_progress_covers(stdout: str, ran: set[str], skipped: Iterable[str] = ()) -> None:
    """Every asset that ran is shown started, then done; the count rises one per ended step to N/N."""
    steps, skips = progress_of(stdout), set(skipped)
    total = len(ran) + len(skips)
    assert {total} == {t for _, t, _, _ in steps}
    assert [asset for _, _, asset, what in steps if what == "started"] == \
        [asset for _, _, asset, what in steps if what == "done"]  # in process: each ends before the next starts
    assert {asset for _, _, asset, what in steps if what == "done"} == ran
    assert {asset for _, _, asset, what in steps if what == "skipped"} == skips
    ended = [done for done, _, _, what in steps if what != "started"]
    assert ended == list(range(1, total + 1))
    assert stdout.index(f"[{total}/{total}]") < stdout.index("Materialized:")  # the summary comes last


def test_progress_line_shows_count_bar_elapsed_and_step() -> None:
    done = DemoStep("done", "spider_nnunet_dataset", 3, 14, seconds=12.34, elapsed=61)
    assert progress_line(done) == "[ 3/14] ####................ 1:01 spider_nnunet_dataset done in 12.3 s"
    started = DemoStep("started", "phenikaa_report", 0, 14, detail="8 reports")
    assert progress_line(started) == "[ 0/14] .................... 0:00 phenikaa_report started (8 reports)"
    check = DemoStep("check", "spider_raw", 3, 14, detail="spider_mask_values", passed=False)
    assert progress_line(check).endswith(" check spider_raw:spider_mask_values FAILED")
    assert progress_line(DemoStep("skipped", "nnunet_model", 14, 14)).startswith("[14/14] " + "#" * 20)


def test_demo_materializes_into_sqlite_instance(tmp_path: Path) -> None:
    args = ("demo", "--data-root", "data", "--weights", "weights", "--dagster-home", "dh", "--patients", "2",
            "--size", "64", "--quick")  # the models trained for a moment: this tests the graph, not the models
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert ("Materialized:     classifier_model, data_root, ivd_coords_dataset, ivd_crops, localization_model, "
            "nnunet_model, phenikaa_patients, phenikaa_raw, phenikaa_report, phenikaa_report_table, rsna_raw, "
            "spider_nnunet_dataset, spider_raw") in first.stdout
    checks = re.search(r"Asset checks:     (\d+)/(\d+) passed(?: \(failed: (.*)\))?", first.stdout)
    assert checks is not None and checks.group(2) == "19"
    # on two tiny patients only the models' quality floors may fail; every data check passes
    # (and the crops of the Phenikaa patients, whose points come from that briefly trained localizer)
    assert set((checks.group(3) or "").split(", ")) <= {"", "nnunet_model:nnunet_validation_dice",
                                                        "localization_model:localization_val_pck",
                                                        "ivd_crops:ivd_crops_on_their_discs",
                                                        "classifier_model:classifier_beats_baselines",
                                                        "classifier_model:classifier_pfirrmann_kappa"}
    assert "Synthetic data:   written" in first.stdout
    materialized = set(first.stdout.split("Materialized:")[1].split("\n")[0].strip().split(", "))
    assert_progress_covers(first.stdout, ran=materialized)  # one run of reports: phenikaa_report counts once
    assert re.search(r"^Elapsed:          \d+:\d\d$", first.stdout, re.MULTILINE)
    assert (tmp_path / "data/truth/spider.json").is_file()
    assert f"DAGSTER_HOME={tmp_path / 'dh'}" in first.stdout
    assert (tmp_path / "data/raw/SPIDER").is_dir() and (tmp_path / "dh/dagster.yaml").is_file()
    assert (tmp_path / "dh/storage").is_dir()  # SQLite storage, not an ephemeral instance
    latest = json.loads((tmp_path / "weights/localization/latest.json").read_text())
    assert (tmp_path / "weights/localization" / latest["run_id"] / latest["best_model"]).is_file()
    assert list((tmp_path / "weights/segmentation/Dataset501_Spider").glob("*/fold_0/checkpoint_final.pth"))

    second = run_cli(*args, cwd=tmp_path)  # rerun: same outputs, one more materialization, no retraining
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Synthetic data" not in second.stdout  # the existing data root is reused
    assert "phenikaa_report," not in second.stdout  # and no report is read twice
    assert "Up to date:       classifier_model, localization_model, nnunet_model" in second.stdout
    assert "_model," not in second.stdout.split("Materialized:")[1].split("\n")[0]
    models = {"classifier_model", "localization_model", "nnunet_model"}
    assert_progress_covers(second.stdout, ran=materialized - models - {"phenikaa_report"}, skipped=models)
    assert re.search(r"Asset checks:     1[45]/15 passed", second.stdout)  # the crops' on-disc check may fail
    crops = (tmp_path / "data/processed/classification/annotations.csv").read_text().splitlines()
    assert len(crops) > 1 and (tmp_path / "data/processed/phenikaa/radiological_labels.csv").is_file()
    with dg.DagsterInstance.from_config(str(tmp_path / "dh")) as instance:
        records = instance.fetch_materializations(dg.AssetKey("data_root"), limit=10).records
        assert len(records) == 2
        event = records[0].asset_materialization
        assert event is not None
        assert event.metadata["root"].value == str(tmp_path / "data")
        assert event.metadata["folders_created"].value == 0
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
        # the quick models are current for a quick demo; a full one would retrain them
        assert not needs_training(instance, "nnunet_model", "spider_nnunet_dataset", quick=True)
        assert needs_training(instance, "nnunet_model", "spider_nnunet_dataset", quick=False)
        assert needs_training(instance, "classifier_model", "ivd_crops", quick=False)
        spider = instance.fetch_materializations(dg.AssetKey("spider_raw"), limit=1).records[0].asset_materialization
        assert spider is not None
        assert spider.metadata["patients"].value == 2
        assert spider.metadata["masks"].value == len(list((tmp_path / "data/raw/SPIDER/masks").glob("*.mha")))
        model = instance.fetch_materializations(dg.AssetKey("nnunet_model"), limit=10).records
        assert len(model) == 1  # trained once
        model_event = model[0].asset_materialization
        assert model_event is not None
        assert set(model_event.metadata["dice_per_label"].value) == {"vertebra", "spinal_canal", "disc"}  # type: ignore[arg-type]
        dataset = instance.fetch_materializations(dg.AssetKey("spider_nnunet_dataset"), limit=1).records[0]
        assert dataset.asset_materialization is not None
        version = (dataset.asset_materialization.tags or {})["dagster/data_version"]
        assert (model_event.tags or {})["dagster/input_data_version/spider_nnunet_dataset"] == version


def test_demo_reports_a_bad_dagster_home_clearly(tmp_path: Path) -> None:
    (tmp_path / "dh").write_text("a file, not a folder")
    result = run_cli("demo", "--dagster-home", "dh", cwd=tmp_path)
    assert result.returncode == 2
    assert "DAGSTER_HOME exists and is not a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_help_lists_demo() -> None:
    result = run_cli("--help", cwd=REPO)
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_synth_command_writes_the_three_sources(tmp_path: Path) -> None:
    result = run_cli("synth", "--out", "root", "--patients", "1", "--rsna-studies", "2", "--size", "64",
                     "--slices", "6", "--seed", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rsna        2 subjects" in result.stdout
    assert len(list((tmp_path / "root/raw/RSNA/train_images").iterdir())) == 2
    assert sorted(p.name for p in (tmp_path / "root/truth").iterdir()) == [
        "phenikaa.json", "rsna.json", "spider.json", "synthetic.json",
    ]


def test_dataset_phenikaa_command(synthetic_root: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(synthetic_root / "raw/Phenikaa", tmp_path / "Phenikaa")
    result = run_cli("dataset", "phenikaa", "--data-path", "Phenikaa", "--output-path", "out", "--interim-path",
                     "interim", "--corrupted-ids", "25001", "--image-export", "hardlink", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^matched +6$", result.stdout, re.MULTILINE)
    assert sorted(p.name for p in (tmp_path / "interim").iterdir()) == [
        ".matching.lock", "matches.csv", "rejects.csv", "report_fields.csv", "reports",
    ]  # the lock that keeps two matchings of this data root from overlapping
    first = next((tmp_path / "out/images").rglob("*.dcm"))
    assert first.stat().st_nlink == 2  # hard-linked to the hospital's file


def test_dataset_phenikaa_reports_a_missing_inbox(tmp_path: Path) -> None:
    result = run_cli("dataset", "phenikaa", "--data-path", "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere/reports: the Phenikaa export's reports/ folder does not exist" in result.stderr
