"""SPIDER -> nnU-Net conversion on bad input and hard stops: every bad entry a reject row with its reason, a clear
error (exit 2) for an unusable output or input, the previous dataset untouched, no worker outliving a killed
run, no temporary surviving a rerun, and a rerun after ``kill -9`` equal to an uninterrupted run."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.core.phi import safe_path
from spine_lib.datasets.nnunet import (
    ConvertConfig,
    check_images_have_labels,
    convert_to_nnunet,
    image_path,
    label_path,
)
from spine_lib.datasets.nnunet import convert as conversion
from spine_lib.errors import ConfigError, InputPathError, MedicalImageError
from spine_lib.formats.nnunet import DATASET_JSON, IMAGES_TR, LABELS_TR, MANIFEST_NAME, REJECTS_NAME
from spine_lib.io.atomic import atomic_path, is_temporary
from spine_lib.synthetic.spider import RenderSize, write_spider

CASES = ["1_t1", "1_t2", "2_t1", "2_t2", "3_t1", "3_t2"]
PATIENT_FILE = "NGUYEN_VAN_SON_20250718.pdf"


def make_spider(root: Path, patients: int = 3, size: int = 64, slices: int = 6) -> Path:
    """A small synthetic SPIDER source (t1 and t2 per patient) under ``root``."""
    layout = DataLayout(root=root)
    write_spider(layout, patients, 7, RenderSize(rows=size, columns=size, slices=slices))
    return layout.spider


@pytest.fixture
def spider(tmp_path: Path) -> Path:
    return make_spider(tmp_path / "data")


def rejects_of(dataset: Path) -> list[dict[str, str]]:
    with (dataset / REJECTS_NAME).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def reasons_by_case(dataset: Path) -> dict[str, str]:
    return {row["case"]: row["reason"] for row in rejects_of(dataset) if row["case"]}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cases_nnunet_lists(dataset: Path) -> int:
    """How many cases nnU-Net's own lister sees in imagesTr."""
    from nnunetv2.utilities.utils import get_identifiers_from_splitted_dataset_folder

    return len(get_identifiers_from_splitted_dataset_folder(str(dataset / IMAGES_TR), ".nii.gz"))


def write_both(spider: Path, case: str, image: sitk.Image, mask: sitk.Image) -> None:
    sitk.WriteImage(image, str(spider / "images" / f"{case}.mha"))
    sitk.WriteImage(mask, str(spider / "masks" / f"{case}.mha"))


def read_both(spider: Path, case: str) -> tuple[sitk.Image, sitk.Image]:
    return (sitk.ReadImage(str(spider / "images" / f"{case}.mha")),
            sitk.ReadImage(str(spider / "masks" / f"{case}.mha")))


def two_d(spider: Path) -> str:
    image, mask = read_both(spider, "2_t1")
    write_both(spider, "2_t1", image[:, :, 2], mask[:, :, 2])
    return "image is 2-D (64x64 voxels); expected a 3-D volume"


def single_slice(spider: Path) -> str:
    image, mask = read_both(spider, "2_t1")
    write_both(spider, "2_t1", image[:, :, 2:3], mask[:, :, 2:3])
    return "image has a single slice (64x64x1 voxels); expected a 3-D volume"


def mask_two_d(spider: Path) -> str:
    image, mask = read_both(spider, "2_t1")
    write_both(spider, "2_t1", image, mask[:, :, 2])
    return "mask is 2-D (64x64 voxels); expected a 3-D volume"


def shapes_differ(spider: Path) -> str:
    image, mask = read_both(spider, "2_t1")
    write_both(spider, "2_t1", image, mask[:, :, 1:])
    return "image size (64, 64, 6) != mask size (64, 64, 5)"


def vector_image(spider: Path) -> str:
    image, mask = read_both(spider, "2_t1")
    write_both(spider, "2_t1", sitk.Compose(image, image), mask)
    return "image has 2 components per voxel; expected one"


