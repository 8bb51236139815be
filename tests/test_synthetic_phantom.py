"""The phantom's pixels follow its truth: grades visibly shape the image where DOMAIN.md says they should."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
import SimpleITK as sitk

from spine_lib.levels import LEVELS, spider_disc_value, spider_vertebra_number, vertebrae_of
from spine_lib.synthetic.phantom import (
    PLAIN,
    SIGNAL,
    Appearance,
    DiscGrades,
    SpineAnatomy,
    build_anatomy,
    canal_wall,
    draw_appearance,
    physical_to_index,
    render_image,
    render_series,
    sagittal_geometry,
)

NORMAL = DiscGrades(pfirrmann=1)
CANAL = 100  # SPIDER mask value of the spinal canal
LUMBAR = ("L1", "L2", "L3", "L4", "L5")
#: DOMAIN.md "Anatomy and signal" (mm); its sizes are approximate ("~"), so a measurement may miss them by 10 %
BODY_HEIGHT, BODY_DEPTH, DISC_HEIGHT, CANAL_AP = (25.0, 30.0), (35.0, 45.0), (8.0, 14.0), (15.0, 20.0)
ABOUT = 0.10
PIXEL = 280 / 192  # mm: the field of view of render() over its columns


def anatomy_with(tilt: float = 0.0, **by_level: DiscGrades) -> SpineAnatomy:
    """The same subject (seed 11) with chosen grades (keyword ``L4_L5`` for level L4/L5); others normal."""
    grades = {level: by_level.get(level.replace("/", "_"), NORMAL) for level in LEVELS}
    return build_anatomy(np.random.default_rng(11), grades=grades, tilt_degrees=tilt)


def render(anatomy: SpineAnatomy, seed: int = 5) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    rng = np.random.default_rng(seed)
    geometry = sagittal_geometry(rng, slices=12, rows=192, columns=192, fov_mm=280, thickness=3.5)
    images, mask = render_series(anatomy, geometry, rng)
    return images["t1"], images["t2"], mask


def arrays(*images: sitk.Image) -> list[npt.NDArray[np.float64]]:
    return [sitk.GetArrayFromImage(i).astype(np.float64) for i in images]


def about(value: float, bounds: tuple[float, float]) -> bool:
    """``value`` lies in a DOMAIN.md range, give or take :data:`ABOUT`."""
    return bounds[0] * (1 - ABOUT) <= value <= bounds[1] * (1 + ABOUT)


def slice_points(image: sitk.Image, k: int, selected: npt.NDArray[np.bool_]) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    """Sagittal coordinates (u = Y, v = Z, mm) of the selected pixels of slice ``k``."""
    j, i = np.nonzero(selected)
    index = np.stack([i, j, np.full_like(i, k)]).astype(np.float64)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    points = np.array(image.GetOrigin())[:, None] + direction @ (index * np.array(image.GetSpacing())[:, None])
    return points[1], points[2]


def slice_of(image: sitk.Image, point: tuple[float, float, float]) -> tuple[int, int, int]:
    """The voxel (k, j, i) holding a physical point."""
    i, j, k = (round(c) for c in physical_to_index(image, point))
    return k, j, i


def body_points(anatomy: SpineAnatomy, mask: sitk.Image, name: str) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    """The vertebral body of ``name`` on its mid-sagittal slice: the connected pixels of its label around its
    centre (the posterior elements lie behind the canal, apart from it)."""
    center = anatomy.vertebrae[name].center
    k, j, i = slice_of(mask, (0.0, center[0], center[1]))
    labels = sitk.GetArrayFromImage(mask)[k]
    value = labels[j, i]
    assert value == spider_vertebra_number(name), (name, value)  # whole (not cut by the field of view)
    parts = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray((labels == value).astype(np.uint8))))
    return slice_points(mask, k, parts == parts[j, i])


def extent(values: npt.NDArray[np.float64], pixel: float) -> float:
    """Length (mm) covered by pixels at these positions along one axis."""
    return float(values.max() - values.min()) + pixel


def body_size(anatomy: SpineAnatomy, mask: sitk.Image, name: str) -> tuple[float, float]:
    """Height and depth (mm) of a vertebral body on the mask, through its centre along its own axes."""
    body = anatomy.vertebrae[name]
    s, t = body.local(*body_points(anatomy, mask, name))
    pixel = mask.GetSpacing()[0]
    return extent(t[np.abs(s) < 4.0], pixel), extent(s[np.abs(t) < 4.0], pixel)


def disc_span(anatomy: SpineAnatomy, mask: sitk.Image, level: str) -> tuple[float, float, float]:
    """A disc on the mask at its mid-sagittal slice: its height through the centre, and how far (mm) it reaches
    anteriorly (negative) and posteriorly along its own back axis, at mid-height."""
    k, _, _ = slice_of(mask, anatomy.disc_center(level))
    s, t = anatomy.discs[level].local(*slice_points(mask, k, sitk.GetArrayFromImage(mask)[k] == spider_disc_value(level)))
    middle = np.abs(t) < 2.0
    return extent(t[np.abs(s) < 4.0], mask.GetSpacing()[0]), float(s[middle].min()), float(s[middle].max())


def canal_depth_behind(anatomy: SpineAnatomy, mask: sitk.Image, name: str) -> float:
    """Antero-posterior size (mm) of the canal behind a vertebral body's centre, on the mask."""
    body = anatomy.vertebrae[name]
    k, _, _ = slice_of(mask, (0.0, body.center[0], body.center[1]))
    s, t = body.local(*slice_points(mask, k, sitk.GetArrayFromImage(mask)[k] == CANAL))
    return extent(s[np.abs(t) < 2.0], mask.GetSpacing()[0])


