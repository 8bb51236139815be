"""Segmentation quality after a short CPU nnU-Net training on a synthetic SPIDER root, and inference time.

Run: ``uv run python bench/nnunet_training.py [--patients 5 --size 128 --slices 12 --configuration 2d --max-features 64
--epochs 30 --iterations 25 --workdir /tmp/nnunet_bench]``. Makes a synthetic root, converts it, trains
``nnUNetTrainerShort`` on fold 0 (folds drawn by patient, so the validation patients are unseen), predicts each
validation case with :class:`NNUNetSegmentation` and scores it against the converted labels. Prints JSON: Dice per
group (union of the group's labels) and mean Dice per label in each group, minutes of training, seconds per volume.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.nnunet import ConvertConfig, convert_to_nnunet, image_path, label_path
from spine_lib.inference import NNUNetSegmentation
from spine_lib.segmentation.environment import NNUNetPaths
from spine_lib.segmentation.metrics import group_dice
from spine_lib.segmentation.training import SegmentationTrainConfig, train_segmentation
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--slices", type=int, default=12)
    parser.add_argument("--configuration", default="2d")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--max-features", type=int, default=None, help="Cap the U-Net's features per stage.")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--schema", default="spider", help="Label schema (spider_groups: vertebra, canal, disc).")
    parser.add_argument("--no-mirroring", action="store_true", help="No mirror TTA in validation and inference.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/nnunet_bench"))
    parser.add_argument("--keep", action="store_true", help="Reuse the root and preprocessing of an earlier run.")
    args = parser.parse_args()

    root = args.workdir / "data"
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
        make_synthetic_root(SynthConfig(out=root, spider_patients=args.patients, rsna_studies=1, phenikaa_patients=1,
                                        size=args.size, slices=args.slices, seed=args.seed))
    layout = DataLayout(root=root, weights=args.workdir / "weights")
    report = convert_to_nnunet(ConvertConfig(input_path=layout.spider, output_path=layout.nnunet_dataset, workers=2,
                                                   schema_name=args.schema))
    paths = NNUNetPaths.from_layout(layout)
    config = SegmentationTrainConfig(
        data_path=layout.nnunet_dataset, preprocessed_path=paths.preprocessed, results_path=paths.results,
        configuration=args.configuration, fold="0", trainer="nnUNetTrainerShort", device=args.device,
        epochs=args.epochs, iterations_per_epoch=args.iterations, val_iterations_per_epoch=5, initial_lr=args.lr,
        max_features=args.max_features, batch_size=args.batch_size,
        preprocess_workers=2, augmentation_workers=1, seed=args.seed, validation_mirroring=not args.no_mirroring,
    )
    result = train_segmentation(config)
    splits = json.loads((paths.preprocessed / layout.nnunet_dataset.name / "splits_final.json").read_text())
    model = NNUNetSegmentation(paths.results, 501, args.configuration, 0, device=args.device, trainer="nnUNetTrainerShort",
                               plans=config.training_plans, use_mirroring=not args.no_mirroring)
    labels = json.loads((layout.nnunet_dataset / "dataset.json").read_text())["labels"]
    scores: list[dict[str, float]] = []
    seconds: list[float] = []
    for case in splits[0]["val"]:
        image = sitk.ReadImage(str(image_path(layout.nnunet_dataset, case)))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(label_path(layout.nnunet_dataset, case))))
        predicted = model.predict(image)
        seconds.append(predicted.seconds)
        scores.append(group_dice(sitk.GetArrayFromImage(predicted.prediction), ref, labels))
    mean = {k: round(float(np.nanmean([s[k] for s in scores])), 4) for k in scores[0]}
    print(json.dumps({
        "cases": report.cases, "validation_cases": splits[0]["val"], "configuration": args.configuration,
        "trainer": "nnUNetTrainerShort", "plans": config.training_plans, "epochs": args.epochs, "iterations_per_epoch": args.iterations,
        "train_minutes": round(result.train_seconds / 60, 2), "preprocess_minutes": round(result.preprocess_seconds / 60, 2),
        "schema": args.schema, "mirroring": not args.no_mirroring, "batch_size": args.batch_size,
        "max_features": args.max_features, "dice": mean, "nnunet_validation_foreground_dice": round(result.foreground_dice, 4),
        "inference_seconds_per_volume": round(float(np.median(seconds)), 2), "device": args.device,
        "size": args.size, "slices": args.slices, "started": time.strftime("%H:%M"),
    }, indent=1))


if __name__ == "__main__":
    main()
