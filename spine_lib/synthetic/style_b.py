"""A second synthetic style of mid-sagittal lumbar MRI, with its own geometry and signal model, on which the disc
localizer is scored but never trained (how it holds on images unlike its training set).

Geometry, in millimetres (``u`` anterior -> posterior, ``v`` superior -> inferior): a chain of vertebral bodies
and discs stacked upward from the S1 endplate (tilted by the sacral slope) through per-element wedge angles
(lumbar lordosis, thoracic kyphosis, T5 at the top) and downward through the fused sacral segments and the
coccyx. Bodies are rounded trapezoids with concave endplates, a cortical rim and textured marrow; discs are
lens-shaped with an annulus and a nucleus, degenerated ones thinner, darker and bulging. Soft tissue follows the
signed distance to the posterior and anterior walls of the column: the canal (CSF, cord and conus, cauda equina,
epidural fat), ligamentum flavum, laminae and spinous processes in paraspinal muscle, subcutaneous fat, skin,
air; in front the aorta, bowel, liver, bladder and the abdominal wall.

Signal: every tissue has a proton density, T1 and T2, imaged by a spin-echo equation (T1- or T2-like) or an
inversion-recovery one with fat nulled (STIR-like); some images invert the tissue contrast. Then blur, a smooth
multiplicative bias field (with a posterior coil profile), Rician noise and a gamma.

A similarity (pixel spacing, in-plane rotation, shift) maps the anatomy onto the pixel grid: ``x`` = column
(anterior on the left), ``y`` = row (superior at the top), pixel centres at integers. The truth points are
mapped from the geometry analytically: the canal point of a level is the posterior margin of its disc at the
disc's mid-height.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from spine_lib.io.atomic import atomic_path
from spine_lib.io.records import write_records_csv
from spine_lib.io.transforms import normalize_to_uint8
from spine_lib.levels import LEVELS

FloatArray = npt.NDArray[np.float64]

#: Field of view (mm) at spine scale 1; scale ``k`` shows ``REFERENCE_FOV_MM / k`` over the image.
REFERENCE_FOV_MM = 300.0
SCALE_RANGE = (0.6, 1.6)
MAX_ROTATION_DEG = 20.0
#: Contrast kinds and how often each is drawn.
CONTRASTS: tuple[str, ...] = ("t1", "t2", "stir", "inverted")
CONTRAST_SHARES = (0.3, 0.35, 0.15, 0.2)
#: Topmost vertebra the framing aims to show, and how often.
TOP_CHOICES: tuple[str, ...] = ("T10", "T11", "T12", "L1")
TOP_SHARES = (0.2, 0.35, 0.3, 0.15)
POINTS_COLUMNS = ("image", "level", "x", "y", "width", "height")
IMAGES_COLUMNS = ("image", "contrast", "base_contrast", "scale", "rotation_deg", "spacing_mm", "top_vertebra",
                  "thoracic_in_view", "gamma", "noise", "blur_px")

THORACIC: tuple[str, ...] = ("T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12")
LUMBAR: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
SACRAL: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5")
COCCYX: tuple[str, ...] = ("Co1", "Co2")

#: Nominal body (height, depth) in mm; discs by their mid height (DOMAIN.md "Anatomy and signal").
_BODY_MM: dict[str, tuple[float, float]] = {
    "T5": (17.0, 24.0), "T6": (17.5, 25.0), "T7": (18.0, 26.0), "T8": (19.0, 27.0),
    "T9": (20.0, 28.0), "T10": (21.0, 29.0), "T11": (22.5, 30.5), "T12": (24.0, 32.0),
    "L1": (25.5, 35.0), "L2": (26.5, 37.0), "L3": (27.0, 39.0), "L4": (27.0, 40.0), "L5": (26.0, 40.0),
    "S1": (30.0, 45.0), "S2": (24.0, 38.0), "S3": (19.0, 30.0), "S4": (15.0, 22.0), "S5": (11.0, 16.0),
    "Co1": (8.0, 12.0), "Co2": (6.0, 9.0),
}
_DISC_MM: dict[str, float] = {
    "T5/T6": 4.0, "T6/T7": 4.0, "T7/T8": 4.2, "T8/T9": 4.4,
    "T9/T10": 4.5, "T10/T11": 5.0, "T11/T12": 5.5, "T12/L1": 6.5,
    "L1/L2": 8.0, "L2/L3": 9.0, "L3/L4": 10.0, "L4/L5": 11.0, "L5/S1": 10.5,
}
#: Share of the lumbar lordosis each element carries (the discs most, L5 the most wedged body).
_LORDOSIS_SHARE: dict[str, float] = {
    "L5/S1": 0.27, "L5": 0.14, "L4/L5": 0.20, "L4": 0.07, "L3/L4": 0.13, "L3": 0.04,
    "L2/L3": 0.08, "L2": 0.02, "L1/L2": 0.04, "L1": 0.01,
}
#: How prone each lumbar disc is to degeneration (lower levels more).
_DEGENERATION_PRONENESS: dict[str, float] = {"L1/L2": 0.4, "L2/L3": 0.5, "L3/L4": 0.7, "L4/L5": 1.0, "L5/S1": 1.0}
_MIN_POSTERIOR_DISC_MM = 4.0

#: Relaxation of each tissue at ~1.5 T: proton density, T1 (ms), T2 (ms; fat as seen by fast spin echo).
_RELAXATION: dict[str, tuple[float, float, float]] = {
    "fat": (1.0, 260.0, 130.0),
    "water_marrow": (0.8, 1000.0, 50.0),
    "edema": (0.9, 1300.0, 110.0),
    "muscle": (0.8, 900.0, 40.0),
    "skin": (0.75, 800.0, 45.0),
    "csf": (1.0, 4000.0, 2000.0),
    "nerve": (0.75, 850.0, 80.0),
    "ligament": (0.12, 700.0, 10.0),
    "cortex": (0.05, 800.0, 5.0),
    "annulus": (0.7, 900.0, 35.0),
    "nucleus": (0.9, 1200.0, 180.0),
    "nucleus_degenerate": (0.72, 1000.0, 45.0),
    "viscera": (0.8, 800.0, 60.0),
    "fluid": (0.95, 3000.0, 900.0),
    "liver": (0.75, 550.0, 45.0),
    "blood": (0.1, 1200.0, 200.0),
}


class Tissue(IntEnum):
    """The tissue painted at a pixel (the label map of a :class:`StyleBImage`)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    SKIN = 3
    VISCERA = 4
    FLUID = 5
    LIVER = 6
    VESSEL = 7
    LIGAMENT = 8
    CSF = 9
    NERVE = 10
    CORTEX = 11
    MARROW = 12
    ANNULUS = 13
    NUCLEUS = 14
    GAS = 15


DISC_TISSUES = (Tissue.ANNULUS, Tissue.NUCLEUS)
BONE_TISSUES = (Tissue.CORTEX, Tissue.MARROW)
CANAL_TISSUES = (Tissue.CSF, Tissue.NERVE, Tissue.LIGAMENT)


