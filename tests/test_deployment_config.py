"""The deployment's configuration files, validated without running anything: docker-compose.yml by Debian's
docker-compose, deploy/dagster.yaml and deploy/workspace.yaml against Dagster's own schemas and classes, and the
Helm values of deploy/k8s/values.yaml for the keys we rely on (no helm here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from spine_assets.environment import (
    DATA_ROOT_ENV,
    EVENT_BATCH_SIZE,
    EVENT_BATCH_SIZE_ENV,
    GPU_RUN_TAGS_ENV,
    PLANNED_PARTITION_SUBSET_ENV,
    WEIGHTS_ENV,
)
from tests.deployment_support import (
    COMPOSE_FILE,
    DEPLOY,
    INSTANCE_YAML,
    LOCATION,
    REPO,
    WORKSPACE_YAML,
    compose_services,
    service_command,
)

DAGSTER_SERVICES = {"code", "webserver", "daemon"}
K8S_VALUES = DEPLOY / "k8s" / "values.yaml"
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_PORT": "6543", "DAGSTER_PG_USER": "spine",
    "DAGSTER_PG_PASSWORD": "s3cret", "DAGSTER_PG_DB": "spine_dagster",
}


def docker_compose_config(env: dict[str, str]) -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        message = "Debian's docker-compose is needed (apt-get install docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **env}, check=False)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_docker_compose_validates_the_team_deployment() -> None:
    config = docker_compose_config({"DAGSTER_PG_PASSWORD": "s3cret", "SPINE_DATA_HOST_PATH": "/srv/spine/data"})
    services = config["services"]
    assert set(services) == {"postgres", *DAGSTER_SERVICES}
    # one image for the three Dagster services, built from deploy/Dockerfile
    assert {services[s]["image"] for s in DAGSTER_SERVICES} == {"spine-vision:latest"}
    assert services["code"]["build"]["dockerfile"] == "deploy/Dockerfile"
    # the UI is published on the host's loopback only
    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000/tcp"]
    assert all("ports" not in services[s] for s in ("postgres", "code", "daemon"))
    # start order: the database healthy, then the code server healthy, then the webserver and the daemon
    assert "test" in services["postgres"]["healthcheck"] and "test" in services["code"]["healthcheck"]
    assert services["code"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                "code": {"condition": "service_healthy"}}
    # the password reaches the database and every Dagster service alike
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert {services[s]["environment"]["DAGSTER_PG_PASSWORD"] for s in DAGSTER_SERVICES} == {"s3cret"}
    # the code server runs the runs: data, weights and the GPU are there
    volumes = {v.split(":")[1]: v.split(":")[0] for v in services["code"]["volumes"]}
    assert volumes["/data"] == "/srv/spine/data" and volumes["/weights"] == str(REPO / "weights")
    devices = services["code"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert all("deploy" not in services[s] for s in ("webserver", "daemon"))
    # no route out of the backend network
    assert config["networks"]["backend"]["internal"] is True
    assert set(services["code"]["networks"]) == {"backend"}


def test_compose_commands_serve_the_code_location_the_workspace_names() -> None:
    services = compose_services()
    assert service_command(services["code"])[:5] == ["dagster", "api", "grpc", "-m", "spine_assets.definitions"]
    location = service_command(services["code"])[service_command(services["code"]).index("--location-name") + 1]
    workspace = yaml.safe_load(WORKSPACE_YAML.read_text())["load_from"]
    assert [entry["grpc_server"]["location_name"] for entry in workspace] == [location] == [LOCATION]
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["code_location_name"] == LOCATION
    for name in ("webserver", "daemon"):
        command = service_command(services[name])
        assert command[command.index("-w") + 1] == WORKSPACE_YAML.relative_to(REPO).as_posix()
    # the image puts the data root and the weights where the code server's volumes are mounted
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"{DATA_ROOT_ENV}=/data" in dockerfile and f"{WEIGHTS_ENV}=/weights" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile and "tesseract-ocr-vie" in dockerfile
    # runs over many report partitions write their events in batches (what tests/deployment_support.py sets too)
    assert f"{EVENT_BATCH_SIZE_ENV}={EVENT_BATCH_SIZE}" in dockerfile and f"{PLANNED_PARTITION_SUBSET_ENV}=1" in dockerfile


def test_workspace_resolves_the_grpc_server_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.workspace.config_schema import process_workspace_config

    monkeypatch.setenv("SPINE_CODE_SERVER_HOST", "code")
    monkeypatch.setenv("SPINE_CODE_SERVER_PORT", "4000")
    config = process_workspace_config(yaml.safe_load(WORKSPACE_YAML.read_text()))
    assert config.success and config.value is not None, config.errors
    assert config.value["load_from"] == [{"grpc_server": {"host": "code", "port": 4000, "location_name": LOCATION}}]


def instance_config(folder: Path, text: str) -> dict[str, Any]:
    from dagster._core.instance.config import dagster_instance_config

    (folder / "dagster.yaml").write_text(text)
    config, custom_class = dagster_instance_config(str(folder))
    assert custom_class is None
    return dict(config)


def test_deployment_instance_config_is_valid_dagster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._config import process_config
    from dagster._core.storage.config import pg_config
    from dagster._serdes import ConfigurableClassData

    for key, value in {**INSTANCE_ENV, "DAGSTER_STORAGE_DIR": str(tmp_path / "s"),
                       "DAGSTER_COMPUTE_LOGS_DIR": str(tmp_path / "s/logs")}.items():
        monkeypatch.setenv(key, value)
    config = instance_config(tmp_path, INSTANCE_YAML.read_text())
    # storage: Dagster's PostgreSQL storages over a connection pool, every field from the environment, psycopg2
    assert "storage" not in config
    for key, name in (("run_storage", "Run"), ("event_log_storage", "EventLog"), ("schedule_storage", "Schedule")):
        assert (config[key]["module"], config[key]["class"]) == ("spine_assets.pg_storage", f"PooledPostgres{name}Storage")
        storage = process_config(pg_config(), config[key]["config"])
        assert storage.success and storage.value is not None, storage.errors
        assert storage.value["postgres_db"] == {
            "hostname": "db.internal", "port": 6543, "username": "spine", "password": "s3cret",
            "db_name": "spine_dagster", "scheme": "postgresql+psycopg2", "params": {},
        }
    # the configurable classes load and accept their config
    classes = {}
    for key in ("run_coordinator", "run_launcher", "compute_logs", "local_artifact_storage"):
        entry = config[key]
        classes[key] = ConfigurableClassData(entry["module"], entry["class"],
                                             yaml.safe_dump(entry.get("config") or {})).rehydrate(object)
    assert type(classes["run_coordinator"]).__name__ == "QueuedRunCoordinator"
    assert type(classes["run_launcher"]).__name__ == "DefaultRunLauncher"
    assert classes["local_artifact_storage"].base_dir == str(tmp_path / "s")
    assert config["run_monitoring"]["enabled"] is True
    assert config["telemetry"] == {"enabled": False}
    pools, runs = config["concurrency"]["pools"], config["concurrency"]["runs"]
    assert pools == {"default_limit": 1, "granularity": "op"}
    limits = {(t["key"], t["value"]): t["limit"] for t in runs["tag_concurrency_limits"]}
    assert limits[("spine-vision/accelerator", "gpu")] == 1
    assert limits[("dagster/sensor_name", "phenikaa_reports_sensor")] == 2


def test_commented_docker_run_launcher_is_valid_instance_config(tmp_path: Path) -> None:
    """The DockerRunLauncher block, uncommented in place of DefaultRunLauncher, still makes a valid instance."""
    lines = INSTANCE_YAML.read_text().splitlines()
    start = lines.index("# run_launcher:")
    block = []
    for line in lines[start:]:
        if not line.startswith("# ") or line == "#":
            break
        block.append(line[2:].split("   #")[0])
    docker = yaml.safe_load("\n".join(block))["run_launcher"]
    assert (docker["module"], docker["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert set(docker["config"]) == {"network", "env_vars", "container_kwargs"}
    assert set(INSTANCE_ENV) <= set(docker["config"]["env_vars"])  # run containers reach the database
    text = INSTANCE_YAML.read_text().replace("  class: DefaultRunLauncher", "  class: DockerRunLauncher")
    text = text.replace("run_launcher:\n  module: dagster\n", "run_launcher:\n  module: dagster_docker\n")
    config = instance_config(tmp_path, text)
    assert config["run_launcher"]["class"] == "DockerRunLauncher"


def test_k8s_values_place_training_runs_on_gpu_nodes() -> None:
    values = yaml.safe_load(K8S_VALUES.read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    code = service_command(compose_services()["code"])
    assert deployment["dagsterApiGrpcArgs"] == code[3:]  # the compose code server's arguments, exactly
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env[DATA_ROOT_ENV] == "/data" and env[WEIGHTS_ENV] == "/weights"
    mounts = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    assert {mounts[n] for n in claims} == {"/data", "/weights"}
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    # training runs: the dagster-k8s/config run tag puts the pod on a GPU node with one GPU
    k8s = json.loads(env[GPU_RUN_TAGS_ENV])["dagster-k8s/config"]
    resources = k8s["container_config"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "1"
    assert k8s["pod_spec_config"]["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in k8s["pod_spec_config"]["tolerations"]
    # every other run: CPU only, and no node selector that the GPU runs' own would be merged with
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    run_config = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]
    assert "nvidia.com/gpu" not in json.dumps(run_config) and "nodeSelector" not in json.dumps(run_config)
    # the instance: run queue, monitoring, pools and tag limits as deploy/dagster.yaml has them
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["enabled"] is True and daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runMonitoring"]["enabled"] is True
    concurrency = values["concurrency"]
    instance = yaml.safe_load(INSTANCE_YAML.read_text())["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"] == {"defaultLimit": instance["pools"]["default_limit"],
                                    "granularity": instance["pools"]["granularity"]}
    tags = {(t["key"], t["value"]) for t in concurrency["runs"]["tagConcurrencyLimits"]}
    assert tags == {(t["key"], t["value"]) for t in instance["runs"]["tag_concurrency_limits"]}
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["telemetry"] == {"enabled": False}


def test_training_job_carries_the_deployments_gpu_tags() -> None:
    """The values' tags reach training_job's runs when the code server loads the definitions."""
    import sys

    values = yaml.safe_load(K8S_VALUES.read_text())
    env = {e["name"]: e["value"] for e in values["dagster-user-deployments"]["deployments"][0]["env"]}
    code = (
        "import json\n"
        "from spine_assets.definitions import defs\n"
        "job = defs().resolve_job_def('training_job')\n"
        "print(json.dumps({'tags': dict(job.tags), 'assets': sorted(k.to_user_string() for k in"
        " job.asset_layer.selected_asset_keys)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                          env={**os.environ, GPU_RUN_TAGS_ENV: env[GPU_RUN_TAGS_ENV]})
    job = json.loads(done.stdout.strip().splitlines()[-1])
    assert job["assets"] == ["classifier_model", "localization_model", "nnunet_model"]
    assert job["tags"]["spine-vision/accelerator"] == "gpu"
    assert json.loads(job["tags"]["dagster-k8s/config"]) == json.loads(env[GPU_RUN_TAGS_ENV])["dagster-k8s/config"]