@pytest.mark.parametrize("damage", [two_d, single_slice, mask_two_d, shapes_differ, vector_image])
def test_a_volume_that_is_not_a_3d_case_is_a_reject_and_the_rest_converts(spider: Path, tmp_path: Path,
                                                                          damage: Callable[[Path], str]) -> None:
    reason = damage(spider)
    dataset = tmp_path / "Dataset501_Spider"
    config = ConvertConfig(input_path=spider, output_path=dataset, workers=2)
    report = convert_to_nnunet(config)
    assert report.case_names == [c for c in CASES if c != "2_t1"]
    assert reasons_by_case(dataset) == {"2_t1": reason}
    info = json.loads((dataset / DATASET_JSON).read_text())
    assert info["numTraining"] == 5
    manifest = json.loads((dataset / MANIFEST_NAME).read_text())
    assert "2_t1" not in manifest["cases"] and manifest["rejected"]["2_t1"]["reason"] == reason
    assert not image_path(dataset, "2_t1").exists() and not label_path(dataset, "2_t1").exists()
    assert check_images_have_labels(dataset).passed
    rerun = convert_to_nnunet(config)
    assert (rerun.converted, rerun.unchanged, rerun.cases) == (0, 5, 5)
    assert reasons_by_case(dataset) == {"2_t1": reason}


def test_a_rerun_over_a_manifest_that_accepted_a_2d_case_rejects_it(spider: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset501_Spider"
    config = ConvertConfig(input_path=spider, output_path=dataset, workers=1)
    convert_to_nnunet(config)
    two_d(spider)
    manifest = json.loads((dataset / MANIFEST_NAME).read_text())
    entry = manifest["cases"]["2_t1"]  # as a version that took the 2-D volume in left it
    entry["size"], entry["spacing"] = [64, 64], [1.0, 1.0]
    entry["fingerprint"] = conversion.CaseSource("2_t1", spider / "images/2_t1.mha",
                                                 spider / "masks/2_t1.mha").fingerprint()
    (dataset / MANIFEST_NAME).write_text(json.dumps(manifest))
    report = convert_to_nnunet(config)
    assert report.cases == 5 and reasons_by_case(dataset) == {"2_t1": "image is 2-D (64x64 voxels); expected a 3-D volume"}
    assert not image_path(dataset, "2_t1").exists()


def test_a_damaged_manifest_costs_a_reconversion_not_the_run(spider: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset501_Spider"
    config = ConvertConfig(input_path=spider, output_path=dataset, workers=1)
    convert_to_nnunet(config)
    first = snapshot(dataset)
    manifest = json.loads((dataset / MANIFEST_NAME).read_text())
    manifest["cases"]["1_t1"] = {"case": "1_t1", "unknown": 1}
    manifest["cases"]["1_t2"] = "not an entry"
    (dataset / MANIFEST_NAME).write_text(json.dumps(manifest))
    report = convert_to_nnunet(config)
    assert (report.converted, report.unchanged) == (2, 4)
    (dataset / MANIFEST_NAME).write_bytes(b"\xff{ not json")
    assert convert_to_nnunet(config).converted == 6
    assert snapshot(dataset) == first


def test_entries_that_are_no_spider_series_are_rejects(spider: Path, tmp_path: Path) -> None:
    from loguru import logger

    images, masks = spider / "images", spider / "masks"
    shutil.copy2(images / "1_t2.mha", images / "1_t2.nii.gz")
    (images / "README.txt").write_text("SPIDER\n")
    (images / "Thumbs.db").write_bytes(b"\0")
    (images / ".DS_Store").write_bytes(b"\0")
    (images / "extra").mkdir()
    (images / "scan_t2.mha").write_bytes((images / "1_t2.mha").read_bytes())
    (images / PATIENT_FILE).write_bytes(b"%PDF-1.4")
    (masks / "notes.txt").write_text("x\n")
    shutil.copy2(masks / "1_t1.mha", masks / "9_t1.mha")
    dataset = tmp_path / "Dataset501_Spider"
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), format="{message}", level="DEBUG")
    try:
        report = convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=2))
    finally:
        logger.remove(sink)
    assert report.case_names == CASES
    rows = rejects_of(dataset)
    expected = "expected <patient>_<t1|t2|t2_SPACE>.mha"
    image_rows = {row["image"]: row["reason"] for row in rows if row["image"]}
    strays = ["1_t2.nii.gz", "README.txt", "Thumbs.db", ".DS_Store", "scan_t2.mha", PATIENT_FILE]
    assert image_rows == {**{safe_path(name): f"not a SPIDER image: {expected}" for name in strays},
                          "extra": f"not a SPIDER image: a folder; {expected} files"}
    assert "README.txt" in image_rows and safe_path(PATIENT_FILE).startswith("phi-")
    mask_rows = {row["mask"]: row["reason"] for row in rows if row["mask"]}
    assert mask_rows == {"notes.txt": f"not a SPIDER mask: {expected}", "9_t1.mha": "mask without an image"}
    assert len(list(images.iterdir())) == report.cases + len(image_rows)  # every input is an output or a reject
    assert len(list(masks.iterdir())) == report.cases + len(mask_rows)
    leaked = [name for name, data in snapshot(dataset).items() if b"NGUYEN" in data or "NGUYEN" in name]
    assert not leaked and not [m for m in messages if "NGUYEN" in m]