@dataclass(frozen=True)
class StyleBImage:
    """One rendered mid-sagittal image and its truth.

    ``image`` is float32 (rows, columns), about 0..1; ``tissue`` the :class:`Tissue` of each pixel (before blur);
    points are ``(x, y)`` = (column, row) with pixel centres at integers: ``canal_points`` and ``disc_centres``
    per lumbar level (L1/L2 ... L5/S1), ``vertebra_centres`` per vertebral body drawn (T5 ... S1, some outside
    the frame); ``spacing_mm`` the pixel spacing; ``params`` the drawn parameters (JSON-able).
    """

    image: npt.NDArray[np.float32]
    tissue: npt.NDArray[np.uint8]
    canal_points: dict[str, tuple[float, float]]
    disc_centres: dict[str, tuple[float, float]]
    vertebra_centres: dict[str, tuple[float, float]]
    spacing_mm: float
    params: dict[str, Any]

    @property
    def contrast(self) -> str:
        """The contrast kind: ``t1``, ``t2``, ``stir`` or ``inverted``."""
        return str(self.params["contrast"])


# --- geometry -----------------------------------------------------------------------------------------------


def _up(alpha: float) -> FloatArray:
    """Superior unit normal of an endplate whose normal is tilted anteriorly by ``alpha`` (radians)."""
    return np.array([-math.sin(alpha), -math.cos(alpha)])


