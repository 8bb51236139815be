"""IVD crops against the synthetic truth: mask-derived points, and localizer points of models trained two ways.

Run: ``uv run python bench/ivd_crops.py --root /tmp/crops/data --spider 20 --phenikaa 20 --rsna 150
[--recipe demo ten-minute] [--model-path best_model.pt] [--localization-series sag_t2]``.

Makes (or reuses) a synthetic root, runs the real Phenikaa pipeline (OCR and matching) to get the export, then builds
the crops with SPIDER's points from its masks and every Phenikaa patient's from a localizer:
- ``demo``: trained as ``spine-vision demo`` trains it (ConvNeXt-atto, 128x128, 40 epochs, batch 8) on the root's
  RSNA studies;
- ``ten-minute``: as ``bench/localization_quality.py`` (224x224, batch 8, 10 minutes);
- ``--model-path``: a checkpoint you already have.
Prints JSON per source and model: crops, share whose point lies on its own disc, share within 1 px, median and
90th-percentile point error (slice pixels and mm), crops per second, whole build seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.classification import ClassificationDatasetConfig, build_classification_dataset
from spine_lib.datasets.ivd_coords import IVDDatasetConfig, build_ivd_coords
from spine_lib.datasets.phenikaa import PreprocessConfig, preprocess
from spine_lib.synthetic.config import SynthConfig
from spine_lib.synthetic.crops import score_crops
from spine_lib.synthetic.generate import make_synthetic_root
from spine_lib.synthetic.truth import read_truth
from spine_lib.training.config import LocalizationConfig
from spine_lib.training.trainers.localization import train_localization

RECIPES: dict[str, dict[str, Any]] = {
    "demo": {"model_variant": "atto", "image_size": (128, 128), "num_epochs": 40, "batch_size": 8,
             "learning_rate": 1e-3},
    "ten-minute": {"model_variant": "atto", "image_size": (224, 224), "num_epochs": 28, "batch_size": 8,
                   "learning_rate": 1e-3, "max_train_minutes": 10.0, "early_stopping": False},
}


def summary(root: Path, dataset: Path, source: str) -> dict[str, Any]:
    scores = [s for s in score_crops(root, dataset) if s.image_path.startswith(f"images/{source}_")]
    if not scores:
        return {"crops": 0}
    px = np.array([s.point_error_px for s in scores])
    mm = np.array([s.point_error_mm for s in scores])
    return {
        "crops": len(scores), "on_their_disc": round(float(np.mean([s.on_disc for s in scores])), 4),
        "within_1px": round(float(np.mean(px <= 1.0)), 4), "within_5px": round(float(np.mean(px <= 5.0)), 4),
        "median_error_px": round(float(np.median(px)), 3), "p90_error_px": round(float(np.percentile(px, 90)), 3),
        "median_error_mm": round(float(np.median(mm)), 3), "max_error_px": round(float(px.max()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="synthetic data root to make or reuse")
    parser.add_argument("--spider", type=int, default=20)
    parser.add_argument("--phenikaa", type=int, default=20)
    parser.add_argument("--rsna", type=int, default=150, help="RSNA studies the localizers learn from")
    parser.add_argument("--recipe", nargs="*", default=["demo", "ten-minute"], choices=sorted(RECIPES))
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--localization-series", default="sag_t1", choices=["sag_t2", "sag_t1"],
                        help="the series the localizer reads for the Phenikaa patients")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    layout = DataLayout(root=args.root, weights=args.root.parent / "weights")
    out: dict[str, Any] = {}
    if not (layout.root / "truth/spider.json").is_file():
        t0 = time.perf_counter()
        make_synthetic_root(SynthConfig(out=layout.root, spider_patients=args.spider, rsna_studies=args.rsna,
                                        phenikaa_patients=args.phenikaa, seed=args.seed))
        out["synth_seconds"] = round(time.perf_counter() - t0, 1)
    corrupted = [str(i) for i in read_truth(layout.root, "phenikaa")["corrupted_ids"]]
    t0 = time.perf_counter()
    phenikaa = preprocess(PreprocessConfig.for_layout(layout, corrupted_ids=corrupted))
    out["phenikaa_pipeline"] = {"seconds": round(time.perf_counter() - t0, 1), "matched": phenikaa.matched,
                                "reports": phenikaa.reports}
    models: dict[str, Path] = {}
    if args.model_path is not None:
        models["given"] = args.model_path
    if args.recipe:
        build_ivd_coords(IVDDatasetConfig.for_layout(layout))
    for recipe in args.recipe:
        t0 = time.perf_counter()
        result = train_localization(LocalizationConfig.for_layout(
            layout, run_id=f"bench-{recipe}", device=args.device, visualize_predictions=False, seed=args.seed,
            **RECIPES[recipe]))
        models[recipe] = result.best_model_path
        out[f"train_{recipe}"] = {"minutes": round((time.perf_counter() - t0) / 60, 2),
                                  "val_within_5px": round(result.final_metrics.get("within_5px", 0.0), 4)}
    for name, path in models.items():
        config = ClassificationDatasetConfig.for_layout(layout, output_name=f"crops_{name}", force=True,
                                                        localization_model_path=path, device=args.device,
                                                        localization_series=args.localization_series)
        report = build_classification_dataset(config)
        out[name] = {
            "build_seconds": round(report.seconds, 2), "crops_per_second": report.as_metadata()["crops_per_second"],
            "rejected": report.rejects_by_reason,
            "spider_mask": summary(layout.root, config.output_path, "spider"),
            "phenikaa_model": summary(layout.root, config.output_path, "phenikaa"),
        }
    if not models:  # masks only
        config = ClassificationDatasetConfig.for_layout(layout, output_name="crops_masks", force=True,
                                                        include_phenikaa=False)
        report = build_classification_dataset(config)
        out["masks"] = {"build_seconds": round(report.seconds, 2), "spider_mask": summary(layout.root,
                                                                                          config.output_path, "spider")}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
