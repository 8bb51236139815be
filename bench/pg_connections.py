"""A query through Dagster's PostgreSQL storage: a new connection each time (dagster-postgres' ``NullPool``)
against the kept connections of ``spine_assets.pg_storage``.

Run: ``uv run python bench/pg_connections.py [--queries 200]`` (from the repository root; needs Debian's
``postgresql``). Starts a PostgreSQL cluster in a temporary folder (as the deployment test does), then times
``has_dynamic_partition`` (what the daemon asks for every partition a sensor adds) with each storage; prints
milliseconds per query.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from dagster_postgres.event_log import PostgresEventLogStorage

from spine_assets.pg_storage import PooledPostgresEventLogStorage
from tests.deployment_support import running_postgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, running_postgres(Path(tmp)) as pg:
        url = f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.db}"
        for name, storage in (("dagster_postgres", PostgresEventLogStorage(url)),
                              ("pooled", PooledPostgresEventLogStorage(url))):
            storage.has_dynamic_partition("p", "warm-up")
            start = time.perf_counter()
            for i in range(args.queries):
                storage.has_dynamic_partition("p", f"k{i}")
            out[f"{name}_ms_per_query"] = round((time.perf_counter() - start) / args.queries * 1000, 2)
            storage.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
