"""The job: every graded disc of every patient cropped from its sagittal T1 and T2 series, or rejected with a reason.

Per patient: each series is read and turned to the canonical sagittal view; the disc points come from the
series' mask (SPIDER, by default) or from the localizer on the series ``localization_series`` names (T1 by
default; the other series takes the same physical points, the two sequences of one study sharing the scanner's
frame), checked for plausibility first; then each graded level is cropped around its point on each sequence. A
rerun re-crops only the patients whose series, grades, localization model or crop options changed
(``crops_manifest.json``); every file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from loguru import logger

from spine_lib.core.markdown import markdown_table
from spine_lib.datasets.classification.config import ClassificationDatasetConfig
from spine_lib.datasets.classification.discs import (
    DISC_NOT_IN_MASK,
    IMPLAUSIBLE,
    NO_GRADING,
    NO_MODEL,
    NO_SERIES,
    OUTSIDE,
    UNREADABLE,
    PatientInput,
    Reject,
    phenikaa_patients,
    spider_patients,
)
from spine_lib.errors import ConfigError, SpineVisionError
from spine_lib.formats import classification as fmt
from spine_lib.inference.disc_crops import crop_box, cut_crop, disc_point_from_mask, windowed
from spine_lib.io.atomic import atomic_path, atomic_write_text, check_output_folder, sweep_temporaries
from spine_lib.io.records import write_records_csv
from spine_lib.levels import LEVELS, phenikaa_ivd_label, spider_disc_value

if TYPE_CHECKING:
    import numpy.typing as npt
    import SimpleITK as sitk

    from spine_lib.inference.localization import DiscLocalizer
    from spine_lib.io.sagittal import SagittalVolume

MANIFEST_VERSION = 1
#: A crop whose box lies more than this share outside its slice is rejected (it would be mostly padding).
MAX_OUTSIDE_SHARE = 0.25
CONTACT_SHEET_CROPS = 10  # T2 crops per source on the contact sheet
CONTACT_SHEET_TILE = 96


@dataclass
class ClassificationReport:
    """Counts of one build (patient IDs and counts only: safe as Dagster metadata)."""

    output_path: Path
    crops: int = 0
    discs: int = 0
    paired_discs: int = 0
    patients: int = 0
    patients_cropped: int = 0
    patients_reused: int = 0
    crops_removed: int = 0
    by_source_level: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> level -> crops
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    point_sources: dict[str, int] = field(default_factory=dict)
    model_run_id: str | None = None
    seconds: float = 0.0
    crop_seconds: float = 0.0
    crops_written: int = 0

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_reason.values())

    @property
    def contact_sheet(self) -> Path:
        return self.output_path / fmt.CONTACT_SHEET_FILE

    def counts_table(self) -> str:
        """Crops per source and level, as a markdown table."""
        rows = [[source, *(levels.get(level, 0) for level in LEVELS), sum(levels.values())]
                for source, levels in sorted(self.by_source_level.items())]
        return markdown_table(["source", *LEVELS, "total"], rows)

    def rejects_table(self) -> str:
        return markdown_table(["reason", "rejected"], sorted(self.rejects_by_reason.items()))

    def as_metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "crops": self.crops, "discs": self.discs, "paired_discs": self.paired_discs, "patients": self.patients,
            "patients_cropped": self.patients_cropped, "patients_reused": self.patients_reused,
            "crops_removed": self.crops_removed, "rejected": self.rejected, "seconds": round(self.seconds, 2),
            "crops_per_second": round(self.crops_written / self.crop_seconds, 1) if self.crop_seconds else 0.0,
        }
        data.update({f"crops_{source}": sum(levels.values()) for source, levels in sorted(self.by_source_level.items())})
        data.update({f"rejected_{reason}": n for reason, n in sorted(self.rejects_by_reason.items())})
        data.update({f"points_{kind}": n for kind, n in sorted(self.point_sources.items())})
        if self.model_run_id:
            data["model_run_id"] = self.model_run_id
        return data


@dataclass
class SeriesPoints:
    """Where the discs of one series are: the slice of each level's point, the points, how they were found."""

    points: dict[str, tuple[int, float, float]]  # level -> (slice, x, y)
    source: str  # mask | model
    run_id: str = ""


