"""The conversion itself: cases converted in parallel, the manifest that makes reruns incremental, dataset.json."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spine_lib.core.markdown import markdown_table
from spine_lib.datasets.nnunet.cases import CaseResult, CaseSource, find_cases, same_geometry
from spine_lib.datasets.nnunet.config import ConvertConfig
from spine_lib.errors import MedicalImageError
from spine_lib.formats.nnunet import (
    CHANNEL_SUFFIX,
    DATASET_JSON,
    IMAGES_TR,
    LABELS_TR,
    MANIFEST_NAME,
    REJECT_COLUMNS,
    REJECTS_NAME,
    image_path,
    label_path,
)
from spine_lib.io.atomic import atomic_write_text
from spine_lib.io.records import write_records_csv

if TYPE_CHECKING:
    from spine_lib.labels import LabelSchema

MANIFEST_VERSION = 1


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
        rows = [[name, value, self.label_cases.get(name, 0), self.label_voxels.get(name, 0)]
                for name, value in sorted(self.labels.items(), key=lambda kv: kv[1])]
        return markdown_table(["label", "value", "cases", "voxels"], rows)

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
    (output / IMAGES_TR).mkdir(parents=True, exist_ok=True)
    (output / LABELS_TR).mkdir(parents=True, exist_ok=True)
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
        (output / DATASET_JSON).unlink(missing_ok=True)
        raise MedicalImageError(config.input_path, f"no case could be converted ({len(rejected)} rejected, "
                                                   f"see {output / REJECTS_NAME})")
    atomic_write_text(output / DATASET_JSON, json.dumps(dataset_json(config, schema, len(ok)), indent=4) + "\n")
    report = summarize(output, ok, rejected, schema, converted, removed, time.perf_counter() - start)
    logger.info("nnU-Net dataset {}: {} cases ({} converted, {} unchanged, {} rejected)", output.name, report.cases,
                converted, unchanged, len(rejected))
    return report


def remove_stale_cases(output: Path, keep: set[str], ending: str) -> int:
    """Delete image/label files of cases no longer in the dataset (their inputs were removed or rejected)."""
    removed: set[str] = set()
    for folder, suffix in ((IMAGES_TR, f"{CHANNEL_SUFFIX}{ending}"), (LABELS_TR, ending)):
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
