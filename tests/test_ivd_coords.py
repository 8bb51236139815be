"""The IVD localization dataset built from the synthetic RSNA root, checked against the phantom's truth."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from spine_lib.datasets.ivd_coords import (
    IVDDatasetConfig,
    IVDDatasetReport,
    audit_dataset,
    build_ivd_coords,
)
from spine_lib.errors import ConfigError
from spine_lib.io.readers import read_dicom_series
from spine_lib.io.transforms import normalize_to_uint8
from spine_lib.levels import LEVELS
from spine_lib.synthetic.ivd_coords import build_synthetic_ivd_coords
from tests.ivd_coords_support import (
    make_rsna_root,
    physical_to_index,
    read_csv,
    sagittal_rows,
    series_by_id,
    write_csv,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> tuple[Path, IVDDatasetReport]:
    """The dataset built once from an untouched copy of the synthetic RSNA source."""
    root = make_rsna_root(synthetic_root, tmp_path_factory.mktemp("ivd") / "data")
    return root, build_ivd_coords(IVDDatasetConfig(base_path=root, workers=1))


@pytest.fixture
def rsna_root(tmp_path: Path, synthetic_root: Path) -> Path:
    return make_rsna_root(synthetic_root, tmp_path / "data")


def dataset(root: Path, name: str = "ivd_coords") -> Path:
    return root / "processed" / name


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, path
    return np.asarray(image)


def test_counts_equal_the_sagittal_coordinate_rows(built: tuple[Path, IVDDatasetReport]) -> None:
    root, report = built
    rows = sagittal_rows(root)
    all_rows = read_csv(root / "raw/RSNA/train_label_coordinates.csv")
    canal = [r for r in rows if r["condition"] == "Spinal Canal Stenosis"]
    instances = {(r["study_id"], r["series_id"], r["instance_number"]) for r in rows}
    # every canal point is also placed on its study's one Sagittal T1 series, on the mid-sagittal slice
    t1_mid = {(r["study_id"], r["instance_number"]) for r in read_csv(dataset(root) / "annotations.csv")
              if r["series_type"] == "sag_t1" and r["point"] == "canal"}
    assert len(t1_mid) == report.studies
    assert report.annotations == len(rows) + len(canal) == len(read_csv(dataset(root) / "annotations.csv"))
    assert report.images == len(instances) + len(t1_mid) == len(list((dataset(root) / "images").glob("*.png")))
    assert report.studies == len({r["study_id"] for r in rows})
    assert report.by_series_type == {"sag_t1": len(rows), "sag_t2": len(canal)}
    assert report.by_level == dict(Counter(r["level"] for r in rows + canal))
    assert report.by_source == {"rsna": len(rows) + len(canal)}
    assert report.skipped == {} and read_csv(dataset(root) / "rejects.csv") == []
    assert report.excluded == {"axial_condition": len(all_rows) - len(rows)}
    meta = report.as_metadata()
    assert meta["series_sag_t2"] == len(canal) and meta["level_L4/L5"] == report.by_level["L4/L5"]


def test_canal_points_land_on_their_disc(built: tuple[Path, IVDDatasetReport]) -> None:
    """Each Sagittal T2 point is the truth's canal point of its level, and the disc of that level is the
    nearest disc: in the saved image's pixels."""
    root, _ = built
    truth = series_by_id(root)
    rows = [r for r in read_csv(dataset(root) / "annotations.csv") if r["series_type"] == "sag_t2"]
    assert len(rows) == 5 * len({r["study_id"] for r in rows})
    for row in rows:
        series = truth[row["series_id"]]
        image = read_png(dataset(root) / row["image_path"])
        height, width = image.shape
        assert (width, height) == tuple(series["size"][:2])
        x, y = float(row["relative_x"]) * width, float(row["relative_y"]) * height
        i, j, k = series["canal_point_index"][row["level"]]
        assert abs(x - i) < 0.01 and abs(y - j) < 0.01
        assert int(row["instance_number"]) == round(k) + 1
        centres = {level: np.array(series["disc_center_index"][level][:2]) for level in LEVELS}
        nearest = min(LEVELS, key=lambda level: float(np.linalg.norm(centres[level] - (x, y))))
        assert nearest == row["level"]
        # the disc centre lies anterior to the canal point (columns run posterior), on the same disc
        assert centres[row["level"]][0] < x


