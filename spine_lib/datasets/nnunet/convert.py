"""The conversion itself: cases converted in parallel, the manifest that makes reruns incremental, dataset.json."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spine_lib.core.markdown import markdown_table
from spine_lib.core.phi import redact
from spine_lib.core.processes import worker_pool
from spine_lib.datasets.nnunet.cases import CaseResult, CaseSource, find_cases, same_geometry, volume_problem
from spine_lib.datasets.nnunet.config import ConvertConfig
from spine_lib.errors import ConfigError, MedicalImageError
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
from spine_lib.io.atomic import atomic_write_text, sweep_temporaries
from spine_lib.io.records import write_records_csv

if TYPE_CHECKING:
    from spine_lib.labels import LabelSchema

MANIFEST_VERSION = 2


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
        if (why := volume_problem(image, "image")) is not None:
            return reject_case(result, why, start)
        mask = read_medical_image(source.mask)
        if (why := volume_problem(mask, "mask")) is not None:
            return reject_case(result, why, start)
        if (why := same_geometry(image, mask)) is not None:
            return reject_case(result, why, start)
        labels, counts = remap_array_with_counts(sitk.GetArrayViewFromImage(mask), mapping, source.mask)
        labels = labels.astype(np.uint8, copy=False)
        label_image = sitk.GetImageFromArray(labels)
        label_image.CopyInformation(image)
        write_medical_image(image, image_path(output, source.case, file_ending))
        write_medical_image(label_image, label_path(output, source.case, file_ending))
    except SpineVisionError as error:
        return reject_case(result, redact(str(error.cause)), start)
    except OSError as error:
        return reject_case(result, f"cannot read or write its files ({redact(str(error))})", start)
    except Exception as error:  # an unforeseen failure of a reader or writer ends this case, not the batch
        return reject_case(result, f"cannot convert ({type(error).__name__}: {redact(str(error))})", start)
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


Job = tuple[CaseSource, Path, dict[int, int], str]


def _convert_star(args: Job) -> CaseResult:
    return convert_case(*args)


def run_cases(todo: list[CaseSource], output: Path, mapping: dict[int, int], file_ending: str,
              workers: int) -> Iterator[CaseResult]:
    """Convert cases, in ``workers`` processes when there is more than one case to share.

    The worker processes end with this process. When one dies (a crash in a reader, the out-of-memory
    killer), the cases it took down with it are converted again, each in a process of its own, so that only
    the case that kills its process is rejected.
    """
    jobs: list[Job] = [(source, output, mapping, file_ending) for source in todo]
    if workers <= 1 or len(todo) <= 1:
        for job in jobs:
            yield _convert_star(job)
        return
    from concurrent.futures.process import BrokenProcessPool

    lost: list[Job] = []
    pool = worker_pool(min(workers, len(todo)), [__name__], initializer=_init_worker)
    try:
        futures = [pool.submit(_convert_star, job) for job in jobs]
        for job, future in zip(jobs, futures, strict=True):
            try:
                yield future.result()
            except BrokenProcessPool:
                lost.append(job)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for job in lost:
        yield convert_in_own_process(job)


def convert_in_own_process(job: Job) -> CaseResult:
    """Convert one case in a fresh worker process; a rejected result when that process dies."""
    from concurrent.futures.process import BrokenProcessPool

    with worker_pool(1, [__name__], initializer=_init_worker) as pool:
        try:
            return pool.submit(_convert_star, job).result()
        except BrokenProcessPool:
            source = job[0]
            # no fingerprint: the next run tries the case again (the cause may have been the machine's)
            return CaseResult(source.case, "rejected", "the process converting it died (a crash while reading "
                              "or writing, or out of memory)", image=source.image.name,
                              mask=source.mask.name if source.mask is not None else "")


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
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}  # an unreadable manifest only costs a full reconversion
    return manifest if isinstance(manifest, dict) else {}


def cached_results(manifest: dict[str, Any], key: str) -> dict[str, CaseResult]:
    """The cases a manifest written with the same options records (converted and rejected), if well formed."""
    if manifest.get("options") != key:
        return {}
    cached: dict[str, CaseResult] = {}
    for section in ("cases", "rejected"):
        entries = manifest.get(section)
        for case, entry in (entries.items() if isinstance(entries, dict) else ()):
            try:
                result = CaseResult(**entry)
            except TypeError:
                continue
            if result.status == "ok" and (len(result.size) != 3 or len(result.spacing) != 3):
                continue  # not a 3-D volume: converted again, hence rejected
            cached[case] = result
    return cached


def manifest_entry(result: CaseResult) -> dict[str, Any]:
    """A case as the manifest keeps it: its result without the run's timing, so equal runs write equal bytes."""
    entry = asdict(result)
    del entry["seconds"]
    return entry


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


