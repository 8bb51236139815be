"""Phenikaa-hospital-like source: reports (ID-named PNG scans, patient-named PDFs), one DICOM study folder per
patient named as the hospital exports them, and Excel label tables with the mess real tables have.

By default the reports are of four kinds (clean and scanned PNGs, PDFs with and without a text layer); with
``report_kinds`` they are of the kinds a real inbox holds (:data:`spine_lib.synthetic.reports.REPORT_KINDS`:
turned pages, stamps, other forms, year-only birthdays, signature blocks, phone photos, two-page scans), one
kind per patient in turn. Phenikaa tables count IVD levels from the top (1 = L1/L2): see :mod:`spine_lib.levels`.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from spine_lib.core.layout import DataLayout
from spine_lib.errors import ConfigError
from spine_lib.io import DicomSeriesInfo, write_dicom_series
from spine_lib.io.dicom import deterministic_uid
from spine_lib.io.tabular import write_table_xlsx
from spine_lib.levels import LEVELS, phenikaa_ivd_label
from spine_lib.sources.phenikaa import LABEL_TABLE_COLUMNS
from spine_lib.synthetic.people import SyntheticPatient, ascii_name, lookalike_pairs, make_patients
from spine_lib.synthetic.phantom import build_anatomy, render_series, sagittal_geometry, sample_grades
from spine_lib.synthetic.reports import (
    REPORT_KINDS,
    render_report_pdf,
    render_report_png,
    report_lines,
    write_report,
)
from spine_lib.synthetic.spider import RenderSize
from spine_lib.synthetic.truth import disc_truths, relative, series_truth

#: An ID that appears in the tables but belongs to no patient (a typo in the export): list it as corrupted.
CORRUPTED_ID = "25001"
#: Series folders and descriptions as different scanners and export tools write them, one style per patient in
#: turn (the crops builder must tell sagittal T1 from T2 by description, whatever the folder is called).
SERIES_STYLES: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (("SAG_T1", "t1", "Sag T1 TSE"), ("SAG_T2", "t2", "Sag T2 TSE")),
    (("S0002", "t1", "T1_TSE_SAG_320"), ("S0003", "t2", "T2_TSE_SAG_384")),
    (("series_7", "t2", "t2w sag"), ("series_8", "t1", "t1w sag")),
    (("SAG_T2_FS", "t2", "SAG T2 FS"), ("SAG_T1", "t1", "SAG T1")),
)


def folder_name(patient: SyntheticPatient, with_birth_year: bool, copy: int = 1) -> str:
    """``NAME_YYYYMMDD``, ``NAME_YYYY_YYYYMMDD`` with the birth year, `` (2)`` for a repeated export."""
    parts = [ascii_name(patient.full_name)]
    if with_birth_year:
        parts.append(f"{patient.birthday.year}")
    parts.append(patient.exam_date.strftime("%Y%m%d"))
    name = "_".join(parts)
    return f"{name} ({copy})" if copy > 1 else name


def report_name(patient: SyntheticPatient, index: int) -> tuple[str, str]:
    """File name and format of a patient's report: even patients ID-named PNG, odd patients named PDF."""
    if index % 2 == 0:
        return f"{patient.patient_id}.png", "png_scanned" if index % 4 == 2 else "png_clean"
    name = f"{ascii_name(patient.full_name)}_{patient.exam_date:%Y%m%d}.pdf"
    return name, "pdf_text" if index % 4 == 1 else "pdf_image"


def table_row(patient_id: str, level: str, grades: Any, modic: object | None = None) -> list[object]:
    return [
        int(patient_id), phenikaa_ivd_label(level), grades.modic if modic is None else modic, grades.up_endplate,
        grades.low_endplate, grades.spondylolisthesis, grades.herniation, grades.narrowing, grades.bulging,
        grades.pfirrmann,
    ]


