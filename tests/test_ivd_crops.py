"""IVD crops against the synthetic truth: geometry, SPIDER bottom-up and Phenikaa top-down, rejects, reruns."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.classification import (
    ClassificationDatasetConfig,
    audit_crops,
    build_classification_dataset,
)
from spine_lib.datasets.classification.discs import find_sagittal_series
from spine_lib.inference.disc_crops import CropBox, crop_box, cut_crop, disc_point_from_mask
from spine_lib.inference.localization import (
    DiscLocalization,
    DiscLocalizer,
    DiscPoint,
    check_disc_points,
    search_order,
)
from spine_lib.inference.localization import mid_sagittal_slice as mid_slice
from spine_lib.io.sagittal import SagittalVolume, sagittal_volume
from spine_lib.labels.gradings import GRADING_COLUMNS
from spine_lib.levels import LEVELS, level_from_spider_ivd_label, phenikaa_ivd_label
from spine_lib.synthetic.crops import score_crops
from spine_lib.synthetic.truth import read_truth

GRADE_OF_TRUTH = {"pfirrmann_grade": "pfirrmann", "disc_herniation": "herniation", "disc_narrowing": "narrowing",
                  "disc_bulging": "bulging", "spondylolisthesis": "spondylolisthesis", "modic": "modic",
                  "up_endplate": "up_endplate", "low_endplate": "low_endplate"}


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_export(root: Path, synthetic: Path) -> dict[str, dict[str, Any]]:
    """The Phenikaa export (what ``phenikaa_patients`` writes) built from the truth: labels by patient ID and level
    (top-down IVD labels, Modic one-hot), and each patient's first study folder copied under its ID."""
    truth = read_truth(synthetic, "phenikaa")
    export = DataLayout(root=root).phenikaa_export
    rows = []
    patients = {}
    for patient in truth["patients"]:
        pid = patient["patient_id"]
        patients[pid] = patient
        shutil.copytree(synthetic / patient["image_folders"][0], export / "images" / pid)
        for disc in patient["discs"]:
            g = disc["grades"]
            row = {"patient_id": pid, "level": disc["level"], "ivd_label": phenikaa_ivd_label(disc["level"]),
                   **{c: g[GRADE_OF_TRUTH[c]] for c in GRADING_COLUMNS if c in GRADE_OF_TRUTH}}
            row.update({f"modic_{t}": int(g["modic"] == t) for t in (1, 2, 3)})
            row.pop("modic")
            rows.append(row)
    columns = ["patient_id", "level", "ivd_label", *[c for c in GRADING_COLUMNS if c not in ("ivd_label", "modic")],
               "modic_1", "modic_2", "modic_3"]
    with (export / "radiological_labels.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return patients


class TruthLocalizer(DiscLocalizer):
    """A localizer that answers with the truth's canal points (the series it sees are identified by origin)."""

    def __init__(self, synthetic: Path, shift_px: float = 0.0, order: list[str] | None = None,
                 guessed: list[str] | None = None) -> None:
        super().__init__(None)
        self.discs: dict[tuple[float, ...], dict[str, Any]] = {}
        for patient in read_truth(synthetic, "phenikaa")["patients"]:
            for series in patient["series"]:
                key = tuple(round(v, 2) for v in series["origin"])
                self.discs[key] = {d["level"]: d for d in patient["discs"]}
        self.shift_px, self.order, self.guessed = shift_px, order, guessed or []
        self.seen = 0
        self.read: list[tuple[float, ...]] = []  # the origins of the series localized, in order

    @property
    def name(self) -> str:
        return f"truth localizer {self.shift_px} {self.order}"

    def ensure_loaded(self) -> None:
        """Nothing to load."""

    def localize(self, volume: SagittalVolume, mask: sitk.Image | None = None) -> DiscLocalization:
        self.seen += 1
        self.read.append(tuple(round(v, 2) for v in volume.source.GetOrigin()))
        discs = self.discs[self.read[-1]]
        index = volume.centre_slice()
        levels = self.order or list(LEVELS)
        points = {}
        for level, source in zip(LEVELS, levels, strict=True):
            _, x, y = volume.to_pixel(discs[source]["canal_point_mm"])
            x += self.shift_px
            points[level] = DiscPoint(level, x, y, volume.to_physical(index, x, y))
        result = DiscLocalization(index, "centre", points, volume.pixel_spacing, volume.shape, run_id="truth-run",
                                  guessed=list(self.guessed))
        result.problems = check_disc_points(points, volume.shape, volume.pixel_spacing)
        result.plausible = not result.problems
        return result


@pytest.fixture(scope="module")
def crops_root(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """SPIDER at 256 x 256 (1.1 mm pixels, as the crops bench: the session root's 2.2 mm pixels leave a disc only a
    few pixels thick) and the session root's Phenikaa export."""
    from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root

    spider = tmp_path_factory.mktemp("crops_spider") / "data"
    make_synthetic_root(SynthConfig(out=spider, spider_patients=4, rsna_studies=1, phenikaa_patients=1, size=256,
                                    slices=12, seed=7))
    root = tmp_path_factory.mktemp("crops") / "data"
    shutil.copytree(spider / "raw/SPIDER", root / "raw/SPIDER")
    shutil.copytree(synthetic_root / "truth", root / "truth")
    shutil.copyfile(spider / "truth/spider.json", root / "truth/spider.json")
    patients = write_export(root, synthetic_root)
    return root, patients


@pytest.fixture(scope="module")
def built(crops_root: tuple[Path, dict[str, Any]], synthetic_root: Path) -> tuple[ClassificationDatasetConfig, Any]:
    root, _ = crops_root
    config = ClassificationDatasetConfig.for_layout(DataLayout(root=root, weights=root.parent / "weights"),
                                                    device="cpu")
    report = build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root))
    return config, report


