"""Training framework pieces: registries, heads, metrics, level embedding, offline pretrained weights, checkpoints."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spine_lib.core.device import DeviceChoice
from spine_lib.errors import ConfigError, InputPathError
from spine_lib.training.checkpoints import (
    CheckpointError,
    load_model_state,
    model_from_checkpoint,
    read_checkpoint,
)
from spine_lib.training.config import CONVNEXT_VARIANTS, HeadConfig, HeadType, LocalizationConfig
from spine_lib.training.heads import BaseHead, HeadFactory, MultiTaskHead, create_head
from spine_lib.training.metrics import LocalizationMetrics
from spine_lib.training.models import ConvNextLocalization, VisionTransformerLocalization, soft_argmax
from spine_lib.training.models.disc_detector import ConvNextDiscDetector
from spine_lib.training.models.localization import HEATMAP_SIGMA, heatmap_loss
from spine_lib.training.pretrained import PretrainedWeightsError
from spine_lib.training.registry import (
    MetricsRegistry,
    ModelRegistry,
    TrainerRegistry,
    register_model,
)
from spine_lib.training.trainer import epochs_within, room_for_another_epoch
from spine_lib.training.trainers.localization import LocalizationTrainer

REPO = Path(__file__).resolve().parents[1]


def test_configs_import_without_torch() -> None:
    code = ("import sys\nfrom spine_lib.training.config import LocalizationConfig\nimport spine_lib.training\n"
            "import spine_lib.cli\nprint(sorted(m for m in ('torch', 'timm', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_registries_list_and_create_builtin_components() -> None:
    assert ModelRegistry.list_models(task="localization") == ["convnext_disc_detector", "convnext_localization",
                                                              "vit_localization"]
    assert "localization" in TrainerRegistry.list_trainers()
    assert MetricsRegistry.list_metrics(task="localization") == ["localization"]
    model = ModelRegistry.create("convnext", variant="atto")  # alias
    assert isinstance(model, ConvNextLocalization) and model.variant == "atto"
    config = LocalizationConfig(model_variant="atto")  # the default model: the level-free detector
    detector = ModelRegistry.create_from_config(config)
    assert isinstance(detector, ConvNextDiscDetector) and detector.decoder.offset is None
    config = LocalizationConfig(model_variant="atto", model_name="convnext_disc_detector", offset_head=True)
    detector = ModelRegistry.create_from_config(config)
    assert detector.decoder.offset is not None and detector.architecture_kwargs()["offset_head"] is True
    config = LocalizationConfig(model_variant="atto", model_name="convnext_localization")
    assert isinstance(ModelRegistry.create_from_config(config), ConvNextLocalization)
    assert TrainerRegistry.get("localization").cls is LocalizationTrainer
    assert TrainerRegistry.config_class("localization") is LocalizationConfig
    assert isinstance(MetricsRegistry.create("localization"), LocalizationMetrics)


def test_registry_rejects_unknown_and_duplicate_names() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        ModelRegistry.create("no_such_model")

    @register_model("throwaway_model", task="testing", aliases=["throwaway"])
    class Throwaway(torch.nn.Module):
        pass

    try:
        assert ModelRegistry.list_models(task="testing") == ["throwaway_model"]
        assert isinstance(ModelRegistry.create("throwaway"), Throwaway)
        with pytest.raises(ConfigError, match="already registered"):
            register_model("throwaway", task="testing")(type("Other", (torch.nn.Module,), {}))
    finally:
        ModelRegistry.unregister("throwaway_model")
    assert "throwaway_model" not in ModelRegistry.list_models()


def test_trainer_registry_checks_the_config_class() -> None:
    from spine_lib.training.config import TrainingConfig

    with pytest.raises(ConfigError, match="needs a LocalizationConfig"):
        TrainerRegistry.create_from_config(TrainingConfig(task="localization"))


@pytest.mark.parametrize("head_type", ["mlp", "linear", "attention", "residual", "conv"])
def test_every_head_maps_features_to_outputs_and_learns(head_type: HeadType) -> None:
    torch.manual_seed(0)
    head = create_head(HeadConfig(head_type=head_type, hidden_dims=[32], dropout=0.0), in_features=16, out_features=3)
    x = torch.randn(64, 16)
    target = x[:, :3] * 0.5 + 0.1  # a function any head can fit
    assert head(x).shape == (64, 3)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    head.train()
    first = torch.nn.functional.mse_loss(head(x), target).item()
    loss = torch.tensor(first)
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(head(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_head_output_activation_and_custom_registration() -> None:
    head = create_head(HeadConfig(head_type="mlp", output_activation="sigmoid"), 8, 2)
    out = head(torch.randn(5, 8) * 100)
    assert bool(((out >= 0) & (out <= 1)).all())

    @HeadFactory.register("doubling")
    class Doubling(BaseHead):
        def __init__(self, in_features: int, out_features: int, **_: object) -> None:
            super().__init__(in_features, out_features)

        def body(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * x[:, : self.out_features]

    assert "doubling" in HeadFactory.available()
    assert torch.equal(HeadFactory.create("doubling", 4, 2)(torch.ones(1, 4)), torch.full((1, 2), 2.0))
    with pytest.raises(ConfigError, match="unknown head type"):
        HeadFactory.create("nope", 4, 2)
    multi = MultiTaskHead(8, {"grade": 5, "modic": 4})
    outputs = multi(torch.randn(3, 8))
    assert outputs["grade"].shape == (3, 5) and outputs["modic"].shape == (3, 4)


def test_soft_argmax_finds_the_peak() -> None:
    logits = torch.full((1, 1, 10, 20), -50.0)
    logits[0, 0, 7, 3] = 50.0  # row 7, column 3
    xy = soft_argmax(logits)[0]
    assert xy.tolist() == pytest.approx([(3 + 0.5) / 20, (7 + 0.5) / 10], abs=1e-5)


def test_heatmap_loss_is_zero_at_the_target_gaussian_and_pulls_mass_to_it() -> None:
    targets = torch.tensor([[0.3, 0.6], [0.71, 0.2]])
    height, width = 12, 16
    ys, xs = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    cx, cy = targets[:, 0] * width - 0.5, targets[:, 1] * height - 0.5
    gaussian = -((xs - cx[:, None, None]) ** 2 + (ys - cy[:, None, None]) ** 2) / (2 * HEATMAP_SIGMA**2)
    assert heatmap_loss(gaussian[:, None], targets).item() == pytest.approx(0.0, abs=1e-5)
    flat = torch.zeros(2, 1, height, width, requires_grad=True)
    loss = heatmap_loss(flat, targets)
    assert loss.item() > 1.0
    loss.backward()
    assert flat.grad is not None
    # descending the gradient raises the logit at the target cell more than anywhere else
    step = -flat.grad[0, 0]
    assert divmod(int(step.argmax()), width) == (int(0.6 * height), int(0.3 * width))


def test_heatmap_loss_weight_adds_to_the_coordinate_loss() -> None:
    torch.manual_seed(0)
    model = ConvNextLocalization("atto").train()
    images, levels = torch.randn(2, 3, 64, 64), torch.tensor([0, 3])
    targets = torch.tensor([[0.4, 0.5], [0.6, 0.3]])
    predictions = model(images, levels)
    plain = model.get_loss(predictions, targets)
    combined = model.get_loss(predictions, targets, heatmap_weight=0.5)
    extra = heatmap_loss(model.head.last_logits, targets)  # type: ignore[union-attr, arg-type]
    assert extra.item() > 0.3  # a fresh head's heatmap is far from a 1.5-cell Gaussian
    assert combined.item() == pytest.approx(plain.item() + 0.5 * extra.item(), rel=1e-5)
    model.eval()
    model(images, levels)
    assert model.head.last_logits is None  # nothing kept at inference


def test_level_embedding_changes_the_prediction() -> None:
    torch.manual_seed(0)
    model = ConvNextLocalization("atto").eval()
    torch.nn.init.normal_(model.head.film.weight, std=0.5)  # type: ignore[union-attr, arg-type]
    image = torch.randn(1, 3, 64, 64).repeat(2, 1, 1, 1)
    out = model(image, torch.tensor([0, 4]))
    assert out.shape == (2, 2) and not torch.allclose(out[0], out[1])
    with pytest.raises(ConfigError, match="level_idx"):
        model(image)
    plain = ConvNextLocalization("atto", use_level_embedding=False).eval()
    assert plain(image).shape == (2, 2)


@pytest.mark.parametrize("head_type", ["heatmap", "mlp"])
def test_all_levels_in_one_pass_equal_one_level_at_a_time(head_type: HeadType) -> None:
    torch.manual_seed(1)
    model = ConvNextLocalization("atto", head_config={"head_type": head_type}).eval()
    if head_type == "heatmap":
        torch.nn.init.normal_(model.head.film.weight, std=0.5)  # type: ignore[union-attr, arg-type]
    images = torch.randn(2, 3, 64, 64)
    levels = torch.tensor([[0, 2, 4], [1, 2, 3]])
    with torch.no_grad():
        grouped = model(images, levels)
        single = model(images.repeat_interleave(3, dim=0), levels.reshape(-1)).view(2, 3, 2)
    assert grouped.shape == (2, 3, 2)
    assert torch.allclose(grouped, single, atol=1e-5)
    assert not torch.allclose(grouped[0, 0], grouped[0, 2])  # the levels differ
    with pytest.raises(ConfigError, match="rows of levels"):
        model(images, levels[:1])


def test_loss_ignores_the_levels_an_image_lacks() -> None:
    model = ConvNextLocalization("atto", loss_type="mse")
    predictions = torch.tensor([[[0.5, 0.5], [0.2, 0.3]], [[0.1, 0.1], [0.9, 0.8]]])
    nan = float("nan")
    targets = torch.tensor([[[0.5, 0.7], [nan, nan]], [[0.1, 0.4], [0.9, 0.8]]])
    expected = ((0.7 - 0.5) ** 2 + (0.4 - 0.1) ** 2) / 6  # 3 present points, 2 coordinates each
    assert float(model.get_loss(predictions, targets)) == pytest.approx(expected, rel=1e-5)


def test_convnext_variants_map_to_timm_and_vit_builds() -> None:
    import timm

    assert all(timm.is_model(name) for name in CONVNEXT_VARIANTS.values())
    assert {"tiny", "small", "base", "large", "xlarge", "v2_tiny", "v2_huge", "atto"} <= set(CONVNEXT_VARIANTS)
    with pytest.raises(ConfigError, match="unknown ConvNeXt variant"):
        ConvNextLocalization("gigantic")
    vit = VisionTransformerLocalization("tiny", image_size=(64, 64)).eval()
    assert vit(torch.randn(2, 3, 64, 64), torch.tensor([1, 2])).shape == (2, 2)


def test_localization_metrics_against_hand_computed_errors() -> None:
    targets = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.2], [0.9, 0.1]])
    predictions = targets + np.array([[0.0, 0.0], [0.03, 0.045], [0.08, 0.0], [0.0, 0.2]])  # 0, .054, .08, .2
    result = LocalizationMetrics(image_size=(100, 200)).compute(predictions, targets, [0, 0, 3, 4])
    m = result.metrics
    assert m["pck@0.02"] == 0.25 and m["pck@0.10"] == 0.75
    assert m["pck@0.05"] == 0.25
    pixels = [0.0, math.hypot(0.03 * 200, 0.045 * 100), 0.08 * 200, 0.2 * 100]
    assert m["mean_error_px"] == pytest.approx(np.mean(pixels))
    assert m["within_5px"] == 0.25  # errors 0, 7.5, 16, 20 px
    assert set(result.per_group) == {"L1/L2", "L4/L5", "L5/S1"}
    assert result.per_group["L4/L5"]["mean_error_px"] == pytest.approx(16.0)
    assert result.flat()["L1/L2/count"] == 2


def test_mean_position_baseline_is_per_level() -> None:
    train = np.array([[0.1, 0.1], [0.3, 0.3], [0.8, 0.9]])
    baseline = LocalizationMetrics.mean_position_baseline(train, np.zeros((2, 2)), [0, 0, 1], [1, 0])
    np.testing.assert_allclose(baseline, [[0.8, 0.9], [0.2, 0.2]])


# --- pretrained weights, offline -----------------------------------------------------------------------------
def _reference_weights(path: Path) -> dict[str, torch.Tensor]:
    import timm

    torch.manual_seed(123)
    state = timm.create_model("convnext_atto", pretrained=False).state_dict()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return state


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_from_a_local_file(tmp_path: Path, suffix: str) -> None:
    state = _reference_weights(tmp_path / f"weights{suffix}")
    torch.manual_seed(0)  # a different init than the reference weights
    model = ConvNextLocalization("atto", pretrained=True, weights_file=tmp_path / f"weights{suffix}")
    loaded = model.backbone.state_dict()
    assert torch.equal(loaded["stem_0.weight"], state["stem.0.weight"])
    assert torch.equal(loaded["stages_3.blocks.1.mlp.fc2.weight"], state["stages.3.blocks.1.mlp.fc2.weight"])


def test_pretrained_from_the_local_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = tmp_path / "hub/models--timm--convnext_atto.d2_in1k/snapshots/0123abcd"
    snapshot.mkdir(parents=True)
    (tmp_path / "hub/models--timm--convnext_atto.d2_in1k/refs").mkdir()
    (tmp_path / "hub/models--timm--convnext_atto.d2_in1k/refs/main").write_text("0123abcd")
    state = _reference_weights(snapshot / "model.safetensors")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = ConvNextLocalization("atto", pretrained=True)
    assert torch.equal(model.backbone.state_dict()["stem_0.weight"], state["stem.0.weight"])


def test_pretrained_without_weights_fails_at_once_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(PretrainedWeightsError) as error:
        ConvNextLocalization("atto", pretrained=True)
    assert "huggingface-cli download timm/convnext_atto.d2_in1k" in str(error.value)
    assert "--weights-file" in str(error.value)
    with pytest.raises(InputPathError, match="does not exist"):
        ConvNextLocalization("atto", pretrained=True, weights_file=tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(PretrainedWeightsError, match=r"junk\.pth"):
        ConvNextLocalization("atto", pretrained=True, weights_file=tmp_path / "junk.pth")


# --- checkpoints -------------------------------------------------------------------------------------------------
def _checkpoint(model: ConvNextLocalization, path: Path) -> Path:
    torch.save({"model_name": model.registry_name, "model_kwargs": model.architecture_kwargs(),
                "model_state_dict": model.state_dict()}, path)
    return path


def test_checkpoint_rebuilds_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = ConvNextLocalization("atto", head_config=HeadConfig(head_type="residual", hidden_dims=[48])).eval()
    path = _checkpoint(model, tmp_path / "best_model.pt")
    rebuilt, payload = model_from_checkpoint(path)
    rebuilt.eval()
    x, levels = torch.randn(2, 3, 64, 64), torch.tensor([0, 3])
    assert payload["model_kwargs"]["head_config"]["hidden_dims"] == [48]
    assert torch.equal(model(x, levels), rebuilt(x, levels))


def test_corrupt_or_foreign_checkpoints_raise_clear_errors(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    good = _checkpoint(ConvNextLocalization("atto"), tmp_path / "good.pt")
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt: not a PyTorch checkpoint \(truncated"):
        read_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match=r"other\.pt: not a spine-vision checkpoint"):
        read_checkpoint(other)
    femto = ConvNextLocalization("femto")
    with pytest.raises(CheckpointError, match=r"good\.pt: checkpoint of model variant atto, expected femto$"):
        load_model_state(femto, read_checkpoint(good), good)


# --- trainer machinery without data on disk ------------------------------------------------------------------------
class _Items(torch.utils.data.Dataset):
    def __init__(self, count: int = 4, size: int = 32) -> None:
        self.images = torch.randn(count, 3, size, size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index], "coords": torch.tensor([0.5, 0.5]), "level_idx": torch.tensor(index % 5)}


def _trainer(tmp_path: Path, device: DeviceChoice | None = None, **overrides: object) -> LocalizationTrainer:
    config = LocalizationConfig.model_validate({"data_path": tmp_path, "weights_path": tmp_path / "w",
                                                "model_variant": "atto", "device": "cpu", "num_epochs": 10,
                                                "learning_rate": 1e-3, "image_size": (32, 32), **overrides})
    return LocalizationTrainer(config, datasets=(_Items(), _Items()), device_choice=device)


def test_mixed_precision_stays_off_on_the_cpu(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, DeviceChoice("cpu", True, "forced for the test"))
    assert trainer.accelerator.mixed_precision == "no"
    assert trainer.accelerator.device.type == "cpu"
    assert trainer.output_path == tmp_path / "w/localization" / trainer.run_id


def test_time_limit_lets_no_epoch_end_past_it() -> None:
    assert room_for_another_epoch(0.0, 0, 60.0)  # the first epoch always runs
    assert room_for_another_epoch(40.0, 2, 60.0)  # 20 s per epoch: the third ends at 60 s
    assert not room_for_another_epoch(41.0, 2, 60.0)  # ... at 61.5 s
    assert not room_for_another_epoch(70.0, 1, 60.0)


def test_a_time_limited_cosine_schedule_spans_the_epochs_that_fit(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """10 s an epoch (a clock the epochs advance) under a 1-minute limit: 6 of the 50 epochs run, and the cosine
    decays over those 6, not over 50 (where the run would stop at ~95 % of the peak rate)."""
    import types

    from spine_lib.training import trainer as trainer_module

    clock = [0.0]
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    trainer = _trainer(tmp_path, num_epochs=50, max_train_minutes=1.0, min_lr=1e-6, early_stopping=False)
    plain_epoch = trainer.train_epoch

    def ten_seconds(epoch: int) -> tuple[float, int]:
        clock[0] += 10.0
        return plain_epoch(epoch)

    monkeypatch.setattr(trainer, "train_epoch", ten_seconds)
    result = trainer.train()
    assert result.epochs_run == 6 and trainer.schedule_epochs == 6
    expected = [1e-6 + (1e-3 - 1e-6) * 0.5 * (1 + math.cos(math.pi * e / 6)) for e in range(6)]
    np.testing.assert_allclose(trainer.history["lr"], expected, rtol=1e-6)
    assert epochs_within(0.0, 0, 60.0, num_epochs=50) == 50  # nothing measured yet: the configured epochs
    assert epochs_within(70.0, 1, 60.0, num_epochs=50) == 1  # an epoch longer than the limit: the one done


@pytest.mark.parametrize("kind", ["cosine", "step", "plateau", "none"])
def test_learning_rate_schedules(tmp_path: Path, kind: str) -> None:
    trainer = _trainer(tmp_path, scheduler_type=kind, step_size=3, gamma=0.5, patience=4, min_lr=1e-6)
    rates = []
    for _ in range(10):
        rates.append(trainer.learning_rate)
        trainer._step_scheduler(1.0)  # a validation score that never improves
    if kind == "cosine":
        expected = [1e-6 + (1e-3 - 1e-6) * 0.5 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
        np.testing.assert_allclose(rates, expected, rtol=1e-6)
    elif kind == "step":
        np.testing.assert_allclose(rates, [1e-3 * 0.5 ** (e // 3) for e in range(10)], rtol=1e-6)
    elif kind == "plateau":  # patience = 4 // 4 = 1: halves after every second epoch without improvement
        assert rates[0] == rates[1] == 1e-3 and rates[-1] < 1e-3 / 4
    else:
        assert rates == [1e-3] * 10