class LocalizerHandle:
    """The localizer, loaded on first use; a missing model is remembered as the reason of every reject."""

    def __init__(self, config: ClassificationDatasetConfig, model: DiscLocalizer | None = None) -> None:
        self.config = config
        self._model: DiscLocalizer | None = model
        self.missing: str | None = None

    def get(self) -> DiscLocalizer | None:
        if self._model is None and self.missing is None:
            from spine_lib.inference.localization import DiscLocalizer

            model = DiscLocalizer(self.config.localization_model_path, self.config.weights_path, self.config.device,
                                  self.config.image_size, levels=tuple(self.config.levels))
            try:
                path = model.resolve_model_path()
            except SpineVisionError as error:
                self.missing = str(error)
                return None
            check_variant(path, self.config.model_variant)
            model.ensure_loaded()
            self._model = model
        return self._model

    def fingerprint(self) -> str:
        """What identifies the model a patient's points would come from (its checkpoint's path, size, mtime)."""
        from spine_lib.inference.localization import DiscLocalizer

        model = self._model or DiscLocalizer(self.config.localization_model_path, self.config.weights_path)
        try:
            path = model.resolve_model_path()
        except SpineVisionError:
            return "none" if self._model is None else self._model.name
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def check_variant(path: Path, variant: str | None) -> None:
    """A checkpoint of another backbone variant than the one asked for is a configuration error."""
    if variant is None:
        return
    from spine_lib.training.checkpoints import read_checkpoint

    stored = read_checkpoint(path)["model_kwargs"].get("variant")
    if stored != variant:
        raise ConfigError(path, f"localization checkpoint holds variant {stored!r}, not {variant!r}")


def build_classification_dataset(config: ClassificationDatasetConfig,
                                 localizer: DiscLocalizer | None = None) -> ClassificationReport:
    """Build ``<base>/processed/<output_name>/`` (crops, annotations.csv, rejects.csv, contact sheet).

    ``localizer`` replaces the model the config names (for callers that hold one already).
    """
    start = time.perf_counter()
    output = config.output_path
    images = output / fmt.IMAGES_FOLDER
    check_output_folder(output, folders=(fmt.IMAGES_FOLDER,), files=(fmt.ANNOTATIONS_FILE, fmt.REJECTS_FILE))
    sweep_temporaries(output)  # what a killed run left half-written
    images.mkdir(parents=True, exist_ok=True)
    patients: list[PatientInput] = []
    loose: list[Reject] = []
    if config.include_spider:
        found, refused = spider_patients(config)
        patients += found
        loose += refused + ungraded_spider_series(config, {p.patient_id for p in found})
    if config.include_phenikaa:
        found, refused = phenikaa_patients(config)
        patients += found
        loose += refused + ungraded_phenikaa_folders(config, {p.patient_id for p in found})
    if not patients and not loose:
        raise ConfigError(config.base_path, "nothing to crop: no SPIDER gradings and no Phenikaa export with labels "
                                            f"under {config.base_path}")
    handle = LocalizerHandle(config, localizer)
    options = options_key(config)
    model_print = handle.fingerprint() if any(uses_model(p, config) for p in patients) else "none"
    manifest = load_manifest(output) if not config.force else {}
    previous = manifest.get("patients", {}) if manifest.get("options") == options else {}
    report = ClassificationReport(output_path=output, patients=len(patients))
    done: dict[str, dict[str, Any]] = {}
    crop_seconds, written = 0.0, 0
    for patient in patients:
        print_ = patient_fingerprint(patient, options, model_print if uses_model(patient, config) else "none")
        old = previous.get(patient.key)
        if old is not None and old.get("fingerprint") == print_ and all(
                (output / row["image_path"]).is_file() for row in old["rows"]):
            done[patient.key] = old
            report.patients_reused += 1
            continue
        t0 = time.perf_counter()
        rows, rejects = crop_patient(patient, config, handle, images)
        crop_seconds += time.perf_counter() - t0
        written += len(rows)
        done[patient.key] = {"fingerprint": print_, "rows": rows, "rejects": [r.row() for r in rejects]}
        report.patients_cropped += 1
    rows = [row for entry in done.values() for row in entry["rows"]]
    rejects = [r.row() for r in loose] + [row for entry in done.values() for row in entry["rejects"]]
    mark_pairs(rows)
    rows.sort(key=lambda r: (r["source"], r["patient_id"], int(r["ivd_level"]), r["series_type"]))
    report.crops_removed = remove_orphans(images, {Path(r["image_path"]).name for r in rows})
    write_records_csv(rows, config.annotations_path, columns=fmt.ANNOTATION_COLUMNS)
    write_records_csv(rejects, config.rejects_path, columns=fmt.REJECT_COLUMNS)
    atomic_write_text(output / fmt.MANIFEST_FILE, json.dumps({"version": MANIFEST_VERSION, "options": options,
                                                              "patients": dict(sorted(done.items()))},
                                                             indent=1, sort_keys=True) + "\n")
    write_contact_sheet(output, rows)
    report.crops = len(rows)
    report.discs = len({(r["source"], r["patient_id"], r["level"]) for r in rows})
    report.paired_discs = len({(r["source"], r["patient_id"], r["level"]) for r in rows if r["paired"] == "1"})
    for row in rows:
        per_level = report.by_source_level.setdefault(row["source"], {})
        per_level[row["level"]] = per_level.get(row["level"], 0) + 1
    report.rejects_by_reason = dict(sorted(Counter(r["reason"] for r in rejects).items()))
    report.point_sources = dict(sorted(Counter(r["point_source"] for r in rows).items()))
    report.model_run_id = next((r["model_run_id"] for r in rows if r["model_run_id"]), None)
    report.crop_seconds, report.crops_written = crop_seconds, written
    report.seconds = time.perf_counter() - start
    logger.info("IVD crops: {} crops of {} discs ({} paired) from {} patients ({} cropped, {} unchanged); "
                "{} rejected {}", report.crops, report.discs, report.paired_discs, report.patients,
                report.patients_cropped, report.patients_reused, report.rejected, report.rejects_by_reason)
    return report


