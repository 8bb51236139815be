"""spine_lib.core.phi: pseudonyms of patient-named files and folders, redaction of free text, spellings."""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path

import pytest
from loguru import logger

from spine_lib.core.phi import date_spellings, is_identifier, pseudonym, redact, safe_path, spellings


def test_identifiers_are_shown_as_they_are() -> None:
    assert pseudonym("250010139.png") == "250010139.png"
    assert is_identifier("250010139") and is_identifier("12.nii.gz") and not is_identifier("A12.png")


def test_a_pseudonym_is_stable_keeps_the_suffix_and_hides_the_name() -> None:
    name = "NGUYỄN_VĂN_SƠN_20250718.pdf"
    first = pseudonym(name)
    assert first == pseudonym(unicodedata.normalize("NFD", name))  # however the file system spells it
    assert first.startswith("phi-") and first.endswith(".pdf") and len(first) == len("phi-") + 16 + 4
    assert "SON" not in first.upper().replace("PHI-", "")
    assert pseudonym("NGUYEN_VAN_SON_20250718.pdf") != pseudonym("NGUYEN_VAN_SOM_20250718.pdf")
    assert pseudonym("Study (2).nii.gz").endswith(".nii.gz")


@pytest.mark.parametrize("text", [
    "raw/images/NGUYEN_VAN_SON_20250718/IMG1.dcm",
    "raw/images/NGUYEN VAN SON_1968_20250718 (2)/IMG1.dcm",
    "PatientName NGUYEN^VAN^SON",
    "folder ĐỖ THỊ HẰNG was empty",
    "Nguyen_Van_Son.mha: cannot read",
    "'/x/LÊ_VĂN_AN.pdf' unreadable",
    "TRAN_VAN_BINH_20250101.pdf", "Nguyen Van Son_1968_20250718 (3)",
])
def test_redact_hides_names_as_files_folders_and_dicom_write_them(text: str) -> None:
    redacted = redact(text)
    for word in ("NGUYEN", "Nguyen", "HẰNG", "VĂN"):
        assert word not in redacted
    assert "phi-" in redacted


@pytest.mark.parametrize("text", [
    "Dataset501_Spider/imagesTr/1_t2_0000.nii.gz", "SPIDER RSNA done", "IVD L5/S1 T1 T2 sag_t1",
    "MedicalImageError: Unable to determine ImageIO reader", "README.txt Thumbs.db", "report-0a1b2c.pdf",
    "dagster - ERROR - run - 1728 - spider_raw - STEP_FAILURE - Execution of step failed", "RUN_FAILURE",
    "return _SimpleITK.ImageFileReader_ReadImageInformation(self)", "SPINE_DATA_ROOT HF_HUB_OFFLINE WANDB_MODE",
    "ASSET_MATERIALIZATION STEP_START", "DAGSTER_HOME=/srv/dh",
])
def test_redact_leaves_what_is_no_name(text: str) -> None:
    assert redact(text) == text


def test_redact_hides_every_spelling_of_a_given_name() -> None:
    text = "le van an; LE^VAN^AN; Lê Văn An; " + unicodedata.normalize("NFD", "LÊ VĂN AN")
    redacted = redact(text, names=["Lê Văn An"])
    assert not any(form in redacted for form in spellings("Lê Văn An") | {"le van an"})


def test_safe_path_shows_a_patient_named_path_by_its_pseudonym_only() -> None:
    folder = Path("raw/Phenikaa/images/NGUYEN_VAN_SON_20250718")
    assert safe_path(folder) == pseudonym(folder.name)
    assert safe_path(folder / "Thumbs.db") == "Thumbs.db"  # folders above are left out
    assert safe_path("tables/labels_part1.xlsx") == "labels_part1.xlsx"
    assert safe_path("Nguyen Van Son.xlsx") == pseudonym("Nguyen Van Son.xlsx")


def test_spellings_cover_nfc_nfd_ascii_and_the_joins() -> None:
    forms = spellings("Lê Văn An")
    assert {"LE_VAN_AN", "LE^VAN^AN", "Le Van An", unicodedata.normalize("NFD", "LÊ VĂN AN"), "Lê Văn An"} <= forms
    assert {"18/07/1968", "1968-07-18", "19680718"} <= date_spellings(date(1968, 7, 18))


def test_log_messages_are_redacted_whatever_the_sink() -> None:
    import spine_lib  # noqa: F401  (installs the redaction)

    seen: list[str] = []
    sink = logger.add(seen.append, format="{message}")
    try:
        logger.warning("cannot read {}", "/data/raw/Phenikaa/reports/NGUYEN_VAN_SON_20250718.pdf")
    finally:
        logger.remove(sink)
    assert seen and "NGUYEN" not in seen[0] and pseudonym("NGUYEN_VAN_SON_20250718.pdf") in seen[0]
