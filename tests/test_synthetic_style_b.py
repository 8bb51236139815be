"""Style-B synthetic sagittal images: the same seed gives the same image, the canal point sits on the disc's
posterior margin where the canal begins, and the framing, contrast and anatomy really vary."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from spine_lib.io.transforms import normalize_to_uint8
from spine_lib.levels import LEVELS
from spine_lib.synthetic.style_b import (
    BONE_TISSUES,
    CANAL_TISSUES,
    CONTRASTS,
    DISC_TISSUES,
    POINTS_COLUMNS,
    REFERENCE_FOV_MM,
    THORACIC,
    StyleBImage,
    Tissue,
    render_style_b,
    write_style_b_set,
)

SIZE = 256
DRAWS = 40
#: DOMAIN.md: bodies ~25-30 mm tall and discs ~8-14 mm, so neighbouring canal points lie about 33-44 mm apart
NEIGHBOUR_MM = (15.0, 65.0)
STEP_MM = 2.0  # how far anterior (disc) and posterior (canal) of the canal point to look


@pytest.fixture(scope="module")
def samples() -> list[StyleBImage]:
    return [render_style_b(np.random.default_rng([7, i]), SIZE) for i in range(DRAWS)]


def axis(sample: StyleBImage, level: str) -> tuple[np.ndarray, np.ndarray]:
    """The canal point and the unit vector from the disc centre toward it (the disc's axis, posterior)."""
    point = np.array(sample.canal_points[level])
    direction = point - np.array(sample.disc_centres[level])
    return point, direction / np.linalg.norm(direction)


def label_at(sample: StyleBImage, xy: np.ndarray) -> int:
    """The tissue of the pixel nearest to ``(x, y)``; air outside the image."""
    column, row = round(float(xy[0])), round(float(xy[1]))
    if not (0 <= row < sample.tissue.shape[0] and 0 <= column < sample.tissue.shape[1]):
        return int(Tissue.AIR)
    return int(sample.tissue[row, column])


def value_at(sample: StyleBImage, xy: np.ndarray) -> float:
    """Bilinear image value at ``(x, y)`` (pixel centres at integers)."""
    return float(cv2.getRectSubPix(sample.image, (1, 1), (float(xy[0]), float(xy[1])))[0, 0])


def inside(xy: tuple[float, float] | np.ndarray) -> bool:
    return 0 <= xy[0] <= SIZE - 1 and 0 <= xy[1] <= SIZE - 1


def test_same_seed_same_image() -> None:
    first, again = (render_style_b(np.random.default_rng(3), SIZE) for _ in range(2))
    other = render_style_b(np.random.default_rng(4), SIZE)
    assert first.image.dtype == np.float32 and first.image.shape == (SIZE, SIZE)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.tissue, again.tissue)
    assert first.canal_points == again.canal_points and first.params == again.params
    assert not np.array_equal(first.image, other.image)


def test_size_sets_the_grid() -> None:
    sample = render_style_b(np.random.default_rng(5), size=128)
    assert sample.image.shape == sample.tissue.shape == (128, 128)
    assert sample.spacing_mm == pytest.approx(REFERENCE_FOV_MM / sample.params["scale"] / 128, rel=1e-4)
    assert all(0 <= x <= 127 and 0 <= y <= 127 for x, y in sample.canal_points.values())


def test_canal_points_inside_ordered_and_spaced(samples: list[StyleBImage]) -> None:
    for sample in samples:
        assert list(sample.canal_points) == list(LEVELS) == list(sample.disc_centres)
        points = np.array(list(sample.canal_points.values()))
        assert all(inside(p) for p in points)
        chord = points[-1] - points[0]
        along = points @ chord
        assert np.all(np.diff(along) > 0), "not ordered L1/L2 -> L5/S1 along the spine"
        assert np.all(np.diff(points[:, 1]) > 0), "not ordered head (top) to feet"
        gaps = np.hypot(*np.diff(points, axis=0).T) * sample.spacing_mm
        assert np.all((gaps > NEIGHBOUR_MM[0]) & (gaps < NEIGHBOUR_MM[1])), gaps


def test_canal_point_is_where_the_disc_meets_the_canal(samples: list[StyleBImage]) -> None:
    """Anterior of the point is disc, posterior canal (brighter than the disc on T2); the disc ends at it."""
    offsets = []
    steps = np.arange(-6.0, 6.0, 0.05)  # pixels along the axis
    for sample in samples:
        step = STEP_MM / sample.spacing_mm
        for level in LEVELS:
            point, direction = axis(sample, level)
            front, back = point - step * direction, point + step * direction
            assert label_at(sample, front) in DISC_TISSUES, (sample.params["contrast"], level)
            assert label_at(sample, back) in CANAL_TISSUES, (sample.params["contrast"], level)
            if sample.contrast == "t2":
                assert value_at(sample, back) > value_at(sample, front) + 0.1, level
            in_disc = np.array([label_at(sample, point + t * direction) in DISC_TISSUES for t in steps])
            leave = int(np.argmax(~in_disc & (steps > -3.0)))
            offsets.append((steps[leave - 1] + steps[leave]) / 2)
    offsets_px = np.array(offsets)
    # the labels are sampled at pixel centres: the margin is found within a pixel, without bias
    assert np.abs(offsets_px).max() < 1.0
    assert abs(offsets_px.mean()) < 0.15