def test_foramen_points_land_in_their_foramen(built: tuple[Path, IVDDatasetReport]) -> None:
    root, _ = built
    truth = series_by_id(root)
    rows = [r for r in read_csv(dataset(root) / "annotations.csv") if r["point"].startswith("foramen")]
    assert {r["series_type"] for r in rows} == {"sag_t1"}
    assert Counter(r["point"] for r in rows) == {"foramen_left": len(rows) // 2, "foramen_right": len(rows) // 2}
    for row in rows:
        series = truth[row["series_id"]]
        disc = next(d for d in series["discs"] if d["level"] == row["level"])
        side = row["point"].removeprefix("foramen_")
        i, j, k = physical_to_index(series, disc[f"foramen_{side}_mm"])
        width, height = int(row["width"]), int(row["height"])
        assert abs(float(row["relative_x"]) * width - i) < 0.01
        assert abs(float(row["relative_y"]) * height - j) < 0.01
        assert int(row["instance_number"]) == round(k) + 1  # the parasagittal slice through that foramen


def test_canal_points_are_placed_on_the_mid_sagittal_t1_slice(built: tuple[Path, IVDDatasetReport]) -> None:
    """A Sagittal T2 canal point moved to the study's Sagittal T1 series through the DICOM geometry lands on the
    truth's canal point of that series (the same pixel: the sagittal planes are parallel), on the T1 slice
    nearest to where the T2 annotation lies (its T2 slice, up to half a slice off the midline)."""
    root, report = built
    truth = series_by_id(root)
    annotations = read_csv(dataset(root) / "annotations.csv")
    rows = [r for r in annotations if r["series_type"] == "sag_t1" and r["point"] == "canal"]
    t2 = {(r["study_id"], r["level"]): r for r in annotations if r["series_type"] == "sag_t2"}
    sagittal = sagittal_rows(root)
    canal = [r for r in sagittal if r["condition"] == "Spinal Canal Stenosis"]
    assert len(rows) == len(canal) == len(t2) and report.studies >= 3
    assert report.annotations == len(sagittal) + len(canal)
    assert report.by_series_type == {"sag_t1": len(sagittal), "sag_t2": len(canal)}
    for row in rows:
        series = truth[row["series_id"]]
        assert series["description"] == "Sagittal T1"
        disc = next(d for d in series["discs"] if d["level"] == row["level"])
        i, j, _ = physical_to_index(series, disc["canal_point_mm"])
        assert abs(float(row["x"]) - i) < 0.01 and abs(float(row["y"]) - j) < 0.01
        source = t2[(row["study_id"], row["level"])]
        t2_series = truth[source["series_id"]]
        index = np.array([float(source["x"]), float(source["y"]), int(source["instance_number"]) - 1])
        direction = np.array(t2_series["direction"], dtype=float).reshape(3, 3)
        annotated = np.array(t2_series["origin"]) + direction @ (index * np.array(t2_series["spacing"]))
        k = physical_to_index(series, list(annotated))[2]
        assert int(row["instance_number"]) == round(k) + 1
        assert row["source"] == "rsna"


def test_canal_points_stay_on_t2_when_asked(rsna_root: Path) -> None:
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, workers=1, canal_points_on_t1=False))
    assert not [r for r in read_csv(dataset(rsna_root) / "annotations.csv")
                if r["series_type"] == "sag_t1" and r["point"] == "canal"]
    assert report.annotations == len(sagittal_rows(rsna_root))


