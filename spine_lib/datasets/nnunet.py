"""SPIDER -> nnU-Net v2 raw dataset (``DatasetXXX_Name/{imagesTr,labelsTr,dataset.json}``).

Each SPIDER series ``images/<patient>_<sequence>.mha`` with its mask ``masks/<same name>`` becomes one case
``<patient>_<sequence>``: ``imagesTr/<case>_0000.nii.gz`` (the image, voxels and geometry unchanged) and
``labelsTr/<case>.nii.gz`` (the mask remapped through a label schema, on the image's grid). ``dataset.json``
lists the schema's consecutive targets. With the built-in ``spider`` schema the partially visible vertebrae
(101-125) are merged into their vertebra; ``spider_ignore_partial`` turns them into nnU-Net's ``ignore`` label.

A case whose image and mask disagree in geometry, whose mask holds a value the schema does not map, whose mask
is missing or whose files cannot be read is rejected with a reason (``rejects.csv`` in the dataset folder) and
the others are converted. Cases are converted in parallel processes. ``conversion_manifest.json`` in the dataset
folder records each case's input fingerprint (size and mtime of image and mask, schema, options), so a rerun
converts only the cases whose inputs changed and removes the cases whose inputs disappeared.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro
from pydantic import Field, model_validator

from spine_lib.core.config import BaseConfig
from spine_lib.errors import InputPathError, MedicalImageError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.io.fingerprint import dataset_fingerprint
from spine_lib.io.writers import write_records_csv

if TYPE_CHECKING:
    import SimpleITK as sitk

    from spine_lib.labels import LabelSchema

Sequence_ = Literal["t1", "t2", "t2_SPACE"]
DATASET_FOLDER = re.compile(r"^Dataset(?P<id>\d{3})_(?P<name>[A-Za-z0-9_\-]+)$")
MANIFEST_NAME = "conversion_manifest.json"
REJECTS_NAME = "rejects.csv"
REJECT_COLUMNS = ["case", "image", "mask", "reason"]
CHANNEL_SUFFIX = "_0000"
#: Image and mask geometry must agree to this tolerance (mm, and direction cosines); the label file then takes
#: the image's geometry exactly, so nnU-Net's own check (which is stricter) sees identical headers.
GEOMETRY_TOLERANCE = 1e-3
MANIFEST_VERSION = 1


class ConvertConfig(BaseConfig):
    """Convert the SPIDER source into an nnU-Net v2 raw dataset."""

    input_path: Annotated[Path, tyro.conf.arg(help="SPIDER source (images/, masks/).")] = Path("data/raw/SPIDER")
    output_path: Annotated[
        Path, tyro.conf.arg(help="nnU-Net dataset folder, named DatasetXXX_Name (its parent is nnUNet_raw).")
    ] = Path("data/processed/SPIDER/Dataset501_Spider")
    schema_path: Annotated[
        Path | None, tyro.conf.arg(help="Label schema YAML; default: the built-in schema named by --schema-name.")
    ] = None
    schema_name: Annotated[str, tyro.conf.arg(help="Built-in label schema (spider, spider_ignore_partial, spider_groups).")] = "spider"
    channel_name: Annotated[str, tyro.conf.arg(help="Channel name in dataset.json (not CT: z-score normalisation).")] = "MRI"
    file_extension: Annotated[str, tyro.conf.arg(help="Extension of the SPIDER image and mask files.")] = ".mha"
    output_file_ending: Annotated[str, tyro.conf.arg(help="File ending of the nnU-Net files.")] = ".nii.gz"
    dataset_id: Annotated[
        int | None, tyro.conf.arg(help="nnU-Net dataset ID; default: from the output folder name.")
    ] = None
    dataset_name: Annotated[
        str | None, tyro.conf.arg(help="nnU-Net dataset name; default: from the output folder name.")
    ] = None
    sequences: Annotated[list[Sequence_], tyro.conf.arg(help="SPIDER sequences to include.")] = Field(
        default_factory=lambda: ["t1", "t2", "t2_SPACE"]
    )
    workers: Annotated[int, tyro.conf.arg(help="Processes converting cases in parallel.")] = max(1, os.cpu_count() or 1)
    force: Annotated[bool, tyro.conf.arg(help="Convert every case again, even those whose inputs are unchanged.")] = False

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


@dataclass(frozen=True)
class CaseSource:
    """One SPIDER series to convert: its case name and input files (the mask may be missing)."""

    case: str
    image: Path
    mask: Path | None

    def fingerprint(self) -> dict[str, int]:
        stats = {"image": self.image.stat()}
        if self.mask is not None and self.mask.is_file():
            stats["mask"] = self.mask.stat()
        return {f"{k}_{what}": getattr(s, attr) for k, s in stats.items()
                for what, attr in (("size", "st_size"), ("mtime_ns", "st_mtime_ns"))}


@dataclass
class CaseResult:
    """What converting one case gave: ``ok`` with per-case statistics, or ``rejected`` with a reason."""

    case: str
    status: str  # ok | rejected
    reason: str = ""
    image: str = ""
    mask: str = ""
    size: list[int] = field(default_factory=list)  # x, y, z
    spacing: list[float] = field(default_factory=list)  # x, y, z (mm)
    label_voxels: dict[str, int] = field(default_factory=dict)  # target value (as str) -> voxel count
    fingerprint: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ConversionReport:
    """The dataset after a run: case counts, rejects, label table and spacing statistics."""

    output_path: Path
    cases: int
    converted: int
    unchanged: int
    removed: int
    rejected: list[CaseResult]
    labels: dict[str, int]
    label_cases: dict[str, int]  # label name -> number of cases holding it
    label_voxels: dict[str, int]
    spacing_min: list[float]
    spacing_median: list[float]
    spacing_max: list[float]
    seconds: float
    case_names: list[str] = field(default_factory=list)

    @property
    def rejects_path(self) -> Path:
        return self.output_path / REJECTS_NAME

    def label_table_markdown(self) -> str:
        """Label name, value, cases holding it and voxels, as a markdown table."""
        lines = ["| label | value | cases | voxels |", "|---|---|---|---|"]
        lines += [f"| {name} | {value} | {self.label_cases.get(name, 0)} | {self.label_voxels.get(name, 0)} |"
                  for name, value in sorted(self.labels.items(), key=lambda kv: kv[1])]
        return "\n".join(lines)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "converted": self.converted,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "rejected": len(self.rejected),
            "labels": len(self.labels),
            "labels_present": sum(1 for n in self.label_cases.values() if n > 0),
            "spacing_min_xyz": ", ".join(f"{s:.3f}" for s in self.spacing_min),
            "spacing_median_xyz": ", ".join(f"{s:.3f}" for s in self.spacing_median),
            "spacing_max_xyz": ", ".join(f"{s:.3f}" for s in self.spacing_max),
            "seconds": round(self.seconds, 2),
        }


def image_path(dataset: Path, case: str, file_ending: str = ".nii.gz") -> Path:
    """``imagesTr/<case>_0000<ending>`` of a dataset."""
    return dataset / "imagesTr" / f"{case}{CHANNEL_SUFFIX}{file_ending}"


def label_path(dataset: Path, case: str, file_ending: str = ".nii.gz") -> Path:
    """``labelsTr/<case><ending>`` of a dataset."""
    return dataset / "labelsTr" / f"{case}{file_ending}"


def find_cases(config: ConvertConfig) -> tuple[list[CaseSource], list[CaseResult]]:
    """The SPIDER series to convert (by the configured sequences) and the files that cannot be cases."""
    from spine_lib.sources import SPIDER_NAME

    images_dir, masks_dir = config.input_path / "images", config.input_path / "masks"
    if not config.input_path.is_dir():
        raise InputPathError(config.input_path, "SPIDER folder does not exist")
    if not images_dir.is_dir():
        raise InputPathError(images_dir, "SPIDER images folder does not exist")
    ext = config.file_extension
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and p.name.endswith(ext))
    if not images:
        raise InputPathError(images_dir, f"no {ext} image in the SPIDER images folder")
    sources: list[CaseSource] = []
    rejects: list[CaseResult] = []
    image_stems = set()
    for image in images:
        stem = image.name[: -len(ext)]
        image_stems.add(stem)
        match = SPIDER_NAME.match(f"{stem}.mha")
        if match is None:
            rejects.append(CaseResult(stem, "rejected", "file name is not <patient>_<t1|t2|t2_SPACE>", image=image.name))
            continue
        if match["sequence"] not in config.sequences:
            continue
        mask = masks_dir / image.name
        sources.append(CaseSource(stem, image, mask if mask.is_file() else None))
    if masks_dir.is_dir():
        for mask in sorted(p for p in masks_dir.iterdir() if p.is_file() and p.name.endswith(ext)):
            stem = mask.name[: -len(ext)]
            if stem not in image_stems:
                rejects.append(CaseResult(stem, "rejected", "mask without an image", mask=mask.name))
    return sources, rejects


def same_geometry(a: sitk.Image, b: sitk.Image, tol: float = GEOMETRY_TOLERANCE) -> str | None:
    """Why two images do not share a voxel grid (``None`` when they do)."""
    import numpy as np

    if a.GetSize() != b.GetSize():
        return f"image size {a.GetSize()} != mask size {b.GetSize()}"
    for what in ("Spacing", "Origin", "Direction"):
        va, vb = getattr(a, f"Get{what}")(), getattr(b, f"Get{what}")()
        if not np.allclose(va, vb, rtol=0, atol=tol):
            shown = ", ".join(f"{x:.4g}" for x in va), ", ".join(f"{x:.4g}" for x in vb)
            return f"image {what.lower()} ({shown[0]}) != mask {what.lower()} ({shown[1]})"
    return None


def convert_case(source: CaseSource, output: Path, mapping: dict[int, int], file_ending: str) -> CaseResult:
    """Convert one case; any problem with its inputs ends in a ``rejected`` result, never an exception."""
    import numpy as np
    import SimpleITK as sitk

    from spine_lib.errors import SpineVisionError
    from spine_lib.io.readers import read_medical_image
    from spine_lib.io.writers import write_medical_image
    from spine_lib.labels.mapping import remap_array_with_counts

    start = time.perf_counter()
    result = CaseResult(source.case, "ok", image=source.image.name,
                        mask=source.mask.name if source.mask is not None else "")
    try:
        result.fingerprint = source.fingerprint()
        if source.mask is None:
            return reject_case(result, "missing mask", start)
        image = read_medical_image(source.image)
        mask = read_medical_image(source.mask)
        if image.GetNumberOfComponentsPerPixel() != 1:
            return reject_case(result, "image has more than one component per voxel", start)
        if (why := same_geometry(image, mask)) is not None:
            return reject_case(result, why, start)
        labels, counts = remap_array_with_counts(sitk.GetArrayViewFromImage(mask), mapping, source.mask)
        labels = labels.astype(np.uint8, copy=False)
        label_image = sitk.GetImageFromArray(labels)
        label_image.CopyInformation(image)
        write_medical_image(image, image_path(output, source.case, file_ending))
        write_medical_image(label_image, label_path(output, source.case, file_ending))
    except SpineVisionError as error:
        return reject_case(result, str(error.cause), start)
    except OSError as error:
        return reject_case(result, f"cannot read inputs: {error.strerror or error}", start)
    result.label_voxels = {str(v): c for v, c in sorted(counts.items())}
    result.size = list(image.GetSize())
    result.spacing = [float(s) for s in image.GetSpacing()]
    result.seconds = time.perf_counter() - start
    return result


def reject_case(result: CaseResult, reason: str, start: float) -> CaseResult:
    result.status, result.reason = "rejected", reason
    result.seconds = time.perf_counter() - start
    return result


def _init_worker() -> None:
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # one process per core: no oversubscription


def _convert_star(args: tuple[CaseSource, Path, dict[int, int], str]) -> CaseResult:
    return convert_case(*args)


def run_cases(todo: list[CaseSource], output: Path, mapping: dict[int, int], file_ending: str,
              workers: int) -> Iterable[CaseResult]:
    """Convert cases, in ``workers`` processes when there is more than one case to share."""
    jobs = [(source, output, mapping, file_ending) for source in todo]
    if workers <= 1 or len(todo) <= 1:
        for job in jobs:
            yield _convert_star(job)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_init_worker) as pool:
        yield from pool.map(_convert_star, jobs)


def options_key(config: ConvertConfig, schema: LabelSchema) -> str:
    """A hash of everything besides the inputs that shapes a case's outputs."""
    payload = json.dumps({"mapping": sorted(schema.mapping.items()), "ending": config.output_file_ending,
                          "version": MANIFEST_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_manifest(output: Path) -> dict[str, Any]:
    path = output / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable manifest only costs a full reconversion


def dataset_json(config: ConvertConfig, schema: LabelSchema, num_training: int) -> dict[str, Any]:
    """The ``dataset.json`` nnU-Net v2 reads (as ``generate_dataset_json`` writes it)."""
    labels = dict(sorted(schema.target_labels.items(), key=lambda kv: kv[1]))
    return {
        "channel_names": {"0": config.channel_name},
        "labels": labels,
        "numTraining": num_training,
        "file_ending": config.output_file_ending,
        "name": config.resolved_dataset_name,
        "description": f"SPIDER lumbar spine MRI, labels remapped with the '{schema.name}' schema",
        "reference": "SPIDER, Zenodo 10159290",
        "licence": "CC-BY 4.0",
    }


def convert_to_nnunet(config: ConvertConfig) -> ConversionReport:
    """Convert the SPIDER source into an nnU-Net v2 raw dataset; return counts, rejects and statistics.

    Raises :class:`~spine_lib.errors.InputPathError` when there is no input and
    :class:`~spine_lib.errors.MedicalImageError` when every case was rejected (``rejects.csv`` is written first).
    """
    from loguru import logger

    start = time.perf_counter()
    schema = config.label_schema()
    output = config.output_path
    sources, rejects = find_cases(config)
    key = options_key(config, schema)
    manifest = load_manifest(output)
    previous: dict[str, dict[str, Any]] = manifest.get("cases", {}) if manifest.get("options") == key else {}
    ending = config.output_file_ending

    results: dict[str, CaseResult] = {}
    todo: list[CaseSource] = []
    for source in sources:
        old = previous.get(source.case)
        done = (old is not None and not config.force and old.get("fingerprint") == source.fingerprint()
                and (old["status"] != "ok" or (image_path(output, source.case, ending).is_file()
                                               and label_path(output, source.case, ending).is_file())))
        if done and old is not None:
            results[source.case] = CaseResult(**old)
        else:
            todo.append(source)
    unchanged = len(results)
    (output / "imagesTr").mkdir(parents=True, exist_ok=True)
    (output / "labelsTr").mkdir(parents=True, exist_ok=True)
    converted = 0
    for result in run_cases(todo, output, schema.mapping, ending, config.workers):
        results[result.case] = result
        converted += result.status == "ok"
        if result.status != "ok":
            logger.warning("{}: rejected ({})", result.case, result.reason)
            for path in (image_path(output, result.case, ending), label_path(output, result.case, ending)):
                path.unlink(missing_ok=True)  # a case that went bad leaves the dataset
    removed = remove_stale_cases(output, {c for c, r in results.items() if r.status == "ok"}, ending)

    ok = sorted((r for r in results.values() if r.status == "ok"), key=lambda r: r.case)
    rejected = sorted((r for r in results.values() if r.status != "ok"), key=lambda r: r.case) + rejects
    write_records_csv([{k: getattr(r, k) for k in REJECT_COLUMNS} for r in rejected],
                      output / REJECTS_NAME, columns=REJECT_COLUMNS)
    atomic_write_text(output / MANIFEST_NAME, json.dumps(
        {"options": key, "schema": schema.name, "cases": {c: asdict(r) for c, r in sorted(results.items())}},
        indent=1, sort_keys=True) + "\n")
    if not ok:
        (output / "dataset.json").unlink(missing_ok=True)
        raise MedicalImageError(config.input_path, f"no case could be converted ({len(rejected)} rejected, "
                                                   f"see {output / REJECTS_NAME})")
    atomic_write_text(output / "dataset.json", json.dumps(dataset_json(config, schema, len(ok)), indent=4) + "\n")
    report = summarize(output, ok, rejected, schema, converted, removed, time.perf_counter() - start)
    logger.info("nnU-Net dataset {}: {} cases ({} converted, {} unchanged, {} rejected)", output.name, report.cases,
                converted, unchanged, len(rejected))
    return report


def dataset_version(dataset: Path) -> str:
    """Fingerprint of the converted dataset (dataset.json, every image and label file): changes when it does."""
    return dataset_fingerprint(dataset, ["dataset.json"], ["imagesTr", "labelsTr"])


def remove_stale_cases(output: Path, keep: set[str], ending: str) -> int:
    """Delete image/label files of cases no longer in the dataset (their inputs were removed or rejected)."""
    removed: set[str] = set()
    for folder, suffix in (("imagesTr", f"{CHANNEL_SUFFIX}{ending}"), ("labelsTr", ending)):
        for path in (output / folder).glob(f"*{suffix}"):
            case = path.name[: -len(suffix)]
            if not path.name.startswith(".") and case not in keep:
                path.unlink()
                removed.add(case)
    return len(removed)


def summarize(output: Path, ok: list[CaseResult], rejected: list[CaseResult], schema: LabelSchema,
              converted: int, removed: int, seconds: float) -> ConversionReport:
    import numpy as np

    names = {v: n for n, v in schema.target_labels.items()}
    label_cases = dict.fromkeys(schema.target_labels, 0)
    label_voxels = dict.fromkeys(schema.target_labels, 0)
    for result in ok:
        for value, count in result.label_voxels.items():
            name = names[int(value)]
            label_cases[name] += 1
            label_voxels[name] += count
    spacings = np.array([r.spacing for r in ok], dtype=float)
    return ConversionReport(
        output_path=output, cases=len(ok), converted=converted, unchanged=sum(1 for r in ok) - converted, removed=removed,
        rejected=rejected, labels=dict(schema.target_labels), label_cases=label_cases, label_voxels=label_voxels,
        spacing_min=spacings.min(0).round(4).tolist(), spacing_median=np.median(spacings, 0).round(4).tolist(),
        spacing_max=spacings.max(0).round(4).tolist(), seconds=seconds, case_names=[r.case for r in ok],
    )


# checks ------------------------------------------------------------------------------------------------
@dataclass
class DatasetCheck:
    """Outcome of a check on a converted dataset."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def read_dataset_json(dataset: Path) -> dict[str, Any]:
    path = dataset / "dataset.json"
    if not path.is_file():
        raise InputPathError(path, "dataset.json does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


def check_labels_consecutive(dataset: Path) -> DatasetCheck:
    """dataset.json's labels run 0..N-1 from background, and every label file uses only those values."""
    import numpy as np
    import SimpleITK as sitk

    info = read_dataset_json(dataset)
    values = sorted(int(v) for v in info["labels"].values())
    outcome = DatasetCheck()
    if values != list(range(len(values))) or info["labels"].get("background") != 0:
        outcome.problems.append(f"dataset.json labels are not consecutive from background = 0: {values}")
    allowed = set(values)
    for path in sorted((dataset / "labelsTr").glob(f"*{info['file_ending']}")):
        outcome.checked += 1
        present = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).tolist())
        if extra := sorted(present - allowed):
            outcome.problems.append(f"{path.name}: values not in dataset.json: {extra}")
    return outcome


