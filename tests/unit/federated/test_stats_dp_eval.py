"""Federated statistics, differential privacy helpers and evaluation metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from federated.client import ClientData
from federated.evaluate import (
    all_subsets,
    confusion_subsets,
    evaluate_model,
    evaluate_predictions,
    format_confusion,
    subset_codes,
    subset_names,
)
from federated.model import FaultClassifier, get_parameters, model_config
from federated.server import run_federated
from federated.stats import FeatureStats, local_stats, mean_std, merge_stats
from federated.strategy import FedAvg
from federated.strategy.dp import DPFixedClipping, gaussian_epsilon

from .conftest import N_FEATURES


def test_merged_stats_equal_pooled(skewed_clients: dict[str, ClientData]) -> None:
    parts = [c.X + 1000.0 for c in skewed_clients.values()]  # offset tests the cancellation floor
    stats = merge_stats(local_stats(x) for x in parts)
    mean, std = mean_std(FeatureStats.from_dict(stats.to_dict()))
    pooled = np.vstack(parts)
    np.testing.assert_allclose(mean, pooled.mean(axis=0))
    np.testing.assert_allclose(std, pooled.std(axis=0), rtol=1e-6)
    _, std_const = mean_std(local_stats(np.ones((5, 2))))
    np.testing.assert_array_equal(std_const, [1.0, 1.0])


def test_dp_wrapper_in_the_round_loop_spends_epsilon_per_round(skewed_clients: dict[str, ClientData]) -> None:
    model = FaultClassifier(hidden=0).initialize(N_FEATURES)
    cfg = {"model": model_config(model), "local_epochs": 1}
    dp = DPFixedClipping(FedAvg(cfg), clip_norm=0.5, noise_multiplier=1.0, seed=0)
    init = get_parameters(model)
    hist = run_federated(dp, skewed_clients, 3, init)
    assert dp.rounds_ == 3 and dp.epsilon() == gaussian_epsilon(1.0, 3, 1e-5)
    assert [r.n_results for r in hist.rounds] == [3, 3, 3]


def test_evaluate_known_values() -> None:
    Y = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1]])
    P = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    m = evaluate_predictions(Y, P)
    assert m["exact_match_8class"] == pytest.approx(3 / 5)
    assert m["fault_detection_acc"] == pytest.approx(4 / 5)
    assert m["false_alarm_rate"] == pytest.approx(1 / 2)
    assert m["recall_blocked_inlet"] == 0.0 and m["precision_blocked_inlet"] == 0.0
    assert m["precision_leak"] == 1.0
    cm = confusion_subsets(Y, P)
    assert cm.shape == (8, 8) and cm.sum() == 5
    assert cm[0, 0] == 1 and cm[0, 2] == 1 and cm[3, 1] == 1
    assert subset_names()[3] == "leak+blocked_inlet" and subset_names()[7] == "leak+blocked_inlet+bearing"


def test_local_stats_by_hand_even_for_small_integer_input() -> None:
    """int8 rows (100, 1), (-100, 3): sums (0, 4), sums of squares (20000, 10), which int8 cannot hold."""
    s = local_stats(np.array([[100, 1], [-100, 3]], dtype=np.int8))
    assert s.count == 2
    np.testing.assert_array_equal(s.sum, [0.0, 4.0])
    np.testing.assert_array_equal(s.sumsq, [20000.0, 10.0])
    with pytest.raises(ValueError, match=r"X must be 2-D, got shape \(3,\)"):
        local_stats(np.zeros(3))


def test_feature_stats_transport_roundtrip_is_float64() -> None:
    d = {"count": 2, "sum": [1, 2], "sumsq": [1, 4]}
    s = FeatureStats.from_dict(d)
    assert s.sum.dtype == np.float64 and s.sumsq.dtype == np.float64
    assert s.to_dict() == {"count": 2, "sum": [1.0, 2.0], "sumsq": [1.0, 4.0]}


def test_merge_stats_adds_counts_and_sums() -> None:
    a = FeatureStats(2, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    b = FeatureStats(5, np.array([10.0, 20.0]), np.array([30.0, 40.0]))
    m = merge_stats([a, b])
    assert m.count == 7
    np.testing.assert_array_equal(m.sum, [11.0, 22.0])
    np.testing.assert_array_equal(m.sumsq, [33.0, 44.0])
    with pytest.raises(ValueError, match=r"^no statistics to merge$"):
        merge_stats([])
    c = FeatureStats(1, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"clients disagree on the number of features: \[\(2,\), \(3,\)\]"):
        merge_stats([a, c])


def test_mean_std_floors() -> None:
    """One row: mean = the row, std floored to 1. Rows 0 and 4: mean 2, std exactly 2, kept above a floor of
    1.9 and replaced by 1 at a floor of exactly 2 (strictly above is required). Mean 1e6 with std 0.05: below
    the relative floor 1e-7 * 1e6 = 0.1, so 1; std 0.2 is kept."""
    mean, std = mean_std(local_stats(np.array([[3.0, -1.0]])))
    np.testing.assert_array_equal(mean, [3.0, -1.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    two = local_stats(np.array([[0.0], [4.0]]))
    assert mean_std(two, min_std=1.9)[1][0] == 2.0
    assert mean_std(two, min_std=2.0)[1][0] == 1.0
    big = local_stats(np.array([[1e6 - 0.05, 1e6 - 0.2], [1e6 + 0.05, 1e6 + 0.2]]))
    np.testing.assert_allclose(mean_std(big)[1], [1.0, 0.2], rtol=1e-3)  # sumsq/n - mean^2 cancels at 1e12
    with pytest.raises(ValueError, match=r"^no rows$"):
        mean_std(FeatureStats(0, np.zeros(2), np.zeros(2)))


def test_evaluate_every_metric_by_hand() -> None:
    """Rows (true -> predicted): healthy -> healthy, healthy -> leak, leak -> leak, leak -> healthy,
    leak+bearing -> leak+bearing, bearing -> leak+bearing."""
    Y = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1]])
    P = np.array([[0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 1], [1, 0, 1]])
    m = evaluate_predictions(Y, P)
    assert m["n"] == 6
    assert m["exact_match_8class"] == pytest.approx(3 / 6)
    assert m["fault_detection_acc"] == pytest.approx(4 / 6)  # rows 2 and 4 wrong about "any fault"
    assert m["false_alarm_rate"] == pytest.approx(1 / 2)
    assert m["missed_fault_rate"] == pytest.approx(1 / 4)
    assert m["hamming_acc"] == pytest.approx(15 / 18)
    # leak: tp 3 (rows 3, 5, 6 predicted; rows 3, 5 true) -> tp 2, fp 2, fn 1
    assert m["precision_leak"] == pytest.approx(2 / 4) and m["recall_leak"] == pytest.approx(2 / 3)
    assert m["precision_bearing"] == 1.0 and m["recall_bearing"] == 1.0
    assert np.isnan(m["precision_blocked_inlet"]) and np.isnan(m["recall_blocked_inlet"])
    assert m["acc_healthy"] == pytest.approx(1 / 2) and m["acc_leak"] == pytest.approx(1 / 2)
    assert m["acc_leak+bearing"] == 1.0 and m["acc_bearing"] == 0.0
    assert np.isnan(m["acc_blocked_inlet"])  # no such rows
    assert m["subset_names"] == subset_names()
    cm = m["confusion"]
    assert (
        cm[0, 0] == 1
        and cm[0, 1] == 1
        and cm[1, 1] == 1
        and cm[1, 0] == 1
        and cm[5, 5] == 1
        and cm[4, 5] == 1
    )
    assert cm.sum() == 6


def test_evaluate_rates_without_healthy_or_faulty_rows_are_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        only_faults = evaluate_predictions(np.array([[1, 0, 0]]), np.array([[1, 0, 0]]))
        only_healthy = evaluate_predictions(np.array([[0, 0, 0]]), np.array([[0, 1, 0]]))
    assert np.isnan(only_faults["false_alarm_rate"]) and only_faults["missed_fault_rate"] == 0.0
    assert np.isnan(only_healthy["missed_fault_rate"]) and only_healthy["false_alarm_rate"] == 1.0
    with pytest.raises(ValueError, match=r"shape mismatch \(1, 3\) vs \(1, 2\)"):
        evaluate_predictions(np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="shape mismatch"):
        evaluate_predictions(np.zeros(3), np.zeros(3))


def test_evaluate_model_uses_the_models_fault_names() -> None:
    class TwoFaults:
        fault_names = ("a", "b")

        def predict(self, X: np.ndarray) -> np.ndarray:
            return (np.asarray(X) > 0).astype(int)

    m = evaluate_model(TwoFaults(), np.array([[1.0, -1.0], [-1.0, -1.0]]), np.array([[1, 0], [0, 1]]))
    assert m["subset_names"] == ["healthy", "a", "b", "a+b"]
    assert m["recall_a"] == 1.0 and m["recall_b"] == 0.0 and m["exact_match_8class"] == 0.5


def test_evaluate_edge_cases_raise_no_warnings() -> None:
    """One leak row caught, one missed: recall 1/2 (tp = fn = 1). No healthy rows, a subset with no rows:
    nan, without numpy warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate_predictions(np.array([[1, 0, 0], [1, 0, 0]]), np.array([[1, 0, 0], [0, 0, 0]]))
    assert m["recall_leak"] == 0.5 and m["precision_leak"] == 1.0
    assert np.isnan(m["false_alarm_rate"]) and np.isnan(m["acc_healthy"]) and m["missed_fault_rate"] == 0.5


