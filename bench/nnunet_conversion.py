"""SPIDER -> nnU-Net conversion throughput: ours (1 and 2 workers) against a bare SimpleITK loop.

Run: ``uv run python bench/nnunet_conversion.py [--patients 8 --size 256 --slices 14 --repeats 5]``. The bare loop
reads image and mask, remaps the mask with a lookup table and writes both as .nii.gz: the floor of any
conversion. Each timed run starts from an empty output folder (a full conversion, no incremental skipping); the
rerun column is a second run over unchanged inputs. Prints a markdown table of cases per second (median over the
repeats) and the two ratios the issue names (single worker / bare >= 0.9, 2 workers / 1 worker >= 1.6).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from spine_lib.datasets.nnunet import ConvertConfig, convert_to_nnunet
from spine_lib.labels import load_label_schema
from spine_lib.labels.mapping import lookup_table
from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root


def bare_loop(spider: Path, output: Path) -> int:
    """Read, remap, write every case with plain SimpleITK calls."""
    table, _ = lookup_table(load_label_schema("spider").mapping)
    (output / "imagesTr").mkdir(parents=True)
    (output / "labelsTr").mkdir(parents=True)
    cases = 0
    for image_file in sorted((spider / "images").glob("*.mha")):
        case = image_file.name.removesuffix(".mha")
        image = sitk.ReadImage(str(image_file))
        mask = sitk.ReadImage(str(spider / "masks" / image_file.name))
        label = sitk.GetImageFromArray(table[sitk.GetArrayViewFromImage(mask)].astype(np.uint8))
        label.CopyInformation(image)
        sitk.WriteImage(image, str(output / "imagesTr" / f"{case}_0000.nii.gz"), useCompression=True)
        sitk.WriteImage(label, str(output / "labelsTr" / f"{case}.nii.gz"), useCompression=True)
        cases += 1
    return cases


def timed(run: object) -> float:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="nnunet_conversion_"))
    root = work / "data"
    make_synthetic_root(SynthConfig(out=root, spider_patients=args.patients, rsna_studies=1, phenikaa_patients=1,
                                    size=args.size, slices=args.slices, seed=1))
    spider = root / "raw" / "SPIDER"
    cases = len(list((spider / "images").glob("*.mha")))
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # same per-process threading as the workers

    def ours(workers: int, out: Path) -> None:
        convert_to_nnunet(ConvertConfig(input_path=spider, output_path=out, workers=workers))

    seconds: dict[str, list[float]] = {"bare loop": [], "ours, 1 worker": [], "ours, 2 workers": [], "rerun (unchanged)": []}
    for repeat in range(args.repeats):
        order = ["bare", 1, 2] if repeat % 2 == 0 else [2, 1, "bare"]  # alternate, so drift hits all alike
        for item in order:
            out = work / f"out_{item}" / "Dataset501_Spider"
            shutil.rmtree(out.parent, ignore_errors=True)
            if item == "bare":
                seconds["bare loop"].append(timed(lambda out=out: bare_loop(spider, out)))
            else:
                key = "ours, 1 worker" if item == 1 else "ours, 2 workers"
                seconds[key].append(timed(lambda out=out, item=item: ours(int(item), out)))
                if item == 2:
                    seconds["rerun (unchanged)"].append(timed(lambda out=out: ours(2, out)))
    rates = {k: cases / statistics.median(v) for k, v in seconds.items()}
    print(f"{cases} cases of {args.slices}x{args.size}x{args.size} int16, median of {args.repeats} runs\n")
    print("| run | seconds | cases/s |\n|---|---|---|")
    for key, values in seconds.items():
        print(f"| {key} | {statistics.median(values):.2f} | {rates[key]:.2f} |")
    print(f"\nsingle worker / bare loop: {rates['ours, 1 worker'] / rates['bare loop']:.2f} (target >= 0.9)")
    print(f"2 workers / 1 worker:      {rates['ours, 2 workers'] / rates['ours, 1 worker']:.2f} (target >= 1.6)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