def test_canal_points_not_placed_on_t1_are_counted(rsna_root: Path) -> None:
    """A study without a Sagittal T1 series, one whose T1 headers lack their geometry, one whose T1 slab does not
    reach the midline, and a broken T2 point: the canal points stay on T2 (or are rejected), each one that is
    not placed counted by reason, none rejected twice."""
    descriptions = read_csv(rsna_root / "raw/RSNA/train_series_descriptions.csv")
    t1 = [r for r in descriptions if r["series_description"] == "Sagittal T1"]
    no_t1, broken, shifted = t1[0], t1[1], t1[2]
    write_csv(rsna_root / "raw/RSNA/train_series_descriptions.csv", [r for r in descriptions if r is not no_t1])
    # the foramen rows of the study whose T1 series is no longer described would be rejects: drop them
    coordinates = read_csv(rsna_root / "raw/RSNA/train_label_coordinates.csv")
    coordinates = [r for r in coordinates if r["series_id"] != no_t1["series_id"]]
    outside = next(r for r in coordinates if r["condition"] == "Spinal Canal Stenosis")
    outside["x"] = "500.0"
    write_csv(rsna_root / "raw/RSNA/train_label_coordinates.csv", coordinates)
    images = rsna_root / "raw/RSNA/train_images"
    shared = images.resolve()
    images.unlink()  # a private copy of the DICOM folders, some of them edited
    shutil.copytree(shared, images)
    for path in sorted((images / broken["study_id"] / broken["series_id"]).glob("*.dcm")):
        ds = pydicom.dcmread(path)
        del ds.ImageOrientationPatient
        ds.save_as(path)
    for path in sorted((images / shifted["study_id"] / shifted["series_id"]).glob("*.dcm")):
        ds = pydicom.dcmread(path)
        position = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [position[0] + 200.0, *position[1:]]  # the whole slab 200 mm to the side
        ds.save_as(path)
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, include_neural_foraminal=False, workers=1,
                                               canal_points_on_t1=True))
    rows = read_csv(dataset(rsna_root) / "annotations.csv")
    placed = {r["study_id"] for r in rows if r["series_type"] == "sag_t1"}
    assert placed.isdisjoint({no_t1["study_id"], broken["study_id"], shifted["study_id"]})
    assert len(placed) == len({r["study_id"] for r in t1}) - 3
    assert report.skipped == {"point_outside": 1}  # the broken T2 point: one reject, not transferred
    outside_study = {no_t1["study_id"]: "canal_t1_no_series", broken["study_id"]: "canal_t1_unreadable_geometry",
                     shifted["study_id"]: "canal_t1_outside_slab"}
    for study, reason in outside_study.items():
        assert report.excluded[reason] == 5 - (study == outside["study_id"])
    assert report.by_series_type.get("sag_t1", 0) == 5 * len(placed)
    assert report.by_series_type["sag_t2"] == 5 * len({r["study_id"] for r in descriptions}) - 1


def test_saved_image_is_the_labelled_instance(built: tuple[Path, IVDDatasetReport]) -> None:
    """The PNG holds slice ``instance - 1`` of the series volume (so the truth's voxel index applies to it)."""
    root, _ = built
    rows = read_csv(dataset(root) / "annotations.csv")
    for image_path in sorted({r["image_path"] for r in rows})[:4]:
        row = next(r for r in rows if r["image_path"] == image_path)
        volume = sitk.GetArrayFromImage(read_dicom_series(root / "raw/RSNA/train_images" / row["study_id"] / row["series_id"]))
        expected = normalize_to_uint8(volume[int(row["instance_number"]) - 1], percentiles=(0.5, 99.5))
        saved = read_png(dataset(root) / image_path)
        assert saved.dtype == np.uint8 and np.array_equal(saved, expected)
        assert "rsna_" + "_".join((row["study_id"], row["series_id"], row["instance_number"])) in image_path


