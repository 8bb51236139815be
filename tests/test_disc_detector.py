"""The level-free disc localizer: its targets, its chain rule and the model's answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spine_lib.errors import ConfigError
from spine_lib.training.models.disc_detector import (
    ConvNextDiscDetector,
    count_up_from_sacrum,
    disc_targets,
    focal_loss,
    offset_loss,
    offset_targets,
    peak_points,
    soft_peak,
)
from spine_lib.training.preprocessing import prepare_batch
from spine_lib.training.registry import ModelRegistry


def lumbar_chain(bottom: tuple[float, float], step: float, bend_deg: float,
                 count: int = 5) -> list[tuple[float, float]]:
    """Points from the bottom upwards, each step ``step`` cells long and turning ``bend_deg`` from the one before."""
    points = [bottom]
    angle = 0.0
    for _ in range(count - 1):
        x, y = points[-1]
        points.append((x + step * math.sin(math.radians(angle)), y - step * math.cos(math.radians(angle))))
        angle += bend_deg
    return points


def test_the_chain_is_counted_up_from_the_anchor_past_distractors() -> None:
    truth = lumbar_chain((30.0, 48.0), 7.0, -8.0)
    thoracic = lumbar_chain(truth[-1], 6.0, -3.0, count=4)[1:]  # more discs above L1/L2
    sacral = [(29.0, 54.0)]  # a peak below the anchor (a fused sacral segment)
    beside = [(12.0, 30.0), (50.0, 20.0)]  # off the spine
    peaks = [(x, y, 0.9) for x, y in truth + thoracic + sacral + beside]
    chain, guessed = count_up_from_sacrum((30.6, 48.4), peaks, 5, height=56)
    assert guessed == []
    assert chain == truth  # bottom first: L5/S1 .. L1/L2, snapped onto the peaks


def test_a_second_maximum_of_the_lumbosacral_disc_is_no_step() -> None:
    """A long L5/S1 disc shows two maxima a cell or two apart: the chain's first step skips the second one."""
    truth = lumbar_chain((30.0, 48.0), 7.0, -6.0)
    peaks = [(x, y, 0.9) for x, y in truth] + [(29.6, 46.4, 0.7)]
    chain, guessed = count_up_from_sacrum(truth[0], peaks, 5, height=56)
    assert guessed == [] and chain == truth
    scores = torch.zeros(16, 16)
    scores[8, 6], scores[8, 8] = 0.9, 0.8  # two maxima of one disc
    assert len(peak_points(scores)) == 1 and len(peak_points(scores, window=3)) == 2


def test_a_missing_disc_is_extrapolated_and_the_chain_goes_on() -> None:
    truth = lumbar_chain((30.0, 50.0), 8.0, -5.0)
    peaks = [(x, y, 0.9) for i, (x, y) in enumerate(truth) if i != 2]  # L3/L4 not found
    chain, guessed = count_up_from_sacrum(truth[0], peaks, 5, height=56)
    assert guessed == [2]  # the chain's third point, L3/L4
    assert math.dist(chain[2], truth[2]) < 1.0  # where the step before points
    assert chain[3:] == truth[3:]  # and the discs above it are found again


def test_a_rotated_spine_is_followed() -> None:
    truth = lumbar_chain((20.0, 50.0), 7.0, 0.0)
    angle = math.radians(25)  # the whole spine tilted
    cx, cy = truth[0]
    tilted = [(cx + (x - cx) * math.cos(angle) - (y - cy) * math.sin(angle),
               cy + (x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)) for x, y in truth]
    chain, guessed = count_up_from_sacrum(tilted[0], [(x, y, 0.8) for x, y in tilted], 5, height=56)
    assert guessed == []
    assert all(math.dist(a, b) < 1e-9 for a, b in zip(chain, tilted, strict=True))


