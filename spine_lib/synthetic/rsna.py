"""RSNA 2024-like source: DICOM studies (Sagittal T1, Sagittal T2/STIR, Axial T2) and the competition CSVs.

The studies vary the way real scanners and patients do (see :class:`StudyDraw`): field of view, anatomy
scale, tilt, where the spine sits in the frame and so how many thoracic vertebrae are in view (the column goes
on up to T5, as a real one does), T2 or STIR for the "Sagittal T2/STIR" series, gain and noise; organs, bowel
and textured soft tissue and marrow surround the spine (:class:`~spine_lib.synthetic.phantom.SoftTissueTexture`); with
``varied_looks`` each study's tissues look their own way (:class:`~spine_lib.synthetic.phantom.Appearance`: the
contrast between tissues, cortex, nucleus, a smooth canal with the cord, the cauda equina's roots and epidural fat).
Every lumbar landmark stays inside its series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.io import DicomSeriesInfo, write_dicom_series, write_records_csv
from spine_lib.io.dicom import deterministic_uid
from spine_lib.levels import LEVELS
from spine_lib.sources import rsna as source
from spine_lib.sources.rsna import AX_T2, CONDITIONS, SAG_T1, SAG_T2, SERIES_DESCRIPTIONS, condition_column
from spine_lib.synthetic.phantom import (
    FORAMEN_X,
    PLAIN,
    THORACIC,
    Appearance,
    DiscGrades,
    SeriesGeometry,
    SpineAnatomy,
    axial_geometry,
    build_anatomy,
    draw_appearance,
    draw_texture,
    physical_to_index,
    render_series,
    sagittal_geometry,
)
from spine_lib.synthetic.spider import RenderSize
from spine_lib.synthetic.truth import disc_truths, relative, series_truth

SAGITTAL_T1 = SERIES_DESCRIPTIONS[SAG_T1]
SAGITTAL_T2 = SERIES_DESCRIPTIONS[SAG_T2]
AXIAL_T2 = SERIES_DESCRIPTIONS[AX_T2]

#: Field of view of the sagittal series (mm); the pixel spacing follows at the requested image size.
FOV_RANGE = (200.0, 360.0)
SCALE_RANGE = (0.8, 1.2)
MAX_TILT = 15.0  # degrees
#: How far the spine may sit off the centre of a sagittal series, as a share of its field of view ...
SHIFT_SHARE = 0.25
#: ... while every lumbar landmark stays at least this share of the field of view inside the image.
MARGIN_SHARE = 0.04
#: Share of the studies whose "Sagittal T2/STIR" series is a STIR.
STIR_SHARE = 1 / 3
GAIN_RANGE = (450.0, 2000.0)
NOISE_RANGE = (0.015, 0.045)
#: DICOM attributes of a STIR series (an inversion recovery with a short inversion time).
STIR_ATTRIBUTES = {"ScanningSequence": "IR", "InversionTime": "150"}


@dataclass(frozen=True)
class StudyDraw:
    """What was drawn for one study (recorded in its truth so that benchmarks can report by kind)."""

    fov_mm: float
    scale: float
    tilt_degrees: float
    thoracic: int  # thoracic vertebrae above L1 in the phantom (how many are in view: each series' truth)
    contrast: str  # of the "Sagittal T2/STIR" series: "t2" or "stir"


def draw_study(rng: np.random.Generator) -> tuple[StudyDraw, SpineAnatomy]:
    """A study's field of view, contrast and tilt, and the spine built with them (up to T5)."""
    fov = float(rng.uniform(*FOV_RANGE))
    thoracic = len(THORACIC)
    contrast = "stir" if rng.random() < STIR_SHARE else "t2"
    tilt = float(rng.uniform(-MAX_TILT, MAX_TILT))
    anatomy = build_anatomy(rng, tilt_degrees=tilt, thoracic=thoracic, scale_range=SCALE_RANGE)
    draw = StudyDraw(fov_mm=round(fov, 3), scale=round(anatomy.scale, 4), tilt_degrees=round(tilt, 3),
                     thoracic=thoracic, contrast=contrast)
    return draw, anatomy


def appearance_record(appearance: Appearance) -> dict[str, Any]:
    """A study's appearance as its truth records it (rounded)."""
    return {"gains": {name: [round(g, 3) for g in gain] for name, gain in appearance.gains.items()},
            **{key: round(value, 3) for key, value in vars(appearance).items() if key != "gains"}}


def thoracic_in_view(image: sitk.Image, anatomy: SpineAnatomy) -> int:
    """How many thoracic vertebral bodies have their centre inside a series' rows and columns."""
    columns, rows = image.GetSize()[:2]
    count = 0
    for name in THORACIC:
        if name in anatomy.vertebrae:
            u, v = anatomy.vertebrae[name].center
            i, j, _ = physical_to_index(image, (0.0, u, v))
            count += int(-0.5 <= i <= columns - 0.5 and -0.5 <= j <= rows - 0.5)
    return count


def sagittal_landmarks(anatomy: SpineAnatomy) -> list[tuple[float, float, float]]:
    """Every point annotated on a sagittal series: the canal point and both foramina of each lumbar disc."""
    return [p for level in LEVELS for p in (anatomy.canal_point(level), anatomy.foramen_point(level, "left"),
                                            anatomy.foramen_point(level, "right"))]


def sagittal_series(rng: np.random.Generator, anatomy: SpineAnatomy, draw: StudyDraw, size: RenderSize,
                    slices: int) -> SeriesGeometry:
    """A sagittal series of the study's field of view, the spine shifted in it with its landmarks inside."""
    return sagittal_geometry(rng, slices, size.rows, size.columns, draw.fov_mm, size.thickness,
                             max_shift=SHIFT_SHARE * draw.fov_mm, keep=sagittal_landmarks(anatomy),
                             margin_mm=MARGIN_SHARE * draw.fov_mm)


