"""Lumbar Coords-like pretraining pictures: mid-sagittal spines drawn as a label map, every tissue given a signal.

The real Lumbar Coords set gathers pictures of other public datasets (LSD: T2, OSF: T1, TSEG: CT) with a point
per lumbar disc. Its synthetic stand-in has a design of its own, unlike both the RSNA/SPIDER phantom
(:mod:`spine_lib.synthetic.phantom`) and the held-out style (:mod:`spine_lib.synthetic.style_b`):

- Geometry in pixels, built as a chain upwards from the S1 endplate: each disc a quadrilateral between the
  endplates of its neighbours (the column bends at the discs, so a bend makes a wedge), each vertebral body a
  superellipse with concave endplates, a cortical rim and marrow, the sacrum curving down and forward below; the
  canal, cord, conus and cauda equina, ligamentum flavum and spinous processes behind; vessels, bowel loops and the
  bladder in front; muscle, fat and skin around, air outside.
- Signal: each tissue gets an intensity from the source's contrast (T2, T1 or CT), or, in some pictures, any
  intensity at all (tissue contrast randomized, as in SynthSeg), times its own texture; then partial volume,
  blur, a bias field, noise, lower resolution along one axis and a gamma.

The point of a level is RSNA's spinal-canal point: the disc's posterior margin at its mid-height, where it meets
the canal. ``x`` is the column (anterior on the left), ``y`` the row; pixel centres at integers.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from spine_lib.io.atomic import atomic_path
from spine_lib.levels import LEVELS
from spine_lib.sources import lumbar_coords as source

FloatArray = npt.NDArray[np.float64]
#: Picture sources written (the real set's ``spider`` pictures are left out: the root has SPIDER itself).
SOURCES: tuple[str, ...] = ("lsd", "osf", "tseg")
#: Share of pictures whose tissues get random intensities instead of their source's contrast.
RANDOM_CONTRAST_SHARE = 0.3
SUPERSAMPLE = 2
EDGE_MARGIN = 0.08  # the lumbar points keep this share of the picture from its border


class Tissue(IntEnum):
    AIR = 0
    FAT = 1
    MUSCLE = 2
    MARROW = 3
    CORTEX = 4
    ANNULUS = 5
    NUCLEUS = 6
    CSF = 7
    CORD = 8
    LIGAMENT = 9
    BOWEL = 10
    VESSEL = 11
    FLUID = 12


#: Mean intensity of each tissue per source contrast (before jitter).
CONTRAST: dict[str, dict[Tissue, float]] = {
    "lsd": {Tissue.AIR: 0.0, Tissue.FAT: 0.75, Tissue.MUSCLE: 0.22, Tissue.MARROW: 0.45, Tissue.CORTEX: 0.04,
            Tissue.ANNULUS: 0.14, Tissue.NUCLEUS: 0.8, Tissue.CSF: 0.95, Tissue.CORD: 0.45, Tissue.LIGAMENT: 0.07,
            Tissue.BOWEL: 0.5, Tissue.VESSEL: 0.08, Tissue.FLUID: 0.9},
    "osf": {Tissue.AIR: 0.0, Tissue.FAT: 0.9, Tissue.MUSCLE: 0.3, Tissue.MARROW: 0.68, Tissue.CORTEX: 0.05,
            Tissue.ANNULUS: 0.28, Tissue.NUCLEUS: 0.36, Tissue.CSF: 0.12, Tissue.CORD: 0.42, Tissue.LIGAMENT: 0.1,
            Tissue.BOWEL: 0.4, Tissue.VESSEL: 0.1, Tissue.FLUID: 0.1},
    "tseg": {Tissue.AIR: 0.0, Tissue.FAT: 0.27, Tissue.MUSCLE: 0.42, Tissue.MARROW: 0.62, Tissue.CORTEX: 0.95,
             Tissue.ANNULUS: 0.46, Tissue.NUCLEUS: 0.44, Tissue.CSF: 0.4, Tissue.CORD: 0.43, Tissue.LIGAMENT: 0.45,
             Tissue.BOWEL: 0.44, Tissue.VESSEL: 0.47, Tissue.FLUID: 0.4},
}
#: Texture strength (relative, before the picture's own factor) per tissue.
TEXTURE = {Tissue.FAT: 0.08, Tissue.MUSCLE: 0.12, Tissue.MARROW: 0.22, Tissue.BOWEL: 0.35, Tissue.ANNULUS: 0.08,
           Tissue.NUCLEUS: 0.1}
LUMBAR_BODIES = ("L5", "L4", "L3", "L2", "L1")  # bottom up
THORACIC_BODIES = ("T12", "T11", "T10", "T9", "T8", "T7", "T6")


@dataclass
class Picture:
    """One picture: 8-bit pixels, the point of each lumbar level, the tissue of each pixel, and what was drawn."""

    pixels: npt.NDArray[np.uint8]
    points: dict[str, tuple[float, float]]
    source: str
    labels: npt.NDArray[np.uint8]  # a :class:`Tissue` per pixel
    posterior: dict[str, tuple[float, float]]  # each disc's unit vector towards the back, across its mid-height
    settings: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class PictureTruth:
    """What a written picture shows: its file, size, each level's point (pixels) and how it was drawn."""

    filename: str
    source: str
    width: int
    height: int
    points: dict[str, tuple[float, float]]
    settings: dict[str, float | str]


