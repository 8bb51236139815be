"""A short nnU-Net trainer for CPU runs, tests and demos (standard network, loss and augmentation).

The stock nnUNetTrainer runs 1000 epochs of 250 iterations; this one defaults to 30 epochs of 25 iterations
and checks the validation loss on 5 batches per epoch. Training code may override the three numbers on the
instance before ``run_training()``. Imported by nnU-Net as a top-level module: no project imports here.
"""

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainerShort(nnUNetTrainer):  # noqa: N801 - nnU-Net's trainer naming
    """nnUNetTrainer with few, short epochs."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:  # noqa: B008 - nnU-Net's signature
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 30
        self.num_iterations_per_epoch = 25
        self.num_val_iterations_per_epoch = 5
        self.save_every = 10