def test_evaluate_model_defaults_to_the_pump_faults() -> None:
    class Plain:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.zeros((len(X), 3), dtype=int)

    m = evaluate_model(Plain(), np.zeros((2, 1)), np.array([[0, 0, 0], [0, 0, 1]]))
    assert m["subset_names"] == subset_names(("leak", "blocked_inlet", "bearing"))
    assert m["recall_bearing"] == 0.0


def test_subset_helpers_and_confusion_text() -> None:
    assert subset_names(("x", "y")) == ["healthy", "x", "y", "x+y"]
    np.testing.assert_array_equal(subset_codes(np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]])), [5, 2, 0])
    assert all_subsets(2) == [(), (0,), (1,), (0, 1)]
    assert len(all_subsets(3)) == 8 and all_subsets(3)[-1] == (0, 1, 2)
    header = format_confusion(np.zeros((8, 8), dtype=int), subset_names()).splitlines()[0]
    # Names shortened ("inlet") and cut at 10 characters so every column is 10 wide.
    assert header.split() == [
        "healthy",
        "leak",
        "inlet",
        "leak+inlet",
        "bearing",
        "leak+beari",
        "inlet+bear",
        "leak+inlet",
    ]
    with pytest.raises(ValueError):  # one name per row, or it would silently drop rows
        format_confusion(np.zeros((3, 3), dtype=int), ["a", "b"])
    text = format_confusion(np.array([[1, 2], [30, 4]]), ["healthy", "blocked_inlet"])
    assert text == (
        "           healthy      inlet\nhealthy          1          2\ninlet           30          4"
    )
