"""Task trainers (registered in :class:`~spine_lib.training.registry.TrainerRegistry`)."""

from spine_lib.training.trainers.localization import LocalizationTrainer, train_localization

__all__ = ["LocalizationTrainer", "train_localization"]