def test_disc_targets_teach_nothing_past_the_top_labelled_level() -> None:
    height = width = 32
    cells = [(16.0, 6.0), (16.0, 11.0), (16.0, 16.0), (16.0, 21.0), (16.0, 26.0)]  # L1/L2 (top) .. L5/S1
    targets = torch.tensor([[[x / width, y / height] for x, y in cells]])
    levels = torch.arange(5)[None]
    heat, taught = disc_targets(targets, levels, height, width, num_levels=5)
    for x, y in cells:
        assert float(heat[0, int(y), int(x)]) > 0.6  # a peak at every point
    assert float(heat[0, 16, 2]) < 1e-6
    assert bool(taught[0, 30, 16])  # below L5/S1: taught (no disc there)
    assert not bool(taught[0, 1, 16])  # more than half a step past the top labelled level: not taught
    assert bool(taught[0, 4, 16])  # within half a step of it: taught
    # without L5/S1 the bottom end is left open too
    partial = targets.clone()
    partial[0, 4] = float("nan")
    _, taught = disc_targets(partial, levels, height, width, num_levels=5)
    assert not bool(taught[0, 30, 16]) and bool(taught[0, 22, 16])


def test_focal_loss_is_low_for_the_right_heatmap() -> None:
    height = width = 32
    targets = torch.tensor([[[0.5, 0.3], [0.5, 0.5], [0.5, 0.7]]])
    levels = torch.tensor([[2, 3, 4]])
    heat, taught = disc_targets(targets, levels, height, width, num_levels=5)
    right = torch.logit(heat.clamp(1e-3, 1 - 1e-3))
    wrong = torch.logit(heat.roll(6, dims=2).clamp(1e-3, 1 - 1e-3))
    assert float(focal_loss(right, heat, taught)) < 0.2 * float(focal_loss(wrong, heat, taught))


def test_peaks_are_refined_between_cells() -> None:
    scores = torch.zeros(16, 16)
    scores[5, 7], scores[5, 8] = 0.9, 0.9 * 0.6  # a peak leaning right
    scores[12, 3] = 0.1  # below the threshold
    (x, y, score), = peak_points(scores)
    assert 7.5 < x < 8.5 and y == pytest.approx(5.5) and score == pytest.approx(0.9)
    logits = torch.full((16, 16), -10.0)
    logits[9, 4] = 5.0
    assert soft_peak(logits) == pytest.approx((4.5, 9.5), abs=1e-3)


def test_offsets_are_taught_around_each_point_towards_the_nearest_one() -> None:
    height = width = 16
    cells = [(5.3, 4.8), (5.6, 6.9)]  # two points close enough for their neighbourhoods to meet
    targets = torch.tensor([[[x / width, y / height] for x, y in cells], [[float("nan")] * 2] * 2])
    offsets, taught = offset_targets(targets, height, width)
    assert offsets[0, :, 4, 5].tolist() == pytest.approx([-0.2, 0.3], abs=1e-5)  # the cell holding the point
    assert offsets[0, :, 4, 6].tolist() == pytest.approx([-1.2, 0.3], abs=1e-5)  # a neighbour of it
    assert offsets[0, :, 6, 5].tolist() == pytest.approx([0.1, 0.4], abs=1e-5)  # the second point's own cell
    assert offsets[0, :, 5, 5].tolist() == pytest.approx([-0.2, -0.7], abs=1e-5)  # nearer to the first one
    assert int(taught[0].sum()) == 9 + 9 - 3 and not bool(taught[1].any())  # a row shared; no point: nothing
    assert float(offset_loss(offsets, offsets, taught)) == 0.0
    shifted = offsets.clone()
    shifted[:, 0] += 0.5
    assert float(offset_loss(shifted, offsets, taught)) == pytest.approx(0.5)
    assert float(offset_loss(offsets, offsets, torch.zeros_like(taught))) == 0.0


