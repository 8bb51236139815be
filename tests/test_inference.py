"""Inference plumbing that needs no trained model: ROI cropping, finding a model folder, the base class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from spine_lib.errors import ConfigError, InputPathError, MedicalImageError
from spine_lib.inference import InferenceModel, InferenceResult, ROICropper
from spine_lib.inference.segmentation import NNUNetSegmentation, find_model_folder
from spine_lib.segmentation.metrics import dice, group_dice
from tests.conftest import make_volume


def synthetic_case(root: Path, name: str = "2_t2") -> tuple[sitk.Image, sitk.Image]:
    spider = root / "raw" / "SPIDER"
    return sitk.ReadImage(str(spider / "images" / f"{name}.mha")), sitk.ReadImage(str(spider / "masks" / f"{name}.mha"))


def test_crops_hold_each_whole_label_with_padding(synthetic_root: Path) -> None:
    image, mask = synthetic_case(synthetic_root)
    labels = sitk.GetArrayFromImage(mask)
    rois = ROICropper(padding=(4, 4, 1)).crop_from_segmentation(image, mask)
    assert sorted(rois) == sorted(int(v) for v in np.unique(labels) if v != 0)
    for value, roi in rois.items():
        zs, ys, xs = np.nonzero(labels == value)
        low = np.maximum([xs.min() - 4, ys.min() - 4, zs.min() - 1], 0)
        high = np.minimum([xs.max() + 5, ys.max() + 5, zs.max() + 2], image.GetSize())
        assert roi.index == tuple(int(v) for v in low)
        assert roi.size == tuple(int(v) for v in high - low)
        assert roi.voxels == len(xs)
        # the crop sits where it was cut from, in physical space, and holds the image's voxels
        np.testing.assert_allclose(roi.image.GetOrigin(), image.TransformIndexToPhysicalPoint(roi.index), atol=1e-6)
        x, y, z = roi.index
        w, h, d = roi.size
        np.testing.assert_array_equal(sitk.GetArrayFromImage(roi.image),
                                      sitk.GetArrayFromImage(image)[z : z + d, y : y + h, x : x + w])


def test_crops_of_requested_labels_only(synthetic_root: Path) -> None:
    image, mask = synthetic_case(synthetic_root)
    rois = ROICropper((0, 0, 0)).crop_from_segmentation(image, mask, labels=[201, 205, 999])
    assert sorted(rois) == [201, 205]
    assert all(r.size[2] >= 1 for r in rois.values())


def test_cropper_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="padding"):
        ROICropper((-1, 0, 0))
    image = make_volume((6, 20, 16))
    small = sitk.GetImageFromArray(np.zeros((6, 10, 16), dtype=np.uint8))
    with pytest.raises(MedicalImageError, match="differs"):
        ROICropper().crop_from_segmentation(image, small)


def fake_model_tree(results: Path, names: list[str]) -> None:
    for name in names:
        folder = results / "Dataset501_Spider" / name
        (folder / "fold_0").mkdir(parents=True)
        (folder / "plans.json").write_text(json.dumps({}))


def test_model_folder_is_found_from_any_level(tmp_path: Path) -> None:
    fake_model_tree(tmp_path, ["nnUNetTrainerShort__nnUNetPlans__2d", "nnUNetTrainerShort__nnUNetPlans__3d_fullres"])
    expected = tmp_path / "Dataset501_Spider" / "nnUNetTrainerShort__nnUNetPlans__2d"
    assert find_model_folder(tmp_path, 501, "2d") == expected
    assert find_model_folder(tmp_path / "Dataset501_Spider", 501, "2d") == expected
    assert find_model_folder(expected, 501, "3d_fullres") == expected  # a model folder is taken as it is
    with pytest.raises(InputPathError, match="Dataset502"):
        find_model_folder(tmp_path, 502, "2d")
    with pytest.raises(InputPathError, match="3d_lowres"):
        find_model_folder(tmp_path, 501, "3d_lowres")


def test_several_trainers_need_a_name_unless_one_is_standard(tmp_path: Path) -> None:
    fake_model_tree(tmp_path / "a", ["nnUNetTrainerShort__nnUNetPlans__2d", "nnUNetTrainerX__nnUNetPlans__2d"])
    with pytest.raises(ConfigError, match="name the trainer"):
        find_model_folder(tmp_path / "a", 501, "2d")
    assert find_model_folder(tmp_path / "a", 501, "2d", trainer="nnUNetTrainerX").name.startswith("nnUNetTrainerX")
    fake_model_tree(tmp_path / "b", ["nnUNetTrainerShort__nnUNetPlans__2d", "nnUNetTrainer__nnUNetPlans__2d"])
    assert find_model_folder(tmp_path / "b", 501, "2d").name == "nnUNetTrainer__nnUNetPlans__2d"


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    fake_model_tree(tmp_path, ["nnUNetTrainer__nnUNetPlans__2d"])
    model = NNUNetSegmentation(tmp_path, 501, "2d", fold=0, device="cpu")
    with pytest.raises(InputPathError, match="checkpoint"):
        model.load()


def test_base_class_loads_once_before_predicting() -> None:
    class Threshold(InferenceModel):
        loads = 0

        @property
        def name(self) -> str:
            return "threshold"

        def load(self) -> None:
            Threshold.loads += 1

        def predict(self, image: sitk.Image) -> InferenceResult:
            self.ensure_loaded()
            return InferenceResult(prediction=sitk.BinaryThreshold(image, 0, 32767))

    model = Threshold()
    results = model.predict_batch([make_volume(), make_volume(seed=1)])
    assert Threshold.loads == 1 and model.is_loaded
    assert sitk.GetArrayFromImage(results[0].prediction).sum() == (sitk.GetArrayFromImage(make_volume()) >= 0).sum()


def test_dice_and_groups() -> None:
    labels = {"background": 0, "vertebra_1": 1, "vertebra_2": 2, "spinal_canal": 26, "disc_1": 27}
    ref = np.zeros((4, 10), dtype=np.uint8)
    ref[0, :4], ref[1, :4], ref[2, :2], ref[3, :5] = 1, 2, 26, 27
    pred = ref.copy()
    pred[1, :4] = 1  # vertebra 2 called vertebra 1: the vertebrae group is still all right
    scores = group_dice(pred, ref, labels)
    assert scores["vertebrae"] == 1.0 and scores["canal"] == 1.0 and scores["discs"] == 1.0
    assert scores["vertebrae_mean_label"] == pytest.approx((2 * 4 / 12 + 0.0) / 2)
    assert np.isnan(dice(np.zeros(3, bool), np.zeros(3, bool)))
