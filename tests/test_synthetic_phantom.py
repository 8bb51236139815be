"""The phantom's pixels follow its truth: grades visibly shape the image where DOMAIN.md says they should."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
import SimpleITK as sitk

from spine_lib.levels import LEVELS, spider_disc_value, spider_vertebra_number
from spine_lib.synthetic.phantom import (
    DiscGrades,
    SpineAnatomy,
    build_anatomy,
    physical_to_index,
    render_series,
    sagittal_geometry,
)

NORMAL = DiscGrades(pfirrmann=1)


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
    assert ordered[0] > 0.8 and ordered[-1] < 0.25


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


def test_bulging_disc_extends_beyond_the_vertebral_margin() -> None:
    plain = anatomy_with()
    bulging = anatomy_with(L3_L4=DiscGrades(pfirrmann=2, bulging=1))
    _, _, plain_mask = render(plain)
    _, _, bulging_mask = render(bulging)
    grow = disc_extent_behind_center(bulging, bulging_mask, "L3/L4") - disc_extent_behind_center(plain, plain_mask, "L3/L4")
    assert grow >= bulging.bulge - 1.0


def test_narrowing_lowers_the_disc() -> None:
    plain = anatomy_with()
    narrow = anatomy_with(L5_S1=DiscGrades(pfirrmann=5, narrowing=1))
    assert narrow.discs["L5/S1"].half_height == pytest.approx(0.55 * plain.discs["L5/S1"].half_height)
    _, _, plain_mask = render(plain)
    _, _, narrow_mask = render(narrow)
    value = spider_disc_value("L5/S1")
    assert (sitk.GetArrayFromImage(narrow_mask) == value).sum() < 0.7 * (sitk.GetArrayFromImage(plain_mask) == value).sum()


@pytest.mark.parametrize(("modic", "t1_change", "t2_change"), [(1, "darker", "brighter"), (2, "brighter", "brighter"),
                                                             (3, "darker", "darker")])
def test_modic_changes_endplate_marrow_signal(modic: int, t1_change: str, t2_change: str) -> None:
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
    for contrast, change in ((0, t1_change), (1, t2_change)):
        ratio = results["changed"][contrast] / results["plain"][contrast]
        assert (ratio > 1.2) if change == "brighter" else (ratio < 0.8), (modic, contrast, ratio)


def test_spondylolisthesis_slips_the_vertebra_forward() -> None:
    plain = anatomy_with()
    slipped = anatomy_with(L4_L5=DiscGrades(pfirrmann=3, spondylolisthesis=1))

    def offset(anatomy: SpineAnatomy) -> float:
        upper, lower = anatomy.vertebrae["L4"], anatomy.vertebrae["L5"]
        s, _ = lower.local(np.array(upper.center[0]), np.array(upper.center[1]))
        return float(s)  # posterior offset of L4 in L5's frame

    assert offset(slipped) < offset(plain) - 4.0  # slipped anteriorly by ~6 mm


def test_endplate_defect_is_disc_tissue_inside_the_body() -> None:
    plain = anatomy_with()
    defect = anatomy_with(L2_L3=DiscGrades(pfirrmann=2, up_endplate=1))
    _, _, plain_mask = render(plain)
    _, _, defect_mask = render(defect)
    value = spider_disc_value("L2/L3")
    grown = (sitk.GetArrayFromImage(defect_mask) == value).sum() - (sitk.GetArrayFromImage(plain_mask) == value).sum()
    assert grown > 0
    # the extra disc voxels sit above the disc (in L2, the body above)
    diff = (sitk.GetArrayFromImage(defect_mask) == value) & (sitk.GetArrayFromImage(plain_mask) != value)
    k, j, i = np.nonzero(diff)
    _, u, v = defect_mask.TransformContinuousIndexToPhysicalPoint((float(i.mean()), float(j.mean()), float(k.mean())))
    _, t = defect.discs["L2/L3"].local(np.array(u), np.array(v))
    assert float(t) > defect.discs["L2/L3"].half_height - 1.0


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
