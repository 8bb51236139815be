"""README's "Using Spine Vision from CI": its commands, run as a CI job runs them, against a temporary instance."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from spine_assets.defs.phenikaa import REPORTS_PARTITION
from spine_assets.environment import DAGSTER_HOME_ENV, DATA_ROOT_ENV, INSTANCE_TEMPLATE, WEIGHTS_ENV
from spine_lib.datasets.phenikaa import report_files, report_partition_key

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Using Spine Vision from CI"
IN_PROCESS = '{"execution": {"config": {"in_process": {}}}}'


def readme_ci_block() -> tuple[list[str], str]:
    """The section's first bash block: the variables its ``export`` line sets, and the other lines as a script
    (without ``uv run``: the test runs in this environment)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no bash block in README's {SECTION!r}"
    lines = block.group(1).splitlines()
    exports = [line for line in lines if line.startswith("export ")]
    assert len(exports) == 1, "the block sets its variables on one export line"
    script = "\n".join(line for line in lines if not line.startswith("export ")).replace("uv run ", "")
    return re.findall(r"(\w+)=", exports[0]), script


def ci_env(dagster_home: Path, data_root: Path, weights: Path) -> dict[str, str]:
    """This environment (its Python first on PATH) with the instance, data root and weights of a CI job."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            DAGSTER_HOME_ENV: str(dagster_home), DATA_ROOT_ENV: str(data_root), WEIGHTS_ENV: str(weights)}


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{script}"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_readme_block_sets_the_instance_data_root_and_weights() -> None:
    names, _ = readme_ci_block()
    assert set(names) == {DAGSTER_HOME_ENV, DATA_ROOT_ENV, WEIGHTS_ENV}


@pytest.mark.slow
def test_readme_ci_commands_materialize_into_the_instance(synthetic_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(synthetic_root / "raw", data / "raw")
    dagster_home = tmp_path / "dh"
    _, script = readme_ci_block()
    result = bash(script, ci_env(dagster_home, data, tmp_path / "weights"))
    assert result.returncode == 0, result.stderr[-4000:]

    assert (dagster_home / "dagster.yaml").read_text() == INSTANCE_TEMPLATE.read_text()
    assert (dagster_home / "storage").is_dir()  # SQLite in DAGSTER_HOME, not a temporary instance
    reports = [report_partition_key(p.name) for p in report_files(data / "raw/Phenikaa/reports")]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        selected = {"data_root", "phenikaa_raw", "spider_raw", "spider_nnunet_dataset", "phenikaa_report",
                    "phenikaa_report_table", "phenikaa_patients"}
        for key in selected:
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
        assert instance.get_latest_materialization_event(dg.AssetKey("rsna_raw")) is None  # not selected
        assert list(instance.get_dynamic_partitions(REPORTS_PARTITION)) == reports
        assert instance.get_materialized_partitions(dg.AssetKey("phenikaa_report")) == {reports[0]}
        patients = instance.get_latest_materialization_event(dg.AssetKey("phenikaa_patients"))
        assert patients is not None and patients.asset_materialization is not None
        printed = ast.literal_eval(result.stdout.strip().splitlines()[-1])  # the block's last command
        assert printed == {k: v.value for k, v in patients.asset_materialization.metadata.items()}

    labels = (data / "processed/SPIDER/Dataset501_Spider/dataset.json").read_text()
    assert '"disc": 3' in labels  # the run config's schema_name, spider_groups: background, vertebra, canal, disc
    assert len(list((data / "interim/Phenikaa/reports").glob("*.json"))) == 1  # one partition, one report read
    assert (data / "interim/Phenikaa/report_fields.csv").is_file()
    assert (data / "processed/phenikaa/radiological_labels.csv").is_file()


def test_ci_materialize_exits_non_zero_when_a_step_fails(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dh"
    dagster_home.mkdir()
    shutil.copyfile(INSTANCE_TEMPLATE, dagster_home / "dagster.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    command = ("dagster asset materialize -m spine_assets.definitions --select spider_nnunet_dataset "
               f"--config-json '{IN_PROCESS}'")
    result = bash(command, ci_env(dagster_home, empty, tmp_path / "weights"))
    assert result.returncode == 1
    assert "Materialization failed" in result.stderr and "SPIDER folder does not exist" in result.stderr
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert [run.status for run in instance.get_runs()] == [dg.DagsterRunStatus.FAILURE]
