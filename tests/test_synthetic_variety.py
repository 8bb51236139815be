"""Synthetic studies vary as real ones do: thoracic vertebrae above L1, STIR, field of view, pose; truth holds."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.datasets.ivd_coords import IVDDatasetConfig, IVDDatasetReport, build_ivd_coords
from spine_lib.levels import LEVELS, spider_disc_value, spider_vertebra_number
from spine_lib.synthetic.phantom import (
    NOMINAL_CENTER,
    SAGITTAL_DIRECTION,
    THORACIC,
    VARIED_TISSUES,
    DiscGrades,
    SeriesGeometry,
    SpineAnatomy,
    build_anatomy,
    draw_texture,
    image_points,
    physical_to_index,
    render_image,
    render_series,
    sagittal_geometry,
)
from spine_lib.synthetic.rsna import draw_study, write_rsna
from spine_lib.synthetic.spider import RenderSize
from spine_lib.synthetic.truth import disc_truths, read_truth, write_truth
from tests.ivd_coords_support import read_csv

CANAL = 100
NORMAL = DiscGrades(pfirrmann=1)
#: SPIDER counts vertebrae on from L1 (6) and discs on from L1/L2 (205), bottom-up.
THORACIC_VALUES = {"T12": 7, "T11": 8, "T10": 9, "T9": 10, "T8": 11, "T7": 12, "T6": 13, "T5": 14}
THORACIC_DISC_VALUES = {"T12/L1": 206, "T11/T12": 207, "T10/T11": 208, "T9/T10": 209, "T8/T9": 210, "T7/T8": 211,
                        "T6/T7": 212, "T5/T6": 213}
#: Grades without herniation (a herniation reaches past the posterior margin on purpose), with the grades that
#: move the margin or the disc: bulging, narrowing, a slipped vertebra.
NO_HERNIATION = {
    "L1/L2": NORMAL, "L2/L3": DiscGrades(pfirrmann=2, bulging=1), "L3/L4": DiscGrades(pfirrmann=3),
    "L4/L5": DiscGrades(pfirrmann=3, spondylolisthesis=1), "L5/S1": DiscGrades(pfirrmann=5, narrowing=1),
}
RSNA_STUDIES = 12
RSNA_SIZE = RenderSize(rows=96, columns=96, slices=12)


def patch(anatomy: SpineAnatomy, center: tuple[float, float], half_mm: float = 20.0,
          spacing: float = 0.25) -> tuple[npt.NDArray[np.int16], sitk.Image]:
    """The raw labels of a one-slice mid-sagittal patch around a sagittal point, and its grid."""
    n = round(2 * half_mm / spacing) + 1
    geometry = SeriesGeometry(size=(n, n, 1), spacing=(spacing, spacing, 1.0), direction=SAGITTAL_DIRECTION,
                              center=(0.0, center[0], center[1]))
    grid = geometry.empty_image()
    return render_image(anatomy, grid).labels[0], grid


def label_at(labels: npt.NDArray[np.int16], grid: sitk.Image, point: tuple[float, float]) -> int:
    """The label of the patch voxel nearest a sagittal point."""
    i, j, _ = (round(c) for c in physical_to_index(grid, (0.0, point[0], point[1])))
    return int(labels[j, i])


def along(anatomy: SpineAnatomy, level: str, mm: float) -> tuple[float, float]:
    """The point ``mm`` behind a disc's canal point along the disc's back axis (negative: into the disc)."""
    _, u, v = anatomy.canal_point(level)
    bu, bv = anatomy.discs[level].back
    return (u + mm * bu, v + mm * bv)


# thoracic vertebrae -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("thoracic", [1, 3, 8])
def test_thoracic_vertebrae_continue_the_chain_with_spider_values(thoracic: int) -> None:
    anatomy = build_anatomy(np.random.default_rng(11), grades=dict.fromkeys(LEVELS, NORMAL), tilt_degrees=10.0,
                            thoracic=thoracic)
    names = list(THORACIC_VALUES)[:thoracic]
    discs = list(THORACIC_DISC_VALUES)[:thoracic]
    assert anatomy.top_vertebra == names[-1]
    chain = ["L1", *names]
    for (below, above), disc in zip(itertools.pairwise(chain), discs, strict=True):
        lower, upper, between = anatomy.vertebrae[below], anatomy.vertebrae[above], anatomy.discs[disc]
        # each one above the last along the chain's own up-axis, the disc between them, the bodies smaller
        assert np.dot(np.subtract(between.center, lower.center), lower.up) > lower.half_height
        assert np.dot(np.subtract(upper.center, between.center), between.up) > between.half_height
        assert upper.half_height < lower.half_height and upper.half_depth < lower.half_depth
        assert upper.phi > lower.phi  # the lordosis eases: each body leans a little more forward than the last
        for name, value in ((above, THORACIC_VALUES[above]), (disc, THORACIC_DISC_VALUES[disc])):
            block = anatomy.vertebrae.get(name) or anatomy.discs[name]
            labels, grid = patch(anatomy, block.center, half_mm=3.0, spacing=0.5)
            assert label_at(labels, grid, block.center) == value, name
        # the canal runs on behind the thoracic body
        labels, grid = patch(anatomy, upper.point(upper.half_depth + anatomy.canal_depth / 2, 0.0), half_mm=3.0)
        assert set(np.unique(labels).tolist()) == {CANAL}
    # nothing above the top vertebra but the canal: no further thoracic value anywhere up there
    top = anatomy.vertebrae[names[-1]]
    labels, grid = patch(anatomy, top.point(0.0, top.half_height + 60.0), half_mm=40.0, spacing=1.0)
    values = set(np.unique(labels).tolist())
    canal = top.point(top.half_depth + anatomy.canal_depth / 2, top.half_height + 40.0)
    assert CANAL in values and label_at(labels, grid, canal) == CANAL
    assert not values & {7 + thoracic, 206 + thoracic, *range(1, 7 + thoracic), *range(201, 206 + thoracic)}


def test_thoracic_vertebrae_leave_the_lumbar_spine_and_its_truth_alone() -> None:
    lumbar = build_anatomy(np.random.default_rng(4), tilt_degrees=-12.0)
    longer = build_anatomy(np.random.default_rng(4), tilt_degrees=-12.0, thoracic=len(THORACIC))
    assert set(longer.vertebrae) - set(lumbar.vertebrae) == set(THORACIC_VALUES)
    assert set(longer.discs) - set(lumbar.discs) == set(THORACIC_DISC_VALUES)
    for name, block in lumbar.vertebrae.items():
        assert longer.vertebrae[name] == block and block.label == spider_vertebra_number(name)
    for level, block in lumbar.discs.items():
        assert longer.discs[level] == block and block.label == spider_disc_value(level)
    truths = disc_truths(longer)
    assert [d.level for d in truths] == list(LEVELS) and truths == disc_truths(lumbar)


def test_a_thoracic_vertebra_cut_by_the_field_of_view_is_partial() -> None:
    """SPIDER marks a vertebra cut by the border 100 + N: T10 (9) cut by the top row becomes 109."""
    anatomy = build_anatomy(np.random.default_rng(2), grades=dict.fromkeys(LEVELS, NORMAL), tilt_degrees=0.0,
                            thoracic=3)
    spacing, rows = 1.0, 160
    t10 = anatomy.vertebrae["T10"]
    # the top row through the centre of T10
    geometry = SeriesGeometry(size=(160, rows, 3), spacing=(spacing, spacing, 3.0), direction=SAGITTAL_DIRECTION,
                              center=(0.0, t10.center[0], t10.center[1] - (rows - 1) / 2 * spacing))
    _, mask = render_series(anatomy, geometry, np.random.default_rng(0), contrasts=())
    values = set(np.unique(sitk.GetArrayFromImage(mask)).tolist())
    assert 109 in values and 9 not in values
    assert {7, 8, 206, 207, 208} <= values


# the canal points ---------------------------------------------------------------------------------------------
def canal_point_cases() -> list[tuple[str, SpineAnatomy]]:
    """Chosen poses and sizes at the ends of the RSNA ranges, and spines as the RSNA writer draws them."""
    cases = [
        (f"tilt{tilt:+.0f}_scale{scale}_T{thoracic}", build_anatomy(
            np.random.default_rng(seed), grades=NO_HERNIATION, tilt_degrees=tilt, thoracic=thoracic,
            scale_range=(scale, scale)))
        for seed, tilt, scale, thoracic in ((1, -15.0, 0.8, 3), (2, 15.0, 1.2, 0), (3, 0.0, 1.0, 2))
    ]
    cases += [(f"rsna{seed}", draw_study(np.random.default_rng([seed, 2, 0]))[1]) for seed in range(4)]
    return cases


CANAL_POINT_CASES = canal_point_cases()


@pytest.mark.parametrize(("name", "anatomy"), CANAL_POINT_CASES, ids=[c[0] for c in CANAL_POINT_CASES])
def test_each_canal_point_sits_at_its_discs_posterior_margin(name: str, anatomy: SpineAnatomy) -> None:
    """On the mask: just inside the canal point is the disc's value, one and two mm behind it the canal (or,
    for a herniated disc, the herniation: the margin is the disc's core, the protrusion reaches past it)."""
    for level in LEVELS:
        _, u, v = anatomy.canal_point(level)
        labels, grid = patch(anatomy, (u, v), half_mm=6.0)
        disc = spider_disc_value(level)
        behind = disc if anatomy.grades[level].herniation else CANAL
        assert label_at(labels, grid, along(anatomy, level, -0.5)) == disc, (name, level)
        assert label_at(labels, grid, along(anatomy, level, 1.0)) == behind, (name, level)
        assert label_at(labels, grid, along(anatomy, level, 2.0)) == behind, (name, level)


