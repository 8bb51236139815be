"""ClassificationDataset: [T2, T1, T2] inputs of paired crops, targets from the grades, patient splits, filters,
augmentation that keeps anatomy in place, class counts, the collator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch.utils.data import DataLoader

from spine_lib.errors import InputPathError, TabularDataError
from spine_lib.formats.classification import ANNOTATION_COLUMNS, ANNOTATIONS_FILE, crop_name, image_entry
from spine_lib.io.records import write_records_csv
from spine_lib.levels import phenikaa_ivd_label
from spine_lib.training.datasets import ClassificationCollator, ClassificationDataset, construct_3channel
from spine_lib.training.datasets.classification import CROP_AUGMENTATION
from spine_lib.training.datasets.ivd_coords import Split
from spine_lib.training.grading import GRADING_HEADS, LABELS
from spine_lib.training.preprocessing import IMAGENET_MEAN, IMAGENET_STD

CROP = 64  # crop side in pixels; the datasets below keep it as output size unless a test resizes
T2, T1 = "sag_t2", "sag_t1"
HEALTHY = {"pfirrmann_grade": 2, "disc_herniation": 0, "disc_narrowing": 0, "disc_bulging": 0,
           "spondylolisthesis": 0, "modic": 0, "up_endplate": 0, "low_endplate": 0}


@dataclass
class Disc:
    source: str
    patient_id: str
    level: str
    crops: dict[str, npt.NDArray[np.uint8]]
    grades: dict[str, int] = field(default_factory=dict)


def flat(value: int) -> npt.NDArray[np.uint8]:
    return np.full((CROP, CROP), value, dtype=np.uint8)


def blob(x: float, y: float, background: int, peak: int, sigma: float = 2.5) -> npt.NDArray[np.uint8]:
    """A Gaussian spot of ``peak`` at pixel ``(x, y)`` on a flat ``background``."""
    yy, xx = np.mgrid[0:CROP, 0:CROP].astype(np.float64)
    spot = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.round(background + (peak - background) * spot).astype(np.uint8)


def write_crops(root: Path, discs: list[Disc]) -> Path:
    """A crops dataset folder: one PNG per crop and annotations.csv (T1 rows first, as the builder writes them)."""
    (root / "images").mkdir(parents=True)
    rows = []
    for disc in discs:
        for series_type in sorted(disc.crops):
            name = crop_name(disc.source, disc.patient_id, series_type, disc.level)
            assert cv2.imwrite(str(root / "images" / name), disc.crops[series_type])
            rows.append({"image_path": image_entry(name), "patient_id": disc.patient_id,
                         "ivd_level": str(phenikaa_ivd_label(disc.level)), "series_type": series_type,
                         "source": disc.source, **{k: str(v) for k, v in {**HEALTHY, **disc.grades}.items()},
                         "level": disc.level, "point_source": "mask", "paired": str(int(len(disc.crops) == 2))})
    write_records_csv(rows, root / ANNOTATIONS_FILE, columns=ANNOTATION_COLUMNS)
    return root


def unnormalized(image: torch.Tensor) -> npt.NDArray[np.float32]:
    """An item's image back in [0, 1], channel by channel."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
    return image.numpy() * std + mean