def body_offset(anatomy: SpineAnatomy, mask: sitk.Image, upper: str, lower: str) -> float:
    """How far (mm) the centroid of the ``upper`` body sits behind the ``lower`` one's, along the lower one's
    back axis (both from the mask)."""
    cu = np.array([c.mean() for c in body_points(anatomy, mask, upper)])
    cl = np.array([c.mean() for c in body_points(anatomy, mask, lower)])
    return float(np.dot(cu - cl, anatomy.vertebrae[lower].back))


def disc_extent_behind_center(anatomy: SpineAnatomy, mask: sitk.Image, level: str) -> float:
    """How far (mm) the disc's mask reaches posteriorly from its centre, along its own back axis, midline."""
    m = sitk.GetArrayFromImage(mask)
    k = round(physical_to_index(mask, anatomy.disc_center(level))[2])
    j, i = np.nonzero(m[k] == spider_disc_value(level))
    disc = anatomy.discs[level]
    reach = 0.0
    for jj, ii in zip(j, i, strict=True):
        _, u, v = mask.TransformContinuousIndexToPhysicalPoint((float(ii), float(jj), float(k)))
        s, _ = disc.local(np.array(u), np.array(v))
        reach = max(reach, float(s))
    return reach


def test_mask_holds_every_lumbar_structure() -> None:
    _, _, mask = render(anatomy_with())
    values = set(np.unique(sitk.GetArrayFromImage(mask)).tolist())
    assert {spider_disc_value(level) for level in LEVELS} <= values
    assert 100 in values  # spinal canal
    lumbar = {spider_vertebra_number(v) for v in ("L1", "L2", "L3", "L4", "L5")}
    assert lumbar <= values | {v + 100 for v in values}


def test_disc_centroid_is_the_truth_center() -> None:
    anatomy = anatomy_with(tilt=6.0)
    _, _, mask = render(anatomy)
    m = sitk.GetArrayFromImage(mask)
    for level in LEVELS:
        k, j, i = np.nonzero(m == spider_disc_value(level))
        centroid = (i.mean(), j.mean(), k.mean())
        expected = physical_to_index(mask, anatomy.disc_center(level))
        np.testing.assert_allclose(centroid, expected, atol=1.0, err_msg=level)