def test_an_images_folder_without_a_series_is_refused_and_the_dataset_kept(spider: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset501_Spider"
    convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=1))
    before = snapshot(dataset)
    for path in (spider / "images").iterdir():
        path.rename(path.with_suffix(".nii"))
    with pytest.raises(InputPathError) as error:
        convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=1))
    assert str(error.value) == (f"{spider / 'images'}: no SPIDER image named <patient>_<t1|t2|t2_SPACE>.mha "
                                "among the folder's 6 entries")
    assert snapshot(dataset) == before


@pytest.mark.parametrize("break_input", ["masks_missing", "masks_a_file", "input_a_file", "images_missing"])
def test_a_structurally_broken_input_leaves_the_previous_dataset_untouched(spider: Path, tmp_path: Path,
                                                                           break_input: str) -> None:
    dataset = tmp_path / "Dataset501_Spider"
    convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=1))
    before = snapshot(dataset)
    stamps = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    source = spider
    if break_input == "masks_missing":
        shutil.rmtree(spider / "masks")
        error_type, message = MedicalImageError, (
            f"{spider}: no case could be converted (6 rejected: 1_t1: missing mask; 1_t2: missing mask; "
            f"2_t1: missing mask; and 3 more); the previous dataset in {dataset} is left as it was")
    elif break_input == "masks_a_file":
        shutil.rmtree(spider / "masks")
        (spider / "masks").write_text("")
        error_type, message = InputPathError, f"{spider / 'masks'}: SPIDER masks path is a file, not a folder"
    elif break_input == "input_a_file":
        source = spider / "overview.csv"
        error_type, message = InputPathError, f"{source}: SPIDER folder is a file, not a folder"
    else:
        shutil.rmtree(spider / "images")
        error_type, message = InputPathError, f"{spider / 'images'}: SPIDER images folder does not exist"
    with pytest.raises(error_type) as error:
        convert_to_nnunet(ConvertConfig(input_path=source, output_path=dataset, workers=2))
    assert str(error.value) == message
    assert snapshot(dataset) == before
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == stamps


def test_a_first_run_without_a_convertible_case_writes_its_rejects(spider: Path, tmp_path: Path) -> None:
    shutil.rmtree(spider / "masks")
    dataset = tmp_path / "Dataset501_Spider"
    with pytest.raises(MedicalImageError, match=f"see {dataset / REJECTS_NAME}"):
        convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=1))
    assert reasons_by_case(dataset) == dict.fromkeys(CASES, "missing mask")
    assert not (dataset / DATASET_JSON).exists()


def output_a_file(dataset: Path) -> Path:
    dataset.parent.mkdir(parents=True)
    dataset.write_text("")
    return dataset


def parent_a_file(dataset: Path) -> Path:
    dataset.parent.parent.mkdir(parents=True)
    dataset.parent.write_text("")
    return dataset.parent


def images_a_file(dataset: Path) -> Path:
    dataset.mkdir(parents=True)
    (dataset / IMAGES_TR).write_text("")
    return dataset / IMAGES_TR


def dataset_json_a_folder(dataset: Path) -> Path:
    (dataset / DATASET_JSON).mkdir(parents=True)
    return dataset / DATASET_JSON


@pytest.fixture
def console_log() -> Iterator[None]:
    """The CLI's log sink writes to the test's captured stderr; afterwards the log goes to the real one."""
    from loguru import logger

    yield
    logger.remove()
    def to_stderr(message: str) -> None:
        sys.stderr.write(message)

    logger.add(to_stderr, level="INFO")