def uses_model(patient: PatientInput, config: ClassificationDatasetConfig) -> bool:
    """Whether the patient's points come from the localizer (Phenikaa; SPIDER when asked or without masks)."""
    if patient.source != "spider" or config.spider_points == "model":
        return True
    return any(series.mask is None for series in patient.series.values())


def crop_patient(patient: PatientInput, config: ClassificationDatasetConfig, localizer: LocalizerHandle,
                 images: Path) -> tuple[list[dict[str, str]], list[Reject]]:
    """The crops of one patient (written under ``images``) and the rejects of its (level, series)."""
    from spine_lib.io.readers import read_dicom_series, read_medical_image
    from spine_lib.io.sagittal import sagittal_volume

    rejects = list(patient.rejects)
    refused = {(r.level, r.series_type) for r in rejects}
    levels = [level for level in LEVELS if level in patient.grades]

    def refuse(series_type: str, reason: str, detail: str = "", only: list[str] | None = None) -> None:
        for level in only if only is not None else levels:
            if (level, series_type) not in refused:
                refused.add((level, series_type))
                rejects.append(Reject(patient.source, patient.patient_id, level, series_type, reason, detail))

    volumes: dict[str, SagittalVolume] = {}
    masks: dict[str, sitk.Image] = {}
    for series_type in fmt.SERIES_TYPES:
        series = patient.series.get(series_type)
        if series is None:
            refuse(series_type, NO_SERIES, f"no {series_type} series")
            continue
        try:
            image = (read_dicom_series(series.path, series.series_uid) if series.series_uid
                     else read_medical_image(series.path))
            volumes[series_type] = sagittal_volume(image, str(series.path))
            if series.mask is not None and patient.source == "spider" and config.spider_points == "mask":
                masks[series_type] = read_medical_image(series.mask)
        except SpineVisionError as error:
            refuse(series_type, UNREADABLE, str(error.cause))
    found: dict[str, SeriesPoints] = {}
    for series_type, mask in masks.items():
        found[series_type] = mask_points(volumes[series_type], mask, levels)
        missing = [level for level in levels if level not in found[series_type].points]
        refuse(series_type, DISC_NOT_IN_MASK, "the disc's label is not on the mid-sagittal slice", only=missing)
    without = [s for s in volumes if s not in found]
    if without:
        model = localizer.get()
        if model is None:
            for series_type in without:
                refuse(series_type, NO_MODEL, localizer.missing or "")
        else:
            reference = config.localization_series if config.localization_series in volumes else next(iter(volumes))
            localization = model.localize(volumes[reference])
            if not localization.plausible:
                for series_type in without:
                    refuse(series_type, IMPLAUSIBLE, "; ".join(localization.problems))
            else:
                run_id = localization.run_id or ""
                for series_type in without:
                    points, outside = map_points(localization, volumes[series_type], levels,
                                                 same=series_type == reference)
                    found[series_type] = SeriesPoints(points, "model", run_id)
                    refuse(series_type, OUTSIDE, "the disc's point falls outside this series", only=outside)
                    refuse(series_type, IMPLAUSIBLE, "no disc seen at this level (its point was extrapolated from "
                           "its neighbours)", only=[level for level in localization.guessed if level in levels])
    rows: list[dict[str, str]] = []
    for series_type, located in sorted(found.items()):
        volume = volumes[series_type]
        windows: dict[int, npt.NDArray[np.float32]] = {}
        for level in levels:
            if level not in located.points or (level, series_type) in refused:
                continue
            index, x, y = located.points[level]
            box = crop_box((x, y), config.crop_delta, volume.pixel_spacing, config.spacing_mm)
            if outside_share(box, volume.shape) > MAX_OUTSIDE_SHARE:
                refuse(series_type, OUTSIDE, "the crop box lies mostly outside the slice", only=[level])
                continue
            if index not in windows:
                windows[index] = windowed(volume.slice(index))
            crop = cut_crop(windows[index], box, config.crop_size)
            name = fmt.crop_name(patient.source, patient.patient_id, series_type, level)
            write_png(np.clip(np.round(crop), 0, 255).astype(np.uint8), images / name)
            series = patient.series[series_type]
            rows.append({
                "image_path": fmt.image_entry(name), "patient_id": patient.patient_id,
                "ivd_level": str(phenikaa_ivd_label(level)), "series_type": series_type, "source": patient.source,
                **{k: str(v) for k, v in patient.grades[level].items()},
                "level": level, "series_file": relative_to(series.path, config.base_path), "slice_index": str(index),
                "center_x": f"{x:.2f}", "center_y": f"{y:.2f}", "crop_x0": f"{box.x0:.2f}", "crop_y0": f"{box.y0:.2f}",
                "crop_x1": f"{box.x1:.2f}", "crop_y1": f"{box.y1:.2f}",
                "pixel_spacing_x": f"{volume.pixel_spacing[0]:.4f}", "pixel_spacing_y": f"{volume.pixel_spacing[1]:.4f}",
                "point_source": located.source, "model_run_id": located.run_id, "paired": "0",
            })
    return rows, rejects