def test_t2_nucleus_signal_falls_with_pfirrmann() -> None:
    anatomy = anatomy_with(L1_L2=DiscGrades(pfirrmann=3), L2_L3=DiscGrades(pfirrmann=1), L3_L4=DiscGrades(pfirrmann=5),
                           L4_L5=DiscGrades(pfirrmann=2), L5_S1=DiscGrades(pfirrmann=4))
    _, t2, mask = render(anatomy)
    [image, labels] = arrays(t2, mask)
    csf = image[labels == 100].mean()
    by_grade = {}
    for level in LEVELS:
        k, j, i = (round(c) for c in reversed(physical_to_index(mask, anatomy.disc_center(level))))
        core = image[k, j - 1 : j + 2, i - 2 : i + 3]  # the nucleus at the disc centre
        by_grade[anatomy.grades[level].pfirrmann] = core.mean() / csf
    ordered = [by_grade[g] for g in range(1, 6)]
    assert all(a > b for a, b in itertools.pairwise(ordered)), ordered
    assert ordered[0] > 0.8 and ordered[-1] < 0.25  # I: bright like CSF; V: black
    marrow = image[np.isin(labels, [spider_vertebra_number(v) for v in ("L2", "L3", "L4")])].mean() / csf
    assert ordered[0] > marrow > ordered[-1]  # marrow is intermediate on T2


def test_t1_disc_is_darker_than_marrow_and_csf_dark() -> None:
    anatomy = anatomy_with()
    t1, t2, mask = render(anatomy)
    a1, a2, labels = arrays(t1, t2, mask)
    disc = np.isin(labels, [spider_disc_value(level) for level in LEVELS])
    marrow = np.isin(labels, [spider_vertebra_number(v) for v in ("L2", "L3", "L4")])
    assert a1[disc].mean() < 0.75 * a1[marrow].mean()
    assert a1[labels == 100].mean() < 0.5 * a1[disc].mean()  # CSF dark on T1
    assert a2[labels == 100].mean() > 1.5 * a2[marrow].mean()  # and bright on T2


def test_herniated_disc_reaches_further_into_canal() -> None:
    plain = anatomy_with()
    herniated = anatomy_with(L4_L5=DiscGrades(pfirrmann=4, herniation=1))
    _, _, plain_mask = render(plain)
    _, _, herniated_mask = render(herniated)
    before = disc_extent_behind_center(plain, plain_mask, "L4/L5")
    after = disc_extent_behind_center(herniated, herniated_mask, "L4/L5")
    assert after > before + 3.0
    # and the canal behind it lost voxels to the disc
    m_plain, m_hern = sitk.GetArrayFromImage(plain_mask), sitk.GetArrayFromImage(herniated_mask)
    assert (m_hern == 100).sum() < (m_plain == 100).sum()


def test_bulging_disc_extends_beyond_the_vertebral_margins_on_both_sides() -> None:
    plain = anatomy_with()
    bulging = anatomy_with(L3_L4=DiscGrades(pfirrmann=2, bulging=1))
    spans, margins = {}, {}
    for name, anatomy in (("plain", plain), ("bulging", bulging)):
        _, _, mask = render(anatomy)
        _, front, back = disc_span(anatomy, mask, "L3/L4")
        spans[name] = (front, back)
        margins[name] = max(body_size(anatomy, mask, v)[1] for v in vertebrae_of("L3/L4"))  # deeper neighbour
    depth = {name: back - front + PIXEL for name, (front, back) in spans.items()}  # measured as body_size does
    assert depth["plain"] <= margins["plain"] + PIXEL / 2  # a normal disc stays within the bodies' margins
    assert depth["bulging"] > margins["bulging"] + 1.5, (depth, margins)  # a bulging one reaches past them
    forward = spans["plain"][0] - spans["bulging"][0]
    backward = spans["bulging"][1] - spans["plain"][1]
    assert forward > 0.75 and backward > 0.75 and abs(forward - backward) <= PIXEL, (forward, backward)  # symmetric


