"""Options of the Phenikaa job (:func:`~spine_lib.datasets.phenikaa.preprocess` and its two steps)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import tyro
from pydantic import Field

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.errors import InputPathError
from spine_lib.sources.phenikaa import IMAGES, REPORTS, TABLES


class PreprocessConfig(BaseConfig):
    """Read the Phenikaa reports, match patients to image folders and label tables, write the dataset.

    Example:
        >>> config = PreprocessConfig.for_layout(DataLayout(root=Path("/srv/spine")), corrupted_ids=["25001"])
        >>> config.reports_path, config.interim_path  # the inbox; the only product folder holding names
        (PosixPath('/srv/spine/raw/Phenikaa/reports'), PosixPath('/srv/spine/interim/Phenikaa'))
    """

    data_path: Annotated[Path, tyro.conf.arg(help="Phenikaa export (reports/, images/, tables/).")] = (
        DEFAULT_LAYOUT.phenikaa
    )
    output_path: Annotated[Path, tyro.conf.arg(help="Export of the matched patients (no PHI).")] = (
        DEFAULT_LAYOUT.phenikaa_export
    )
    interim_path: Annotated[Path, tyro.conf.arg(help="Per-report fields, matches, rejects (PHI).")] = (
        DEFAULT_LAYOUT.phenikaa_interim
    )
    use_gpu: Annotated[
        bool,
        tyro.conf.arg(aliases=("-g",), help="Run the deep-learning OCR engine (--ocr-engine paddle) on the GPU."),
    ] = True
    report_fuzzy_threshold: Annotated[int, tyro.conf.arg(help="Field-label matching threshold.")] = 80
    image_fuzzy_threshold: Annotated[int, tyro.conf.arg(help="Folder-name matching threshold.")] = 85
    pdf_dpi: Annotated[int, tyro.conf.arg(help="DPI for rendering image-only PDF pages.")] = 200
    workers: Annotated[int, tyro.conf.arg(help="Processes reading reports in parallel.")] = max(1, os.cpu_count() or 1)
    exam_date_tolerance_days: Annotated[
        int | None, tyro.conf.arg(help="A folder whose exam date is further than this from the report's is never matched.")
    ] = 3
    ocr_engine: Annotated[Literal["tesseract", "paddle"], tyro.conf.arg(help="OCR engine.")] = "tesseract"
    image_export: Annotated[
        Literal["anonymized", "copy", "hardlink"],
        tyro.conf.arg(help="anonymized: DICOM copies with name/birthday removed; copy/hardlink keep them."),
    ] = "anonymized"
    corrupted_ids: Annotated[list[str], tyro.conf.arg(help="Patient IDs of the label tables known to be wrong.")] = Field(
        default_factory=list
    )
    # where the deep-learning OCR engine finds its models (only with --ocr-engine paddle)
    det_model_dir: Path = DEFAULT_LAYOUT.ocr_detection_model
    rec_weights: Path = DEFAULT_LAYOUT.ocr_recognition_weights

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"data_path": layout.phenikaa, "output_path": layout.phenikaa_export,
                "interim_path": layout.phenikaa_interim, "det_model_dir": layout.ocr_detection_model,
                "rec_weights": layout.ocr_recognition_weights}

    @property
    def reports_path(self) -> Path:
        return self.data_path / REPORTS

    def check_input_folders(self) -> None:
        """Fail fast when the export lacks one of its folders (``reports/``, ``images/``, ``tables/``).

        Raises:
            InputPathError: a folder of ``data_path`` does not exist or is a file.
        """
        for name in (REPORTS, IMAGES, TABLES):
            folder = self.data_path / name
            if not folder.is_dir():
                state = "is a file" if folder.exists() else "does not exist"
                raise InputPathError(folder, f"the Phenikaa export's {name}/ folder {state} (--data-path)")

    def check_output_folders(self) -> None:
        """Fail fast, before anything is read or written, when an output folder cannot be one.

        Raises:
            InputPathError: ``output_path`` or ``interim_path`` (or a folder above it) is a file.
        """
        for path, option in ((self.output_path, "--output-path"), (self.interim_path, "--interim-path")):
            check_output_folder(path, option)


def check_output_folder(path: Path, option: str) -> None:
    """Raise :class:`InputPathError` naming the file when ``path`` or the nearest existing folder above it is not a
    folder (``option``: the setting that gave the path)."""
    for existing in (path, *path.parents):
        if not existing.exists():
            continue
        if existing.is_dir():
            return
        if existing == path:
            raise InputPathError(path, f"the output folder ({option}) is a file, not a folder")
        raise InputPathError(existing, f"a file, not a folder: the output folder ({option}) {path} cannot be made in it")
