"""A huge inbox through the inbox sensor: how long each tick takes and how many runs it asks for.

Run: ``uv run python -m bench.inbox_ticks [--files 10000] [--postgres]`` (from the repository root). Makes an
inbox of ``--files`` report files (small stand-ins: the sensor lists files and looks at their records, it reads
no pixels), then evaluates ``phenikaa_reports_sensor`` tick after tick against a real instance, applying each
tick's dynamic partitions as the daemon does, until every file has its partition. The instance: a SQLite one in
a temporary folder (what ``dagster dev`` uses), or with ``--postgres`` a throw-away PostgreSQL 15 cluster with
deploy/dagster.yaml (the team deployment's storages). Prints JSON: per-tick seconds (evaluation, partitions
added), runs requested per tick and in all, and the largest run.

Goals (issue 15): no tick near Dagster's 60 s sensor timeout, and a few runs, not one per report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from spine_assets.defs.phenikaa import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    REPORTS_PARTITION,
    phenikaa_reports_sensor,
)
from spine_assets.defs.resources import DataRoot

DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy"


def make_inbox(root: Path, files: int) -> Path:
    """``files`` ID-named report stand-ins (a few bytes each) in ``root``'s Phenikaa inbox."""
    inbox = root / "raw/Phenikaa/reports"
    inbox.mkdir(parents=True)
    for i in range(files):
        (inbox / f"{250000000 + i}.png").write_bytes(b"\x89PNG stand-in %d" % i)
    return inbox


def run_ticks(instance: dg.DagsterInstance, paths: DataRoot, files: int) -> dict[str, object]:
    cursor: str | None = None
    ticks: list[dict[str, float | int]] = []
    run_sizes: list[int] = []
    while len(instance.get_dynamic_partitions(REPORTS_PARTITION)) < files:
        start = time.perf_counter()
        result = phenikaa_reports_sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                                 resources={"paths": paths}))
        evaluated = time.perf_counter() - start
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:  # what the daemon applies after the tick
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        applied = time.perf_counter() - start - evaluated
        order = {key: i for i, key in enumerate(instance.get_dynamic_partitions(REPORTS_PARTITION))}
        for request in result.run_requests or []:
            tags = request.tags
            first, last = tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
            run_sizes.append(order[last] - order[first] + 1)
        ticks.append({"evaluate_s": round(evaluated, 3), "add_partitions_s": round(applied, 3),
                      "runs": len(result.run_requests or [])})
        cursor = result.cursor or cursor
        if len(ticks) > files:  # no progress: stop rather than loop for ever
            raise SystemExit("the sensor stopped adding partitions")
    quiet_start = time.perf_counter()
    quiet = phenikaa_reports_sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                            resources={"paths": paths}))
    quiet_seconds = time.perf_counter() - quiet_start
    assert isinstance(quiet, dg.SensorResult) and not quiet.run_requests
    totals = [float(t["evaluate_s"]) + float(t["add_partitions_s"]) for t in ticks]
    return {
        "files": files, "ticks": len(ticks), "runs_requested": len(run_sizes),
        "largest_run_reports": max(run_sizes, default=0), "reports_in_runs": sum(run_sizes),
        "tick_seconds_median": round(statistics.median(totals), 3), "tick_seconds_max": round(max(totals), 3),
        "evaluate_seconds_max": round(max(float(t["evaluate_s"]) for t in ticks), 3),
        "quiet_tick_seconds": round(quiet_seconds, 3), "per_tick": ticks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true", help="deploy/dagster.yaml on a throw-away PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        make_inbox(work / "data", args.files)
        print(f"inbox of {args.files} files in {time.perf_counter() - start:.1f} s")
        paths = DataRoot(root=str(work / "data"))
        if args.postgres:
            from tests.deployment_support import running_postgres

            with running_postgres(work / "logs") as postgres:
                os.environ.update(postgres.environment())
                home = work / "home"
                home.mkdir()
                shutil.copyfile(DEPLOY_CONFIG / "dagster.yaml", home / "dagster.yaml")
                os.environ["DAGSTER_HOME"] = str(home)
                for variable in ("DAGSTER_STORAGE_DIR", "DAGSTER_COMPUTE_LOGS_DIR"):  # what compose mounts
                    os.environ[variable] = str(home / variable.lower())
                with dg.DagsterInstance.get() as instance:
                    outcome = run_ticks(instance, paths, args.files)
        else:
            (work / "home").mkdir()
            with dg.DagsterInstance.local_temp(str(work / "home")) as instance:
                outcome = run_ticks(instance, paths, args.files)
        outcome["instance"] = "postgres (deploy/dagster.yaml)" if args.postgres else "sqlite"
        print(json.dumps(outcome, indent=2))


if __name__ == "__main__":
    main()