# geometry -----------------------------------------------------------------------------------------------------
def tilted_disc(angle_degrees: float, spacing: tuple[float, float], protrusion: bool) -> tuple[np.ndarray, tuple]:
    """A label slice with one disc (value 203): a 40 x 10 mm rounded box tilted by ``angle``, its centre at
    (40 mm, 30 mm), optionally a 5 mm posterior protrusion at mid-height; and the true margin point (pixels)."""
    sx, sy = spacing
    rows, columns = int(60 / sy), int(90 / sx)
    yy, xx = np.mgrid[0:rows, 0:columns]
    u, v = xx * sx - 40.0, yy * sy - 30.0
    a = np.radians(angle_degrees)
    s, t = u * np.cos(a) + v * np.sin(a), -u * np.sin(a) + v * np.cos(a)
    labels = np.zeros((rows, columns), dtype=np.int16)
    labels[(s / 20.0) ** 4 + (t / 5.0) ** 4 <= 1.0] = 203
    if protrusion:
        labels[(((s - 20.0) / 5.0) ** 2 + (t / 2.5) ** 2 <= 1.0) & (s >= 19.0)] = 203
    margin = (40.0 + 20.0 * np.cos(a), 30.0 + 20.0 * np.sin(a))
    return labels, (margin[0] / sx, margin[1] / sy)


@pytest.mark.parametrize("angle", [0.0, 12.0, -25.0, 38.0])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.5), (0.8, 0.6)])
@pytest.mark.parametrize("protrusion", [False, True])
def test_disc_point_from_mask_is_the_posterior_margin(angle: float, spacing: tuple[float, float],
                                                      protrusion: bool) -> None:
    labels, (tx, ty) = tilted_disc(angle, spacing, protrusion)
    point = disc_point_from_mask(labels, 203, spacing)
    assert point is not None
    assert np.hypot(point[0] - tx, point[1] - ty) <= 1.0, (point, (tx, ty))


def test_disc_point_needs_the_disc_on_the_slice() -> None:
    labels = np.zeros((30, 30), dtype=np.int16)
    labels[10, 10:14] = 203  # four pixels: not a disc section
    assert disc_point_from_mask(labels, 203, (1.0, 1.0)) is None
    assert disc_point_from_mask(labels, 204, (1.0, 1.0)) is None


