"""Report dropped into the inbox -> `phenikaa_patients` updated, under `dagster dev` as README starts it.

Run: ``uv run python -m bench.dev_latency [--reports 3]`` (from the repository root). It makes a synthetic root,
a new ``DAGSTER_HOME`` with the project's instance settings (SQLite, what ``spine-vision demo`` prepares),
materializes ``data_root`` and ``phenikaa_raw`` in process, starts ``dagster dev -w workspace.yaml`` (webserver
and daemon, sensors on by default), then drops the reports one at a time and times each until the
``phenikaa_patients`` materialization that counts it (read from the same SQLite instance). Sensor intervals are
included. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from bench.deployment_latency import empty_inbox_root, print_latencies
from spine_assets.demo import prepare_dagster_home
from spine_assets.environment import DAGSTER_HOME_ENV, DATA_ROOT_ENV, DEVICE_ENV, TRACKING_ENV, WEIGHTS_ENV
from tests.deployment_support import REPO, free_port, start_server, wait_for, webserver_up

PATIENTS = dg.AssetKey("phenikaa_patients")
MATERIALIZE_RAW = """
import dagster as dg
from spine_assets.definitions import defs

job = defs().resolve_job_def("everything_but_reports")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("data_root"),
                                                                        dg.AssetKey("phenikaa_raw")])
"""


def matched_after(instance: dg.DagsterInstance, after: float, count: int) -> float | None:
    """Timestamp of a `phenikaa_patients` materialization after ``after`` that matched ``count`` patients."""
    records = instance.fetch_materializations(PATIENTS, limit=5).records
    for record in records:
        materialization = record.asset_materialization
        if record.timestamp <= after or materialization is None:
            continue
        matched = materialization.metadata.get("matched")
        if matched is not None and getattr(matched, "value", None) == count:
            return record.timestamp
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=3, help="reports dropped one after another")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for each update")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spine-dev-bench-"))
    server = None
    try:
        synthetic, root, truth = empty_inbox_root(work, args.reports, args.seed)
        home = work / "dagster_home"
        prepare_dagster_home(home)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               DAGSTER_HOME_ENV: str(home), DATA_ROOT_ENV: str(root), WEIGHTS_ENV: str(work / "weights"),
               DEVICE_ENV: "cpu", TRACKING_ENV: "disabled", "PYTHONUNBUFFERED": "1"}
        subprocess.run([sys.executable, "-c", MATERIALIZE_RAW], env=env, cwd=REPO, check=True)
        port = free_port()
        begin = time.monotonic()
        server = start_server("dagster-dev", [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
                                              "-h", "127.0.0.1", "-p", str(port)], env, cwd=REPO, logs=work / "logs")
        wait_for("the Dagster webserver", lambda: webserver_up(f"http://127.0.0.1:{port}"), timeout=180)
        print(f"dagster dev up in {time.monotonic() - begin:.1f} s")
        time.sleep(10)  # the daemon's first loops (its sensors' first ticks on an empty inbox)
        os.environ[DAGSTER_HOME_ENV] = str(home)
        rows = []
        with dg.DagsterInstance.get() as instance:
            for count, patient in enumerate(truth["patients"], start=1):
                report = synthetic / patient["report"]
                dropped = time.time()
                shutil.copyfile(report, root / "raw/Phenikaa/reports" / report.name)

                def counted(count: int = count, dropped: float = dropped) -> float | None:
                    if not server.alive():
                        raise RuntimeError(f"dagster dev exited:\n{server.tail()}")
                    return matched_after(instance, dropped, count)

                updated = wait_for("phenikaa_patients", counted, timeout=args.timeout, interval=0.5)
                rows.append((count, patient["report_format"], updated - dropped))
                time.sleep(3)  # the run's last events (its end) before the next drop
        print_latencies(rows)
    finally:
        if server is not None:
            server.stop(first_signal=signal.SIGINT, grace=15)  # SIGINT: dagster dev's own shutdown (Ctrl-C)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