def severity(condition: str, grades: DiscGrades) -> str:
    """A severity consistent with the disc's grades (herniation narrows the canal, a low disc the foramina)."""
    if condition == "Spinal Canal Stenosis":
        score = 2 if grades.herniation and grades.pfirrmann >= 4 else grades.herniation + grades.bulging
    elif "Foraminal" in condition:
        score = grades.narrowing + int(grades.narrowing and grades.pfirrmann == 5)
    else:
        score = grades.herniation + int(grades.herniation and grades.pfirrmann >= 4)
    return source.SEVERITIES[min(score, 2)]


def landmark(anatomy: SpineAnatomy, kind: str, level: str, side: str) -> tuple[float, float, float]:
    if kind == "canal":
        return anatomy.canal_point(level)
    if kind == "foramen":
        return anatomy.foramen_point(level, side)
    return anatomy.subarticular_point(level, side)


def write_rsna(layout: DataLayout, studies: int, seed: int, size: RenderSize, varied_looks: bool = False
               ) -> dict[str, Any]:
    """Write the RSNA-like source under ``layout.rsna``; return its truth. ``varied_looks``: each study's tissues
    look their own way (:func:`~spine_lib.synthetic.phantom.draw_appearance`), else as the phantom's table."""
    root = layout.rsna
    truth: dict[str, Any] = {"studies": []}
    descriptions: list[dict[str, object]] = []
    coordinates: list[dict[str, object]] = []
    labels: list[dict[str, object]] = []
    for index in range(studies):
        rng = np.random.default_rng([seed, 2, index])
        study_id = int(rng.integers(10**7, 5 * 10**9))
        draw, anatomy = draw_study(rng)
        texture = draw_texture(rng, anatomy)
        # its own stream: the geometry, the landmarks and the CSVs do not depend on how the tissues look
        appearance = draw_appearance(np.random.default_rng([seed, 2, index, 1])) if varied_looks else PLAIN
        # Sagittal stacks wide enough to hold both neural foramina (annotated on parasagittal slices).
        slices = max(size.slices, math.ceil(2 * (FORAMEN_X + size.thickness) / size.thickness) + 1)
        geometries = {
            SAGITTAL_T1: (sagittal_series(rng, anatomy, draw, size, slices), "t1"),
            SAGITTAL_T2: (sagittal_series(rng, anatomy, draw, size, slices), draw.contrast),
            AXIAL_T2: (axial_geometry(anatomy, rng, max(size.rows // 2, 64), 200.0, 4.0), "t2"),
        }
        study_truth: dict[str, Any] = {"study_id": study_id, "series": [], "discs": disc_truths(anatomy),
                                       "drawn": vars(draw), "appearance": appearance_record(appearance)}
        images: dict[str, tuple[sitk.Image, int]] = {}
        for number, (description, (geometry, contrast)) in enumerate(geometries.items(), start=1):
            series_id = int(rng.integers(10**8, 4 * 10**9))
            rendered, _ = render_series(anatomy, geometry, rng, contrasts=(contrast,), gain_range=GAIN_RANGE,
                                        noise_range=NOISE_RANGE, texture=texture, appearance=appearance)
            image = rendered[contrast]
            folder = source.series_folder(root, study_id, series_id)
            info = DicomSeriesInfo(
                series_description=description,
                series_number=number,
                patient_id=str(study_id),
                series_uid=deterministic_uid("rsna", seed, study_id, series_id),
                study_uid=deterministic_uid("rsna-study", seed, study_id),
                extra=dict(STIR_ATTRIBUTES) if contrast == "stir" else {},
            )
            write_dicom_series(image, folder, info)
            images[description] = (image, series_id)
            descriptions.append({"study_id": study_id, "series_id": series_id, "series_description": description})
            kind = {SAGITTAL_T1: "sag_t1", SAGITTAL_T2: "sag_t2", AXIAL_T2: "axial_t2"}[description]
            relative_folder = relative(layout, folder)
            entry = series_truth(image, anatomy, relative_folder, kind, series_uid=info.series_uid)
            study_truth["series"].append({"series_id": series_id, "description": description, "contrast": contrast,
                                          **vars(entry), "thoracic_in_view": thoracic_in_view(image, anatomy)})
        row: dict[str, object] = {"study_id": study_id}
        for condition, (series_type, kind, side) in CONDITIONS.items():
            image, series_id = images[SERIES_DESCRIPTIONS[series_type]]
            for level in LEVELS:
                i, j, k = physical_to_index(image, landmark(anatomy, kind, level, side))
                instance = int(np.clip(round(k), 0, image.GetSize()[2] - 1)) + 1
                coordinates.append({
                    "study_id": study_id, "series_id": series_id, "instance_number": instance,
                    "condition": condition, "level": level, "x": round(i, 3), "y": round(j, 3),
                })
                row[condition_column(condition, level)] = severity(condition, anatomy.grades[level])
        if index % 3 == 2:  # real train.csv rows have a few empty cells
            row[condition_column("Left Subarticular Stenosis", "L1/L2")] = ""
        labels.append(row)
        truth["studies"].append(study_truth)
    columns = ["study_id"] + [condition_column(c, lv) for c in CONDITIONS for lv in LEVELS]
    write_records_csv(labels, root / source.LABELS_FILE, columns=columns)
    write_records_csv(descriptions, root / source.DESCRIPTIONS_FILE, columns=source.SERIES_DESCRIPTION_COLUMNS)
    write_records_csv(coordinates, root / source.COORDINATES_FILE, columns=source.COORDINATE_COLUMNS)
    return truth