@dataclass(frozen=True)
class _Segment:
    """A vertebral body or disc: a wedge between two endplates, in its own frame.

    Local ``s`` runs along the mid-axis toward posterior, ``r`` across it toward inferior; the endplates are the
    lines ``r = +-(height / 2 - s * tan(wedge / 2))`` (a positive wedge is taller anteriorly).
    """

    name: str
    kind: str  # body, disc or remnant (a fused sacral or coccygeal disc)
    centre: tuple[float, float]
    angle: float
    depth: float
    height: float
    wedge: float
    bulge: float = 0.0
    front_bulge: float = 0.0
    grade: int = 0

    def local(self, u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(s, r)`` of body-frame points."""
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        du, dv = u - self.centre[0], v - self.centre[1]
        return du * ca - dv * sa, du * sa + dv * ca

    def point(self, s: float, r: float) -> FloatArray:
        """Body-frame ``(u, v)`` of a local point."""
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        return np.array([self.centre[0] + s * ca + r * sa, self.centre[1] - s * sa + r * ca])

    def half_height(self, s: FloatArray | float) -> Any:
        return self.height / 2 - np.asarray(s) * math.tan(self.wedge / 2)

    @property
    def canal_point(self) -> FloatArray:
        """The posterior margin at mid-height (``r = 0``), bulge included."""
        return self.point(self.depth / 2 + self.bulge, 0.0)

    @property
    def front_point(self) -> FloatArray:
        return self.point(-self.depth / 2 - self.front_bulge, 0.0)

    def corner(self, posterior: bool, inferior: bool) -> FloatArray:
        s = self.depth / 2 if posterior else -self.depth / 2
        r = float(self.half_height(s))
        return self.point(s, r if inferior else -r)


@dataclass(frozen=True)
class _SegmentSpec:
    name: str
    kind: str
    depth: float
    height: float
    wedge: float
    bulge: float = 0.0
    front_bulge: float = 0.0
    grade: int = 0


def _stack(start: FloatArray, alpha: float, specs: Sequence[_SegmentSpec], upward: bool) -> list[_Segment]:
    """Segments stacked endplate on endplate from ``start`` (an endplate centre tilted by ``alpha``)."""
    out: list[_Segment] = []
    point = np.asarray(start, dtype=np.float64)
    for spec in specs:
        mid = alpha - spec.wedge / 2 if upward else alpha + spec.wedge / 2
        step = _up(mid) * (spec.height if upward else -spec.height)
        centre = point + step / 2
        out.append(_Segment(spec.name, spec.kind, (float(centre[0]), float(centre[1])), mid, spec.depth,
                            spec.height, spec.wedge, spec.bulge, spec.front_bulge, spec.grade))
        point = point + step
        alpha = alpha - spec.wedge if upward else alpha + spec.wedge
    return out


@dataclass
class _Anatomy:
    """A subject: the column top-down, per-level canal sizes, soft-tissue sizes and tissue details."""

    segments: list[_Segment]
    canal_ap: dict[str, float]
    params: dict[str, Any]

    def get(self, name: str) -> _Segment:
        return next(s for s in self.segments if s.name == name)


def _draw_anatomy(rng: np.random.Generator) -> _Anatomy:
    """Sizes, curvature and degeneration of one subject."""
    size = rng.uniform(0.88, 1.12)
    sacral_slope = math.radians(rng.uniform(30.0, 45.0))
    lordosis = sacral_slope + math.radians(rng.uniform(-8.0, 12.0))
    shares = {name: share * rng.uniform(0.7, 1.3) for name, share in _LORDOSIS_SHARE.items()}
    total_share = sum(shares.values())
    age = rng.uniform(0.0, 1.0)
    grades: dict[str, int] = {}
    for level in LEVELS:
        p = (0.1 + 0.6 * age) * _DEGENERATION_PRONENESS[level]
        grades[level] = int(rng.choice(4, p=[1 - p, 0.4 * p, 0.35 * p, 0.25 * p]))

    up_specs: list[_SegmentSpec] = []
    names = (*THORACIC, *LUMBAR)
    for lower, upper in zip(("S1", *reversed(names[1:])), reversed(names), strict=True):
        disc = f"{upper}/{lower}"
        height, depth = _BODY_MM[upper]
        lower_depth = _BODY_MM[lower][1]
        disc_depth = (depth + lower_depth) / 2 * size
        grade = grades.get(disc, int(rng.random() < 0.3 * age))
        disc_height = _DISC_MM[disc] * size * rng.uniform(0.9, 1.12)
        disc_height *= (1.0, rng.uniform(0.85, 0.95), rng.uniform(0.65, 0.8), rng.uniform(0.45, 0.6))[grade]
        if disc in _LORDOSIS_SHARE:
            disc_wedge = lordosis * shares[disc] / total_share
            body_wedge = lordosis * shares[upper] / total_share
        elif disc == "T12/L1":
            disc_wedge, body_wedge = math.radians(rng.uniform(-2.0, 2.0)), -math.radians(rng.uniform(0.0, 2.0))
        else:
            disc_wedge, body_wedge = -math.radians(rng.uniform(1.0, 3.0)), -math.radians(rng.uniform(0.5, 2.5))
        limit = 2 * math.atan(max(disc_height - _MIN_POSTERIOR_DISC_MM, 0.0) / disc_depth)
        disc_wedge = float(np.clip(disc_wedge, -limit, limit))
        bulge = (rng.uniform(0.0, 1.0), rng.uniform(0.3, 1.5), rng.uniform(1.0, 2.5), rng.uniform(1.5, 3.5))[grade]
        front = rng.uniform(0.5, 2.0) + 0.6 * grade
        up_specs.append(_SegmentSpec(disc, "disc", disc_depth, disc_height, disc_wedge, bulge, front, grade))
        up_specs.append(_SegmentSpec(upper, "body", depth * size * rng.uniform(0.96, 1.04),
                                     height * size * rng.uniform(0.95, 1.05), body_wedge))

    down_specs: list[_SegmentSpec] = []
    below = (*SACRAL, *COCCYX)
    for i, name in enumerate(below):
        height, depth = _BODY_MM[name]
        curl = rng.uniform(5.0, 11.0) if name in SACRAL else rng.uniform(10.0, 20.0)
        down_specs.append(_SegmentSpec(name, "body", depth * size, height * size, -math.radians(curl)))
        if i + 1 < len(below):
            next_depth = _BODY_MM[below[i + 1]][1]
            down_specs.append(_SegmentSpec(f"{name}/{below[i + 1]}", "remnant", (depth + next_depth) / 2 * size,
                                           rng.uniform(1.0, 2.2) * size, -math.radians(2.0)))

    origin = np.zeros(2)
    upper_part = _stack(origin, sacral_slope, up_specs, upward=True)
    lower_part = _stack(origin, sacral_slope, down_specs, upward=False)
    segments = [*reversed(upper_part), *lower_part]

    base = rng.uniform(14.0, 19.0)
    canal_ap: dict[str, float] = {}
    for name in (*THORACIC, *LUMBAR):
        canal_ap[name] = (base - 2.0 if name in THORACIC else base) + rng.uniform(-1.0, 1.0)
    for i, name in enumerate(SACRAL):
        canal_ap[name] = 0.8 * base + (4.0 - 0.8 * base) * i / (len(SACRAL) - 1)
    canal_ap.update({"Co1": 1.5, "Co2": 0.0})

    real_lordosis = sum(s.wedge for s in segments if s.name in _LORDOSIS_SHARE)
    params = {
        "size_factor": round(size, 4),
        "sacral_slope_deg": round(math.degrees(sacral_slope), 2),
        "lordosis_deg": round(math.degrees(real_lordosis), 2),
        "degeneration": grades,
        "age": round(age, 3),
    }
    return _Anatomy(segments, canal_ap, params)


# --- fields over the pixel grid ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WallField:
    """Signed distance (mm) to a wall of the column (positive away from the column), the arc length of the
    nearest wall point (mm from the top), and attributes interpolated along the wall."""

    distance: FloatArray
    arc: FloatArray
    attributes: FloatArray  # (attributes, rows, columns)


def _wall_field(points: FloatArray, attributes: FloatArray, outward: float, u: FloatArray, v: FloatArray,
                chunk: int = 8192) -> _WallField:
    """:class:`_WallField` of a polyline ``points`` (top-down) with per-vertex ``attributes`` (K, A).

    ``outward`` +1 puts positive distances on the posterior side of a downward polyline, -1 on the anterior.
    A point nearest to a vertex takes its side from the mean of the two edge normals there (exact for a simple
    polyline, whatever the angle at the vertex).
    """
    start, delta = points[:-1], np.diff(points, axis=0)
    lengths = np.hypot(delta[:, 0], delta[:, 1])
    arc_start = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    normal = np.stack([delta[:, 1], -delta[:, 0]], axis=1) / lengths[:, None] * outward
    vertex_normal = np.vstack([normal[:1], normal[:-1] + normal[1:], normal[-1:]])
    flat_u, flat_v = u.ravel(), v.ravel()
    distance = np.empty(flat_u.size)
    arc = np.empty(flat_u.size)
    attrs = np.empty((attributes.shape[1], flat_u.size))
    for lo in range(0, flat_u.size, chunk):
        pu = flat_u[lo:lo + chunk, None] - start[:, 0]
        pv = flat_v[lo:lo + chunk, None] - start[:, 1]
        t = np.clip((pu * delta[:, 0] + pv * delta[:, 1]) / lengths**2, 0.0, 1.0)
        eu, ev = pu - t * delta[:, 0], pv - t * delta[:, 1]
        nearest = np.argmin(eu * eu + ev * ev, axis=1)
        rows = np.arange(nearest.size)
        tk, euk, evk = t[rows, nearest], eu[rows, nearest], ev[rows, nearest]
        side_normal = normal[nearest]
        side_normal = np.where((tk <= 0.0)[:, None], vertex_normal[nearest], side_normal)
        side_normal = np.where((tk >= 1.0)[:, None], vertex_normal[nearest + 1], side_normal)
        side = np.where(euk * side_normal[:, 0] + evk * side_normal[:, 1] >= 0, 1.0, -1.0)
        distance[lo:lo + chunk] = np.hypot(euk, evk) * side
        arc[lo:lo + chunk] = arc_start[nearest] + tk * lengths[nearest]
        attrs[:, lo:lo + chunk] = (attributes[nearest] * (1 - tk[:, None]) + attributes[nearest + 1] * tk[:, None]).T
    shape = u.shape
    return _WallField(distance.reshape(shape), arc.reshape(shape), attrs.reshape((-1, *shape)))


def _coarse_wall_field(points: FloatArray, attributes: FloatArray, outward: float, u: FloatArray,
                       v: FloatArray) -> _WallField:
    """:func:`_wall_field` computed on every other pixel and interpolated back (the distance is piecewise
    linear across the wall, so the interpolation keeps the wall where it is)."""
    rows, columns = u.shape
    if rows % 2 or columns % 2:
        return _wall_field(points, attributes, outward, u, v)
    # u and v are affine in the pixel position: a 2x2 block's mean is its centre, where resize samples it
    coarse_u = u.reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3))
    coarse_v = v.reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3))
    coarse = _wall_field(points, attributes, outward, coarse_u, coarse_v)

    def up(field: FloatArray) -> FloatArray:
        return np.asarray(cv2.resize(field, (columns, rows), interpolation=cv2.INTER_LINEAR), dtype=np.float64)

    return _WallField(up(coarse.distance), up(coarse.arc), np.stack([up(a) for a in coarse.attributes]))


def _extended(points: list[FloatArray], attributes: list[list[float]], reach: float = 400.0
              ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The polyline (vertices closer than 0.05 mm merged) with its ends continued by ``reach`` mm, its
    attributes, and each vertex's arc length."""
    keep = [0] + [i for i in range(1, len(points)) if np.hypot(*(points[i] - points[i - 1])) > 0.05]
    pts = np.array([points[i] for i in keep])
    head = pts[0] + (pts[0] - pts[1]) / np.linalg.norm(pts[0] - pts[1]) * reach
    tail = pts[-1] + (pts[-1] - pts[-2]) / np.linalg.norm(pts[-1] - pts[-2]) * reach
    pts = np.vstack([head, pts, tail])
    kept = [attributes[i] for i in keep]
    attrs = np.array([kept[0], *kept, kept[-1]], dtype=np.float64)
    arcs = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    return pts, attrs, arcs


def _profile(points: FloatArray, values: FloatArray, v: FloatArray, sigma_mm: float) -> FloatArray:
    """A smooth function of ``v`` through ``values`` at the points' ``v`` (Gaussian-smoothed along ``v``),
    evaluated at ``v``: for outlines that follow the column without copying its corners."""
    knots = np.maximum.accumulate(points[:, 1]) + np.arange(len(points)) * 1e-6
    lo = min(float(v.min()), float(knots[0])) - 3 * sigma_mm
    hi = max(float(v.max()), float(knots[-1])) + 3 * sigma_mm
    grid = np.arange(lo, hi + 1.0, 1.0)
    raw = np.interp(grid, knots, values)
    half = int(3 * sigma_mm)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_mm) ** 2)
    smooth = np.convolve(np.pad(raw, half, mode="edge"), kernel / kernel.sum(), mode="valid")
    return np.interp(v, grid, smooth)


def _ramp(x: FloatArray, width: float) -> FloatArray:
    """0 -> 1 as ``x`` crosses 0 over ``width`` (a pixel: area coverage of a straight edge)."""
    return np.clip(x / width + 0.5, 0.0, 1.0)


def _band(x: FloatArray, lo: FloatArray | float, hi: FloatArray | float, width: float) -> FloatArray:
    return _ramp(x - lo, width) * _ramp(hi - x, width)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> FloatArray:
    """Gaussian-filtered white noise of unit standard deviation."""
    white = rng.standard_normal(shape).astype(np.float32)
    field = cv2.GaussianBlur(white, (0, 0), sigmaX=max(sigma_px, 0.3), borderType=cv2.BORDER_REFLECT)
    return (field / max(float(field.std()), 1e-6)).astype(np.float64)