def test_narrowing_lowers_the_disc() -> None:
    plain = anatomy_with()
    narrow = anatomy_with(L5_S1=DiscGrades(pfirrmann=5, narrowing=1))
    _, _, plain_mask = render(plain)
    _, _, narrow_mask = render(narrow)
    before, _, _ = disc_span(plain, plain_mask, "L5/S1")
    after, _, _ = disc_span(narrow, narrow_mask, "L5/S1")
    assert about(before, DISC_HEIGHT), before
    assert after < 0.8 * before and before - after > 2.0, (before, after)  # a collapsed disc space, in mm
    value = spider_disc_value("L5/S1")
    assert (sitk.GetArrayFromImage(narrow_mask) == value).sum() < 0.7 * (sitk.GetArrayFromImage(plain_mask) == value).sum()
    # the space is lost by the disc, not by the body above it
    assert abs(body_size(narrow, narrow_mask, "L5")[0] - body_size(plain, plain_mask, "L5")[0]) <= PIXEL


@pytest.mark.parametrize(("modic", "t1_change", "t2_change"), [(1, "darker", "brighter"), (2, "brighter", "iso_or_brighter"),
                                                             (3, "darker", "darker")])
def test_modic_changes_endplate_marrow_signal(modic: int, t1_change: str, t2_change: str) -> None:
    """DOMAIN.md: type 1 T1 dark / T2 bright, type 2 T1 bright / T2 iso-bright, type 3 dark on both."""
    plain = anatomy_with()
    changed = anatomy_with(L4_L5=DiscGrades(pfirrmann=3, modic=modic))
    results = {}
    for name, anatomy in (("plain", plain), ("changed", changed)):
        t1, t2, mask = render(anatomy)
        a1, a2 = arrays(t1, t2)
        # marrow just above the L4/L5 disc, in the L4 body, on the midline
        body = anatomy.vertebrae["L4"]
        u, v = body.point(0.0, -body.half_height + 3.0)
        i, j, k = (round(c) for c in physical_to_index(mask, (0.0, u, v)))
        results[name] = (a1[k, j - 1 : j + 2, i - 2 : i + 3].mean(), a2[k, j - 1 : j + 2, i - 2 : i + 3].mean())
    expected = {"brighter": lambda r: r > 1.2, "darker": lambda r: r < 0.8, "iso_or_brighter": lambda r: r > 0.9}
    for contrast, change in ((0, t1_change), (1, t2_change)):
        ratio = results["changed"][contrast] / results["plain"][contrast]
        assert expected[change](ratio), (modic, contrast, ratio)


def test_spondylolisthesis_slips_the_vertebra_forward() -> None:
    plain = anatomy_with()
    slipped = anatomy_with(L4_L5=DiscGrades(pfirrmann=3, spondylolisthesis=1))
    _, _, plain_mask = render(plain)
    _, _, slipped_mask = render(slipped)
    # on the masks, L4 moved anteriorly on L5 by several millimetres (more than two pixels) ...
    slip = body_offset(plain, plain_mask, "L4", "L5") - body_offset(slipped, slipped_mask, "L4", "L5")
    assert slip > 3.0, slip
    # ... and the level above kept its alignment (L3 moves with L4)
    assert abs(body_offset(slipped, slipped_mask, "L3", "L4") - body_offset(plain, plain_mask, "L3", "L4")) < 1.0


@pytest.mark.parametrize("tilt", [-8.0, 8.0])
def test_a_tilted_spine_is_the_upright_one_turned_whole(tilt: float) -> None:
    upright, tilted = anatomy_with(0.0), anatomy_with(tilt)
    turn = np.radians(tilt)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    for name in (*upright.vertebrae, *upright.discs):
        a = upright.vertebrae.get(name) or upright.discs[name]
        b = tilted.vertebrae.get(name) or tilted.discs[name]
        # every block's centre and its own axes turn by the same angle: no block turns against the column
        assert np.allclose(rotation @ np.array(a.center), b.center, atol=1e-6), name
        assert np.allclose(rotation @ np.array(a.up), b.up, atol=1e-9), name
        assert np.allclose(rotation @ np.array(a.back), b.back, atol=1e-9), name