def test_crop_box_is_physical_and_the_crop_samples_it() -> None:
    box = crop_box((50.0, 40.0), (96, 32, 64, 64), (0.5, 1.0), crop_spacing=0.5)  # 48 mm before, 16 behind, 32 up
    assert box == CropBox(x0=50.0 - 96, y0=40.0 - 32, x1=50.0 + 32, y1=40.0 + 32)
    assert crop_box((50.0, 40.0), (10, 10, 5, 5), (0.5, 1.0), crop_spacing=None) == CropBox(40.0, 35.0, 60.0, 45.0)
    columns = np.tile(np.arange(100, dtype=np.float32), (80, 1))  # pixel value = its column
    crop = cut_crop(columns, CropBox(9.5, 19.5, 29.5, 29.5), (10, 20))  # 20 columns 10..29 into 20 pixels
    np.testing.assert_allclose(crop[0], np.arange(10, 30), atol=1e-4)
    outside = cut_crop(columns, CropBox(-30.5, 0.0, -10.5, 10.0), (4, 4))
    assert not outside.any()  # beyond the slice: nothing


def test_mid_sagittal_slice_follows_the_canal(volume: sitk.Image) -> None:
    image = sitk.Image([5, 16, 12], sitk.sitkInt16)  # LPS: 5 slices across the body
    view = sagittal_volume(image)
    mask = sitk.Image(image.GetSize(), sitk.sitkInt16)
    mask.CopyInformation(image)
    array = np.zeros((12, 16, 5), dtype=np.int16)  # (z, y, x): canal voxels on x = 1 and 2
    array[:, 10:13, 1:3] = 100
    labels = sitk.GetImageFromArray(array)
    labels.CopyInformation(image)
    index, reason = mid_slice(view, labels)
    _, x, _ = view.to_pixel((1.5, 11.0, 5.0))  # the canal's middle, x = 1.5 mm
    k, _, _ = view.to_pixel((1.5, 11.0, 5.0))
    assert reason == "canal centre" and index == round(k) and x == pytest.approx(11.0)
    assert mid_slice(view, None) == (view.centre_slice(), "centre")


