"""The team deployment without containers: a real PostgreSQL cluster and the compose services' commands as
plain processes, with deploy/dagster.yaml and deploy/workspace.yaml. Shared by tests/test_deployment.py and
bench/deployment_latency.py.

Every server runs in its own session (a process group) with SIGINT/SIGTERM reset to their defaults (a shell may
have left them ignored) and is stopped by group id: the signal, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml

from spine_assets.environment import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_ENV, PLANNED_PARTITION_SUBSET_ENV

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy"
INSTANCE_YAML = DEPLOY / "dagster.yaml"
WORKSPACE_YAML = DEPLOY / "workspace.yaml"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOCATION = "spine_assets"
REPOSITORY = "__repository__"
#: The Dagster services of docker-compose.yml, in the order they start (compose: depends_on).
DAGSTER_SERVICES = ("code", "webserver", "daemon")

T = TypeVar("T")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Call ``probe`` until it returns something other than None/False; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- the compose file: the one source of the services' commands and environment ---------------------------

def compose_services(path: Path = COMPOSE_FILE) -> dict[str, dict[str, Any]]:
    """The ``services`` of a compose file, YAML anchors merged (no interpolation: that is docker-compose's)."""
    return yaml.safe_load(path.read_text())["services"]


def service_command(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "compose commands are written in exec form (a list)"
    return [str(part) for part in command]


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "compose environments are written as mappings"
    return {str(k): str(v) for k, v in environment.items()}


# --- processes ---------------------------------------------------------------------------------------------

def _default_signals() -> None:  # runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass
class Server:
    """One started server: its process (the leader of its own process group) and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes] = field(repr=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, first_signal: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """Signal the whole group, wait up to ``grace`` seconds, then SIGKILL whatever of the group is left."""
        group = self.process.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, first_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.log.close()


def start_server(name: str, command: list[str], env: Mapping[str, str], cwd: Path, logs: Path) -> Server:
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_default_signals,
    )
    return Server(name=name, process=process, log_path=log_path, log=log)


# --- PostgreSQL --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db: str

    def environment(self) -> dict[str, str]:
        """What deploy/dagster.yaml reads (`env:`), as docker-compose.yml sets it for every Dagster service."""
        return {
            "DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db,
        }

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=self.db, connect_timeout=5, autocommit=True)


def postgres_available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "postgres").is_file()


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def running_postgres(logs: Path, user: str = "dagster", db: str = "dagster") -> Iterator[Postgres]:
    """A throw-away PostgreSQL 15 cluster on a free loopback port, password-authenticated over TCP."""
    # As root the cluster belongs to the postgres user, who must reach it: /tmp, not pytest's 0700 folders.
    base = Path(tempfile.mkdtemp(prefix="spine-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    server: Server | None = None
    try:
        password = "spine-" + os.urandom(6).hex()
        (base / "pwfile").write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
            shutil.chown(base / "pwfile", "postgres", "postgres")
        data = base / "data"
        subprocess.run(
            _as_postgres_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", user, f"--pwfile={base / 'pwfile'}",
                               "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                               "--no-sync"]),
            check=True, capture_output=True, cwd=base,
        )
        port = free_port()
        server = start_server(
            "postgres",
            _as_postgres_user([str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                               "-k", str(base), "-c", "fsync=off", "-c", "synchronous_commit=off"]),
            env=os.environ, cwd=base, logs=logs,
        )
        pg = Postgres(host="127.0.0.1", port=port, user=user, password=password, db="postgres")

        def create_database() -> bool:
            if not server.alive():
                raise RuntimeError(f"postgres exited:\n{server.tail()}")
            try:
                with pg.connect() as connection:
                    connection.execute(f'CREATE DATABASE "{db}"')
                return True
            except Exception:  # not accepting connections yet
                return False

        wait_for("PostgreSQL to accept connections", create_database, timeout=30, interval=0.2)
        yield Postgres(host=pg.host, port=port, user=user, password=password, db=db)
    finally:
        if server is not None:
            server.stop(first_signal=signal.SIGINT, grace=10)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(base, ignore_errors=True)


# --- the Dagster services ----------------------------------------------------------------------------------

@dataclass
class Deployment:
    """The running code server, webserver and daemon."""

    postgres: Postgres
    dagster_home: Path
    url: str
    servers: dict[str, Server]
    env: dict[str, str]
    started_seconds: dict[str, float]

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:  # GraphQL errors come with a 4xx/5xx status and a JSON body
            raise AssertionError(f"GraphQL {error.code}: {error.read().decode(errors='replace')[:2000]}") from None
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def check_alive(self) -> None:
        for server in self.servers.values():
            if not server.alive():
                raise RuntimeError(f"{server.name} exited ({server.process.returncode}):\n{server.tail()}")


def deployment_environment(
    postgres: Postgres, dagster_home: Path, data_root: Path, weights: Path, code_port: int, web_port: int
) -> dict[str, dict[str, str]]:
    """Each Dagster service's environment: docker-compose.yml's keys with this machine's values.

    Fails when the compose file sets a variable this function does not know: then the two have drifted.
    """
    venv_bin = str(Path(sys.executable).parent)
    storage = dagster_home / "storage"
    image_env = {  # what deploy/Dockerfile sets with ENV
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_STORAGE_DIR": str(storage),
        "DAGSTER_COMPUTE_LOGS_DIR": str(storage / "logs"),
        "SPINE_DATA_ROOT": str(data_root),
        "SPINE_WEIGHTS": str(weights),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "offline",
        "PYTHONUNBUFFERED": "1",
        EVENT_BATCH_SIZE_ENV: str(EVENT_BATCH_SIZE),
        PLANNED_PARTITION_SUBSET_ENV: "1",
    }
    local = {
        **postgres.environment(),
        "SPINE_CODE_SERVER_HOST": "127.0.0.1",
        "SPINE_CODE_SERVER_PORT": str(code_port),
        "DAGSTER_GRPC_HOST": "127.0.0.1",
        "DAGSTER_GRPC_PORT": str(code_port),
        "DAGSTER_WEBSERVER_HOST": "127.0.0.1",
        "DAGSTER_WEBSERVER_PORT": str(web_port),
        "SPINE_DEVICE": "cpu",
        "SPINE_TRACKING": "disabled",
    }
    services = compose_services()
    environments: dict[str, dict[str, str]] = {}
    for name in DAGSTER_SERVICES:
        keys = set(service_environment(services[name]))
        unknown = keys - set(local)
        assert not unknown, f"docker-compose.yml sets {sorted(unknown)} for {name}: give them local values here"
        environments[name] = {**os.environ, **image_env, **{k: local[k] for k in keys}}
    return environments


def code_server_serving(host: str, port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        socket.create_connection((host, port), timeout=1).close()  # listening at all? (gRPC would log errors)
        return DagsterGrpcClient(host=host, port=port).health_check_query() == "SERVING"
    except Exception:  # not listening yet
        return False


def webserver_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def running_deployment(
    postgres: Postgres, work: Path, data_root: Path, weights: Path, timeout: float = 120
) -> Iterator[Deployment]:
    """docker-compose.yml's code, webserver and daemon services as processes, in compose's start order."""
    dagster_home = work / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_YAML, dagster_home / "dagster.yaml")  # as deploy/Dockerfile does
    code_port, web_port = free_port(), free_port()
    environments = deployment_environment(postgres, dagster_home, data_root, weights, code_port, web_port)
    services = compose_services()
    servers: dict[str, Server] = {}
    started: dict[str, float] = {}
    url = f"http://127.0.0.1:{web_port}"
    ready: dict[str, Callable[[], bool]] = {
        "code": lambda: code_server_serving("127.0.0.1", code_port),
        "webserver": lambda: webserver_up(url),
    }
    deployment = Deployment(postgres=postgres, dagster_home=dagster_home, url=url, servers=servers,
                            env=environments["code"], started_seconds=started)
    try:
        for name in DAGSTER_SERVICES:
            begin = time.monotonic()
            servers[name] = start_server(name, service_command(services[name]), environments[name], cwd=REPO,
                                         logs=work / "logs")
            probe = ready.get(name)
            if probe is not None:  # compose: the next service depends_on this one being healthy
                def up(probe: Callable[[], bool] = probe) -> bool:
                    deployment.check_alive()
                    return probe()

                wait_for(f"the {name} service", up, timeout=timeout)
            started[name] = round(time.monotonic() - begin, 2)
        yield deployment
    finally:
        for name in reversed(list(servers)):
            servers[name].stop(grace=10)


# --- GraphQL: what the UI does -----------------------------------------------------------------------------

SENSORS_QUERY = """
query Sensors($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) {
    __typename
    ... on Sensors { results { name sensorState { status } } }
    ... on PythonError { message }
  }
}
"""
START_SENSOR = """
mutation Start($sensor: SensorSelector!) {
  startSensor(sensorSelector: $sensor) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def sensor_statuses(deployment: Deployment) -> dict[str, str]:
    repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    answer = deployment.graphql(SENSORS_QUERY, {"repo": repo})["sensorsOrError"]
    assert answer["__typename"] == "Sensors", answer
    return {s["name"]: s["sensorState"]["status"] for s in answer["results"]}


def start_stopped_sensors(deployment: Deployment) -> list[str]:
    """Start every sensor that is not running (as a click in the UI would); return the names started."""
    started = []
    for name, status in sensor_statuses(deployment).items():
        if status != "RUNNING":
            selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}
            answer = deployment.graphql(START_SENSOR, {"sensor": selector})["startSensor"]
            assert answer["__typename"] == "Sensor" and answer["sensorState"]["status"] == "RUNNING", answer
            started.append(name)
    return started


def launch_assets(deployment: Deployment, asset_keys: list[str]) -> str:
    """Launch a run of these assets through the run queue, as the UI's Materialize button does; its run id."""
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": "__ASSET_JOB",
                     "assetSelection": [{"path": [key]} for key in asset_keys]},
        "runConfigData": {},
    }
    answer = deployment.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return str(answer["run"]["runId"])