def test_bad_rows_are_skipped_counted_and_listed(rsna_root: Path) -> None:
    path = rsna_root / "raw/RSNA/train_label_coordinates.csv"
    rows = read_csv(path)
    canal = [n for n, r in enumerate(rows) if r["condition"] == "Spinal Canal Stenosis"]
    foramen = [n for n, r in enumerate(rows) if "Foraminal" in r["condition"]]
    broken = {
        canal[0]: ("instance_number", "999", "missing_dicom"),
        canal[1]: ("instance_number", "-1", "invalid_instance"),
        canal[2]: ("x", "500.0", "point_outside"),
        foramen[0]: ("series_id", "123456", "unknown_series_type"),
        foramen[1]: ("level", "L6/L7", "unknown_level"),
        foramen[2]: ("y", "nan", "bad_coordinate"),
        foramen[3]: ("condition", "Cervical Stenosis", "unknown_condition"),
    }
    for n, (column, value, _) in broken.items():
        rows[n][column] = value
    write_csv(path, rows)
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, workers=1))
    assert report.skipped == {reason: 1 for _, _, reason in broken.values()}
    # the canal points that passed are placed on T1 too; a rejected one is not (no second reject, no count)
    assert report.annotations == len(sagittal_rows(rsna_root)) - len(broken) + len(canal) - 3
    assert not any(reason.startswith("canal_t1") for reason in report.excluded)
    rejects = read_csv(dataset(rsna_root) / "rejects.csv")
    assert {(int(r["line"]), r["reason"]) for r in rejects} == {(n + 2, reason) for n, (_, _, reason) in broken.items()}
    assert audit_dataset(dataset(rsna_root)).rejected == len(broken)
    assert not audit_dataset(dataset(rsna_root)).points_outside


def test_unreadable_and_deleted_dicom_files_are_rejects(rsna_root: Path) -> None:
    images = rsna_root / "raw/RSNA/train_images"
    linked = images.resolve()
    images.unlink()
    shutil.copytree(linked, images)  # a private copy to break
    canal = [r for r in sagittal_rows(rsna_root) if r["condition"] == "Spinal Canal Stenosis"]
    broken, gone = canal[0], next(r for r in canal if r["study_id"] != canal[0]["study_id"])
    (images / broken["study_id"] / broken["series_id"] / f"{broken['instance_number']}.dcm").write_bytes(b"DICM?" * 10)
    (images / gone["study_id"] / gone["series_id"] / f"{gone['instance_number']}.dcm").unlink()
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, workers=1))
    assert report.skipped == {"unreadable_image": 5, "missing_dicom": 5}  # five levels on each instance
    # the canal points of the intact T2 instances are placed on T1 too; the broken one's are its rejects alone
    assert report.annotations == len(sagittal_rows(rsna_root)) - 10 + len(canal) - 10
    assert not any(reason.startswith("canal_t1") for reason in report.excluded)
    rejects = read_csv(dataset(rsna_root) / "rejects.csv")
    assert all(r["detail"] for r in rejects if r["reason"] == "unreadable_image")
    assert not list((dataset(rsna_root) / "images").glob(f"rsna_{broken['study_id']}_{broken['series_id']}_*"))


def test_invalid_instance_takes_the_sibling_instance_when_asked(rsna_root: Path) -> None:
    path = rsna_root / "raw/RSNA/train_label_coordinates.csv"
    rows = read_csv(path)
    n = next(n for n, r in enumerate(rows) if r["condition"] == "Spinal Canal Stenosis" and r["level"] == "L3/L4")
    expected = rows[n]["instance_number"]
    rows[n]["instance_number"] = "-1"
    write_csv(path, rows)
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, skip_invalid_instances=False, workers=1))
    assert report.skipped == {}
    annotations = read_csv(dataset(rsna_root) / "annotations.csv")
    match = [a for a in annotations if a["series_id"] == rows[n]["series_id"] and a["level"] == "L3/L4"]
    assert len(match) == 1 and match[0]["instance_number"] == expected
    assert float(match[0]["x"]) == pytest.approx(float(rows[n]["x"]), abs=1e-3)