def check_images_have_labels(dataset: Path) -> DatasetCheck:
    """Every image has its label file on the same voxel grid, every label its image, numTraining matches."""
    import SimpleITK as sitk

    info = read_dataset_json(dataset)
    ending = info["file_ending"]
    suffix = f"{CHANNEL_SUFFIX}{ending}"
    images = {p.name[: -len(suffix)]: p for p in (dataset / "imagesTr").glob(f"*{suffix}")}
    labels = {p.name[: -len(ending)]: p for p in (dataset / "labelsTr").glob(f"*{ending}")}
    outcome = DatasetCheck(checked=len(images))
    if len(images) != info["numTraining"]:
        outcome.problems.append(f"numTraining is {info['numTraining']} but imagesTr holds {len(images)} cases")
    for case in sorted(set(labels) - set(images)):
        outcome.problems.append(f"{case}: label without an image")

    def header(path: Path) -> sitk.ImageFileReader:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader

    for case, path in sorted(images.items()):
        if case not in labels:
            outcome.problems.append(f"{case}: image without a label")
            continue
        a, b = header(path), header(labels[case])
        for what in ("Size", "Spacing", "Origin", "Direction"):
            va, vb = getattr(a, f"Get{what}")(), getattr(b, f"Get{what}")()
            if len(va) != len(vb) or any(abs(x - y) > 1e-4 for x, y in zip(va, vb, strict=True)):
                outcome.problems.append(f"{case}: image and label differ in {what.lower()}")
                break
    return outcome
