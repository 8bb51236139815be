"""A corpus of bad inputs: a small synthetic data root whose sources also hold what real exports hold by mistake.

Each stage's source folder gets its cases next to good data (the batch must carry on around them), and every
case is listed in ``truth/bad_inputs.json`` with its stage and what must become of it: ``reject`` (a row of the
stage's rejects table, the rest goes on) or ``error`` (a structurally broken input: a clear one-line error that
names the file, previous outputs untouched). Patient-named cases carry the synthetic patients' real names, so a
run over the corpus also shows whether a name can leak into an output, a log line or Dagster metadata.

```
raw/SPIDER/images, masks           a single-slice volume, a .nii.gz image, a corrupt and an empty .mha, an image
                                   without a mask, a mask of another size, README.txt, Thumbs.db
raw/Phenikaa/reports               an empty and a truncated patient-named PDF, an unreadable ID-named scan,
                                   notes.txt, a .docx, a folder
raw/Phenikaa/images                Thumbs.db and README.txt in a patient's study folder, a truncated DICOM file,
                                   one patient's folder emptied
raw/Phenikaa/tables                the label table with the patients' names and birthdays in extra columns, a
                                   grade that is not one
raw/RSNA/train_label_coordinates   a row of an absent instance, a non-numeric x, a point outside the image,
                                   an unknown level
inputs/test                        a good series, a corrupt image, a text file, a patient-named missing file
fatal/                             whole inputs a job must refuse: coordinate tables without a column, with a
                                   header only, in binary
```
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import SimpleITK as sitk

from spine_lib.core.layout import DataLayout
from spine_lib.io.atomic import atomic_write_text
from spine_lib.synthetic.config import SynthConfig
from spine_lib.synthetic.generate import make_synthetic_root
from spine_lib.synthetic.people import ascii_name
from spine_lib.synthetic.truth import TRUTH_FOLDER, read_truth

__all__ = ["BAD_INPUTS_TRUTH", "BadInput", "make_bad_input_corpus", "read_bad_inputs"]

Outcome = Literal["reject", "error"]
#: the truth file that lists the cases
BAD_INPUTS_TRUTH = "bad_inputs"


@dataclass(frozen=True)
class BadInput:
    """One bad input of the corpus: its stage, a short name, where it is (relative to the corpus), what it is,
    and what must become of it."""

    stage: str
    name: str
    path: str
    what: str
    outcome: Outcome = "reject"


def _image(rng: np.random.Generator, shape_zyx: tuple[int, ...], spacing: tuple[float, ...]) -> sitk.Image:
    image = sitk.GetImageFromArray(rng.integers(0, 800, size=shape_zyx).astype(np.int16))
    image.SetSpacing(spacing)
    return image


def _spider_cases(layout: DataLayout, rng: np.random.Generator, base: Path) -> list[BadInput]:
    images, masks = layout.spider / "images", layout.spider / "masks"
    good = sorted(images.glob("*.mha"))[0]
    cases: list[BadInput] = []

    def case(name: str, path: Path, what: str) -> None:
        cases.append(BadInput("nnunet", name, path.relative_to(base).as_posix(), what))

    flat = _image(rng, (1, 64, 64), (0.8, 0.8, 4.0))
    sitk.WriteImage(flat, str(images / "91_t2.mha"))
    sitk.WriteImage(sitk.Cast(flat * 0, sitk.sitkUInt8), str(masks / "91_t2.mha"))
    case("single_slice", images / "91_t2.mha", "a 2-D (single-slice) volume and its mask")
    shutil.copyfile(good, images / "92_t1.nii.gz")
    case("nifti_among_mha", images / "92_t1.nii.gz", "a .nii.gz image where SPIDER has .mha")
    (images / "93_t1.mha").write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 64 64\nElementType = ???\n")
    shutil.copyfile(masks / good.name, masks / "93_t1.mha")
    case("corrupt_header", images / "93_t1.mha", "a MetaImage with a broken header")
    (images / "94_t2.mha").write_bytes(b"")
    shutil.copyfile(masks / good.name, masks / "94_t2.mha")
    case("empty_file", images / "94_t2.mha", "a 0-byte .mha")
    shutil.copyfile(good, images / "95_t1.mha")
    case("no_mask", images / "95_t1.mha", "an image without its mask")
    shutil.copyfile(good, images / "96_t1.mha")
    sitk.WriteImage(sitk.Cast(_image(rng, (4, 32, 32), (1.0, 1.0, 4.0)) * 0, sitk.sitkUInt8), str(masks / "96_t1.mha"))
    case("mask_of_another_grid", images / "96_t1.mha", "an image whose mask has another size")
    (images / "README.txt").write_text("exported by the hospital PACS\n", encoding="utf-8")
    case("readme", images / "README.txt", "a text file among the images")
    (images / "Thumbs.db").write_bytes(bytes(rng.integers(0, 256, 512, dtype=np.uint8)))
    case("thumbs_db", images / "Thumbs.db", "Windows' thumbnail cache among the images")
    return cases


def _phenikaa_cases(layout: DataLayout, truth: dict, rng: np.random.Generator, base: Path) -> list[BadInput]:
    import pandas as pd

    reports, folders, tables = layout.phenikaa_reports, layout.phenikaa_images, layout.phenikaa_tables
    patients = truth["patients"]
    cases: list[BadInput] = []

    def case(stage: str, name: str, path: Path, what: str) -> None:
        cases.append(BadInput(stage, name, path.relative_to(base).as_posix(), what))

    # The reports inbox: names of people who exist nowhere else, so nothing is matched to them.
    empty = reports / "TRAN_VAN_BINH_20250101.pdf"
    empty.write_bytes(b"")
    case("reports", "empty_pdf", empty, "a 0-byte patient-named PDF")
    truncated = reports / "LE_THI_HOA_20250202.pdf"
    truncated.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    case("reports", "truncated_pdf", truncated, "a truncated patient-named PDF (the reader's error names the file)")
    noise = reports / "250099999.png"
    sitk.WriteImage(sitk.Cast(_image(rng, (200, 160), (1.0, 1.0)), sitk.sitkUInt8), str(noise))
    case("reports", "unreadable_scan", noise, "an ID-named scan of noise")
    (reports / "notes.txt").write_text("call the patient back\n", encoding="utf-8")
    case("reports", "text_file", reports / "notes.txt", "a text file in the inbox")
    (reports / "letter.docx").write_bytes(b"PK\x03\x04" + bytes(20))
    case("reports", "word_file", reports / "letter.docx", "a Word document in the inbox")
    (reports / "old").mkdir()
    case("reports", "folder", reports / "old", "a folder in the inbox")

    # The image folders of matched patients.
    first = folders / Path(patients[0]["image_folders"][0]).name
    for stray, data in (("Thumbs.db", bytes(rng.integers(0, 256, 256, dtype=np.uint8))),
                        ("README.txt", b"burned by the PACS export tool\n")):
        (first / stray).write_bytes(data)
        case("phenikaa", stray.lower().replace(".", "_"), first / stray, f"{stray} in a patient's study folder")
    series = sorted(p for p in first.rglob("*.dcm"))
    cut = series[len(series) // 2]
    cut.write_bytes(cut.read_bytes()[:200])
    case("phenikaa", "truncated_dicom", cut, "a DICOM slice cut short")
    if len(patients) > 2:
        emptied = folders / Path(patients[2]["image_folders"][0]).name
        for child in emptied.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        case("phenikaa", "empty_study_folder", emptied, "a matched patient's study folder with nothing inside")

    # The label tables: one gets the patients' names and birthdays beside the grades, and a grade that is not one.
    table = sorted(tables.glob("*.xlsx"))[-1]
    frame = pd.read_excel(table)
    by_id = {str(p["patient_id"]): p for p in patients}
    ids = frame["Patient ID"].astype(str)
    frame["Họ tên"] = [by_id[i]["full_name"] if i in by_id else "" for i in ids]
    frame["Ngày sinh"] = [_dmy(by_id[i]["birthday"]) if i in by_id else "" for i in ids]
    frame["Patient name"] = [ascii_name(by_id[i]["full_name"]) if i in by_id else "" for i in ids]
    frame["Pfirrman grade"] = frame["Pfirrman grade"].astype(object)
    frame.loc[0, "Pfirrman grade"] = "grade III?"
    frame.to_excel(table, index=False)
    case("phenikaa", "phi_columns", table, "a label table with names and birthdays in extra columns")
    case("phenikaa", "not_a_grade", table, "a Pfirrmann cell that holds no grade (row 2)")
    return cases


def _dmy(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}/{month}/{year}"


def _rsna_cases(layout: DataLayout, base: Path) -> list[BadInput]:
    import pandas as pd

    coordinates = layout.rsna / "train_label_coordinates.csv"
    frame = pd.read_csv(coordinates)
    row = frame.iloc[0].to_dict()
    bad = [
        ("absent_instance", {**row, "instance_number": 9999}, "a point on an instance the series does not have"),
        ("non_numeric_x", {**row, "x": "12,5px"}, "an x that is not a number"),
        ("outside_image", {**row, "x": 1.0e6}, "a point far outside the image"),
        ("unknown_level", {**row, "level": "L7/L8"}, "a level that does not exist"),
    ]
    frame = pd.concat([frame.astype(object), pd.DataFrame([values for _, values, _ in bad])], ignore_index=True)
    frame.to_csv(coordinates, index=False)
    where = coordinates.relative_to(base).as_posix()
    cases = [BadInput("localization", name, f"{where}:{len(frame) - len(bad) + i + 2}", what)
             for i, (name, _, what) in enumerate(bad)]
    fatal = base / "fatal" / "localization"
    fatal.mkdir(parents=True, exist_ok=True)
    original = pd.read_csv(coordinates)
    for column in ("x", "instance_number", "condition"):
        original.drop(columns=[column]).to_csv(fatal / f"no_{column}.csv", index=False)
        cases.append(BadInput("localization", f"no_{column}_column", f"fatal/localization/no_{column}.csv",
                              f"a coordinates table without its {column} column", "error"))
    original.iloc[:0].to_csv(fatal / "header_only.csv", index=False)
    cases.append(BadInput("localization", "header_only", "fatal/localization/header_only.csv",
                          "a coordinates table with its header only", "error"))
    (fatal / "binary.csv").write_bytes(bytes(range(256)) * 4)
    cases.append(BadInput("localization", "binary", "fatal/localization/binary.csv",
                          "a binary file named .csv", "error"))
    return cases


def _test_inputs(layout: DataLayout, truth: dict, rng: np.random.Generator, base: Path) -> list[BadInput]:
    inputs = base / "inputs" / "test"
    inputs.mkdir(parents=True, exist_ok=True)
    good = sorted((layout.spider / "images").glob("*_t2.mha"))[0]
    shutil.copyfile(good, inputs / good.name)
    (inputs / "broken.mha").write_bytes(b"not an image at all")
    (inputs / "notes.txt").write_text("a note\n", encoding="utf-8")
    name = ascii_name(truth["patients"][0]["full_name"])
    (inputs / f"{name}_20250101.nii.gz").write_bytes(bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
    cases = [BadInput("test", "corrupt_image", "inputs/test/broken.mha", "an .mha that is no image"),
             BadInput("test", "text_file", "inputs/test/notes.txt", "a text file given as an image"),
             BadInput("test", "patient_named_garbage", f"inputs/test/{name}_20250101.nii.gz",
                      "a patient-named .nii.gz of random bytes")]
    return cases


def make_bad_input_corpus(out: Path, seed: int = 0, size: int = 64) -> list[BadInput]:
    """Write the corpus under ``out`` (``out/data`` is its data root) and return its cases (also in
    ``out/data/truth/bad_inputs.json``). Three patients per source: the good ones a stage must still process."""
    root = out / "data"
    make_synthetic_root(SynthConfig(out=root, spider_patients=3, rsna_studies=2, phenikaa_patients=3, size=size,
                                    slices=8, seed=seed))
    layout = DataLayout(root=root)
    rng = np.random.default_rng([seed, 17])
    phenikaa = read_truth(root, "phenikaa")
    cases = (_spider_cases(layout, rng, out) + _phenikaa_cases(layout, phenikaa, rng, out)
             + _rsna_cases(layout, out) + _test_inputs(layout, phenikaa, rng, out))
    atomic_write_text(root / TRUTH_FOLDER / f"{BAD_INPUTS_TRUTH}.json",
                      json.dumps([asdict(c) for c in cases], indent=1, ensure_ascii=False) + "\n")
    return cases


def read_bad_inputs(out: Path) -> list[BadInput]:
    """The cases of a corpus written by :func:`make_bad_input_corpus`."""
    return [BadInput(**c) for c in read_truth(out / "data", BAD_INPUTS_TRUTH)]