class SliceLocalizer(DiscLocalizer):
    """Answers per slice as told: a plausible chain where the slice's value is in ``good``, an extrapolated level
    where it is in ``guessing``, else discs out of order."""

    def __init__(self, good: set[int], guessing: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__(None)
        self.good, self.guessing = good, guessing
        self.asked: list[int] = []

    def ensure_loaded(self) -> None:
        """Nothing to load."""

    def predict_slice(self, pixels: np.ndarray) -> dict[str, tuple[float, float]]:
        value = round(float(pixels.mean()))
        self.asked.append(value)
        self.last_guessed = ["L3/L4"] if value in self.guessing else []
        rows = [10.0, 30.0, 50.0, 70.0, 90.0] if value in self.good | self.guessing else [10.0, 50.0, 30.0, 70.0, 90.0]
        return {level: (40.0, row) for level, row in zip(LEVELS, rows, strict=True)}


def test_without_a_mask_the_nearest_slice_with_a_plausible_answer_is_taken() -> None:
    """The centre slice's answer fails its checks (an off-centre spine, an artefact): the nearest slice whose
    answer passes them is used, and one that sees every level wins over a nearer one that extrapolates."""
    array = np.broadcast_to(np.arange(10, dtype=np.int16), (100, 80, 10)).copy()  # (z, y, x): x-th slice holds x
    image = sitk.GetImageFromArray(array)  # LPS: 10 slices across the body, 1 mm pixels
    image.SetSpacing((4.0, 1.0, 1.0))
    view = sagittal_volume(image)
    values = [int(view.slice(i).mean()) for i in range(view.slices)]
    centre = view.centre_slice()
    found = SliceLocalizer(good={values[centre + 2]}, guessing={values[centre - 1]}).localize(view)
    assert found.plausible and not found.guessed and found.slice_index == centre + 2
    assert found.slice_reason == "centre+2"
    assert found.points["L1/L2"].physical == pytest.approx(view.to_physical(centre + 2, 40.0, 10.0))
    localizer = SliceLocalizer(good={values[centre]})
    at_centre = localizer.localize(view)  # the centre's answer passes: nothing else is tried
    assert at_centre.slice_index == centre and at_centre.slice_reason == "centre" and len(localizer.asked) == 1
    nearer = SliceLocalizer(good=set(), guessing={values[centre - 1]}).localize(view)
    assert nearer.slice_index == centre - 1 and nearer.guessed == ["L3/L4"] and nearer.plausible
    nowhere = SliceLocalizer(good=set()).localize(view)
    assert not nowhere.plausible and nowhere.slice_index == centre and "is not below" in nowhere.problems[0]
    assert search_order(centre, view.slices) == [centre, centre - 1, centre + 1, centre - 2, centre + 2]


def test_sagittal_view_is_the_same_whatever_the_axis_order(volume: sitk.Image) -> None:
    """A series stored slices-last (DICOM) and the same voxels slices-first (SPIDER's .mha) give one view."""
    dicom_like = volume  # the conftest volume: rows posterior, columns inferior, slices across
    permuted = sitk.PermuteAxes(dicom_like, [2, 0, 1])
    a, b = sagittal_volume(dicom_like), sagittal_volume(permuted)
    assert a.shape == b.shape and a.slices == b.slices
    np.testing.assert_array_equal(a.array(), b.array())
    point = a.to_physical(2, 3.0, 4.0)
    np.testing.assert_allclose(b.to_pixel(point), (2, 3.0, 4.0), atol=1e-6)


def test_implausible_points_are_named() -> None:
    shape, spacing = (200, 200), (1.0, 1.0)

    def points(ys: list[float], xs: list[float] | None = None) -> dict[str, DiscPoint]:
        xs = xs or [100.0] * 5
        return {lv: DiscPoint(lv, x, y, (0.0, x, y)) for lv, x, y in zip(LEVELS, xs, ys, strict=True)}

    assert check_disc_points(points([40, 75, 110, 145, 180]), shape, spacing) == []
    swapped = check_disc_points(points([40, 110, 75, 145, 180]), shape, spacing)
    assert any("L3/L4 is not below L2/L3" in p for p in swapped)
    assert any("outside the slice" in p for p in check_disc_points(points([40, 75, 110, 145, 230]), shape, spacing))
    crowded = check_disc_points(points([40, 48, 110, 145, 180]), shape, spacing)
    assert any("L1/L2 to L2/L3 is 8 mm" in p for p in crowded)


# the dataset --------------------------------------------------------------------------------------------------
def test_spider_crops_sit_on_their_discs_counted_from_the_bottom(built: tuple) -> None:
    config, _ = built
    scores = {s.image_path: s for s in score_crops(config.base_path, config.output_path)}
    rows = [r for r in rows_of(config.annotations_path) if r["source"] == "spider"]
    truth = read_truth(config.base_path, "spider")
    graded = {(str(p["patient"]), d["level"]): d for p in truth["patients"] for d in p["discs"]}
    assert len(rows) == 2 * len(graded)  # every disc on T1 and on T2
    errors = []
    for row in rows:
        assert row["point_source"] == "mask" and row["paired"] == "1"
        score = scores[row["image_path"]]
        disc = graded[(row["patient_id"], row["level"])]
        # a herniated disc's margin is mirrored from its anterior half; when the disc is also narrowed, its few
        # pixels of height hide the protrusion, and the point may sit up to the herniation's depth (5.5 mm x the
        # subject's scale, at most 1.1: 6.05 mm, plus half a pixel) behind the margin: never at another disc
        if disc["grades"]["herniation"]:
            assert score.nearest_level == row["level"] and score.point_error_mm <= 6.6, (row["image_path"], score)
        else:
            assert score.on_disc, (row["image_path"], score)
            errors.append(score.point_error_px)
        assert int(row["pfirrmann_grade"]) == disc["grades"]["pfirrmann"]
        assert level_from_spider_ivd_label(disc["spider_ivd_label"]) == row["level"]
        assert row["image_path"].endswith(f"_L{phenikaa_ivd_label(row['level'])}.png")
    # the discs without a herniation: a narrowed L5/S1 disc is a few pixels thick, so allow a pixel or two there
    assert np.median(errors) <= 0.6 and np.mean(np.array(errors) <= 1.0) >= 0.9 and max(errors) <= 3.0, errors
    l5s1 = next(r for r in rows if r["level"] == "L5/S1" and r["series_type"] == "sag_t2")
    l1l2 = next(r for r in rows if r["level"] == "L1/L2" and r["patient_id"] == l5s1["patient_id"]
                and r["series_type"] == "sag_t2")
    drop_mm = (float(l5s1["center_y"]) - float(l1l2["center_y"])) * float(l5s1["pixel_spacing_y"])
    assert drop_mm > 100  # L5/S1 (SPIDER's IVD label 1) is the lowest disc, four discs below L1/L2


def test_phenikaa_crops_follow_the_localizer_top_down(built: tuple, crops_root: tuple) -> None:
    config, report = built
    _, patients = crops_root
    scores = {s.image_path: s for s in score_crops(config.base_path, config.output_path)}
    rows = [r for r in rows_of(config.annotations_path) if r["source"] == "phenikaa"]
    assert len(rows) == 2 * 5 * len(patients)
    for row in rows:
        truth = {d["level"]: d for d in patients[row["patient_id"]]["discs"]}[row["level"]]
        assert int(row["ivd_level"]) == truth["phenikaa_ivd_label"]
        assert int(row["modic"]) == truth["grades"]["modic"] and int(row["disc_bulging"]) == truth["grades"]["bulging"]
        assert row["point_source"] == "model" and row["model_run_id"] == "truth-run"
        score = scores[row["image_path"]]
        # T2 points are the truth; T1 takes them through the physical frame onto its nearest slice
        assert score.on_disc and score.point_error_px <= 1.0, (row["image_path"], score)
    assert report.by_source_level["phenikaa"] == dict.fromkeys(LEVELS, 2 * len(patients))


def test_crops_are_the_pixels_around_the_point(built: tuple) -> None:
    config, _ = built
    row = next(r for r in rows_of(config.annotations_path) if r["source"] == "spider" and r["series_type"] == "sag_t2")
    crop = sitk.GetArrayFromImage(sitk.ReadImage(str(config.output_path / row["image_path"])))
    assert crop.shape == config.crop_size and crop.dtype == np.uint8
    width_mm = (float(row["crop_x1"]) - float(row["crop_x0"])) * float(row["pixel_spacing_x"])
    assert width_mm == pytest.approx((96 + 32) * 0.5, abs=0.01)  # 64 mm whatever the scan's pixel size
    image = sitk.ReadImage(str(config.base_path / row["series_file"]))
    view = sagittal_volume(image)
    pixels = view.slice(int(row["slice_index"]))
    x, y = round(float(row["center_x"])), round(float(row["center_y"]))
    # the crop's pixel at the point's position (96/128 across, half-way down) is bright where the slice is
    u, v = int(96 / 128 * crop.shape[1]), crop.shape[0] // 2
    patch = pixels[y - 1:y + 2, x - 1:x + 2]
    expected = (patch.mean() - np.percentile(pixels, 0.5)) / (np.percentile(pixels, 99.5) - np.percentile(pixels, 0.5))
    assert abs(crop[v - 1:v + 2, u - 1:u + 2].mean() / 255 - np.clip(expected, 0, 1)) < 0.15


def test_every_graded_disc_is_cropped_or_rejected(built: tuple) -> None:
    config, report = built
    audit = audit_crops(config)
    assert audit.completeness().passed, audit.completeness().problems[:5]
    assert audit.graded == audit.cropped == report.crops and report.rejected == 0
    assert (config.output_path / "contact_sheet.png").is_file()


def test_rejects_name_each_bad_case(crops_root: tuple, synthetic_root: Path, tmp_path: Path) -> None:
    source, _ = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    spider, export = root / "raw/SPIDER", DataLayout(root=root).phenikaa_export
    (spider / "images/1_t1.mha").write_bytes(b"not an image")  # unreadable
    shutil.copyfile(spider / "images/2_t2.mha", spider / "images/77_t2.mha")  # a series without grading rows
    with (spider / "radiological_gradings.csv").open("a", encoding="utf-8") as f:
        f.write("3,0,0,0,0,0,0,0,0,1\n")  # IVD label 0: no disc
    pid = sorted(p.name for p in (export / "images").iterdir())[0]
    shutil.rmtree(find_sagittal_series(export / "images" / pid)["sag_t1"].path)  # no T1 series for this patient
    config = ClassificationDatasetConfig.for_layout(DataLayout(root=root, weights=tmp_path / "w"), device="cpu")
    report = build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root))
    rejects = rows_of(config.rejects_path)
    reasons = {(r["source"], r["patient_id"], r["series_type"], r["reason"]) for r in rejects}
    assert {("spider", "1", "sag_t1", "unreadable_file"), ("spider", "77", "sag_t2", "no_grading_row"),
            ("spider", "3", "", "not_a_lumbar_disc"), ("phenikaa", pid, "sag_t1", "no_series")} <= reasons
    assert sum(r["reason"] == "unreadable_file" for r in rejects) == 5  # one per graded level of that series
    unpaired = [r for r in rows_of(config.annotations_path) if r["patient_id"] in ("1", pid)]
    assert unpaired and all(r["paired"] == "0" for r in unpaired)  # the T2 crops are kept, marked unpaired
    assert audit_crops(config).completeness().passed
    assert report.rejects_by_reason["unreadable_file"] == 5


