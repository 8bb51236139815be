"""Validation metrics of the disc-grading classifier, against hand-computed values; metric directions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from spine_lib.errors import ConfigError
from spine_lib.training.grading import GRADING_HEADS, HEADS, MTLTargets
from spine_lib.training.metrics import LocalizationMetrics, MTLClassificationMetrics, cohen_kappa
from spine_lib.training.registry import MetricsRegistry

PFIRRMANN = MTLClassificationMetrics(heads=(HEADS["pfirrmann"],))
HERNIATION = MTLClassificationMetrics(heads=(HEADS["herniation"],))


def one_hot_logits(classes: Sequence[int], width: int) -> torch.Tensor:
    """Logits whose argmax is ``classes`` (3 on the chosen class, 0 elsewhere)."""
    return torch.tensor(np.eye(width)[list(classes)] * 3.0, dtype=torch.float32)


# The 10-item Pfirrmann case (classes 0..4 = grades 1..5), rows = true, columns = predicted:
#   true 0: -> 0           row [1, 0, 0, 0, 0]   total 1
#   true 1: -> 1, 2        row [0, 1, 1, 0, 0]   total 2
#   true 2: -> 2, 2, 1     row [0, 1, 2, 0, 0]   total 3
#   true 3: -> 3, 1        row [0, 1, 0, 1, 0]   total 2
#   true 4: -> 4, 3        row [0, 0, 0, 1, 1]   total 2
# column totals [1, 3, 3, 2, 1]
TRUE_GRADES = [0, 1, 1, 2, 2, 2, 3, 3, 4, 4]
PREDICTED_GRADES = [0, 1, 2, 2, 2, 1, 3, 1, 4, 3]
CONFUSION = [[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 1, 2, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 1, 1]]


def pfirrmann_case(baseline_targets: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    predictions = {"pfirrmann": one_hot_logits(PREDICTED_GRADES, 5)}
    targets = {"pfirrmann": torch.tensor(TRUE_GRADES)}
    return PFIRRMANN.compute(predictions, targets, baseline_targets=baseline_targets).metrics


def test_pfirrmann_scores_from_a_known_confusion_matrix() -> None:
    m = pfirrmann_case()
    assert m["count"] == 10
    assert m["pfirrmann/accuracy"] == pytest.approx(6 / 10)  # diagonal 1 + 1 + 2 + 1 + 1
    # recalls 1/1, 1/2, 2/3, 1/2, 1/2
    assert m["pfirrmann/balanced_accuracy"] == pytest.approx((1 + 1 / 2 + 2 / 3 + 1 / 2 + 1 / 2) / 5)  # 19/30
    # F1 = 2 TP / (row + column): 2/2, 2/5, 4/6, 2/4, 2/3
    assert m["pfirrmann/macro_f1"] == pytest.approx((1 + 2 / 5 + 2 / 3 + 1 / 2 + 2 / 3) / 5)  # 97/150
    # every prediction but true 3 -> 1 is at most one grade off
    assert m["pfirrmann/within_one"] == pytest.approx(9 / 10)
    # QWK with disagreement weights (i - j)^2 (dividing them by (5 - 1)^2 cancels in the ratio).
    # Observed: off-diagonal cells (1,2), (2,1), (3,1), (4,3), one item each: 1*1 + 1*1 + 1*4 + 1*1 = 7.
    # Expected E_ij = row_i * column_j / 10, rows [1, 2, 3, 2, 2], columns [1, 3, 3, 2, 1]; the weighted
    # products (i - j)^2 * row_i * column_j summed per row:
    #   row 0: 0*1 + 1*3 + 4*3 + 9*2 + 16*1          = 49
    #   row 1: 1*2 + 0*6 + 1*6 + 4*4 + 9*2           = 42
    #   row 2: 4*3 + 1*9 + 0*9 + 1*6 + 4*3           = 39
    #   row 3: 9*2 + 4*6 + 1*6 + 0*4 + 1*2           = 50
    #   row 4: 16*2 + 9*6 + 4*6 + 1*4 + 0*2          = 114
    # sum 294, / 10 = 29.4; kappa = 1 - 7 / 29.4 = 16/21
    assert m["pfirrmann/qwk"] == pytest.approx(1 - 7 / 29.4)
    assert m["pfirrmann/qwk"] == pytest.approx(16 / 21)
    assert m["pfirrmann/classes_present"] == 5.0


def test_majority_baseline_of_the_evaluated_targets() -> None:
    m = pfirrmann_case()
    # target counts [1, 2, 3, 2, 2]: the baseline always answers class 2
    assert m["pfirrmann/baseline_accuracy"] == pytest.approx(3 / 10)
    assert m["pfirrmann/baseline_balanced_accuracy"] == pytest.approx(1 / 5)  # recall 1 for class 2, 0 for four
    # F1 of class 2 = 2*3 / (3 + 10) = 6/13; the four other classes (in the targets) score 0
    assert m["pfirrmann/baseline_macro_f1"] == pytest.approx(6 / 13 / 5)
    assert m["pfirrmann/baseline_qwk"] == pytest.approx(0.0)
    assert m["pfirrmann/baseline_within_one"] == pytest.approx(7 / 10)  # true classes 1, 2, 3: 2 + 3 + 2 items


def test_majority_baseline_from_separate_training_targets() -> None:
    training = {"pfirrmann": torch.tensor([3, 3, 3, 1, 2])}  # majority class 3, not 2 as in the evaluated targets
    m = pfirrmann_case(training)
    assert m["pfirrmann/accuracy"] == pytest.approx(6 / 10)  # the model's scores do not change
    assert m["pfirrmann/baseline_accuracy"] == pytest.approx(2 / 10)  # two items of class 3
    assert m["pfirrmann/baseline_balanced_accuracy"] == pytest.approx(1 / 5)
    assert m["pfirrmann/baseline_macro_f1"] == pytest.approx(2 * 2 / (2 + 10) / 5)  # F1 of class 3 = 1/3
    assert m["pfirrmann/baseline_within_one"] == pytest.approx(7 / 10)  # true classes 2, 3, 4: 3 + 2 + 2 items
    assert m["pfirrmann/baseline_qwk"] == pytest.approx(0.0)


def test_constant_predictor_has_zero_kappa() -> None:
    # Every item answered class 1: all items of a row sit in column 1, so the observed matrix equals the expected
    # one (E_i1 = row_i * 10 / 10 = row_i): weighted sums 1*1 + 2*0 + 3*1 + 2*4 + 2*9 = 30 both, 1 - 30/30 = 0.
    predictions = {"pfirrmann": one_hot_logits([1] * 10, 5)}
    m = PFIRRMANN.compute(predictions, {"pfirrmann": torch.tensor(TRUE_GRADES)}).metrics
    assert m["pfirrmann/qwk"] == pytest.approx(0.0, abs=1e-12)
    assert m["pfirrmann/accuracy"] == pytest.approx(2 / 10)


def test_kappa_of_a_three_category_reference_table() -> None:
    # Artstein & Poesio (2008), "Inter-coder agreement for computational linguistics", Computational
    # Linguistics 34(4), the 3-category example of Table 4: 100 items, coder A in rows, coder B in columns,
    #   [[46, 0, 0], [6, 32, 6], [0, 0, 10]]; rows [46, 44, 10], columns [52, 32, 16];
    #   A_o = (46 + 32 + 10) / 100 = 0.88, A_e = 0.46*0.52 + 0.44*0.32 + 0.10*0.16 = 0.396,
    #   kappa = (A_o - A_e) / (1 - A_e) = 0.484 / 0.604 = 0.8013.
    table = np.array([[46, 0, 0], [6, 32, 6], [0, 0, 10]])
    assert cohen_kappa(table, weights=None) == pytest.approx((0.88 - 0.396) / (1 - 0.396))
    assert cohen_kappa(table, weights=None) == pytest.approx(0.8013, abs=5e-5)
    # Quadratic weights w = [[0, 1, 4], [1, 0, 1], [4, 1, 0]]:
    #   observed 6*1 + 6*1 = 12;
    #   expected * 100 = 1*(46*32 + 44*52 + 44*16 + 10*32) + 4*(46*16 + 10*52) = 4784 + 4*1256 = 9808 -> 98.08;
    #   kappa_w = 1 - 12 / 98.08 (in agreement form: p_o = 1 - 12/400 = 0.97, p_e = 1 - 98.08/400 = 0.7548,
    #   (0.97 - 0.7548) / (1 - 0.7548) is the same 0.8777).
    assert cohen_kappa(table) == pytest.approx(1 - 12 / 98.08)
    assert cohen_kappa(table) == pytest.approx((0.97 - 0.7548) / (1 - 0.7548))
    # The same items as Pfirrmann grades 1..3 of the 5-class head: unused classes add nothing, and weights divided
    # by (5 - 1)^2 instead of (3 - 1)^2 cancel in the ratio.
    true = np.repeat([0, 1, 1, 1, 2], [46, 6, 32, 6, 10])
    predicted = np.repeat([0, 0, 1, 2, 2], [46, 6, 32, 6, 10])
    predictions = {"pfirrmann": one_hot_logits(predicted.tolist(), 5)}
    m = PFIRRMANN.compute(predictions, {"pfirrmann": torch.tensor(true)}).metrics
    assert m["pfirrmann/qwk"] == pytest.approx(1 - 12 / 98.08)
    assert m["pfirrmann/accuracy"] == pytest.approx(0.88)


# The binary case: disc_herniation, 3 positives and 4 negatives, with tied scores across the classes;
# disc_bulging: only negatives, one logit exactly 0 (sigmoid 0.5, counted positive).
HERNIATION_LOGITS = [2.0, -0.5, -1.0, 0.5, -0.5, -1.0, -3.0]
HERNIATION_TRUE = [1, 1, 1, 0, 0, 0, 0]
BULGING_LOGITS = [0.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]


def herniation_case(baseline_targets: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    predictions = {"herniation": torch.tensor(list(zip(HERNIATION_LOGITS, BULGING_LOGITS, strict=True)))}
    targets = {"herniation": torch.tensor([[float(t), 0.0] for t in HERNIATION_TRUE])}
    return HERNIATION.compute(predictions, targets, baseline_targets=baseline_targets).metrics


def test_binary_scores_and_auroc_with_ties() -> None:
    m = herniation_case()
    # Predicted positive (logit >= 0): positives [1, 0, 0], negatives [1, 0, 0, 0] -> TP 1, FN 2, FP 1, TN 3
    assert m["disc_herniation/accuracy"] == pytest.approx(4 / 7)
    assert m["disc_herniation/balanced_accuracy"] == pytest.approx((1 / 3 + 3 / 4) / 2)  # 13/24
    # F1 positive = 2*1 / (2*1 + 1 + 2) = 2/5, negative = 2*3 / (2*3 + 2 + 1) = 2/3
    assert m["disc_herniation/macro_f1"] == pytest.approx((2 / 5 + 2 / 3) / 2)  # 8/15
    # 3 x 4 = 12 (positive, negative) pairs, ties count 1/2:
    #   positive 2.0 beats 0.5, -0.5, -1.0, -3.0                  -> 4
    #   positive -0.5 ties -0.5, beats -1.0, -3.0                 -> 2.5
    #   positive -1.0 ties -1.0, beats -3.0                       -> 1.5
    # (8 / 12; by ranks: -3 r1, -1.0 pair r2.5, -0.5 pair r4.5, 0.5 r6, 2.0 r7; positives 7 + 4.5 + 2.5 = 14,
    # (14 - 3*4/2) / 12 = 8/12)
    assert m["disc_herniation/auroc"] == pytest.approx(8 / 12)
    # majority of the evaluated targets: negative (4 of 7)
    assert m["disc_herniation/baseline_accuracy"] == pytest.approx(4 / 7)
    assert m["disc_herniation/baseline_balanced_accuracy"] == pytest.approx(1 / 2)
    assert m["disc_herniation/baseline_macro_f1"] == pytest.approx((2 * 4 / (2 * 4 + 3) + 0) / 2)  # 4/11
    assert m["disc_herniation/baseline_auroc"] == pytest.approx(0.5)


def test_auroc_is_nan_with_one_class_and_logit_zero_is_positive() -> None:
    m = herniation_case()
    assert math.isnan(m["disc_bulging/auroc"]) and math.isnan(m["disc_bulging/baseline_auroc"])
    # all 7 negative, the logit-0 item predicted positive: TN 6, FP 1
    assert m["disc_bulging/accuracy"] == pytest.approx(6 / 7)
    assert m["disc_bulging/balanced_accuracy"] == pytest.approx(6 / 7)  # only class 0 is in the targets
    # F1 negative = 2*6 / (2*6 + 1) = 12/13; positive (predicted once, never true) = 0
    assert m["disc_bulging/macro_f1"] == pytest.approx((12 / 13 + 0) / 2)
    assert m["disc_bulging/baseline_accuracy"] == 1.0 and m["disc_bulging/baseline_macro_f1"] == 1.0
    # one class in the targets: no score can beat the baseline (not assessable); herniation holds both
    assert m["disc_bulging/classes_present"] == 1.0 and m["disc_herniation/classes_present"] == 2.0
    # mean over the two outputs: (13/24 + 6/7) / 2; baseline (1/2 + 1) / 2
    assert m["mean_balanced_accuracy"] == pytest.approx((13 / 24 + 6 / 7) / 2)
    assert m["baseline_mean_balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)


def test_binary_baseline_from_training_targets() -> None:
    training = {"herniation": torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])}  # majority positive for both
    m = herniation_case(training)
    # always positive: TP 3, FP 4 on disc_herniation
    assert m["disc_herniation/baseline_accuracy"] == pytest.approx(3 / 7)
    assert m["disc_herniation/baseline_balanced_accuracy"] == pytest.approx(1 / 2)
    assert m["disc_herniation/baseline_macro_f1"] == pytest.approx((2 * 3 / (2 * 3 + 4) + 0) / 2)  # 3/10
    # disc_bulging: always positive on 7 negatives: accuracy 0; both classes seen (targets 0, predictions 1), F1 0
    assert m["disc_bulging/baseline_accuracy"] == 0.0 and m["disc_bulging/baseline_macro_f1"] == 0.0
    assert m["disc_herniation/auroc"] == pytest.approx(8 / 12)  # the model's scores do not change


def test_confusion_matrices_exact_values() -> None:
    pfirrmann = PFIRRMANN.confusion_matrices({"pfirrmann": one_hot_logits(PREDICTED_GRADES, 5)},
                                             {"pfirrmann": torch.tensor(TRUE_GRADES)})
    assert list(pfirrmann) == ["pfirrmann"]
    assert pfirrmann["pfirrmann"].tolist() == CONFUSION
    predictions = {"herniation": torch.tensor(list(zip(HERNIATION_LOGITS, BULGING_LOGITS, strict=True)))}
    targets = {"herniation": torch.tensor([[float(t), 0.0] for t in HERNIATION_TRUE])}
    binary = HERNIATION.confusion_matrices(predictions, targets)
    assert binary["disc_herniation"].tolist() == [[3, 1], [2, 1]]  # [[TN, FP], [FN, TP]]
    assert binary["disc_bulging"].tolist() == [[6, 1], [0, 0]]


def full_case() -> tuple[dict[str, torch.Tensor], MTLTargets]:
    """Four items over all six heads: L4/L5 (items 0, 1) and L5/S1 (items 2, 3)."""
    targets = MTLTargets.stack([
        {"pfirrmann": 1, "modic": 0, "herniation": [1, 0], "endplate": [1, 0], "spondylolisthesis": [0],
         "narrowing": [1]},
        {"pfirrmann": 2, "modic": 0, "herniation": [0, 0], "endplate": [1, 1], "spondylolisthesis": [0],
         "narrowing": [1]},
        {"pfirrmann": 3, "modic": 1, "herniation": [1, 0], "endplate": [0, 0], "spondylolisthesis": [0],
         "narrowing": [1]},
        {"pfirrmann": 3, "modic": 2, "herniation": [0, 0], "endplate": [0, 1], "spondylolisthesis": [1],
         "narrowing": [1]},
    ])
    signs = {  # predicted positive (+) or negative (-) per item
        "herniation": [[1, -1], [1, -1], [1, -1], [-1, -1]],
        "endplate": [[1, 1], [1, -1], [-1, 1], [-1, -1]],
        "spondylolisthesis": [[-1], [-1], [-1], [1]],
        "narrowing": [[1], [-1], [1], [1]],
    }
    predictions = {"pfirrmann": one_hot_logits([1, 2, 3, 2], 5), "modic": one_hot_logits([0, 1, 1, 2], 4),
                   **{name: 2.0 * torch.tensor(values, dtype=torch.float32) for name, values in signs.items()}}
    return predictions, targets


def test_all_heads_mean_balanced_accuracy_and_per_level_split() -> None:
    predictions, targets = full_case()
    result = MTLClassificationMetrics().compute(predictions, targets, groups=[3, 3, "L5/S1", 4])
    m = result.metrics
    assert m["count"] == 4
    assert m["pfirrmann/balanced_accuracy"] == pytest.approx((1 + 1 + 1 / 2) / 3)  # classes 1, 2, 3 present
    assert m["modic/balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1) / 3)  # classes 0, 1, 2 present
    # F1 over the classes in targets or predictions (1, 2, 3; never 0 or 4): 2/(1+1), 2/(1+2), 2/(2+1)
    assert m["pfirrmann/macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["disc_herniation/balanced_accuracy"] == pytest.approx((1 + 1 / 2) / 2)
    assert m["low_endplate/balanced_accuracy"] == 0.0  # every item flipped
    assert m["disc_narrowing/balanced_accuracy"] == pytest.approx(3 / 4)  # only positives present
    # pfirrmann 5/6, modic 5/6, herniation 3/4, bulging 1, up 1, low 0, spondylolisthesis 1, narrowing 3/4
    assert m["mean_balanced_accuracy"] == pytest.approx((5 / 6 + 5 / 6 + 3 / 4 + 1 + 1 + 0 + 1 + 3 / 4) / 8)
    assert set(result.per_group) == {"L4/L5", "L5/S1"}  # level index 3 is L4/L5, 4 is L5/S1
    l4, l5 = result.per_group["L4/L5"], result.per_group["L5/S1"]
    assert (l4["pfirrmann/accuracy"], l5["pfirrmann/accuracy"]) == (1.0, 0.5)
    assert (l4["modic/accuracy"], l5["modic/accuracy"]) == (0.5, 1.0)
    # disc_herniation L4/L5: true [1, 0] predicted [1, 1] -> recalls 1 and 0; L5/S1 true [1, 0] predicted [1, 0]
    assert (l4["disc_herniation/balanced_accuracy"], l5["disc_herniation/balanced_accuracy"]) == (0.5, 1.0)
    assert (l4["low_endplate/balanced_accuracy"], l5["low_endplate/balanced_accuracy"]) == (0.0, 0.0)
    assert (l4["disc_narrowing/balanced_accuracy"], l5["disc_narrowing/balanced_accuracy"]) == (0.5, 1.0)
    assert l4["spondylolisthesis/balanced_accuracy"] == 1.0  # only negatives at L4/L5, both right
    assert l4["count"] == 2 and result.flat()["L5/S1/count"] == 2
    assert "pfirrmann/qwk" not in l4 and "disc_herniation/accuracy" not in l4
    assert MTLClassificationMetrics().compute(predictions, targets).per_group == {}


def test_perfect_predictions_score_one_everywhere() -> None:
    items = range(10)
    targets = {
        "pfirrmann": torch.tensor([i % 5 for i in items]),
        "modic": torch.tensor([i % 4 for i in items]),
        "herniation": torch.tensor([[i % 2, (i // 2) % 2] for i in items], dtype=torch.float32),
        "endplate": torch.tensor([[i % 3 == 0, i % 3 == 1] for i in items], dtype=torch.float32),
        "spondylolisthesis": torch.tensor([[i < 3] for i in items], dtype=torch.float32),
        "narrowing": torch.tensor([[i >= 6] for i in items], dtype=torch.float32),
    }
    predictions = {head.name: one_hot_logits(targets[head.name].tolist(), head.classes)
                   if head.kind == "multiclass" else 4.0 * targets[head.name] - 2.0 for head in GRADING_HEADS}
    m = MTLClassificationMetrics().compute(predictions, targets).metrics
    scores = {k: v for k, v in m.items() if "baseline" not in k and k != "count" and "classes_present" not in k}
    assert len(scores) == 2 * 3 + 2 + 6 * 4 + 1  # 3 per multiclass head, qwk + within_one, 4 per output, mean
    assert all(v == pytest.approx(1.0) for v in scores.values()), scores
    present = {k.split("/")[0]: v for k, v in m.items() if k.endswith("/classes_present")}
    assert present == {"pfirrmann": 5, "modic": 4, "disc_herniation": 2, "disc_bulging": 2, "up_endplate": 2,
                       "low_endplate": 2, "spondylolisthesis": 2, "disc_narrowing": 2}
    assert m["pfirrmann/qwk"] == pytest.approx(1.0)
    assert m["count"] == 10


def test_registered_and_checks_its_inputs() -> None:
    assert "mtl_classification" in MetricsRegistry.list_metrics(task="classification")
    assert MetricsRegistry.get("mtl_classification").cls is MTLClassificationMetrics
    with pytest.raises(ValueError, match="modic"):
        MTLClassificationMetrics().compute({"pfirrmann": one_hot_logits([0], 5)}, {"pfirrmann": torch.tensor([0])})
    with pytest.raises(ValueError, match=r"outside 0\.\.4"):
        PFIRRMANN.compute({"pfirrmann": one_hot_logits([0], 5)}, {"pfirrmann": torch.tensor([5])})


def test_classification_directions() -> None:
    metrics = MTLClassificationMetrics()
    for name in ("pfirrmann/qwk", "pfirrmann/baseline_within_one", "modic/macro_f1", "disc_herniation/auroc",
                 "low_endplate/balanced_accuracy", "mean_balanced_accuracy", "L4/L5/pfirrmann/accuracy",
                 "L5/S1/disc_bulging/balanced_accuracy"):
        assert metrics.direction(name) == "max"
    with pytest.raises(ConfigError, match=r"count: is a count.*pfirrmann/qwk.*mean_balanced_accuracy"):
        metrics.direction("count")
    with pytest.raises(ConfigError, match="L4/L5/count"):
        metrics.direction("L4/L5/count")
    with pytest.raises(ConfigError, match="disc_bulging/classes_present: is a count"):
        metrics.direction("disc_bulging/classes_present")
    for unknown in ("modic/qwk", "accuracy", "val_loss", "L4/L5/pfirrmann/qwk"):
        with pytest.raises(ConfigError, match="not a metric of mtl_classification; choose one of: pfirrmann/acc"):
            metrics.direction(unknown)


def test_localization_directions() -> None:
    metrics = LocalizationMetrics()
    for name in ("pck@0.05", "pck@0.25", "within_5px", "within_2.5px", "L4/L5/pck@0.05", "L5/S1/within_5px"):
        assert metrics.direction(name) == "max"
    for name in ("mean_error_px", "median_error_px", "L4/L5/mean_error_px"):
        assert metrics.direction(name) == "min"
    with pytest.raises(ConfigError, match=r"count: is a count.*pck@0.02, pck@0.05, pck@0.10, within_5px, mean_error_px"):
        metrics.direction("count")
    with pytest.raises(ConfigError, match="is a count"):
        metrics.direction("L4/L5/count")
    with pytest.raises(ConfigError, match=r"not a metric of localization.*median_error_px"):
        metrics.direction("max_error_px")
