"""CPU training step of our two backbones in PyTorch's default memory format against ``channels_last``.

Run: ``uv run python bench/cpu_memory_format.py [--steps 6]``. One training step (forward, a loss, backward,
AdamW) of ``ResNet50MTL`` (batch 16, 128x128, the grading model) and of the ConvNeXt-atto disc detector (batch 8,
224x224), random inputs, 2 threads; the median of ``--steps`` steps after a first warm-up step, each format
measured twice, alternating. Prints seconds per step and the speed-up of ``channels_last``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spine_lib.training.models.base import BaseModel
from spine_lib.training.registry import ModelRegistry

MODELS: dict[str, tuple[str, dict[str, object], tuple[int, int, int, int]]] = {
    "resnet50_mtl": ("resnet50_mtl", {}, (16, 3, 128, 128)),
    "disc_detector": ("convnext_disc_detector", {"variant": "atto"}, (8, 3, 224, 224)),
}


def step_seconds(model: BaseModel, inputs: torch.Tensor, memory_format: torch.memory_format, steps: int) -> float:
    model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    batch = inputs.contiguous(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times: list[float] = []
    for _ in range(steps + 1):
        begin = time.perf_counter()
        heatmaps = getattr(model, "heatmaps", None)  # the detector's own maps (its points carry no gradient)
        out = heatmaps(batch) if heatmaps is not None else model(batch)
        values = out.as_dict().values() if hasattr(out, "as_dict") else [out]
        loss = torch.stack([v.float().mean() for v in values]).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - begin)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for label, (name, kwargs, shape) in MODELS.items():
        torch.manual_seed(0)
        model = ModelRegistry.create(name, **kwargs)
        inputs = torch.randn(*shape)
        found: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
        for _ in range(2):
            found["contiguous"].append(step_seconds(model, inputs, torch.contiguous_format, args.steps))
            found["channels_last"].append(step_seconds(model, inputs, torch.channels_last, args.steps))
        default, last = min(found["contiguous"]), min(found["channels_last"])
        print(f"{label}: batch {shape[0]} at {shape[2]}x{shape[3]}: {default:.3f} s per step, channels_last "
              f"{last:.3f} s ({default / last:.2f}x)")


if __name__ == "__main__":
    main()
