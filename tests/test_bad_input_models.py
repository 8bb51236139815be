"""Bad input to the model commands: ``spine-vision test``, checkpoints, image reading and training.

Every case builds its bad input in the test (tiny models, 32x32 pictures) and checks the outcome: one sentence
naming the file and the cause, exit status 2 from the CLI with no traceback, the other inputs predicted, rejects
listed, ``latest.json`` untouched.
"""

from __future__ import annotations

import csv
import json
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from loguru import logger
from PIL import Image

from spine_lib.cli import main
from spine_lib.core.phi import pseudonym
from spine_lib.errors import MedicalImageError, SpineVisionError, UnsupportedFormatError
from spine_lib.io.atomic import atomic_write_text
from spine_lib.io.readers import read_medical_image
from spine_lib.training.checkpoints import (
    CheckpointError,
    load_model_state,
    model_from_checkpoint,
    read_checkpoint,
)
from spine_lib.training.config import ClassificationConfig, LocalizationConfig, ModelTestConfig
from spine_lib.training.inference import PredictionError, check_outcome, input_error, run_model_test
from spine_lib.training.models import ConvNextLocalization
from spine_lib.training.models.grading import ResNet50MTL
from spine_lib.training.runs import LATEST_RUN, REJECTS_FILE

SIZE = 32
PATIENT_NAME = "NGUYEN_VAN_SON_20250718"


# --- what the tests are made of -------------------------------------------------------------------------------------
def save_model(model: Any, path: Path, image_size: tuple[int, int] = (SIZE, SIZE)) -> Path:
    torch.save({"model_name": model.registry_name, "model_kwargs": model.architecture_kwargs(),
                "model_state_dict": model.state_dict(),
                "config": {"image_size": list(image_size), "output_size": list(image_size)}}, path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny localizer (ConvNeXt atto) and a tiny grader (ResNet-10 backbone), saved as checkpoints."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    return {"localizer": save_model(ConvNextLocalization("atto"), folder / "localizer.pt"),
            "grader": save_model(ResNet50MTL(backbone="resnet10t", hidden_dim=16), folder / "grader.pt")}


def picture(path: Path, seed: int = 0, size: int = SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size), dtype=np.uint8)).save(path)
    return path


def bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Inputs no model can use, each with the words its error must hold."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "notes.png"
    text.write_text("not a picture")
    empty = folder / "empty.png"
    empty.touch()
    cut = folder / "cut.png"
    cut.write_bytes(picture(folder / "whole.png", size=64).read_bytes()[:200])
    (folder / "whole.png").unlink()
    kind = folder / "table.csv"
    kind.write_text("a,b\n1,2\n")
    no_series = folder / "no_series"
    no_series.mkdir()
    (no_series / "readme.txt").write_text("x")
    return {"missing": (folder / "missing.png", "does not exist"), "text": (text, "not a picture"),
            "empty": (empty, "the file is empty"), "truncated": (cut, "truncated"),
            "kind": (kind, "unsupported extension '.csv'"), "folder": (no_series, "no DICOM series found")}


@pytest.fixture(autouse=True)
def _log_to_the_current_stderr() -> Iterator[None]:
    """The CLI's logger writes to the stderr of the test that ran it; the next test gets a sink of its own."""
    yield
    logger.remove()
    def to_stderr(message: Any) -> None:
        sys.stderr.write(str(message))

    logger.add(to_stderr, level="INFO")


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink)


