"""Options of the IVD crops build (:func:`~spine_lib.datasets.classification.build_classification_dataset`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import tyro
from pydantic import Field, field_validator, model_validator

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.formats.classification import (
    ANNOTATIONS_FILE,
    CROP_DELTA,
    CROP_SIZE,
    CROP_SPACING_MM,
    REJECTS_FILE,
)
from spine_lib.levels import LEVELS, check_level


class ClassificationDatasetConfig(BaseConfig):
    """Cut per-disc crops (T1 and T2) of every graded SPIDER and Phenikaa patient, at the disc's canal point.

    Example:
        >>> config = ClassificationDatasetConfig.for_layout(DataLayout(root=Path("/srv/spine"), weights=Path("/w")))
        >>> config.output_path, config.spider_path, config.phenikaa_export_path
        (PosixPath('/srv/spine/processed/classification'), PosixPath('/srv/spine/raw/SPIDER'), PosixPath('/srv/spine/processed/phenikaa'))
        >>> config.crop_size, config.crop_delta  # 128x128 px crops of 48 mm in front of the point, 16 behind, 32 up and down
        ((128, 128), (96, 32, 64, 64))
    """

    base_path: Annotated[Path, tyro.conf.arg(help="Data root (raw/SPIDER, processed/phenikaa, processed/).")] = (
        DEFAULT_LAYOUT.root
    )
    output_name: Annotated[str, tyro.conf.arg(help="Dataset folder under <base>/processed.")] = (
        DEFAULT_LAYOUT.classification.name
    )
    weights_path: Annotated[Path, tyro.conf.arg(help="Weights folder searched for the newest localization run.")] = (
        DEFAULT_LAYOUT.weights
    )
    localization_model_path: Annotated[
        Path | None,
        tyro.conf.arg(help="Localization checkpoint (default: the newest run's best model under --weights-path)."),
    ] = None
    model_variant: Annotated[
        str | None, tyro.conf.arg(help="Backbone variant the checkpoint must hold (default: whatever it holds).")
    ] = None
    crop_size: Annotated[tuple[int, int], tyro.conf.arg(help="Size of the written crops (H W), in pixels.")] = CROP_SIZE
    crop_delta: Annotated[
        tuple[int, int, int, int],
        tyro.conf.arg(help="Crop extent around the disc's canal point: left (anterior) right (posterior) top bottom, "
                           "in pixels of --crop-spacing mm."),
    ] = CROP_DELTA
    crop_spacing: Annotated[
        float | None,
        tyro.conf.arg(help="Millimetres per --crop-delta pixel (the same anatomy on every scanner); 0: the slice's "
                           "own pixels."),
    ] = CROP_SPACING_MM
    image_size: Annotated[
        tuple[int, int] | None,
        tyro.conf.arg(help="Input size of the localization model (H W); default: the size it was trained at."),
    ] = None
    include_phenikaa: Annotated[bool, tyro.conf.arg(help="Crop the matched Phenikaa patients.")] = True
    include_spider: Annotated[bool, tyro.conf.arg(help="Crop the graded SPIDER patients.")] = True
    spider_points: Annotated[
        Literal["mask", "model"],
        tyro.conf.arg(help="Where SPIDER's disc points come from: its masks (exact) or the localization model."),
    ] = "mask"
    localization_series: Annotated[
        Literal["sag_t2", "sag_t1"],
        tyro.conf.arg(help="The series the localization model reads (the other takes its points through their "
                           "physical position; a patient without it: the other). sag_t1 wants a model that has "
                           "seen T1 discs (the default dataset's T1 canal points); sag_t2 for an older one."),
    ] = "sag_t1"
    levels: Annotated[list[str], tyro.conf.arg(help="Levels to crop.")] = Field(default_factory=lambda: list(LEVELS))
    device: Annotated[str, tyro.conf.arg(help="Device of the localization model: auto, cpu, cuda or cuda:N.")] = "auto"
    force: Annotated[bool, tyro.conf.arg(help="Crop every patient again, even those whose inputs are unchanged.")] = (
        False
    )

    @model_validator(mode="after")
    def check_options(self) -> ClassificationDatasetConfig:
        if not (self.include_phenikaa or self.include_spider):
            raise ValueError("nothing to crop: --include-phenikaa and --include-spider are both off")
        if any(v <= 0 for v in self.crop_size):
            raise ValueError(f"crop size must be positive, got {self.crop_size}")
        if any(v < 0 for v in self.crop_delta) or self.crop_delta[0] + self.crop_delta[1] == 0 or (
                self.crop_delta[2] + self.crop_delta[3] == 0):
            raise ValueError(f"crop delta must be non-negative with a non-empty box, got {self.crop_delta}")
        if self.crop_spacing is not None and self.crop_spacing < 0:
            raise ValueError("crop spacing must be positive (or 0 for the slice's own pixels)")
        return self

    @field_validator("levels")
    @classmethod
    def spelt_levels(cls, levels: list[str]) -> list[str]:
        return [check_level(level) for level in levels]

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"base_path": layout.root, "weights_path": layout.weights}

    @property
    def layout(self) -> DataLayout:
        return DataLayout(root=self.base_path, weights=self.weights_path)

    @property
    def spider_path(self) -> Path:
        return self.layout.spider

    @property
    def phenikaa_export_path(self) -> Path:
        return self.layout.phenikaa_export

    @property
    def output_path(self) -> Path:
        return self.layout.processed / self.output_name

    @property
    def annotations_path(self) -> Path:
        return self.output_path / ANNOTATIONS_FILE

    @property
    def rejects_path(self) -> Path:
        return self.output_path / REJECTS_FILE

    @property
    def spacing_mm(self) -> float | None:
        """Millimetres per delta pixel, None for the slice's own pixels."""
        return self.crop_spacing or None