def phenikaa_only(crops_root: tuple, tmp_path: Path) -> ClassificationDatasetConfig:
    """A copy of the crops root, built for its Phenikaa patients alone."""
    source, _ = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    return ClassificationDatasetConfig.for_layout(DataLayout(root=root, weights=tmp_path / "w"), device="cpu",
                                                  include_spider=False)


def test_the_localizer_reads_the_series_asked(crops_root: tuple, synthetic_root: Path, tmp_path: Path) -> None:
    """``localization_series="sag_t1"`` (the default): the model reads each patient's T1 series and the T2 crops
    take its points through their physical position; both on their discs. Changing the option (from sag_t2)
    re-crops every patient."""
    _, patients = crops_root
    config = phenikaa_only(crops_root, tmp_path).model_copy(update={"localization_series": "sag_t2"})
    build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root))
    origins = {kind: {tuple(round(v, 2) for v in series["origin"]) for patient in read_truth(synthetic_root, "phenikaa")[
        "patients"] if str(patient["patient_id"]) in patients for series in patient["series"] if series["kind"] == kind}
        for kind in ("sag_t1", "sag_t2")}
    config = config.model_copy(update={"localization_series": "sag_t1"})
    localizer = TruthLocalizer(synthetic_root)
    report = build_classification_dataset(config, localizer=localizer)
    assert set(localizer.read) == origins["sag_t1"] and len(localizer.read) == len(patients)  # every patient again
    assert report.crops == 2 * 5 * len(patients)
    rows = rows_of(config.annotations_path)
    scores = {s.image_path: s for s in score_crops(config.base_path, config.output_path)}
    for row in rows:
        assert scores[row["image_path"]].on_disc and scores[row["image_path"]].point_error_px <= 1.0
    centre = {r["patient_id"]: r["slice_index"] for r in rows if r["series_type"] == "sag_t1"}
    assert len(centre) == len(patients)


