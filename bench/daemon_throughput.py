"""Many reports through the daemon against the CLI on the same files, and what a fresh instance reads again.

Run: ``uv run python -m bench.daemon_throughput [--reports 100] [--workers 2]`` (from the repository root; needs
Debian's ``postgresql``). It makes a synthetic root of ``--reports`` Phenikaa patients, then:

1. **CLI**: ``spine-vision dataset phenikaa`` as a command (its process start-up included) on one copy, and
   :func:`spine_lib.datasets.phenikaa.preprocess` (the library call the command makes: read every report,
   match, export) in this process on another; reports per second of each.
2. **Daemon**: the team deployment as processes (tests/deployment_support.py: PostgreSQL, code server,
   webserver, daemon on deploy/dagster.yaml) on a second copy with an empty inbox; the raw assets materialized,
   then every report dropped at once; timed from the drop to the ``phenikaa_patients`` materialization that
   matches them all (sensor intervals included). Counts the runs the reports took.
3. **Fresh instance after the CLI**: a new deployment (new PostgreSQL, empty sensor cursor) on the CLI's copy,
   whose records are current; after the inbox sensor's first ticks: how many reports were read again (goal 0).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from datetime import UTC
from pathlib import Path

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.phenikaa import PreprocessConfig, preprocess
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root
from tests.deployment_support import (
    Deployment,
    Materialization,
    Postgres,
    last_materialization_id,
    launch_assets,
    materializations_after,
    running_deployment,
    running_postgres,
    wait_for,
    wait_for_run,
)

INBOX_SENSOR = "phenikaa_reports_sensor"


def copy_phenikaa(synthetic: Path, root: Path, with_reports: bool) -> None:
    shutil.copytree(synthetic / "raw/Phenikaa", root / "raw/Phenikaa",
                    ignore=None if with_reports else lambda folder, names: names if Path(folder).name == "reports" else [])
    (root / "raw/Phenikaa/reports").mkdir(parents=True, exist_ok=True)


INBOX_JOBS = ("phenikaa_inbox_job", "phenikaa_report_job")  # what the sensor launches; a click's job


def report_runs(postgres: Postgres) -> list[tuple[str, str]]:
    with postgres.connect() as connection:
        rows = connection.execute("SELECT run_id, status FROM runs WHERE pipeline_name = ANY(%s)",
                                  (list(INBOX_JOBS),)).fetchall()
    return [(str(r), str(s)) for r, s in rows]


def run_timeline(postgres: Postgres, run_ids: list[str], since: float) -> dict[str, float]:
    """Seconds from ``since`` (the drop) to the first run's creation (the sensor's request), its start (out of the
    queue, its process up) and the last run's end."""
    with postgres.connect() as connection:
        row = connection.execute("SELECT min(create_timestamp), min(start_time), max(end_time) FROM runs "
                                 "WHERE run_id = ANY(%s)", (run_ids,)).fetchone()
    created = row[0].replace(tzinfo=UTC).timestamp() if row and row[0] is not None else float("nan")
    return {"requested": round(created - since, 1), "started": round(float(row[1]) - since, 1) if row else float("nan"),
            "ended": round(float(row[2]) - since, 1) if row else float("nan")}


def first_requesting_tick(postgres: Postgres, since: float) -> dict[str, float]:
    """Seconds from ``since`` (the drop) to the start and the end of the inbox sensor's first tick after it that
    requested runs (from the ticks PostgreSQL stores)."""
    from dagster._core.scheduler.instigation import TickData
    from dagster._serdes import deserialize_value

    with postgres.connect() as connection:
        bodies = connection.execute("SELECT tick_body FROM job_ticks ORDER BY id").fetchall()
    for (body,) in bodies:
        tick = deserialize_value(body, TickData)
        if tick.instigator_name == INBOX_SENSOR and tick.run_ids and tick.timestamp >= since - 5:
            ended = tick.end_timestamp if tick.end_timestamp is not None else float("nan")
            return {"tick_started": round(tick.timestamp - since, 1), "tick_ended": round(ended - since, 1)}
    return {}


def cpu_seconds(deployment: Deployment) -> dict[str, float]:
    """CPU seconds each service has used so far, its waited-for children (run workers, Tesseract) included."""
    import psutil

    out: dict[str, float] = {}
    for name, server in deployment.servers.items():
        times = psutil.Process(server.process.pid).cpu_times()
        out[name] = times.user + times.system + times.children_user + times.children_system
    return out