def mask_points(volume: SagittalVolume, mask: sitk.Image, levels: list[str]) -> SeriesPoints:
    """Each level's point from the series' mask, on its mid-sagittal slice (the middle of the canal)."""
    import SimpleITK as sitk

    from spine_lib.inference.localization import mid_sagittal_slice
    from spine_lib.io.sagittal import SAGITTAL_ORIENTATION

    index, _ = mid_sagittal_slice(volume, mask)
    labels = sitk.GetArrayFromImage(sitk.DICOMOrient(mask, SAGITTAL_ORIENTATION))[index]
    points: dict[str, tuple[int, float, float]] = {}
    for level in levels:
        point = disc_point_from_mask(labels, spider_disc_value(level), volume.pixel_spacing)
        if point is not None:
            points[level] = (index, point[0], point[1])
    return SeriesPoints(points, "mask")


def map_points(localization: Any, volume: SagittalVolume, levels: list[str],
               same: bool) -> tuple[dict[str, tuple[int, float, float]], list[str]]:
    """The localizer's points on ``volume``: as predicted on the series they came from, else through their physical
    position (the nearest slice); levels whose point falls outside the series are returned apart."""
    points: dict[str, tuple[int, float, float]] = {}
    outside: list[str] = []
    rows, columns = volume.shape
    for level in levels:
        point = localization.points.get(level)
        if point is None:
            outside.append(level)
            continue
        if same:
            points[level] = (localization.slice_index, point.x, point.y)
            continue
        k, x, y = volume.to_pixel(point.physical)
        index = round(k)
        if 0 <= index < volume.slices and 0 <= x < columns and 0 <= y < rows:
            points[level] = (index, x, y)
        else:
            outside.append(level)
    return points, outside


def outside_share(box: Any, shape: tuple[int, int]) -> float:
    """Share of the box's area that lies outside a slice of ``shape`` (rows, columns)."""
    rows, columns = shape
    width, height = box.x1 - box.x0, box.y1 - box.y0
    inside_w = max(0.0, min(box.x1, columns - 0.5) - max(box.x0, -0.5))
    inside_h = max(0.0, min(box.y1, rows - 0.5) - max(box.y0, -0.5))
    return 1.0 - (inside_w * inside_h) / (width * height) if width > 0 and height > 0 else 1.0