def test_implausible_localization_is_rejected_not_cropped(crops_root: tuple, synthetic_root: Path,
                                                           tmp_path: Path) -> None:
    _, patients = crops_root
    config = phenikaa_only(crops_root, tmp_path)
    swapped = ["L1/L2", "L3/L4", "L2/L3", "L4/L5", "L5/S1"]  # two levels exchanged: out of order
    report = build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root, order=swapped))
    assert report.crops == 0 and report.rejects_by_reason == {"implausible_localization": 2 * 5 * len(patients)}
    detail = rows_of(config.rejects_path)[0]["detail"]
    assert "is not below" in detail


def test_a_level_the_model_extrapolated_is_rejected_alone(crops_root: tuple, synthetic_root: Path,
                                                          tmp_path: Path) -> None:
    _, patients = crops_root
    config = phenikaa_only(crops_root, tmp_path)
    report = build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root, guessed=["L3/L4"]))
    assert report.rejects_by_reason == {"implausible_localization": 2 * len(patients)}  # T1 and T2 of L3/L4
    rejects = rows_of(config.rejects_path)
    assert {r["level"] for r in rejects} == {"L3/L4"} and "extrapolated" in rejects[0]["detail"]
    assert {r["level"] for r in rows_of(config.annotations_path)} == set(LEVELS) - {"L3/L4"}
    assert report.crops == 2 * 4 * len(patients)


