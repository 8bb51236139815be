"""Disc localization on style-B synthetic images: a second design of sagittal lumbar MRI, never trained on.

Run: ``uv run python bench/style_b_localization.py --model-path <best_model.pt> [--images 200] [--seed 0]
[--image-size 224] [--device cpu] [--batch-size 16] [--size 256]``.
Writes a style-B set (:mod:`spine_lib.synthetic.style_b`: other geometry and signal model than the training
phantom, random field of view, rotation, position, thoracic vertebrae in view, T1/T2/STIR/inverted contrast,
gamma, noise, blur, bias field, degenerated discs) to a temporary folder, predicts the canal point of every lumbar
level on every image, and prints JSON: the share of points within 5 px at the model's input size (the
checkpoint's training image size unless ``--image-size``; a point's error in pixels of the input grid is its
relative error times that size), the same per level, per contrast kind and per framing, mean and median error,
and the share of points nearer to another level's truth than to their own (a level mix-up, not imprecision).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from spine_lib.io.records import read_records_csv
from spine_lib.levels import LEVEL_TO_IDX, LEVELS
from spine_lib.synthetic.style_b import write_style_b_set
from spine_lib.training.checkpoints import model_from_checkpoint

PIXEL_THRESHOLD = 5.0


def summary(errors: list[float]) -> dict[str, float]:
    """Share within the threshold, mean and median error (px) and count of a group of points."""
    values = np.asarray(errors, dtype=np.float64)
    if values.size == 0:
        return {"count": 0}
    return {"count": int(values.size), "within_5px": round(float(np.mean(values < PIXEL_THRESHOLD)), 4),
            "mean_error_px": round(float(values.mean()), 3), "median_error_px": round(float(np.median(values)), 3)}


def framing_groups(image: dict[str, str]) -> list[str]:
    """The framing bands an image belongs to (scale, rotation, thoracic vertebrae in view)."""
    scale, rotation = float(image["scale"]), abs(float(image["rotation_deg"]))
    thoracic = int(image["thoracic_in_view"])
    scale_band = "scale<0.85" if scale < 0.85 else "scale>1.2" if scale > 1.2 else "scale 0.85-1.2"
    return [scale_band, "rotation>10deg" if rotation > 10 else "rotation<=10deg",
            f"thoracic_in_view={thoracic}" if thoracic < 3 else "thoracic_in_view>=3"]


def evaluate(folder: Path, model: Any, image_size: tuple[int, int], device: str, batch_size: int) -> dict[str, Any]:
    """Predict every level of every image in ``folder`` and score the predictions against ``points.csv``."""
    points = read_records_csv(folder / "points.csv", required=["image", "level", "x", "y", "width", "height"],
                              missing_ok=False)
    images = {row["image"]: row for row in read_records_csv(folder / "images.csv", missing_ok=False)}
    truth = {name: np.full((len(LEVELS), 2), np.nan) for name in images}
    for row in points:
        # relative coordinates as the training data writes them: pixel / size
        truth[row["image"]][LEVEL_TO_IDX[row["level"]]] = (float(row["x"]) / float(row["width"]),
                                                           float(row["y"]) / float(row["height"]))
    names = sorted(images)
    height, width = image_size
    groups: dict[str, list[float]] = defaultdict(list)
    all_errors: list[float] = []
    mixed_up = 0
    forward_ms = 0.0
    for start in range(0, len(names), batch_size):
        batch = names[start:start + batch_size]
        output = model.test_inference([str(folder / n) for n in batch], image_size, device,
                                      level_indices=list(range(len(LEVELS))), pairwise=False)
        forward_ms += float(output["inference_time_ms"])
        predictions = output["predictions"].numpy().astype(np.float64)
        pairs = zip(output["image_index"], output["level_indices"], strict=True)
        for row, (image_index, level) in enumerate(pairs):
            name = batch[image_index]
            offsets = (truth[name] - predictions[row]) * np.array([width, height])
            distances = np.hypot(offsets[:, 0], offsets[:, 1])
            error = float(distances[level])
            mixed_up += int(np.argmin(distances) != level)
            all_errors.append(error)
            groups[f"level/{LEVELS[level]}"].append(error)
            groups[f"contrast/{images[name]['contrast']}"].append(error)
            for band in framing_groups(images[name]):
                groups[f"framing/{band}"].append(error)
    report: dict[str, Any] = {**summary(all_errors),
                              "nearer_another_level": round(mixed_up / max(len(all_errors), 1), 4)}
    for kind in ("level", "contrast", "framing"):
        report[f"per_{kind}"] = {key.split("/", 1)[1]: summary(values) for key, values in sorted(groups.items())
                                 if key.startswith(f"{kind}/")}
    report["forward_ms_per_image"] = round(forward_ms / max(len(names), 1), 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, required=True, help="a localization checkpoint")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256, help="rows and columns of the style-B images")
    parser.add_argument("--image-size", type=int, nargs="+", default=None,
                        help="model input size (H [W]); default: the checkpoint's training size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (all their levels)")
    args = parser.parse_args()

    model, payload = model_from_checkpoint(args.model_path)
    trained = (payload.get("config") or {}).get("image_size") or (224, 224)
    size_arg = args.image_size or list(trained)
    image_size = (int(size_arg[0]), int(size_arg[-1]))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = write_style_b_set(Path(tmp) / "style_b", args.images, args.seed, size=args.size)
        synth_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        report = evaluate(folder, model, image_size, args.device, args.batch_size)
        inference_seconds = time.perf_counter() - t1
    print(json.dumps({
        "model_path": str(args.model_path), "model": payload.get("model_name"),
        "variant": (payload.get("model_kwargs") or {}).get("variant"), "image_size": list(image_size),
        "device": args.device, "images": args.images, "seed": args.seed, "style_b_size": args.size,
        **report,
        "synth_seconds": round(synth_seconds, 1), "inference_seconds": round(inference_seconds, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
