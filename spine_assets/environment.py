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
#: Dagster's own switches of how runs write their events, set for every service by the deployment image
#: (deploy/Dockerfile): the materializations one step makes over many partitions (a run of new reports) go to the
#: event log as batches of up to this many, and a run over a range of partitions records one planned event per
#: asset instead of one per partition. With PostgreSQL each single event costs ~40 ms here, so 100 new reports
#: cost ~8 s of writes without them. (Dagster's caveat: partitions of a failed run then read as missing, not
#: failed; the failed run itself says what happened.)
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 500
PLANNED_PARTITION_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
