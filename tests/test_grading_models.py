"""The grading models: ResNet50MTL's six heads, decoding, loss, CSV rows, checkpoints, pretrained weights,
freezing, test inference; ConvNextClassifier; 3-channel inputs. Small backbones (resnet18, convnext atto), 64x64."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spine_lib.errors import ConfigError
from spine_lib.training.checkpoints import model_from_checkpoint, save_checkpoint
from spine_lib.training.config import HeadConfig
from spine_lib.training.grading import GRADING_HEADS, MTLTargets
from spine_lib.training.models.base import BaseModel
from spine_lib.training.models.grading import ConvNextClassifier, MTLPredictions, ResNet50MTL
from spine_lib.training.preprocessing import IMAGENET_MEAN, IMAGENET_STD, prepare_batch, to_model_input
from spine_lib.training.pretrained import PretrainedWeightsError
from spine_lib.training.registry import ModelRegistry

SIZE = 64


@pytest.fixture(scope="module")
def mtl() -> ResNet50MTL:
    torch.manual_seed(0)
    return ResNet50MTL(backbone="resnet18", hidden_dim=16).eval()


def hand_predictions() -> MTLPredictions:
    """Two items whose decoded grades are known from how the logits are built."""
    return MTLPredictions(
        pfirrmann=torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0], [2.0, 1.0, 0.0, -1.0, 0.5]]),  # class 3, class 0
        modic=torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 2.0, 1.5, 0.0]]),  # class 3, class 1
        herniation=torch.tensor([[2.0, -3.0], [-1.0, 0.5]]),
        endplate=torch.tensor([[0.0, 1.0], [-0.2, -4.0]]),  # logit 0 -> probability 0.5 -> 0
        spondylolisthesis=torch.tensor([[-4.0], [3.0]]),
        narrowing=torch.tensor([[0.7], [-0.7]]),
    )


def hand_targets() -> MTLTargets:
    return MTLTargets(
        pfirrmann=torch.tensor([3, 4]), modic=torch.tensor([0, 1]),
        herniation=torch.tensor([[1.0, 0.0], [1.0, 1.0]]), endplate=torch.tensor([[0.0, 1.0], [0.0, 0.0]]),
        spondylolisthesis=torch.tensor([[0.0], [1.0]]), narrowing=torch.tensor([[1.0], [1.0]]),
    )


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def softmax(row: list[float]) -> list[float]:
    total = sum(math.exp(v) for v in row)
    return [math.exp(v) / total for v in row]


def smoothed_ce(logits: torch.Tensor, targets: torch.Tensor, eps: float) -> float:
    """(1 - eps) * CE + eps * mean over classes of -log p, averaged over items."""
    losses = []
    for row, target in zip(logits.tolist(), targets.tolist(), strict=True):
        neg_log_p = [-math.log(p) for p in softmax(row)]
        losses.append((1 - eps) * neg_log_p[target] + eps * sum(neg_log_p) / len(row))
    return sum(losses) / len(losses)


def bce(logits: torch.Tensor, targets: torch.Tensor, pos_weight: list[float] | None = None) -> float:
    """Mean over every output of -(w y log s(x) + (1 - y) log(1 - s(x)))."""
    terms = []
    for row, wanted in zip(logits.tolist(), targets.tolist(), strict=True):
        for k, (x, y) in enumerate(zip(row, wanted, strict=True)):
            w = 1.0 if pos_weight is None else pos_weight[k]
            terms.append(-(w * y * math.log(sigmoid(x)) + (1 - y) * math.log(1 - sigmoid(x))))
    return sum(terms) / len(terms)


# --- heads and decoding -------------------------------------------------------------------------------------------
def test_six_heads_give_their_logits_for_a_batch(mtl: ResNet50MTL) -> None:
    out = mtl(torch.randn(3, 3, SIZE, SIZE))
    assert isinstance(out, MTLPredictions) and len(out) == 3
    assert {name: tuple(t.shape) for name, t in out.as_dict().items()} == {
        "pfirrmann": (3, 5), "modic": (3, 4), "herniation": (3, 2), "endplate": (3, 2),
        "spondylolisthesis": (3, 1), "narrowing": (3, 1),
    }
    names = [f.name for f in fields(MTLPredictions)]
    assert names == [f.name for f in fields(MTLTargets)] == [h.name for h in GRADING_HEADS]


def test_decoding_hand_made_logits() -> None:
    decoded = hand_predictions().decoded()
    assert decoded == {
        "pfirrmann": [4, 1],  # argmax class 3 -> grade 4, class 0 -> grade 1
        "modic": [3, 1],
        "herniation": [[1, 0], [0, 1]],
        "endplate": [[0, 1], [0, 0]],
        "spondylolisthesis": [[0], [1]],
        "narrowing": [[1], [0]],
    }
    probabilities = hand_predictions().probabilities()
    np.testing.assert_allclose(probabilities["pfirrmann"][1].tolist(), softmax([2.0, 1.0, 0.0, -1.0, 0.5]),
                               rtol=1e-6)
    np.testing.assert_allclose(probabilities["herniation"].tolist(),
                               [[sigmoid(2.0), sigmoid(-3.0)], [sigmoid(-1.0), sigmoid(0.5)]], rtol=1e-6)
    assert probabilities["endplate"][0, 0].item() == 0.5


# --- loss ---------------------------------------------------------------------------------------------------------
def test_loss_matches_a_hand_computation(mtl: ResNet50MTL) -> None:
    predictions, targets = hand_predictions(), hand_targets()
    eps = 0.2
    expected = {
        "pfirrmann": smoothed_ce(predictions.pfirrmann, targets.pfirrmann, eps),
        "modic": smoothed_ce(predictions.modic, targets.modic, eps),
        "herniation": bce(predictions.herniation, targets.herniation),
        "endplate": bce(predictions.endplate, targets.endplate),
        "spondylolisthesis": bce(predictions.spondylolisthesis, targets.spondylolisthesis),
        "narrowing": bce(predictions.narrowing, targets.narrowing),
    }
    losses = mtl.head_losses(predictions, targets, label_smoothing=eps)
    assert list(losses) == list(expected)
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(value, rel=1e-5), name
    assert mtl.get_loss(predictions, targets, label_smoothing=eps).item() == pytest.approx(
        sum(expected.values()), rel=1e-5)
    weights = {"pfirrmann": 2.0, "herniation": 0.5, "narrowing": 0.0}
    weighted = sum(weights.get(name, 1.0) * value for name, value in expected.items())
    assert mtl.get_loss(predictions, targets, head_weights=weights, label_smoothing=eps).item() == pytest.approx(
        weighted, rel=1e-5)
    # without smoothing the multiclass loss is the plain cross-entropy -log p(target)
    plain = mtl.head_losses(predictions, targets)["pfirrmann"].item()
    assert plain == pytest.approx(-(math.log(softmax([0, 0, 0, 5.0, 0])[3]) +
                                    math.log(softmax([2.0, 1.0, 0.0, -1.0, 0.5])[4])) / 2, rel=1e-5)


def test_class_weights_and_pos_weight_follow_their_formulas(mtl: ResNet50MTL) -> None:
    predictions, targets = hand_predictions(), hand_targets()
    class_weight = [1.0, 2.0, 3.0, 4.0, 5.0]
    losses = mtl.head_losses(predictions, targets, class_weights={"pfirrmann": class_weight},
                             pos_weights={"herniation": [3.0, 0.5], "narrowing": 2.0})
    # weighted mean: sum_i w[y_i] * -log p_i(y_i) / sum_i w[y_i], targets classes 3 and 4
    nll = [-math.log(softmax([0, 0, 0, 5.0, 0])[3]), -math.log(softmax([2.0, 1.0, 0.0, -1.0, 0.5])[4])]
    assert losses["pfirrmann"].item() == pytest.approx((4.0 * nll[0] + 5.0 * nll[1]) / 9.0, rel=1e-5)
    assert losses["herniation"].item() == pytest.approx(
        bce(predictions.herniation, targets.herniation, [3.0, 0.5]), rel=1e-5)
    assert losses["narrowing"].item() == pytest.approx(bce(predictions.narrowing, targets.narrowing, [2.0]), rel=1e-5)
    unweighted = mtl.head_losses(predictions, targets)
    assert losses["herniation"].item() != pytest.approx(unweighted["herniation"].item())
    assert losses["modic"].item() == unweighted["modic"].item()  # heads not named keep their loss
    with pytest.raises(ConfigError, match="binary"):
        mtl.get_loss(predictions, targets, class_weights={"herniation": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="unknown head"):
        mtl.get_loss(predictions, targets, head_weights={"pfirrman": 1.0})
    with pytest.raises(ConfigError, match="expected 4 values"):
        mtl.get_loss(predictions, targets, class_weights={"modic": [1.0, 2.0]})


# --- CSV ----------------------------------------------------------------------------------------------------------
def test_csv_header_and_row(mtl: ResNet50MTL) -> None:
    header = ResNet50MTL.get_csv_header()
    assert header == [
        "patient_id", "ivd_level", "pfirrmann_grade", "modic", "disc_herniation", "disc_bulging", "up_endplate",
        "low_endplate", "spondylolisthesis", "disc_narrowing",
        "pfirrmann_p1", "pfirrmann_p2", "pfirrmann_p3", "pfirrmann_p4", "pfirrmann_p5",
        "modic_p0", "modic_p1", "modic_p2", "modic_p3",
        "disc_herniation_p", "disc_bulging_p", "up_endplate_p", "low_endplate_p", "spondylolisthesis_p",
        "disc_narrowing_p",
    ]
    predictions = hand_predictions()
    first = mtl.to_csv_row(predictions, patient_id="P001", ivd_level=4)
    assert first[:10] == ["P001", 4, 4, 3, 1, 0, 0, 1, 0, 1]
    row = mtl.to_csv_row(predictions, patient_id="P002", ivd_level=5, index=1)
    assert len(row) == len(header)
    assert row[:10] == ["P002", 5, 1, 1, 0, 1, 0, 0, 1, 0]
    values = dict(zip(header, row, strict=True))
    pfirrmann = [values[f"pfirrmann_p{g}"] for g in range(1, 6)]
    modic = [values[f"modic_p{g}"] for g in range(4)]
    np.testing.assert_allclose(pfirrmann, softmax([2.0, 1.0, 0.0, -1.0, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(modic, softmax([0.0, 2.0, 1.5, 0.0]), rtol=1e-6)
    assert sum(pfirrmann) == pytest.approx(1.0) and sum(modic) == pytest.approx(1.0)
    binary = [values[c] for c in ("disc_herniation_p", "disc_bulging_p", "up_endplate_p", "low_endplate_p",
                                  "spondylolisthesis_p", "disc_narrowing_p")]
    np.testing.assert_allclose(binary, [sigmoid(v) for v in (-1.0, 0.5, -0.2, -4.0, 3.0, -0.7)], rtol=1e-6)
    with pytest.raises(ConfigError):
        mtl.to_csv_row(predictions, "P003", 1, index=2)


# --- checkpoints and pretrained weights ---------------------------------------------------------------------------
def _save(model: BaseModel, path: Path) -> Path:
    return save_checkpoint({"model_name": model.registry_name, "model_kwargs": model.architecture_kwargs(),
                            "model_state_dict": model.state_dict()}, path)


def test_heads_see_where_in_the_crop_unless_the_layout_grid_is_off() -> None:
    from spine_lib.training.models.grading import LAYOUT_CHANNELS

    torch.manual_seed(0)
    x = torch.randn(2, 3, SIZE, SIZE)
    for grid, stage, channels in ((8, -2, 256), (3, -1, 512), (2, 1, 64), (0, -2, 0)):
        model = ResNet50MTL(backbone="resnet18", hidden_dim=8, layout_grid=grid, layout_stage=stage).eval()
        first = next(m for m in model.heads["pfirrmann"].modules() if isinstance(m, torch.nn.Linear))
        assert first.in_features == 512 + LAYOUT_CHANNELS * grid**2  # global features + the grid's cells
        assert (model.layout is None) == (grid == 0)
        if model.layout is not None:  # the 1x1 convolution reads the chosen stage's channels
            assert next(m for m in model.layout if isinstance(m, torch.nn.Conv2d)).in_channels == channels
        assert model(x).pfirrmann.shape == (2, 5)
    with pytest.raises(ConfigError, match="layout_grid"):
        ResNet50MTL(backbone="resnet18", layout_grid=-1)
    with pytest.raises(ConfigError, match="layout_stage"):
        ResNet50MTL(backbone="resnet18", layout_stage=7)


def test_decision_thresholds_shift_the_binary_logits_in_eval_mode_only(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = ResNet50MTL(backbone="resnet18", dropout=0.0, hidden_dim=8).eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    before = model(x).as_dict()
    model.set_decision_thresholds({"spondylolisthesis": 1.5, "low_endplate": -0.5})
    after = model(x)
    assert torch.allclose(after.spondylolisthesis, before["spondylolisthesis"] - 1.5)
    assert torch.allclose(after.endplate[:, 1], before["endplate"][:, 1] + 0.5)
    for name in ("pfirrmann", "modic", "herniation", "narrowing"):
        assert torch.equal(after.as_dict()[name], before[name]), name
    assert torch.equal(after.endplate[:, 0], before["endplate"][:, 0])
    assert model.decision_thresholds()["spondylolisthesis"] == 1.5
    decoded = after.decoded()["spondylolisthesis"]  # positive exactly where the raw logit reaches the threshold
    assert decoded == (before["spondylolisthesis"] >= 1.5).long().tolist()
    rebuilt, _ = model_from_checkpoint(_save(model, tmp_path / "tuned.pt"))
    assert rebuilt.decision_thresholds() == model.decision_thresholds()  # type: ignore[attr-defined]
    model.train()  # training sees the raw logits
    raw = model(x).spondylolisthesis
    model.set_decision_thresholds({"spondylolisthesis": 0.0, "low_endplate": 0.0})
    assert torch.equal(raw, model(x).spondylolisthesis)
    with pytest.raises(ConfigError, match="unknown binary outputs"):
        model.set_decision_thresholds({"pfirrmann": 1.0})


def test_checkpoint_round_trip_reproduces_the_outputs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = ResNet50MTL(backbone="resnet18", dropout=0.1, hidden_dim=24).eval()
    rebuilt, payload = model_from_checkpoint(_save(model, tmp_path / "best_model.pt"))
    assert isinstance(rebuilt, ResNet50MTL)
    assert payload["model_kwargs"] == {"backbone": "resnet18", "dropout": 0.1, "hidden_dim": 24, "layout_grid": 8,
                                     "layout_stage": -2}
    rebuilt.eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    expected, found = model(x).as_dict(), rebuilt(x).as_dict()
    for name in expected:
        assert torch.equal(expected[name], found[name]), name

    torch.manual_seed(2)
    classifier = ConvNextClassifier("atto", num_classes=3, head_config=HeadConfig(head_type="mlp", hidden_dims=[16]))
    classifier.eval()
    rebuilt_classifier, payload = model_from_checkpoint(_save(classifier, tmp_path / "classifier.pt"))
    rebuilt_classifier.eval()
    assert payload["model_kwargs"]["head_config"]["hidden_dims"] == [16]
    assert torch.equal(classifier(x), rebuilt_classifier(x))


def test_pretrained_without_local_weights_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(PretrainedWeightsError, match="--weights-file"):
        ResNet50MTL(backbone="resnet18", pretrained=True)
    with pytest.raises(PretrainedWeightsError, match="--weights-file"):
        ConvNextClassifier("atto", pretrained=True)


@pytest.mark.parametrize("with_classifier", [True, False])
def test_pretrained_from_a_weights_file(tmp_path: Path, with_classifier: bool) -> None:
    import timm

    torch.manual_seed(123)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=1000 if with_classifier else 0)
    state = reference.state_dict()
    torch.save(state, tmp_path / "resnet18.pth")
    torch.manual_seed(0)
    model = ResNet50MTL(backbone="resnet18", pretrained=True, weights_file=tmp_path / "resnet18.pth", hidden_dim=16)
    loaded = model.backbone.state_dict()
    for key in ("conv1.weight", "layer4.1.conv2.weight", "layer2.0.bn1.running_var"):
        assert torch.equal(loaded[key], state[key]), key
    torch.manual_seed(0)
    fresh = ResNet50MTL(backbone="resnet18", hidden_dim=16)
    assert not torch.equal(fresh.backbone.state_dict()["conv1.weight"], state["conv1.weight"])


def test_frozen_backbone_leaves_the_heads_trainable() -> None:
    torch.manual_seed(3)
    model = ResNet50MTL(backbone="resnet18", hidden_dim=16)
    model.freeze_backbone()
    assert model.backbone_frozen
    assert model.layout is not None
    heads = [*model.heads.parameters(), *model.layout.parameters()]  # the layout pooling learns with the heads
    assert all(p.requires_grad for p in heads)
    assert model.count_parameters(trainable_only=True) == sum(p.numel() for p in heads)
    model.get_loss(model(torch.randn(2, 3, SIZE, SIZE)), hand_targets(), label_smoothing=0.1).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in heads)
    model.unfreeze_backbone()
    assert all(p.requires_grad for p in model.parameters())


# --- predict and test_inference -----------------------------------------------------------------------------------
def _channels_image() -> np.ndarray:
    """A 64x64 RGB crop whose three channels differ: a horizontal ramp, a vertical ramp, a constant."""
    ramp = np.linspace(0, 255, SIZE).round().astype(np.uint8)
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image[..., 0] = ramp[None, :]
    image[..., 1] = ramp[:, None]
    image[..., 2] = 200
    return image


def _normalized(image: np.ndarray) -> torch.Tensor:
    """The model input of a 64x64 uint8 image by the ImageNet recipe (no resize needed), built by hand."""
    channels = image.astype(np.float32) / 255.0
    channels = np.repeat(channels[..., None], 3, axis=-1) if channels.ndim == 2 else channels
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(((channels - mean) / std).transpose(2, 0, 1).copy())


def test_predict_decodes_a_batch_and_keeps_the_mode(mtl: ResNet50MTL) -> None:
    batch = torch.randn(2, 3, SIZE, SIZE)
    mtl.train()
    predicted = mtl.predict(batch)
    assert mtl.training
    mtl.eval()
    assert predicted == mtl(batch).decoded()
    assert all(g in range(1, 6) for g in predicted["pfirrmann"]) and len(predicted["narrowing"]) == 2


def test_test_inference_on_png_files_and_arrays(mtl: ResNet50MTL, tmp_path: Path) -> None:
    rgb = _channels_image()
    grey = rgb[..., 0].T.copy()
    Image.fromarray(rgb).save(tmp_path / "crop.png")
    Image.fromarray(grey).save(tmp_path / "grey.png")
    from_files = mtl.test_inference([tmp_path / "crop.png", tmp_path / "grey.png"], image_size=(SIZE, SIZE))
    from_arrays = mtl.test_inference([rgb, grey], image_size=(SIZE, SIZE))
    assert from_files["original_sizes"] == [(SIZE, SIZE), (SIZE, SIZE)]
    assert from_files["inference_time_ms"] > 0
    expected = mtl(torch.stack([_normalized(rgb), _normalized(grey)]))
    assert from_files["predictions"] == from_arrays["predictions"] == expected.decoded()
    for name, probabilities in expected.probabilities().items():
        np.testing.assert_allclose(from_files["probabilities"][name], probabilities.tolist(), atol=1e-5)
        np.testing.assert_allclose(from_arrays["probabilities"][name], probabilities.tolist(), atol=1e-5)
    assert all(sum(p) == pytest.approx(1.0, abs=1e-5) for p in from_files["probabilities"]["pfirrmann"])


def test_three_channel_inputs_keep_their_channels(tmp_path: Path) -> None:
    constant = np.empty((8, 8, 3), dtype=np.uint8)
    constant[...] = (10, 128, 250)
    tensor = to_model_input(constant, (4, 4))
    for c, value in enumerate((10, 128, 250)):
        assert torch.allclose(tensor[c], torch.full((4, 4), (value / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]))
    rgba = np.concatenate([_channels_image(), np.full((SIZE, SIZE, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "crop_rgba.png")
    batch, sizes = prepare_batch([tmp_path / "crop_rgba.png"], (SIZE, SIZE), keep_channels=True)
    assert sizes == [(SIZE, SIZE)]
    assert torch.allclose(batch[0], _normalized(_channels_image()), atol=1e-6)
    # grey inputs: the same with or without keep_channels
    grey = _channels_image()[..., 1]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    for source in (tmp_path / "grey.png", grey):
        kept, _ = prepare_batch([source], (32, 48), keep_channels=True)
        assert torch.equal(kept, prepare_batch([source], (32, 48))[0])


# --- ConvNextClassifier -------------------------------------------------------------------------------------------
def test_convnext_classifier_shapes_loss_and_predict() -> None:
    torch.manual_seed(4)
    model = ConvNextClassifier("atto").eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    logits = model(x)
    assert logits.shape == (3, 4)
    assert ConvNextClassifier("atto", num_classes=3, dropout=0.0)(x).shape == (3, 3)
    hand = torch.tensor([[1.0, 0.0, -1.0, 2.0], [0.5, 0.5, 3.0, 0.0]])
    targets = torch.tensor([3, 1])
    assert model.get_loss(hand, targets, label_smoothing=0.1).item() == pytest.approx(
        smoothed_ce(hand, targets, 0.1), rel=1e-5)
    assert model.get_loss(hand, targets, class_weights=[1.0, 3.0, 1.0, 2.0]).item() == pytest.approx(
        (2.0 * -math.log(softmax([1.0, 0.0, -1.0, 2.0])[3]) + 3.0 * -math.log(softmax([0.5, 0.5, 3.0, 0.0])[1]))
        / 5.0, rel=1e-5)
    assert model.predict(x) == logits.argmax(dim=1).tolist()
    result = model.test_inference([np.random.default_rng(0).integers(0, 255, (40, 56), dtype=np.uint8)],
                                  image_size=(SIZE, SIZE))
    assert result["original_sizes"] == [(40, 56)] and result["predictions"][0] in range(4)
    assert sum(result["probabilities"][0]) == pytest.approx(1.0, abs=1e-5)
    assert result["predictions"][0] == int(np.argmax(result["probabilities"][0]))
    with pytest.raises(ConfigError, match="logits"):
        ConvNextClassifier("atto", head_config=HeadConfig(output_activation="softmax"))
    with pytest.raises(ConfigError, match="variant"):
        ConvNextClassifier("gigantic")


def test_registry_finds_the_grading_models_by_name_and_alias() -> None:
    import spine_lib.training as training

    assert ModelRegistry.get("resnet50_mtl").cls is ResNet50MTL
    assert ModelRegistry.get("mtl").cls is ResNet50MTL
    assert ModelRegistry.get("convnext_classifier").cls is ConvNextClassifier
    assert {"resnet50_mtl", "convnext_classifier"} <= set(ModelRegistry.list_models(task="classification"))
    model = ModelRegistry.create("mtl", backbone="resnet18", hidden_dim=8)
    assert isinstance(model, ResNet50MTL) and model.name == "ResNet50MTL(resnet18)"
    assert training.ResNet50MTL is ResNet50MTL and training.ConvNextClassifier is ConvNextClassifier
    assert training.MTLPredictions is MTLPredictions