def test_neighbouring_bodies_keep_their_alignment_when_the_spine_is_tilted() -> None:
    # on the masks, how a body sits on the one below does not depend on the tilt; a block turned against the
    # column would put a step between neighbours of a slip's size (DOMAIN: ~6 mm) in every tilted spine
    upright = anatomy_with(0.0)
    _, _, upright_mask = render(upright)
    for tilt in (-8.0, 8.0):
        anatomy = anatomy_with(tilt)
        _, _, mask = render(anatomy)
        for upper, lower in (("L2", "L3"), ("L3", "L4"), ("L4", "L5")):
            step = body_offset(anatomy, mask, upper, lower) - body_offset(upright, upright_mask, upper, lower)
            assert abs(step) < 0.75, (tilt, upper, lower, step)


def test_endplate_defect_is_disc_tissue_inside_the_body() -> None:
    plain = anatomy_with()
    defect = anatomy_with(L2_L3=DiscGrades(pfirrmann=2, up_endplate=1))
    _, _, plain_mask = render(plain)
    _, _, defect_mask = render(defect)
    value = spider_disc_value("L2/L3")
    before, after = sitk.GetArrayFromImage(plain_mask), sitk.GetArrayFromImage(defect_mask)
    grown = (after == value) & (before != value)
    assert grown.sum() > 0
    # the extra disc voxels were bone of L2, the body above the disc, and nothing else
    assert set(np.unique(before[grown]).tolist()) == {spider_vertebra_number("L2")}
    assert not ((before == value) & (after != value)).any()  # the disc itself kept its voxels
    # a node of a real one's size (several mm across) on the mid-sagittal slice, not a speck
    k, _, _ = slice_of(defect_mask, defect.disc_center("L2/L3"))
    u, _ = slice_points(defect_mask, k, grown[k])
    spacing = defect_mask.GetSpacing()
    assert extent(u, spacing[0]) >= 6.0 and grown[k].sum() * spacing[0] * spacing[1] >= 20.0  # mm, mm^2
    # visible on T1: disc signal and its sclerotic rim are dark in the bright marrow the plain body has there
    (plain_t1,), (defect_t1,) = arrays(render(plain)[0]), arrays(render(defect)[0])
    bright = plain_t1 > 0.45 * plain_t1.max()  # marrow, not the endplate's cortex
    node, ring = grown & bright, (after == spider_vertebra_number("L2")) & (plain_t1 != defect_t1) & bright
    assert node.sum() >= 5 and ring.sum() >= 5
    assert defect_t1[node].mean() < plain_t1[node].mean() - 0.2 * plain_t1.max()
    assert defect_t1[ring].mean() < plain_t1[ring].mean() - 0.2 * plain_t1.max()


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_bodies_discs_and_canal_have_anatomical_sizes(seed: int | None) -> None:
    """On the mask (mm, DOMAIN.md): bodies ~25-30 tall and ~35-45 deep, discs ~8-14 tall with L4/L5 above the
    upper ones, the canal ~15-20 AP; for this file's subject and for three sampled ones."""
    anatomy = anatomy_with() if seed is None else build_anatomy(np.random.default_rng(seed))
    _, _, mask = render(anatomy)
    for name in LUMBAR:
        height, depth = body_size(anatomy, mask, name)
        assert about(height, BODY_HEIGHT) and about(depth, BODY_DEPTH), (name, height, depth)
        assert depth > height  # a body is deeper than tall
        assert about(canal_depth_behind(anatomy, mask, name), CANAL_AP), name
    grades = anatomy.grades
    plain = [level for level in LEVELS if not (grades[level].narrowing or grades[level].up_endplate
                                               or grades[level].low_endplate)]  # height unchanged by a grade
    heights = {level: disc_span(anatomy, mask, level)[0] for level in plain}
    for level, height in heights.items():
        assert about(height, DISC_HEIGHT), (level, height)
        assert height < min(body_size(anatomy, mask, v)[0] for v in vertebrae_of(level) if v in LUMBAR)
    if "L4/L5" in heights:
        assert all(heights["L4/L5"] > heights[upper] for upper in ("L1/L2", "L2/L3") if upper in heights), heights


