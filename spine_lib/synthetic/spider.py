"""SPIDER-like source: ``images/<id>_{t1,t2,t2_SPACE}.mha``, ``masks/`` alike, ``overview.csv`` and
``radiological_gradings.csv`` with SPIDER's own column names (and its ``Pfirrman`` spelling)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spine_lib.core.layout import DataLayout
from spine_lib.io import write_medical_image, write_records_csv
from spine_lib.levels import LEVELS, spider_ivd_label
from spine_lib.sources import spider as source
from spine_lib.synthetic.phantom import build_anatomy, render_series, sagittal_geometry
from spine_lib.synthetic.truth import disc_truths, relative, series_truth


@dataclass(frozen=True)
class RenderSize:
    """Size of the rendered sagittal series."""

    rows: int = 256
    columns: int = 256
    slices: int = 14
    fov_mm: float = 280.0
    thickness: float = 3.5


def grading_row(patient: int, level: str, grades: Any) -> dict[str, object]:
    """One row of radiological_gradings.csv (SPIDER's column names, IVD label counted from the bottom)."""
    values = (patient, spider_ivd_label(level), grades.modic, grades.up_endplate, grades.low_endplate,
              grades.spondylolisthesis, grades.herniation, grades.narrowing, grades.bulging, grades.pfirrmann)
    return dict(zip(source.GRADING_COLUMNS, values, strict=True))


def write_spider(layout: DataLayout, patients: int, seed: int, size: RenderSize) -> dict[str, Any]:
    """Write the SPIDER-like source under ``layout.spider``; return its truth (per patient, series, disc)."""
    root = layout.spider
    truth: dict[str, Any] = {"patients": []}
    gradings: list[dict[str, object]] = []
    overview: list[dict[str, object]] = []
    for index in range(patients):
        patient = index + 1
        rng = np.random.default_rng([seed, 1, index])
        anatomy = build_anatomy(rng)
        geometry = sagittal_geometry(rng, size.slices, size.rows, size.columns, size.fov_mm, size.thickness)
        images, mask = render_series(anatomy, geometry, rng)
        series = []
        kinds = {"t1": images["t1"], "t2": images["t2"]}
        for contrast, image in kinds.items():
            name = f"{patient}_{contrast}"
            write_medical_image(image, root / source.IMAGES / f"{name}{source.FILE_EXTENSION}")
            write_medical_image(mask, root / source.MASKS / f"{name}{source.FILE_EXTENSION}")
            series.append(series_truth(image, anatomy, relative(layout, root / source.IMAGES / f"{name}{source.FILE_EXTENSION}"), f"sag_{contrast}"))
        if index % 4 == 3:  # some studies also have a high-resolution T2 SPACE series
            space = sagittal_geometry(
                rng, size.slices * 2, size.rows, size.columns, size.fov_mm, size.thickness / 2
            )
            space_images, space_mask = render_series(anatomy, space, rng, contrasts=("t2",))
            name = f"{patient}_t2_SPACE"
            write_medical_image(space_images["t2"], root / source.IMAGES / f"{name}{source.FILE_EXTENSION}")
            write_medical_image(space_mask, root / source.MASKS / f"{name}{source.FILE_EXTENSION}")
            series.append(series_truth(space_images["t2"], anatomy, relative(layout, root / source.IMAGES / f"{name}{source.FILE_EXTENSION}"), "sag_t2_space"))
        subset = "validation" if index % 5 == 4 else "training"
        sex, age = ("F" if rng.random() < 0.6 else "M"), int(rng.integers(25, 85))
        for s in series:
            overview.append({
                "new_file_name": Path(s.path).name.removesuffix(source.FILE_EXTENSION), "subset": subset, "sex": sex, "age": age,
                "manufacturer": "SIEMENS" if index % 2 else "Philips", "field_strength_t": 1.5,
                "num_slices": s.size[2], "pixel_spacing_mm": round(s.spacing[0], 4),
                "slice_thickness_mm": round(s.spacing[2], 4),
            })
        gradings.extend(grading_row(patient, level, anatomy.grades[level]) for level in reversed(LEVELS))
        if index % 6 == 5:  # as in SPIDER, a few rows carry IVD label 0 (no disc) and no grades
            gradings.append({"Patient": patient, "IVD label": 0})
        truth["patients"].append({"patient": patient, "subset": subset, "series": series, "discs": disc_truths(anatomy)})
    write_records_csv(overview, root / source.OVERVIEW_FILE, columns=source.OVERVIEW_COLUMNS)
    write_records_csv(gradings, root / source.GRADINGS_FILE, columns=source.GRADING_COLUMNS)
    return truth