def cli_fails(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect exit status 2, return what it wrote to stderr (which must hold no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --- spine-vision test: localization --------------------------------------------------------------------------------
def test_localization_test_lists_each_bad_input_and_predicts_the_rest(
        models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = [picture(tmp_path / "a.png", 1), picture(tmp_path / "b.png", 2)]
    bad = bad_inputs(tmp_path / "bad")
    inputs = [good[0], *(path for path, _ in bad.values()), good[1]]
    out = tmp_path / "out.json"
    main(["test", "--model-path", str(models["localizer"]), "--inputs", *map(str, inputs), "--device", "cpu",
          "--output-path", str(out)])  # returns: some inputs were predicted, exit status 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert (printed["inputs"], printed["predicted"], printed["failed"]) == (8, 2, 6)
    assert {r["input"] for r in printed["predictions"]} == {str(p) for p in good}
    assert len(printed["predictions"]) == 2 * 5  # every level of each good image
    errors = {e["input"]: e["error"] for e in printed["errors"]}
    assert set(errors) == {str(path) for path, _ in bad.values()}
    for path, words in bad.values():
        assert errors[str(path)].startswith(f"{path}: ") and words in errors[str(path)], errors[str(path)]


def test_localization_test_keeps_each_input_with_its_level(models: dict[str, Path], tmp_path: Path) -> None:
    inputs = [picture(tmp_path / "a.png", 1), tmp_path / "gone.png", picture(tmp_path / "c.png", 3)]
    result = run_model_test(ModelTestConfig(model_path=models["localizer"], inputs=inputs, level_indices=[1, 2, 4],
                                            device="cpu"))
    assert [(r["input"], r["level"]) for r in result["predictions"]] == [(str(inputs[0]), "L2/L3"),
                                                                         (str(inputs[2]), "L5/S1")]
    assert result["errors"] == [{"input": str(inputs[1]), "error": f"{inputs[1]}: input does not exist"}]


def test_test_exits_2_when_no_input_could_be_predicted(models: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad = bad_inputs(tmp_path / "bad")
    out = tmp_path / "out.json"
    err = cli_fails(["test", "--model-path", str(models["localizer"]), "--inputs", *(str(p) for p, _ in bad.values()),
                     "--device", "cpu", "--output-path", str(out)], capsys)
    assert "no input could be predicted (6 of 6 failed)" in err
    written = json.loads(out.read_text())  # the output still says why, input by input
    assert written["predictions"] == [] and len(written["errors"]) == 6


def test_strict_exits_2_when_any_input_failed(models: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    good, missing = picture(tmp_path / "a.png"), tmp_path / "missing.png"
    err = cli_fails(["test", "--model-path", str(models["localizer"]), "--inputs", str(good), str(missing),
                     "--device", "cpu", "--strict"], capsys)
    assert f"1 of 2 inputs not predicted (--strict); first: {missing}: input does not exist" in err
    with pytest.raises(PredictionError):
        check_outcome({"inputs": 1, "predicted": 0, "failed": 1, "errors": [{"input": "x", "error": "x: gone"}]})


def test_test_output_file_names_carry_no_patient_name(models: dict[str, Path], tmp_path: Path) -> None:
    named = picture(tmp_path / f"{PATIENT_NAME}.png")
    result = run_model_test(ModelTestConfig(model_path=models["localizer"], inputs=[named], device="cpu",
                                            output_path=tmp_path / "out" / "result.json", visualize=True))
    drawn = [Path(p).name for p in result["visualizations"]]
    assert drawn == [f"test_000_{pseudonym(named.name).split('.')[0]}.html"]
    assert not any("NGUYEN" in p.name for p in (tmp_path / "out").rglob("*"))


# --- spine-vision test: grading -----------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["mtl_classification", "classification"])
def test_grading_test_lists_each_bad_input_and_grades_the_rest(
        models: dict[str, Path], tmp_path: Path, task: str, capsys: pytest.CaptureFixture[str]) -> None:
    t2, t1 = picture(tmp_path / "spider_3_sag_t2_L4.png", 1), picture(tmp_path / "spider_3_sag_t1_L4.png", 2)
    alone = picture(tmp_path / "spider_3_sag_t2_L5.png", 3)
    broken_partner = tmp_path / "spider_3_sag_t1_L5.png"
    broken_partner.write_text("no picture")
    series = tmp_path / "series.mha"
    series.write_bytes(np.random.default_rng(0).bytes(2048))
    bad = bad_inputs(tmp_path / "bad")
    inputs = [t2, t1, alone, broken_partner, series, *(path for path, _ in bad.values())]
    out = tmp_path / "grades.json"
    main(["test", "--task", task, "--model-path", str(models["grader"]), "--inputs", *map(str, inputs),
          "--localization-model-path", str(models["localizer"]), "--device", "cpu", "--output-path", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert (printed["inputs"], printed["predicted"], printed["failed"]) == (11, 3, 8)
    assert [(r["ivd_level"], sorted(r["inputs"])) for r in printed["predictions"]] == [
        ("4", ["sag_t1", "sag_t2"]), ("5", ["sag_t2"])]  # the L5 disc graded from the crop that could be read
    errors = {e["input"]: e["error"] for e in printed["errors"]}
    assert list(errors) == [str(p) for p in inputs[3:]]  # in the order given
    assert errors[str(broken_partner)] == f"{broken_partner}: cannot read image: not a picture (expected PNG, JPEG, " \
                                          "BMP or TIFF)"
    assert errors[str(series)].startswith(f"{series}: cannot read MetaImage: not an image")
    for path, words in bad.values():
        assert errors[str(path)].startswith(f"{path}: ") and words in errors[str(path)], errors[str(path)]


def test_grading_csv_lists_every_input(models: dict[str, Path], tmp_path: Path) -> None:
    from spine_lib.inference.grading import run_grading_test

    good = picture(tmp_path / "spider_7_sag_t2_L2.png")
    missing, wrong = tmp_path / "spider_7_sag_t1_L3.png", tmp_path / "notes.txt"
    wrong.write_text("x")
    out = tmp_path / "grades.csv"
    run_grading_test(ModelTestConfig(model_path=models["grader"], inputs=[good, missing, wrong],
                                     task="mtl_classification", device="cpu", output_path=out))
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header == [*ResNet50MTL.get_csv_header(), "error"]
    assert [(r[0], r[1], r[-1]) for r in rows[1:]] == [
        ("7", "2", ""), ("7", "3", f"{missing}: input does not exist"),
        ("notes", "", f"{wrong}: unsupported extension '.txt'; expected a disc crop (.png, .jpg, .jpeg, .bmp, .tif, "
                      ".tiff) or a sagittal series (a DICOM folder or file, .nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr)")]
    assert rows[1][header.index("pfirrmann_grade")] in {"1", "2", "3", "4", "5"}
    assert all(cell == "" for cell in rows[2][2:-1])


# --- checkpoints ----------------------------------------------------------------------------------------------------
def _bad_checkpoints(folder: Path, good: Path) -> dict[str, tuple[Path, str]]:
    text = folder / "notes.pt"
    text.write_text("epoch,loss\n1,0.5\n")  # torch.load says "IndexError: pop from empty list" for this one
    dot = folder / "dot.pt"
    dot.write_text(".")
    empty = folder / "empty.pt"
    empty.touch()
    cut = folder / "cut.pt"
    cut.write_bytes(good.read_bytes()[:4000])
    noise = folder / "noise.pt"
    noise.write_bytes(b"\x00\x01" + np.random.default_rng(1).bytes(600))
    objects = folder / "objects.pt"
    torch.save({"model_name": "x", "model_kwargs": {}, "model_state_dict": {}, "extra": np.zeros(3)}, objects)
    plain = folder / "plain.pt"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    foreign = folder / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    listed = folder / "listed.pt"
    torch.save([torch.zeros(1)], listed)
    return {
        "text": (text, "not a PyTorch checkpoint (it holds text)"),
        "dot": (dot, "not a PyTorch checkpoint (it holds text)"),
        "empty": (empty, "not a PyTorch checkpoint (the file is empty)"),
        "truncated": (cut, "not a PyTorch checkpoint (truncated or damaged archive: its index is missing)"),
        "noise": (noise, "not a PyTorch checkpoint (unknown binary content, neither a zip archive nor a pickle)"),
        "objects": (objects, "checkpoint refused: it holds Python objects (numpy."),
        "plain pickle": (plain, "checkpoint refused: it holds Python objects"),
        "foreign": (foreign, "not a spine-vision checkpoint (missing model_name, model_kwargs, model_state_dict)"),
        "list": (listed, "not a spine-vision checkpoint (it holds a list"),
    }


def test_bad_checkpoints_are_one_clear_sentence(models: dict[str, Path], tmp_path: Path) -> None:
    for name, (path, words) in _bad_checkpoints(tmp_path, models["localizer"]).items():
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        message = str(info.value)
        assert message.startswith(f"{path}: {words}"), (name, message)
        assert "weights_only" not in message and "pop from empty list" not in message and "\n" not in message
        assert info.value.__cause__ is None  # PyTorch's own text (which advises an unsafe load) is not chained


def test_checkpoint_errors_from_the_cli_exit_2(models: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("epoch,loss\n1,0.5\n")
    image = picture(tmp_path / "a.png")
    out = tmp_path / "out.json"
    out.write_text('{"previous": "result"}')
    err = cli_fails(["test", "--model-path", str(text), "--inputs", str(image), "--device", "cpu",
                     "--output-path", str(out)], capsys)
    assert f"CheckpointError: {text}: not a PyTorch checkpoint (it holds text)" in err
    assert out.read_text() == '{"previous": "result"}'  # the previous result stays
    err = cli_fails(["test", "--model-path", str(tmp_path), "--inputs", str(image), "--device", "cpu"], capsys)
    assert f"InputPathError: {tmp_path}: is a folder, expected a checkpoint file (.pt)" in err
    err = cli_fails(["test", "--task", "mtl_classification", "--model-path", str(models["localizer"]),
                     "--inputs", str(image), "--device", "cpu"], capsys)
    assert "checkpoint of model convnext_localization, expected the multi-task grading model" in err


def test_variant_mismatch_says_which_variant_each_way(models: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = models["localizer"]
    err = cli_fails(["test", "--model-path", str(path), "--inputs", str(picture(tmp_path / "a.png")),
                     "--model-variant", "femto", "--device", "cpu"], capsys)
    assert f"{path}: checkpoint of model variant atto, expected femto" in err
    with pytest.raises(CheckpointError, match=r"checkpoint of model variant atto, expected femto$"):
        load_model_state(ConvNextLocalization("femto"), read_checkpoint(path), path)
    payload = read_checkpoint(path)  # a checkpoint whose architecture does not match its own weights
    payload["model_kwargs"] = {**payload["model_kwargs"], "variant": "femto"}
    lying = tmp_path / "lying.pt"
    torch.save(payload, lying)
    with pytest.raises(CheckpointError, match=r"lying\.pt: its weights do not fit the architecture it names "
                                              r"\(convnext_localization \(femto\): \d+ tensors of another shape\)"):
        model_from_checkpoint(lying)


# --- reading medical images -----------------------------------------------------------------------------------------
def _bad_images(folder: Path) -> dict[str, tuple[Path, type[SpineVisionError], str]]:
    folder.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).bytes(2048)
    files = {"noise.mha": noise, "notes.nrrd": b"hello\n", "notes.dcm": b"hello\n", "empty.nii.gz": b"",
             "notes.nii.gz": b"hello\n", "noise.nii": noise}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    volume = sitk.GetImageFromArray(np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8))
    sitk.WriteImage(volume, str(folder / "whole.mha"))
    (folder / "cut.mha").write_bytes((folder / "whole.mha").read_bytes()[:-100])
    (folder / "notes.txt").write_text("x")
    (folder / "empty_folder").mkdir()
    (folder / "text_folder").mkdir()
    (folder / "text_folder" / "a.txt").write_text("x")
    not_image = "not an image (no image reader recognises its contents)"
    return {
        "noise.mha": (folder / "noise.mha", MedicalImageError, f"cannot read MetaImage: {not_image}"),
        "notes.nrrd": (folder / "notes.nrrd", MedicalImageError, f"cannot read NRRD: {not_image}"),
        "notes.dcm": (folder / "notes.dcm", MedicalImageError, f"cannot read DICOM file: {not_image}"),
        "noise.nii": (folder / "noise.nii", MedicalImageError, f"cannot read NIfTI: {not_image}"),
        "empty.nii.gz": (folder / "empty.nii.gz", MedicalImageError, "cannot read NIfTI (gzip): the file is empty"),
        "notes.nii.gz": (folder / "notes.nii.gz", MedicalImageError,
                         "cannot read NIfTI (gzip): not gzip-compressed data"),
        "cut.mha": (folder / "cut.mha", MedicalImageError, "cannot read MetaImage: damaged or truncated"),
        "notes.txt": (folder / "notes.txt", UnsupportedFormatError, "unsupported extension '.txt'"),
        "empty folder": (folder / "empty_folder", MedicalImageError, "no DICOM series found (the folder is empty)"),
        "text folder": (folder / "text_folder", MedicalImageError,
                        "no DICOM series found (1 file, none a readable DICOM image)"),
    }


def test_unreadable_images_say_the_file_the_cause_and_what_was_expected(tmp_path: Path) -> None:
    for name, (path, kind, words) in _bad_images(tmp_path).items():
        with pytest.raises(kind) as info:
            read_medical_image(path)
        message = str(info.value)
        assert message.startswith(f"{path}: {words}"), (name, message)
        assert message.endswith("expected a volume (.mha, .mhd, .nhdr, .nii, .nii.gz, .nrrd), a DICOM file "
                                "(.dcm, .dicom) or a DICOM folder"), (name, message)
        assert "sitk::ERROR" not in message and "ImageIO" not in message and "0x" not in message, message
        assert message.count(path.name) == 1, message  # ITK's copy of the path is gone


def test_image_errors_of_a_patient_named_file_name_it_once_and_log_no_name(tmp_path: Path,
                                                                          warnings_logged: list[str]) -> None:
    folder = tmp_path / PATIENT_NAME
    folder.mkdir()
    (folder / "IMG0001.dcm").write_text("not DICOM")
    path = folder / f"{PATIENT_NAME}.mha"
    path.write_bytes(np.random.default_rng(2).bytes(1024))
    with pytest.raises(MedicalImageError) as info:
        read_medical_image(path)
    assert str(info.value).count(PATIENT_NAME) == 2  # the subject (folder and file), not ITK's text again
    row = input_error(path, info.value)  # the result row names the file by its pseudonyms, as does the log line
    shown = str(path).replace(PATIENT_NAME, pseudonym(PATIENT_NAME))
    assert row == {"input": shown, "error": str(info.value).replace(str(path), shown)}
    assert "NGUYEN" not in str(row)
    assert warnings_logged and not any("NGUYEN" in line for line in warnings_logged)
    assert any(pseudonym(path.name) in line for line in warnings_logged)


# --- training ---------------------------------------------------------------------------------------------------------
def ivd_dataset(folder: Path, studies: list[str], levels: tuple[str, ...] = ("L1/L2", "L2/L3")) -> Path:
    rows = ["image_path,level,relative_x,relative_y,series_type,source,study_id"]
    for n, study in enumerate(studies):
        image = f"images/rsna_{study}_1_1.png"
        picture(folder / image, n)
        rows += [f"{image},{level},{0.3 + 0.1 * k},{0.2 + 0.15 * k},sag_t2,rsna,{study}"
                 for k, level in enumerate(levels)]
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")
    return folder


def crops_dataset(folder: Path, patients: list[str]) -> Path:
    header = ["image_path", "patient_id", "level", "series_type", "source", "pfirrmann_grade", "disc_herniation",
              "disc_narrowing", "disc_bulging", "spondylolisthesis", "modic", "up_endplate", "low_endplate"]
    rows = [",".join(header)]
    for n, patient in enumerate(patients):
        for series in ("sag_t2", "sag_t1"):
            image = f"images/spider_{patient}_{series}_L4.png"
            picture(folder / image, n)
            rows.append(f"{image},{patient},L4/L5,{series},spider,{2 + n % 3},{n % 2},0,1,0,{n % 2},0,1")
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")
    return folder


QUICK = {"image_size": (SIZE, SIZE), "num_epochs": 1, "batch_size": 4, "device": "cpu", "model_variant": "atto",
         "visualize_predictions": False, "mixed_precision": False}


def _previous_pointer(weights: Path, task: str) -> bytes:
    atomic_write_text(weights / task / LATEST_RUN, json.dumps({"run_id": "validated-run", "best_model": "x.pt"}))
    return (weights / task / LATEST_RUN).read_bytes()


def test_a_run_without_validation_warns_and_keeps_latest_json(tmp_path: Path, warnings_logged: list[str]) -> None:
    from spine_lib.training.trainers.localization import train_localization

    weights = tmp_path / "weights"
    before = _previous_pointer(weights, "localization")
    result = train_localization(LocalizationConfig.model_validate(
        {**QUICK, "data_path": ivd_dataset(tmp_path / "ivd", ["1"]), "weights_path": weights, "run_id": "one"}))
    assert not result.validated and not result.published and result.best_model_path.is_file()
    assert result.as_metadata()["validation"] == "none: best model chosen on training loss"
    assert result.as_metadata()["latest_json_updated"] is False
    assert (weights / "localization" / LATEST_RUN).read_bytes() == before
    assert any("the validation split is empty" in line for line in warnings_logged)


def test_the_classifier_shares_the_rule(tmp_path: Path, warnings_logged: list[str]) -> None:
    from spine_lib.training.trainers.classification import train_classification

    weights = tmp_path / "weights"
    before = _previous_pointer(weights, "classification")
    result = train_classification(ClassificationConfig.model_validate({
        "data_path": crops_dataset(tmp_path / "crops", ["5"]), "weights_path": weights, "run_id": "one",
        "backbone": "resnet10t", "output_size": (2 * SIZE, 2 * SIZE), "num_epochs": 1, "batch_size": 4, "device": "cpu",
        "visualize_predictions": False, "mixed_precision": False}))
    assert not result.validated and (weights / "classification" / LATEST_RUN).read_bytes() == before
    assert any("the validation split is empty" in line for line in warnings_logged)


def test_a_validated_run_still_moves_latest_json(tmp_path: Path) -> None:
    from spine_lib.training.runs import latest_run
    from spine_lib.training.trainers.localization import train_localization

    weights = tmp_path / "weights"
    _previous_pointer(weights, "localization")
    result = train_localization(LocalizationConfig.model_validate(
        {**QUICK, "data_path": ivd_dataset(tmp_path / "ivd", ["1", "2", "3"]), "weights_path": weights,
         "run_id": "three"}))
    assert result.validated and result.published
    assert latest_run(weights, "localization") == result.best_model_path


def test_unreadable_training_images_are_left_out_and_listed(tmp_path: Path) -> None:
    from spine_lib.training.trainers.localization import train_localization

    data = ivd_dataset(tmp_path / "ivd", ["1", "2", "3", "4"])
    (data / "images/rsna_2_1_1.png").write_text("not a picture")
    (data / "images/rsna_3_1_1.png").unlink()
    result = train_localization(LocalizationConfig.model_validate(
        {**QUICK, "data_path": data, "weights_path": tmp_path / "w", "run_id": "r", "val_fraction": 0.25}))
    reasons = {r[1]: r[2] for r in result.rejects}
    assert reasons == {"images/rsna_2_1_1.png": "image missing or unreadable (not an image OpenCV can decode)",
                       "images/rsna_3_1_1.png": "image missing or unreadable (no such file)"}
    with (result.output_path / REJECTS_FILE).open(newline="") as f:
        listed = list(csv.DictReader(f))
    assert {(r["image_path"], r["reason"]) for r in listed} == set(reasons.items())
    assert result.as_metadata()["rejected_items"] == 2


def test_a_killed_run_leaves_no_temporary_on_resume(tmp_path: Path) -> None:
    from spine_lib.training.trainers.localization import train_localization

    config = {**QUICK, "data_path": ivd_dataset(tmp_path / "ivd", ["1", "2"]), "weights_path": tmp_path / "w",
              "run_id": "r"}
    run = train_localization(LocalizationConfig.model_validate(config)).output_path
    leftover = run / ".last.0123456789abcdef0123456789abcdef.tmp.pt"
    leftover.write_bytes(b"half a checkpoint")
    train_localization(LocalizationConfig.model_validate({**config, "num_epochs": 2, "resume_from": run / "last.pt"}))
    assert not leftover.exists()


@pytest.mark.parametrize("case", ["missing folder", "empty folder", "columns", "no rows", "filters", "all images",
                                  "unknown level"])
def test_broken_training_datasets_exit_2_before_writing(case: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "ivd"
    extra: list[str] = []
    if case == "empty folder":
        data.mkdir()
    elif case == "columns":
        data.mkdir()
        (data / "annotations.csv").write_text("image,where\nx.png,1\n")
    elif case == "no rows":
        data.mkdir()
        (data / "annotations.csv").write_text("image_path,level,relative_x,relative_y,series_type\n")
    elif case in ("filters", "unknown level"):
        ivd_dataset(data, ["1", "2"])
        extra = ["--levels", "L5/S1" if case == "filters" else "L9"]
    elif case == "all images":
        ivd_dataset(data, ["1", "2"])
        for image in (data / "images").iterdir():
            image.unlink()
    weights = tmp_path / "w"
    before = _previous_pointer(weights, "localization")
    err = cli_fails(["train", "localization", "--data-path", str(data), "--weights-path", str(weights),
                     "--model-variant", "atto", "--image-size", str(SIZE), str(SIZE), "--num-epochs", "1",
                     "--device", "cpu", *extra], capsys)
    expected = {
        "missing folder": f"InputPathError: {data}: dataset folder does not exist",
        "empty folder": f"ConfigError: {data}: no annotations.csv",
        "columns": f"TabularDataError: {data / 'annotations.csv'}: missing column(s) image_path, level",
        "no rows": f"ConfigError: {data}: annotations.csv has no rows",
        "filters": f"ConfigError: {data}: no row matches --levels L5/S1 --series-types (all); the dataset "
                   "has levels L1/L2, L2/L3 and series types sag_t2",
        "all images": f"InputPathError: {data / 'images'}: every image missing or unreadable (1 of 1; first: images/rsna_",
        "unknown level": "ConfigError: --levels: unknown level 'L9'; expected one of L1/L2, L2/L3, L3/L4, L4/L5, L5/S1",
    }[case]
    assert expected in err, err
    assert [p.name for p in (weights / "localization").iterdir()] == [LATEST_RUN]  # no run folder begun
    assert (weights / "localization" / LATEST_RUN).read_bytes() == before


@pytest.mark.parametrize("case", ["missing", "text", "other model"])
def test_bad_pretrained_weights_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights_file = tmp_path / "weights.pth"
    if case == "text":
        weights_file.write_text("not weights")
    elif case == "other model":
        torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3)}, weights_file)  # a ResNet's first layer
    err = cli_fails(["train", "localization", "--data-path", str(ivd_dataset(tmp_path / "ivd", ["1", "2"])),
                     "--weights-path", str(tmp_path / "w"), "--model-variant", "atto", "--pretrained",
                     "--weights-file", str(weights_file), "--device", "cpu"], capsys)
    expected = {
        "missing": f"InputPathError: {weights_file}: pretrained weights file does not exist",
        "text": f"{weights_file}: cannot load as convnext_atto weights: not a PyTorch weights file (it holds text)",
        "other model": f"{weights_file}: cannot load as convnext_atto weights: 126 of its tensors are not in the file",
    }[case]
    assert expected in err, err


@pytest.mark.parametrize(("flags", "words"), [
    (["--val-fraction", "0.7", "--test-fraction", "0.4"], "val_fraction + test_fraction must be below 1"),
    (["--val-fraction", "1.5"], "less than 1"),
])
def test_impossible_training_options_are_refused_at_parse_time(flags: list[str], words: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "localization", *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert words in err.replace("\n", " ").replace("│", " ").replace("  ", " ") or words in err, err
    assert "Traceback" not in err


def test_classification_sources_and_test_levels_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        ClassificationConfig(sources=["rsna"])
    with pytest.raises(ValueError, match=r"level indices \[7\] outside 0..4"):
        ModelTestConfig(model_path=Path("m.pt"), inputs=[Path("a.png")], level_indices=[7])


def test_a_broken_latest_json_is_a_clear_error(tmp_path: Path) -> None:
    from spine_lib.errors import ConfigError
    from spine_lib.training.runs import latest_run

    (tmp_path / "localization").mkdir()
    (tmp_path / "localization" / LATEST_RUN).write_text("{not json")
    with pytest.raises(ConfigError, match=r"latest\.json: not a run pointer"):
        latest_run(tmp_path, "localization")


def test_a_validation_split_left_without_images_trains_unvalidated(tmp_path: Path) -> None:
    from spine_lib.training.datasets.ivd_coords import split_studies
    from spine_lib.training.trainers.localization import train_localization

    data = ivd_dataset(tmp_path / "ivd", ["1", "2"])
    (val_study,) = [study for study, split in split_studies(["1", "2"], 0.2, 0.0, 42).items() if split == "val"]
    (data / f"images/rsna_{val_study}_1_1.png").write_bytes(b"")
    weights = tmp_path / "weights"
    before = _previous_pointer(weights, "localization")
    result = train_localization(LocalizationConfig.model_validate(
        {**QUICK, "data_path": data, "weights_path": weights, "run_id": "r", "seed": 42}))
    assert result.rejects == [("val", f"images/rsna_{val_study}_1_1.png",
                               "image missing or unreadable (not an image OpenCV can decode)")]
    assert not result.validated and (weights / "localization" / LATEST_RUN).read_bytes() == before


def test_a_lone_last_training_item_waits_for_the_next_epoch(tmp_path: Path) -> None:
    """Five discs in batches of four at a size where ResNet's last map is 1x1: a batch of one would break batch
    normalization; the run trains instead."""
    from spine_lib.training.trainers.classification import train_classification

    result = train_classification(ClassificationConfig.model_validate({
        "data_path": crops_dataset(tmp_path / "crops", ["1", "2", "3", "4", "5"]), "weights_path": tmp_path / "w",
        "run_id": "five", "backbone": "resnet10t", "output_size": (SIZE, SIZE), "num_epochs": 2, "batch_size": 4,
        "device": "cpu", "val_fraction": 0.0, "test_fraction": 0.0, "visualize_predictions": False,
        "mixed_precision": False}))
    assert result.best_model_path.is_file()
