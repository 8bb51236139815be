"""Disc localization quality on synthetic RSNA data after a time-boxed CPU (or GPU) training.

Run: ``uv run python bench/localization_quality.py [--studies 60] [--epochs 60] [--minutes 10] [--device cpu]``.
Makes a synthetic data root (RSNA studies at 256x256; reused when ``--root`` already holds one), builds the IVD
coordinates dataset, trains the localization model (all levels of an image per item unless
``--one-level-per-item``) with a held-out test split of whole studies (never seen in
training or model selection), then prints JSON: the share of held-out points within 5 px at the model's input
size (224x224 by default), PCK, mean/median pixel error, training minutes, and training and inference images/s.
Target: >= 95% within 5 px after <= 10 minutes of CPU training.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from spine_lib.datasets.ivd_coords import IVDDatasetConfig, build_ivd_coords
from spine_lib.errors import ConfigError
from spine_lib.synthetic.config import SynthConfig
from spine_lib.synthetic.generate import make_synthetic_root
from spine_lib.training.config import LocalizationConfig
from spine_lib.training.trainers.localization import LocalizationTrainer


def inference_rate(trainer: LocalizationTrainer, split: str, batch_size: int) -> float:
    """Images per second of the model's forward pass (eval mode, no grad) over a split."""
    model = trainer.unwrapped_model.eval()
    loader = DataLoader(trainer.make_dataset(split), batch_size=batch_size, shuffle=False)
    batches = [(b["image"], b["level_idx"]) for b in loader]
    device = trainer.accelerator.device
    with torch.no_grad():
        model(batches[0][0][:2].to(device), batches[0][1][:2].to(device))  # warm-up
        start = time.perf_counter()
        count = 0
        for images, levels in batches:
            model(images.to(device), levels.to(device))
            count += len(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="synthetic data root to make or reuse")
    parser.add_argument("--studies", type=int, default=60)
    parser.add_argument("--size", type=int, default=256, help="in-plane size of the synthetic series")
    parser.add_argument("--model", default="convnext_localization",
                        choices=["convnext_localization", "convnext_disc_detector"],
                        help="level-conditioned localizer, or the level-free disc detector")
    parser.add_argument("--variant", default="atto")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=10.0, help="training time limit")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch (all their levels)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--head", default="heatmap")
    parser.add_argument("--one-level-per-item", action="store_true",
                        help="train on one (image, level) item at a time instead of all levels of an image")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augmentation", default="scanner", choices=["light", "scanner", "any_contrast"])
    parser.add_argument("--heatmap-loss-weight", type=float, default=None,
                        help="weight of the heatmap's own loss (default: the config's)")
    parser.add_argument("--weights", type=Path, default=None, help="keep the trained run here (default: temporary)")
    parser.add_argument("--pretrain-pictures", type=int, default=0,
                        help="also train on this many synthetic Lumbar Coords pictures (written into the root)")
    parser.add_argument("--rsna-looks", default="plain", choices=["plain", "varied"],
                        help="how the RSNA studies' tissues look when the root is made (spine-vision synth --rsna-looks)")
    parser.add_argument("--style-b", type=int, default=0,
                        help="also score the best model on this many images of the unseen synthetic style")
    parser.add_argument("--canal-points-on-t1", action=argparse.BooleanOptionalAction, default=True,
                        help="place the canal points on each study's Sagittal T1 series too (the dataset's default)")
    parser.add_argument("--points", nargs="+", default=None,
                        help="train and score only these point kinds (default: the model's own)")
    parser.add_argument("--offset-head", action="store_true",
                        help="the disc detector with sub-cell offsets (else points at the peaks' centroids)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "data"
        t0 = time.perf_counter()
        if not (root / "raw/RSNA/train_label_coordinates.csv").is_file():
            make_synthetic_root(SynthConfig(out=root, spider_patients=1, rsna_studies=args.studies,
                                            phenikaa_patients=1, size=args.size, seed=args.seed,
                                            rsna_looks=args.rsna_looks))
        pretrain = root / "raw/Lumbar Coords"
        if args.pretrain_pictures and not (pretrain / "coords_pretrain.csv").is_file():
            from spine_lib.synthetic.lumbar_coords import write_lumbar_coords

            write_lumbar_coords(pretrain, args.pretrain_pictures, seed=args.seed)
        synth_seconds = time.perf_counter() - t0
        report = build_ivd_coords(IVDDatasetConfig(base_path=root, canal_points_on_t1=args.canal_points_on_t1))
        config = LocalizationConfig(
            data_path=root / "processed/ivd_coords", weights_path=args.weights or Path(tmp) / "weights",
            model_name=args.model, model_variant=args.variant, augmentation=args.augmentation,
            image_size=(args.image_size, args.image_size), batch_size=args.batch_size, num_epochs=args.epochs,
            learning_rate=args.learning_rate, head_type=args.head, device=args.device, val_fraction=0.1,
            test_fraction=0.2, max_train_minutes=args.minutes, visualize_predictions=False, early_stopping=False,
            seed=args.seed, group_levels=not args.one_level_per_item, offset_head=args.offset_head, points=args.points,
            **({} if args.heatmap_loss_weight is None else {"heatmap_loss_weight": args.heatmap_loss_weight}),
        )
        trainer = LocalizationTrainer(config)
        result = trainer.train()
        test = trainer.evaluate("test")
        print("test:", json.dumps({k: round(v, 4) for k, v in test.items()}), flush=True)  # kept if a later step fails
        per_series: dict[str, dict[str, float]] = {}
        for series_type in sorted(report.by_series_type):  # the same checkpoint on each series type's test points
            try:
                scorer = LocalizationTrainer(config.model_copy(update={"series_types": [series_type]}))
            except ConfigError:  # no test point of this type left by --points
                continue
            metrics = scorer.evaluate("test", checkpoint=Path(result.best_model_path))
            per_series[series_type] = {k: round(metrics[k], 4) for k in ("within_5px", "median_error_px", "count")}
        train_minutes = result.seconds / 60
        groups = getattr(trainer.train_dataset, "groups", [])
        train_points = sum(len(g) for g in groups) if groups else len(trainer.train_dataset)  # type: ignore[arg-type]
        points_per_image = train_points / max(1, len(trainer.train_dataset))  # type: ignore[arg-type]
        style_b: dict[str, object] = {}
        if args.style_b:
            import importlib.util

            spec = importlib.util.spec_from_file_location("style_b_bench", Path(__file__).with_name(
                "style_b_localization.py"))
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            from spine_lib.synthetic.style_b import write_style_b_set

            folder = write_style_b_set(Path(tmp) / "style_b", args.style_b, seed=args.seed + 1000)
            style_b = module.evaluate(folder, trainer.unwrapped_model.eval(), (args.image_size, args.image_size),
                                      str(trainer.accelerator.device), 16)
        print(json.dumps({
            "model": args.model,
            "augmentation": args.augmentation, "pretrain_pictures": args.pretrain_pictures,
            "rsna_looks": args.rsna_looks,
            "heatmap_loss_weight": config.heatmap_loss_weight,
            "device": trainer.device_choice.device,
            "torch_threads": torch.get_num_threads(),
            "studies": report.studies, "annotations": report.annotations,
            "train_images": len(trainer.train_dataset), "train_points": train_points,  # type: ignore[arg-type]
            "val_points": int(result.final_metrics.get("count", 0)),
            "test_points": int(test.get("count", 0)),
            "variant": args.variant, "image_size": args.image_size, "epochs_run": result.epochs_run,
            "synth_seconds": round(synth_seconds, 1),
            "train_minutes": round(train_minutes, 2),
            "test_within_5px": round(test.get("within_5px", 0.0), 4),
            "test_pck@0.02": round(test.get("pck@0.02", 0.0), 4),
            "test_pck@0.05": round(test.get("pck@0.05", 0.0), 4),
            "test_mean_error_px": round(test.get("mean_error_px", 0.0), 3),
            "test_median_error_px": round(test.get("median_error_px", 0.0), 3),
            "test_per_series_type": per_series,
            "test_within_5px_per_level": {k.rsplit("/", 1)[0]: round(v, 4) for k, v in test.items()
                                          if k.endswith("/within_5px")},
            "val_within_5px": round(result.final_metrics.get("within_5px", 0.0), 4),
            "train_images_per_second": round(result.train_images_per_second, 1),
            "train_points_per_second": round(result.train_images_per_second * points_per_image, 1),
            "inference_images_per_second": round(inference_rate(trainer, "test", 32), 1),
            "style_b": style_b,
        }, indent=2))


if __name__ == "__main__":
    main()
