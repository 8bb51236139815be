"""Which torch device a job runs on: ``auto`` takes the visible CUDA device with the most free memory, else CPU.

The CUDA query is injectable, so the choice is testable on machines without a GPU. Mixed precision is only
ever on for CUDA devices (CPU autocast to bfloat16 is slower than float32 on most CPUs and changes results).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spine_lib.errors import ConfigError

#: (device index, free bytes, total bytes) for each visible CUDA device.
CudaMemory = tuple[int, int, int]
CudaQuery = Callable[[], Sequence[CudaMemory]]

_CUDA_SPEC = re.compile(r"^cuda(?::(\d+))?$")


@dataclass(frozen=True)
class DeviceChoice:
    """The device to use (``cpu`` or ``cuda:N``), whether mixed precision is on, and why it was chosen."""

    device: str
    mixed_precision: bool
    reason: str

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def accelerate_precision(self) -> str:
        """The value for Accelerate's ``mixed_precision`` argument."""
        return "fp16" if self.mixed_precision else "no"


def cuda_free_memory() -> list[CudaMemory]:
    """Free and total memory of every CUDA device torch can see; empty when there is none."""
    import torch

    if not torch.cuda.is_available():
        return []
    devices: list[CudaMemory] = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        devices.append((index, int(free), int(total)))
    return devices


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def select_device(spec: str = "auto", *, mixed_precision: bool = True, query: CudaQuery | None = None) -> DeviceChoice:
    """Resolve ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a concrete device.

    ``auto`` picks the CUDA device with the most free memory (ties go to the lowest index) and falls back to
    the CPU when no CUDA device is visible. ``cuda`` is ``auto`` restricted to CUDA: it fails when there is none.
    An explicit ``cuda:N`` must exist. ``mixed_precision=False`` turns it off on CUDA too.
    """
    wanted = spec.strip().lower()
    if wanted == "cpu":
        return DeviceChoice("cpu", False, "cpu requested")
    cuda = _CUDA_SPEC.match(wanted)
    if wanted != "auto" and cuda is None:
        raise ConfigError("device", f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")
    devices = list((query or cuda_free_memory)())
    if not devices:
        if wanted == "auto":
            return DeviceChoice("cpu", False, "no CUDA device visible")
        raise ConfigError("device", f"{spec!r} requested but no CUDA device is visible")
    if cuda is not None and cuda.group(1) is not None:
        index = int(cuda.group(1))
        match = [d for d in devices if d[0] == index]
        if not match:
            visible = ", ".join(f"cuda:{d[0]}" for d in devices)
            raise ConfigError("device", f"{spec!r} requested but the visible CUDA devices are {visible}")
        _, free, total = match[0]
        return DeviceChoice(f"cuda:{index}", mixed_precision, f"cuda:{index} requested ({_gib(free)} free of {_gib(total)})")
    index, free, total = max(devices, key=lambda d: (d[1], -d[0]))
    return DeviceChoice(
        f"cuda:{index}", mixed_precision,
        f"most free memory of {len(devices)} CUDA device(s): {_gib(free)} free of {_gib(total)}",
    )