def _streaks(rng: np.random.Generator, shape: tuple[int, int], px: float, rotation: float) -> FloatArray:
    """Noise stretched along the spine (superior-inferior in the body frame), of unit standard deviation."""
    white = rng.standard_normal(shape).astype(np.float32)
    field = cv2.GaussianBlur(white, (0, 0), sigmaX=max(0.6 / px, 0.3), sigmaY=max(8.0 / px, 0.3),
                             borderType=cv2.BORDER_REFLECT)
    centre = ((shape[1] - 1) / 2, (shape[0] - 1) / 2)
    turn = cv2.getRotationMatrix2D(centre, -math.degrees(rotation), 1.0)
    field = cv2.warpAffine(field, turn, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.asarray(field, dtype=np.float64) / max(float(field.std()), 1e-6)


def _polygon_sdf(vertices: FloatArray, s: FloatArray, r: FloatArray) -> FloatArray:
    """Signed distance to a convex polygon (vertices counter-clockwise or not; negative inside)."""
    best = np.full(s.shape, np.inf)
    inside = np.ones(s.shape, dtype=bool)
    centre = vertices.mean(axis=0)
    for i in range(len(vertices)):
        a, b = vertices[i], vertices[(i + 1) % len(vertices)]
        edge = b - a
        t = np.clip(((s - a[0]) * edge[0] + (r - a[1]) * edge[1]) / float(edge @ edge), 0.0, 1.0)
        best = np.minimum(best, np.hypot(s - a[0] - t * edge[0], r - a[1] - t * edge[1]))
        normal = np.array([edge[1], -edge[0]])
        if normal @ (centre - a) > 0:
            normal = -normal
        inside &= (s - a[0]) * normal[0] + (r - a[1]) * normal[1] <= 0
    return np.where(inside, -best, best)


# --- signal -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sequence:
    kind: str  # t1, t2 or stir
    tr: float
    te: float
    ti: float = 0.0

    def signal(self, pd: float, t1: float, t2: float) -> float:
        recovery = 1 - math.exp(-self.tr / t1)
        if self.kind == "stir":
            recovery = abs(1 - 2 * math.exp(-self.ti / t1) + math.exp(-self.tr / t1))
        return pd * recovery * math.exp(-self.te / t2)


def _draw_sequence(rng: np.random.Generator, kind: str) -> _Sequence:
    if kind == "t1":
        return _Sequence("t1", rng.uniform(400.0, 700.0), rng.uniform(8.0, 16.0))
    if kind == "t2":
        return _Sequence("t2", rng.uniform(2500.0, 5000.0), rng.uniform(80.0, 120.0))
    ti = _RELAXATION["fat"][1] * math.log(2) * rng.uniform(0.9, 1.1)
    return _Sequence("stir", rng.uniform(3000.0, 5000.0), rng.uniform(30.0, 70.0), ti)


def _tissue_signals(rng: np.random.Generator, sequence: _Sequence) -> dict[str, float]:
    """Each tissue's signal under ``sequence``, its relaxation jittered for this subject."""
    out = {}
    for name, (pd, t1, t2) in _RELAXATION.items():
        out[name] = sequence.signal(pd * rng.uniform(0.92, 1.08), t1 * rng.uniform(0.9, 1.1),
                                    t2 * rng.uniform(0.9, 1.1))
    return out


class _Canvas:
    """Signal and tissue label images painted layer over layer with coverage ``alpha``."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.signal = np.zeros(shape, dtype=np.float64)
        self.tissue = np.zeros(shape, dtype=np.uint8)

    def paint(self, alpha: FloatArray, value: FloatArray | float, tissue: Tissue,
              window: tuple[slice, slice] = (slice(None), slice(None))) -> None:
        region = self.signal[window]
        region += alpha * (value - region)
        labels = self.tissue[window]
        labels[alpha > 0.5] = int(tissue)


# --- rendering --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """The similarity from body-frame mm to pixels: ``p = shift + R(rotation) m / spacing``."""

    spacing: float
    rotation: float
    shift: tuple[float, float]

    def to_pixel(self, m: FloatArray) -> FloatArray:
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        m = np.asarray(m, dtype=np.float64)
        x = self.shift[0] + (c * m[..., 0] - s * m[..., 1]) / self.spacing
        y = self.shift[1] + (s * m[..., 0] + c * m[..., 1]) / self.spacing
        return np.stack([x, y], axis=-1)

    def grid(self, size: int) -> tuple[FloatArray, FloatArray]:
        """Body-frame ``(u, v)`` of every pixel centre."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        y, x = np.mgrid[0:size, 0:size].astype(np.float64)
        dx, dy = (x - self.shift[0]) * self.spacing, (y - self.shift[1]) * self.spacing
        return c * dx + s * dy, -s * dx + c * dy


def _frame(rng: np.random.Generator, anatomy: _Anatomy, size: int) -> tuple[_Frame, dict[str, Any]]:
    """Scale, rotation and position: every lumbar disc inside, the chosen topmost vertebra in view if it fits."""
    scale = math.exp(rng.uniform(math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])))
    rotation = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    top = str(rng.choice(TOP_CHOICES, p=TOP_SHARES))
    discs = [anatomy.get(level) for level in LEVELS]
    keys = np.array([p for d in discs for p in (d.canal_point, d.front_point, np.array(d.centre))])
    top_body = anatomy.get(top)
    top_points = np.array([top_body.corner(True, False), top_body.corner(False, False)])
    margin = max(4.0, 0.04 * size)
    uniform_rows = rng.random() < 0.25
    fractions = rng.uniform(0.0, 1.0, size=2)
    top_margin = rng.uniform(1.0, 0.05 * size)
    while True:
        frame = _Frame(REFERENCE_FOV_MM / scale / size, rotation, (0.0, 0.0))
        px = frame.to_pixel(keys)
        lo = margin - px.min(axis=0)
        hi = size - 1 - margin - px.max(axis=0)
        if np.all(hi >= lo):
            break
        scale *= 0.95
    shift_x = lo[0] + fractions[0] * (hi[0] - lo[0])
    if uniform_rows:
        shift_y = lo[1] + fractions[1] * (hi[1] - lo[1])
    else:
        shift_y = float(np.clip(top_margin - frame.to_pixel(top_points)[:, 1].min(), lo[1], hi[1]))
    frame = _Frame(frame.spacing, rotation, (float(shift_x), float(shift_y)))
    return frame, {"scale": round(scale, 4), "rotation_deg": round(math.degrees(rotation), 3),
                   "aimed_top": top, "fov_mm": round(frame.spacing * size, 2)}


def _wall_points(anatomy: _Anatomy, posterior: bool) -> tuple[list[FloatArray], list[list[float]]]:
    """Vertices of the posterior (or anterior) wall of the column, top-down (body corners, disc apices), with
    the canal size, the posterior epidural fat and the posterior muscle depth at each."""
    points: list[FloatArray] = []
    attributes: list[list[float]] = []
    p = anatomy.params
    for seg in anatomy.segments:
        body = seg.name.split("/")[0]
        canal = anatomy.canal_ap.get(body, 0.0)
        muscle = p["muscle_mm"] * (0.8 if body in THORACIC else 1.0 if body in LUMBAR else 0.45)
        if seg.kind != "body":
            points.append(seg.canal_point if posterior else seg.front_point)
            fat = p["epidural_fat_mm"] if seg.kind == "disc" else 0.6
            attributes.append([canal, fat, muscle])
        else:
            for inferior in (False, True):
                points.append(seg.corner(posterior, inferior))
                attributes.append([canal, 0.6, muscle])
    return points, attributes