@pytest.mark.usefixtures("console_log")
@pytest.mark.parametrize(("make", "cause"), [
    (output_a_file, "the nnU-Net dataset folder is a file, not a folder"),
    (parent_a_file, "is a file, not a folder: the nnU-Net dataset folder"),
    (images_a_file, "is a file, not a folder (nnU-Net keeps the cases in it)"),
    (dataset_json_a_folder, "is a folder, not a file"),
])
def test_an_output_path_of_the_wrong_kind_exits_2_naming_it(spider: Path, tmp_path: Path,
                                                            make: Callable[[Path], Path], cause: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from spine_lib.cli import main

    dataset = tmp_path / "out" / "nnUNet_raw" / "Dataset501_Spider"
    culprit = make(dataset)
    before = snapshot(tmp_path / "out")
    with pytest.raises(ConfigError):
        convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=1))
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "nnunet", "--input-path", str(spider), "--output-path", str(dataset), "--workers", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"ConfigError: {culprit}: " in err and cause in err and "Traceback" not in err
    assert snapshot(tmp_path / "out") == before


def test_a_worker_that_dies_rejects_only_its_case(spider: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = conversion.convert_case

    def crashing(source: conversion.CaseSource, output: Path, mapping: dict[int, int],
                 file_ending: str) -> conversion.CaseResult:
        if source.case == "2_t1":
            os._exit(1)  # as a segmentation fault in a reader would end the process
        return real(source, output, mapping, file_ending)

    monkeypatch.setattr(conversion, "convert_case", crashing)
    dataset = tmp_path / "Dataset501_Spider"
    config = ConvertConfig(input_path=spider, output_path=dataset, workers=2)
    report = convert_to_nnunet(config)
    assert report.case_names == [c for c in CASES if c != "2_t1"]
    assert reasons_by_case(dataset) == {
        "2_t1": "the process converting it died (a crash while reading or writing, or out of memory)"}
    monkeypatch.setattr(conversion, "convert_case", real)
    again = convert_to_nnunet(config)  # the case is tried again, not remembered as bad
    assert (again.converted, again.cases) == (1, 6) and not again.rejected


def test_dataset_json_that_is_not_json_is_a_clear_error(spider: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset501_Spider"
    convert_to_nnunet(ConvertConfig(input_path=spider, output_path=dataset, workers=1))
    (dataset / DATASET_JSON).write_text("{ truncated")
    with pytest.raises(InputPathError, match=r"dataset\.json: dataset\.json is not valid JSON"):
        check_images_have_labels(dataset)
    (dataset / DATASET_JSON).write_text('{"labels": {"background": 0}}')
    with pytest.raises(InputPathError, match=r"dataset\.json lacks channel_names, numTraining, file_ending"):
        check_images_have_labels(dataset)


#: atomic writes left unfinished on purpose (kept referenced: a collected one would remove its temporary)
UNFINISHED: list[object] = []


def leave_temporary(target: Path, data: bytes) -> Path:
    """A temporary exactly as an atomic write killed before its rename leaves it."""
    writing = atomic_path(target)
    temporary = writing.__enter__()
    temporary.write_bytes(data)
    UNFINISHED.append(writing)
    return temporary


def test_temporaries_of_a_killed_run_are_swept_and_nnunet_counts_only_cases(spider: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset501_Spider"
    config = ConvertConfig(input_path=spider, output_path=dataset, workers=1)
    convert_to_nnunet(config)
    done = snapshot(dataset)
    left = [leave_temporary(image_path(dataset, "1_t1"), image_path(dataset, "1_t1").read_bytes()[:100]),
            leave_temporary(label_path(dataset, "2_t2"), b""),
            leave_temporary(dataset / DATASET_JSON, b"{")]
    assert all(is_temporary(p) for p in left)
    assert cases_nnunet_lists(dataset) == len(CASES) + 1  # nnU-Net would take the temporary for a case
    report = convert_to_nnunet(config)
    assert report.unchanged == len(CASES)
    assert not [p for p in dataset.rglob("*") if is_temporary(p)]
    assert cases_nnunet_lists(dataset) == len(CASES)
    assert snapshot(dataset) == done


def process_group(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            members.append(int(stat.parent.name))
    return members


def wait_until_gone(pgid: int, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := process_group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def killed_groups() -> Iterator[list[int]]:
    """Process groups a test started; whatever is left of them is killed at the end."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


CHILD = """
import sys, threading, time
from pathlib import Path
from spine_lib.core import processes
if sys.argv[2] == "watch":
    processes._kernel_watches_parent = lambda: False
processes.die_with_parent()
Path(sys.argv[1] + ".part").write_text(" ".join(sorted(thread.name for thread in threading.enumerate())))
Path(sys.argv[1] + ".part").rename(sys.argv[1])
time.sleep(60)
"""
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]])
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table from /proc")
@pytest.mark.parametrize("mode", ["kernel", "watch"])
def test_a_process_that_dies_with_its_parent_ends_when_the_parent_is_killed(
    tmp_path: Path, mode: str, killed_groups: list[int]
) -> None:
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(ready), mode], start_new_session=True,
                              preexec_fn=default_signals)
    killed_groups.append(parent.pid)
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists()
    assert ("parent-watch" in ready.read_text().split()) == (mode == "watch")  # Linux: the kernel watches
    assert len(process_group(parent.pid)) == 2
    parent.kill()
    parent.wait()
    assert wait_until_gone(parent.pid) == []


def big_spider(root: Path, cases: int) -> Path:
    """A SPIDER source of ``cases`` t1/t2 series (copies of three patients' series), 96x96x8 voxels."""
    spider = make_spider(root, patients=3, size=96, slices=8)
    for patient in range(4, cases // 2 + 1):
        for sequence in ("t1", "t2"):
            for folder in ("images", "masks"):
                shutil.copy2(spider / folder / f"{patient % 3 + 1}_{sequence}.mha",
                             spider / folder / f"{patient}_{sequence}.mha")
    return spider


def start_conversion(spider: Path, dataset: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "spine_lib.cli", "dataset", "nnunet", "--input-path", str(spider),
               "--output-path", str(dataset), "--workers", "2"]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=default_signals)


def written_cases(dataset: Path) -> list[Path]:
    folder = dataset / LABELS_TR
    return [p for p in folder.iterdir() if not is_temporary(p)] if folder.is_dir() else []


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table from /proc")
def test_kill_9_mid_run_leaves_no_worker_and_the_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, killed_groups: list[int]
) -> None:
    cases = 40
    spider = big_spider(tmp_path / "data", cases)
    clean = tmp_path / "clean" / "Dataset501_Spider"
    convert_to_nnunet(ConvertConfig(input_path=spider, output_path=clean, workers=2))
    dataset = tmp_path / "killed" / "Dataset501_Spider"
    killed = None
    for _attempt in range(3):  # a loaded machine may let the run finish before the kill: start it again
        shutil.rmtree(dataset.parent, ignore_errors=True)
        dataset.parent.mkdir(parents=True)
        run = start_conversion(spider, dataset, tmp_path / "killed.log")
        killed_groups.append(run.pid)
        while not written_cases(dataset) and run.poll() is None:
            time.sleep(0.002)
        members = process_group(run.pid)
        run.kill()
        run.wait()
        if not (dataset / DATASET_JSON).exists():
            killed = run.pid, members
            break
    assert killed is not None, "the run was never killed mid-way"
    pgid, members = killed
    assert len(members) >= 3  # the command and its two workers
    assert wait_until_gone(pgid) == []  # no worker outlives the command
    assert 0 < len(written_cases(dataset)) < cases
    leave_temporary(image_path(dataset, "7_t1"), b"half a case")  # what a worker killed mid-write leaves
    images = list((dataset / IMAGES_TR).iterdir())
    temporaries = [p for p in images if is_temporary(p)]
    assert cases_nnunet_lists(dataset) == len(images) > len(images) - len(temporaries)  # nnU-Net counts them

    rerun = subprocess.run([sys.executable, "-m", "spine_lib.cli", "dataset", "nnunet", "--input-path", str(spider),
                            "--output-path", str(dataset), "--workers", "2"], capture_output=True, text=True,
                           check=False, preexec_fn=default_signals)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not [p for p in dataset.rglob("*") if is_temporary(p)]
    assert snapshot(dataset) == snapshot(clean)
    assert cases_nnunet_lists(dataset) == cases == json.loads((dataset / DATASET_JSON).read_text())["numTraining"]
    image = sitk.ReadImage(str(image_path(dataset, "7_t1")))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image),
                                  sitk.GetArrayFromImage(sitk.ReadImage(str(spider / "images/7_t1.mha"))))
