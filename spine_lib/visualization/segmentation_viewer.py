"""``spine-vision visualize``: segment MRI series with a trained nnU-Net model and write interactive views."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT
from spine_lib.errors import InputPathError, SpineVisionError
from spine_lib.segmentation.environment import SEGMENTATION_TASK


class VisualizeConfig(BaseConfig):
    """Segment an image (DICOM folder or file, or a volume) with nnU-Net and write a slice viewer of the result.

    Example:
        >>> config = VisualizeConfig(input_path=Path("study/"), output_mode="image", batch=True)
        >>> config.model_path, config.output_path  # the trained models under ./weights; views in ./results
        (PosixPath('weights/segmentation'), PosixPath('results/segmentation'))
    """

    input_path: Annotated[
        Path, tyro.conf.arg(help="DICOM series folder, DICOM file or volume; with --batch, a folder of them.")
    ] = DEFAULT_LAYOUT.phenikaa_export / "images"
    output_path: Annotated[Path, tyro.conf.arg(help="Output folder of the views.")] = Path("results/segmentation")
    model_path: Annotated[
        Path, tyro.conf.arg(help="nnU-Net model folder, its Dataset folder, or the results root above it.")
    ] = DEFAULT_LAYOUT.weights_for(SEGMENTATION_TASK)
    dataset_id: Annotated[int, tyro.conf.arg(help="nnU-Net dataset ID.")] = 501
    configuration: Annotated[str, tyro.conf.arg(help="nnU-Net configuration.")] = "2d"
    fold: Annotated[str, tyro.conf.arg(help="Model fold (a number or 'all').")] = "0"
    trainer: Annotated[str | None, tyro.conf.arg(help="Trainer class of the model (default: the only one).")] = None
    output_mode: Annotated[Literal["browser", "html", "image"], tyro.conf.arg(help="Output format.")] = "html"
    batch: Annotated[bool, tyro.conf.arg(help="Process every series/volume inside --input-path.")] = False
    device: Annotated[str, tyro.conf.arg(help="auto, cpu or cuda:N.")] = "auto"


@dataclass
class VisualizeReport:
    """What was viewed: one output per input, and the inputs that could not be read or segmented (by their
    view names: patient-named inputs by pseudonym)."""

    outputs: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds_per_volume: list[float] = field(default_factory=list)


def batch_inputs(folder: Path) -> list[Path]:
    """Every entry of a batch folder: volume files, DICOM files, sub-folders (DICOM series), and whatever else
    it holds (each of those ends as a failed input with its reason, never skipped without a word)."""
    from spine_lib.io.formats import DICOM_SUFFIXES, VOLUME_SUFFIXES, image_suffix

    if not folder.is_dir():
        raise InputPathError(folder, "batch input must be a folder")
    items = sorted(folder.iterdir())
    if not any(p.is_dir() or image_suffix(p) in VOLUME_SUFFIXES or image_suffix(p) in DICOM_SUFFIXES for p in items):
        raise InputPathError(folder, "no series folder or image file inside")
    return items


def view_name(path: Path) -> str:
    """The name an input's view goes by: its name without the image suffix, a pseudonym when it may be a
    patient's name (hospital folders are named after the patient)."""
    from spine_lib.core.phi import safe_path
    from spine_lib.io.formats import strip_image_suffix

    return strip_image_suffix(Path(safe_path(path)))


def visualize_segmentations(config: VisualizeConfig) -> VisualizeReport:
    """Segment each input and write its view; an input that fails is reported and the batch carries on."""
    from loguru import logger

    from spine_lib.core.phi import redact, safe_path
    from spine_lib.inference.segmentation import NNUNetSegmentation
    from spine_lib.io.readers import read_medical_image
    from spine_lib.visualization.plotly_viewer import PlotlyViewer

    inputs = batch_inputs(config.input_path) if config.batch else [config.input_path]
    model = NNUNetSegmentation(config.model_path, config.dataset_id, config.configuration, config.fold,
                               device=config.device, trainer=config.trainer)
    viewer = PlotlyViewer(config.output_path, config.output_mode, labels=model.labels)
    report = VisualizeReport()
    for path in inputs:
        try:
            image = read_medical_image(path)
            result = model.predict(image)
            written = viewer.visualize(image, result.prediction, title=view_name(path))
        except SpineVisionError as error:
            if not config.batch:
                raise
            name, cause = safe_path(path), redact(error.cause)
            logger.warning("{}: {}", name, cause)
            report.failed.append((name, cause))
            continue
        report.seconds_per_volume.append(result.seconds)
        if written is not None:
            report.outputs.append(written)
    return report


def write_validation_previews(model_path: Path, fold: str, dataset_path: Path, limit: int = 2) -> dict[str, Path]:
    """HTML viewers of up to ``limit`` validation cases of a trained fold (its predictions over the image).

    Written to ``<model>/fold_<f>/previews/<case>.html``; returns them by case name.
    """
    import json

    import SimpleITK as sitk

    from spine_lib.formats.nnunet import DATASET_JSON, image_path
    from spine_lib.visualization.plotly_viewer import PlotlyViewer

    validation = model_path / f"fold_{fold}" / "validation"
    info = json.loads((model_path / DATASET_JSON).read_text())
    ending = info["file_ending"]
    viewer = PlotlyViewer(validation.parent / "previews", "html", labels=info["labels"])
    previews: dict[str, Path] = {}
    for prediction in sorted(validation.glob(f"*{ending}"))[: max(0, limit)]:
        case = prediction.name[: -len(ending)]
        source = image_path(dataset_path, case, ending)
        if not source.is_file():
            continue
        written = viewer.visualize(sitk.ReadImage(str(source)), sitk.ReadImage(str(prediction)), title=case)
        if written is not None:
            previews[case] = written
    return previews