# STIR ---------------------------------------------------------------------------------------------------------
def rendered_contrasts(anatomy: SpineAnatomy) -> tuple[dict[str, npt.NDArray[np.float64]], npt.NDArray[np.int16],
                                                       sitk.Image]:
    rng = np.random.default_rng(5)
    geometry = sagittal_geometry(rng, slices=12, rows=192, columns=192, fov_mm=280, thickness=3.5)
    images, mask = render_series(anatomy, geometry, rng, contrasts=("t1", "t2", "stir"))
    arrays = {c: sitk.GetArrayFromImage(image).astype(np.float64) for c, image in images.items()}
    return arrays, sitk.GetArrayFromImage(mask), mask


def subcutaneous_fat(anatomy: SpineAnatomy, mask: sitk.Image, labels: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
    """The fat under the skin of the back: 55-70 mm behind the canal's back wall (in L3's frame), unlabelled."""
    size = mask.GetSize()
    k, j, i = np.meshgrid(np.arange(size[2]), np.arange(size[1]), np.arange(size[0]), indexing="ij")
    index = np.stack([i.ravel(), j.ravel(), k.ravel()]).astype(np.float64)
    points = np.array(mask.GetOrigin())[:, None] + np.array(mask.GetDirection()).reshape(3, 3) @ (
        index * np.array(mask.GetSpacing())[:, None])
    l3 = anatomy.vertebrae["L3"]
    s, t = l3.local(points[1], points[2])
    back = l3.half_depth + anatomy.canal_depth
    inside = (s > back + 57) & (s < back + 68) & (np.abs(t) < 40) & (np.abs(points[0]) < 30)
    return inside.reshape(labels.shape) & (labels == 0)


def test_stir_makes_fat_and_marrow_dark_and_keeps_csf_bright() -> None:
    anatomy = build_anatomy(np.random.default_rng(11), grades=dict.fromkeys(LEVELS, NORMAL), tilt_degrees=0.0)
    images, labels, mask = rendered_contrasts(anatomy)
    fat = subcutaneous_fat(anatomy, mask, labels)
    marrow = np.isin(labels, [spider_vertebra_number(v) for v in ("L2", "L3", "L4")])
    nucleus = np.zeros_like(fat)
    for level in LEVELS:
        i, j, k = (round(c) for c in physical_to_index(mask, anatomy.disc_center(level)))
        nucleus[k, j - 1 : j + 2, i - 2 : i + 3] = True
    assert fat.sum() > 100 and marrow.sum() > 1000
    mean = {c: {"fat": a[fat].mean(), "marrow": a[marrow].mean(), "csf": a[labels == CANAL].mean(),
                "nucleus": a[nucleus].mean()} for c, a in images.items()}
    t1, t2, stir = mean["t1"], mean["t2"], mean["stir"]
    # on T1 and T2 the fat is bright (brighter than marrow); on STIR it is suppressed, darker than everything
    assert t1["fat"] > t1["marrow"] and t2["fat"] > t2["marrow"] and t2["fat"] > 0.5 * t2["csf"]
    assert stir["fat"] < 0.15 * stir["csf"] and stir["marrow"] < 0.25 * stir["csf"]
    # fluid stays bright: CSF and a healthy nucleus are the brightest tissues, as on T2
    assert stir["nucleus"] > 0.7 * stir["csf"] > 3 * stir["marrow"]
    assert stir["csf"] / stir["fat"] > 4 * t2["csf"] / t2["fat"]


@pytest.mark.parametrize(("modic", "brighter"), [(1, True), (2, False)])
def test_stir_shows_oedema_bright_and_fatty_endplates_dark(modic: int, brighter: bool) -> None:
    """DOMAIN.md: Modic 1 is oedema (bright on fluid-sensitive images), Modic 2 fat (suppressed on STIR)."""
    values = {}
    for name, grade in (("plain", NORMAL), ("changed", DiscGrades(pfirrmann=3, modic=modic))):
        grades = {**dict.fromkeys(LEVELS, NORMAL), "L4/L5": grade}
        anatomy = build_anatomy(np.random.default_rng(11), grades=grades, tilt_degrees=0.0)
        images, _, mask = rendered_contrasts(anatomy)
        body = anatomy.vertebrae["L4"]
        u, v = body.point(0.0, -body.half_height + 3.0)  # marrow just above the disc, on the midline
        i, j, k = (round(c) for c in physical_to_index(mask, (0.0, u, v)))
        values[name] = images["stir"][k, j - 1 : j + 2, i - 2 : i + 3].mean()
    ratio = values["changed"] / values["plain"]
    assert ratio > 2.0 if brighter else ratio < 0.8, (modic, ratio)


# the RSNA studies ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], IVDDatasetReport]:
    """A small synthetic RSNA source, its truth and the localization dataset built from it."""
    root = tmp_path_factory.mktemp("variety") / "data"
    layout = DataLayout(root=root)
    layout.rsna.mkdir(parents=True)
    write_truth(root, "rsna", write_rsna(layout, RSNA_STUDIES, 5, RSNA_SIZE))
    return root, read_truth(root, "rsna"), build_ivd_coords(IVDDatasetConfig(base_path=root, workers=1))


def test_rsna_studies_record_what_was_drawn_and_it_varies(rsna_root: tuple[Path, dict[str, Any], IVDDatasetReport]) -> None:
    _, truth, _ = rsna_root
    drawn = [study["drawn"] for study in truth["studies"]]
    assert len(drawn) == RSNA_STUDIES
    assert all(200 <= d["fov_mm"] <= 360 and 0.8 <= d["scale"] <= 1.2 and abs(d["tilt_degrees"]) <= 15 for d in drawn)
    assert np.ptp([d["fov_mm"] for d in drawn]) > 60 and np.ptp([d["scale"] for d in drawn]) > 0.15
    assert max(abs(d["tilt_degrees"]) for d in drawn) > 8  # beyond the old +-8 degrees
    assert {d["thoracic"] for d in drawn} == {len(THORACIC)}  # the column goes on above the field of view
    in_view = [s["thoracic_in_view"] for study in truth["studies"] for s in study["series"] if s["kind"] != "axial_t2"]
    assert len(set(in_view)) >= 3 and max(in_view) >= 2  # how much of it shows follows the framing
    assert {d["contrast"] for d in drawn} == {"t2", "stir"}
    for study in truth["studies"]:
        assert [d["level"] for d in study["discs"]] == list(LEVELS)  # thoracic discs are not localized
        for series in study["series"]:
            expected = {"sag_t1": "t1", "sag_t2": study["drawn"]["contrast"], "axial_t2": "t2"}[series["kind"]]
            assert series["contrast"] == expected
            if series["kind"] != "axial_t2":  # the pixel spacing follows the field of view at the image size
                assert series["size"][:2] == [RSNA_SIZE.columns, RSNA_SIZE.rows]
                assert series["spacing"][0] * RSNA_SIZE.columns == pytest.approx(study["drawn"]["fov_mm"], abs=1e-3)


def test_stir_series_say_so_in_their_dicom(rsna_root: tuple[Path, dict[str, Any], IVDDatasetReport]) -> None:
    root, truth, _ = rsna_root
    reader = sitk.ImageFileReader()
    for study in truth["studies"]:
        series = next(s for s in study["series"] if s["kind"] == "sag_t2")
        reader.SetFileName(str(next((root / series["path"]).glob("*.dcm"))))
        reader.ReadImageInformation()
        sequence = reader.GetMetaData("0018|0020").strip() if reader.HasMetaDataKey("0018|0020") else ""
        assert (sequence == "IR") == (series["contrast"] == "stir")


def test_the_spine_moves_further_in_the_frame(rsna_root: tuple[Path, dict[str, Any], IVDDatasetReport]) -> None:
    """The series centre relative to the spine (L3's centre is the origin) moves beyond the old +-18 mm."""
    _, truth, _ = rsna_root
    offsets = []
    for study in truth["studies"]:
        for series in study["series"]:
            if series["kind"] == "axial_t2":
                continue
            direction = np.array(series["direction"]).reshape(3, 3)
            middle = (np.array(series["size"]) - 1) / 2 * np.array(series["spacing"])
            center = np.array(series["origin"]) + direction @ middle
            offsets.append(center[1:] - NOMINAL_CENTER)
    shifts = np.abs(np.array(offsets))
    assert shifts.max() > 30 and (shifts.max(axis=1) > 18).sum() >= 3


def test_every_rsna_coordinate_resolves_inside_its_instance(
    rsna_root: tuple[Path, dict[str, Any], IVDDatasetReport],
) -> None:
    root, truth, report = rsna_root
    rows = read_csv(root / "raw/RSNA/train_label_coordinates.csv")
    assert len(rows) == RSNA_STUDIES * 5 * 5
    sagittal = [r for r in rows if "Subarticular" not in r["condition"]]
    # the builder takes every sagittal row: none falls outside its image, none misses its instance
    assert report.skipped == {} and len(sagittal) == RSNA_STUDIES * 15
    # and every canal point is placed on its study's T1 series, whatever the framing: none left out
    assert report.annotations == len(sagittal) + RSNA_STUDIES * 5
    assert not any(reason.startswith("canal_t1") for reason in report.excluded)
    series = {str(s["series_id"]): s for study in truth["studies"] for s in study["series"]}
    for row in rows:
        geometry = series[row["series_id"]]
        width, height, depth = geometry["size"]
        assert 0 <= float(row["x"]) < width and 0 <= float(row["y"]) < height, row
        assert 1 <= int(row["instance_number"]) <= depth
        if row["condition"] == "Spinal Canal Stenosis":  # the canal point lies within half a slice of it
            k = geometry["canal_point_index"][row["level"]][2]
            assert abs(k - (int(row["instance_number"]) - 1)) <= 0.5 + 1e-6


# soft-tissue texture ------------------------------------------------------------------------------------------
def test_texture_changes_the_signal_around_the_spine_but_never_the_labels() -> None:
    anatomy = build_anatomy(np.random.default_rng(3), tilt_degrees=5.0, thoracic=len(THORACIC))
    texture = draw_texture(np.random.default_rng(4), anatomy)
    geometry = SeriesGeometry(size=(160, 160, 1), spacing=(2.0, 2.0, 3.0), direction=SAGITTAL_DIRECTION,
                              center=(0.0, float(NOMINAL_CENTER[0]), float(NOMINAL_CENTER[1])))
    grid = geometry.empty_image()
    plain, textured = render_image(anatomy, grid), render_image(anatomy, grid, texture)
    np.testing.assert_array_equal(plain.labels, textured.labels)
    # the organs and the mottling stay off the discs, the canal and the air; the marrow gets its trabeculae
    changed = ~np.isclose(plain.t2, textured.t2)
    assert not changed[(plain.labels == CANAL) | (plain.labels > 200)].any()
    marrow = np.isclose(plain.t2, 0.40) & (plain.labels > 0) & (plain.labels < 100)
    assert marrow.sum() > 100 and changed[marrow].mean() > 0.9
    air = np.isclose(plain.t2, 0.02)
    assert not changed[air].any()
    abdomen = np.isclose(plain.t2, 0.30) & (plain.labels == 0)
    assert changed[abdomen].mean() > 0.9  # mottled everywhere
    # organs: T2 values no tissue of the bare phantom has, in front of the spine (in L3's frame; the aorta and
    # the vessels lie right against the bodies)
    _, u, v = image_points(grid)
    l3 = anatomy.vertebrae["L3"]
    s, _ = l3.local(u, v)
    organ = abdomen & (np.abs(textured.t2 - 0.30) > 0.12)
    assert organ.sum() > 200 and (s[organ] < 0).all() and (s[organ] < -l3.half_depth).mean() > 0.9


def test_varied_looks_change_the_pixels_not_the_geometry_or_the_points(tmp_path: Path) -> None:
    """RSNA studies with varied looks: the same series, coordinates and truth points as plain ones (the looks draw
    from their own stream), other pixel values, and each study's appearance recorded in its truth."""
    written = {}
    for looks in ("plain", "varied"):
        layout = DataLayout(root=tmp_path / looks)
        layout.rsna.mkdir(parents=True)
        written[looks] = (layout, write_rsna(layout, 2, 5, RSNA_SIZE, varied_looks=looks == "varied"))
    (plain, plain_truth), (varied, varied_truth) = written["plain"], written["varied"]
    for name in ("train_label_coordinates.csv", "train_series_descriptions.csv", "train.csv"):
        assert (plain.rsna / name).read_bytes() == (varied.rsna / name).read_bytes()
    assert [s["discs"] for s in plain_truth["studies"]] == [s["discs"] for s in varied_truth["studies"]]
    assert all(s["appearance"]["gains"] == {} for s in plain_truth["studies"])
    looks = [s["appearance"] for s in varied_truth["studies"]]
    assert all(set(look["gains"]) == set(VARIED_TISSUES) for look in looks)
    differing = 0
    for series in sorted(plain.rsna.glob("train_images/*/*")):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(next(series.glob("*.dcm")))))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(varied.rsna / series.relative_to(plain.rsna) / next(
            series.glob("*.dcm")).name)))
        assert a.shape == b.shape
        differing += int(not np.array_equal(a, b))
    assert differing == 6  # every series of both studies