def _arc_of(anatomy: _Anatomy, arcs: FloatArray, points: FloatArray, posterior: bool, name: str,
            lower: bool = False) -> float:
    """Arc length along the posterior (or anterior) wall of a body's upper (or lower) corner, or of a disc's
    apex: the arc of the wall vertex nearest to it."""
    seg = anatomy.get(name)
    if seg.kind == "body":
        target = seg.corner(posterior, lower)
    else:
        target = seg.canal_point if posterior else seg.front_point
    return float(arcs[int(np.argmin(np.hypot(*(points - target).T)))])


def _paint_soft_tissue(canvas: _Canvas, rng: np.random.Generator, anatomy: _Anatomy, signals: dict[str, float],
                       u: FloatArray, v: FloatArray, frame: _Frame) -> dict[str, FloatArray]:
    """Everything but the bones and discs: the canal and the layers next to the column follow the distance to
    its walls; the outlines of the back and the abdomen are smooth curves along it."""
    shape = u.shape
    p = anatomy.params
    px = frame.spacing
    back_poly, back_attrs, back_arcs = _extended(*_wall_points(anatomy, posterior=True))
    front_poly, front_attrs, front_arcs = _extended(*_wall_points(anatomy, posterior=False))
    back = _coarse_wall_field(back_poly, back_attrs[:, :2], 1.0, u, v)
    front = _coarse_wall_field(front_poly, front_attrs[:, :2], -1.0, u, v)
    d, a = back.distance, front.distance
    canal_ap, epifat = back.attributes

    def arc_back(name: str, lower: bool = False) -> float:
        return _arc_of(anatomy, back_arcs, back_poly, True, name, lower)

    def arc_front(name: str, lower: bool = False) -> float:
        return _arc_of(anatomy, front_arcs, front_poly, False, name, lower)

    fine = _smooth_noise(rng, shape, 0.7 / px)
    mid = _smooth_noise(rng, shape, 2.5 / px)
    loops = _smooth_noise(rng, shape, p["loop_mm"] / px)
    contents = _smooth_noise(rng, shape, 9.0 / px)

    # outlines: the back skin behind the muscle, the front skin in front of the abdomen
    canal_k, muscle_k = back_attrs[:, 0], back_attrs[:, 2]
    sacral = (muscle_k < 0.5 * p["muscle_mm"]).astype(np.float64)
    muscle_end = _profile(back_poly, back_poly[:, 0] + canal_k + muscle_k, v, 25.0)
    back_skin = muscle_end + _profile(back_poly, p["back_fat_mm"] * (1 + 0.4 * sacral), v, 30.0) + 2.0
    bulge = np.exp(-(((front_poly[:, 1] - anatomy.get("L4").centre[1]) / 60.0) ** 2))  # the belly, at L4
    belly = p["abdomen_mm"] * _profile(front_poly, 1.0 + 0.15 * bulge - 0.2 * sacral, v, 45.0)
    front_skin = _profile(front_poly, front_poly[:, 0], v, 45.0) - belly - p["wall_mm"] - p["front_fat_mm"] - 2.0
    behind, ahead = back_skin - u, u - front_skin
    inside = _ramp(behind, px) * _ramp(ahead, px)
    streaks = _streaks(rng, shape, px, frame.rotation)  # fat between muscle fibres
    canvas.paint(inside, signals["muscle"] * (1 + 0.06 * mid + 0.03 * fine), Tissue.MUSCLE)
    canvas.paint(inside * np.clip(streaks - 1.2, 0, 0.6), signals["fat"], Tissue.MUSCLE)
    canvas.paint(_band(u, muscle_end, back_skin - 2.0, px) * inside, signals["fat"] * (1 + 0.04 * mid), Tissue.FAT)
    canvas.paint(_band(behind, 0.0, 2.0, px) * _ramp(ahead, px), signals["skin"], Tissue.SKIN)
    canvas.paint(_band(ahead, 2.0, 2.0 + p["front_fat_mm"], px) * inside, signals["fat"] * (1 + 0.04 * mid),
                 Tissue.FAT)
    canvas.paint(_band(ahead, 0.0, 2.0, px) * _ramp(behind, px), signals["skin"], Tissue.SKIN)

    # the abdomen: bowel loops (walls, content, fluid, some gas) in mesenteric fat
    viscera = _ramp(a - 1.0, px) * _ramp(ahead - 2.0 - p["front_fat_mm"] - p["wall_mm"], px)
    canvas.paint(viscera, signals["fat"] * (1 + 0.06 * mid), Tissue.FAT)
    lumen = np.clip((loops - p["loop_level"]) / 0.25 + 0.5, 0, 1) * viscera
    canvas.paint(lumen, signals["viscera"] * (1 + 0.12 * mid + 0.05 * fine), Tissue.VISCERA)
    canvas.paint(lumen * np.clip((contents - p["fluid_level"]) * 3.0, 0, 1), signals["fluid"] * (1 + 0.05 * fine),
                 Tissue.FLUID)
    canvas.paint(lumen * np.clip((loops - p["loop_level"] - 1.3) * 4.0, 0, 1) * (contents < -0.4), 0.0, Tissue.GAS)
    wall = _band(loops, p["loop_level"] - 0.12, p["loop_level"] + 0.12, 0.08) * viscera
    canvas.paint(wall * 0.8, signals["muscle"], Tissue.VISCERA)
    if p["liver"]:
        edge = arc_front("T12", lower=True) - 0.6 * (a - 20.0)
        liver = viscera * _ramp(a - 4.0, px) * np.clip((edge - front.arc) / 8.0, 0, 1)
        canvas.paint(liver, signals["liver"] * (1 + 0.04 * mid), Tissue.LIVER)
    if p["bladder"]:  # an ellipse in front of and below S3, in that segment's frame
        ra, rb = p["bladder_mm"]
        s3 = anatomy.get("S3")
        s, r = s3.local(u, v)
        ellipse = np.hypot((s + s3.depth / 2 + 15.0 + ra) / ra, (r - 1.5 * s3.height - 0.8 * rb) / rb)
        canvas.paint(_ramp((1 - ellipse) * min(ra, rb), px) * viscera, signals["fluid"], Tissue.FLUID)
    if p["aorta_mm"] > 0:
        vessel = _band(a, 1.5, 1.5 + p["aorta_mm"], px) * np.clip((arc_front("L4", True) - front.arc) / 10.0, 0, 1)
        canvas.paint(vessel * viscera, signals["blood"] * (1 + 0.5 * np.clip(contents, 0, None)), Tissue.VESSEL)
    column = _band(front.arc, front_arcs[1], front_arcs[-2], px)
    canvas.paint(_band(a, -1.5, 1.0, px) * column * inside, signals["ligament"], Tissue.LIGAMENT)  # anterior ligament

    # canal: CSF down to S2 (the end of the thecal sac), epidural fat below, dura, cord, roots, flavum
    open_canal = canal_ap > 0.5
    sac_end = arc_back("S2")
    canal = _band(d, -2.0, canal_ap, px) * open_canal
    canvas.paint(canal, signals["csf"], Tissue.CSF)
    canvas.paint(canal * np.clip((back.arc - sac_end) / 6.0, 0, 1), signals["fat"], Tissue.FAT)
    sac = np.clip((sac_end - back.arc) / 4.0, 0, 1)
    canvas.paint(_band(d, -0.3, 0.5, px) * sac, signals["ligament"], Tissue.LIGAMENT)
    back_dura = canal_ap - epifat
    canvas.paint(_band(d, back_dura, canal_ap, px) * open_canal, signals["fat"] * (1 + 0.05 * fine), Tissue.FAT)
    canvas.paint(_band(d, back_dura - 0.5, back_dura, px) * sac, signals["ligament"], Tissue.LIGAMENT)
    tip = arc_back(p["conus_level"], lower=True) - p["conus_offset_mm"]
    taper = np.sqrt(np.clip((tip - back.arc) / 25.0, 0, 1))
    cord_centre = 0.45 * canal_ap
    cord = _band(d, cord_centre - 4.0 * taper, cord_centre + 4.0 * taper, px) * (taper > 0)
    canvas.paint(cord, signals["nerve"], Tissue.NERVE)
    roots = np.clip((back.arc - tip + 15.0) / 10.0, 0, 1) * sac
    for fraction in p["root_fractions"]:
        strand = _band(d, fraction * canal_ap - 0.4, fraction * canal_ap + 0.4, px) * roots
        canvas.paint(strand * 0.7, signals["nerve"], Tissue.NERVE)
    lumbar_end = arc_back("S1")
    above_sacrum = np.clip((lumbar_end - back.arc) / 3.0, 0, 1)
    canvas.paint(_band(d, canal_ap, canal_ap + 2.5, px) * above_sacrum, signals["ligament"], Tissue.LIGAMENT)
    interspinous = _band(d, canal_ap + 2.5, canal_ap + 22.0, px) * above_sacrum * _ramp(back.arc - arc_back("T12"), 8.0)
    canvas.paint(interspinous * 0.85, 0.5 * (signals["ligament"] + signals["fat"]) * (1 + 0.15 * mid),
                 Tissue.LIGAMENT)

    # the median sacral crest: a bony plate behind the sacral canal
    sacrum_end = arc_back("S5", lower=True)
    crest = _band(d, canal_ap, canal_ap + p["crest_mm"], px) * _band(back.arc, lumbar_end + 4.0, sacrum_end, px)
    canvas.paint(crest, signals["cortex"], Tissue.CORTEX)
    inner = (_band(d, canal_ap + 1.2, canal_ap + p["crest_mm"] - 1.2, px)
             * _band(back.arc, lumbar_end + 5.5, sacrum_end - 1.5, px))
    canvas.paint(inner, p["marrow_signal"] * (1 + 0.1 * mid), Tissue.MARROW)
    return {"behind": behind, "inside": inside}


