"""Options of the SPIDER -> nnU-Net conversion (:func:`~spine_lib.datasets.nnunet.convert_to_nnunet`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import tyro
from pydantic import Field, model_validator

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.formats.nnunet import DATASET_FOLDER, DEFAULT_FILE_ENDING
from spine_lib.sources import spider

if TYPE_CHECKING:
    from spine_lib.labels import LabelSchema


class ConvertConfig(BaseConfig):
    """Convert the SPIDER source into an nnU-Net v2 raw dataset.

    Example:
        >>> config = ConvertConfig.for_layout(DataLayout(root=Path("/srv/spine")), sequences=["t2"])
        >>> config.input_path, config.output_path.parent, config.resolved_dataset_id, config.sequences
        (PosixPath('/srv/spine/raw/SPIDER'), PosixPath('/srv/spine/processed/SPIDER'), 501, ['t2'])
        >>> try:  # nnU-Net's folder rule
        ...     ConvertConfig(output_path=Path("/tmp/Spider"))
        ... except ValueError as error:
        ...     print("must be named DatasetXXX_Name" in str(error))
        True
    """

    input_path: Annotated[Path, tyro.conf.arg(help="SPIDER source (images/, masks/).")] = DEFAULT_LAYOUT.spider
    output_path: Annotated[
        Path, tyro.conf.arg(help="nnU-Net dataset folder, named DatasetXXX_Name (its parent is nnUNet_raw).")
    ] = DEFAULT_LAYOUT.nnunet_dataset
    schema_path: Annotated[
        Path | None, tyro.conf.arg(help="Label schema YAML; default: the built-in schema named by --schema-name.")
    ] = None
    schema_name: Annotated[str, tyro.conf.arg(help="Built-in label schema (spider, spider_ignore_partial, spider_groups).")] = "spider"
    channel_name: Annotated[str, tyro.conf.arg(help="Channel name in dataset.json (not CT: z-score normalisation).")] = "MRI"
    file_extension: Annotated[str, tyro.conf.arg(help="Extension of the SPIDER image and mask files.")] = (
        spider.FILE_EXTENSION
    )
    output_file_ending: Annotated[str, tyro.conf.arg(help="File ending of the nnU-Net files.")] = DEFAULT_FILE_ENDING
    dataset_id: Annotated[
        int | None, tyro.conf.arg(help="nnU-Net dataset ID; default: from the output folder name.")
    ] = None
    dataset_name: Annotated[
        str | None, tyro.conf.arg(help="nnU-Net dataset name; default: from the output folder name.")
    ] = None
    sequences: Annotated[list[spider.Sequence], tyro.conf.arg(help="SPIDER sequences to include.")] = Field(
        default_factory=lambda: list(spider.SEQUENCES)
    )
    workers: Annotated[int, tyro.conf.arg(help="Processes converting cases in parallel.")] = max(1, os.cpu_count() or 1)
    force: Annotated[bool, tyro.conf.arg(help="Convert every case again, even those whose inputs are unchanged.")] = False

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"input_path": layout.spider, "output_path": layout.nnunet_dataset}

    @model_validator(mode="after")
    def check_dataset_folder(self) -> ConvertConfig:
        match = DATASET_FOLDER.match(self.output_path.name)
        if match is None:
            raise ValueError(f"output folder {self.output_path.name!r} must be named DatasetXXX_Name (nnU-Net's rule)")
        if self.dataset_id is not None and self.dataset_id != int(match["id"]):
            raise ValueError(f"dataset_id {self.dataset_id} disagrees with the output folder {self.output_path.name}")
        if self.dataset_name is not None and self.dataset_name != match["name"]:
            raise ValueError(f"dataset_name {self.dataset_name!r} disagrees with the output folder {self.output_path.name}")
        if not self.sequences:
            raise ValueError("at least one sequence is needed")
        if not self.file_extension.startswith("."):
            raise ValueError("file_extension must start with a dot, e.g. .mha")
        return self

    @property
    def resolved_dataset_id(self) -> int:
        match = DATASET_FOLDER.match(self.output_path.name)
        assert match is not None
        return int(match["id"])

    @property
    def resolved_dataset_name(self) -> str:
        match = DATASET_FOLDER.match(self.output_path.name)
        assert match is not None
        return match["name"]

    def label_schema(self) -> LabelSchema:
        from spine_lib.labels import load_label_schema

        return load_label_schema(self.schema_path if self.schema_path is not None else self.schema_name)
