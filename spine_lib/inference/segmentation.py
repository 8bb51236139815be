"""nnU-Net v2 segmentation of an in-memory image through nnU-Net's own predictor.

The image goes to ``nnUNetPredictor.predict_single_npy_array`` laid out exactly as nnU-Net's SimpleITK reader
lays out files (array ``z, y, x`` with a channel axis, spacing reversed), so predictions equal those of
``nnUNetv2_predict`` on the same file. The mask comes back on the input's grid (size, spacing, origin, direction).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from spine_lib.errors import ConfigError, InputPathError, MedicalImageError
from spine_lib.inference.base import InferenceModel, InferenceResult
from spine_lib.segmentation.environment import nnunet_env, trainer_search_path


def find_model_folder(model_path: Path, dataset_id: int, configuration: str, trainer: str | None = None,
                      plans: str | None = None) -> Path:
    """The trained-model folder (with ``plans.json``) that ``model_path`` names.

    ``model_path`` may be that folder itself, a ``DatasetXXX_Name`` folder, or nnU-Net's results root. Without a
    trainer (or plans) name, the one folder ``<trainer>__<plans>__<configuration>`` is taken (the standard
    ``nnUNetTrainer__nnUNetPlans`` if there are several).
    """
    model_path = Path(model_path)
    if (model_path / "plans.json").is_file():
        return model_path
    if not model_path.is_dir():
        raise InputPathError(model_path, "model folder does not exist")
    dataset_dir = model_path
    if not model_path.name.startswith(f"Dataset{dataset_id:03d}_"):
        found = sorted(model_path.glob(f"Dataset{dataset_id:03d}_*"))
        if not found:
            raise InputPathError(model_path, f"no Dataset{dataset_id:03d}_* folder of trained models here")
        dataset_dir = found[0]
    pattern = f"{trainer or '*'}__{plans or '*'}__{configuration}"
    candidates = sorted(p for p in dataset_dir.glob(pattern) if (p / "plans.json").is_file())
    if not candidates:
        raise InputPathError(dataset_dir, f"no trained model {pattern}")
    if len(candidates) > 1:
        standard = [p for p in candidates if p.name == f"nnUNetTrainer__nnUNetPlans__{configuration}"]
        if not standard:
            names = ", ".join(p.name for p in candidates)
            raise ConfigError("trainer", f"several trained models match ({names}); name the trainer")
        return standard[0]
    return candidates[0]


class NNUNetSegmentation(InferenceModel):
    """Segment a 3D image with a trained nnU-Net v2 model (one fold, or several folds ensembled)."""

    def __init__(
        self,
        model_path: Path,
        dataset_id: int = 501,
        configuration: str = "3d_fullres",
        fold: int | str | tuple[int | str, ...] = 0,
        device: str = "auto",
        trainer: str | None = None,
        plans: str | None = None,
        checkpoint: str = "checkpoint_final.pth",
        use_mirroring: bool = True,
        tile_step_size: float = 0.5,
    ) -> None:
        super().__init__(model_path, device)
        self.dataset_id = dataset_id
        self.configuration = configuration
        self.folds = tuple(str(f) for f in (fold if isinstance(fold, tuple) else (fold,)))
        self.trainer = trainer
        self.plans = plans
        self.checkpoint = checkpoint
        self.use_mirroring = use_mirroring
        self.tile_step_size = tile_step_size
        self._predictor: Any = None
        self.model_folder: Path | None = None
        self.device: str | None = None

    @property
    def name(self) -> str:
        return f"nnU-Net v2 Dataset{self.dataset_id:03d} {self.configuration} fold {','.join(self.folds)}"

    @property
    def labels(self) -> dict[str, int]:
        """Label names and values of the model's dataset.json."""
        self.ensure_loaded()
        return dict(self._predictor.dataset_json["labels"])

    def load(self) -> None:
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        from spine_lib.core.device import select_device

        assert self.model_path is not None
        folder = find_model_folder(self.model_path, self.dataset_id, self.configuration, self.trainer, self.plans)
        for fold in self.folds:
            if not (folder / f"fold_{fold}" / self.checkpoint).is_file():
                raise InputPathError(folder / f"fold_{fold}" / self.checkpoint, "checkpoint does not exist")
        choice = select_device(self.device_spec)
        predictor = nnUNetPredictor(tile_step_size=self.tile_step_size, use_gaussian=True,
                                    use_mirroring=self.use_mirroring, perform_everything_on_device=choice.is_cuda,
                                    device=torch.device(choice.device), verbose=False, verbose_preprocessing=False,
                                    allow_tqdm=False)
        folds = tuple(f if f == "all" else int(f) for f in self.folds)
        # the checkpoint names its trainer class; this project's trainers are found through nnUNet_extTrainer
        with nnunet_env({"nnUNet_extTrainer": trainer_search_path()}):
            predictor.initialize_from_trained_model_folder(
                str(folder), use_folds=folds, checkpoint_name=self.checkpoint  # pyright: ignore[reportArgumentType]
            )
        self._predictor, self.model_folder, self.device = predictor, folder, choice.device

    def predict(self, image: sitk.Image) -> InferenceResult:
        """Segment ``image``; the mask (uint8) has the image's size and geometry."""
        self.ensure_loaded()
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise MedicalImageError("image", "nnU-Net segmentation needs a single-channel 3D image")
        start = time.perf_counter()
        array = sitk.GetArrayFromImage(image).astype(np.float32)[None]
        properties = {
            "sitk_stuff": {"spacing": image.GetSpacing(), "origin": image.GetOrigin(), "direction": image.GetDirection()},
            "spacing": [abs(s) for s in image.GetSpacing()[::-1]],
        }
        segmentation = np.asarray(self._predictor.predict_single_npy_array(array, properties, None, None, False))
        mask = sitk.GetImageFromArray(segmentation.astype(np.uint8))
        mask.CopyInformation(image)
        return InferenceResult(prediction=mask, seconds=time.perf_counter() - start,
                               metadata={"model": self.name, "device": self.device})
