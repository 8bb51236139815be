"""Device choice: the selection logic runs against a faked CUDA query, the resource against this machine."""

from __future__ import annotations

import pytest

from spine_lib.core.device import DeviceChoice, select_device
from spine_lib.errors import ConfigError

GIB = 2**30
THREE_GPUS = [(0, 3 * GIB, 80 * GIB), (1, 70 * GIB, 80 * GIB), (2, 12 * GIB, 24 * GIB)]


def fake(devices: list[tuple[int, int, int]]):
    return lambda: devices


def test_auto_takes_the_gpu_with_most_free_memory() -> None:
    choice = select_device("auto", query=fake(THREE_GPUS))
    assert choice.device == "cuda:1"
    assert choice.mixed_precision and choice.accelerate_precision == "fp16"
    assert "70.0 GiB free" in choice.reason


def test_auto_breaks_ties_by_lowest_index_and_respects_visible_indices() -> None:
    # CUDA_VISIBLE_DEVICES=3,5 makes torch number them 0 and 1; equal free memory -> the first.
    assert select_device("auto", query=fake([(0, GIB, 2 * GIB), (1, GIB, 2 * GIB)])).device == "cuda:0"
    assert select_device("cuda", query=fake([(0, GIB, 2 * GIB), (1, 2 * GIB, 2 * GIB)])).device == "cuda:1"


def test_auto_falls_back_to_cpu_without_mixed_precision() -> None:
    choice = select_device("auto", query=fake([]))
    assert choice == DeviceChoice("cpu", False, "no CUDA device visible")
    assert choice.accelerate_precision == "no" and not choice.is_cuda


def test_explicit_choices() -> None:
    assert select_device("cpu", query=fake(THREE_GPUS)).device == "cpu"
    assert not select_device("cpu", query=fake(THREE_GPUS)).mixed_precision
    explicit = select_device("cuda:2", query=fake(THREE_GPUS))
    assert explicit.device == "cuda:2" and explicit.is_cuda
    assert not select_device("CUDA:0", mixed_precision=False, query=fake(THREE_GPUS)).mixed_precision


@pytest.mark.parametrize(("spec", "message"), [
    ("cuda:7", "visible CUDA devices are cuda:0, cuda:1, cuda:2"),
    ("gpu", "unknown device 'gpu'"),
    ("cuda:x", "unknown device"),
])
def test_bad_specs_fail_clearly(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_device(spec, query=fake(THREE_GPUS))


def test_cuda_without_a_gpu_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        select_device("cuda:0", query=fake([]))


def test_resource_resolves_on_this_machine() -> None:
    import torch

    from spine_assets.defs.resources import TorchDevice

    choice = TorchDevice().choice()
    if torch.cuda.is_available():
        assert choice.is_cuda and choice.mixed_precision
    else:
        assert choice.device == "cpu" and not choice.mixed_precision
    assert TorchDevice(device="cpu").choice().device == "cpu"


def test_definitions_expose_device_and_tracking_from_the_environment() -> None:
    import json
    import os
    import subprocess
    import sys

    code = ("import json; from spine_assets.definitions import defs; r = defs().resources; "
            "print(json.dumps([r['torch_device'].device, r['tracking'].mode]))")
    env = {**os.environ, "SPINE_DEVICE": "cpu", "SPINE_TRACKING": "offline"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["cpu", "offline"]