def test_without_a_model_phenikaa_is_rejected_and_spider_still_cropped(crops_root: tuple, tmp_path: Path) -> None:
    source, patients = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    config = ClassificationDatasetConfig.for_layout(DataLayout(root=root, weights=tmp_path / "no-weights"),
                                                    device="cpu")
    report = build_classification_dataset(config)
    assert report.rejects_by_reason == {"no_localization_model": 2 * 5 * len(patients)}
    assert report.by_source_level.keys() == {"spider"}


def test_rerun_crops_only_what_changed(crops_root: tuple, synthetic_root: Path, tmp_path: Path) -> None:
    source, _ = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    config = ClassificationDatasetConfig.for_layout(DataLayout(root=root, weights=tmp_path / "w"), device="cpu")
    first = build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root))
    before = {p.name: p.stat().st_mtime_ns for p in (config.output_path / "images").iterdir()}
    again = build_classification_dataset(config, localizer=TruthLocalizer(synthetic_root))
    assert again.patients_reused == first.patients and again.patients_cropped == 0
    assert {p.name: p.stat().st_mtime_ns for p in (config.output_path / "images").iterdir()} == before
    image = root / "raw/SPIDER/images/2_t2.mha"
    image.touch()  # a new version of one series: only its patient is cropped again
    localizer = TruthLocalizer(synthetic_root)
    third = build_classification_dataset(config, localizer=localizer)
    assert third.patients_cropped == 1 and localizer.seen == 0
    moved = TruthLocalizer(synthetic_root, shift_px=2.0)  # another localization model: every Phenikaa patient
    fourth = build_classification_dataset(config, localizer=moved)
    assert fourth.patients_cropped == len(read_truth(synthetic_root, "phenikaa")["patients"])
    shutil.rmtree(root / "raw/SPIDER")  # SPIDER gone: its crops leave the dataset
    fifth = build_classification_dataset(config, localizer=moved)
    assert fifth.by_source_level.keys() == {"phenikaa"} and fifth.crops_removed == first.by_source_level["spider"]["L1/L2"] * 5
    assert not list((config.output_path / "images").glob("spider_*"))


def test_the_export_and_the_crops_have_folders_of_their_own(tmp_path: Path) -> None:
    from spine_lib.datasets.phenikaa import PreprocessConfig

    layout = DataLayout(root=tmp_path)
    export, crops = PreprocessConfig.for_layout(layout).output_path, ClassificationDatasetConfig.for_layout(layout)
    assert export == tmp_path / "processed/phenikaa" and crops.output_path == tmp_path / "processed/classification"
    assert crops.phenikaa_export_path == export


