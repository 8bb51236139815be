"""IVDCoordsDataset: items, targets on the discs, augmentation that moves the landmarks, splits, filters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from spine_lib.datasets.ivd_coords import IVDDatasetConfig, build_ivd_coords
from spine_lib.errors import InputPathError
from spine_lib.levels import LEVEL_TO_IDX, LEVELS
from spine_lib.training.datasets import IVDCoordsDataset, split_studies
from spine_lib.training.datasets.ivd_coords import random_curve
from spine_lib.training.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from tests.ivd_coords_support import make_rsna_root, series_by_id, write_csv

SIZE = (224, 224)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    root = make_rsna_root(synthetic_root, tmp_path_factory.mktemp("ivd_ds") / "data")
    build_ivd_coords(IVDDatasetConfig(base_path=root, workers=1))
    return root


def grey(item_image: torch.Tensor) -> np.ndarray:
    """The item's image back in [0, 1] (channel 0 un-normalized)."""
    return (item_image[0].numpy() * IMAGENET_STD[0]) + IMAGENET_MEAN[0]


def test_items_have_the_agreed_fields(data: Path) -> None:
    ds = IVDCoordsDataset(data / "processed/ivd_coords", split="all", image_size=SIZE)
    assert len(ds) == 60 == len(ds.records)  # 3 studies: 15 points each, and their 5 canal points on T1
    item = ds[0]
    assert item["image"].shape == (3, *SIZE) and item["image"].dtype == torch.float32
    assert item["coords"].shape == (2,) and item["coords"].dtype == torch.float32
    assert item["level_idx"].dtype == torch.int64 and item["level_idx"].ndim == 0
    assert int(item["level_idx"]) == LEVEL_TO_IDX[item["level"]]
    assert {type(item[k]) for k in ("level", "series_type", "image_path", "study_id")} == {str}
    assert Path(item["image_path"]).is_file()
    image = item["image"].numpy()
    channels = [(image[c] * IMAGENET_STD[c]) + IMAGENET_MEAN[c] for c in range(3)]
    assert np.allclose(channels[0], channels[1], atol=1e-5) and np.allclose(channels[0], channels[2], atol=1e-5)
    assert channels[0].min() >= -1e-5 and channels[0].max() <= 1 + 1e-5
    record = ds.records[0]
    assert record["level"] == record.level == item["level"]
    assert torch.allclose(item["coords"], torch.tensor([record.relative_x, record.relative_y]))


def test_resized_targets_sit_on_the_canal_point_of_their_disc(data: Path) -> None:
    """At 224x224 the target is the truth's canal point scaled, within half a pixel (pixel-centre shift)."""
    truth = series_by_id(data)
    ds = IVDCoordsDataset(data / "processed/ivd_coords", split="all", series_types=["sag_t2"], image_size=SIZE)
    assert len(ds) == 15
    for index in range(len(ds)):
        item = ds[index]
        series_id = Path(item["image_path"]).stem.split("_")[2]
        series = truth[series_id]
        i, j, _ = series["canal_point_index"][item["level"]]
        width, height = series["size"][:2]
        expected = ((i + 0.5) * SIZE[1] / width - 0.5, (j + 0.5) * SIZE[0] / height - 0.5)
        got = item["coords"].numpy() * (SIZE[1], SIZE[0])
        assert np.abs(got - expected).max() < 0.5
        centres = {lv: (np.array(series["disc_center_index"][lv][:2]) + 0.5) * SIZE[1] / width - 0.5 for lv in LEVELS}
        assert min(LEVELS, key=lambda lv: float(np.linalg.norm(centres[lv] - got))) == item["level"]


def blob_dataset(folder: Path, width: int = 150, height: int = 180, images: int = 3) -> dict[str, list[tuple[float, float]]]:
    """Images with one bright Gaussian spot per level on a textured background, annotated at the spots."""
    rng = np.random.default_rng(3)
    (folder / "images").mkdir(parents=True)
    rows, spots = [], {}
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    for n in range(images):
        image = rng.uniform(0.05, 0.3, (height, width))
        points = [(float(rng.uniform(40, width - 40)), 30.0 + 28.0 * k + float(rng.uniform(-4, 4))) for k in range(5)]
        for x, y in points:
            image += 0.7 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.5**2))
        name = f"images/blob_{n}.png"
        cv2.imwrite(str(folder / name), np.clip(image * 255, 0, 255).astype(np.uint8))
        spots[name] = points
        rows += [{"image_path": name, "level": level, "relative_x": x / width, "relative_y": y / height,
                  "series_type": "sag_t2", "source": "test", "study_id": f"s{n}"} for level, (x, y) in zip(LEVELS, points, strict=True)]
    write_csv(folder / "annotations.csv", rows)
    return spots