def test_a_peak_is_placed_by_its_predicted_offset() -> None:
    scores = torch.zeros(16, 16)
    scores[5, 7], scores[5, 8] = 0.9, 0.9 * 0.6  # leaning right: the centroid would put it at x ~ 7.9
    offsets = torch.zeros(2, 16, 16)
    offsets[:, 5, 7] = torch.tensor([-0.3, 0.4])
    (x, y, _), = peak_points(scores, offsets=offsets)
    assert (x, y) == pytest.approx((7.2, 5.9))
    offsets[:, 5, 7] = torch.tensor([9.0, -9.0])  # beyond what is taught: clamped to the neighbourhood
    (x, y, _), = peak_points(scores, offsets=offsets)
    assert (x, y) == pytest.approx((9.0, 4.0))


def test_the_offset_head_is_trained_and_kept_by_its_checkpoint(tmp_path: Path) -> None:
    """Points off their cells' centres: the offsets learn where in the cell they lie, and a checkpoint rebuilds the
    model with its offset head (one saved without the argument, before it existed, without it)."""
    from spine_lib.training.checkpoints import model_from_checkpoint

    torch.manual_seed(0)
    size = 64
    image = torch.zeros(1, 3, size, size)
    centres = [(33.1, 14.6), (31.7, 24.3), (30.9, 34.2), (31.6, 43.7), (33.3, 53.6)]  # L1/L2 .. L5/S1, pixels
    for x, y in centres:
        image[..., round(y) - 1:round(y) + 2, round(x) - 6:round(x) + 6] = 1.0
    targets = torch.tensor([[[x / size, y / size] for x, y in centres]])
    model = ConvNextDiscDetector(variant="atto", offset_head=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(80):
        loss = model.get_loss(model(image, torch.arange(5)[None]), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model.heatmaps(image)
    offsets, taught = offset_targets(targets, size // 4, size // 4)
    assert logits.shape == (1, 4, 16, 16)
    assert float(offset_loss(logits[:, 2:4], offsets, taught)) < 0.25  # cells (4 px): the offsets were learnt
    torch.save({"model_name": "convnext_disc_detector", "model_kwargs": model.architecture_kwargs(),
                "model_state_dict": model.state_dict()}, tmp_path / "offsets.pt")
    rebuilt, _ = model_from_checkpoint(tmp_path / "offsets.pt")
    assert isinstance(rebuilt, ConvNextDiscDetector) and rebuilt.decoder.offset is not None
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(image), model(image))
    old = ConvNextDiscDetector(variant="atto")
    kwargs = {k: v for k, v in old.architecture_kwargs().items() if k != "offset_head"}
    torch.save({"model_name": "convnext_disc_detector", "model_kwargs": kwargs,
                "model_state_dict": old.state_dict()}, tmp_path / "old.pt")
    rebuilt, _ = model_from_checkpoint(tmp_path / "old.pt")
    assert isinstance(rebuilt, ConvNextDiscDetector) and rebuilt.decoder.offset is None


def test_the_model_answers_like_the_level_conditioned_ones() -> None:
    model = ModelRegistry.create("disc_detector", variant="atto")
    assert isinstance(model, ConvNextDiscDetector)
    images = torch.randn(2, 3, 64, 64)
    grouped = model(images, torch.arange(5).repeat(2, 1))
    single = model(images, torch.tensor([4, 0]))
    assert grouped.shape == (2, 5, 2) and single.shape == (2, 2)
    assert torch.equal(single[0], grouped[0, 4]) and torch.equal(single[1], grouped[1, 0])
    assert model.last_logits is not None and model.last_logits.shape == (2, 2, 16, 16)  # stride 4
    with pytest.raises(ConfigError):
        model(images, torch.tensor([5, 0]))
    arrays = [images[0, 0].numpy(), images[1, 0].numpy()]
    files = model.test_inference(arrays, image_size=(64, 64), level_indices=[4, 0])  # one level per image
    direct = model(prepare_batch(arrays, (64, 64))[0], None)  # every level of both, one pass per image
    assert files["level_indices"] == [4, 0]
    assert torch.equal(files["predictions"], torch.stack([direct[0, 4], direct[1, 0]]))
    every = model.test_inference([images[0, 0].numpy()], image_size=(64, 64))
    assert every["predictions"].shape == (5, 2) and every["level_indices"] == [0, 1, 2, 3, 4]
    rebuilt = ModelRegistry.create("convnext_disc_detector", **model.architecture_kwargs())
    assert rebuilt.architecture_kwargs() == model.architecture_kwargs()


def test_a_few_steps_teach_the_model_where_bright_discs_are() -> None:
    """Bright bands on a dark column: after a short training the chain lands on them, counted from the bottom."""
    torch.manual_seed(0)
    size = 64
    image = torch.zeros(1, 3, size, size)
    rows = [14, 24, 34, 44, 54]  # L1/L2 .. L5/S1, top to bottom
    for row in rows:
        image[..., row - 1:row + 2, 26:38] = 1.0
    image[..., 58:, 22:42] = 0.5  # the sacrum below L5/S1
    targets = torch.tensor([[[32 / size, (row + 0.5) / size] for row in rows]])
    levels = torch.arange(5)[None]
    model = ConvNextDiscDetector(variant="atto")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    losses: list[float] = []
    for _ in range(60):
        loss = model.get_loss(model(image, levels), targets)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        points = model(image, levels)[0] * size
    assert losses[-1] < 0.2 * losses[0]
    errors = torch.linalg.vector_norm(points - targets[0] * size, dim=1)
    assert float(errors.max()) < 3.0, points


def drawn_heatmaps(size: int, rows: list[int], missing: int) -> torch.Tensor:
    """``(1, 2, h, w)`` logits at stride 4: a peak at each disc row (column 8) but ``rows[missing]``, the anchor at
    the last row."""
    cells = size // 4
    logits = torch.full((1, 2, cells, cells), -8.0)
    for i, row in enumerate(rows):
        if i != missing:
            logits[0, 0, row, 8] = 4.0
    logits[0, 1, rows[-1], 8] = 8.0
    return logits


def test_a_disc_the_model_did_not_see_is_named_by_inference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four discs seen, L3/L4 not: the localizer and ``spine-vision test`` say L3/L4's point was extrapolated."""
    from spine_lib.inference.localization import DiscLocalizer
    from spine_lib.training.config import ModelTestConfig
    from spine_lib.training.inference import run_model_test

    size, rows = 64, [3, 5, 7, 9, 11]  # L1/L2 .. L5/S1 in cells, 8 px apart
    model = ConvNextDiscDetector(variant="atto")
    torch.save({"model_name": "convnext_disc_detector", "model_kwargs": model.architecture_kwargs(),
                "model_state_dict": model.state_dict(), "config": {"image_size": [size, size]}}, tmp_path / "m.pt")
    monkeypatch.setattr(ConvNextDiscDetector, "heatmaps", lambda self, x: drawn_heatmaps(size, rows, missing=2))
    localizer = DiscLocalizer(tmp_path / "m.pt", device="cpu")
    points = localizer.predict_slice(np.zeros((size, size), dtype=np.float32))
    assert localizer.last_guessed == ["L3/L4"]
    assert points["L3/L4"] == pytest.approx((8.5 * 4, 7.5 * 4), abs=0.5)  # halfway, where the chain points
    assert points["L1/L2"] == pytest.approx((8.5 * 4, 3.5 * 4), abs=0.5)  # and the chain goes on above it
    image = tmp_path / "slice.png"
    Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(image)
    result = run_model_test(ModelTestConfig(model_path=tmp_path / "m.pt", inputs=[image], device="cpu"))
    assert [(r["level"], r["extrapolated"]) for r in result["predictions"]] == [
        ("L1/L2", False), ("L2/L3", False), ("L3/L4", True), ("L4/L5", False), ("L5/S1", False)]