def step_seconds(postgres: Postgres, run_ids: list[str]) -> dict[str, float]:
    """Seconds from each step's start to its end, summed over the runs, by step (asset) name."""
    with postgres.connect() as connection:
        rows = connection.execute(
            "SELECT step_key, min(timestamp), max(timestamp) FROM event_logs WHERE run_id = ANY(%s) AND "
            "dagster_event_type IN ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') GROUP BY run_id, step_key",
            (run_ids,)).fetchall()
    out: dict[str, float] = {}
    for step, start, end in rows:
        out[str(step)] = out.get(str(step), 0.0) + (end - start).total_seconds()
    return {k: round(v, 1) for k, v in sorted(out.items())}


def run_seconds(postgres: Postgres, run_ids: list[str]) -> float:
    """The runs' own time: from the first start to the last end (process start-up included)."""
    with postgres.connect() as connection:
        rows = connection.execute("SELECT min(start_time), max(end_time) FROM runs WHERE run_id = ANY(%s)",
                                  (run_ids,)).fetchone()
    return float(rows[1] - rows[0]) if rows and rows[0] is not None and rows[1] is not None else float("nan")


def sensor_cursor_size(postgres: Postgres) -> int:
    from dagster._core.scheduler.instigation import InstigatorState
    from dagster._serdes import deserialize_value

    with postgres.connect() as connection:
        bodies = connection.execute("SELECT instigator_body FROM instigators").fetchall()
    for (body,) in bodies:
        state = deserialize_value(body, InstigatorState)
        if state.name == INBOX_SENSOR and state.sensor_instigator_data and state.sensor_instigator_data.cursor:
            return len(json.loads(state.sensor_instigator_data.cursor))
    return 0


def raw_assets(deployment: Deployment) -> None:
    assert wait_for_run(deployment, launch_assets(deployment, ["data_root", "phenikaa_raw"]), 300) == "SUCCESS"