def test_pose_varies_between_subjects() -> None:
    centers = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        anatomy = build_anatomy(rng)
        geometry = sagittal_geometry(rng, 12, 128, 128, 280, 3.5)
        image = geometry.empty_image()
        centers.append(physical_to_index(image, anatomy.disc_center("L4/L5"))[:2])
    spread = np.ptp(np.array(centers), axis=0)
    assert (spread > 3).all()  # landmarks move by several pixels from subject to subject


def test_grades_are_consistent() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        anatomy = build_anatomy(rng)
        for g in anatomy.grades.values():
            assert 1 <= g.pfirrmann <= 5 and 0 <= g.modic <= 3
            assert not (g.herniation and g.bulging)
            if g.pfirrmann == 5:
                assert g.narrowing == 1


def render_with(anatomy: SpineAnatomy, appearance: Appearance, seed: int = 5) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """The T1, T2 and STIR images and the mask of ``anatomy`` as ``appearance`` draws it, without noise."""
    geometry = sagittal_geometry(np.random.default_rng(seed), slices=12, rows=192, columns=192, fov_mm=280,
                                 thickness=3.5)
    rendered = render_image(anatomy, geometry.empty_image(), appearance=appearance)
    images = {}
    for contrast in ("t1", "t2", "stir"):
        image = sitk.GetImageFromArray(rendered.signal(contrast))
        image.CopyInformation(geometry.empty_image())
        images[contrast] = image
    mask = sitk.GetImageFromArray(rendered.labels)
    mask.CopyInformation(geometry.empty_image())
    return images, mask


def test_appearance_gains_change_the_signal_not_the_labels() -> None:
    anatomy = anatomy_with()
    plain_images, plain_mask = render_with(anatomy, PLAIN)
    images, mask = render_with(anatomy, Appearance(gains={"marrow": (2.0, 0.5, 1.0), "csf": (1.0, 0.5, 0.25)}))
    assert np.array_equal(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(plain_mask))
    t1, t2, stir = (sitk.GetArrayFromImage(images[c]) for c in ("t1", "t2", "stir"))
    p1, p2 = (sitk.GetArrayFromImage(plain_images[c]) for c in ("t1", "t2"))
    marrow = np.isclose(p1, SIGNAL["marrow"][0]) & np.isclose(p2, SIGNAL["marrow"][1])
    csf = np.isclose(p2, SIGNAL["csf"][1]) & np.isclose(p1, SIGNAL["csf"][0])
    assert marrow.sum() > 1000 and csf.sum() > 200
    assert np.allclose(t1[marrow], 1.0) and np.allclose(t2[marrow], 0.5 * SIGNAL["marrow"][1])  # 1.24 clipped to 1
    assert np.allclose(stir[marrow], SIGNAL["marrow"][2])
    assert np.allclose(t2[csf], 0.5 * SIGNAL["csf"][1]) and np.allclose(stir[csf], 0.25 * SIGNAL["csf"][2])
    untouched = ~(marrow | csf) & np.isclose(p1, SIGNAL["muscle"][0]) & np.isclose(p2, SIGNAL["muscle"][1])
    assert untouched.sum() > 1000 and np.allclose(t1[untouched], p1[untouched])


