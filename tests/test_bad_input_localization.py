"""Bad input to `spine-vision dataset localization`: each ends in a clear error or a reject, never a traceback.

A structurally broken input (a table without a required column or without rows, a binary file, an output path
that is a file) fails before anything of the previous dataset is touched; a bad row is a row of rejects.csv and
the build carries on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from loguru import logger

from spine_lib.datasets.ivd_coords import IVDDatasetConfig, IVDDatasetReport, build_ivd_coords
from spine_lib.datasets.ivd_coords.images import ImageTask, convert_image
from spine_lib.errors import ConfigError, InputPathError, SpineVisionError, TabularDataError
from spine_lib.io.atomic import is_temporary
from spine_lib.io.records import read_csv_text
from spine_lib.io.tabular import load_tabular_data
from spine_lib.sources.rsna import check_rsna_coordinates, describe_rsna
from tests.ivd_coords_support import make_rsna_root, read_csv, sagittal_rows, write_csv

COORDINATES = "raw/RSNA/train_label_coordinates.csv"
DESCRIPTIONS = "raw/RSNA/train_series_descriptions.csv"
IMPROVED = "raw/Lumbar Coords/coords_rsna_improved.csv"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"

Snapshot = dict[str, tuple[bytes, int] | None]


@pytest.fixture
def rsna_root(tmp_path: Path, synthetic_root: Path) -> Path:
    return make_rsna_root(synthetic_root, tmp_path / "data")


@pytest.fixture
def previous(rsna_root: Path) -> Snapshot:
    """A dataset built from the untouched input, as a snapshot to compare with after a broken run."""
    build(rsna_root)
    return snapshot(dataset(rsna_root))


def build(root: Path, **options: object) -> IVDDatasetReport:
    """The dataset from the rows as they are (the canal points not also placed on T1: one annotation per row)."""
    options.setdefault("canal_points_on_t1", False)
    return build_ivd_coords(IVDDatasetConfig(base_path=root, workers=1, **options))  # type: ignore[arg-type]


def dataset(root: Path) -> Path:
    return root / "processed" / "ivd_coords"


def snapshot(folder: Path, times: bool = True) -> Snapshot:
    """Every file (with its bytes and modification time) and folder under ``folder``, hidden ones included."""
    out: Snapshot = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = (path.read_bytes(), path.stat().st_mtime_ns if times else 0) if path.is_file() else None
    return out


def drop_column(path: Path, column: str) -> None:
    rows = read_csv(path)
    write_csv(path, [{k: v for k, v in r.items() if k != column} for r in rows])


def to_stderr(message: object) -> None:
    """A console sink that finds the current stderr at each message (pytest swaps it per test)."""
    sys.stderr.write(str(message))


def cli(root: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    """Run `spine-vision dataset localization`; return its exit status and what it wrote to stderr."""
    from spine_lib.cli import main

    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["dataset", "localization", "--base-path", str(root), "--workers", "1", *flags])
    finally:  # the command's console sink writes to this test's captured stderr, closed after it
        logger.remove()
        logger.add(to_stderr, level="INFO")
    return int(exit_info.value.code or 0), capsys.readouterr().err


# --- structurally broken input: a clear error, the previous dataset byte for byte as it was ---------------------


@pytest.mark.parametrize("column", ["x", "instance_number", "condition"])
def test_missing_column_fails_before_the_previous_dataset_is_touched(
    rsna_root: Path, previous: Snapshot, column: str
) -> None:
    drop_column(rsna_root / COORDINATES, column)
    with pytest.raises(TabularDataError) as error:
        build(rsna_root)
    assert error.value.subject == rsna_root / COORDINATES
    assert error.value.cause.startswith(f"missing column(s) {column} (found: study_id,")
    assert snapshot(dataset(rsna_root)) == previous


def test_missing_column_exits_2_with_one_line_naming_file_and_column(
    rsna_root: Path, previous: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    drop_column(rsna_root / COORDINATES, "x")
    status, err = cli(rsna_root, capsys)
    assert status == 2
    assert f"TabularDataError: {rsna_root / COORDINATES}: missing column(s) x" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert snapshot(dataset(rsna_root)) == previous


def test_header_only_table_fails_and_keeps_the_previous_dataset(rsna_root: Path, previous: Snapshot) -> None:
    path = rsna_root / COORDINATES
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(TabularDataError, match=r"train_label_coordinates\.csv: no coordinate rows \(only a header"):
        build(rsna_root)
    assert snapshot(dataset(rsna_root)) == previous


def test_empty_file_fails_and_keeps_the_previous_dataset(rsna_root: Path, previous: Snapshot) -> None:
    (rsna_root / COORDINATES).write_bytes(b"")
    with pytest.raises(TabularDataError, match=r"train_label_coordinates\.csv: empty file: no header row"):
        build(rsna_root)
    assert snapshot(dataset(rsna_root)) == previous


def test_binary_file_named_csv_is_not_a_csv_text_table(
    rsna_root: Path, previous: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    (rsna_root / COORDINATES).write_bytes(PNG_BYTES * 50)
    status, err = cli(rsna_root, capsys)
    assert status == 2 and "Traceback" not in err
    assert f"{rsna_root / COORDINATES}: not a CSV text table (binary content)" in err
    assert snapshot(dataset(rsna_root)) == previous


def test_latin1_table_is_read_with_a_warning_and_gives_the_same_dataset(rsna_root: Path, previous: Snapshot) -> None:
    path = rsna_root / COORDINATES
    rows, sagittal = read_csv(path), len(sagittal_rows(rsna_root))
    write_csv(path, [{**r, "note": "dégénéré"} for r in rows])
    text = path.read_text(encoding="utf-8")
    path.write_bytes(text.encode("latin-1"))
    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(str(message)), level="WARNING", format="{message}")
    try:
        report = build(rsna_root)
    finally:
        logger.remove(sink)
    assert report.encodings == {"train_label_coordinates.csv": "cp1252"}
    assert report.as_metadata()["encoding_train_label_coordinates.csv"] == "cp1252"
    assert warnings == [f"train_label_coordinates.csv: not UTF-8 (byte {text.index('é')}); read as cp1252\n"]
    assert report.annotations == sagittal and report.skipped == {}
    assert (dataset(rsna_root) / "annotations.csv").read_bytes() == previous["annotations.csv"][0]  # type: ignore[index]


def test_improved_table_without_point_columns_names_both_pairs(rsna_root: Path, previous: Snapshot) -> None:
    rows = [{k: v for k, v in r.items() if k not in ("x", "y")} for r in read_csv(rsna_root / COORDINATES)[:3]]
    write_csv(rsna_root / IMPROVED, [{**r, "side": "R"} for r in rows])
    with pytest.raises(TabularDataError) as error:
        build(rsna_root)
    assert error.value.subject == rsna_root / IMPROVED
    assert error.value.cause.startswith("missing column(s) x/y or relative_x/relative_y (found: study_id,")
    assert snapshot(dataset(rsna_root)) == previous


def test_a_column_named_twice_is_an_error(rsna_root: Path, previous: Snapshot) -> None:
    path = rsna_root / COORDINATES
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0] + ",x", *(line + ",1" for line in lines[1:])]) + "\n", encoding="utf-8")
    with pytest.raises(TabularDataError, match=r"train_label_coordinates\.csv: column\(s\) x appear twice"):
        build(rsna_root)
    assert snapshot(dataset(rsna_root)) == previous


def test_header_only_series_descriptions_fail_before_any_row_is_used(rsna_root: Path, previous: Snapshot) -> None:
    (rsna_root / DESCRIPTIONS).write_text("study_id,series_id,series_description\n", encoding="utf-8")
    with pytest.raises(TabularDataError, match=r"train_series_descriptions\.csv: no rows \(header only\)"):
        build(rsna_root)
    assert snapshot(dataset(rsna_root)) == previous


def test_missing_dicom_folder_is_an_error_not_a_dataset_of_rejects(rsna_root: Path, previous: Snapshot) -> None:
    (rsna_root / "raw/RSNA/train_images").unlink()  # the fixture's link to the shared DICOM files
    with pytest.raises(InputPathError, match=r"RSNA/train_images: DICOM folder does not exist"):
        build(rsna_root)
    assert snapshot(dataset(rsna_root)) == previous


def test_rows_that_all_fail_leave_the_previous_dataset_and_say_why(rsna_root: Path, previous: Snapshot) -> None:
    path = rsna_root / COORDINATES
    write_csv(path, [{**r, "instance_number": "999"} for r in read_csv(path)])
    with pytest.raises(TabularDataError) as error:
        build(rsna_root)
    sagittal = len(sagittal_rows(rsna_root))
    assert error.value.subject == path
    assert error.value.cause.startswith(f"no coordinate row gave an annotation ({len(read_csv(path))} rows in "
                                        f"train_label_coordinates.csv; rejected: missing_dicom {sagittal}; "
                                        f"left out: axial_condition ")
    assert "first rejected: train_label_coordinates.csv:2 missing_dicom" in error.value.cause
    assert snapshot(dataset(rsna_root)) == previous  # no staging folder, no new image left behind


def test_a_failed_first_build_leaves_no_dataset_folder(rsna_root: Path) -> None:
    path = rsna_root / COORDINATES
    write_csv(path, [{**r, "x": "-5"} for r in read_csv(path)])
    with pytest.raises(TabularDataError, match="rejected: point_outside"):
        build(rsna_root)
    assert not dataset(rsna_root).exists()


# --- output paths of the wrong kind ---------------------------------------------------------------------------


@pytest.mark.parametrize("blocker", ["processed/ivd_coords", "processed", "processed/ivd_coords/images"])
def test_a_file_where_a_folder_belongs_is_named_and_nothing_is_touched(
    rsna_root: Path, capsys: pytest.CaptureFixture[str], blocker: str
) -> None:
    (rsna_root / blocker).parent.mkdir(parents=True, exist_ok=True)
    (rsna_root / blocker).write_bytes(b"not a folder")
    before = snapshot(rsna_root / "processed") if (rsna_root / "processed").is_dir() else {}
    status, err = cli(rsna_root, capsys)
    assert status == 2 and "Traceback" not in err
    assert f"InputPathError: {rsna_root / blocker}: is a file, expected a folder" in err
    assert (rsna_root / blocker).read_bytes() == b"not a folder"
    assert (snapshot(rsna_root / "processed") if (rsna_root / "processed").is_dir() else {}) == before


def test_a_folder_where_annotations_belong_is_named(rsna_root: Path, previous: Snapshot) -> None:
    annotations = dataset(rsna_root) / "annotations.csv"
    annotations.unlink()
    annotations.mkdir()
    kept = snapshot(dataset(rsna_root))
    with pytest.raises(InputPathError, match=r"ivd_coords/annotations\.csv: is a folder, expected a file"):
        build(rsna_root)
    assert snapshot(dataset(rsna_root)) == kept


@pytest.mark.parametrize("name", ["../escaped", "/absolute", "a/b", ".."])
def test_output_name_must_be_a_folder_name(rsna_root: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="must be a folder name"):
        build(rsna_root, output_name=name)
    assert not (rsna_root / "escaped").exists() and not (rsna_root / "processed").exists()


# --- bad rows: rejects with a reason, the rest carries on -----------------------------------------------------


def test_every_bad_row_is_a_reject_and_every_row_is_accounted_for(rsna_root: Path) -> None:
    path = rsna_root / COORDINATES
    rows = read_csv(path)
    sagittal = len(sagittal_rows(rsna_root))
    canal = [n for n, r in enumerate(rows) if r["condition"] == "Spinal Canal Stenosis"]
    foramen = [n for n, r in enumerate(rows) if "Foraminal" in r["condition"]]
    broken = {  # row index -> (column, value, reason)
        canal[0]: ("x", "abc", "bad_coordinate"),
        canal[1]: ("y", "-3", "point_outside"),
        canal[2]: ("study_id", "not-an-id", "unknown_series_type"),
        foramen[0]: ("level", "", "unknown_level"),
        foramen[1]: ("instance_number", "2.5", "invalid_instance"),
        foramen[2]: ("condition", "", "unknown_condition"),
    }
    for n, (column, value, _) in broken.items():
        rows[n][column] = value
    write_csv(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    short, duplicate = canal[3], canal[4]
    lines[short + 1] = ",".join(lines[short + 1].split(",")[:5])  # a truncated row: 5 cells of 7
    lines.append(lines[duplicate + 1])  # a row given twice
    lines.append(lines[foramen[3] + 1] + ",extra")  # a row with a cell too many
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = build(rsna_root)
    rejects = read_csv(dataset(rsna_root) / "rejects.csv")
    expected = {(n + 2, reason) for n, (_, _, reason) in broken.items()}
    expected |= {(short + 2, "malformed_row"), (len(lines) - 1, "duplicate_point"), (len(lines), "malformed_row")}
    assert {(int(r["line"]), r["reason"]) for r in rejects} == expected
    assert {r["detail"] for r in rejects if r["reason"] == "malformed_row"} == {"5 cells for 7 columns",
                                                                               "8 cells for 7 columns"}
    assert report.annotations == sagittal - len(broken) - 1  # the truncated row; the appended rows add none
    assert report.annotations == len(read_csv(dataset(rsna_root) / "annotations.csv"))
    assert sum(report.rows_read.values()) == len(lines) - 1
    assert sum(report.rows_read.values()) == report.annotations + len(rejects) + sum(report.excluded.values())


def test_a_corrupt_image_of_the_previous_dataset_is_rewritten_not_rejected(rsna_root: Path, previous: Snapshot) -> None:
    image = sorted((dataset(rsna_root) / "images").glob("*.png"))[0]
    image.write_bytes(b"truncated")  # newer than its DICOM, so it would be reused as it is
    report = build(rsna_root)
    assert report.skipped == {} and report.images_written == 1
    assert image.read_bytes() == previous[f"images/{image.name}"][0]  # type: ignore[index]


def test_unreadable_image_detail_carries_no_patient_name(tmp_path: Path) -> None:
    folder = tmp_path / "NGUYEN_VAN_SON_20250718"
    folder.mkdir()
    outcome = convert_image(ImageTask(tmp_path / "out.png", folder / "gone.npy", "picture"))
    assert isinstance(outcome, str) and outcome.startswith("FileNotFoundError")
    assert "NGUYEN" not in outcome and "phi-" in outcome


# --- temporaries ----------------------------------------------------------------------------------------------


def plant_temporaries(folder: Path) -> list[Path]:
    """What a build killed mid-write leaves: a half-written image and a staging folder of new images."""
    half = folder / "images" / f".rsna_1_2_3.{'a' * 32}.tmp.png"
    staging = folder / ".images.k3x9_q2z.tmp"
    staging.mkdir()
    (staging / "rsna_1_2_3.png").write_bytes(b"half")
    half.write_bytes(b"half")
    assert all(is_temporary(p) for p in (half, staging))
    return [half, staging]


def test_a_rerun_sweeps_the_temporaries_of_a_killed_build(rsna_root: Path, previous: Snapshot) -> None:
    planted = plant_temporaries(dataset(rsna_root))
    report = build(rsna_root)
    assert not any(p.exists() for p in planted) and report.images_removed == 0
    assert snapshot(dataset(rsna_root), times=False) == {k: v and (v[0], 0) for k, v in previous.items()}


def test_temporaries_are_swept_even_when_the_input_is_broken(rsna_root: Path, previous: Snapshot) -> None:
    planted = plant_temporaries(dataset(rsna_root))
    drop_column(rsna_root / COORDINATES, "y")
    with pytest.raises(SpineVisionError, match="missing column"):
        build(rsna_root)
    assert not any(p.exists() for p in planted)
    assert snapshot(dataset(rsna_root)) == previous


# --- the table reader other stages share ----------------------------------------------------------------------


def test_label_tables_in_latin1_are_read_and_binary_ones_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "a.csv").write_bytes("Patient ID,IVD label,Modic,Remarque\n250010139,1,0,dégénéré\n".encode("latin-1"))
    (folder / "b.csv").write_bytes(PNG_BYTES)
    tables = load_tabular_data(folder, missing="keep")
    assert tables.data.to_dict("records")[0]["remarque"] == "dégénéré"
    assert tables.rejected_files == {folder / "b.csv": "not a CSV text table (binary content)"}
    with pytest.raises(TabularDataError, match=r"b\.csv: not a CSV text table"):
        load_tabular_data(folder / "b.csv")


def test_csv_text_decodes_utf8_with_bom_and_utf16(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufefflevel\nL4/L5 é\n".encode())
    assert read_csv_text(path).text == "level\nL4/L5 é\n" and read_csv_text(path).is_utf8
    path.write_text("level\nL4/L5 é\n", encoding="utf-16")
    assert read_csv_text(path).text == "level\nL4/L5 é\n" and read_csv_text(path).encoding == "utf-16"
    with pytest.raises(InputPathError, match="is a folder, expected a CSV file"):
        read_csv_text(tmp_path)
    path.unlink()
    with pytest.raises(InputPathError, match="file does not exist"):
        read_csv_text(path)


def test_rsna_source_check_reports_a_broken_table_instead_of_crashing(rsna_root: Path) -> None:
    source = rsna_root / "raw/RSNA"
    path = source / "train_label_coordinates.csv"
    rows = read_csv(path)
    write_csv(path, [{**r, "note": "dégénéré"} for r in rows])
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    assert check_rsna_coordinates(source).passed and describe_rsna(source)["coordinate_rows"] == len(rows)
    drop_column(rsna_root / DESCRIPTIONS, "series_description")
    outcome = check_rsna_coordinates(source)
    assert outcome.problems == ["train_series_descriptions.csv: missing column(s) series_description"]
    path.write_bytes(PNG_BYTES)
    with pytest.raises(TabularDataError, match=r"train_label_coordinates\.csv: not a CSV text table"):
        describe_rsna(source)


def test_record_tables_in_latin1_are_read_and_binary_ones_refused(tmp_path: Path) -> None:
    from spine_lib.errors import TabularDataError
    from spine_lib.io.records import read_records_csv

    path = tmp_path / "radiological_gradings.csv"
    path.write_bytes("Patient,Note\n1,dégénéré\n".encode("latin-1"))
    assert read_records_csv(path, required=["Patient"]) == [{"Patient": "1", "Note": "dégénéré"}]
    path.write_bytes(bytes(range(256)))
    with pytest.raises(TabularDataError, match="not a CSV text table"):
        read_records_csv(path)
