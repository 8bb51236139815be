"""Dagster's PostgreSQL storages with a connection pool, for the team deployment (deploy/dagster.yaml).

dagster-postgres opens a new connection for every query (SQLAlchemy's ``NullPool``) in every process but the
webserver, which it gives a pool of its own. A new connection costs a PostgreSQL backend process and a password
check: ~22 ms a query on a 2-core host against ~1.2 ms over a kept connection (`bench/pg_connections.py`). The
daemon pays it for every query of its loops (a sensor tick checks each new partition on its own), a run for
every event it writes. These subclasses keep a few connections per process instead; the schema, the queries and
the config (``postgres_db`` or ``postgres_url``, as Dagster's ``storage: postgres``) are Dagster's own.
"""

from __future__ import annotations

from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

#: Connections kept open per storage and process (the daemon's threads query at once), and how many more a burst
#: may open for a moment.
POOL_SIZE = 2
MAX_OVERFLOW = 8
#: A kept connection older than this is replaced (server-side idle timeouts, restarts).
POOL_RECYCLE_SECONDS = 3600


def pool_connections(storage: Any) -> None:
    """Give a dagster-postgres storage an engine that keeps its connections (checked before each use, so a
    restarted server costs one reconnect, not an error)."""
    options = storage._engine.url.query.get("options")
    storage._engine.dispose()
    storage._engine = create_pg_engine(
        storage.postgres_url, storage._token_provider, isolation_level="AUTOCOMMIT", pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW, pool_recycle=POOL_RECYCLE_SECONDS, pool_pre_ping=True,
        **({"connect_args": {"options": options}} if options else {}),
    )


class _Pooled:
    """Mixin before a dagster-postgres storage class: the storage built from its config as Dagster builds it
    (``from_config_value``), then given a pooled engine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool_connections(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """Dagster's PostgreSQL run storage over a connection pool."""


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    """Dagster's PostgreSQL event log storage over a connection pool."""


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """Dagster's PostgreSQL schedule storage (schedules, sensors and their cursors, ticks) over a connection pool."""