def test_condition_flags_leave_points_out(rsna_root: Path) -> None:
    rows = sagittal_rows(rsna_root)
    canal = sum(r["condition"] == "Spinal Canal Stenosis" for r in rows)
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, include_neural_foraminal=False, workers=1,
                                               output_name="canal_only"))
    assert report.by_series_type == {"sag_t2": canal, "sag_t1": canal}  # the canal points placed on T1 too
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, include_neural_foraminal=False, workers=1,
                                               canal_points_on_t1=False, output_name="canal_t2_only"))
    assert report.by_series_type == {"sag_t2": canal}
    assert report.excluded["neural_foraminal_excluded"] == len(rows) - canal
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, include_spinal_canal=False, workers=1,
                                               output_name="foramina_only"))
    assert report.by_series_type == {"sag_t1": len(rows) - canal}
    assert report.excluded["spinal_canal_excluded"] == canal


def test_rerun_is_idempotent_and_removes_stale_images(
    rsna_root: Path, built: tuple[Path, IVDDatasetReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("spine_lib.datasets.ivd_coords.images.PARALLEL_MIN_IMAGES", 1)  # two worker processes
    config = IVDDatasetConfig(base_path=rsna_root, workers=2)
    first = build_ivd_coords(config)
    annotations = (dataset(rsna_root) / "annotations.csv").read_bytes()
    serial = dataset(built[0])
    assert annotations == (serial / "annotations.csv").read_bytes()  # same as the one-process build
    for png in sorted((serial / "images").glob("*.png"))[:3]:
        assert (dataset(rsna_root) / "images" / png.name).read_bytes() == png.read_bytes()
    stale = dataset(rsna_root) / "images" / "rsna_1_2_3.png"
    stale.write_bytes(b"left over")
    second = build_ivd_coords(config)
    assert (dataset(rsna_root) / "annotations.csv").read_bytes() == annotations
    assert first.images_written == first.images and second.images_reused == second.images == first.images
    assert second.images_removed == 1 and not stale.exists()
    assert sorted(p.name for p in dataset(rsna_root).iterdir()) == ["annotations.csv", "images", "rejects.csv"]
    assert not [p for p in (dataset(rsna_root) / "images").iterdir() if p.name.startswith(".")]


def test_improved_coordinates_replace_the_rsna_points(rsna_root: Path) -> None:
    rows = read_csv(rsna_root / "raw/RSNA/train_label_coordinates.csv")
    study = rows[0]["study_id"]
    canal = [r for r in rows if r["study_id"] == study and r["condition"] == "Spinal Canal Stenosis"]
    improved = []
    for index, row in enumerate(canal):
        for side, shift in (("R", 1.5), ("L", -1.5)):
            improved.append({"": len(improved), **row, "x": float(row["x"]) + shift, "side": side,
                             "instance_number": row["instance_number"] if index else "-1"})
    write_csv(rsna_root / "raw/Lumbar Coords/coords_rsna_improved.csv", improved)
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, workers=1, canal_points_on_t1=False))
    assert report.excluded["replaced_by_improved"] == len(canal)
    assert report.excluded["canal_second_side"] == len(canal)
    assert report.skipped == {"invalid_instance": 1}  # the improved row with instance -1
    assert report.by_source == {"rsna": len(sagittal_rows(rsna_root)) - len(canal), "rsna_improved": len(canal) - 1}
    annotations = [a for a in read_csv(dataset(rsna_root) / "annotations.csv") if a["source"] == "rsna_improved"]
    by_level = {r["level"]: float(r["x"]) for r in canal}
    for a in annotations:
        assert float(a["x"]) == pytest.approx(by_level[a["level"]] + 1.5, abs=1e-3)  # side R, shifted


