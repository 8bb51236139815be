"""The synthetic Lumbar Coords pictures: their truth against their own label map, and their way into training."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from spine_lib.datasets.ivd_coords import IVDDatasetConfig, build_ivd_coords
from spine_lib.errors import ConfigError
from spine_lib.levels import LEVELS
from spine_lib.synthetic.lumbar_coords import SOURCES, Picture, Tissue, render_picture, write_lumbar_coords
from spine_lib.training.datasets.ivd_coords import IVDCoordsDataset

DISC = {Tissue.ANNULUS, Tissue.NUCLEUS}
BEHIND_THE_DISC = {Tissue.CSF, Tissue.FAT, Tissue.LIGAMENT, Tissue.CORD}


@pytest.fixture(scope="module")
def pictures() -> list[Picture]:
    rng = np.random.default_rng(7)
    return [render_picture(rng, SOURCES[i % len(SOURCES)], (256, 256 if i % 2 else 224)) for i in range(24)]


def test_points_inside_ordered_and_spaced(pictures: list[Picture]) -> None:
    for picture in pictures:
        rows, columns = picture.pixels.shape
        points = np.array([picture.points[level] for level in LEVELS])
        assert np.all((points >= 0.05 * np.array([columns, rows])) & (points <= 0.95 * np.array([columns, rows])))
        chord = points[-1] - points[0]
        assert np.all(np.diff(points @ chord) > 0), "not ordered L1/L2 -> L5/S1 along the spine"
        gaps = np.hypot(*np.diff(points, axis=0).T)
        assert gaps.max() / gaps.min() < 2.0, gaps  # one level each, none skipped
        assert 0.03 * rows < gaps.min(), gaps


def test_the_point_is_the_disc_meeting_the_canal(pictures: list[Picture]) -> None:
    """In front of the point its own disc, behind it the canal's contents, not bone."""
    for picture in pictures:
        labels = picture.labels
        points = np.array([picture.points[level] for level in LEVELS])
        for index, level in enumerate(LEVELS):
            x, y = points[index]
            posterior = np.array(picture.posterior[level])
            assert posterior[0] > 0  # anterior is on the left

            def tissue(at: np.ndarray, labels: np.ndarray = labels) -> Tissue:
                column, row = (round(v) for v in at)
                return Tissue(int(labels[row, column]))

            front = [tissue(np.array([x, y]) - posterior * d) for d in (1.5, 2.5)]
            back = [tissue(np.array([x, y]) + posterior * d) for d in (1.5, 2.5)]
            assert DISC & set(front), (level, front, picture.settings)
            assert set(back) <= BEHIND_THE_DISC | DISC, (level, back, picture.settings)
            assert BEHIND_THE_DISC & set(back), (level, back, picture.settings)


def test_the_looks_vary(pictures: list[Picture]) -> None:
    contrasts = {p.settings["contrast"] for p in pictures}
    assert {"lsd", "osf", "tseg", "random"} <= contrasts
    rotations = [float(p.settings["rotation_deg"]) for p in pictures]
    assert max(rotations) - min(rotations) > 15
    units = [float(p.settings["unit_px"]) for p in pictures]
    assert max(units) / min(units) > 1.4
    # T2 (lsd): CSF brighter than the disc's annulus; T1 (osf): the other way round
    for picture in pictures:
        if picture.settings["contrast"] in ("lsd", "osf"):
            csf = picture.pixels[picture.labels == Tissue.CSF].mean()
            annulus = picture.pixels[picture.labels == Tissue.ANNULUS].mean()
            assert (csf > annulus) == (picture.settings["contrast"] == "lsd"), picture.settings


def test_written_set_builds_into_the_training_split_alone(synthetic_root: Path, tmp_path: Path) -> None:
    """The pictures go through the IVD coordinates builder like the real set's, and train only: validation and
    test keep measuring RSNA."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "raw/RSNA", root / "raw/RSNA")
    truth = write_lumbar_coords(root / "raw/Lumbar Coords", 6, seed=3, size=128)
    again = write_lumbar_coords(tmp_path / "again", 6, seed=3, size=128)
    assert truth == again
    first = sorted((root / "raw/Lumbar Coords/data").rglob("*.jpg"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in sorted((tmp_path / "again/data").rglob("*.jpg"))]
    with (root / "raw/Lumbar Coords/coords_pretrain.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 * 5 and {r["source"] for r in rows} == set(SOURCES)
    report = build_ivd_coords(IVDDatasetConfig(base_path=root))
    assert report.by_source.get("pretrain_lsd", 0) + report.by_source.get("pretrain_osf", 0) + \
        report.by_source.get("pretrain_tseg", 0) == 30
    dataset_path = root / "processed/ivd_coords"
    with (dataset_path / "annotations.csv").open(encoding="utf-8") as handle:
        annotations = [r for r in csv.DictReader(handle) if r["source"].startswith("pretrain_")]
    assert len(annotations) == 30
    for row in annotations:  # the builder kept each point where the truth has it
        picture = next(t for t in truth if Path(t.filename).stem in row["image_path"])
        x, y = picture.points[row["level"]]
        assert math.isclose(float(row["relative_x"]), x / picture.width, abs_tol=1e-5)
        assert math.isclose(float(row["relative_y"]), y / picture.height, abs_tol=1e-5)
    splits = {split: IVDCoordsDataset(dataset_path, split=split, val_fraction=0.2, test_fraction=0.2)
              for split in ("train", "val", "test")}
    assert all(r.source.startswith("pretrain_") is False for s in ("val", "test") for r in splits[s].records)
    assert sum(r.source.startswith("pretrain_") for r in splits["train"].records) == 30
    assert splits["val"].records and splits["test"].records


def test_synth_writes_the_pictures_and_their_truth(tmp_path: Path) -> None:
    from spine_lib.synthetic.config import SynthConfig
    from spine_lib.synthetic.generate import make_synthetic_root
    from spine_lib.synthetic.truth import read_truth

    config = SynthConfig(out=tmp_path / "data", patients=1, size=64, slices=6, lumbar_coords_pictures=4)
    report = make_synthetic_root(config)
    assert report.counts["lumbar_coords"] == 4
    truth = read_truth(config.out, "lumbar_coords")
    pictures = sorted((config.out / "raw/Lumbar Coords/data").rglob("*.jpg"))
    assert sorted(p.name for p in pictures) == sorted(t["filename"] for t in truth)
    assert all(set(t["points"]) == set(LEVELS) for t in truth)
    make_synthetic_root(config)  # a rerun rewrites the same root
    assert sorted((config.out / "raw/Lumbar Coords/data").rglob("*.jpg")) == pictures
    with pytest.raises(ConfigError, match="--lumbar-coords-pictures must be 0 or more"):
        make_synthetic_root(config.model_copy(update={"lumbar_coords_pictures": -1}))
