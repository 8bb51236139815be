"""The job: inputs checked whole, coordinate rows resolved to images, images staged, points checked, and only
then the dataset replaced.

Nothing of a previous dataset is deleted or replaced before every input table has been read and checked and at
least one annotation has come out: a structurally broken input (a missing column, a table without rows, a binary
file) fails with an error naming the file, and the dataset stays as it was. New images are written to a private
temporary folder in the dataset and moved into ``images/`` at the end; a run killed before that leaves only
temporaries, which the next run sweeps away.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from spine_lib.datasets.ivd_coords.config import IVDDatasetConfig, IVDDatasetReport
from spine_lib.datasets.ivd_coords.images import ImageTask, convert_images, remove_orphans
from spine_lib.datasets.ivd_coords.read import (
    CoordinateTable,
    PointRow,
    clean_id,
    point_in_pixels,
    read_coordinate_table,
)
from spine_lib.datasets.ivd_coords.resolve import (
    BAD_COORDINATE,
    DUPLICATE_POINT,
    MALFORMED_ROW,
    POINT_OUTSIDE,
    REPLACED_BY_IMPROVED,
    UNKNOWN_LEVEL,
    UNREADABLE_IMAGE,
    Rejects,
    Resolved,
    resolve_pretrain_rows,
    resolve_rsna_rows,
)
from spine_lib.errors import ConfigError, InputPathError, TabularDataError
from spine_lib.formats import ivd_coords as fmt
from spine_lib.io.atomic import check_output_folder, sweep_temporaries
from spine_lib.io.records import write_records_csv
from spine_lib.levels import LEVEL_TO_IDX, check_level
from spine_lib.sources import lumbar_coords, rsna
from spine_lib.sources.rsna import SeriesMapping, load_series_mapping

#: what converting one image gave: (width, height, written now) or the error text
Outcome = tuple[int, int, bool] | str


@dataclass
class BuildInputs:
    """Every input table of a build, read and checked before anything is written."""

    tables: dict[str, CoordinateTable]  # by kind: rsna, rsna_improved, pretrain
    mapping: SeriesMapping

    def rows(self, kind: str) -> list[PointRow]:
        table = self.tables.get(kind)
        return table.rows if table is not None else []


def check_output(config: IVDDatasetConfig) -> None:
    """The dataset's folder can be written: a plain folder name, no file where a folder belongs (or the reverse).

    Raises:
        ConfigError: ``output_name`` is not a folder name.
        InputPathError: a file stands where the dataset, its parents or ``images/`` should be a folder, or a
            folder where annotations.csv or rejects.csv should be a file.
    """
    name = config.output_name
    if not name or name in (".", "..") or Path(name).name != name:
        raise ConfigError(None, f"output name {name!r} must be a folder name (under {config.layout.processed})")
    check_output_folder(config.output_path, folders=(fmt.IMAGES_FOLDER,),
                        files=(config.annotations_path.name, config.rejects_path.name))


def read_inputs(config: IVDDatasetConfig) -> BuildInputs:
    """Read and check every coordinate table present (and the series descriptions they need).

    Raises:
        ConfigError: no coordinate table exists.
        InputPathError: a table's path is a folder, or the series descriptions or the DICOM folder are missing.
        TabularDataError: a table is not a CSV text table, lacks a required column or has no rows.
    """
    paths = {
        "rsna": config.rsna_path / rsna.COORDINATES_FILE,
        "rsna_improved": config.lumbar_coords_path / lumbar_coords.IMPROVED_FILE,
        "pretrain": config.lumbar_coords_path / lumbar_coords.PRETRAIN_FILE,
    }
    for path in paths.values():
        if path.exists() and not path.is_file():
            raise InputPathError(path, "is a folder, expected a CSV file")
    present = {kind: path for kind, path in paths.items() if path.is_file()}
    if not present:
        raise ConfigError(config.base_path, f"no coordinates found: neither {paths['rsna']} nor "
                                            f"{paths['rsna_improved']} nor {paths['pretrain']} exists")
    needs_rsna = "rsna" in present or "rsna_improved" in present
    descriptions = config.rsna_path / rsna.DESCRIPTIONS_FILE
    if needs_rsna and not descriptions.is_file():
        raise InputPathError(descriptions, "series descriptions file does not exist")
    tables = {kind: read_coordinate_table(path, kind) for kind, path in present.items()}
    if needs_rsna and not (config.rsna_path / rsna.TRAIN_IMAGES).is_dir():
        raise InputPathError(config.rsna_path / rsna.TRAIN_IMAGES, "DICOM folder does not exist")
    mapping = load_series_mapping(descriptions) if needs_rsna else {}
    return BuildInputs(tables=tables, mapping=mapping)


def build_ivd_coords(config: IVDDatasetConfig) -> IVDDatasetReport:
    """Build ``<base>/processed/<output_name>/`` (images, annotations.csv, rejects.csv); return the counts.

    Raises:
        ConfigError, InputPathError, TabularDataError: a broken input or output path (see :func:`check_output`
            and :func:`read_inputs`), or no coordinate row gave an annotation; the previous dataset is untouched.
    """
    check_output(config)
    sweep_temporaries(config.output_path)
    inputs = read_inputs(config)
    report = IVDDatasetReport(output_path=str(config.output_path))
    report.rows_read = {t.path.name: len(t.rows) for t in inputs.tables.values()}
    report.encodings = {t.path.name: t.encoding for t in inputs.tables.values() if t.encoding != "utf-8"}
    rejects = Rejects()

    def readable(rows: list[PointRow]) -> list[PointRow]:
        kept = []
        for row in rows:
            if row.problem:
                rejects.reject(row, MALFORMED_ROW, row.problem)
            else:
                kept.append(row)
        return kept

    original, improved = readable(inputs.rows("rsna")), readable(inputs.rows("rsna_improved"))
    pretrain = readable(inputs.rows("pretrain"))

    def improved_key(row: PointRow) -> tuple[str | None, str | None, str, str]:
        return clean_id(row.study_id), clean_id(row.series_id), row.condition.strip().lower(), row.level.upper()

    covered = {improved_key(r) for r in improved}
    kept_original = []
    for row in original:
        if improved_key(row) in covered:
            rejects.exclude(REPLACED_BY_IMPROVED)
        else:
            kept_original.append(row)
    resolved = resolve_rsna_rows(kept_original + improved, config, inputs.mapping, rejects)
    pretrain_resolved, pictures = resolve_pretrain_rows(pretrain, config.lumbar_coords_path / lumbar_coords.DATA_FOLDER, rejects)
    resolved += pretrain_resolved

    # levels: a typo'd level is a reject; levels are spelt the one way afterwards
    with_level: list[tuple[Resolved, str]] = []
    for item in resolved:
        try:
            with_level.append((item, check_level(item.row.level)))
        except ValueError:
            rejects.reject(item.row, UNKNOWN_LEVEL)
    if config.canal_points_on_t1:  # from the rows that passed so far; a bad T2 point is its own reject
        # imported here: numpy is not loaded with the code location
        from spine_lib.datasets.ivd_coords.transfer import transfer_canal_points

        transferred = transfer_canal_points([item for item, _ in with_level], config.rsna_path, inputs.mapping,
                                            rejects)
        with_level += [(item, check_level(item.row.level)) for item in transferred]

    created = not config.output_path.exists()
    staging: Path | None = None
    done = False
    try:
        config.output_path.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{fmt.IMAGES_FOLDER}.", suffix=".tmp", dir=config.output_path))
        annotations, outcomes = annotate(config, with_level, pictures, staging, rejects)
        if not annotations:
            raise no_annotation_error(config, inputs, rejects)
        used = {str(a["image_path"]).removeprefix(fmt.image_entry("")) for a in annotations}
        commit(config, staging, annotations, used, outcomes, rejects, report)
        done = True
    except OSError as error:
        raise InputPathError(Path(error.filename or config.output_path),
                             f"cannot write the dataset ({error.strerror or type(error).__name__})") from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created and not done and config.output_path.is_dir() and not any(config.output_path.iterdir()):
            config.output_path.rmdir()  # a failed first build leaves no empty dataset folder behind

    report.annotations = len(annotations)
    report.images = len(used)
    report.studies = len({a["study_id"] for a in annotations})
    report.images_written = sum(1 for n in used if not isinstance(outcomes[n], str) and outcomes[n][2])  # type: ignore[index]
    report.images_reused = report.images - report.images_written
    report.by_series_type = dict(sorted(Counter(str(a["series_type"]) for a in annotations).items()))
    report.by_level = {lv: n for lv, n in sorted(Counter(str(a["level"]) for a in annotations).items(),
                                                   key=lambda kv: LEVEL_TO_IDX[kv[0]])}
    report.by_source = dict(sorted(Counter(str(a["source"]) for a in annotations).items()))
    for a in annotations:
        per_level = report.by_series_level.setdefault(str(a["series_type"]), {})
        per_level[str(a["level"])] = per_level.get(str(a["level"]), 0) + 1
    report.skipped = rejects.counts()
    report.excluded = dict(sorted(rejects.excluded.items()))
    logger.info("IVD coordinates: {} annotations on {} images of {} studies; {} rows rejected {}",
                report.annotations, report.images, report.studies, report.rejected, report.skipped)
    return report


def annotate(
    config: IVDDatasetConfig, with_level: list[tuple[Resolved, str]], pictures: dict[str, Path], staging: Path,
    rejects: Rejects,
) -> tuple[list[dict[str, object]], dict[str, Outcome]]:
    """Convert the images the rows point at (new ones into ``staging``) and check every point on its image."""
    images_dir = config.output_path / fmt.IMAGES_FOLDER
    tasks: dict[str, ImageTask] = {}
    for item, _ in with_level:
        if item.image_name not in tasks:
            if item.row.source.startswith("pretrain"):
                source, kind = pictures[item.image_name], "picture"
            else:
                source = rsna.dicom_path(config.rsna_path, item.study_id, item.series_id, item.instance_number)
                kind = "dicom"
            tasks[item.image_name] = ImageTask(images_dir / item.image_name, source, kind, staging / item.image_name)
    names = sorted(tasks)
    outcomes = dict(zip(names, convert_images([tasks[n] for n in names], config.workers, config.verbose), strict=True))

    annotations: list[dict[str, object]] = []
    seen: set[tuple[str, str, str]] = set()
    for item, level in with_level:
        outcome = outcomes[item.image_name]
        if isinstance(outcome, str):
            rejects.reject(item.row, UNREADABLE_IMAGE, outcome)
            continue
        width, height, _ = outcome
        x, y = point_in_pixels(item.row, width, height)
        if x is None or y is None:
            rejects.reject(item.row, BAD_COORDINATE)
            continue
        if not (0.0 <= x < width and 0.0 <= y < height):
            rejects.reject(item.row, POINT_OUTSIDE, f"({x:g}, {y:g}) outside {width}x{height}")
            continue
        key = (item.image_name, level, item.point)
        if key in seen:
            rejects.reject(item.row, DUPLICATE_POINT)
            continue
        seen.add(key)
        annotations.append({
            "image_path": fmt.image_entry(item.image_name), "level": level,
            "relative_x": round(x / width, 6), "relative_y": round(y / height, 6),
            "series_type": item.series_type, "source": item.row.source, "study_id": item.study_id,
            "series_id": item.series_id, "instance_number": item.instance_number, "point": item.point,
            "x": round(x, 3), "y": round(y, 3), "width": width, "height": height,
        })
    annotations.sort(key=lambda a: (str(a["image_path"]), LEVEL_TO_IDX[str(a["level"])], str(a["point"])))
    return annotations, outcomes


def commit(
    config: IVDDatasetConfig, staging: Path, annotations: list[dict[str, object]], used: set[str],
    outcomes: dict[str, Outcome], rejects: Rejects, report: IVDDatasetReport,
) -> None:
    """Replace the dataset: staged images moved in, images no annotation uses removed, both tables written."""
    images_dir = config.output_path / fmt.IMAGES_FOLDER
    images_dir.mkdir(exist_ok=True)
    for name in sorted(used):
        outcome = outcomes[name]
        if not isinstance(outcome, str) and outcome[2]:
            (staging / name).replace(images_dir / name)
    report.images_removed = remove_orphans(images_dir, used)
    write_records_csv(annotations, config.annotations_path, columns=fmt.ANNOTATION_COLUMNS)
    write_records_csv(rejects.rows, config.rejects_path, columns=fmt.REJECT_COLUMNS)


def no_annotation_error(config: IVDDatasetConfig, inputs: BuildInputs, rejects: Rejects) -> TabularDataError:
    """The error of a build whose rows all failed: the files, the reasons and the first rejected row."""
    files = [t.path for t in inputs.tables.values()]
    read = sum(len(t.rows) for t in inputs.tables.values())
    reasons = ", ".join(f"{reason} {n}" for reason, n in rejects.counts().items()) or "none"
    left_out = ", ".join(f"{reason} {n}" for reason, n in sorted(rejects.excluded.items())) or "none"
    cause = (f"no coordinate row gave an annotation ({read} rows in {', '.join(p.name for p in files)}; "
             f"rejected: {reasons}; left out: {left_out})")
    if rejects.rows:
        first = rejects.rows[0]
        detail = f" {first['detail']}" if first["detail"] else ""
        cause += f"; first rejected: {first['file']}:{first['line']} {first['reason']}{detail}"
    cause += "; any previous dataset is left as it was"
    return TabularDataError(files[0] if len(files) == 1 else config.base_path, cause)


def main(config: IVDDatasetConfig) -> IVDDatasetReport:
    """The seed's entry point: build the dataset."""
    return build_ivd_coords(config)


def report_lines(report: IVDDatasetReport) -> list[str]:
    """The report as aligned text lines (the CLI prints them)."""
    return [f"{key:<34} {value}" for key, value in report.as_metadata().items()] + [
        f"{'dataset':<34} {report.output_path}", "", report.counts_table(),
    ]