def spot_near(image: np.ndarray, x: float, y: float, radius: int = 7) -> tuple[float, float]:
    """Centroid of the bright spot within ``radius`` of (x, y) (background subtracted)."""
    x0, y0 = round(x), round(y)
    top, left = max(0, y0 - radius), max(0, x0 - radius)
    window = image[top:y0 + radius + 1, left:x0 + radius + 1]
    weights = np.clip(window - np.percentile(window, 60), 0, None)
    weights = np.where(weights > 0.5 * weights.max(), weights, 0)
    ys, xs = np.mgrid[0:window.shape[0], 0:window.shape[1]]
    return float((xs * weights).sum() / weights.sum() + left), float((ys * weights).sum() / weights.sum() + top)


@pytest.mark.parametrize("kind", ["light", "scanner"])
def test_augmentation_moves_the_landmark_with_the_image(tmp_path: Path, kind: str) -> None:
    spots = blob_dataset(tmp_path)
    plain = IVDCoordsDataset(tmp_path, split="all", image_size=SIZE)
    augmented = IVDCoordsDataset(tmp_path, split="all", image_size=SIZE, augment=True, augmentation=kind)  # type: ignore[arg-type]
    # the geometry of the kind, intensity changes that would hide the spots from ``spot_near`` left out
    augmented.ranges = dataclasses.replace(augmented.ranges, invert=0.0, blur=0.0, bias=0.0, noise=0.0)
    torch.manual_seed(0)
    moved = 0
    for _ in range(3):
        for index in range(len(augmented)):
            item = augmented[index]
            x, y = (item["coords"].numpy() * (SIZE[1], SIZE[0])).tolist()
            assert 0 <= x < SIZE[1] and 0 <= y < SIZE[0]
            image = grey(item["image"])
            cx, cy = spot_near(image, x, y)
            assert abs(cx - x) < 1.0 and abs(cy - y) < 1.0, (index, (x, y), (cx, cy))
            expected = plain[index]["coords"].numpy() * (SIZE[1], SIZE[0])
            spot = spots[plain.records[index].image_path][LEVEL_TO_IDX[plain.records[index].level]]
            scaled = ((spot[0] + 0.5) * SIZE[1] / 150 - 0.5, (spot[1] + 0.5) * SIZE[0] / 180 - 0.5)
            assert np.abs(expected - scaled).max() < 0.5  # un-augmented: the drawn spot, resized
            moved += float(np.linalg.norm(np.array([x, y]) - expected)) > 1.0
    assert moved >= 0.8 * 3 * len(augmented)  # augmentation really moves the picture


def test_scanner_augmentation_varies_scale_rotation_and_contrast(tmp_path: Path) -> None:
    """Over many draws: the spots' spread (the field of view) changes by more than 1.4x both ways, the spine
    turns beyond 10 degrees, and some images come out with inverted contrast (the spot darker than around it)."""
    spots = blob_dataset(tmp_path, images=1)
    dataset = IVDCoordsDataset(tmp_path, split="all", image_size=SIZE, augment=True, group_levels=True)
    first = np.array(spots[dataset.records[0].image_path]) * (SIZE[1] / 150, SIZE[0] / 180)
    spread0 = np.linalg.norm(first[-1] - first[0])
    angle0 = np.degrees(np.arctan2(*(first[-1] - first[0])[::-1]))
    torch.manual_seed(1)
    ratios, turns, inverted = [], [], 0
    for _ in range(120):
        item = dataset[0]
        points = item["coords"].numpy() * (SIZE[1], SIZE[0])
        ratios.append(np.linalg.norm(points[-1] - points[0]) / spread0)
        turns.append(abs(np.degrees(np.arctan2(*(points[-1] - points[0])[::-1])) - angle0))
        image = grey(item["image"])
        x, y = points[2]
        inside = image[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].mean()
        around = image[max(0, int(y) - 12):int(y) + 13, max(0, int(x) - 12):int(x) + 13].mean()
        inverted += inside < around
    assert min(ratios) < 1 / 1.4 and max(ratios) > 1.4
    assert max(turns) > 10.0
    assert 5 <= inverted <= 40  # about 15% of 120


