"""SPIDER -> nnU-Net v2 conversion: nnU-Net's own integrity check, exact round trip, partial vertebrae, reruns,
bad input, the dataset checks and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from spine_lib.datasets.nnunet import (
    ConvertConfig,
    check_images_have_labels,
    check_labels_consecutive,
    convert_to_nnunet,
    image_path,
    label_path,
)
from spine_lib.errors import InputPathError, MedicalImageError
from spine_lib.formats.nnunet import MANIFEST_NAME, REJECTS_NAME
from spine_lib.labels import load_label_schema
from tests.conftest import assert_same_geometry

SPIDER_CASES = ["1_t1", "1_t2", "2_t1", "2_t2", "3_t1", "3_t2", "4_t1", "4_t2", "4_t2_SPACE"]


def copy_spider(synthetic_root: Path, target: Path, cases: list[str] | None = None) -> Path:
    """A private copy of (some of) the synthetic SPIDER series, so tests can damage it."""
    source = synthetic_root / "raw" / "SPIDER"
    for folder in ("images", "masks"):
        (target / folder).mkdir(parents=True)
        for case in cases or SPIDER_CASES:
            shutil.copy2(source / folder / f"{case}.mha", target / folder / f"{case}.mha")
    return target


def read_rejects(dataset: Path) -> dict[str, str]:
    import csv

    with (dataset / REJECTS_NAME).open(newline="", encoding="utf-8") as f:
        return {row["case"]: row["reason"] for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def converted(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dataset = tmp_path_factory.mktemp("nnunet_raw") / "Dataset501_Spider"
    report = convert_to_nnunet(ConvertConfig(input_path=synthetic_root / "raw" / "SPIDER", output_path=dataset,
                                             workers=2))
    assert report.cases == len(SPIDER_CASES) and not report.rejected
    return dataset


def test_dataset_layout_and_dataset_json(converted: Path) -> None:
    info = json.loads((converted / "dataset.json").read_text())
    schema = load_label_schema("spider")
    assert info["labels"] == schema.target_labels
    assert list(info["labels"].values()) == list(range(52))
    assert info["numTraining"] == len(SPIDER_CASES)
    assert info["channel_names"] == {"0": "MRI"}
    assert info["file_ending"] == ".nii.gz"
    assert sorted(p.name for p in (converted / "imagesTr").iterdir()) == sorted(f"{c}_0000.nii.gz" for c in SPIDER_CASES)
    assert sorted(p.name for p in (converted / "labelsTr").iterdir()) == sorted(f"{c}.nii.gz" for c in SPIDER_CASES)


@pytest.mark.slow
def test_nnunet_integrity_check_passes_on_converted_root(converted: Path, tmp_path: Path) -> None:
    env = {**os.environ, "nnUNet_raw": str(converted.parent), "nnUNet_preprocessed": str(tmp_path / "pre"),
           "nnUNet_results": str(tmp_path / "results"), "nnUNet_def_n_proc": "2"}
    command = [str(Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"), "-d", "501", "-c", "2d",
               "--verify_dataset_integrity", "-np", "2", "-npfp", "2"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "verify_dataset_integrity Done" in result.stdout
    plans = json.loads((tmp_path / "pre" / "Dataset501_Spider" / "nnUNetPlans.json").read_text())
    assert "2d" in plans["configurations"]
    preprocessed = list((tmp_path / "pre" / "Dataset501_Spider" / "nnUNetPlans_2d").iterdir())
    assert {p.name.removesuffix(".pkl") for p in preprocessed if p.suffix == ".pkl"} == set(SPIDER_CASES)


def test_round_trip_is_exact(converted: Path, synthetic_root: Path) -> None:
    schema = load_label_schema("spider")
    for case in ("1_t2", "4_t2_SPACE"):
        raw_image = sitk.ReadImage(str(synthetic_root / "raw/SPIDER/images" / f"{case}.mha"))
        raw_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(synthetic_root / "raw/SPIDER/masks" / f"{case}.mha")))
        image = sitk.ReadImage(str(image_path(converted, case)))
        label = sitk.ReadImage(str(label_path(converted, case)))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(raw_image))
        assert_same_geometry(image, raw_image)
        assert_same_geometry(label, raw_image)
        expected = np.vectorize(schema.mapping.__getitem__)(raw_mask)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(label), expected)
        # the synthetic anatomy: discs 201-205 land on 27-31, the canal (100) on 26
        assert set(np.unique(sitk.GetArrayFromImage(label)).tolist()) >= {26, 27, 28, 29, 30, 31}


def test_dataset_checks_pass_and_catch_problems(converted: Path, tmp_path: Path) -> None:
    assert check_labels_consecutive(converted).passed
    assert check_images_have_labels(converted).passed
    broken = tmp_path / "Dataset501_Spider"
    shutil.copytree(converted, broken)
    label = sitk.ReadImage(str(label_path(broken, "1_t1")))
    array = sitk.GetArrayFromImage(label)
    array[0, 0, 0] = 60
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(label)
    sitk.WriteImage(bad, str(label_path(broken, "1_t1")))
    label_path(broken, "2_t2").unlink()
    shifted = sitk.ReadImage(str(label_path(broken, "3_t1")))
    shifted.SetOrigin(tuple(o + 1.0 for o in shifted.GetOrigin()))
    sitk.WriteImage(shifted, str(label_path(broken, "3_t1")))
    values = check_labels_consecutive(broken)
    assert values.problems == ["1_t1.nii.gz: values not in dataset.json: [60]"]
    pairs = check_images_have_labels(broken)
    assert sorted(pairs.problems) == ["2_t2: image without a label", "3_t1: image and label differ in origin"]


@pytest.mark.parametrize(("schema", "expected"), [("spider", 6), ("spider_ignore_partial", 52)])
def test_partially_visible_vertebrae_follow_the_schema(
    synthetic_root: Path, tmp_path: Path, schema: str, expected: int
) -> None:
    source = copy_spider(synthetic_root, tmp_path / "SPIDER", ["1_t1"])
    mask = sitk.ReadImage(str(source / "masks/1_t1.mha"))
    array = sitk.GetArrayFromImage(mask)
    cut = array == 6  # SPIDER marks a vertebra cut by the field of view as 100 + its number
    assert cut.sum() > 100
    array[cut] = 106
    partial = sitk.GetImageFromArray(array)
    partial.CopyInformation(mask)
    sitk.WriteImage(partial, str(source / "masks/1_t1.mha"))
    dataset = tmp_path / "Dataset501_Spider"
    convert_to_nnunet(ConvertConfig(input_path=source, output_path=dataset, schema_name=schema, workers=1))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(label_path(dataset, "1_t1"))))
    assert np.array_equal(label == expected, cut)  # every partial voxel kept, none dropped to background
    info = json.loads((dataset / "dataset.json").read_text())
    assert ("ignore" in info["labels"]) == (schema == "spider_ignore_partial")


def test_rerun_converts_only_changed_cases(synthetic_root: Path, tmp_path: Path) -> None:
    source = copy_spider(synthetic_root, tmp_path / "SPIDER", ["1_t1", "1_t2", "2_t1"])
    config = ConvertConfig(input_path=source, output_path=tmp_path / "Dataset501_Spider", workers=2)
    first = convert_to_nnunet(config)
    assert (first.converted, first.unchanged, first.cases) == (3, 0, 3)
    outputs = sorted((tmp_path / "Dataset501_Spider").rglob("*.nii.gz"))
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    manifest = (tmp_path / "Dataset501_Spider" / MANIFEST_NAME).read_text()

    second = convert_to_nnunet(config)
    assert (second.converted, second.unchanged, second.cases) == (0, 3, 3)
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps
    assert (tmp_path / "Dataset501_Spider" / MANIFEST_NAME).read_text() == manifest

    image = sitk.ReadImage(str(source / "images/1_t2.mha"))
    sitk.WriteImage(sitk.Cast(image, sitk.sitkFloat32) * 2, str(source / "images/1_t2.mha"))  # new content
    (source / "images/2_t1.mha").unlink()
    (source / "masks/2_t1.mha").unlink()
    third = convert_to_nnunet(config)
    assert (third.converted, third.unchanged, third.removed, third.cases) == (1, 1, 1, 2)
    assert not image_path(config.output_path, "2_t1").exists()
    assert json.loads((config.output_path / "dataset.json").read_text())["numTraining"] == 2
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(image_path(config.output_path, "1_t2")))),
                               2 * sitk.GetArrayFromImage(image))


def test_bad_cases_are_rejected_and_the_rest_converted(synthetic_root: Path, tmp_path: Path) -> None:
    source = copy_spider(synthetic_root, tmp_path / "SPIDER", ["1_t1", "1_t2", "2_t1", "2_t2", "3_t1", "3_t2"])
    mask = sitk.ReadImage(str(source / "masks/1_t2.mha"))
    mask.SetSpacing(tuple(s * 1.5 for s in mask.GetSpacing()))
    sitk.WriteImage(mask, str(source / "masks/1_t2.mha"))  # geometry differs from the image
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(source / "masks/2_t1.mha")))
    array[0, 0, :3] = 150  # not a SPIDER label value
    outside = sitk.GetImageFromArray(array)
    outside.CopyInformation(sitk.ReadImage(str(source / "images/2_t1.mha")))
    sitk.WriteImage(outside, str(source / "masks/2_t1.mha"))
    (source / "masks/2_t2.mha").unlink()  # missing mask
    (source / "images/3_t1.mha").write_bytes(b"ObjectType = Image\nNDims = 3\nthis is not a header\n")  # corrupt
    shutil.copy2(source / "masks/3_t2.mha", source / "masks/9_t1.mha")  # mask without an image

    dataset = tmp_path / "Dataset501_Spider"
    report = convert_to_nnunet(ConvertConfig(input_path=source, output_path=dataset, workers=2))
    assert report.case_names == ["1_t1", "3_t2"]
    reasons = read_rejects(dataset)
    assert set(reasons) == {"1_t2", "2_t1", "2_t2", "3_t1", "9_t1"}
    assert "spacing" in reasons["1_t2"]
    assert "150" in reasons["2_t1"]
    assert reasons["2_t2"] == "missing mask"
    assert "cannot read" in reasons["3_t1"]
    assert reasons["9_t1"] == "mask without an image"
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == 2
    assert not image_path(dataset, "2_t1").exists() and not label_path(dataset, "2_t1").exists()


def test_empty_input_and_empty_result_are_errors(synthetic_root: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(InputPathError, match=r"no SPIDER image named <patient>_<t1\|t2\|t2_SPACE>\.mha \(the folder is empty\)"):
        convert_to_nnunet(ConvertConfig(input_path=tmp_path / "empty", output_path=tmp_path / "Dataset501_Spider"))
    source = copy_spider(synthetic_root, tmp_path / "SPIDER", ["1_t1"])
    (source / "masks/1_t1.mha").unlink()
    dataset = tmp_path / "Dataset502_Bad"
    with pytest.raises(MedicalImageError, match="no case could be converted"):
        convert_to_nnunet(ConvertConfig(input_path=source, output_path=dataset))
    assert read_rejects(dataset) == {"1_t1": "missing mask"}
    assert not (dataset / "dataset.json").exists()


def test_config_rejects_a_folder_nnunet_cannot_find() -> None:
    with pytest.raises(ValueError, match="DatasetXXX_Name"):
        ConvertConfig(output_path=Path("data/processed/SPIDER/spider_nnunet"))
    with pytest.raises(ValueError, match="disagrees"):
        ConvertConfig(output_path=Path("x/Dataset501_Spider"), dataset_id=502)


def test_cli_converts_selected_sequences(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spine_lib.cli import main

    dataset = tmp_path / "Dataset503_SpiderT2"
    main(["dataset", "nnunet", "--input-path", str(synthetic_root / "raw/SPIDER"), "--output-path", str(dataset),
          "--sequences", "t2", "--workers", "1"])
    assert sorted(p.name for p in (dataset / "labelsTr").iterdir()) == [f"{p}_t2.nii.gz" for p in "1234"]
    assert "cases" in capsys.readouterr().out


def test_dataset_asset_materializes_with_its_checks(synthetic_root: Path, tmp_path: Path) -> None:
    import dagster as dg

    from spine_assets.defs.raw_sources import spider_raw
    from spine_assets.defs.resources import DataRoot
    from spine_assets.defs.segmentation import (
        nnunet_images_have_labels,
        nnunet_labels_consecutive,
        spider_nnunet_dataset,
    )

    root = tmp_path / "data"
    (root / "raw").mkdir(parents=True)
    copy_spider(synthetic_root, root / "raw" / "SPIDER", ["1_t1", "1_t2", "2_t2", "4_t2_SPACE"])
    result = dg.materialize(
        [spider_raw, spider_nnunet_dataset, nnunet_labels_consecutive, nnunet_images_have_labels],
        resources={"paths": DataRoot(root=str(root), weights=str(tmp_path / "weights"))},
        run_config={"ops": {"spider_nnunet_dataset": {"config": {"sequences": ["t1", "t2"]}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.asset_materializations_for_node("spider_nnunet_dataset")[0].metadata
    assert meta["cases"].value == 3 and meta["rejected"].value == 0
    assert meta["labels"].value == 52
    assert str(meta["dataset"].value) == str(root / "processed" / "SPIDER" / "Dataset501_Spider")
    table = str(meta["label_table"].value)
    assert "| disc_1 | 27 | 3 |" in table and "| vertebra_20 | 20 | 0 | 0 |" in table
    spacing = [float(s) for s in str(meta["spacing_median_xyz"].value).split(", ")]
    expected = sitk.ReadImage(str(root / "raw/SPIDER/images/1_t1.mha")).GetSpacing()
    np.testing.assert_allclose(spacing, expected, atol=1e-3)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"nnunet_labels_consecutive": True, "nnunet_images_have_labels": True}