@dataclass
class _Element:
    """A vertebral body or a disc of the chain, in canvas pixels."""

    name: str
    polygon: FloatArray  # (n, 2) x, y
    centre: FloatArray
    up: FloatArray  # unit vector towards the head
    posterior: FloatArray  # unit vector towards the back
    half_depth: float
    half_height: float
    degenerate: bool = False


def _unit(angle: float) -> FloatArray:
    """The unit ``up`` vector leaning ``angle`` radians towards the back (x grows backwards, y downwards)."""
    return np.array([math.sin(angle), -math.cos(angle)])


def _posterior_of(up: FloatArray) -> FloatArray:
    return np.array([-up[1], up[0]])


def _body(name: str, centre: FloatArray, angle: float, half_height: float, half_depth: float,
          rng: np.random.Generator) -> _Element:
    """A vertebral body: a superellipse with concave endplates and a slightly concave anterior wall."""
    up = _unit(angle)
    posterior = _posterior_of(up)
    exponent = rng.uniform(3.0, 8.0)
    cupping = rng.uniform(0.0, 0.14)
    anterior_waist = rng.uniform(0.0, 0.08)
    theta = np.linspace(0.0, 2 * math.pi, 72, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    across = np.sign(c) * np.abs(c) ** (2 / exponent)  # -1 anterior .. 1 posterior
    along = np.sign(s) * np.abs(s) ** (2 / exponent)  # -1 feet .. 1 head
    along = along - cupping * (1 - across ** 2) * np.sign(along)
    across = across + anterior_waist * (1 - along ** 2) * (across < 0)
    points = centre + np.outer(across * half_depth, posterior) + np.outer(along * half_height, up)
    return _Element(name, points, centre, up, posterior, half_depth, half_height)


def _disc(name: str, bottom: FloatArray, bottom_up: FloatArray, top: FloatArray, top_up: FloatArray,
          half_depth: float, bulge: float, overlap: float, degenerate: bool) -> _Element:
    """A disc between two endplates (their centres and normals): a quadrilateral whose sides bulge by ``bulge``,
    reaching ``overlap`` into each body (the bodies are drawn over it, so it fills their cupped endplates)."""
    bottom_post, top_post = _posterior_of(bottom_up), _posterior_of(top_up)
    low = bottom - bottom_up * overlap
    high = top + top_up * overlap
    corners = [low - bottom_post * half_depth, low + bottom_post * half_depth,
               high + top_post * half_depth, high - top_post * half_depth]  # anterior-low, posterior-low, ...
    mid_up = bottom_up + top_up
    mid_up = mid_up / np.linalg.norm(mid_up)
    mid_post = _posterior_of(mid_up)
    centre = (bottom + top) / 2
    posterior_mid = (corners[1] + corners[2]) / 2 + mid_post * bulge
    anterior_mid = (corners[0] + corners[3]) / 2 - mid_post * bulge * 0.6
    polygon = np.array([corners[0], corners[1], posterior_mid, corners[2], corners[3], anterior_mid])
    height = float(np.linalg.norm(top - bottom)) / 2
    return _Element(name, polygon, centre, mid_up, mid_post, half_depth + bulge, height, degenerate)


@dataclass
class _Spine:
    elements: list[_Element]
    points: dict[str, FloatArray]
    posterior_line: list[FloatArray]  # posterior margins bottom up (sacrum to the top of the chain)
    anterior_line: list[FloatArray]
    conus_at: int  # index in posterior_line where the cord ends


def _build_spine(rng: np.random.Generator, unit: float) -> _Spine:
    """The column in canvas pixels, the S1 endplate's centre at the origin."""
    elements: list[_Element] = []
    points: dict[str, FloatArray] = {}
    posterior_line: list[FloatArray] = []
    anterior_line: list[FloatArray] = []
    sacral_slope = math.radians(rng.uniform(25.0, 50.0))
    s1_angle = angle = -sacral_slope + math.radians(rng.uniform(0.0, 15.0))  # S1's axis leans forward
    # sacrum: S1 down to S5 (smaller and curving forward), fused, with faint remnants of discs
    top = np.zeros(2)
    up = _unit(angle)
    depth = unit * rng.uniform(0.65, 0.85)
    for index in range(5):
        height = unit * (0.85 if index == 0 else 0.55 * 0.88 ** index) * rng.uniform(0.9, 1.1)
        centre = top - up * height / 2
        body = _body(f"S{index + 1}", centre, angle, height / 2, depth, rng)
        elements.append(body)
        posterior_line.insert(0, centre + body.posterior * depth)
        anterior_line.insert(0, centre - body.posterior * depth)
        top = top - up * height * 0.8  # the segments overlap: one fused bone
        angle -= math.radians(rng.uniform(8.0, 18.0))  # the sacral curve
        up = _unit(angle)
        depth *= 0.82
    # lumbar and thoracic chain upwards, from S1's endplate
    angle = s1_angle
    up = _unit(angle)
    bottom = np.zeros(2)
    depth = unit * rng.uniform(0.7, 0.85)
    bodies = LUMBAR_BODIES + THORACIC_BODIES
    lordosis = [math.radians(rng.uniform(5.0, 14.0)) for _ in LUMBAR_BODIES]
    kyphosis = math.radians(rng.uniform(1.0, 5.0))
    conus_at = 0
    for index, name in enumerate(bodies):
        lumbar = index < len(LUMBAR_BODIES)
        level_name = f"{name}/S1" if name == "L5" else f"{name}/{bodies[index - 1]}"
        bend = lordosis[index] if lumbar else -kyphosis
        gap = unit * (rng.uniform(0.22, 0.42) if lumbar else rng.uniform(0.14, 0.24))
        degenerate = bool(rng.random() < 0.2)
        if degenerate:
            gap *= rng.uniform(0.4, 0.7)
        # a bend at the disc wedges it (taller in front); its back keeps at least 40 % of the mid height
        gap = max(gap, depth * math.sin(abs(bend)) / 0.6)
        new_up = _unit(angle + bend)
        mid_up = (up + new_up) / np.linalg.norm(up + new_up)
        top = bottom + mid_up * gap
        bulge = unit * rng.uniform(0.0, 0.06) + (unit * rng.uniform(0.03, 0.12) if degenerate else 0.0)
        overlap = unit * 0.1
        disc = _disc(level_name, bottom, up, top, new_up, depth, bulge, overlap, degenerate)
        elements.append(disc)
        margin = disc.centre + disc.posterior * disc.half_depth  # RSNA's canal point: the back at mid-height
        if lumbar:
            points[level_name] = margin
        posterior_line.append(margin)
        anterior_line.append(disc.centre - disc.posterior * (depth + bulge * 0.6))
        angle += bend
        up = new_up
        height = unit * (rng.uniform(0.9, 1.1) if lumbar else rng.uniform(0.72, 0.9) * 0.97 ** (index - 5))
        centre = top + up * height / 2
        body = _body(name, centre, angle, height / 2, depth, rng)
        elements.append(body)
        posterior_line.append(centre + body.posterior * depth)
        anterior_line.append(centre - body.posterior * depth)
        if name == "L1":
            conus_at = len(posterior_line) - 1
        bottom = top + up * height
        depth *= rng.uniform(0.97, 1.01) if lumbar else rng.uniform(0.95, 0.99)
    return _Spine(elements, points, posterior_line, anterior_line, conus_at)


def _offset_line(line: FloatArray | list[FloatArray], normal_side: float, distance: float) -> FloatArray:
    """The polyline moved ``distance`` along its own posterior normal (``normal_side`` -1: anterior)."""
    pts = np.asarray(line)
    tangent = np.gradient(pts, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)  # tangent runs upwards: this points backwards
    if np.mean(normal[:, 0]) < 0:
        normal = -normal
    return pts + normal * normal_side * distance


def _extend(line: FloatArray, reach: float) -> FloatArray:
    """The polyline prolonged at both ends along its end directions."""
    head = line[-1] + (line[-1] - line[-2]) / (np.linalg.norm(line[-1] - line[-2]) + 1e-9) * reach
    tail = line[0] + (line[0] - line[1]) / (np.linalg.norm(line[0] - line[1]) + 1e-9) * reach
    return np.vstack([tail, line, head])


def _band(canvas: npt.NDArray[np.uint8], inner: FloatArray, outer: FloatArray, tissue: Tissue) -> None:
    """Fill the strip between two polylines that run the same way."""
    _fill(canvas, np.vstack([inner, outer[::-1]]), tissue)


def _fill(canvas: npt.NDArray[np.uint8], polygon: FloatArray, tissue: Tissue) -> None:
    cv2.fillPoly(canvas, [np.round(polygon * 4).astype(np.int32)], int(tissue), lineType=cv2.LINE_8, shift=2)


def _ellipse(canvas: npt.NDArray[np.uint8], centre: FloatArray, axes: tuple[float, float], angle_deg: float,
             tissue: Tissue) -> None:
    cv2.ellipse(canvas, (round(centre[0] * 4), round(centre[1] * 4)),
                (max(1, round(axes[0] * 4)), max(1, round(axes[1] * 4))), angle_deg, 0, 360, int(tissue),
                -1, lineType=cv2.LINE_8, shift=2)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> npt.NDArray[np.float32]:
    """Zero-mean, unit-variance noise smooth over about ``scale_px`` pixels."""
    small = (max(2, int(shape[0] / scale_px)), max(2, int(shape[1] / scale_px)))
    noise = rng.standard_normal(small).astype(np.float32)
    field_ = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return (field_ - field_.mean()) / (field_.std() + 1e-6)


def _draw_labels(rng: np.random.Generator, spine: _Spine, shape: tuple[int, int],
                 unit: float) -> npt.NDArray[np.uint8]:
    """The label map of the whole picture (canvas pixels)."""
    rows, columns = shape
    canvas = np.full(shape, int(Tissue.AIR), dtype=np.uint8)
    reach = float(rows + columns)
    posterior = _extend(np.asarray(spine.posterior_line), reach)
    anterior = _extend(np.asarray(spine.anterior_line), reach)
    depth = unit * 0.8
    # the body: fat from the skin behind to the abdominal wall in front
    skin_back = depth * rng.uniform(2.6, 5.0)
    belly = depth * rng.uniform(3.0, 9.0)
    _band(canvas, _offset_line(anterior, -1, belly), _offset_line(posterior, 1, skin_back), Tissue.FAT)
    # paraspinal muscle behind the canal, under the subcutaneous fat
    fat_back = depth * rng.uniform(0.2, 0.9)
    _band(canvas, posterior, _offset_line(posterior, 1, skin_back - fat_back), Tissue.MUSCLE)
    # in front: a layer of muscle, bowel loops, vessels along the upper lumbar bodies, the bladder low down
    front = _offset_line(anterior, -1, depth * 0.15)
    _band(canvas, front, _offset_line(anterior, -1, depth * rng.uniform(0.3, 0.7)), Tissue.MUSCLE)
    for _ in range(int(rng.integers(6, 18))):
        along = rng.uniform(0.2, 0.95)
        base = anterior[int(along * (len(anterior) - 1))]
        centre = base + np.array([-rng.uniform(0.8, 4.5) * depth, rng.uniform(-1, 1) * depth])
        axes = (rng.uniform(0.3, 1.2) * depth, rng.uniform(0.25, 0.9) * depth)
        _ellipse(canvas, centre, axes, rng.uniform(0, 180), Tissue.BOWEL if rng.random() < 0.8 else Tissue.FLUID)
    vessel_top = len(spine.anterior_line) - 1
    vessel_bottom = max(6, len(spine.anterior_line) // 3)
    vessel = np.asarray(spine.anterior_line[vessel_bottom:vessel_top + 1])
    if len(vessel) >= 2:
        near = _offset_line(vessel, -1, depth * rng.uniform(0.15, 0.35))
        _band(canvas, near, _offset_line(vessel, -1, depth * rng.uniform(0.6, 0.9)), Tissue.VESSEL)
    sacrum = np.asarray(spine.anterior_line[:6])
    if rng.random() < 0.7:
        _ellipse(canvas, sacrum[2] + np.array([-rng.uniform(1.5, 3.0) * depth, 0.0]),
                 (rng.uniform(0.8, 1.6) * depth, rng.uniform(0.6, 1.2) * depth), rng.uniform(-20, 20), Tissue.FLUID)
    # the canal: epidural fat, CSF, the cord down to the conus and the roots below, ligamentum flavum
    canal_width = depth * rng.uniform(0.35, 0.65)
    _band(canvas, posterior, _offset_line(posterior, 1, canal_width * 1.25), Tissue.FAT)
    _band(canvas, _offset_line(posterior, 1, canal_width * 0.05), _offset_line(posterior, 1, canal_width), Tissue.CSF)
    cord_line = posterior[spine.conus_at + 1:]
    if len(cord_line) >= 2:
        _band(canvas, _offset_line(cord_line, 1, canal_width * 0.3),
              _offset_line(cord_line, 1, canal_width * 0.72), Tissue.CORD)
        tip = cord_line[0]
        for _ in range(int(rng.integers(2, 6))):  # cauda equina roots
            end = posterior[max(1, spine.conus_at - int(rng.integers(4, 9)))]
            shift = rng.uniform(0.3, 0.75) * canal_width
            a = _offset_line([tip, end], 1, shift)
            cv2.line(canvas, tuple(np.round(a[0] * 4).astype(int)), tuple(np.round(a[1] * 4).astype(int)),
                     int(Tissue.CORD), max(1, int(unit * 0.03)), lineType=cv2.LINE_8, shift=2)
    for element in spine.elements:
        if "/" in element.name or element.name.startswith("S"):
            continue
        # lamina and spinous process behind the canal, angled down
        base = element.centre + element.posterior * (element.half_depth + canal_width * 1.25)
        direction = element.posterior * math.cos(0.4) - element.up * math.sin(rng.uniform(0.2, 0.6))
        length = element.half_depth * rng.uniform(1.2, 2.0)
        spinous = np.array([base + element.up * element.half_height * 0.7,
                            base + direction * length + element.up * element.half_height * 0.25,
                            base + direction * length - element.up * element.half_height * 0.25,
                            base - element.up * element.half_height * 0.55])
        _fill(canvas, spinous, Tissue.CORTEX)
        inner = spinous.mean(axis=0) + (spinous - spinous.mean(axis=0)) * 0.7
        _fill(canvas, inner, Tissue.MARROW)
        flavum = base - element.posterior * canal_width * 0.15 - element.up * element.half_height * 1.1
        _ellipse(canvas, flavum, (canal_width * 0.18, element.half_height * 0.45),
                 math.degrees(math.atan2(element.up[1], element.up[0])) + 90, Tissue.LIGAMENT)
    # the column: discs first, then the bodies over them (rim, then marrow)
    for element in spine.elements:
        if "/" not in element.name:
            continue
        _fill(canvas, element.polygon, Tissue.ANNULUS)
        nucleus = (element.half_depth * rng.uniform(0.4, 0.65), element.half_height * rng.uniform(0.35, 0.6))
        if element.degenerate:
            nucleus = (nucleus[0] * 0.6, nucleus[1] * 0.5)
        angle = math.degrees(math.atan2(element.posterior[1], element.posterior[0]))
        centre = element.centre + element.posterior * element.half_depth * rng.uniform(0.0, 0.15)
        _ellipse(canvas, centre, nucleus, angle, Tissue.ANNULUS if element.degenerate and rng.random() < 0.5
                 else Tissue.NUCLEUS)
    rim = max(1.0, unit * rng.uniform(0.03, 0.08))
    bodies = [element for element in spine.elements if "/" not in element.name]
    for element in bodies:  # every rim first, then every marrow: the sacral segments fuse into one bone
        _fill(canvas, element.polygon, Tissue.CORTEX)
    for element in bodies:
        shrink = element.centre + (element.polygon - element.centre) * np.array(
            [1 - rim / max(element.half_depth, rim * 2)])
        _fill(canvas, shrink, Tissue.MARROW)
    sacral = [element for element in bodies if element.name.startswith("S")]
    for upper, lower in itertools.pairwise(sacral[:3]):  # faint remnants of the upper sacral discs
        if rng.random() < 0.5:
            junction = (upper.centre - upper.up * upper.half_height + lower.centre + lower.up * lower.half_height) / 2
            angle = math.degrees(math.atan2(upper.posterior[1], upper.posterior[0]))
            _ellipse(canvas, junction, (upper.half_depth * 0.6, max(0.6, unit * 0.04)), angle, Tissue.ANNULUS)
    return canvas


def _signal(rng: np.random.Generator, labels: npt.NDArray[np.uint8], contrast: str,
            random_contrast: bool) -> npt.NDArray[np.float32]:
    """Intensities of the label map: the source's contrast with jitter (or random ones) times each tissue's
    texture."""
    means = {t: float(np.clip(v + rng.normal(0, 0.06), 0, 1)) for t, v in CONTRAST[contrast].items()}
    if random_contrast:
        means = {t: (0.0 if t == Tissue.AIR else float(rng.uniform(0.05, 1.0))) for t in Tissue}
    lookup = np.array([means[t] for t in Tissue], dtype=np.float32)
    image = lookup[labels]
    strength = rng.uniform(0.3, 1.5)
    texture = _smooth_noise(rng, labels.shape, rng.uniform(2.0, 6.0))
    coarse = _smooth_noise(rng, labels.shape, rng.uniform(8.0, 20.0))
    for tissue, amount in TEXTURE.items():
        inside = labels == tissue
        pattern = texture if tissue != Tissue.BOWEL else coarse
        image[inside] *= 1 + strength * amount * pattern[inside]
    return np.clip(image, 0, None)


def render_picture(rng: np.random.Generator, source_name: str, size: tuple[int, int] = (256, 256)) -> Picture:
    """One picture of ``size`` (rows, columns) in the look of ``source_name`` (``lsd``, ``osf`` or ``tseg``)."""
    rows, columns = size
    canvas_shape = (rows * SUPERSAMPLE, columns * SUPERSAMPLE)
    short = min(canvas_shape)
    unit = short * rng.uniform(0.05, 0.1)  # a lumbar body's height
    spine = _build_spine(rng, unit)
    lumbar = np.array([spine.points[level] for level in LEVELS])
    # similarity: rotation about the lumbar centre, then a shift keeping every lumbar point inside
    rotation = math.radians(rng.uniform(-20.0, 20.0))
    rot = np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])
    centre = lumbar.mean(axis=0)
    rotated = (lumbar - centre) @ rot.T
    low = rotated.min(axis=0)
    high = rotated.max(axis=0)
    margin = EDGE_MARGIN * np.array([canvas_shape[1], canvas_shape[0]])
    span = np.array([canvas_shape[1], canvas_shape[0]]) - 2 * margin
    slack = np.maximum(0.0, span - (high - low))
    shift = margin - low + rng.uniform(0, 1, size=2) * slack

    def place(points: FloatArray) -> FloatArray:
        return (np.asarray(points) - centre) @ rot.T + shift

    for element in spine.elements:
        element.polygon = place(element.polygon)
        element.centre = place(element.centre[None])[0]
        element.up = rot @ element.up
        element.posterior = rot @ element.posterior
    spine.posterior_line = list(place(np.asarray(spine.posterior_line)))
    spine.anterior_line = list(place(np.asarray(spine.anterior_line)))
    labels = _draw_labels(rng, spine, canvas_shape, unit)
    random_contrast = bool(rng.random() < RANDOM_CONTRAST_SHARE)
    signal = _signal(rng, labels, source_name, random_contrast)
    image = cv2.resize(signal, (columns, rows), interpolation=cv2.INTER_AREA)  # partial volume
    blur = rng.uniform(0.0, 1.2)
    if blur > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    if rng.random() < 0.3:  # thick slices or a low matrix along one axis
        factor = rng.uniform(1.5, 2.5)
        axis_rows = rng.random() < 0.5
        small = (columns, max(8, int(rows / factor))) if axis_rows else (max(8, int(columns / factor)), rows)
        image = cv2.resize(cv2.resize(image, small, interpolation=cv2.INTER_AREA), (columns, rows),
                           interpolation=cv2.INTER_LINEAR)
    ct = source_name == "tseg"
    if not ct:
        bias = np.exp(rng.uniform(0.0, 0.45) * _smooth_noise(rng, (rows, columns), rng.uniform(60.0, 160.0)))
        image = image * bias.astype(np.float32)
    noise = rng.uniform(0.005, 0.06)
    if ct:
        image = image + noise * rng.standard_normal(image.shape).astype(np.float32)
    else:  # Rician
        real = image + noise * rng.standard_normal(image.shape).astype(np.float32)
        imaginary = noise * rng.standard_normal(image.shape).astype(np.float32)
        image = np.sqrt(real ** 2 + imaginary ** 2)
    image = np.clip(image, 0, None)
    top = float(np.percentile(image, 99.5)) or 1.0
    gamma = math.exp(rng.uniform(math.log(0.7), math.log(1.5)))
    pixels = np.clip((np.clip(image / top, 0, 1) ** gamma) * 255 + 0.5, 0, 255).astype(np.uint8)
    # canvas pixel centres: canvas (i + 0.5) / SUPERSAMPLE - 0.5 in picture pixels
    points = {level: (float((p[0] + 0.5) / SUPERSAMPLE - 0.5), float((p[1] + 0.5) / SUPERSAMPLE - 0.5))
              for level, p in zip(LEVELS, place(lumbar), strict=True)}
    settings: dict[str, float | str] = {"contrast": "random" if random_contrast else source_name,
                                        "unit_px": round(unit / SUPERSAMPLE, 2),
                                        "rotation_deg": round(math.degrees(rotation), 2), "gamma": round(gamma, 3),
                                        "noise": round(noise, 4), "blur_px": round(blur, 2)}
    discs = {element.name: element for element in spine.elements}
    posterior = {level: (float(discs[level].posterior[0]), float(discs[level].posterior[1])) for level in LEVELS}
    return Picture(pixels, points, source_name, labels[::SUPERSAMPLE, ::SUPERSAMPLE].copy(), posterior, settings)


