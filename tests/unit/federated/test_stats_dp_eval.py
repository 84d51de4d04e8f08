"""Federated statistics, differential privacy helpers and evaluation metrics."""

from __future__ import annotations

import numpy as np
import pytest

from federated.client import ClientData
from federated.dp import DPFixedClipping, gaussian_epsilon
from federated.evaluate import confusion_subsets, evaluate_predictions, subset_names
from federated.model import FaultClassifier, get_parameters, model_config
from federated.server import run_federated
from federated.stats import FeatureStats, local_stats, mean_std, merge_stats
from federated.strategy import FedAvg

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