# --- PostgreSQL, read directly -----------------------------------------------------------------------------

def run_status(postgres: Postgres, run_id: str) -> str | None:
    with postgres.connect() as connection:
        row = connection.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    return None if row is None else str(row[0])


def wait_for_run(deployment: Deployment, run_id: str, timeout: float) -> str:
    def finished() -> str | None:
        deployment.check_alive()
        status = run_status(deployment.postgres, run_id)
        return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

    return wait_for(f"run {run_id}", finished, timeout=timeout, interval=1.0)


def last_materialization_id(postgres: Postgres, asset_key: str) -> int:
    """The id of the newest ASSET_MATERIALIZATION event of an asset (0 when there is none)."""
    with postgres.connect() as connection:
        row = connection.execute(
            "SELECT max(id) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s",
            (json.dumps([asset_key]),),
        ).fetchone()
    return int(row[0] or 0) if row else 0


@dataclass(frozen=True)
class Materialization:
    event_id: int
    run_id: str
    timestamp: float  # seconds since the epoch (the event log stores UTC)
    partition: str | None
    metadata: dict[str, Any]


def materializations_after(postgres: Postgres, asset_key: str, after_id: int) -> list[Materialization]:
    """The asset's materializations newer than event ``after_id``, oldest first, metadata decoded."""
    from dagster import EventLogEntry
    from dagster._serdes import deserialize_value

    with postgres.connect() as connection:
        rows = connection.execute(
            "SELECT id, run_id, partition, event FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            " AND asset_key = %s AND id > %s ORDER BY id",
            (json.dumps([asset_key]), after_id),
        ).fetchall()
    found = []
    for event_id, run_id, partition, body in rows:
        entry = deserialize_value(body, EventLogEntry)
        materialization = entry.asset_materialization
        assert materialization is not None
        found.append(Materialization(
            event_id=int(event_id), run_id=str(run_id), timestamp=float(entry.timestamp), partition=partition,
            metadata={k: v.value for k, v in materialization.metadata.items()},
        ))
    return found
