"""Materialize every asset of the code location into the instance at ``DAGSTER_HOME``.

Run by ``spine-vision demo`` in a child process (spine_lib never imports Dagster); usable on its own:
``DAGSTER_HOME=$PWD/.dagster python -m spine_assets.demo``. Prints one JSON line with what it materialized.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from spine_assets.definitions import defs

GPU_POOL = "gpu"
GPU_POOL_LIMIT = 1


def materialize_all(instance: dg.DagsterInstance) -> dict[str, object]:
    """Run the implicit all-assets job in process; return run id, status and materialized asset keys."""
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.set_concurrency_slots(GPU_POOL, GPU_POOL_LIMIT)
    definitions = defs()
    job = definitions.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    materialized = sorted(
        event.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    )
    checks = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in result.get_asset_check_evaluations()
    }
    return {"run_id": result.run_id, "success": result.success, "materialized": materialized, "checks": checks}


def main() -> int:
    with dg.DagsterInstance.get() as instance:
        summary = materialize_all(instance)
    print(json.dumps(summary))
    return 0 if summary["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