def centroid(channel: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``(x, y)`` of the bright spot: the weighted centre of the pixels above half-way between median and max."""
    threshold = (float(channel.max()) + float(np.median(channel))) / 2
    weights = np.clip(channel.astype(np.float64) - threshold, 0.0, None)
    yy, xx = np.mgrid[0:channel.shape[0], 0:channel.shape[1]]
    return np.array([(weights * xx).sum(), (weights * yy).sum()]) / weights.sum()


@pytest.fixture(scope="module")
def sequences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A paired disc (T2 = 200, T1 = 50), a T1-only disc (T1 = 50) and a T2-only disc (T2 = 200)."""
    return write_crops(tmp_path_factory.mktemp("sequences") / "crops", [
        Disc("spider", "1", "L4/L5", {T2: flat(200), T1: flat(50)}),
        Disc("spider", "1", "L5/S1", {T1: flat(50)}),
        Disc("phenikaa", "250010139", "L3/L4", {T2: flat(200)}),
    ])


def test_construct_3channel_orders_t2_t1_t2() -> None:
    t2, t1 = flat(200), flat(50)
    channels = construct_3channel(t2, t1)
    assert channels.shape == (3, CROP, CROP) and channels.dtype == np.float32
    assert np.allclose(channels[0], 200 / 255) and np.allclose(channels[1], 50 / 255)
    assert np.allclose(channels[2], 200 / 255)
    assert np.allclose(construct_3channel(None, t1), 50 / 255)
    assert np.allclose(construct_3channel(t2), 200 / 255)
    floats = construct_3channel(np.full((4, 5), 0.75, np.float32), np.full((4, 5), 0.25, np.float32))
    assert floats[:, 0, 0].tolist() == [0.75, 0.25, 0.75]
    with pytest.raises(ValueError, match="at least one"):
        construct_3channel(None, None)
    with pytest.raises(ValueError, match="differ in shape"):
        construct_3channel(flat(1), np.zeros((3, 3), np.uint8))


def test_items_put_t2_in_channels_0_and_2_and_t1_in_channel_1(sequences: Path) -> None:
    ds = ClassificationDataset(sequences, split="all", output_size=(48, 40))
    assert len(ds) == 3
    item = next(ds[i] for i in range(len(ds)) if ds[i]["level"] == "L4/L5")
    assert item["image"].shape == (3, 48, 40) and item["image"].dtype == torch.float32
    expected = [200 / 255, 50 / 255, 200 / 255]
    for c in range(3):  # ImageNet normalization of each channel's own mean and std
        assert torch.allclose(item["image"][c], torch.tensor((expected[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]),
                              atol=1e-5)
    assert item["paired"] is True and (item["source"], item["patient_id"]) == ("spider", "1")
    assert item["image_paths"] == {s: str(sequences / "images" / crop_name("spider", "1", s, "L4/L5"))
                                   for s in (T2, T1)}


def test_a_single_sequence_fills_every_channel_and_is_counted(sequences: Path) -> None:
    ds = ClassificationDataset(sequences, split="all", output_size=(CROP, CROP))
    assert ds.single_sequence == 2
    by_level = {ds[i]["level"]: ds[i] for i in range(len(ds))}
    t1_only, t2_only = by_level["L5/S1"], by_level["L3/L4"]
    assert np.allclose(unnormalized(t1_only["image"]), 50 / 255, atol=1e-5)
    assert np.allclose(unnormalized(t2_only["image"]), 200 / 255, atol=1e-5)
    assert t1_only["paired"] is False and t2_only["paired"] is False and by_level["L4/L5"]["paired"] is True
    assert list(t1_only["image_paths"]) == [T1] and list(t2_only["image_paths"]) == [T2]
    only_paired = ClassificationDataset(sequences, split="all", levels=["L4/L5"], output_size=(CROP, CROP))
    assert only_paired.single_sequence == 0


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six SPIDER and six Phenikaa patients with the same IDs 1..6, three levels each (L5/S1 T2 only)."""
    discs = [Disc(source, str(n), level, {T2: flat(100), T1: flat(60)} if level != "L5/S1" else {T2: flat(100)})
             for source in ("spider", "phenikaa") for n in range(1, 7) for level in ("L3/L4", "L4/L5", "L5/S1")]
    return write_crops(tmp_path_factory.mktemp("cohort") / "crops", discs)


def test_level_and_source_filters(cohort: Path) -> None:
    everything = ClassificationDataset(cohort, split="all", output_size=(CROP, CROP))
    assert len(everything) == 36 and len(everything.patients) == 12  # spider 3 and phenikaa 3 are two patients
    low = ClassificationDataset(cohort, split="all", levels=["L4/L5", "l5_s1"], output_size=(CROP, CROP))
    assert len(low) == 24 and {low[i]["level"] for i in range(len(low))} == {"L4/L5", "L5/S1"}
    assert low.single_sequence == 12
    phenikaa = ClassificationDataset(cohort, split="all", sources=["phenikaa"], output_size=(CROP, CROP))
    assert len(phenikaa) == 18 and {phenikaa[i]["source"] for i in range(len(phenikaa))} == {"phenikaa"}
    both = ClassificationDataset(cohort, split="all", levels=["L3/L4"], sources=["spider"], output_size=(CROP, CROP))
    assert [(d.source, d.level) for d in both.discs] == [("spider", "L3/L4")] * 6
    with pytest.raises(ValueError, match="rsna"):
        ClassificationDataset(cohort, split="all", sources=["rsna"])
    with pytest.raises(ValueError, match="unknown level"):
        ClassificationDataset(cohort, split="all", levels=["T12/L1"])


def test_patients_never_cross_splits_and_keep_all_their_discs(cohort: Path) -> None:
    def split(name: Split, seed: int = 5, levels: list[str] | None = None) -> ClassificationDataset:
        return ClassificationDataset(cohort, split=name, levels=levels, val_fraction=0.25, test_fraction=0.25,
                                     seed=seed, output_size=(CROP, CROP))

    names: tuple[Split, ...] = ("train", "val", "test")
    parts = {name: split(name) for name in names}
    patients = {name: set(ds.patients) for name, ds in parts.items()}
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    assert not (patients["val"] & patients["test"])
    assert set().union(*patients.values()) == {(s, str(n)) for s in ("spider", "phenikaa") for n in range(1, 7)}
    for ds in parts.values():  # every disc of a patient in the patient's split
        for patient in ds.patients:
            assert sum(d.patient == patient for d in ds.discs) == 3
    for source in ("spider", "phenikaa"):  # split source by source: round(6 * 0.25) = 2 test, 2 val, 2 train
        assert [sum(p[0] == source for p in patients[n]) for n in names] == [2, 2, 2]
    assert patients == {name: set(split(name).patients) for name in names}  # same seed, same split
    low = split("val", levels=["L5/S1"])  # filters pick discs, they do not move patients
    assert set(low.patients) == patients["val"] and len(low) == len(patients["val"])
    assert any(set(split("val", seed=s).patients) != patients["val"] for s in range(6, 12))


def test_targets_are_the_grades_through_the_heads(tmp_path: Path) -> None:
    grades = {"pfirrmann_grade": 4, "modic": 2, "disc_herniation": 1, "disc_bulging": 0, "up_endplate": 0,
              "low_endplate": 1, "spondylolisthesis": 1, "disc_narrowing": 0}
    root = write_crops(tmp_path / "crops", [Disc("phenikaa", "7", "L4/L5", {T2: flat(90), T1: flat(30)}, grades),
                                            Disc("spider", "7", "L1/L2", {T2: flat(90)}, {"pfirrmann_grade": 1})])
    ds = ClassificationDataset(root, split="all", output_size=(CROP, CROP))
    first = ds[0]
    assert first["targets"] == {"pfirrmann": 3, "modic": 2, "herniation": [1.0, 0.0], "endplate": [0.0, 1.0],
                                "spondylolisthesis": [1.0], "narrowing": [0.0]}
    for head in GRADING_HEADS:  # back through the heads: the grade of the class, the 0/1 of each column
        value = first["targets"][head.name]
        if head.kind == "multiclass":
            assert head.grade_of(value) == grades[head.columns[0]]
        else:
            assert value == [float(grades[c]) for c in head.columns]
    table = ds.targets_table()
    assert len(table) == 2 and table.pfirrmann.tolist() == [3, 0] and table.modic.tolist() == [2, 0]
    assert table.herniation.tolist() == [[1.0, 0.0], [0.0, 0.0]] and table.endplate.dtype == torch.float32


def test_a_disc_graded_differently_on_its_two_crops_is_refused(tmp_path: Path) -> None:
    root = write_crops(tmp_path / "crops", [Disc("spider", "3", "L2/L3", {T2: flat(90), T1: flat(30)})])
    annotations = root / ANNOTATIONS_FILE
    lines = annotations.read_text(encoding="utf-8").splitlines()
    pfirrmann = ANNOTATION_COLUMNS.index("pfirrmann_grade")
    cells = lines[1].split(",")
    cells[pfirrmann] = "5"
    annotations.write_text("\n".join([lines[0], ",".join(cells), lines[2]]) + "\n", encoding="utf-8")
    with pytest.raises(TabularDataError, match="graded differently"):
        ClassificationDataset(root, split="all")


def test_class_counts_count_discs_by_hand(tmp_path: Path) -> None:
    table = [  # pfirrmann, modic, herniation, bulging, narrowing, spondylolisthesis, up, low; crops
        (1, 0, 1, 0, 0, 0, 0, 0, (T2, T1)),
        (4, 0, 0, 0, 1, 0, 1, 0, (T2, T1)),
        (4, 2, 0, 0, 1, 0, 0, 0, (T1,)),
        (5, 3, 1, 1, 1, 1, 1, 1, (T2, T1)),
    ]
    names = ("pfirrmann_grade", "modic", "disc_herniation", "disc_bulging", "disc_narrowing", "spondylolisthesis",
             "up_endplate", "low_endplate")
    discs = [Disc("spider", str(n), "L4/L5", {s: flat(80) for s in row[-1]}, dict(zip(names, row[:-1], strict=True)))
             for n, row in enumerate(table)]
    ds = ClassificationDataset(write_crops(tmp_path / "crops", discs), split="all", output_size=(CROP, CROP))
    counts = ds.class_counts()
    assert list(counts) == list(LABELS)
    assert counts["pfirrmann_grade"] == [1, 0, 0, 2, 1]  # grades 1..5; a paired disc counts once
    assert counts["modic"] == [2, 0, 1, 1]
    assert counts["disc_herniation"] == [2, 2] and counts["disc_bulging"] == [3, 1]
    assert counts["disc_narrowing"] == [1, 3] and counts["spondylolisthesis"] == [3, 1]
    assert counts["up_endplate"] == [2, 2] and counts["low_endplate"] == [3, 1]


def test_sample_weights_weigh_each_disc_by_its_rarest_label(tmp_path: Path) -> None:
    table = [  # pfirrmann, modic, herniation, bulging, narrowing, spondylolisthesis, up, low
        (1, 0, 1, 0, 0, 0, 0, 0),  # narrowing 0 is 1 of 4: 4 / (2 * 1) = 2
        (4, 0, 0, 0, 1, 0, 1, 0),  # nothing rare: herniation and up endplate are balanced, 1
        (4, 2, 0, 0, 1, 0, 0, 0),  # modic 2 is 1 of 4 among 3 types seen: 4 / 3
        (5, 3, 1, 1, 1, 1, 1, 1),  # bulging, spondylolisthesis, low endplate positive: 4 / (2 * 1) = 2
    ]
    names = ("pfirrmann_grade", "modic", "disc_herniation", "disc_bulging", "disc_narrowing", "spondylolisthesis",
             "up_endplate", "low_endplate")
    discs = [Disc("spider", str(n), "L4/L5", {T2: flat(80)}, dict(zip(names, row, strict=True)))
             for n, row in enumerate(table)]
    ds = ClassificationDataset(write_crops(tmp_path / "crops", discs), split="all", output_size=(CROP, CROP))
    assert [d.patient[1] for d in ds.discs] == ["0", "1", "2", "3"]
    assert ds.sample_weights() == pytest.approx([2.0, 1.0, 4 / 3, 2.0])
    assert ds.sample_weights(cap=1.5) == pytest.approx([1.5, 1.0, 4 / 3, 1.5])


@pytest.fixture(scope="module")
def landmarks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Disc 0: one landmark at (22, 40) in both crops, dark on T1, bright on T2; disc 1: identical crops; disc 2:
    a bright square in the upper left corner (anterior, superior)."""
    corner = flat(30)
    corner[6:14, 6:14] = 240
    return write_crops(tmp_path_factory.mktemp("landmarks") / "crops", [
        Disc("spider", "1", "L1/L2", {T2: blob(22, 40, 20, 230), T1: blob(22, 40, 110, 180)}),
        Disc("spider", "1", "L2/L3", {T2: blob(40, 25, 60, 200), T1: blob(40, 25, 60, 200)}),
        Disc("spider", "1", "L3/L4", {T2: corner, T1: corner.copy()}),
    ])


def test_one_warp_moves_both_sequences_alike(landmarks: Path) -> None:
    ds = ClassificationDataset(landmarks, split="all", output_size=(CROP, CROP), augment=True)
    still = ClassificationDataset(landmarks, split="all", output_size=(CROP, CROP))
    start = centroid(unnormalized(still[0]["image"])[0])
    assert np.abs(start - (22, 40)).max() < 0.1
    moves = []
    for seed in range(30):
        torch.manual_seed(seed)
        image = unnormalized(ds[0]["image"])
        t2, t1 = centroid(image[0]), centroid(image[1])
        assert np.abs(t2 - t1).max() < 0.5, (seed, t2, t1)
        assert np.allclose(image[0], image[2], atol=1e-5)
        moves.append(float(np.linalg.norm(t2 - start)))
    assert max(moves) > 2.0  # the warp does move the landmark, within its ranges: |sR - I| |p - c| + |shift|
    ranges = CROP_AUGMENTATION
    angle = np.radians(ranges.rotation_degrees)
    reach = np.hypot(ranges.scale[1] * np.cos(angle) - 1, ranges.scale[1] * np.sin(angle))
    shift = ranges.translation_fraction * CROP * np.sqrt(2)
    assert max(moves) < reach * np.linalg.norm(start - (CROP - 1) / 2) + shift + 0.5


def test_each_sequence_gets_its_own_intensity_jitter(landmarks: Path) -> None:
    ds = ClassificationDataset(landmarks, split="all", output_size=(CROP, CROP), augment=True)
    differ = 0
    for seed in range(10):
        torch.manual_seed(seed)
        image = unnormalized(ds[1]["image"])  # identical T2 and T1 crops
        assert np.abs(centroid(image[0]) - centroid(image[1])).max() < 0.5
        differ += int(np.abs(image[0] - image[1]).max() > 0.02)
        assert image.min() >= -1e-5 and image.max() <= 1 + 1e-5
    assert differ >= 8  # one jitter for both would never differ


def test_augmentation_never_flips(landmarks: Path) -> None:
    ds = ClassificationDataset(landmarks, split="all", output_size=(CROP, CROP), augment=True)
    for seed in range(100):
        torch.manual_seed(seed)
        image = unnormalized(ds[2]["image"])
        for channel in image[:2]:
            x, y = centroid(channel)
            assert x < CROP / 2 and y < CROP / 2, (seed, x, y)  # anterior stays left, superior stays up


def test_augmentation_is_deterministic_under_a_torch_seed(landmarks: Path) -> None:
    ds = ClassificationDataset(landmarks, split="all", output_size=(CROP, CROP), augment=True)
    torch.manual_seed(11)
    first = ds[0]["image"]
    torch.manual_seed(11)
    assert torch.equal(first, ds[0]["image"])
    torch.manual_seed(12)
    assert not torch.equal(first, ds[0]["image"])


def test_collator_stacks_items(cohort: Path) -> None:
    ds = ClassificationDataset(cohort, split="all", levels=["L4/L5", "L5/S1"], output_size=(32, 24))
    items = [ds[i] for i in range(3)]
    batch = ClassificationCollator()(items)
    assert batch["image"].shape == (3, 3, 32, 24) and batch["image"].dtype == torch.float32
    assert torch.equal(batch["image"][1], items[1]["image"])
    targets = batch["targets"]
    assert len(targets) == 3 and targets.pfirrmann.dtype == torch.int64 and targets.pfirrmann.shape == (3,)
    assert targets.pfirrmann.tolist() == [HEALTHY["pfirrmann_grade"] - 1] * 3
    assert targets.herniation.shape == (3, 2) and targets.narrowing.shape == (3, 1)
    assert batch["paired"].dtype == torch.bool and batch["paired"].tolist() == [it["paired"] for it in items]
    assert batch["paired"].tolist() == [item["level"] == "L4/L5" for item in items]
    for key in ("patient_id", "source", "level"):
        assert batch[key] == [item[key] for item in items]


def test_a_dataloader_with_the_collator_yields_batches(cohort: Path) -> None:
    ds = ClassificationDataset(cohort, split="all", sources=["spider"], levels=["L3/L4"], output_size=(32, 32))
    batches = list(DataLoader(ds, batch_size=4, collate_fn=ClassificationCollator()))
    assert [b["image"].shape[0] for b in batches] == [4, 2]
    assert [p for b in batches for p in b["patient_id"]] == [str(n) for n in range(1, 7)]
    assert torch.cat([b["targets"].modic for b in batches]).shape == (6,)


def test_an_unreadable_crop_is_left_out_and_its_disc_keeps_the_other_sequence(tmp_path: Path) -> None:
    root = write_crops(tmp_path / "crops", [Disc("spider", "9", "L4/L5", {T2: flat(90), T1: flat(30)})])
    broken = root / "images" / crop_name("spider", "9", T1, "L4/L5")
    broken.write_bytes(b"not a png")
    ds = ClassificationDataset(root, split="all")
    assert [path for path, _ in ds.rejects] == [broken.relative_to(root).as_posix()]
    assert len(ds) == 1 and ds.single_sequence == 1
    (root / "images" / crop_name("spider", "9", T2, "L4/L5")).unlink()  # no readable crop left: the dataset is broken
    with pytest.raises(InputPathError, match="every crop image missing or unreadable"):
        ClassificationDataset(root, split="all")
    with pytest.raises(InputPathError, match=r"annotations\.csv"):
        ClassificationDataset(tmp_path / "elsewhere", split="all")


def test_training_package_exports_the_dataset_lazily() -> None:
    import spine_lib.training as training

    assert training.ClassificationDataset is ClassificationDataset
    assert training.ClassificationCollator is ClassificationCollator
    assert training.construct_3channel is construct_3channel


def test_intensity_jitter_stays_well_below_the_signal_steps_between_grades() -> None:
    from spine_lib.synthetic.phantom import PFIRRMANN_T2
    from spine_lib.training.datasets.ivd_coords import AUGMENTATIONS, jitter_intensity

    steps = np.abs(np.diff([PFIRRMANN_T2[g] for g in sorted(PFIRRMANN_T2)]))
    rng = np.random.default_rng(0)
    grey = np.full((16, 16), 128, np.uint8)
    crop = [abs(float(np.median(jitter_intensity(grey, rng, None, CROP_AUGMENTATION))) - 128 / 255)
            for _ in range(300)]
    localizer = [abs(float(np.median(jitter_intensity(grey, rng, None, AUGMENTATIONS["light"]))) - 128 / 255)
                 for _ in range(300)]
    # never a whole step between neighbouring grades, and nine times in ten under half of the smallest one
    assert max(crop) < steps.min() and float(np.percentile(crop, 90)) < 0.5 * steps.min()
    assert max(localizer) > steps.min()  # the localizer's jitter would not: the bound above can fail