def test_augmentation_is_reproducible_under_a_torch_seed(tmp_path: Path) -> None:
    blob_dataset(tmp_path, images=1)
    ds = IVDCoordsDataset(tmp_path, split="all", image_size=(96, 96), augment=True)
    torch.manual_seed(5)
    first = [ds[i]["coords"] for i in range(5)]
    torch.manual_seed(5)
    again = [ds[i]["coords"] for i in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_grouped_items_hold_every_point_of_their_image(data: Path) -> None:
    plain = IVDCoordsDataset(data / "processed/ivd_coords", split="all", image_size=SIZE)
    grouped = IVDCoordsDataset(data / "processed/ivd_coords", split="all", image_size=SIZE, group_levels=True)
    members = sorted(m for group in grouped.groups for m in group)
    assert members == list(range(len(plain)))  # every annotation in exactly one group
    assert len(grouped) == len({r.image_path for r in plain.records}) < len(plain)
    by_key = {(plain.records[i].image_path, plain.records[i].level): plain[i]["coords"] for i in range(len(plain))}
    for index in range(len(grouped)):
        item = grouped[index]
        assert item["coords"].shape == (5, 2) and item["level_idx"].tolist() == [0, 1, 2, 3, 4]
        image_path = grouped.records[grouped.groups[index][0]].image_path
        assert torch.equal(item["image"], plain[grouped.groups[index][0]]["image"])
        for slot, level in enumerate(LEVELS):
            expected = by_key.get((image_path, level))
            if expected is None:
                assert torch.isnan(item["coords"][slot]).all()
            else:
                assert torch.allclose(item["coords"][slot], expected)
    batch = next(iter(DataLoader(grouped, batch_size=4)))
    assert batch["image"].shape == (4, 3, *SIZE) and batch["coords"].shape == (4, 5, 2)


def test_grouped_augmentation_moves_every_point_with_the_image(tmp_path: Path) -> None:
    blob_dataset(tmp_path)
    ds = IVDCoordsDataset(tmp_path, split="all", image_size=SIZE, augment=True, group_levels=True)
    plain = IVDCoordsDataset(tmp_path, split="all", image_size=SIZE, group_levels=True)
    # the geometry; intensity changes that would hide the spots from ``spot_near`` (an inverted image) left out
    ds.ranges = dataclasses.replace(ds.ranges, invert=0.0, blur=0.0, bias=0.0, noise=0.0)
    assert len(ds) == 3
    torch.manual_seed(1)
    for _ in range(6):
        for index in range(len(ds)):
            item = ds[index]
            image = grey(item["image"])
            points = item["coords"].numpy() * (SIZE[1], SIZE[0])
            for x, y in points:
                cx, cy = spot_near(image, x, y)
                assert abs(cx - x) < 1.0 and abs(cy - y) < 1.0, (index, (x, y), (cx, cy))
            still = plain[index]["coords"].numpy() * (SIZE[1], SIZE[0])
            assert np.abs(points - still).max() > 1.0  # really moved


def test_a_repeated_level_on_one_image_starts_another_group(tmp_path: Path) -> None:
    blob_dataset(tmp_path, images=1)
    rows = [{"image_path": "images/blob_0.png", "level": level, "relative_x": x, "relative_y": y,
             "series_type": "sag_t1", "source": "test", "study_id": "s0"}
            for level, x, y in (("L1/L2", 0.3, 0.2), ("L2/L3", 0.3, 0.4), ("L1/L2", 0.6, 0.2))]
    write_csv(tmp_path / "annotations.csv", rows)
    ds = IVDCoordsDataset(tmp_path, split="all", image_size=(64, 64), group_levels=True, levels=["L1/L2", "L2/L3"])
    assert ds.groups == [[0, 1], [2]]
    first, second = ds[0]["coords"], ds[1]["coords"]
    assert ds[0]["level_idx"].tolist() == [0, 1]
    assert torch.allclose(first, torch.tensor([[0.3, 0.2], [0.3, 0.4]]))
    assert second[0].tolist() == pytest.approx([0.6, 0.2]) and torch.isnan(second[1]).all()


def test_splits_are_by_study_and_deterministic(data: Path) -> None:
    path = data / "processed/ivd_coords"
    splits = {s: IVDCoordsDataset(path, split=s, val_fraction=0.34, test_fraction=0.34) for s in ("train", "val", "test")}
    studies = {s: set(ds.studies) for s, ds in splits.items()}
    assert all(len(v) == 1 for v in studies.values())
    assert not (studies["train"] & studies["val"]) and not (studies["train"] & studies["test"])
    assert not (studies["val"] & studies["test"])
    assert sum(len(ds) for ds in splits.values()) == len(IVDCoordsDataset(path, split="all"))
    again = IVDCoordsDataset(path, split="val", val_fraction=0.34, test_fraction=0.34)
    assert [r.image_path for r in again.records] == [r.image_path for r in splits["val"].records]


def test_split_studies_sizes_and_seed() -> None:
    studies = [f"study{n}" for n in range(50)] * 3  # repeated ids: one study, one split
    first = split_studies(studies, val_fraction=0.2, test_fraction=0.1, seed=1)
    counts = {s: list(first.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 35, "val": 10, "test": 5}
    assert split_studies(studies, 0.2, 0.1, seed=1) == first
    assert split_studies(studies, 0.2, 0.1, seed=2) != first
    assert set(split_studies(["a", "b"], 0.5, 0.5 - 1e-9, seed=0).values()) >= {"train"}  # train is never emptied
    with pytest.raises(ValueError, match="fractions"):
        split_studies(studies, 0.6, 0.5)


def test_series_and_level_filters(data: Path) -> None:
    path = data / "processed/ivd_coords"
    t1 = IVDCoordsDataset(path, split="all", series_types=["sag_t1"])
    assert len(t1) == 45 and {r.series_type for r in t1.records} == {"sag_t1"}
    low = IVDCoordsDataset(path, split="all", levels=["l4_l5", "L5/S1"])
    assert len(low) == 24 and {r.level for r in low.records} == {"L4/L5", "L5/S1"}
    assert {int(low[i]["level_idx"]) for i in range(len(low))} == {3, 4}
    canal = IVDCoordsDataset(path, split="all", points=["canal"])
    assert len(canal) == 30 and {r.point for r in canal.records} == {"canal"}
    assert {r.series_type for r in canal.records} == {"sag_t2", "sag_t1"}
    left = IVDCoordsDataset(path, split="all", points=["foramen_left"])
    assert len(left) == 15 and {r.point for r in left.records} == {"foramen_left"}
    with pytest.raises(ValueError, match="split"):
        IVDCoordsDataset(path, split="validation")  # type: ignore[arg-type]


def test_batches_through_a_data_loader(data: Path) -> None:
    ds = IVDCoordsDataset(data / "processed/ivd_coords", split="all", image_size=(64, 64), augment=True)
    batch = next(iter(DataLoader(ds, batch_size=8, shuffle=True)))
    assert batch["image"].shape == (8, 3, 64, 64) and batch["coords"].shape == (8, 2)
    assert batch["level_idx"].shape == (8,) and len(batch["level"]) == 8
    assert bool(((batch["coords"] >= 0) & (batch["coords"] < 1)).all())


def test_images_are_read_once_when_the_dataset_is_built(tmp_path: Path) -> None:
    blob_dataset(tmp_path, images=2)
    ds = IVDCoordsDataset(tmp_path, split="all", image_size=(64, 64))
    before = [ds[i] for i in range(len(ds))]
    for png in (tmp_path / "images").glob("*.png"):
        png.unlink()  # items come from memory from now on
    after = [ds[i] for i in range(len(ds))]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(before, after, strict=True))
    with pytest.raises(InputPathError, match="image missing or unreadable"):
        IVDCoordsDataset(tmp_path, split="all")


def test_random_intensity_curves_are_smooth_maps_into_the_unit_range_in_any_order() -> None:
    curves = [random_curve(np.random.default_rng(seed)) for seed in range(40)]
    for curve in curves:
        assert curve.shape == (256,) and curve.dtype == np.float32
        assert curve.min() >= 0.0 and curve.max() <= 1.0
        assert np.abs(np.diff(curve)).max() < 0.05  # smooth: no jump between neighbouring grey values
        assert curve[0] <= 0.1 + 1e-6  # black stays near black
    slopes = [np.sign(np.diff(c[::32])) for c in curves]
    non_monotonic = sum(bool((s > 0).any() and (s < 0).any()) for s in slopes)
    assert non_monotonic >= 20  # most reorder the tissues, not only brighten or darken them
    assert np.ptp([c[200] for c in curves]) > 0.6  # a bright tissue can come out anywhere