def write_phenikaa(
    layout: DataLayout, patients: int, seed: int, size: RenderSize, report_kinds: Sequence[str] | None = None
) -> dict[str, Any]:
    """Write the Phenikaa-like source under ``layout.phenikaa``; return its truth (PHI included: raw data).

    ``report_kinds``: report kinds of :data:`~spine_lib.synthetic.reports.REPORT_KINDS`, one per patient in
    turn (None: the four usual kinds). A patient's truth then also holds ``report_truth``, what the report
    prints (a year-only birthday, the turn of each page, ...).
    """
    unknown = [kind for kind in report_kinds or () if kind not in REPORT_KINDS]
    if unknown or (report_kinds is not None and not report_kinds):
        raise ConfigError("report_kinds", f"expected kinds among {', '.join(REPORT_KINDS)}, got {report_kinds}")
    used_names: set[str] = set()
    rng = np.random.default_rng([seed, 3])
    people = make_patients(patients, rng)
    truth: dict[str, Any] = {"patients": [], "corrupted_ids": [CORRUPTED_ID], "table_quirks": {}}
    truth["lookalike_pairs"] = [list(p) for p in lookalike_pairs(people)]
    rows: list[list[object]] = []
    for index, person in enumerate(people):
        subject_rng = np.random.default_rng([seed, 3, index])
        grades = {level: sample_grades(subject_rng, level) for level in LEVELS}
        if index == 0 and not any(g.modic in (1, 2) for g in grades.values()):
            # The tables' "1&2" quirk lands on a disc with a Modic 1/2 change; make sure one exists.
            grades["L4/L5"] = dataclasses.replace(grades["L4/L5"], modic=1, pfirrmann=max(3, grades["L4/L5"].pfirrmann))
        anatomy = build_anatomy(subject_rng, grades=grades)
        geometry = sagittal_geometry(
            subject_rng, size.slices, size.rows, size.columns, size.fov_mm, size.thickness
        )
        images, _ = render_series(anatomy, geometry, subject_rng)
        folder = folder_name(person, with_birth_year=index % 4 == 1)
        study = layout.phenikaa_images / folder
        series_truths = []
        for number, (sub, contrast, description) in enumerate(SERIES_STYLES[index % len(SERIES_STYLES)], start=1):
            info = DicomSeriesInfo(
                series_description=description,
                series_number=number,
                patient_id=person.patient_id,
                patient_name=ascii_name(person.full_name).replace("_", " "),
                patient_birth_date=person.birthday,
                study_date=person.exam_date,
                series_uid=deterministic_uid("phenikaa", seed, person.patient_id, number),
            )
            write_dicom_series(images[contrast], study / sub, info)
            series_truths.append(series_truth(
                images[contrast], anatomy, relative(layout, study / sub), f"sag_{contrast}", info.series_uid
            ))
        folders = [folder]
        if index % 5 == 3:  # the same study exported twice
            again = folder_name(person, with_birth_year=index % 4 == 1, copy=2)
            shutil.rmtree(layout.phenikaa_images / again, ignore_errors=True)
            shutil.copytree(study, layout.phenikaa_images / again)
            folders.append(again)
        findings = {level: dataclasses.asdict(anatomy.grades[level]) for level in LEVELS}
        report_findings = {
            level: {
                "pfirrmann": g["pfirrmann"], "modic": g["modic"], "herniation": g["herniation"],
                "bulging": g["bulging"], "narrowing": g["narrowing"], "spondylolisthesis": g["spondylolisthesis"],
                "up_endplate": g["up_endplate"], "low_endplate": g["low_endplate"],
            }
            for level, g in findings.items()
        }
        extra: dict[str, Any] = {}
        if report_kinds:
            layout.phenikaa_reports.mkdir(parents=True, exist_ok=True)
            report_format = report_kinds[index % len(report_kinds)]
            written = write_report(report_format, person, report_findings, layout.phenikaa_reports, subject_rng,
                                   used_names=used_names)
            report_path = layout.phenikaa_reports / written.file
            extra["report_truth"] = written.as_dict()
        else:
            lines = report_lines(person, report_findings)
            name, report_format = report_name(person, index)
            report_path = layout.phenikaa_reports / name
            if report_format.startswith("png"):
                render_report_png(lines, report_path, scanned=report_format == "png_scanned", rng=subject_rng)
            else:
                render_report_pdf(lines, report_path, text_layer=report_format == "pdf_text", rng=subject_rng)
        rows.extend(table_row(person.patient_id, level, anatomy.grades[level]) for level in LEVELS)
        truth["patients"].append({
            "patient_id": person.patient_id,
            "full_name": person.full_name,
            "birthday": person.birthday.isoformat(),
            "sex": person.sex,
            "exam_date": person.exam_date.isoformat(),
            "report": relative(layout, report_path),
            "report_format": report_format,
            "image_folders": [relative(layout, layout.phenikaa_images / f) for f in folders],
            "series": series_truths,
            "discs": disc_truths(anatomy),
            **extra,
        })
    rows = add_table_quirks(rows, truth)
    half = (len(rows) + 1) // 2
    stamp = datetime(2025, 8, 1, 9, 0, 0)
    layout.phenikaa_tables.mkdir(parents=True, exist_ok=True)
    write_table_xlsx(rows[:half], LABEL_TABLE_COLUMNS, layout.phenikaa_tables / "labels_part1.xlsx", stamp)
    write_table_xlsx(rows[half:], LABEL_TABLE_COLUMNS, layout.phenikaa_tables / "labels_part2.xlsx", stamp)
    return truth


def add_table_quirks(rows: list[list[object]], truth: dict[str, Any]) -> list[list[object]]:
    """The mess of real exports: a multi-valued Modic, a duplicated row, a missing value, a corrupted ID."""
    quirks: dict[str, Any] = truth["table_quirks"]
    rows = [list(r) for r in rows]
    # Modic "1&2": the first disc with Modic type 1 or 2 (or the first disc) is a mixed 1/2 change.
    target = next((i for i, r in enumerate(rows) if r[2] in (1, 2)), 0)
    rows[target][2] = "1&2"
    quirks["multi_modic"] = {"patient_id": str(rows[target][0]), "ivd_label": rows[target][1], "value": "1&2"}
    # A duplicated row, right after its original.
    rows.insert(1, list(rows[0]))
    quirks["duplicate_row"] = {"patient_id": str(rows[0][0]), "ivd_label": rows[0][1]}
    # A missing Pfirrmann grade in the last row.
    rows[-1][9] = None
    quirks["missing_value"] = {"patient_id": str(rows[-1][0]), "ivd_label": rows[-1][1], "column": "Pfirrman grade"}
    # Rows of an ID that exists nowhere else (5 discs), in the middle of the table.
    corrupted: list[list[object]] = [[int(CORRUPTED_ID), n, 0, 0, 0, 0, 0, 0, 0, 2] for n in range(1, len(LEVELS) + 1)]
    middle = len(rows) // 2
    rows[middle:middle] = corrupted
    quirks["corrupted_id"] = {"patient_id": CORRUPTED_ID, "rows": len(corrupted)}
    return rows