def test_cli_builds_spider_crops(crops_root: tuple, tmp_path: Path) -> None:
    source, _ = crops_root
    root = tmp_path / "data"
    shutil.copytree(source / "raw", root / "raw")
    result = subprocess.run([sys.executable, "-m", "spine_lib.cli", "dataset", "classification", "--base-path",
                             str(root), "--no-include-phenikaa", "--crop-size", "64", "64", "--output-name", "crops"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = rows_of(root / "processed/crops/annotations.csv")
    assert rows and all(r["source"] == "spider" for r in rows)
    assert sitk.ReadImage(str(root / "processed/crops" / rows[0]["image_path"])).GetSize() == (64, 64)
    assert "crops_spider" in result.stdout


def test_ivd_crops_asset_reports_counts_contact_sheet_and_checks(crops_root: tuple, tmp_path: Path) -> None:
    import dagster as dg

    from spine_assets.defs.classification import COMPLETE_CHECK, ON_DISC_CHECK, ivd_crops
    from spine_assets.defs.resources import DataRoot, TorchDevice

    source, patients = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    result = dg.materialize(
        [ivd_crops], resources={"paths": DataRoot(root=str(root), weights=str(tmp_path / "none")),
                                "torch_device": TorchDevice(device="cpu")},
        run_config={"ops": {"ivd_crops": {"config": {"crop_size": [96, 96]}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
    meta = result.asset_materializations_for_node("ivd_crops")[0].metadata
    spider_discs = len(read_truth(source, "spider")["patients"]) * 5
    assert meta["crops_spider"].value == 2 * spider_discs and "crops_phenikaa" not in meta
    assert meta["rejected_no_localization_model"].value == 2 * 5 * len(patients)  # no model yet: recorded, not fatal
    assert "| spider |" in str(meta["crops_per_source_level"].value)
    assert str(meta["contact_sheet"].value).startswith("![sample T2 crops](data:image/png;base64,")
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {COMPLETE_CHECK, ON_DISC_CHECK} and evaluations[COMPLETE_CHECK].passed
    # the on-disc check scores every crop; only a herniated disc's mask point may sit behind its disc (see
    # test_spider_crops_sit_on_their_discs_counted_from_the_bottom), and the check then names that crop
    on_disc = evaluations[ON_DISC_CHECK]
    assert on_disc.metadata["checked"].value == meta["crops_spider"].value
    herniated = {f"spider_{p['patient']}_{series}_L{phenikaa_ivd_label(d['level'])}.png"
                 for p in read_truth(source, "spider")["patients"] for d in p["discs"] if d["grades"]["herniation"]
                 for series in ("sag_t1", "sag_t2")}
    listed = on_disc.metadata["first_problems"].value if "first_problems" in on_disc.metadata else ""
    named = set(re.findall(r"images/(spider_\w+\.png): centre not on", str(listed)))
    problems = on_disc.metadata["problems"].value
    assert on_disc.passed is (problems == 0) and bool(named) is (problems != 0), (problems, listed)
    assert named <= herniated, named - herniated
    crop = root / "processed/classification/images/spider_1_sag_t2_L3.png"
    assert sitk.ReadImage(str(crop)).GetSize() == (96, 96)


@pytest.mark.parametrize("where", ["processed/classification", "processed/classification/images"])
def test_a_file_where_the_crops_folder_belongs_exits_2_naming_it(crops_root: tuple, tmp_path: Path, where: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from spine_lib.cli import main

    source, _ = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    shutil.rmtree(root / "processed/classification", ignore_errors=True)
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text("a file")
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "classification", "--base-path", str(root), "--weights-path", str(tmp_path / "w"),
              "--no-include-phenikaa", "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{root / where}: is a file, expected a folder" in err and "Traceback" not in err
    assert (root / where).read_text() == "a file"


def test_a_rerun_sweeps_what_a_killed_build_left(crops_root: tuple, synthetic_root: Path, tmp_path: Path) -> None:
    source, _ = crops_root
    root = tmp_path / "data"
    shutil.copytree(source, root)
    config = ClassificationDatasetConfig.for_layout(DataLayout(root=root, weights=tmp_path / "w"), device="cpu",
                                                    include_phenikaa=False)
    left = config.output_path / "images" / ".spider_1_sag_t2_L1.0123456789abcdef0123456789abcdef.tmp.png"
    left.parent.mkdir(parents=True, exist_ok=True)
    left.write_bytes(b"half a png")
    build_classification_dataset(config)
    assert not left.exists()
    assert not [p for p in config.output_path.rglob("*") if ".tmp" in p.name]