def write_lumbar_coords(folder: Path, count: int, seed: int, size: int = 256) -> list[PictureTruth]:
    """``count`` pictures under ``folder`` (the Lumbar Coords layout: ``coords_pretrain.csv`` and
    ``data/processed_<source>_jpgs/``), the sources in turn; returns the truth (a row per picture)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4C43]))
    rows: list[dict[str, object]] = []
    truth: list[PictureTruth] = []
    for index in range(count):
        source_name = SOURCES[index % len(SOURCES)]
        aspect = rng.uniform(0.8, 1.25)
        shape = (size, round(size * aspect / 16) * 16) if rng.random() < 0.4 else (size, size)
        picture = render_picture(rng, source_name, shape)
        filename = f"{index:05d}_{source_name}.jpg"  # the first part names the study: one per picture
        target = folder / source.DATA_FOLDER / source.PRETRAIN_SOURCES[source_name][0] / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as temporary:
            if not cv2.imwrite(str(temporary), picture.pixels, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f"cannot write {target}")
        height, width = picture.pixels.shape
        for level, (x, y) in picture.points.items():
            rows.append({"source": source_name, "filename": filename, "level": level,
                         "relative_x": round(x / width, 6), "relative_y": round(y / height, 6)})
        truth.append(PictureTruth(filename, source_name, width, height, picture.points, picture.settings))
    table = folder / source.PRETRAIN_FILE
    with atomic_path(table) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["source", "filename", "level", "relative_x", "relative_y"])
        writer.writeheader()
        writer.writerows(rows)
    return truth