def in_process_seconds(synthetic: Path, root: Path, workers: int) -> dict[str, float]:
    """The sensor's job on every report, run by ``execute_in_process`` in this process on an ephemeral instance:
    the same steps as in the deployment without its services, queue and launch. Seconds per step."""
    import os

    import dagster as dg

    from spine_assets.defs.phenikaa import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
        REPORTS_PARTITION,
    )
    from spine_lib.datasets.phenikaa import reports_by_key

    copy_phenikaa(synthetic, root, with_reports=True)
    os.environ["SPINE_DATA_ROOT"] = str(root)
    from spine_assets.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    keys = sorted(reports_by_key(root / "raw/Phenikaa/reports"))
    instance.add_dynamic_partitions(REPORTS_PARTITION, keys)
    job = defs().resolve_job_def("phenikaa_inbox_job")
    begin = time.monotonic()
    result = job.execute_in_process(
        instance=instance, run_config={"resources": {"phenikaa": {"config": {"workers": workers}}}},
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
    total = time.monotonic() - begin
    entries = [e for e in instance.all_logs(result.run_id) if e.dagster_event is not None]
    starts = {str(e.step_key): e.timestamp for e in entries if e.dagster_event and e.dagster_event.is_step_start}
    ends = {str(e.step_key): e.timestamp for e in entries if e.dagster_event and e.dagster_event.is_step_success}
    return {"total": round(total, 1), **{k: round(ends[k] - starts[k], 1) for k in sorted(ends) if k in starts}}


def cli_command_seconds(synthetic: Path, root: Path, workers: int) -> float:
    """``spine-vision dataset phenikaa`` on a copy of the reports, as a user runs it: seconds of the command."""
    import subprocess
    import sys

    copy_phenikaa(synthetic, root, with_reports=True)
    paths = PreprocessConfig.layout_paths(DataLayout(root))
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in paths.items()]
    command = [str(Path(sys.executable).parent / "spine-vision"), "dataset", "phenikaa", *flags,
               f"--workers={workers}"]
    begin = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--in-process", action="store_true",
                        help="also time the inbox job by execute_in_process on a third copy (no deployment)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spine-daemon-bench-"))
    try:
        synthetic = work / "synthetic"
        begin = time.monotonic()
        make_synthetic_root(SynthConfig(out=synthetic, spider_patients=1, rsna_studies=1,
                                        phenikaa_patients=args.reports, size=128, slices=12, seed=args.seed))
        print(f"synthetic root: {args.reports} Phenikaa patients in {time.monotonic() - begin:.0f} s")

        cli_root = work / "cli"
        copy_phenikaa(synthetic, cli_root, with_reports=True)
        # the settings both paths use: the defaults (the deployment's PhenikaaSettings), the same workers
        config = PreprocessConfig.for_layout(DataLayout(cli_root), workers=args.workers)
        begin = time.monotonic()
        cli = preprocess(config)
        cli_seconds = time.monotonic() - begin
        cli_matched = cli.as_metadata()["matched"]
        print(f"library call: {args.reports} reports in {cli_seconds:.1f} s ({args.reports / cli_seconds:.2f} "
              f"reports/s), matched {cli_matched}")
        command_seconds = cli_command_seconds(synthetic, work / "command", args.workers)
        print(f"CLI command: {args.reports} reports in {command_seconds:.1f} s "
              f"({args.reports / command_seconds:.2f} reports/s)")

        if args.in_process:
            print(f"inbox job outside the deployment: {in_process_seconds(synthetic, work / 'plain', args.workers)}")

        daemon_root = work / "daemon"
        copy_phenikaa(synthetic, daemon_root, with_reports=False)
        reports = sorted((synthetic / "raw/Phenikaa/reports").iterdir())
        with running_postgres(work / "logs") as postgres, \
                running_deployment(postgres, work / "d1", daemon_root, work / "weights") as deployment:
            raw_assets(deployment)
            before = last_materialization_id(postgres, "phenikaa_patients")
            # a real drop lands at any moment of the daemon's 5 s sensor loop; right after the raw assets' run
            # it landed at the same moment each time (the first tick 4.4-4.6 s after it)
            phase = random.SystemRandom().uniform(0.0, 5.0)  # not the global generator: the synthetic root seeds it
            print(f"dropping the reports {phase:.1f} s after the raw assets' run")
            time.sleep(phase)
            cpu_before = cpu_seconds(deployment)
            dropped = time.time()
            for report in reports:
                shutil.copyfile(report, daemon_root / "raw/Phenikaa/reports" / report.name)

            def all_matched() -> Materialization | None:
                deployment.check_alive()
                failed = [run_id for run_id, status in report_runs(postgres) if status == "FAILURE"]
                if failed:
                    raise SystemExit(f"report run {failed[0]} failed: see its logs under {work / 'd1'}")
                found = materializations_after(postgres, "phenikaa_patients", before)
                return next((m for m in found if m.metadata.get("matched") == cli_matched), None)

            update = wait_for("phenikaa_patients to match every report", all_matched, timeout=args.timeout,
                              interval=1.0)
            daemon_seconds = update.timestamp - dropped
            wait_for_run(deployment, update.run_id, 300)
            cpu_after = cpu_seconds(deployment)
            cpu = {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after}
            runs = report_runs(postgres)
            run_ids = sorted({run_id for run_id, _ in runs} | {update.run_id})
            own = run_seconds(postgres, run_ids)
            steps = step_seconds(postgres, run_ids)
            timeline = {**first_requesting_tick(postgres, dropped), **run_timeline(postgres, run_ids, dropped)}
        print(f"daemon runs' own time: {own:.1f} s over {len(run_ids)} runs ({cli_seconds / own:.2f}x the CLI), steps "
              f"{json.dumps(steps)}; the rest ({daemon_seconds - own:.1f} s) is sensor intervals, the run queue "
              f"and launches; after the drop: {json.dumps(timeline)}; CPU seconds used meanwhile by each service "
              f"(the code server's include its runs): {json.dumps(cpu)}")
        print(f"daemon: {args.reports} reports in {daemon_seconds:.1f} s ({args.reports / daemon_seconds:.2f} "
              f"reports/s) in {len(runs)} report runs, matched {cli_matched}; "
              f"ratio to the CLI command {command_seconds / daemon_seconds:.2f}x, "
              f"to the library call {cli_seconds / daemon_seconds:.2f}x")

        with running_postgres(work / "logs2") as postgres, \
                running_deployment(postgres, work / "d2", cli_root, work / "weights") as deployment:
            raw_assets(deployment)
            wait_for("the inbox sensor to see every report", lambda: sensor_cursor_size(postgres) >= args.reports
                     or None, timeout=300, interval=1.0)
            time.sleep(40)  # one more tick of each sensor: nothing may follow
            runs = report_runs(postgres)
            reads = [m for m in materializations_after(postgres, "phenikaa_report", 0) if m.metadata.get("read")]
        print(f"fresh instance on the CLI's data root: {len(runs)} report runs, {len(reads)} reports read again")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