def check_output_path(output: Path) -> None:
    """Fail fast, naming the path, when the dataset folder cannot be written where the config puts it."""
    existing = next(p for p in (output, *output.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        if existing == output:
            raise ConfigError(output, "the nnU-Net dataset folder is a file, not a folder")
        raise ConfigError(existing, f"is a file, not a folder: the nnU-Net dataset folder {output} cannot be "
                                    "made in it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(existing, "folder is not writable")
    for folder in (IMAGES_TR, LABELS_TR):
        if (output / folder).exists() and not (output / folder).is_dir():
            raise ConfigError(output / folder, "is a file, not a folder (nnU-Net keeps the cases in it)")
    for name in (DATASET_JSON, REJECTS_NAME, MANIFEST_NAME):
        if (output / name).exists() and not (output / name).is_file():
            raise ConfigError(output / name, "is a folder, not a file")


def make_output_folders(output: Path) -> None:
    for folder in (IMAGES_TR, LABELS_TR):
        try:
            (output / folder).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(output / folder, f"cannot create the folder ({error.strerror or error})") from error


def convert_to_nnunet(config: ConvertConfig) -> ConversionReport:
    """Convert the SPIDER source into an nnU-Net v2 raw dataset; return counts, rejects and statistics.

    The output path and the input are checked before anything is written: a dataset folder that cannot be
    written raises :class:`~spine_lib.errors.ConfigError`, an input without a series
    :class:`~spine_lib.errors.InputPathError`. Temporaries an interrupted run left in the dataset folder are
    removed. When every case is rejected, :class:`~spine_lib.errors.MedicalImageError` is raised and a
    previous dataset is left as it was (a first run writes ``rejects.csv`` first).
    """
    from loguru import logger

    start = time.perf_counter()
    output = config.output_path
    check_output_path(output)
    schema = config.label_schema()
    sources, rejects = find_cases(config)
    if swept := sweep_temporaries(output):
        logger.info("{}: removed {} temporary files of an interrupted run", output.name, len(swept))
    key = options_key(config, schema)
    previous = cached_results(load_manifest(output), key)
    ending = config.output_file_ending

    results: dict[str, CaseResult] = {}
    todo: list[CaseSource] = []
    for source in sources:
        old = previous.get(source.case)
        done = (old is not None and not config.force and old.fingerprint == source.fingerprint()
                and (old.status != "ok" or (image_path(output, source.case, ending).is_file()
                                            and label_path(output, source.case, ending).is_file())))
        if done and old is not None:
            results[source.case] = old
        else:
            todo.append(source)
    unchanged = len(results)
    make_output_folders(output)
    converted = 0
    for result in run_cases(todo, output, schema.mapping, ending, config.workers):
        results[result.case] = result
        converted += result.status == "ok"
        if result.status != "ok":
            logger.warning("{}: rejected ({})", result.case, result.reason)
    for reject in rejects:
        logger.warning("{}: rejected ({})", reject.image or reject.mask, reject.reason)

    ok = sorted((r for r in results.values() if r.status == "ok"), key=lambda r: r.case)
    failed = sorted((r for r in results.values() if r.status != "ok"), key=lambda r: r.case)
    rejected = failed + rejects
    if not ok:
        raise no_case_converted(config, rejected)
    removed = remove_stale_cases(output, {r.case for r in ok}, ending)  # inputs removed, or rejected this time
    write_records_csv([{k: getattr(r, k) for k in REJECT_COLUMNS} for r in rejected],
                      output / REJECTS_NAME, columns=REJECT_COLUMNS)
    atomic_write_text(output / MANIFEST_NAME, json.dumps(
        {"options": key, "schema": schema.name, "cases": {r.case: manifest_entry(r) for r in ok},
         "rejected": {r.case: manifest_entry(r) for r in failed}}, indent=1, sort_keys=True) + "\n")
    atomic_write_text(output / DATASET_JSON, json.dumps(dataset_json(config, schema, len(ok)), indent=4) + "\n")
    report = summarize(output, ok, rejected, schema, converted, removed, time.perf_counter() - start)
    logger.info("nnU-Net dataset {}: {} cases ({} converted, {} unchanged, {} rejected)", output.name, report.cases,
                converted, unchanged, len(rejected))
    return report


def no_case_converted(config: ConvertConfig, rejected: list[CaseResult]) -> MedicalImageError:
    """The error of a run that converted no case; ``rejects.csv`` is written only where no dataset is yet."""
    output = config.output_path
    shown = "; ".join(f"{r.case or r.image or r.mask}: {r.reason}" for r in rejected[:3])
    more = f"; and {len(rejected) - 3} more" if len(rejected) > 3 else ""
    if (output / DATASET_JSON).exists():
        where = f"the previous dataset in {output} is left as it was"
    else:
        write_records_csv([{k: getattr(r, k) for k in REJECT_COLUMNS} for r in rejected],
                          output / REJECTS_NAME, columns=REJECT_COLUMNS)
        where = f"see {output / REJECTS_NAME}"
    return MedicalImageError(config.input_path, f"no case could be converted ({len(rejected)} rejected: "
                                                f"{shown}{more}); {where}")


def remove_stale_cases(output: Path, keep: set[str], ending: str) -> int:
    """Delete image/label files of cases no longer in the dataset (their inputs were removed or rejected)."""
    removed: set[str] = set()
    for folder, suffix in ((IMAGES_TR, f"{CHANNEL_SUFFIX}{ending}"), (LABELS_TR, ending)):
        for path in (output / folder).glob(f"*{suffix}"):
            case = path.name[: -len(suffix)]
            if not path.name.startswith(".") and case not in keep and path.is_file():
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