def test_smooth_canal_lies_behind_every_disc_and_body_without_steps() -> None:
    """Points half the canal's depth behind its anterior wall, all the way down the lumbar spine, are canal; the
    wall passes through every disc's canal point (the disc is in front of it, the canal behind it)."""
    anatomy = anatomy_with(tilt=8.0, L4_L5=DiscGrades(pfirrmann=3, bulging=True))
    _, mask = render_with(anatomy, Appearance(gains={}, smooth_canal=True))
    labels = sitk.GetArrayFromImage(mask)
    wall = canal_wall(anatomy)
    names = [name for _, name in wall]
    first, last = names.index("L1/L2") - 1, names.index("L5/S1")  # from L1's lower corner (its top reaches up)
    samples = 0
    for ((au, av), _), ((bu, bv), _) in itertools.pairwise(wall[first:last + 1]):
        for f in np.linspace(0.0, 1.0, 6):
            u, v = au + f * (bu - au), av + f * (bv - av)
            length = np.hypot(bu - au, bv - av)
            nu, nv = (bv - av) / length, -(bu - au) / length
            back = anatomy.vertebrae["L3"].back
            sign = 1.0 if nu * back[0] + nv * back[1] > 0 else -1.0
            d = anatomy.canal_depth / 2
            assert labels[slice_of(mask, (0.0, u + sign * nu * d, v + sign * nv * d))] == CANAL
            samples += 1
    assert samples > 50
    for level in LEVELS:
        disc = anatomy.discs[level]
        margin = anatomy.disc_posterior_margin(level)
        assert labels[slice_of(mask, (0.0, *disc.point(margin - 2.5, 0.0)))] == disc.label, level
        assert labels[slice_of(mask, (0.0, *disc.point(margin + 2.5, 0.0)))] == CANAL, level


def test_canal_contents_cord_above_the_conus_roots_and_fat_below() -> None:
    anatomy = build_anatomy(np.random.default_rng(11), grades={level: NORMAL for level in LEVELS}, tilt_degrees=0.0,
                            thoracic=2)
    look = Appearance(gains={}, smooth_canal=True, cord=0.5, roots=0.5, root_period_mm=3.0, epidural_fat_mm=3.0)
    images, _ = render_with(anatomy, look)
    t2 = sitk.GetArrayFromImage(images["t2"])

    def signal_behind(name: str, depth: float) -> float:
        block = anatomy.vertebrae[name]
        return float(t2[slice_of(images["t2"], (0.0, *block.point(block.half_depth + depth, 0.0)))])

    middle = 0.45 * anatomy.canal_depth
    assert signal_behind("T12", middle) == pytest.approx(SIGNAL["nerve"][1])  # the cord, grey in bright CSF
    assert signal_behind("L1", middle) == pytest.approx(SIGNAL["nerve"][1])
    assert signal_behind("L3", 0.2 * anatomy.canal_depth) == pytest.approx(SIGNAL["csf"][1])  # no root in front
    lower_canal = [signal_behind(name, d) for name in ("L3", "L4") for d in np.linspace(0.4, 0.85, 10) * anatomy.canal_depth]
    assert {SIGNAL["csf"][1], SIGNAL["nerve"][1]} <= {round(v, 6) for v in lower_canal}  # strands in CSF
    assert signal_behind("L4", anatomy.canal_depth - 1.0) == pytest.approx(SIGNAL["fat"][1])  # epidural fat


def test_drawn_appearances_vary_and_plain_is_the_table() -> None:
    looks = [draw_appearance(np.random.default_rng(seed)) for seed in range(40)]
    assert PLAIN.signals() == SIGNAL
    gains = np.array([look.gains["marrow"] for look in looks])
    assert gains.min() >= np.exp(-0.5) - 1e-9 and gains.max() <= np.exp(0.5) + 1e-9 and gains.std() > 0.15
    assert 15 < sum(look.smooth_canal for look in looks) < 40
    assert any(look.cord == 0 for look in looks) and any(look.cord > 0 for look in looks)
    assert all(0.5 <= look.cortex_mm <= 3.0 and 0.35 <= look.nucleus_share <= 0.8 for look in looks)
