"""The environment variables through which the code location, the demo and a deployment agree on paths and
devices. The one place their names are spelt; reading them needs no Dagster."""

from __future__ import annotations

from pathlib import Path

#: Data root (``data`` when unset) and weights folder (``weights``).
DATA_ROOT_ENV = "SPINE_DATA_ROOT"
WEIGHTS_ENV = "SPINE_WEIGHTS"
#: Torch device of training and inference assets: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
DEVICE_ENV = "SPINE_DEVICE"
#: Experiment tracking of training assets: ``disabled``, ``offline`` or ``online`` (wandb).
TRACKING_ENV = "SPINE_TRACKING"
#: Extra run tags of the training job, as a JSON object (a deployment's placement of GPU runs, e.g. the
#: ``dagster-k8s/config`` tag that deploy/k8s/values.yaml sets); unset: none.
GPU_RUN_TAGS_ENV = "SPINE_GPU_RUN_TAGS"
#: Dagster's own: the folder of the instance (its dagster.yaml and, with SQLite, its storage).
DAGSTER_HOME_ENV = "DAGSTER_HOME"
#: The instance settings of local use (SQLite, telemetry off, one slot per concurrency pool), shipped with the
#: package: `spine-vision demo` copies it into a new DAGSTER_HOME.
INSTANCE_TEMPLATE = Path(__file__).resolve().parent / "dagster.yaml"