def test_pretraining_coordinates_add_their_images(rsna_root: Path, synthetic_root: Path) -> None:
    """coords_pretrain.csv rows with relative points on their own pictures (here: a synthetic SPIDER slice)."""
    truth = series_by_id(rsna_root)
    sag_t2 = next(s for s in truth.values() if s["kind"] == "sag_t2")
    volume = sitk.GetArrayFromImage(read_dicom_series(rsna_root / "raw/RSNA/train_images" / sag_t2["study_id"]
                                                      / str(sag_t2["series_id"])))
    k = round(sag_t2["canal_point_index"]["L3/L4"][2])
    picture = normalize_to_uint8(volume[k])
    lumbar = rsna_root / "raw/Lumbar Coords"
    (lumbar / "data/processed_spider_jpgs").mkdir(parents=True)
    cv2.imwrite(str(lumbar / "data/processed_spider_jpgs/7_t2.jpg"), picture)
    height, width = picture.shape
    rows = [{"source": "spider", "filename": "7_t2.jpg", "level": level,
             "relative_x": sag_t2["canal_point_index"][level][0] / width,
             "relative_y": sag_t2["canal_point_index"][level][1] / height} for level in LEVELS]
    rows.append({"source": "mri-x", "filename": "7_t2.jpg", "level": "L1/L2", "relative_x": 0.5, "relative_y": 0.5})
    rows.append({"source": "spider", "filename": "8_t2.jpg", "level": "L1/L2", "relative_x": 0.5, "relative_y": 0.5})
    write_csv(lumbar / "coords_pretrain.csv", rows)
    report = build_ivd_coords(IVDDatasetConfig(base_path=rsna_root, workers=1))
    assert report.by_source["pretrain_spider"] == len(LEVELS)
    assert report.skipped == {"unknown_source": 1, "missing_image": 1}
    annotations = [a for a in read_csv(dataset(rsna_root) / "annotations.csv") if a["source"] == "pretrain_spider"]
    assert {a["image_path"] for a in annotations} == {"images/pretrain_spider_7_t2.png"}
    assert {a["study_id"] for a in annotations} == {"spider_7"} and {a["series_type"] for a in annotations} == {"sag_t2"}
    saved = read_png(dataset(rsna_root) / "images/pretrain_spider_7_t2.png")
    assert saved.shape == picture.shape
    for a in annotations:
        assert float(a["x"]) == pytest.approx(sag_t2["canal_point_index"][a["level"]][0], abs=1e-3)


def test_no_coordinates_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no coordinates found"):
        build_ivd_coords(IVDDatasetConfig(base_path=tmp_path))


def test_cli_builds_the_dataset(rsna_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spine_lib.cli import main

    main(["dataset", "localization", "--base-path", str(rsna_root), "--output-name", "from_cli", "--workers", "1"])
    out = capsys.readouterr().out
    rows = sagittal_rows(rsna_root)
    total = len(rows) + sum(r["condition"] == "Spinal Canal Stenosis" for r in rows)  # canal points on T1 too
    assert "annotations" in out and str(total) in out
    assert len(read_csv(dataset(rsna_root, "from_cli") / "annotations.csv")) == total
    shutil.rmtree(dataset(rsna_root, "from_cli"))


def test_synthetic_source_is_written_once_and_built(tmp_path: Path, rsna_root: Path) -> None:
    root = tmp_path / "synthetic"
    first = build_synthetic_ivd_coords(root, studies=2, size=96, slices=12, seed=3)
    assert first.studies == 2 and first.annotations == 2 * 20 and first.images_written == first.images
    dicom = next((root / "raw/RSNA/train_images").rglob("*.dcm"))
    stamp = dicom.stat().st_mtime_ns
    again = build_synthetic_ivd_coords(root, studies=2, size=96, slices=12, seed=3)
    assert dicom.stat().st_mtime_ns == stamp and again.images_reused == again.images
    with pytest.raises(ConfigError, match="not written by"):
        build_synthetic_ivd_coords(rsna_root, studies=2, size=96)
