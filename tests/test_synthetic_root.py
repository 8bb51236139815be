"""A synthetic data root: exact layouts of the three sources, and files that agree with the ground truth."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pypdfium2 as pdfium
import pytest
import SimpleITK as sitk

from spine_lib.errors import ConfigError
from spine_lib.io import load_tabular_data, read_medical_image
from spine_lib.levels import (
    LEVELS,
    level_from_phenikaa_ivd_label,
    level_from_spider_ivd_label,
    phenikaa_ivd_label,
    spider_disc_value,
    spider_ivd_label,
)
from spine_lib.sources import check_rsna_coordinates, check_spider_masks, describe_phenikaa, describe_rsna
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root
from spine_lib.synthetic.truth import read_truth

GRADE_COLUMNS = {
    "Modic": "modic", "UP endplate": "up_endplate", "LOW endplate": "low_endplate",
    "Spondylolisthesis": "spondylolisthesis", "Disc herniation": "herniation", "Disc narrowing": "narrowing",
    "Disc bulging": "bulging", "Pfirrman grade": "pfirrmann",
}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_level_conventions() -> None:
    assert [spider_ivd_label(lv) for lv in LEVELS] == [5, 4, 3, 2, 1]
    assert [phenikaa_ivd_label(lv) for lv in LEVELS] == [1, 2, 3, 4, 5]
    assert spider_disc_value("L5/S1") == 201
    for level in LEVELS:
        assert level_from_spider_ivd_label(spider_ivd_label(level)) == level
        assert level_from_phenikaa_ivd_label(phenikaa_ivd_label(level)) == level
    with pytest.raises(ValueError, match="not a lumbar disc"):
        level_from_spider_ivd_label(6)


def test_spider_layout(synthetic_root: Path) -> None:
    spider = synthetic_root / "raw/SPIDER"
    names = sorted(p.name for p in (spider / "images").iterdir())
    assert names == sorted([f"{p}_{s}.mha" for p in (1, 2, 3, 4) for s in ("t1", "t2")] + ["4_t2_SPACE.mha"])
    assert sorted(p.name for p in (spider / "masks").iterdir()) == names
    header = (spider / "radiological_gradings.csv").read_text().splitlines()[0]
    assert header == ("Patient,IVD label,Modic,UP endplate,LOW endplate,Spondylolisthesis,Disc herniation,"
                      "Disc narrowing,Disc bulging,Pfirrman grade")
    overview = rows(spider / "overview.csv")
    assert {r["new_file_name"] for r in overview} == {n.removesuffix(".mha") for n in names}


def test_spider_gradings_count_levels_from_the_bottom(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "spider")
    by_patient = {p["patient"]: {d["level"]: d["grades"] for d in p["discs"]} for p in truth["patients"]}
    graded = [r for r in rows(synthetic_root / "raw/SPIDER/radiological_gradings.csv") if r["IVD label"] != "0"]
    assert len(graded) == 5 * len(by_patient)
    for row in graded:
        grades = by_patient[int(row["Patient"])][level_from_spider_ivd_label(int(row["IVD label"]))]
        assert {column: int(row[column]) for column in GRADE_COLUMNS} == {
            column: grades[key] for column, key in GRADE_COLUMNS.items()
        }


def test_spider_disc_centroids_match_truth(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "spider")
    for patient in truth["patients"]:
        for series in patient["series"]:
            mask = sitk.GetArrayFromImage(sitk.ReadImage(str(synthetic_root / series["path"].replace("images", "masks"))))
            for level, expected in series["disc_center_index"].items():
                k, j, i = np.nonzero(mask == spider_disc_value(level))
                np.testing.assert_allclose((i.mean(), j.mean(), k.mean()), expected, atol=1.0,
                                           err_msg=f"{series['path']} {level}")


def test_spider_masks_pass_their_check_and_a_bad_one_fails(synthetic_root: Path, tmp_path: Path) -> None:
    outcome = check_spider_masks(synthetic_root / "raw/SPIDER")
    assert outcome.passed and outcome.checked == 9
    copy = tmp_path / "SPIDER"
    (copy / "masks").mkdir(parents=True)
    (copy / "images").mkdir()
    mask = sitk.ReadImage(str(synthetic_root / "raw/SPIDER/masks/1_t2.mha"))
    array = sitk.GetArrayFromImage(mask)
    array[0, 0, 0] = 150
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(mask)
    sitk.WriteImage(bad, str(copy / "masks/1_t2.mha"))
    outcome = check_spider_masks(copy)
    assert outcome.problems == ["1_t2.mha: label values outside the 'spider' schema: [150]", "1_t2.mha: no image with this name"]


def test_spider_mask_check_names_unreadable_files_and_goes_on(synthetic_root: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "SPIDER"
    shutil.copytree(synthetic_root / "raw/SPIDER", copy)
    (copy / "images/1_t2.mha").write_bytes(b"ObjectType = Image\nNDims = 3\n")  # its mask is fine
    (copy / "masks/2_t1.mha").write_bytes(b"")
    outcome = check_spider_masks(copy)
    assert outcome.checked == 9 and not outcome.passed
    assert outcome.problems == ["1_t2.mha: its image cannot be read (empty or damaged file)",
                                "2_t1.mha: unreadable mask (empty or damaged file)"]


def test_rsna_series_read_back_with_written_geometry(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "rsna")
    descriptions = {(r["study_id"], r["series_id"]): r["series_description"]
                    for r in rows(synthetic_root / "raw/RSNA/train_series_descriptions.csv")}
    for study in truth["studies"]:
        assert len(study["series"]) == 3
        for series in study["series"]:
            image = read_medical_image(synthetic_root / series["path"])
            assert list(image.GetSize()) == series["size"]
            np.testing.assert_allclose(image.GetSpacing(), series["spacing"], atol=1e-4)
            np.testing.assert_allclose(image.GetOrigin(), series["origin"], atol=1e-3)
            np.testing.assert_allclose(image.GetDirection(), series["direction"], atol=1e-5)
            assert descriptions[(str(study["study_id"]), str(series["series_id"]))] == series["description"]


def test_rsna_coordinates_land_on_their_level(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "rsna")
    landmarks = {
        "Spinal Canal Stenosis": "canal_point_mm",
        "Left Neural Foraminal Narrowing": "foramen_left_mm",
        "Right Neural Foraminal Narrowing": "foramen_right_mm",
        "Left Subarticular Stenosis": "subarticular_left_mm",
        "Right Subarticular Stenosis": "subarticular_right_mm",
    }
    studies = {str(s["study_id"]): s for s in truth["studies"]}
    images: dict[str, sitk.Image] = {}
    coordinates = rows(synthetic_root / "raw/RSNA/train_label_coordinates.csv")
    assert len(coordinates) == 3 * 5 * 5
    for row in coordinates:
        folder = synthetic_root / "raw/RSNA/train_images" / row["study_id"] / row["series_id"]
        assert (folder / f"{row['instance_number']}.dcm").is_file()
        image = images.setdefault(str(folder), read_medical_image(folder))
        point = np.array(image.TransformContinuousIndexToPhysicalPoint(
            (float(row["x"]), float(row["y"]), float(row["instance_number"]) - 1)))
        discs = {d["level"]: np.array(d[landmarks[row["condition"]]]) for d in studies[row["study_id"]]["discs"]}
        distances = {level: float(np.linalg.norm(point - p)) for level, p in discs.items()}
        assert min(distances, key=distances.__getitem__) == row["level"]
        # the instance is the slice nearest the landmark: off by at most half a slice
        assert distances[row["level"]] <= image.GetSpacing()[2] / 2 + 1e-3


def test_rsna_canal_point_is_where_disc_meets_canal(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "rsna")
    for study in truth["studies"]:
        for disc in study["discs"]:
            canal, center = np.array(disc["canal_point_mm"]), np.array(disc["center_mm"])
            depth = np.linalg.norm(canal - center)
            assert 15.0 < depth < 30.0  # half a disc's depth behind the centre (bulge included)
            assert canal[1] > center[1] - 5  # posterior side (LPS +Y), allowing for tilt


def test_rsna_check_finds_missing_dicom(synthetic_root: Path, tmp_path: Path) -> None:
    assert check_rsna_coordinates(synthetic_root / "raw/RSNA").passed
    import shutil

    copy = tmp_path / "RSNA"
    shutil.copytree(synthetic_root / "raw/RSNA", copy)
    first = rows(copy / "train_label_coordinates.csv")[0]
    (copy / "train_images" / first["study_id"] / first["series_id"] / f"{first['instance_number']}.dcm").unlink()
    outcome = check_rsna_coordinates(copy)
    assert not outcome.passed
    assert outcome.problems[0].startswith("train_label_coordinates.csv:2: ")
    assert describe_rsna(copy)["studies"] == 3


def test_rsna_train_csv_columns(synthetic_root: Path) -> None:
    table = rows(synthetic_root / "raw/RSNA/train.csv")
    assert len(table) == 3
    columns = list(table[0])
    assert len(columns) == 26 and columns[1] == "spinal_canal_stenosis_l1_l2" and columns[-1] == "right_subarticular_stenosis_l5_s1"
    values = {v for r in table for k, v in r.items() if k != "study_id"}
    assert values <= {"Normal/Mild", "Moderate", "Severe", ""}


def test_phenikaa_reports_and_folders(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "phenikaa")
    phenikaa = synthetic_root / "raw/Phenikaa"
    formats = {p["report_format"] for p in truth["patients"]}
    assert formats == {"png_clean", "png_scanned", "pdf_text", "pdf_image"}
    for patient in truth["patients"]:
        report = synthetic_root / patient["report"]
        assert report.is_file()
        if report.suffix == ".png":
            assert report.stem == patient["patient_id"]
        else:
            assert report.stem.endswith(patient["exam_date"].replace("-", ""))
        series = {Path(s["path"]).name for s in patient["series"]}
        assert len(series) == 2 and {s["kind"] for s in patient["series"]} == {"sag_t1", "sag_t2"}
        for folder in patient["image_folders"]:  # repeat exports hold the same series folders
            assert {p.name for p in (synthetic_root / folder).iterdir()} == series
    folders = [p.name for p in (phenikaa / "images").iterdir()]
    assert any(name.endswith(" (2)") for name in folders)
    assert any(len(name.split("_")[-2]) == 4 and name.split("_")[-2].isdigit() for name in folders)
    kinds = {kind for _, _, kind in truth["lookalike_pairs"]}
    assert kinds == {"same_given_name", "one_letter_apart", "same_name_other_birthday"}
    assert describe_phenikaa(phenikaa)["reports"] == 6


def test_pdf_text_layer_holds_the_patient_name(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "phenikaa")
    for patient in truth["patients"]:
        if not patient["report"].endswith(".pdf"):
            continue
        page = pdfium.PdfDocument(str(synthetic_root / patient["report"]))[0]
        text = page.get_textpage().get_text_range()
        if patient["report_format"] == "pdf_text":
            assert patient["full_name"].upper() in text
            assert patient["patient_id"] in text
        else:
            assert text.strip() == ""


def test_phenikaa_dicom_names_the_patient(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "phenikaa")
    patient = truth["patients"][0]
    reader = sitk.ImageFileReader()
    first = sorted((synthetic_root / patient["series"][0]["path"]).iterdir())[0]
    reader.SetFileName(str(first))
    reader.ReadImageInformation()
    assert reader.GetMetaData("0010|0020").strip() == patient["patient_id"]
    assert reader.GetMetaData("0010|0030").strip() == patient["birthday"].replace("-", "")


def test_phenikaa_tables_have_each_quirk(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "phenikaa")
    quirks = truth["table_quirks"]
    raw: list[list[Any]] = []
    for path in sorted((synthetic_root / "raw/Phenikaa/tables").glob("*.xlsx")):
        sheet = openpyxl.load_workbook(path).active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        assert values[0][:2] == ("Patient ID", "IVD label")
        raw.extend(list(v) for v in values[1:])
    assert [r[2] for r in raw if isinstance(r[2], str)] == ["1&2"]
    assert sum(1 for r in raw if str(r[0]) == truth["corrupted_ids"][0]) == 5
    assert any(r[9] is None for r in raw)
    as_tuples = [tuple(r) for r in raw]
    assert len(as_tuples) - len(set(as_tuples)) == 1
    result = load_tabular_data(synthetic_root / "raw/Phenikaa/tables", corrupted_ids=truth["corrupted_ids"])
    assert result.dropped_reasons() == {"corrupted ID": 5, "duplicate row": 1, "missing value": 1}
    assert len(result.data) == 6 * 5 - 1
    mixed = result.data[(result.data["patient_id"] == quirks["multi_modic"]["patient_id"])
                        & (result.data["ivd_label"] == quirks["multi_modic"]["ivd_label"])]
    assert mixed[["modic_1", "modic_2", "modic_3"]].to_numpy().tolist() == [[1, 1, 0]]


def test_phenikaa_tables_count_levels_from_the_top(synthetic_root: Path) -> None:
    truth = read_truth(synthetic_root, "phenikaa")
    grades = {p["patient_id"]: {d["level"]: d["grades"] for d in p["discs"]} for p in truth["patients"]}
    data = load_tabular_data(synthetic_root / "raw/Phenikaa/tables", corrupted_ids=truth["corrupted_ids"]).data
    for row in data.to_dict("records"):
        expected = grades[str(row["patient_id"])][level_from_phenikaa_ivd_label(int(row["ivd_label"]))]
        assert int(row["pfirrmann_grade"]) == expected["pfirrmann"]
        assert int(row["disc_herniation"]) == expected["herniation"]


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def config(out: str, seed: int = 3) -> SynthConfig:
        return SynthConfig(out=tmp_path / out, patients=1, phenikaa_patients=2, size=64, slices=6, seed=seed)

    make_synthetic_root(config("a"))
    make_synthetic_root(config("b"))
    first, second = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert first == second
    assert len(first) > 40
    make_synthetic_root(config("a"))  # rerun in place: same bytes again
    assert tree_digest(tmp_path / "a") == first
    make_synthetic_root(config("c", seed=4))
    assert tree_digest(tmp_path / "c") != first


def test_synth_never_overwrites_real_data(tmp_path: Path) -> None:
    real = tmp_path / "data/raw/SPIDER/images"
    real.mkdir(parents=True)
    (real / "1_t1.mha").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        make_synthetic_root(SynthConfig(out=tmp_path / "data", patients=1, size=64, slices=6))
    assert (real / "1_t1.mha").read_bytes() == b"precious"
