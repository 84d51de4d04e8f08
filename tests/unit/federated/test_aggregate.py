"""Aggregation math and strategies against hand-computed values, and robustness to a poisoned client."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from federated.aggregate import coordinate_median, krum_select, trimmed_mean, weighted_average
from federated.client import ClientResult
from federated.strategy import FedAdam, FedAvg, FedMedian, FedTrimmedAvg, Krum
from federated.strategy.ensemble import ExpertEnsemble

CFG: dict[str, Any] = {"model": {"fault_names": ["leak", "blocked_inlet", "bearing"], "n_features": 2}}


def test_fedavg_two_clients_by_hand() -> None:
    a = ClientResult([np.array([1.0, 2.0]), np.array([[0.0]])], num_examples=1, client_id="a")
    b = ClientResult([np.array([3.0, 6.0]), np.array([[4.0]])], num_examples=3, client_id="b")
    s = FedAvg(CFG)
    s.configure_fit(1, [np.zeros(2), np.zeros((1, 1))], ["a", "b"])
    out = s.aggregate_fit(1, [a, b], [])
    # (1*1 + 3*3)/4 = 2.5 ; (1*2 + 3*6)/4 = 5 ; (0 + 3*4)/4 = 3
    np.testing.assert_allclose(out[0], [2.5, 5.0])
    np.testing.assert_allclose(out[1], [[3.0]])


def test_weighted_average_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes"):
        weighted_average([[np.zeros(2)], [np.zeros(3)]], [1, 1])


def test_median_trimmed_krum_by_hand() -> None:
    ps = [[np.array([v])] for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    np.testing.assert_allclose(coordinate_median(ps)[0], [3.0])
    np.testing.assert_allclose(trimmed_mean(ps, 0.2)[0], [3.0])  # drops 1 and 100
    assert 4 not in krum_select(ps, num_byzantine=1, num_selected=3)


def _poisoned(rng: np.random.Generator) -> tuple[list[ClientResult], np.ndarray]:
    truth = rng.normal(size=20)
    honest = [truth + 0.01 * rng.normal(size=20) for _ in range(5)]
    results = [ClientResult([h[:10], h[10:]], 100, {}, f"c{i}") for i, h in enumerate(honest)]
    bad = np.full(20, 1e6)
    results.append(ClientResult([bad[:10], bad[10:]], 100_000, {}, "attacker"))  # also lies about its size
    return results, truth


@pytest.mark.parametrize("cls", [FedMedian, Krum, FedTrimmedAvg])
def test_poisoned_client_does_not_derail_robust_rules(cls: type) -> None:
    results, truth = _poisoned(np.random.default_rng(0))
    s = cls(CFG)
    s.configure_fit(1, [np.zeros(10), np.zeros(10)], [r.client_id for r in results])
    out = np.concatenate(s.aggregate_fit(1, results, []))
    assert np.max(np.abs(out - truth)) < 0.05
    if isinstance(s, Krum):
        assert "attacker" not in s.selected_


def test_poisoned_client_does_derail_fedavg() -> None:
    results, truth = _poisoned(np.random.default_rng(0))
    s = FedAvg(CFG)
    s.configure_fit(1, [np.zeros(10), np.zeros(10)], [r.client_id for r in results])
    out = np.concatenate(s.aggregate_fit(1, results, []))
    assert np.max(np.abs(out - truth)) > 1e3


def test_fedadam_moves_towards_client_average() -> None:
    s = FedAdam(CFG, server_learning_rate=0.1)
    g = [np.zeros(3)]
    s.configure_fit(1, g, ["a", "b"])
    out = s.aggregate_fit(
        1, [ClientResult([np.ones(3)], 1, {}, "a"), ClientResult([np.ones(3)], 1, {}, "b")], []
    )
    # First bias-corrected Adam step moves each coordinate by ~lr in the pseudo-gradient's direction.
    np.testing.assert_allclose(out[0], 0.1 * np.ones(3), rtol=1e-2)


@pytest.mark.parametrize(
    ("head_groups", "expected"),
    [
        (None, [1, 2, 3]),  # one head per fault
        ([0, 1, 1, 2], [1, 2, 2, 3]),  # leak, inlet, inlet, bearing: the bearing expert's head is row 4
    ],
)
def test_ensemble_takes_every_head_of_a_fault_from_its_expert(
    head_groups: list[int] | None, expected: list[float]
) -> None:
    names = CFG["model"]["fault_names"]
    cfg = (
        CFG
        if head_groups is None
        else {"model": {**CFG["model"], "hyperparameters": {"head_groups": head_groups}}}
    )
    n = len(expected)
    g = [np.zeros((n, 2)), np.zeros(n)]
    results = []
    for k in range(3):
        metrics = {f"positives_{f}": float(i == k) * 10 for i, f in enumerate(names)}
        results.append(ClientResult([np.full((n, 2), k + 1.0), np.full(n, k + 1.0)], 20, metrics, f"s{k}"))
    s = ExpertEnsemble(cfg)
    s.configure_fit(1, g, ["s0", "s1", "s2"])
    W, b = s.aggregate_fit(1, results, [])
    np.testing.assert_allclose(b, expected)
    np.testing.assert_allclose(W, np.repeat(np.asarray(expected, dtype=float)[:, None], 2, axis=1))
