"""Materialize every asset of the code location into the instance at ``DAGSTER_HOME``.

Run by ``spine-vision demo`` in a child process (spine_lib never imports Dagster); usable on its own:
``DAGSTER_HOME=$PWD/.dagster python -m spine_assets.demo``. Report files become dynamic partitions (as the
sensor would add them), each new one is read in its own run, then everything else is materialized. Prints one
JSON line with what it did.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from spine_assets.definitions import defs
from spine_assets.defs.phenikaa import REPORTS_PARTITION
from spine_assets.defs.resources import data_root_from_env

GPU_POOL = "gpu"
GPU_POOL_LIMIT = 1


def materialize_all(instance: dg.DagsterInstance) -> dict[str, object]:
    """Read every not-yet-read report (one run per partition), then run every other asset and check."""
    from spine_lib.datasets.phenikaa import report_files, report_partition_key

    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, GPU_POOL_LIMIT)
    definitions = defs()
    reports = data_root_from_env().layout.phenikaa_reports
    keys = [report_partition_key(p.name) for p in report_files(reports)] if reports.is_dir() else []
    known = set(instance.get_dynamic_partitions(REPORTS_PARTITION))
    instance.add_dynamic_partitions(REPORTS_PARTITION, [k for k in keys if k not in known])
    report_job = definitions.resolve_job_def("phenikaa_report_job")
    materialized: set[str] = set()
    checks: dict[str, bool] = {}
    success = True
    done = instance.get_materialized_partitions(dg.AssetKey("phenikaa_report"))
    for key in keys:
        if key in done:
            continue
        result = report_job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        success &= result.success
        materialized.add("phenikaa_report")
    rest = definitions.resolve_job_def("everything_but_reports")
    result = rest.execute_in_process(instance=instance, raise_on_error=False)
    success &= result.success
    materialized |= {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key}
    checks.update({f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in result.get_asset_check_evaluations()})
    return {"run_id": result.run_id, "success": success, "materialized": sorted(materialized), "checks": checks,
            "reports_read": len([k for k in keys if k not in done])}


def main() -> int:
    with dg.DagsterInstance.get() as instance:
        summary = materialize_all(instance)
    print(json.dumps(summary))
    return 0 if summary["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
