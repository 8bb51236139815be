"""Report dropped into the inbox -> `phenikaa_patients` updated, through the team deployment run as processes.

Run: ``uv run python -m bench.deployment_latency [--reports 3]`` (from the repository root; needs Debian's
``postgresql``). It starts a throw-away PostgreSQL 15 and docker-compose.yml's code server, webserver and daemon
on deploy/dagster.yaml (tests/deployment_support.py, as tests/test_deployment.py does), materializes the raw
assets once, starts any stopped sensor, then drops the reports of a synthetic root one at a time and times each
until the `phenikaa_patients` materialization that counts it. Sensor intervals are included: each figure
depends on where in the sensors' 30 s cycles the drop lands. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root
from spine_lib.synthetic.truth import read_truth
from tests.deployment_support import (
    Materialization,
    last_materialization_id,
    launch_assets,
    materializations_after,
    running_deployment,
    running_postgres,
    start_stopped_sensors,
    wait_for,
    wait_for_run,
)


def empty_inbox_root(work: Path, reports: int, seed: int) -> tuple[Path, Path, dict[str, Any]]:
    """A synthetic root of ``reports`` Phenikaa patients under ``work/synthetic``, and a data root
    ``work/data`` with its Phenikaa export but an empty reports inbox; returns both roots and the truth."""
    synthetic = work / "synthetic"
    make_synthetic_root(SynthConfig(out=synthetic, spider_patients=1, rsna_studies=1, phenikaa_patients=reports,
                                    size=128, slices=12, seed=seed))
    root = work / "data"
    shutil.copytree(synthetic / "raw/Phenikaa", root / "raw/Phenikaa",
                    ignore=lambda folder, names: names if Path(folder).name == "reports" else [])
    return synthetic, root, read_truth(synthetic, "phenikaa")


def print_latencies(rows: list[tuple[int, str, float]]) -> None:
    """The markdown table of (report, format, seconds from drop to update) and its median and maximum."""
    print("\n| report | format | dropped -> phenikaa_patients (s) |\n|---|---|---|")
    for count, kind, seconds in rows:
        print(f"| {count} | {kind} | {seconds:.1f} |")
    latencies = [seconds for _, _, seconds in rows]
    print(f"\nmedian {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s over {len(rows)} reports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=3, help="reports dropped one after another")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for each update")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spine-deploy-bench-"))
    try:
        synthetic, root, truth = empty_inbox_root(work, args.reports, args.seed)
        begin = time.monotonic()
        with running_postgres(work / "logs") as postgres, \
                running_deployment(postgres, work, root, work / "weights") as deployment:
            print(f"started in {time.monotonic() - begin:.1f} s: {deployment.started_seconds}")
            assert wait_for_run(deployment, launch_assets(deployment, ["data_root", "phenikaa_raw"]), 300) == "SUCCESS"
            print(f"sensors started: {start_stopped_sensors(deployment) or 'none'}")
            rows = []
            for count, patient in enumerate(truth["patients"], start=1):
                before = last_materialization_id(postgres, "phenikaa_patients")
                report = synthetic / patient["report"]
                dropped = time.time()
                shutil.copyfile(report, root / "raw/Phenikaa/reports" / report.name)

                def counted(count: int = count, before: int = before) -> Materialization | None:
                    deployment.check_alive()
                    found = materializations_after(postgres, "phenikaa_patients", before)
                    return next((m for m in found if m.metadata.get("matched") == count), None)

                update = wait_for("phenikaa_patients", counted, timeout=args.timeout, interval=0.5)
                rows.append((count, patient["report_format"], update.timestamp - dropped))
                wait_for_run(deployment, update.run_id, 120)
        print_latencies(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
