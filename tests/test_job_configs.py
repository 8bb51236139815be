"""Job configs take their paths from a data layout, and the Dagster run configs are derived from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import ValidationError

from spine_assets.defs.ivd_coords import IVDCoordsSettings
from spine_assets.defs.localization import LocalizationTrainingSettings
from spine_assets.defs.resources import DataRoot, PhenikaaSettings
from spine_assets.defs.segmentation import NNUNetDatasetSettings, NNUNetTrainingSettings
from spine_assets.run_config import LOGGING_FIELDS, library_overrides
from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.datasets.ivd_coords import IVDDatasetConfig
from spine_lib.datasets.nnunet import ConvertConfig
from spine_lib.datasets.phenikaa import PreprocessConfig
from spine_lib.segmentation.training import SegmentationTrainConfig
from spine_lib.training.config import LocalizationConfig, TrainingConfig

JOBS: list[type[BaseConfig]] = [ConvertConfig, IVDDatasetConfig, PreprocessConfig, SegmentationTrainConfig,
                                TrainingConfig, LocalizationConfig]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.__name__)
def test_defaults_are_the_default_layout(job: type[BaseConfig]) -> None:
    paths = job.layout_paths(DEFAULT_LAYOUT)
    assert paths, f"{job.__name__} takes no path from the layout"
    default = job()
    for name, path in paths.items():
        assert getattr(default, name) == path, name


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.__name__)
def test_for_layout_puts_every_path_in_that_root(job: type[BaseConfig], tmp_path: Path) -> None:
    layout = DataLayout(root=tmp_path / "root", weights=tmp_path / "w")
    config = job.for_layout(layout)
    for name in job.layout_paths(layout):
        value = getattr(config, name)
        assert value.is_relative_to(layout.root) or value.is_relative_to(layout.weights), (name, value)


def test_for_layout_validates_overrides(tmp_path: Path) -> None:
    layout = DataLayout(root=tmp_path)
    config = LocalizationConfig.for_layout(layout, image_size=[96, 64], num_epochs=3)
    assert config.image_size == (96, 64) and config.num_epochs == 3
    assert config.data_path == tmp_path / "processed" / "ivd_coords"
    with pytest.raises(ValidationError, match="scheduler_type"):
        LocalizationConfig.for_layout(layout, scheduler_type="sometimes")
    with pytest.raises(ValidationError, match="no_such_option"):
        ConvertConfig.for_layout(layout, no_such_option=1)


def fields_of(settings: type[dg.Config] | type[dg.ConfigurableResource]) -> set[str]:
    return set(settings.model_fields)


@pytest.mark.parametrize(("settings", "library", "set_by_asset", "own"), [
    (LocalizationTrainingSettings, LocalizationConfig,
     {"task", "data_path", "output_path", "weights_path", "device", "mixed_precision", "use_wandb", "wandb_mode",
      "wandb_project"}, {"min_val_pck_05"}),
    (NNUNetDatasetSettings, ConvertConfig, {"input_path", "output_path", "dataset_id", "dataset_name"}, set()),
    (NNUNetTrainingSettings, SegmentationTrainConfig, {"data_path", "preprocessed_path", "results_path", "device"},
     {"previews", "min_validation_dice"}),
    (IVDCoordsSettings, IVDDatasetConfig, {"base_path", "output_name"}, set()),
    (PhenikaaSettings, PreprocessConfig,
     {"data_path", "output_path", "interim_path", "det_model_dir", "rec_weights", "use_gpu"}, set()),
], ids=lambda v: getattr(v, "__name__", ""))
def test_run_config_offers_every_library_option(settings: Any, library: type[BaseConfig], set_by_asset: set[str],
                                               own: set[str]) -> None:
    expected = set(library.model_fields) - set_by_asset - LOGGING_FIELDS
    assert fields_of(settings) == expected | own


def test_localization_run_config_keeps_the_asset_defaults_and_the_library_ones() -> None:
    settings = LocalizationTrainingSettings()
    library = LocalizationConfig()
    assert (settings.model_variant, settings.image_size, settings.num_epochs) == ("atto", [128, 128], 20)
    for name in ("warmup_epochs", "max_train_minutes", "group_levels", "levels", "checkpoint_metric", "patience"):
        assert getattr(settings, name) == getattr(library, name), name


def test_run_config_values_reach_the_library_config(tmp_path: Path) -> None:
    settings = LocalizationTrainingSettings.model_validate({"max_train_minutes": 2.5, "levels": ["L4/L5"],
                                                           "image_size": [64, 80], "min_val_pck_05": 0.9})
    config = LocalizationConfig.for_layout(DataLayout(root=tmp_path, weights=tmp_path / "w"),
                                           **library_overrides(settings, device="cpu"))
    assert config.max_train_minutes == 2.5 and config.levels == ["L4/L5"] and config.image_size == (64, 80)
    assert config.device == "cpu" and config.weights_path == tmp_path / "w"
    assert "min_val_pck_05" not in library_overrides(settings)


def test_phenikaa_resource_builds_the_library_config(tmp_path: Path) -> None:
    settings = PhenikaaSettings.model_validate({"pdf_dpi": 150, "corrupted_ids": ["25001"]})
    config = settings.preprocess_config(DataRoot(root=str(tmp_path), weights=str(tmp_path / "w")))
    assert config.pdf_dpi == 150 and config.corrupted_ids == ["25001"] and config.use_gpu is False
    assert config.data_path == tmp_path / "raw" / "Phenikaa" and config.interim_path == tmp_path / "interim" / "Phenikaa"
    assert config.rec_weights == tmp_path / "w" / "ocr" / "vgg_transformer.pth"


def test_a_value_the_library_refuses_fails_the_run_with_its_message(tmp_path: Path) -> None:
    from spine_assets.defs.localization import localization_model
    from spine_assets.defs.resources import ExperimentTracking, TorchDevice

    result = dg.materialize(
        [localization_model],
        resources={"paths": DataRoot(root=str(tmp_path), weights=str(tmp_path / "weights")),
                   "torch_device": TorchDevice(device="cpu"),
                   "tracking": ExperimentTracking()},
        run_config={"ops": {"localization_model": {"config": {"batch_size": 0}}}},  # Dagster's Int allows 0
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "batch_size" in str(failure.step_failure_data.error)
    assert not (tmp_path / "weights").exists()  # refused before any training started
