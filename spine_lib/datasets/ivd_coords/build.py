"""The job: coordinate rows read, resolved to images, images written, points checked, the dataset written."""

from __future__ import annotations

from collections import Counter

from loguru import logger

from spine_lib.datasets.ivd_coords.config import IVDDatasetConfig, IVDDatasetReport
from spine_lib.datasets.ivd_coords.images import ImageTask, convert_images, remove_orphans
from spine_lib.datasets.ivd_coords.read import PointRow, clean_id, parse_float, read_rows
from spine_lib.datasets.ivd_coords.resolve import (
    BAD_COORDINATE,
    DUPLICATE_POINT,
    POINT_OUTSIDE,
    REPLACED_BY_IMPROVED,
    UNKNOWN_LEVEL,
    UNREADABLE_IMAGE,
    Rejects,
    Resolved,
    resolve_pretrain_rows,
    resolve_rsna_rows,
)
from spine_lib.errors import ConfigError, InputPathError
from spine_lib.formats import ivd_coords as fmt
from spine_lib.io.records import write_records_csv
from spine_lib.levels import LEVEL_TO_IDX, check_level
from spine_lib.sources import lumbar_coords, rsna


def build_ivd_coords(config: IVDDatasetConfig) -> IVDDatasetReport:
    """Build ``<base>/processed/<output_name>/`` (images, annotations.csv, rejects.csv); return the counts."""
    rsna_csv = config.rsna_path / rsna.COORDINATES_FILE
    improved_csv = config.lumbar_coords_path / lumbar_coords.IMPROVED_FILE
    pretrain_csv = config.lumbar_coords_path / lumbar_coords.PRETRAIN_FILE
    present = [p for p in (rsna_csv, improved_csv, pretrain_csv) if p.is_file()]
    if not present:
        raise ConfigError(config.base_path, f"no coordinates found: neither {rsna_csv} nor {improved_csv} "
                                            f"nor {pretrain_csv} exists")
    if (rsna_csv.is_file() or improved_csv.is_file()) and not (config.rsna_path / rsna.DESCRIPTIONS_FILE).is_file():
        raise InputPathError(config.rsna_path / rsna.DESCRIPTIONS_FILE, "series descriptions file does not exist")
    report = IVDDatasetReport(output_path=str(config.output_path))
    rejects = Rejects()

    original = read_rows(rsna_csv, "rsna") if rsna_csv.is_file() else []
    improved = read_rows(improved_csv, "rsna_improved") if improved_csv.is_file() else []
    pretrain = read_rows(pretrain_csv, "pretrain") if pretrain_csv.is_file() else []
    report.rows_read = {p.name: n for p, n in ((rsna_csv, len(original)), (improved_csv, len(improved)),
                                                (pretrain_csv, len(pretrain))) if p.is_file()}

    def improved_key(row: PointRow) -> tuple[str | None, str | None, str, str]:
        return clean_id(row.study_id), clean_id(row.series_id), row.condition.strip().lower(), row.level.upper()

    covered = {improved_key(r) for r in improved}
    kept_original = []
    for row in original:
        if improved_key(row) in covered:
            rejects.exclude(REPLACED_BY_IMPROVED)
        else:
            kept_original.append(row)
    resolved = resolve_rsna_rows(kept_original + improved, config, rejects)
    pretrain_resolved, pictures = resolve_pretrain_rows(pretrain, config.lumbar_coords_path / lumbar_coords.DATA_FOLDER, rejects)
    resolved += pretrain_resolved

    # levels: a typo'd level is a reject; levels are spelt the one way afterwards
    with_level: list[tuple[Resolved, str]] = []
    for item in resolved:
        try:
            with_level.append((item, check_level(item.row.level)))
        except ValueError:
            rejects.reject(item.row, UNKNOWN_LEVEL)

    images_dir = config.output_path / fmt.IMAGES_FOLDER
    images_dir.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, ImageTask] = {}
    for item, _ in with_level:
        if item.image_name not in tasks:
            if item.row.source.startswith("pretrain"):
                tasks[item.image_name] = ImageTask(images_dir / item.image_name, pictures[item.image_name], "picture")
            else:
                path = rsna.dicom_path(config.rsna_path, item.study_id, item.series_id, item.instance_number)
                tasks[item.image_name] = ImageTask(images_dir / item.image_name, path, "dicom")
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
            rejects.reject(item.row, POINT_OUTSIDE)
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

    used = {str(a["image_path"]).removeprefix(fmt.image_entry("")) for a in annotations}
    for name, outcome in outcomes.items():
        if name not in used and not isinstance(outcome, str) and outcome[2]:
            (images_dir / name).unlink(missing_ok=True)  # written for rows that all failed later: not part of the set
    report.images_removed = remove_orphans(images_dir, used)
    write_records_csv(annotations, config.annotations_path, columns=fmt.ANNOTATION_COLUMNS)
    write_records_csv(rejects.rows, config.rejects_path, columns=fmt.REJECT_COLUMNS)

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


def point_in_pixels(row: PointRow, width: int, height: int) -> tuple[float | None, float | None]:
    """The row's point in pixels of its image: ``x``/``y`` when given, else ``relative_x * width`` ..."""
    x, y = parse_float(row.x), parse_float(row.y)
    if x is None or y is None:
        rx, ry = parse_float(row.relative_x), parse_float(row.relative_y)
        if rx is None or ry is None:
            return None, None
        x, y = rx * width, ry * height
    return x, y


def main(config: IVDDatasetConfig) -> IVDDatasetReport:
    """The seed's entry point: build the dataset."""
    return build_ivd_coords(config)


def report_lines(report: IVDDatasetReport) -> list[str]:
    """The report as aligned text lines (the CLI prints them)."""
    return [f"{key:<34} {value}" for key, value in report.as_metadata().items()] + [
        f"{'dataset':<34} {report.output_path}", "", report.counts_table(),
    ]