def _capsule_sdf(start: tuple[float, float], end: tuple[float, float], radii: tuple[float, float], s: FloatArray,
                 r: FloatArray) -> FloatArray:
    """Signed distance (approximately, near the edge) to a rod from ``start`` to ``end`` whose radius goes
    linearly from ``radii[0]`` to ``radii[1]``."""
    ds, dr = end[0] - start[0], end[1] - start[1]
    t = np.clip(((s - start[0]) * ds + (r - start[1]) * dr) / (ds * ds + dr * dr), 0.0, 1.0)
    return np.hypot(s - start[0] - t * ds, r - start[1] - t * dr) - (radii[0] + (radii[1] - radii[0]) * t)


def _paint_posterior_elements(canvas: _Canvas, rng: np.random.Generator, anatomy: _Anatomy, frame: _Frame,
                              u: FloatArray, v: FloatArray, signals: dict[str, float], texture: FloatArray) -> None:
    """Lamina and spinous process of each vertebra above the sacrum, in its own frame: a lamina behind the
    canal and a process from it, broad, club-tipped and nearly horizontal in the lumbar spine, long, thin and
    steeply sloping in the thoracic."""
    px = frame.spacing
    for seg in anatomy.segments:
        if seg.kind != "body" or seg.name not in (*THORACIC, *LUMBAR):
            continue
        h = seg.height
        back = seg.depth / 2 + anatomy.canal_ap[seg.name] + 0.5
        lamina = rng.uniform(5.0, 8.0)
        if seg.name in THORACIC:
            length, droop, thickness = rng.uniform(28.0, 38.0), rng.uniform(35.0, 55.0), rng.uniform(6.0, 9.0)
            top, bottom, radii = -0.45 * h, 0.3 * h, (thickness / 2, 0.7 * thickness / 2)
        else:
            length, droop, thickness = rng.uniform(22.0, 30.0), rng.uniform(0.0, 12.0), rng.uniform(0.45, 0.6) * h
            top, bottom, radii = -0.42 * h, 0.33 * h, (0.75 * thickness / 2, rng.uniform(0.85, 1.05) * thickness / 2)
        middle = (top + bottom) / 2 + 0.05 * h
        tip = (back + length - radii[1], middle + length * math.tan(math.radians(droop)))
        base = np.array([[back - 0.5, top], [back - 0.5, bottom], [back + lamina, middle + 0.3 * (bottom - middle)],
                         [back + lamina, middle + 0.3 * (top - middle)]])
        window = _window(frame, seg.point(back + length / 2, tip[1] / 2), length + h + 10.0, canvas.signal.shape)
        if window is None:
            continue
        s, r = seg.local(u[window], v[window])
        sd = np.minimum(_polygon_sdf(base, s, r) - 0.8, _capsule_sdf((back + lamina / 2, middle), tip, radii, s, r))
        canvas.paint(_ramp(-sd, px), signals["cortex"], Tissue.CORTEX, window)
        marrow = anatomy.params["marrow_signal"] * (1 + 0.1 * texture[window])
        canvas.paint(_ramp(-sd - 1.3, px), marrow, Tissue.MARROW, window)


def _window(frame: _Frame, centre_mm: FloatArray, radius_mm: float, shape: tuple[int, ...]
            ) -> tuple[slice, slice] | None:
    """The pixel window holding a disc of ``radius_mm`` around ``centre_mm``; None when outside the image."""
    cx, cy = frame.to_pixel(centre_mm)
    r = radius_mm / frame.spacing + 2
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, shape[1])
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, shape[0])
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _paint_disc(canvas: _Canvas, rng: np.random.Generator, seg: _Segment, frame: _Frame, u: FloatArray,
                v: FloatArray, signals: dict[str, float], texture: FloatArray, concavity: float) -> None:
    """Annulus and nucleus of one disc (lens-shaped: its surfaces bulge into the concave endplates)."""
    px = frame.spacing
    window = _window(frame, np.array(seg.centre), seg.depth / 2 + seg.height + 6.0, canvas.signal.shape)
    if window is None:
        return
    s, r = seg.local(u[window], v[window])
    lens = np.clip(1 - (2 * s / seg.depth) ** 2, 0, 1)
    half = seg.half_height(s) + (concavity + 0.4) * lens + 0.6
    back_half = max(float(seg.half_height(seg.depth / 2)), 0.5)
    front_half = max(float(seg.half_height(-seg.depth / 2)), 0.5)
    sd = np.maximum.reduce([
        np.abs(r) - half,
        s - (seg.depth / 2 + seg.bulge * np.clip(1 - (r / back_half) ** 2, 0, 1)),
        -(seg.depth / 2 + seg.front_bulge * np.clip(1 - (r / front_half) ** 2, 0, 1)) - s,
    ])
    disc = _ramp(-sd, px)
    if seg.kind == "remnant":  # a fused disc: a faint line through the bone
        canvas.paint(disc * 0.6, signals["annulus"], Tissue.ANNULUS, window)
        return
    canvas.paint(disc, signals["annulus"] * (1 + 0.05 * texture[window]), Tissue.ANNULUS, window)
    grade = seg.grade
    centre_s = rng.uniform(-0.05, 0.05) * seg.depth
    reach = rng.uniform(0.28, 0.33) * seg.depth * (1 - 0.12 * grade)
    tall = 0.68 * max(float(seg.half_height(centre_s)), 0.5)
    ellipse = np.hypot((s - centre_s) / reach, r / tall) - 1
    edge = (0.6, 1.2, 2.0, 2.5)[grade]
    nucleus = np.clip(0.5 - ellipse * tall / edge, 0, 1) * disc
    health = (1.0, 0.55, 0.25, 0.0)[grade]
    value = health * signals["nucleus"] + (1 - health) * signals["nucleus_degenerate"]
    canvas.paint(nucleus, value * (1 + (0.05 + 0.05 * grade) * texture[window]), Tissue.NUCLEUS, window)
    if grade >= 1 and rng.random() < 0.6:  # intranuclear cleft: a dark horizontal band
        canvas.paint(_band(r, -0.5, 0.5, px) * nucleus * 0.7, signals["annulus"], Tissue.NUCLEUS, window)
    if grade == 3 and rng.random() < 0.35:  # vacuum phenomenon: gas in the disc
        gas = np.hypot((s - centre_s) / (0.6 * reach), r / (0.4 * tall)) - 1
        canvas.paint(np.clip(0.5 - gas * 0.4 * tall / px, 0, 1), 0.0, Tissue.GAS, window)


