"""Exporting matched patients' DICOM studies under their patient ID (names and birthdays removed by default)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from spine_lib.io.atomic import atomic_path


def export_images(folders: dict[str, list[Path]], target: Path, mode: str) -> int:
    """Put each matched patient's DICOM files under ``target/<patient_id>/`` (series sub-folders kept).

    ``anonymized`` rewrites each file with the patient's name and birthday removed (the dataset carries
    patient IDs only); ``copy``/``hardlink`` keep the hospital's bytes. Returns the number of files written.
    """
    import pydicom

    count = 0
    for pid, sources in sorted(folders.items()):
        first = sources[0]  # repeat exports hold the same study: export the first one
        for source in sorted(p for p in first.rglob("*") if p.is_file()):
            destination = target / pid / source.relative_to(first)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if mode == "hardlink":
                destination.unlink(missing_ok=True)
                os.link(source, destination)
            elif mode == "copy":
                shutil.copyfile(source, destination)
            else:
                dataset = pydicom.dcmread(source)
                dataset.PatientName = pid
                dataset.PatientID = pid
                for keyword in ("PatientBirthDate", "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers"):
                    if keyword in dataset:
                        delattr(dataset, keyword)
                with atomic_path(destination) as tmp:
                    dataset.save_as(tmp, enforce_file_format=True)
            count += 1
    return count