def write_png(array: npt.NDArray[np.uint8], target: Path) -> None:
    import cv2

    with atomic_path(target) as tmp:  # keeps the .png suffix OpenCV picks the encoder by
        if not cv2.imwrite(str(tmp), array):
            raise OSError(f"cannot write {target}")


def mark_pairs(rows: list[dict[str, str]]) -> None:
    """``paired = 1`` on the crops of discs cropped on both sequences."""
    kinds: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        kinds.setdefault((row["source"], row["patient_id"], row["level"]), set()).add(row["series_type"])
    for row in rows:
        row["paired"] = "1" if kinds[(row["source"], row["patient_id"], row["level"])] >= set(fmt.SERIES_TYPES) else "0"


def relative_to(path: Path, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def ungraded_spider_series(config: ClassificationDatasetConfig, graded: set[str]) -> list[Reject]:
    """SPIDER T1/T2 series of patients without a grading row: each is rejected once per level."""
    from spine_lib.sources import spider

    rejects = []
    for image in spider.image_files(config.spider_path):
        parsed = spider.parse_series_file_name(image.name)
        if parsed is None or parsed[0] in graded or parsed[1] not in ("t1", "t2"):
            continue
        rejects += [Reject("spider", parsed[0], level, f"sag_{parsed[1]}", NO_GRADING, image.name)
                    for level in config.levels]
    return rejects


def ungraded_phenikaa_folders(config: ClassificationDatasetConfig, graded: set[str]) -> list[Reject]:
    """Exported patient folders without label rows."""
    from spine_lib.formats.phenikaa_export import IMAGES_FOLDER

    folder = config.phenikaa_export_path / IMAGES_FOLDER
    return [Reject("phenikaa", p.name, level, series_type, NO_GRADING, "no label row for this patient")
            for p in sorted(folder.iterdir()) if p.is_dir() and p.name not in graded
            for level in config.levels for series_type in fmt.SERIES_TYPES] if folder.is_dir() else []


def options_key(config: ClassificationDatasetConfig) -> str:
    """A hash of the options that shape every crop."""
    payload = json.dumps({"size": config.crop_size, "delta": config.crop_delta, "spacing": config.spacing_mm,
                          "points": config.spider_points, "levels": config.levels, "version": MANIFEST_VERSION,
                          "localized_on": config.localization_series},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def patient_fingerprint(patient: PatientInput, options: str, model: str) -> str:
    """What the patient's crops depend on: options, grades, series files (size and mtime), the model."""
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for s in sorted(patient.series.values(),
                                                                              key=lambda s: s.series_type)
             for p in s.files()]
    payload = json.dumps({"options": options, "grades": patient.grades, "files": files, "model": model,
                          "rejects": [r.row() for r in patient.rejects]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def load_manifest(output: Path) -> dict[str, Any]:
    path = output / fmt.MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable manifest only costs a full rebuild


def remove_orphans(images: Path, keep: set[str]) -> int:
    """Delete crops no annotation row names (their patient or level left the dataset)."""
    removed = 0
    for path in images.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink(missing_ok=True)
            removed += not path.name.startswith(".")
    return removed


def write_contact_sheet(output: Path, rows: list[dict[str, str]]) -> Path | None:
    """A PNG grid of sample T2 crops per source, each captioned with its source, patient and level."""
    from PIL import Image, ImageDraw

    picks = []
    for source in fmt.SOURCES:
        picks += [r for r in rows if r["source"] == source and r["series_type"] == "sag_t2"][:CONTACT_SHEET_CROPS]
    target = output / fmt.CONTACT_SHEET_FILE
    if not picks:
        target.unlink(missing_ok=True)
        return None
    tile, caption = CONTACT_SHEET_TILE, 14
    columns = min(5, len(picks))
    lines = (len(picks) + columns - 1) // columns
    sheet = Image.new("L", (columns * tile, lines * (tile + caption)), color=0)
    draw = ImageDraw.Draw(sheet)
    for n, row in enumerate(picks):
        with Image.open(output / row["image_path"]) as crop:
            thumb = crop.convert("L").resize((tile, tile))
        x, y = (n % columns) * tile, (n // columns) * (tile + caption)
        sheet.paste(thumb, (x, y + caption))
        draw.text((x + 2, y + 1), f"{row['source'][:3]} {row['patient_id'][-6:]} {row['level']}", fill=255)
    with atomic_path(target) as tmp:
        sheet.save(tmp, format="PNG")
    return target
