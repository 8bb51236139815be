"""The training job: the three models of the `gpu` pool in one run, tagged so that a deployment can place it.

Every run of this job carries ``spine-vision/accelerator: gpu`` (deploy/dagster.yaml limits such runs to one at
a time); a deployment adds its own placement through ``SPINE_GPU_RUN_TAGS``, a JSON object of run tags: on
Kubernetes the ``dagster-k8s/config`` tag with the GPU node selector, tolerations and ``nvidia.com/gpu``
resources (deploy/k8s/values.yaml). Inside a run the `gpu` pool still serializes the training steps.
"""

from __future__ import annotations

import json
import os

import dagster as dg

from spine_assets.defs.grading import classifier_model
from spine_assets.defs.localization import localization_model
from spine_assets.defs.segmentation import nnunet_model
from spine_assets.environment import GPU_RUN_TAGS_ENV

ACCELERATOR_TAG = "spine-vision/accelerator"


def gpu_run_tags(raw: str | None) -> dict[str, str]:
    """The training job's run tags: the accelerator tag and a deployment's own (JSON values become strings).

    Example:
        >>> gpu_run_tags(None)
        {'spine-vision/accelerator': 'gpu'}
        >>> gpu_run_tags('{"dagster-k8s/config": {"pod_spec_config": {"node_selector": {"gpu": "true"}}}}')
        {'spine-vision/accelerator': 'gpu', 'dagster-k8s/config': '{"pod_spec_config": {"node_selector": {"gpu": "true"}}}'}
        >>> gpu_run_tags('{gpu: yes}')
        Traceback (most recent call last):
        ...
        ValueError: SPINE_GPU_RUN_TAGS is not valid JSON (Expecting property name enclosed in double quotes at character 1)
    """
    tags = {ACCELERATOR_TAG: "gpu"}
    try:
        extra = json.loads(raw) if raw else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{GPU_RUN_TAGS_ENV} is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(extra, dict):
        raise ValueError(f"{GPU_RUN_TAGS_ENV} must be a JSON object of run tags, got {type(extra).__name__}")
    tags.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    return tags


training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(nnunet_model, localization_model, classifier_model),
    tags=gpu_run_tags(os.environ.get(GPU_RUN_TAGS_ENV)),
    description="Train the segmentation, localization and grading models (the `gpu` pool) in one run.",
)