def test_the_framing_varies(samples: list[StyleBImage]) -> None:
    rotations = np.array([s.params["rotation_deg"] for s in samples])
    scales = np.array([s.params["scale"] for s in samples])
    assert np.sum(np.abs(rotations) > 10) >= 5 and np.abs(rotations).max() <= 20
    assert scales.min() <= 0.7 and scales.max() >= 1.4
    for sample in samples:
        assert sample.spacing_mm == pytest.approx(REFERENCE_FOV_MM / sample.params["scale"] / SIZE, rel=1e-4)
    # the pixels follow the parameters: the lumbar span grows with the scale, its tilt follows the rotation
    spans = np.array([np.subtract(s.canal_points["L5/S1"], s.canal_points["L1/L2"]) for s in samples])
    lengths = np.hypot(spans[:, 0], spans[:, 1])
    tilts = np.degrees(np.arctan2(-spans[:, 0], spans[:, 1]))
    assert lengths.max() / lengths.min() > 1.8
    assert np.corrcoef(lengths, scales)[0, 1] > 0.8
    assert np.corrcoef(tilts, rotations)[0, 1] > 0.7
    columns = np.array([s.canal_points["L3/L4"][0] for s in samples])
    assert columns.max() - columns.min() > SIZE / 4  # the spine is not always in the same place


def test_thoracic_vertebrae_are_often_in_view(samples: list[StyleBImage]) -> None:
    """Counting discs from the top of the image would usually start above L1/L2."""
    with_t12 = 0
    with_t11 = 0
    for sample in samples:
        shown = [name for name in THORACIC if inside(sample.vertebra_centres[name])]
        assert shown == sample.params["thoracic_in_view"]
        for name in shown:
            assert label_at(sample, np.array(sample.vertebra_centres[name])) in BONE_TISSUES
        with_t12 += "T12" in shown
        with_t11 += "T11" in shown
    assert with_t12 > DRAWS / 2
    assert with_t11 >= DRAWS / 5


def test_every_contrast_kind_and_its_signal(samples: list[StyleBImage]) -> None:
    """T1: fat brighter than CSF; T2: CSF brighter than muscle; STIR: fat suppressed; inverted: flipped."""
    assert {s.contrast for s in samples} == set(CONTRASTS)

    def mean(sample: StyleBImage, tissue: Tissue) -> float:
        return float(sample.image[sample.tissue == tissue].mean())

    for sample in samples:
        fat, csf, muscle = (mean(sample, t) for t in (Tissue.FAT, Tissue.CSF, Tissue.MUSCLE))
        kind, base = sample.contrast, sample.params["base_contrast"]
        if kind == "t1":
            assert fat > 2 * csf
        elif kind == "t2":
            assert csf > 2 * muscle and csf > mean(sample, Tissue.ANNULUS)
        elif kind == "stir":
            assert csf > 2 * fat and muscle > fat
        elif base == "t1":
            assert csf > fat
        else:
            assert muscle > csf


def disc_height_mm(sample: StyleBImage, level: str) -> float:
    """Length of the run of disc pixels through the disc centre, across its axis (vacuum gas included)."""
    centre = np.array(sample.disc_centres[level])
    _, direction = axis(sample, level)
    across = np.array([-direction[1], direction[0]])
    steps = np.arange(-20.0, 20.0, 0.25) / sample.spacing_mm
    disc = np.array([label_at(sample, centre + t * across) in (*DISC_TISSUES, Tissue.GAS) for t in steps])
    middle = len(steps) // 2
    top, bottom = middle, middle
    while top > 0 and disc[top - 1]:
        top -= 1
    while bottom < len(steps) - 1 and disc[bottom + 1]:
        bottom += 1
    return float(steps[bottom] - steps[top]) * sample.spacing_mm


def test_degenerated_discs_are_darker_and_thinner(samples: list[StyleBImage]) -> None:
    """Grade 2-3 discs are drawn at 45-80 % of the height and with a dark nucleus (DOMAIN.md, Pfirrmann)."""
    heights: dict[bool, list[float]] = {True: [], False: []}
    brightness: dict[bool, list[float]] = {True: [], False: []}
    for sample in samples:
        csf = float(sample.image[sample.tissue == Tissue.CSF].mean())
        for level in LEVELS:
            grade = sample.params["degeneration"][level]
            if grade == 1:
                continue
            heights[grade >= 2].append(disc_height_mm(sample, level))
            if sample.contrast == "t2":
                brightness[grade >= 2].append(value_at(sample, np.array(sample.disc_centres[level])) / csf)
    assert len(heights[True]) >= 10 and len(brightness[True]) >= 3 and len(brightness[False]) >= 3
    assert np.median(heights[True]) < 0.85 * np.median(heights[False])
    assert np.median(brightness[True]) < np.median(brightness[False]) - 0.2


def test_write_set_same_seed_same_bytes(tmp_path: Path) -> None:
    first = write_style_b_set(tmp_path / "a", count=3, seed=11, size=96)
    again = write_style_b_set(tmp_path / "b", count=3, seed=11, size=96)
    other = write_style_b_set(tmp_path / "c", count=3, seed=12, size=96)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert "points.csv" in names and len([n for n in names if n.endswith(".png")]) == 3
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert (first / "style_b_00000.png").read_bytes() != (other / "style_b_00000.png").read_bytes()

    with (first / "points.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == POINTS_COLUMNS
    assert [r["level"] for r in rows] == list(LEVELS) * 3
    assert {(r["width"], r["height"]) for r in rows} == {("96", "96")}
    sample = render_style_b(np.random.default_rng([11, 0]), size=96)
    png = np.asarray(Image.open(first / "style_b_00000.png"))
    np.testing.assert_array_equal(png, normalize_to_uint8(sample.image, percentiles=(0.5, 99.5)))
    for row, (x, y) in zip(rows[:5], sample.canal_points.values(), strict=True):
        assert row["image"] == "style_b_00000.png"
        assert math.isclose(float(row["x"]), x, abs_tol=1e-3) and math.isclose(float(row["y"]), y, abs_tol=1e-3)
