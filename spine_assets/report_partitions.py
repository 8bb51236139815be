"""The inbox's reports as partitions of ``phenikaa_report``, added to an instance as the sensor adds them.

``python -m spine_assets.report_partitions`` adds a partition for every report file of the inbox
(``SPINE_DATA_ROOT``) to the instance at ``DAGSTER_HOME`` and prints every report's key, one a line (the
pseudonym, never a patient name), for ``dagster asset materialize --select phenikaa_report --partition <key>``:
the CLI runs only partitions the instance knows. The demo adds its partitions with the same function.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg

from spine_assets.defs.phenikaa import REPORTS_PARTITION
from spine_assets.defs.resources import data_root_from_env


def add_report_partitions(instance: dg.DagsterInstance, reports: Path) -> list[str]:
    """Add the partitions the instance lacks for the report files of ``reports``; every report's key, sorted
    by file name (none when the inbox does not exist)."""
    from spine_lib.datasets.phenikaa import report_files, report_partition_key

    keys = [report_partition_key(p.name) for p in report_files(reports)] if reports.is_dir() else []
    known = set(instance.get_dynamic_partitions(REPORTS_PARTITION))
    new = [key for key in keys if key not in known]
    if new:
        instance.add_dynamic_partitions(REPORTS_PARTITION, new)
    return keys


def main() -> int:
    reports = data_root_from_env().layout.phenikaa_reports
    if not reports.is_dir():
        print(f"{reports}: reports inbox does not exist", file=sys.stderr)
        return 2
    with dg.DagsterInstance.get() as instance:
        keys = add_report_partitions(instance, reports)
    for key in keys:
        print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
