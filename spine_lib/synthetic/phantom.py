"""A lumbar spine phantom whose truth is known: geometry, SPIDER mask values, T1/T2/STIR signal, per-disc grades.

The anatomy is analytic, in patient coordinates (LPS, mm): X lateral (+ = patient left), Y antero-posterior
(+ = posterior), Z supero-inferior (+ = superior). In the sagittal plane we write ``u = Y`` and ``v = Z``.
The spine is a chain of rounded blocks from the sacrum up to L1, optionally continued by a few thoracic
vertebrae (T12, T11, T10): each disc and vertebral body has a centre, a tilt ``phi`` (its up-axis leans
anteriorly by ``phi``), a half depth and a half height. Lordosis comes from the wedge angle of each disc (the
thoracic discs wedge the other way: a mild kyphosis); grades change the shapes and the signal as DOMAIN.md
describes. Any grid of physical points can be rendered (sagittal series, axial series), so every view of a
subject agrees.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from spine_lib.levels import (
    LEVELS,
    SPIDER_CANAL,
    SPIDER_DISC_OFFSET,
    SPIDER_PARTIAL_OFFSET,
    VERTEBRAE,
    spider_disc_value,
    spider_vertebra_number,
    vertebrae_of,
)

FloatArray = npt.NDArray[np.float64]

#: Sagittal orientation: columns run posterior, rows inferior, slices toward the patient's right.
SAGITTAL_DIRECTION = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
#: Axial orientation: columns run to the patient's left, rows posterior, slices superior.
AXIAL_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
#: Where a sagittal series is centred (u, v mm: a little behind and below the centre of L3) before its shift.
NOMINAL_CENTER = np.array([10.0, -25.0])

CANAL_HALF_WIDTH = 11.0  # mm, lateral
FORAMEN_X = 16.0  # mm, lateral distance of the neural foramina from the midline
SUBARTICULAR_X = 9.0  # mm, lateral distance of the subarticular zones

#: Thoracic vertebrae that can continue the chain above L1, bottom-up, and the disc below each.
THORACIC: tuple[str, ...] = ("T12", "T11", "T10", "T9", "T8", "T7", "T6", "T5")
THORACIC_DISCS: tuple[str, ...] = tuple(f"{upper}/{lower}" for upper, lower in zip(THORACIC, ("L1", *THORACIC[:-1]), strict=True))
#: Per thoracic level (bottom-up): body size relative to the lumbar bodies, disc height (mm at scale 1) and the
#: disc's kyphotic wedge (degrees, opening posteriorly).
THORACIC_BODY = (0.94, 0.89, 0.85, 0.81, 0.77, 0.74, 0.71, 0.68)
THORACIC_DISC_HEIGHT = (7.5, 6.5, 6.0, 5.5, 5.0, 4.8, 4.6, 4.5)
THORACIC_WEDGE = (0.8, 2.5, 3.5, 4.0, 4.5, 4.5, 4.5, 4.0)
#: The highest SPIDER vertebra number (1-25; 101-125 when cut by the field of view).
SPIDER_MAX_VERTEBRA = 25

Signal = tuple[float, float, float]
#: Tissue signal (fraction of the scanner gain): T1, T2, STIR. STIR suppresses fat (fat and fatty marrow dark)
#: and keeps water bright (CSF, a hydrated nucleus, oedema).
SIGNAL: dict[str, Signal] = {
    "air": (0.02, 0.02, 0.02),
    "abdomen": (0.38, 0.30, 0.22),
    "muscle": (0.30, 0.22, 0.16),
    "fat": (0.85, 0.60, 0.06),
    "marrow": (0.62, 0.40, 0.12),
    "cortex": (0.10, 0.08, 0.05),
    "annulus": (0.30, 0.22, 0.20),
    "nucleus_t1": (0.36, 0.0, 0.0),
    "csf": (0.12, 0.95, 0.98),
    "nerve": (0.25, 0.30, 0.30),
}
#: T2 signal of the nucleus by Pfirrmann grade (bright and homogeneous -> black).
PFIRRMANN_T2 = {1: 0.92, 2: 0.78, 3: 0.52, 4: 0.32, 5: 0.14}
#: STIR signal of the nucleus by Pfirrmann grade (water: follows T2).
PFIRRMANN_STIR = {1: 0.88, 2: 0.74, 3: 0.48, 4: 0.28, 5: 0.12}
#: Endplate marrow signal by Modic type (T1, T2): 1 oedema, 2 fat, 3 sclerosis.
MODIC_SIGNAL = {1: (0.28, 0.78), 2: (0.90, 0.58), 3: (0.08, 0.08)}
#: A Schmorl node (the phantom's endplate defect): radius of the disc material in the body and the width of its
#: low-signal sclerotic rim, mm (real nodes are ~3-10 mm across; a chronic one is ringed by sclerosis).
SCHMORL_RADIUS_MM = 4.5
SCHMORL_RIM_MM = 1.2
#: Endplate marrow STIR signal by Modic type: oedema bright, fat suppressed, sclerosis dark.
MODIC_STIR = {1: 0.80, 2: 0.07, 3: 0.05}
#: The contrasts a series can be rendered in.
CONTRASTS: tuple[str, ...] = ("t1", "t2", "stir")
#: Index of each named tissue in a canvas' tissue map (-1: painted with a signal of its own, e.g. a nucleus).
TISSUE_INDEX: dict[str, int] = {name: i for i, name in enumerate(SIGNAL)}


def thoracic_vertebra_value(name: str) -> int:
    """SPIDER vertebra number of a thoracic vertebra, counted on from L1 (6): T12 -> 7, T11 -> 8, T10 -> 9."""
    return len(VERTEBRAE) + THORACIC.index(name) + 1


def thoracic_disc_value(level: str) -> int:
    """SPIDER mask value of a thoracic disc, counted on from L1/L2 (205): T12/L1 -> 206, T11/T12 -> 207."""
    return SPIDER_DISC_OFFSET + len(LEVELS) + THORACIC_DISCS.index(level) + 1


def disc_vertebrae(level: str) -> tuple[str, str]:
    """The vertebra above and below any disc of the chain, thoracic ones included (``'T12/L1'`` -> T12, L1)."""
    if level in THORACIC_DISCS:
        upper, lower = level.split("/")
        return upper, lower
    return vertebrae_of(level)


@dataclass(frozen=True)
class DiscGrades:
    """The radiological grades of one disc (the classifier's 13 outputs come from these 8 values)."""

    pfirrmann: int = 1
    modic: int = 0
    up_endplate: int = 0
    low_endplate: int = 0
    spondylolisthesis: int = 0
    herniation: int = 0
    narrowing: int = 0
    bulging: int = 0


#: A healthy disc (the grades of every thoracic disc).
NORMAL = DiscGrades()


@dataclass(frozen=True)
class Block:
    """One rounded block of the chain (a vertebral body, a disc or the sacrum) in the sagittal plane."""

    name: str
    label: int
    center: tuple[float, float]  # (u, v) mm
    phi: float  # radians; the block's up-axis leans anteriorly by phi
    half_depth: float
    half_height: float
    half_width: float  # lateral

    @property
    def up(self) -> tuple[float, float]:
        return (-math.sin(self.phi), math.cos(self.phi))

    @property
    def back(self) -> tuple[float, float]:
        return (math.cos(self.phi), math.sin(self.phi))

    def point(self, s: float, t: float) -> tuple[float, float]:
        """Sagittal point at ``s`` mm posterior and ``t`` mm up from the centre, in the block's frame."""
        (bu, bv), (au, av) = self.back, self.up
        return (self.center[0] + s * bu + t * au, self.center[1] + s * bv + t * av)

    def local(self, u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        du, dv = u - self.center[0], v - self.center[1]
        (bu, bv), (au, av) = self.back, self.up
        return du * bu + dv * bv, du * au + dv * av


@dataclass(frozen=True)
class SpineAnatomy:
    """One subject's spine: the blocks of the chain and the grades of each lumbar disc (keyed by level).

    Coordinates are placed so that the centre of the L3 body is the sagittal origin (u = v = 0). ``thoracic``
    vertebrae (T12 first) continue the chain above L1; their discs are normal and carry no grades.
    """

    grades: dict[str, DiscGrades]
    vertebrae: dict[str, Block]
    discs: dict[str, Block]
    canal_depth: float
    scale: float
    herniation_depth: float = 5.0
    bulge: float = 2.5
    tilt_degrees: float = 0.0
    thoracic: int = 0

    @property
    def top_vertebra(self) -> str:
        """The highest vertebra of the chain (the canal goes on above it)."""
        return THORACIC[self.thoracic - 1] if self.thoracic else VERTEBRAE[0]

    def disc_grades(self, level: str) -> DiscGrades:
        """The grades of any disc of the chain (a thoracic disc is normal)."""
        return self.grades.get(level, NORMAL)

    # truth points -----------------------------------------------------------------------------
    def disc_center(self, level: str) -> tuple[float, float, float]:
        """Physical (X, Y, Z) of a disc's centre (on the midline)."""
        u, v = self.discs[level].center
        return (0.0, u, v)

    def disc_posterior_margin(self, level: str) -> float:
        """How far (mm) the disc's core reaches behind its centre, bulging included, herniation excluded."""
        disc = self.discs[level]
        return disc.half_depth + (self.bulge if self.disc_grades(level).bulging else 0.0)

    def canal_point(self, level: str) -> tuple[float, float, float]:
        """Where the disc meets the spinal canal: its posterior margin on the midline (RSNA canal point)."""
        u, v = self.discs[level].point(self.disc_posterior_margin(level), 0.0)
        return (0.0, u, v)

    def foramen_point(self, level: str, side: str) -> tuple[float, float, float]:
        """Centre of the left or right neural foramen at a level (RSNA foraminal point)."""
        disc = self.discs[level]
        u, v = disc.point(disc.half_depth + 0.35 * self.canal_depth, disc.half_height + 3.0 * self.scale)
        return (FORAMEN_X if side == "left" else -FORAMEN_X, u, v)

    def subarticular_point(self, level: str, side: str) -> tuple[float, float, float]:
        """The left or right subarticular zone at a disc (RSNA subarticular point, on an axial slice)."""
        u, v = self.discs[level].point(self.disc_posterior_margin(level) + 2.0, 0.0)
        return (SUBARTICULAR_X if side == "left" else -SUBARTICULAR_X, u, v)


def sample_grades(rng: np.random.Generator, level: str) -> DiscGrades:
    """Grades of one disc; degeneration is likelier at the lower levels, grades are mutually consistent."""
    depth = LEVELS.index(level) / (len(LEVELS) - 1)  # 0 at L1/L2, 1 at L5/S1
    pfirrmann = int(np.clip(np.round(rng.normal(1.6 + 2.0 * depth, 1.0)), 1, 5))
    narrowing = int(pfirrmann == 5 or (pfirrmann == 4 and rng.random() < 0.5))
    herniation = int(pfirrmann >= 3 and rng.random() < 0.45)
    bulging = int(not herniation and pfirrmann >= 2 and rng.random() < 0.35)
    modic = int(rng.choice([1, 2, 3], p=[0.35, 0.5, 0.15])) if pfirrmann >= 3 and rng.random() < 0.4 else 0
    spondylolisthesis = int(level in ("L4/L5", "L5/S1") and rng.random() < 0.15)
    up_endplate = int(rng.random() < 0.12 + 0.1 * (modic > 0))
    low_endplate = int(rng.random() < 0.12 + 0.1 * (modic > 0))
    return DiscGrades(pfirrmann, modic, up_endplate, low_endplate, spondylolisthesis, herniation, narrowing, bulging)


def build_anatomy(
    rng: np.random.Generator,
    grades: dict[str, DiscGrades] | None = None,
    tilt_degrees: float | None = None,
    thoracic: int = 0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_tilt: float = 8.0,
) -> SpineAnatomy:
    """Sample a subject's spine: sizes, lordosis, tilt and (unless given) the grades of every lumbar disc.

    ``thoracic`` vertebrae (0-8: T12, T11, ... T5) continue the chain above L1, slightly smaller, their discs
    easing the lordosis into a mild kyphosis. Their draws come after all the lumbar ones, so the lumbar spine
    of a generator state is the same whatever ``thoracic`` is.
    """
    if not 0 <= thoracic <= len(THORACIC):
        raise ValueError(f"thoracic must be 0..{len(THORACIC)}, got {thoracic}")
    grades = grades or {level: sample_grades(rng, level) for level in LEVELS}
    scale = float(rng.uniform(*scale_range))
    tilt_deg = tilt_degrees if tilt_degrees is not None else float(rng.uniform(-max_tilt, max_tilt))
    tilt = math.radians(tilt_deg)
    sacral_slope = math.radians(float(rng.uniform(30, 45)))
    # Disc wedge angles from L5/S1 up; they straighten the spine so that L1 is about upright.
    wedges = np.array([1.6, 1.3, 1.0, 0.7, 0.4]) * rng.uniform(0.8, 1.2, 5)
    # Lumbar lordosis exceeds the sacral slope a little, so the upper lumbar spine leans back.
    wedges = wedges / wedges.sum() * (sacral_slope + math.radians(float(rng.uniform(4, 16))))
    disc_heights = {"L5/S1": 11.5, "L4/L5": 12.0, "L3/L4": 11.0, "L2/L3": 10.0, "L1/L2": 9.0}
    body_height = 27.0 * scale
    body_depth = 38.0 * scale * float(rng.uniform(0.95, 1.08))
    canal_depth = 16.0 * scale * float(rng.uniform(0.9, 1.1))

    # Walk up the chain from the sacrum's top endplate (at the origin), then rotate by the tilt.
    phi = sacral_slope  # up-axis leans anteriorly by the sacral slope at S1
    top = np.array([0.0, 0.0])
    slip = 0.0
    raw_discs: dict[str, tuple[np.ndarray, float, float]] = {}
    raw_bodies: dict[str, tuple[np.ndarray, float, float]] = {}
    for i, level in enumerate(reversed(LEVELS)):  # L5/S1 first
        g = grades[level]
        h = disc_heights[level] * scale * (0.55 if g.narrowing else 1.0)
        phi_disc = phi - wedges[i] / 2
        up = np.array([-math.sin(phi_disc), math.cos(phi_disc)])
        back = np.array([math.cos(phi_disc), math.sin(phi_disc)])
        if g.spondylolisthesis:
            slip += 6.0 * scale
        raw_discs[level] = (top + up * h / 2 - back * (slip - (6.0 * scale if g.spondylolisthesis else 0) / 2), phi_disc, h)
        phi = phi - wedges[i]
        up = np.array([-math.sin(phi), math.cos(phi)])
        back = np.array([math.cos(phi), math.sin(phi)])
        bottom = top + np.array([-math.sin(phi_disc), math.cos(phi_disc)]) * h
        vertebra = vertebrae_of(level)[0]
        raw_bodies[vertebra] = (bottom + up * body_height / 2 - back * slip, phi, body_height)
        top = bottom + up * body_height
    # Thoracic vertebrae above L1: thinner discs wedged the other way (kyphosis), smaller bodies.
    sizes: dict[str, float] = {}
    for i in range(thoracic):
        level, vertebra = THORACIC_DISCS[i], THORACIC[i]
        h = THORACIC_DISC_HEIGHT[i] * scale * float(rng.uniform(0.9, 1.1))
        wedge = -math.radians(THORACIC_WEDGE[i] * float(rng.uniform(0.6, 1.4)))
        phi_disc = phi - wedge / 2
        up = np.array([-math.sin(phi_disc), math.cos(phi_disc)])
        back = np.array([math.cos(phi_disc), math.sin(phi_disc)])
        raw_discs[level] = (top + up * h / 2 - back * slip, phi_disc, h)
        sizes[level] = sizes[vertebra] = THORACIC_BODY[i]
        phi = phi - wedge
        up = np.array([-math.sin(phi), math.cos(phi)])
        back = np.array([math.cos(phi), math.sin(phi)])
        bottom = top + np.array([-math.sin(phi_disc), math.cos(phi_disc)]) * h
        height = body_height * THORACIC_BODY[i]
        raw_bodies[vertebra] = (bottom + up * height / 2 - back * slip, phi, height)
        top = bottom + up * height
    # The sacrum: a large block below the origin, tilted by the sacral slope.
    sacrum_h = 55.0 * scale
    s_up = np.array([-math.sin(sacral_slope), math.cos(sacral_slope)])
    raw_bodies["S1"] = (-s_up * sacrum_h / 2, sacral_slope, sacrum_h)

    reference = raw_bodies["L3"][0]
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)

    def place(p: np.ndarray) -> tuple[float, float]:
        d = p - reference
        return (float(cos_t * d[0] - sin_t * d[1]), float(sin_t * d[0] + cos_t * d[1]))

    def vertebra_value(name: str) -> int:
        return thoracic_vertebra_value(name) if name in THORACIC else spider_vertebra_number(name)

    def disc_value(level: str) -> int:
        return thoracic_disc_value(level) if level in THORACIC_DISCS else spider_disc_value(level)

    vertebrae = {
        name: Block(
            name=name,
            label=vertebra_value(name),
            center=place(c),
            phi=p + tilt,  # the placement above turns every direction by +tilt: up(p) -> up(p + tilt)
            half_depth=(body_depth / 2) * (1.15 if name == "S1" else sizes.get(name, 1.0)),
            half_height=h / 2,
            half_width=24.0 * scale * sizes.get(name, 1.0),
        )
        for name, (c, p, h) in raw_bodies.items()
    }
    discs = {
        level: Block(
            name=level,
            label=disc_value(level),
            center=place(c),
            phi=p + tilt,  # the placement above turns every direction by +tilt: up(p) -> up(p + tilt)
            half_depth=body_depth / 2 * 0.98 * sizes.get(level, 1.0),
            half_height=h / 2,
            half_width=21.0 * scale * sizes.get(level, 1.0),
        )
        for level, (c, p, h) in raw_discs.items()
    }
    return SpineAnatomy(
        grades=grades,
        vertebrae=vertebrae,
        discs=discs,
        canal_depth=canal_depth,
        scale=scale,
        herniation_depth=5.5 * scale,
        bulge=2.5 * scale,
        tilt_degrees=float(tilt_deg),
        thoracic=thoracic,
    )


def superellipse(s: FloatArray, t: FloatArray, a: FloatArray | float, b: float, p: int = 4) -> npt.NDArray[np.bool_]:
    """Inside a rounded rectangle (p=4) or a rounder shape (p=2) of half axes a, b."""
    ss, tt = (s / a) ** 2, (t / b) ** 2
    if p == 4:
        return ss * ss + tt * tt <= 1.0
    return ss + tt <= 1.0


def lateral_depth(block: Block, x: FloatArray) -> FloatArray:
    """Half depth of a block at lateral position ``x`` (bodies and discs narrow toward their sides)."""
    r = np.clip(1.0 - (x / block.half_width) ** 2, 0.0, 1.0)
    return block.half_depth * (0.55 + 0.45 * np.sqrt(r))


@dataclass
class Rendered:
    """Labels (SPIDER values) and T1/T2/STIR signal (0..1) at a set of points."""

    labels: npt.NDArray[np.int16]
    t1: FloatArray
    t2: FloatArray
    stir: FloatArray

    def signal(self, contrast: str) -> FloatArray:
        """The signal of one of :data:`CONTRASTS`."""
        if contrast not in CONTRASTS:
            raise ValueError(f"unknown contrast {contrast!r}; expected one of {', '.join(CONTRASTS)}")
        return {"t1": self.t1, "t2": self.t2, "stir": self.stir}[contrast]


class Canvas:
    """Flat label and signal arrays over an image grid, painted region by region.

    Regions are cut from the grid by index bounds (the voxels whose box can reach a structure), so painting a
    disc touches a few thousand voxels, not the whole volume.
    """

    def __init__(self, image: sitk.Image, signals: dict[str, Signal] | None = None) -> None:
        self.signals = dict(SIGNAL) if signals is None else signals
        x, u, v = image_points(image)
        self.shape = x.shape
        self.x, self.u, self.v = x.ravel(), u.ravel(), v.ravel()
        self.labels = np.zeros(self.x.size, dtype=np.int16)
        self.t1 = np.full(self.x.size, self.signals["air"][0])
        self.t2 = np.full(self.x.size, self.signals["air"][1])
        self.stir = np.full(self.x.size, self.signals["air"][2])
        self.tissue = np.zeros(self.x.size, dtype=np.int8)  # TISSUE_INDEX of what was painted last
        self.idx = np.arange(self.x.size)
        self.grid = self.idx.reshape(self.shape)
        matrix = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
        self.to_index = np.linalg.inv(matrix)
        self.origin = np.array(image.GetOrigin())

    def near(
        self, center: tuple[float, float], radius: float, lateral: float = 1e9,
        half_extent: tuple[float, float] | None = None,
    ) -> Region:
        """The voxels within ``radius`` (box; or ``half_extent`` in u, v) of a sagittal point and ``lateral``."""
        cu, cv = center
        ru, rv = half_extent if half_extent is not None else (radius, radius)
        ru, rv = ru + 1.0, rv + 1.0  # a voxel of margin
        lat = min(lateral, 1e4)
        corners = np.array([(x, u, v) for x in (-lat, lat) for u in (cu - ru, cu + ru) for v in (cv - rv, cv + rv)])
        index = (self.to_index @ (corners - self.origin).T).T  # (8, 3): i, j, k
        lo = np.floor(index.min(axis=0)).astype(int)
        hi = np.ceil(index.max(axis=0)).astype(int) + 1
        nz, ny, nx = self.shape
        (i0, j0, k0), (i1, j1, k1) = np.maximum(lo, 0), np.minimum(hi, [nx, ny, nz])
        if i0 >= i1 or j0 >= j1 or k0 >= k1:
            return Region(self, self.idx[:0])
        return Region(self, self.grid[k0:k1, j0:j1, i0:i1].ravel())

    def near_block(self, block: Block, s_range: tuple[float, float], t_range: tuple[float, float],
                   lateral: float = 1e9) -> Region:
        """The voxels of the grid box around the part of ``block``'s frame within ``s_range`` x ``t_range``."""
        corners = np.array([block.point(s, t) for s in s_range for t in t_range])
        (u0, v0), (u1, v1) = corners.min(axis=0), corners.max(axis=0)
        return self.near(((u0 + u1) / 2, (v0 + v1) / 2), 0.0, lateral, half_extent=((u1 - u0) / 2, (v1 - v0) / 2))

    def everywhere(self) -> Region:
        return Region(self, self.idx)

    def result(self) -> Rendered:
        return Rendered(self.labels.reshape(self.shape), self.t1.reshape(self.shape), self.t2.reshape(self.shape),
                        self.stir.reshape(self.shape))


class Region:
    """A subset of a canvas' points with their coordinates."""

    def __init__(self, canvas: Canvas, idx: npt.NDArray[np.intp]) -> None:
        self.canvas, self.idx = canvas, idx
        self.x, self.u, self.v = canvas.x[idx], canvas.u[idx], canvas.v[idx]
        self.lateral = np.abs(self.x)

    @property
    def labels(self) -> npt.NDArray[np.int16]:
        return self.canvas.labels[self.idx]

    def near(self, center: tuple[float, float], radius: float, lateral: float = 1e9) -> Region:
        """The points of this region within ``radius`` (box) of a sagittal point and ``lateral`` of the midline."""
        cu, cv = center
        box = (np.abs(self.u - cu) < radius) & (np.abs(self.v - cv) < radius) & (self.lateral < lateral)
        return Region(self.canvas, self.idx[box])

    def paint(self, mask: npt.NDArray[np.bool_], tissue: str | Signal, label: int | None = None) -> None:
        s1, s2, s3 = self.canvas.signals[tissue] if isinstance(tissue, str) else tissue
        where = self.idx[mask]
        self.canvas.t1[where], self.canvas.t2[where], self.canvas.stir[where] = s1, s2, s3
        self.canvas.tissue[where] = TISSUE_INDEX[tissue] if isinstance(tissue, str) else -1
        if label is not None:
            self.canvas.labels[where] = label


@dataclass(frozen=True)
class Waves:
    """A smooth random pattern: the mean of a few plane waves in patient coordinates (mm), in [-1, 1]."""

    directions: FloatArray  # (K, 3): x, u, v components of each wave vector (radians per mm)
    phases: FloatArray  # (K,)

    @classmethod
    def draw(cls, rng: np.random.Generator, count: int, wavelength_mm: tuple[float, float],
             along: tuple[float, float] | None = None) -> Waves:
        """``count`` waves of wavelengths drawn in ``wavelength_mm``; ``along`` a sagittal (u, v) direction the
        waves run across (striations), else any direction."""
        vectors = rng.standard_normal((count, 3))
        if along is not None:  # wave vectors across the fibres: perpendicular to ``along`` in the sagittal plane
            across = np.array([0.0, -along[1], along[0]])
            vectors = across[None, :] + 0.25 * vectors
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        lengths = rng.uniform(*wavelength_mm, count)
        return cls(vectors * (2 * np.pi / lengths)[:, None], rng.uniform(0, 2 * np.pi, count))

    def __call__(self, x: FloatArray, u: FloatArray, v: FloatArray) -> FloatArray:
        out = np.zeros_like(u, dtype=np.float64)
        for (kx, ku, kv), phase in zip(self.directions, self.phases, strict=True):
            out += np.sin(kx * x + ku * u + kv * v + phase)
        return out / len(self.phases)


@dataclass(frozen=True)
class Organ:
    """An ellipsoid of its own signal in the abdomen (bowel loop, kidney, vessel), in the frame of L3's body."""

    s: float  # mm posterior of L3's centre (negative: in front of the spine)
    t: float  # mm above it
    x: float  # mm lateral
    radii: tuple[float, float, float]  # s, t, x
    signal: Signal


@dataclass(frozen=True)
class SoftTissueTexture:
    """What a bare phantom lacks and real images have around the spine: organs and bowel loops in the abdomen,
    a mottled texture of every soft tissue, striated back muscle and trabecular marrow. Drawn once per subject
    (:func:`draw_texture`) so that all its series agree; the labels are unchanged."""

    organs: tuple[Organ, ...]
    soft: Waves
    soft_amplitude: float
    muscle: Waves
    muscle_amplitude: float
    marrow: Waves
    marrow_amplitude: float

    def apply(self, canvas: Canvas, anatomy: SpineAnatomy) -> None:
        """Paint the organs over the abdomen and modulate soft tissue and marrow signal, in place."""
        l3 = anatomy.vertebrae["L3"]
        abdomen = TISSUE_INDEX["abdomen"]
        for organ in self.organs:
            centre = l3.point(organ.s, organ.t)
            region = canvas.near(centre, max(organ.radii[:2]), lateral=abs(organ.x) + organ.radii[2])
            s, t = l3.local(region.u, region.v)
            inside = (((s - organ.s) / organ.radii[0]) ** 2 + ((t - organ.t) / organ.radii[1]) ** 2
                      + ((region.x - organ.x) / organ.radii[2]) ** 2) <= 1.0
            inside &= canvas.tissue[region.idx] == abdomen
            region.paint(inside, organ.signal)
            canvas.tissue[region.idx[inside]] = abdomen  # still abdomen for the texture below
        gain = np.ones(canvas.x.size)
        for names, waves, amplitude in ((("abdomen", "muscle", "fat"), self.soft, self.soft_amplitude),
                                        (("muscle",), self.muscle, self.muscle_amplitude),
                                        (("marrow",), self.marrow, self.marrow_amplitude)):
            where = np.flatnonzero(np.isin(canvas.tissue, [TISSUE_INDEX[n] for n in names]))
            gain[where] *= 1.0 + amplitude * waves(canvas.x[where], canvas.u[where], canvas.v[where])
        canvas.t1 *= gain
        canvas.t2 *= gain
        canvas.stir *= gain


def draw_texture(rng: np.random.Generator, anatomy: SpineAnatomy) -> SoftTissueTexture:
    """A subject's :class:`SoftTissueTexture`: 20-44 organs and bowel loops in front of the spine, soft-tissue mottling of
    wavelength 6-40 mm, muscle striations across the spine's axis, trabecular marrow of 2-8 mm."""
    l3 = anatomy.vertebrae["L3"]
    front = -(l3.half_depth + 6.0)
    organs = []
    for _ in range(int(rng.integers(20, 45))):
        radii = (float(rng.uniform(6, 35)), float(rng.uniform(6, 40)), float(rng.uniform(10, 60)))
        t1, t2 = float(rng.uniform(0.08, 0.7)), float(rng.uniform(0.05, 0.95))
        organs.append(Organ(
            s=float(rng.uniform(front - 150.0, front - 0.3 * radii[0])), t=float(rng.uniform(-150, 200)),
            x=float(rng.uniform(-40, 40)), radii=radii,
            signal=(t1, t2, float(np.clip(t2 * rng.uniform(0.6, 1.05), 0.02, 0.95)))))
    up = l3.up
    return SoftTissueTexture(
        organs=tuple(organs),
        soft=Waves.draw(rng, 6, (6.0, 40.0)), soft_amplitude=float(rng.uniform(0.05, 0.25)),
        muscle=Waves.draw(rng, 4, (3.0, 8.0), along=up), muscle_amplitude=float(rng.uniform(0.05, 0.2)),
        marrow=Waves.draw(rng, 8, (2.0, 8.0)), marrow_amplitude=float(rng.uniform(0.05, 0.2)),
    )


#: Tissues whose signal an :class:`Appearance` varies (air stays air).
VARIED_TISSUES: tuple[str, ...] = tuple(name for name in SIGNAL if name != "air")


def holds_cord(block: str) -> bool:
    """Whether the canal behind a vertebra or disc holds the spinal cord (it ends at L1; below, the cauda equina)."""
    return block.startswith("T") or block == "L1"


@dataclass(frozen=True)
class Appearance:
    """How one subject's tissues look beyond the fixed signal table: what scanners, protocols and bodies vary.

    ``gains`` multiply a tissue's (T1, T2, STIR) signal, so the contrast between bone, disc, canal and soft tissue
    is not the same in every study; ``smooth_canal`` draws the canal as one tube along the posterior walls of
    the bodies and discs (else block by block, a step at every disc); ``cortex_mm`` is the low-signal rim of a
    vertebral body; ``nucleus_share`` the nucleus' depth as a share of its disc's; in the canal,
    ``epidural_fat_mm`` of fat along its posterior wall, the cord down to L1 (``cord``: its share of the canal's
    depth) and below it the cauda equina's roots as dark strands (``roots``: how much of the lower canal they
    fill). :data:`PLAIN` draws what the phantom draws without one (SPIDER and Phenikaa). Only the smooth canal
    changes labels (the canal's voxels); the rest changes signal alone.
    """

    gains: dict[str, Signal]
    smooth_canal: bool = False
    cortex_mm: float = 1.5
    nucleus_share: float = 0.55
    epidural_fat_mm: float = 0.0
    cord: float = 0.0
    roots: float = 0.0
    root_period_mm: float = 2.5

    def signals(self) -> dict[str, Signal]:
        """The signal table with this appearance's gains, each value kept in 0..1."""
        out = dict(SIGNAL)
        for name, gain in self.gains.items():
            t1, t2, stir = (float(np.clip(v * g, 0.0, 1.0)) for v, g in zip(SIGNAL[name], gain, strict=True))
            out[name] = (t1, t2, stir)
        return out


PLAIN = Appearance(gains={})


def draw_appearance(rng: np.random.Generator) -> Appearance:
    """A subject's :class:`Appearance`: every tissue's signal times 0.6-1.65 per contrast (log-uniform), a smooth
    canal in three quarters of the subjects, a cortex of 0.5-3 mm, a nucleus of 35-80 % of its disc's depth,
    epidural fat of 0-4 mm in 70 %, the cord in two thirds and the cauda equina's roots in half of them."""
    gains: dict[str, Signal] = {}
    for name in VARIED_TISSUES:
        t1, t2, stir = (float(g) for g in np.exp(rng.uniform(-0.5, 0.5, 3)))
        gains[name] = (t1, t2, stir)
    return Appearance(
        gains=gains,
        smooth_canal=bool(rng.random() < 0.75),
        cortex_mm=float(rng.uniform(0.5, 3.0)),
        nucleus_share=float(rng.uniform(0.35, 0.8)),
        epidural_fat_mm=float(rng.uniform(0.0, 4.0)) if rng.random() < 0.7 else 0.0,
        cord=float(rng.uniform(0.3, 0.6)) if rng.random() < 2 / 3 else 0.0,
        roots=float(rng.uniform(0.15, 0.5)) if rng.random() < 0.5 else 0.0,
        root_period_mm=float(rng.uniform(1.8, 3.5)),
    )


def paint_canal(region: Region, depth: FloatArray, inside: npt.NDArray[np.bool_], canal_depth: float,
                appearance: Appearance, cord: bool) -> None:
    """CSF in the midline canal (``depth``: mm behind its anterior wall), with the appearance's contents: the cord
    or the cauda equina's roots, epidural fat along the posterior wall."""
    midline = inside & (region.lateral < CANAL_HALF_WIDTH)
    region.paint(midline, "csf", SPIDER_CANAL)
    if cord and appearance.cord > 0:
        half = appearance.cord * canal_depth / 2
        region.paint(midline & (np.abs(depth - 0.45 * canal_depth) < half) & (region.lateral < 6.0), "nerve")
    elif appearance.roots > 0:  # the roots lie dependent, toward the posterior wall of a supine patient
        strands = np.sin(2 * np.pi * depth / appearance.root_period_mm + 3.0 * region.lateral) > 1 - appearance.roots
        region.paint(midline & strands & (depth > 0.35 * canal_depth) & (depth < 0.9 * canal_depth), "nerve")
    if appearance.epidural_fat_mm > 0:
        region.paint(midline & (depth >= canal_depth - appearance.epidural_fat_mm), "fat")


def canal_wall(anatomy: SpineAnatomy) -> list[tuple[tuple[float, float], str]]:
    """The canal's anterior wall on the midline, head to feet: the posterior margin of every disc (where its RSNA
    canal point lies) and the posterior wall of every body near its endplates, each with its block's name; from
    400 mm above the top vertebra down to 25 mm below the top of the sacrum."""
    blocks = sorted([*anatomy.vertebrae.values(), *anatomy.discs.values()], key=lambda b: -b.center[1])
    wall: list[tuple[tuple[float, float], str]] = []
    for block in blocks:
        if block.name in anatomy.discs:
            wall.append((block.point(anatomy.disc_posterior_margin(block.name), 0.0), block.name))
            continue
        a = float(lateral_depth(block, np.zeros(1))[0])
        if block.name == "S1":  # the deep sacrum's upper corner reaches behind the L5/S1 disc: the wall skips it
            wall.append((block.point(a, block.half_height - 25.0), block.name))
            continue
        top = 400.0 if block.name == anatomy.top_vertebra else 0.8 * block.half_height
        wall += [(block.point(a, top), block.name), (block.point(a, -0.8 * block.half_height), block.name)]
    return wall


def paint_smooth_canal(canvas: Canvas, anatomy: SpineAnatomy, appearance: Appearance) -> None:
    """The canal as one tube of the anatomy's depth behind :func:`canal_wall` (CSF on the midline and its contents,
    epidural fat beside it), painted segment by segment; each segment overlaps its neighbours a little, and the
    wedge behind a joint where the wall turns forward (the lumbosacral angle) is filled around the joint."""
    wall = canal_wall(anatomy)
    back = anatomy.vertebrae["L3"].back
    depth_mm = anatomy.canal_depth
    previous: tuple[float, float, float, float] | None = None
    for ((au, av), name), ((bu, bv), _) in itertools.pairwise(wall):
        du, dv = bu - au, bv - av
        length = math.hypot(du, dv)
        if length < 1e-6:
            continue
        du, dv = du / length, dv / length
        nu, nv = -dv, du  # a normal of the segment, turned to point posteriorly
        if nu * back[0] + nv * back[1] < 0:
            nu, nv = -nu, -nv
        centre = (0.5 * (au + bu) + nu * depth_mm / 2, 0.5 * (av + bv) + nv * depth_mm / 2)
        reach = 0.5 * length * 1.3 + depth_mm
        region = canvas.near(centre, 0.0, 32.0, half_extent=(reach, reach))
        along = ((region.u - au) * du + (region.v - av) * dv) / length
        depth = (region.u - au) * nu + (region.v - av) * nv
        inside = (along >= -0.15) & (along <= 1.15) & (depth >= 0) & (depth < depth_mm)
        paint_canal(region, depth, inside, depth_mm, appearance, holds_cord(name))
        region.paint(inside & (region.lateral >= CANAL_HALF_WIDTH), "fat")
        if previous is not None:  # the joint at (au, av): behind both segments, within the depth of it
            joint = canvas.near((au, av), depth_mm, 32.0)
            ju, jv = joint.u - au, joint.v - av
            radius = np.hypot(ju, jv)
            pnu, pnv, pdu, pdv = previous  # the segment before: its normal and direction (the joint is its end)
            wedge = ((radius < depth_mm) & (ju * nu + jv * nv >= 0) & (ju * pnu + jv * pnv >= 0)
                     & (ju * du + jv * dv < 0) & (ju * pdu + jv * pdv > 0))  # beyond both: the gap only
            paint_canal(joint, radius, wedge, depth_mm, appearance, holds_cord(name))
            joint.paint(wedge & (joint.lateral >= CANAL_HALF_WIDTH), "fat")
        previous = (nu, nv, du, dv)


def render_image(anatomy: SpineAnatomy, image: sitk.Image, texture: SoftTissueTexture | None = None,
                 appearance: Appearance = PLAIN) -> Rendered:
    """Render labels and T1/T2/STIR signal on the voxel grid of ``image`` (any orientation); with ``texture``,
    the soft tissue and marrow carry it (the labels are the same either way), with ``appearance`` the tissues
    look as it says."""
    canvas = Canvas(image, appearance.signals())
    scale = anatomy.scale
    l3 = anatomy.vertebrae["L3"]
    every = canvas.everywhere()
    s_body, _ = l3.local(every.u, every.v)
    # Soft tissue: abdomen in front, muscle behind the spine, then subcutaneous fat, then air.
    back_of_spine = l3.half_depth + anatomy.canal_depth
    body = (s_body > -190) & (s_body < back_of_spine + 70) & (every.lateral < 160)
    every.paint(body, "abdomen")
    every.paint(body & (s_body > 0) & (s_body < back_of_spine + 55), "muscle")
    every.paint(body & (s_body >= back_of_spine + 55), "fat")

    # Spinal canal (midline) and foramina (parasagittal), behind every body and disc.
    if appearance.smooth_canal:
        paint_smooth_canal(canvas, anatomy, appearance)
        blocks = []
    else:
        blocks = [*anatomy.vertebrae.values(), *anatomy.discs.values()]
    for block in blocks:
        reach_up = 400.0 if block.name == anatomy.top_vertebra else block.half_height + 3.0
        low = -(block.half_height + 3.0) if block.name != "S1" else block.half_height - 25.0
        region = canvas.near_block(block, (0.0, block.half_depth + anatomy.canal_depth), (low, reach_up), 32.0)
        s, t = block.local(region.u, region.v)
        a = lateral_depth(block, np.zeros_like(s))
        behind = (s >= a) & (s < a + anatomy.canal_depth) & (t > low) & (t < reach_up)
        paint_canal(region, s - a, behind, anatomy.canal_depth, appearance, holds_cord(block.name))
        region.paint(behind & (region.lateral >= CANAL_HALF_WIDTH), "fat")

    for name, vertebra in anatomy.vertebrae.items():
        behind = vertebra.half_depth + anatomy.canal_depth + 33.0 * scale
        span = (-vertebra.half_height, vertebra.half_height)
        region = canvas.near_block(vertebra, (-vertebra.half_depth, behind), span, 32.0)
        s, t = vertebra.local(region.u, region.v)
        a = lateral_depth(vertebra, region.x)
        lateral = region.lateral
        value = vertebra.label
        region.paint(superellipse(s, t, a, vertebra.half_height) & (lateral < vertebra.half_width), "cortex", value)
        rim = appearance.cortex_mm
        core = superellipse(s, t, a - rim, vertebra.half_height - rim) & (lateral < vertebra.half_width - rim)
        region.paint(core, "marrow")
        if name != "S1":  # posterior elements: pedicles beside the canal, lamina and spinous process
            pedicle = (
                (s >= vertebra.half_depth * 0.55 - 2) & (s < vertebra.half_depth + anatomy.canal_depth + 2)
                & (t > -0.25 * vertebra.half_height) & (t < 0.8 * vertebra.half_height)
                & (lateral >= CANAL_HALF_WIDTH) & (lateral < 26)
            )
            region.paint(pedicle, "marrow", value)
            arch_s = s - (vertebra.half_depth + anatomy.canal_depth)
            lamina = (arch_s >= 0) & (arch_s < 9 * scale) & (np.abs(t) < 0.55 * vertebra.half_height) & (lateral < 24)
            spinous = (arch_s >= 0) & (arch_s < 32 * scale) & (np.abs(t + 2) < 0.3 * vertebra.half_height) & (lateral < 4)
            region.paint(lamina | spinous, "marrow", value)

    annulus_t1, annulus_t2, annulus_stir = canvas.signals["annulus"]
    nucleus_t1 = canvas.signals["nucleus_t1"][0]
    for level, disc in anatomy.discs.items():
        g = anatomy.disc_grades(level)
        upper, lower = disc_vertebrae(level)
        depth = disc.half_depth + anatomy.bulge + anatomy.herniation_depth + 1.0
        # Reaches into the neighbouring bodies for the Modic bands and endplate defects.
        span = disc.half_height + 8.0 * scale
        region = canvas.near_block(disc, (-depth, depth), (-span, span), disc.half_width + 1.0)
        s, t = disc.local(region.u, region.v)
        lateral = region.lateral
        a = lateral_depth(disc, region.x) + (anatomy.bulge if g.bulging else 0.0)
        inside = superellipse(s, t, a, disc.half_height, p=2 if g.bulging else 4) & (lateral < disc.half_width)
        region.paint(inside, "annulus", disc.label)
        nucleus = ((s / (appearance.nucleus_share * a)) ** 2 + (t / (0.6 * disc.half_height)) ** 2 <= 1.0) & inside
        nucleus_t2, nucleus_stir = PFIRRMANN_T2[g.pfirrmann], PFIRRMANN_STIR[g.pfirrmann]
        if g.pfirrmann >= 3:  # lost nucleus/annulus distinction: the annulus darkens toward the nucleus
            region.paint(inside, (annulus_t1, 0.5 * (annulus_t2 + nucleus_t2), 0.5 * (annulus_stir + nucleus_stir)))
        region.paint(nucleus, (nucleus_t1, nucleus_t2, nucleus_stir))
        if g.pfirrmann == 2:  # horizontal intranuclear cleft
            region.paint(nucleus & (np.abs(t) < 0.6), (nucleus_t1, 0.45, 0.42))
        if g.pfirrmann >= 3:  # inhomogeneous grey: a fixed pattern of darker streaks
            streaks = nucleus & (np.sin(s * 1.3 + t * 0.7) > 0.6)
            region.paint(streaks, (nucleus_t1, nucleus_t2 * 0.6, nucleus_stir * 0.6))
        if g.herniation:  # focal posterior protrusion into the canal
            hs = s - a
            blob = ((hs / anatomy.herniation_depth) ** 2 + (t / (0.55 * disc.half_height)) ** 2 <= 1.0) & (hs >= -1)
            region.paint(blob & (lateral < 8), (annulus_t1, 0.5 * annulus_t2 + 0.2, 0.5 * annulus_stir + 0.2), disc.label)
        for vertebra_name, has_defect, sign in ((upper, g.up_endplate, 1.0), (lower, g.low_endplate, -1.0)):
            vertebra = anatomy.vertebrae[vertebra_name]
            bs, bt = vertebra.local(region.u, region.v)
            # Endplate band of the body next to this disc: the lower end of the body above, upper end below.
            edge = -vertebra.half_height if sign > 0 else vertebra.half_height
            core = superellipse(bs, bt, lateral_depth(vertebra, region.x) - 1.5, vertebra.half_height - 1.5)
            band = core & (np.abs(bt - edge) < 5.0 * scale) & (lateral < vertebra.half_width - 1.5)
            if g.modic:
                region.paint(band, (*MODIC_SIGNAL[g.modic], MODIC_STIR[g.modic]))
            if has_defect:  # Schmorl node: disc material pushed through the endplate, in a sclerotic rim
                nu, nv = disc.point(-0.1 * disc.half_depth, sign * disc.half_height)
                distance = np.hypot(region.u - nu, region.v - nv)
                in_body = (region.labels == vertebra.label) & (lateral < 10.0)
                rim = in_body & (distance <= (SCHMORL_RADIUS_MM + SCHMORL_RIM_MM) * scale)
                region.paint(rim, "cortex")
                node = in_body & (distance <= SCHMORL_RADIUS_MM * scale)
                region.paint(node, (annulus_t1, nucleus_t2 * 0.8, nucleus_stir * 0.8), disc.label)
        # At the disc's height the canal starts at the disc's posterior margin: the corners of the bodies around
        # a wedged or narrowed disc (the deep sacrum most of all) do not reach past it into the canal.
        margin = disc.half_depth + (anatomy.bulge if g.bulging else 0.0)
        behind = canvas.near_block(disc, (0.0, margin + anatomy.canal_depth), (-disc.half_height, disc.half_height),
                                   CANAL_HALF_WIDTH)
        s, t = disc.local(behind.u, behind.v)
        bone = np.isin(behind.labels, [anatomy.vertebrae[upper].label, anatomy.vertebrae[lower].label])
        cut = bone & (s >= margin) & (s < margin + anatomy.canal_depth) & (np.abs(t) <= disc.half_height)
        paint_canal(behind, s - margin, cut, anatomy.canal_depth, appearance, holds_cord(level))

    for level in anatomy.discs:  # nerve roots in the foramina
        for side in ("left", "right"):
            fx, fu, fv = anatomy.foramen_point(level, side)
            region = canvas.near((fu, fv), 4.0 * scale)
            root = ((region.u - fu) ** 2 + (region.v - fv) ** 2 <= (2.5 * scale) ** 2) & (np.abs(region.x - fx) < 6)
            region.paint(root & (region.labels == 0), "nerve")
    if texture is not None:
        texture.apply(canvas, anatomy)
    return canvas.result()


def image_points(image: sitk.Image) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Physical X, Y, Z of every voxel of ``image``, as arrays shaped like its numpy array (z, y, x)."""
    size = image.GetSize()
    k, j, i = np.meshgrid(np.arange(size[2]), np.arange(size[1]), np.arange(size[0]), indexing="ij")
    index = np.stack([i.ravel(), j.ravel(), k.ravel()]).astype(np.float64)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    points = np.array(image.GetOrigin())[:, None] + direction @ (index * spacing[:, None])
    shape = (size[2], size[1], size[0])
    return points[0].reshape(shape), points[1].reshape(shape), points[2].reshape(shape)


def partial_vertebrae(labels: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """SPIDER marks vertebrae cut by the field of view as ``100 + N``: relabel those touching the border."""
    border = np.zeros(labels.shape, dtype=bool)
    border[:, 0, :] = border[:, -1, :] = border[:, :, 0] = border[:, :, -1] = True
    out = labels.copy()
    for value in np.unique(labels[border]):
        if 1 <= value <= SPIDER_MAX_VERTEBRA:
            out[labels == value] = value + SPIDER_PARTIAL_OFFSET
    return out


def noise_and_bias(signal: FloatArray, rng: np.random.Generator, gain: float, sigma: float = 0.025) -> npt.NDArray[np.int16]:
    """Scanner-like intensities: smooth multiplicative bias field, Rician-like noise, integer gain."""
    shape = signal.shape
    zz, yy, xx = (np.linspace(-1, 1, n, dtype=np.float32).reshape([-1 if a == i else 1 for a in range(3)])
                  for i, n in enumerate(shape))
    ax, ay, phase = rng.uniform(-0.15, 0.15), rng.uniform(-0.2, 0.2), rng.uniform(0, 2 * np.pi)
    in_plane = ax * xx + ay * yy + 0.06 * np.sin(2.1 * xx + 1.7 * yy + phase)
    bias = (1.0 + in_plane + 0.02 * zz).astype(np.float32)
    real = signal * bias + sigma * rng.standard_normal(shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(shape, dtype=np.float32)
    magnitude = np.sqrt(real**2 + imag**2)
    return np.clip(np.round(magnitude * gain), 0, 32000).astype(np.int16)


@dataclass(frozen=True)
class SeriesGeometry:
    """Size and placement of a rendered series."""

    size: tuple[int, int, int]  # (columns, rows, slices)
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]
    center: tuple[float, float, float]  # physical point at the middle of the volume

    def empty_image(self) -> sitk.Image:
        image = sitk.Image(list(self.size), sitk.sitkInt16)
        image.SetSpacing(self.spacing)
        image.SetDirection(self.direction)
        middle = [(n - 1) / 2 for n in self.size]
        offset = np.array(self.direction).reshape(3, 3) @ (np.array(middle) * np.array(self.spacing))
        image.SetOrigin(tuple(np.array(self.center) - offset))
        return image


def sagittal_geometry(
    rng: np.random.Generator, slices: int, rows: int, columns: int, fov_mm: float, thickness: float,
    max_shift: float = 18.0, keep: Sequence[tuple[float, float, float]] = (), margin_mm: float = 0.0,
) -> SeriesGeometry:
    """A sagittal series around the spine, shifted so that landmarks never sit at fixed pixels.

    The shift (mm, antero-posterior and supero-inferior) is drawn up to ``max_shift``; with ``keep`` points it
    is drawn among the shifts that hold every one of them in the image, at least ``margin_mm`` from its border.
    """
    spacing = fov_mm / columns
    if keep:
        points = np.array(keep, dtype=np.float64)
        # Columns run posterior (+u) and rows inferior (-v) from the image centre.
        half = np.array([(columns - 1) / 2, (rows - 1) / 2]) * spacing - margin_mm
        low = points[:, 1:].max(axis=0) - half - NOMINAL_CENTER
        high = points[:, 1:].min(axis=0) + half - NOMINAL_CENTER
        shift = np.array([
            float(rng.uniform(*allowed_shift(float(lo), float(hi), max_shift))) for lo, hi in zip(low, high, strict=True)
        ])
    else:
        shift = rng.uniform(-max_shift, max_shift, 2)
    return SeriesGeometry(
        size=(columns, rows, slices),
        spacing=(spacing, spacing, thickness),
        direction=SAGITTAL_DIRECTION,
        center=(float(rng.uniform(-0.4, 0.4) * thickness), float(NOMINAL_CENTER[0] + shift[0]),
                float(NOMINAL_CENTER[1] + shift[1])),
    )


def allowed_shift(low: float, high: float, max_shift: float) -> tuple[float, float]:
    """The shifts within ``max_shift`` that also lie in ``[low, high]`` (the range that keeps points inside).

    When the two do not meet, keeping the points inside wins; when nothing keeps them all inside, the middle.
    """
    if low > high:
        middle = (low + high) / 2
        return middle, middle
    lo, hi = max(low, -max_shift), min(high, max_shift)
    return (lo, hi) if lo <= hi else (low, high)


def axial_geometry(anatomy: SpineAnatomy, rng: np.random.Generator, size: int, fov_mm: float,
                   thickness: float) -> SeriesGeometry:
    """An axial stack from below L5/S1 to above L1/L2, centred on the canal (slices through every disc)."""
    top = anatomy.discs["L1/L2"].center[1] + 15.0
    bottom = anatomy.discs["L5/S1"].center[1] - 15.0
    slices = math.ceil((top - bottom) / thickness) + 1
    u_mid = float(np.mean([d.center[0] for d in anatomy.discs.values()])) + 15.0
    spacing = fov_mm / size
    return SeriesGeometry(
        size=(size, size, slices),
        spacing=(spacing, spacing, thickness),
        direction=AXIAL_DIRECTION,
        center=(float(rng.uniform(-5, 5)), u_mid + float(rng.uniform(-8, 8)), (top + bottom) / 2),
    )


def physical_to_index(image: sitk.Image, point: tuple[float, float, float]) -> tuple[float, float, float]:
    """Continuous voxel index (i, j, k) of a physical point."""
    i, j, k = image.TransformPhysicalPointToContinuousIndex(point)
    return (float(i), float(j), float(k))


def render_series(
    anatomy: SpineAnatomy,
    geometry: SeriesGeometry,
    rng: np.random.Generator,
    contrasts: tuple[str, ...] = ("t1", "t2"),
    gain_range: tuple[float, float] = (700.0, 1400.0),
    noise_range: tuple[float, float] | None = None,
    texture: SoftTissueTexture | None = None,
    appearance: Appearance = PLAIN,
) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """Images of ``contrasts`` (``'t1'``, ``'t2'``, ``'stir'``) and the SPIDER-valued mask, rendered once.

    Each contrast gets its own scanner gain (drawn from ``gain_range``), bias field and noise (its level drawn
    from ``noise_range`` when given, else the default of :func:`noise_and_bias`); ``texture`` and ``appearance``
    as in :func:`render_image`.
    """
    template = geometry.empty_image()
    rendered = render_image(anatomy, template, texture, appearance)
    images: dict[str, sitk.Image] = {}
    for contrast in contrasts:
        signal = rendered.signal(contrast)
        gain = float(rng.uniform(*gain_range))
        if noise_range is None:
            array = noise_and_bias(signal, rng, gain)
        else:
            array = noise_and_bias(signal, rng, gain, sigma=float(rng.uniform(*noise_range)))
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(template)
        images[contrast] = image
    mask = sitk.GetImageFromArray(partial_vertebrae(rendered.labels))
    mask.CopyInformation(template)
    return images, mask