def _paint_body(canvas: _Canvas, rng: np.random.Generator, seg: _Segment, frame: _Frame, u: FloatArray,
                v: FloatArray, signals: dict[str, float], texture: FloatArray, anatomy: _Anatomy,
                grade_above: int, grade_below: int) -> None:
    """A rounded trapezoid with concave endplates: cortical rim, marrow, endplate (Modic) changes, focal
    lesions and the basivertebral vein."""
    px = frame.spacing
    window = _window(frame, np.array(seg.centre), seg.depth / 2 + seg.height + 4.0, canvas.signal.shape)
    if window is None:
        return
    s, r = seg.local(u[window], v[window])
    p = anatomy.params
    concavity = p["concavity_mm"] * min(1.0, seg.depth / 35.0)
    half = np.maximum(seg.half_height(s) - concavity * np.clip(1 - (2 * s / seg.depth) ** 2, 0, 1), 0.5)
    straight = r * (seg.height / 2) / half
    fused = seg.name in SACRAL[1:] or seg.name in COCCYX
    rounding = 0.8 if fused else min(p["rounding_mm"], seg.height / 3, seg.depth / 4)
    qx = np.abs(s) - seg.depth / 2 + rounding
    qy = np.abs(straight) - seg.height / 2 + rounding
    sd = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - rounding
    canvas.paint(_ramp(-sd, px), signals["cortex"], Tissue.CORTEX, window)
    fat_fraction = np.clip(p["marrow_fat"] + rng.uniform(-0.06, 0.06), 0.05, 0.95)
    fat_fraction = np.full(s.shape, fat_fraction)
    edema = np.zeros(s.shape)
    sclerosis = np.zeros(s.shape)
    to_plate = half - np.abs(r)
    for grade, side in ((grade_above, r < 0), (grade_below, r > 0)):
        if grade >= 2 and rng.random() < 0.45:  # Modic change next to a degenerated disc
            band = np.clip((rng.uniform(3.0, 8.0) - to_plate) / 1.5, 0, 1) * side
            modic = int(rng.integers(1, 4))
            if modic == 1:  # oedema: T1 dark, T2 bright
                edema = np.maximum(edema, band)
            elif modic == 2:  # fat: T1 and T2 bright
                fat_fraction = fat_fraction + (0.95 - fat_fraction) * band
            else:  # sclerosis: dark on both
                sclerosis = np.maximum(sclerosis, band)
    marrow = fat_fraction * signals["fat"] + (1 - fat_fraction) * signals["water_marrow"]
    marrow = marrow * (1 - edema) + edema * signals["edema"]
    marrow = marrow * (1 - 0.7 * sclerosis)
    marrow = marrow * (1 + p["marrow_texture"] * texture[window])
    if rng.random() < 0.08:  # haemangioma: a fat-rich round focus
        cs, cr = rng.uniform(-0.3, 0.3) * seg.depth, rng.uniform(-0.25, 0.25) * seg.height
        radius = rng.uniform(3.0, 7.0)
        spot = np.clip((radius - np.hypot(s - cs, r - cr)) / 1.5, 0, 1)
        marrow = marrow * (1 - spot) + spot * 0.5 * (signals["fat"] + signals["fluid"])
    if p["vein"] and seg.depth > 25:  # basivertebral vein: a channel from the back wall
        vein = _band(r, -1.0, 1.0, px) * _band(s, seg.depth / 2 - rng.uniform(6.0, 10.0), seg.depth / 2 + 1, px)
        marrow = marrow * (1 - vein) + vein * 0.8 * signals["fluid"]
    canvas.paint(_ramp(-sd - p["cortex_mm"], px), marrow, Tissue.MARROW, window)


def _draw_soft_params(rng: np.random.Generator, anatomy: _Anatomy) -> None:
    """Subject sizes and details of the soft tissue and bone, added to ``anatomy.params``."""
    obesity = rng.uniform(0.0, 1.0)
    anatomy.params.update({
        "obesity": round(obesity, 3),
        "back_fat_mm": 8.0 + 35.0 * obesity + rng.uniform(-3.0, 3.0),
        "front_fat_mm": 5.0 + 40.0 * obesity + rng.uniform(-3.0, 3.0),
        "abdomen_mm": 80.0 + 90.0 * obesity + rng.uniform(0.0, 40.0),
        "wall_mm": rng.uniform(8.0, 14.0),
        "muscle_mm": rng.uniform(40.0, 60.0),
        "epidural_fat_mm": rng.uniform(2.0, 4.5),
        "crest_mm": rng.uniform(6.0, 10.0),
        "liver": bool(rng.random() < 0.5),
        "bladder": bool(rng.random() < 0.6),
        "bladder_mm": (rng.uniform(20.0, 35.0), rng.uniform(25.0, 40.0)),
        "aorta_mm": rng.uniform(14.0, 22.0) if rng.random() < 0.75 else 0.0,
        "conus_level": str(rng.choice(["T12", "L1", "L1", "L2"])),
        "conus_offset_mm": rng.uniform(0.0, 15.0),
        "root_fractions": sorted(rng.uniform(0.55, 0.9, size=int(rng.integers(2, 5))).tolist()),
        "marrow_fat": rng.uniform(0.3, 0.75),
        "marrow_texture": rng.uniform(0.06, 0.16),
        "concavity_mm": rng.uniform(0.6, 2.0),
        "rounding_mm": rng.uniform(1.5, 3.5),
        "cortex_mm": rng.uniform(0.9, 1.5),
        "vein": bool(rng.random() < 0.6),
        "loop_mm": rng.uniform(5.0, 9.0),
        "loop_level": rng.uniform(-0.9, -0.2),
        "fluid_level": rng.uniform(0.5, 1.6),
    })


