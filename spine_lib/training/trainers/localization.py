"""Disc localization: train a model that finds the point of each lumbar level on a sagittal slice.

``train_localization(config)`` is the job behind ``spine-vision train localization`` and the
``localization_model`` asset: it trains, reloads the best checkpoint, scores it on the validation split and
writes the plots (training curves, predictions, error distribution) under ``<run>/logs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from loguru import logger
from torch.utils.data import DataLoader, Dataset

from spine_lib.errors import ConfigError, InputPathError
from spine_lib.formats.ivd_coords import ANNOTATIONS_FILE
from spine_lib.training.checkpoints import load_model_state, read_checkpoint
from spine_lib.training.config import LocalizationConfig
from spine_lib.training.metrics import LocalizationMetrics
from spine_lib.training.models.localization import LocalizationModel
from spine_lib.training.preprocessing import denormalize
from spine_lib.training.registry import ModelRegistry, register_trainer
from spine_lib.training.runs import BEST_MODEL, TrainingResult
from spine_lib.training.trainer import BaseTrainer, check_levels, nothing_matches

if TYPE_CHECKING:
    from spine_lib.core.device import DeviceChoice

PREVIEW_ITEMS = 12


@register_trainer("localization", config_cls=LocalizationConfig, description="IVD point localization")
class LocalizationTrainer(BaseTrainer[LocalizationConfig, LocalizationModel, Dataset]):
    """Trains a registered localization model on an IVD coordinates dataset (image, level) -> (x, y).

    With ``group_levels`` (the default) a training item is an image with the points of all its levels, so the
    backbone runs once per image instead of once per point (training, validation and :meth:`evaluate`); the
    metrics are per point either way.
    """

    _preview_dataset: Dataset | None = None

    @classmethod
    def model_from_config(cls, config: Any) -> LocalizationModel:
        kwargs: dict[str, Any] = {
            "variant": config.model_variant, "pretrained": config.pretrained, "weights_file": config.weights_file,
            "num_levels": config.num_levels, "use_level_embedding": config.use_level_embedding,
            "head_config": config.head_config(), "loss_type": config.loss_type,
        }
        if config.model_name == "vit_localization":
            kwargs["image_size"] = tuple(config.image_size)
        if config.model_name == "convnext_disc_detector":
            kwargs["offset_head"] = config.offset_head
        return ModelRegistry.create(config.model_name, **kwargs)

    def build_model(self) -> LocalizationModel:
        return self.model_from_config(self.config)

    def make_dataset(self, split: str, augment: bool = False, group_levels: bool = False) -> Dataset:
        from spine_lib.training.datasets.ivd_coords import IVDCoordsDataset

        config = self.config
        return IVDCoordsDataset(
            config.data_path, split=split, series_types=config.series_types, levels=config.levels,  # type: ignore[arg-type]
            points=config.point_kinds,
            image_size=tuple(config.image_size), augment=augment, val_fraction=config.val_fraction,  # type: ignore[arg-type]
            test_fraction=config.test_fraction, seed=config.seed, group_levels=group_levels,
            augmentation=config.augmentation,
        )

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        """The training and validation splits; a dataset folder that is missing, without annotations or left empty
        by the filters raises a clear error before anything is written."""
        check_levels(self.config.levels)
        data = Path(self.config.data_path)
        if not data.is_dir():
            raise InputPathError(data, "dataset folder does not exist: build it with `spine-vision dataset "
                                       "localization` first")
        if not (data / ANNOTATIONS_FILE).is_file():
            raise ConfigError(data, "no annotations.csv: build it with `spine-vision dataset localization` first")
        group = self.config.group_levels
        train = self.make_dataset("train", augment=self.config.augment, group_levels=group)
        if len(train) == 0:  # type: ignore[arg-type]
            raise ConfigError(data, self.why_empty())
        return train, self.make_dataset("val", group_levels=group)

    def why_empty(self) -> str:
        """Why the training split holds nothing: an empty annotations table, or filters that match no row."""
        from spine_lib.formats.ivd_coords import read_annotations

        filters: dict[str, tuple[list[str] | None, str]] = {"levels": (self.config.levels, "level"),
                                                             "series_types": (self.config.series_types, "series_type")}
        if self.config.points is not None:  # the model's own kinds keep every row of a table without kinds
            filters["points"] = (self.config.points, "point")
        return nothing_matches(ANNOTATIONS_FILE, read_annotations(Path(self.config.data_path)), filters)

    def _unpack_batch(self, batch: Any) -> tuple[Any, torch.Tensor]:
        return {"x": batch["image"], "level_idx": batch["level_idx"]}, batch["coords"]

    def _batch_extras(self, batch: Any) -> dict[str, list[Any]]:
        levels, coords = batch["level_idx"], batch["coords"]
        if levels.dim() == 2:  # grouped: the levels of the points that exist, image by image
            return {"level_idx": [int(i) for i in levels[torch.isfinite(coords).all(dim=-1)]]}
        return {"level_idx": [int(i) for i in levels]}

    def _flatten_outputs(self, predictions: torch.Tensor,
                         targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if targets.dim() == 3:  # grouped (images, levels, 2): one row per existing point
            present = torch.isfinite(targets).all(dim=-1)
            return predictions[present], targets[present]
        return predictions, targets

    def _compute_loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.unwrapped_model.get_loss(predictions, targets, heatmap_weight=self.config.heatmap_loss_weight)

    @property
    def metrics(self) -> LocalizationMetrics:
        return LocalizationMetrics(self.config.pck_thresholds, tuple(self.config.image_size))  # type: ignore[arg-type]

    def _compute_metrics(self, predictions: torch.Tensor, targets: torch.Tensor,
                         extras: dict[str, list[Any]]) -> dict[str, float]:
        return self.metrics.compute(predictions, targets, extras.get("level_idx")).flat()

    def metric_direction(self, name: str) -> str:
        """Lower or higher is better, as :class:`LocalizationMetrics` declares (pixel errors: lower)."""
        if name in ("val_loss", "loss"):
            return "min"
        return self.metrics.direction(name)

    def on_train_begin(self) -> None:
        self.metric_direction(self.checkpoint_metric_name())  # an unknown checkpoint metric fails before training
        model = self.unwrapped_model
        logger.info("{}: {:,} parameters, head {}, level embedding {}", model.name, model.count_parameters(),
                    model.head_type, "on" if model.use_level_embedding else "off")

    def on_epoch_end(self, epoch: int, train_loss: float, val_loss: float, metrics: dict[str, float]) -> None:
        config = self.config
        if config.visualize_predictions and (epoch + 1) % config.visualize_every == 0:
            self.plot_predictions(f"predictions_epoch_{epoch + 1}")

    def on_train_end(self, result: TrainingResult) -> None:
        """Reload the best weights (unless the last epoch was the best), take their validation scores (kept from
        that epoch, or computed again after a resume), write the plots."""
        if result.best_model_path.is_file() and self.best_epoch != result.epochs_run - 1:
            payload = read_checkpoint(result.best_model_path)
            load_model_state(self.unwrapped_model, payload, result.best_model_path)
        val_loss, metrics, outputs = self.best_validation or self.validate()
        if metrics:
            result.final_metrics = {"val_loss": val_loss, **metrics}
        result.plots["training_curves"] = self.visualizer.plot_training_curves(self.history)
        if len(outputs["predictions"]):
            result.plots["error_distribution"] = self.visualizer.plot_error_distribution(
                outputs["predictions"], outputs["targets"], outputs["extras"].get("level_idx"),
                tuple(self.config.image_size),  # type: ignore[arg-type]
            )
        if self.config.visualize_predictions and len(self.val_dataset):  # type: ignore[arg-type]
            preview = self.plot_predictions("predictions_best")
            if preview is not None:
                result.plots["predictions"] = preview

    @torch.no_grad()
    def plot_predictions(self, name: str) -> Path | None:
        """The first validation items with predicted and true points."""
        if self._preview_dataset is None:  # one (image, level) item each
            grouped = getattr(self.val_dataset, "group_levels", False)
            self._preview_dataset = self.make_dataset("val") if grouped else self.val_dataset
        count = min(PREVIEW_ITEMS, len(self._preview_dataset))  # type: ignore[arg-type]
        if count == 0:
            return None
        items = [self._preview_dataset[i] for i in range(count)]
        images = torch.stack([item["image"] for item in items])
        levels = torch.stack([torch.as_tensor(item["level_idx"]) for item in items])
        model = self.unwrapped_model
        was_training = model.training
        model.eval()
        predictions = model(images.to(self.accelerator.device), levels.to(self.accelerator.device)).float().cpu()
        model.train(was_training)
        targets = torch.stack([item["coords"] for item in items])
        return self.visualizer.plot_predictions([denormalize(i) for i in images], predictions.numpy(),
                                                targets.numpy(), [int(v) for v in levels], name=name)

    def evaluate(self, split: str | None = None, checkpoint: Path | None = None) -> dict[str, float]:
        """Metrics of the best (or given) checkpoint on ``split`` (default: test if held out, else val)."""
        split = split or ("test" if self.config.test_fraction > 0 else "val")
        path = checkpoint or self.output_path / BEST_MODEL
        load_model_state(self.unwrapped_model, read_checkpoint(path), path)
        dataset = self.val_dataset if split == "val" else self.make_dataset(split, group_levels=self.config.group_levels)
        loader = DataLoader(dataset, batch_size=self.config.batch_size, shuffle=False,
                            num_workers=self.config.num_workers)
        val_loss, metrics, _ = self.validate(loader)
        return {"loss": val_loss, **metrics}


def train_localization(config: LocalizationConfig, device_choice: DeviceChoice | None = None) -> TrainingResult:
    """Train (or resume) a localization model; the result's ``final_metrics`` score the best checkpoint."""
    return LocalizationTrainer(config, device_choice=device_choice).train()