def _post_process(rng: np.random.Generator, signal: FloatArray, inside: FloatArray, behind: FloatArray,
                  inverted: bool) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
    """Blur, contrast inversion, bias field, Rician noise and gamma; the result is about 0..1."""
    rows, columns = signal.shape
    blur = rng.uniform(0.3, 1.1)
    image = cv2.GaussianBlur(signal.astype(np.float32), (0, 0), sigmaX=blur, borderType=cv2.BORDER_REFLECT)
    image = image.astype(np.float64)
    scale = float(np.percentile(image[inside > 0.5], 99.5)) if np.any(inside > 0.5) else float(image.max())
    image = image / max(scale, 1e-6)
    if inverted:
        image = inside * np.clip(1.0 - image, 0.0, None) + (1 - inside) * image
    grid = rng.normal(0.0, 1.0, size=(4, 4)).astype(np.float32)
    smooth = cv2.resize(grid, (columns, rows), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    bias_strength = rng.uniform(0.05, 0.35)
    coil_strength = rng.uniform(0.0, 0.6)
    coil_length = rng.uniform(120.0, 250.0)
    coil = np.exp(-np.clip(behind, 0.0, None) / coil_length)  # the spine coil lies under the back
    bias = np.exp(bias_strength * smooth) * (1 - coil_strength + coil_strength * coil * 1.6)
    image = image * bias
    image = image / max(float(np.percentile(image[inside > 0.5], 99.5)), 1e-6)
    noise = rng.uniform(0.008, 0.05)
    real = image + rng.normal(0.0, noise, image.shape)
    imaginary = rng.normal(0.0, noise, image.shape)
    image = np.hypot(real, imaginary)
    gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
    image = np.clip(image, 0.0, 1.5) ** gamma
    return image.astype(np.float32), {"blur_px": round(blur, 3), "bias": round(bias_strength, 3),
                                      "coil": round(coil_strength, 3), "noise": round(noise, 4),
                                      "gamma": round(gamma, 3)}


def render_style_b(rng: np.random.Generator, size: int = 256) -> StyleBImage:
    """Render one mid-sagittal image of a random subject, contrast and framing, with its truth.

    Args:
        rng: the random generator (the same state gives the same image).
        size: rows and columns of the image.

    Returns:
        The image, its tissue map, the canal point and disc centre of each lumbar level, the body centre of
        every vertebra drawn, the pixel spacing and the drawn parameters.

    Example:
        >>> sample = render_style_b(np.random.default_rng(0), size=128)
        >>> sample.image.shape, sample.image.dtype, list(sample.canal_points) == list(LEVELS)
        ((128, 128), dtype('float32'), True)
    """
    anatomy = _draw_anatomy(rng)
    _draw_soft_params(rng, anatomy)
    frame, framing = _frame(rng, anatomy, size)
    contrast = str(rng.choice(CONTRASTS, p=CONTRAST_SHARES))
    base = str(rng.choice(["t1", "t2"])) if contrast == "inverted" else contrast
    sequence = _draw_sequence(rng, base)
    signals = _tissue_signals(rng, sequence)
    fat_fraction = anatomy.params["marrow_fat"]
    anatomy.params["marrow_signal"] = fat_fraction * signals["fat"] + (1 - fat_fraction) * signals["water_marrow"]

    u, v = frame.grid(size)
    px = frame.spacing
    canvas = _Canvas((size, size))
    soft = _paint_soft_tissue(canvas, rng, anatomy, signals, u, v, frame)
    texture = _smooth_noise(rng, (size, size), 1.0 / px) * 0.7 + _smooth_noise(rng, (size, size), 0.4 / px) * 0.5
    _paint_posterior_elements(canvas, rng, anatomy, frame, u, v, signals, texture)
    grades = {s.name: s.grade for s in anatomy.segments if s.kind == "disc"}
    for seg in anatomy.segments:
        if seg.kind != "body":
            _paint_disc(canvas, rng, seg, frame, u, v, signals, texture, anatomy.params["concavity_mm"])
    for i, seg in enumerate(anatomy.segments):
        if seg.kind == "body":
            above = anatomy.segments[i - 1].name if i > 0 else ""
            below = anatomy.segments[i + 1].name if i + 1 < len(anatomy.segments) else ""
            _paint_body(canvas, rng, seg, frame, u, v, signals, texture, anatomy, grades.get(above, 0),
                        grades.get(below, 0))
    image, finish = _post_process(rng, canvas.signal, soft["inside"], soft["behind"], contrast == "inverted")

    def pixel(m: FloatArray) -> tuple[float, float]:
        x, y = frame.to_pixel(m)
        return float(x), float(y)

    canal = {level: pixel(anatomy.get(level).canal_point) for level in LEVELS}
    centres = {level: pixel(np.array(anatomy.get(level).centre)) for level in LEVELS}
    vertebrae = {s.name: pixel(np.array(s.centre)) for s in anatomy.segments
                 if s.kind == "body" and s.name in (*THORACIC, *LUMBAR, "S1")}
    in_view = [name for name, (x, y) in vertebrae.items() if 0 <= x <= size - 1 and 0 <= y <= size - 1]
    thoracic = [name for name in in_view if name in THORACIC]
    params: dict[str, Any] = {
        "contrast": contrast, "base_contrast": base,
        "sequence": {"tr_ms": round(sequence.tr, 1), "te_ms": round(sequence.te, 1), "ti_ms": round(sequence.ti, 1)},
        **framing, "spacing_mm": round(px, 5), "shift_px": [round(frame.shift[0], 3), round(frame.shift[1], 3)],
        "top_vertebra": in_view[0] if in_view else "", "thoracic_in_view": thoracic,
        **{k: (round(val, 3) if isinstance(val, float) else val) for k, val in anatomy.params.items()
           if k != "marrow_signal"},
        **finish,
    }
    return StyleBImage(image=image, tissue=canvas.tissue, canal_points=canal, disc_centres=centres,
                       vertebra_centres=vertebrae, spacing_mm=px, params=params)


def write_style_b_set(folder: Path, count: int, seed: int, size: int = 256) -> Path:
    """Write ``count`` style-B images as 8-bit PNGs with ``points.csv`` (the localization benchmark's input).

    ``points.csv`` has one row per image and lumbar level: ``image, level, x, y, width, height`` (pixels, centres
    at integers); ``images.csv`` one row per image with its contrast and framing. Image ``i`` depends only on
    ``(seed, i)``, so the same seed writes the same bytes.

    Args:
        folder: where to write (created).
        count: how many images.
        seed: the seed of the set.
        size: rows and columns of each image.

    Returns:
        ``folder``.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    points: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for i in range(count):
        sample = render_style_b(np.random.default_rng([seed, i]), size=size)
        name = f"style_b_{i:05d}.png"
        with atomic_path(folder / name) as tmp:
            Image.fromarray(normalize_to_uint8(sample.image, percentiles=(0.5, 99.5)), mode="L").save(tmp, "PNG")
        for level, (x, y) in sample.canal_points.items():
            points.append({"image": name, "level": level, "x": f"{x:.3f}", "y": f"{y:.3f}",
                           "width": size, "height": size})
        p = sample.params
        images.append({"image": name, "contrast": p["contrast"], "base_contrast": p["base_contrast"],
                       "scale": p["scale"], "rotation_deg": p["rotation_deg"], "spacing_mm": p["spacing_mm"],
                       "top_vertebra": p["top_vertebra"], "thoracic_in_view": len(p["thoracic_in_view"]),
                       "gamma": p["gamma"], "noise": p["noise"], "blur_px": p["blur_px"]})
    write_records_csv(points, folder / "points.csv", columns=POINTS_COLUMNS)
    write_records_csv(images, folder / "images.csv", columns=IMAGES_COLUMNS)
    return folder
