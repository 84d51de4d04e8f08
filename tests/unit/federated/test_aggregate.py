"""Aggregation math and strategies against hand-computed values, and robustness to a poisoned client."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from federated.aggregate import (
    coordinate_median,
    flatten,
    krum_scores,
    krum_select,
    trimmed_mean,
    unflatten,
    update_problem,
    weighted_average,
)
from federated.client import ClientResult
from federated.strategy import FedAvg, FedMedian, FedTrimmedAvg, Krum
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
    """1, 2, 3, 4, 100: median 3; beta 0.2 drops 1 and 100, mean(2, 3, 4) = 3; Krum with f = 1 scores each by
    its 2 nearest squared distances: 1 -> 1 + 4 = 5, 2 -> 1 + 1 = 2, 3 -> 2, 4 -> 1 + 4 = 5, 100 -> 96^2 +
    97^2 = 18625; the three best are 2, 3 (tied, first listed first) and 1."""
    ps = [[np.array([v])] for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    np.testing.assert_allclose(coordinate_median(ps)[0], [3.0])
    np.testing.assert_allclose(trimmed_mean(ps, 0.2)[0], [3.0])
    np.testing.assert_allclose(krum_scores(ps, 1), [5.0, 2.0, 2.0, 5.0, 18625.0])
    assert krum_select(ps, num_byzantine=1, num_selected=3) == [1, 2, 0]
    assert krum_select(ps, num_byzantine=1) == [1]


def test_krum_scores_use_squared_euclidean_distance_over_all_arrays() -> None:
    """Clients (0, 0 | 0), (3, 0 | 4), (0, 0 | 1), (6, 8 | 0); f = 1 -> one neighbour each.
    Squared distances: d01 = 9 + 16 = 25, d02 = 1, d03 = 100, d12 = 9 + 9 = 18, d13 = 9 + 64 + 16 = 89,
    d23 = 100 + 1 = 101; nearest: 1, 18, 1, 89."""
    ps = [
        [np.array([0.0, 0.0]), np.array([[0.0]])],
        [np.array([3.0, 0.0]), np.array([[4.0]])],
        [np.array([0.0, 0.0]), np.array([[1.0]])],
        [np.array([6.0, 8.0]), np.array([[0.0]])],
    ]
    np.testing.assert_allclose(krum_scores(ps, 1), [1.0, 18.0, 1.0, 89.0])
    # f = 0 -> two neighbours: 1 + 25 = 26, 18 + 25 = 43, 1 + 18 = 19, 89 + 100 = 189.
    np.testing.assert_allclose(krum_scores(ps, 0), [26.0, 43.0, 19.0, 189.0])


def test_krum_scores_below_one() -> None:
    """The points 0, 0.1, 0.3, 0.7, 2 (a tenth of 0, 1, 3, 7, 20): squared distances a hundredth, the same
    ranking, so Krum with f = 1 keeps 0.1 (score 0.01 + 0.04 = 0.05)."""
    ps = [[np.array([v])] for v in (0.0, 0.1, 0.3, 0.7, 2.0)]
    np.testing.assert_allclose(krum_scores(ps, 1), [0.10, 0.05, 0.13, 0.52, 4.58], rtol=1e-9)
    assert krum_select(ps, 1) == [1]
    with pytest.raises(ValueError, match=r"^num_byzantine must be >= 0, got -1$"):
        krum_scores(ps, -1)


def test_krum_refuses_too_few_clients_and_bad_selection() -> None:
    ps = [[np.array([v])] for v in (1.0, 2.0, 3.0, 4.0)]
    krum_scores(ps, 1)  # n = 4 > f + 2 = 3: defined
    with pytest.raises(ValueError, match=r"^Krum needs n > f \+ 2 \(n=4, f=2\)$"):
        krum_scores(ps, 2)
    # f = 0, two neighbours: 1 -> 1 + 4 = 5, 2 -> 1 + 1 = 2, 3 -> 2, 4 -> 1 + 4 = 5.
    assert krum_select(ps, 0, num_selected=4) == [1, 2, 0, 3]
    for bad in (0, 5):
        with pytest.raises(ValueError, match=r"^num_selected must be in \[1, n\]$"):
            krum_select(ps, 1, num_selected=bad)


def test_weighted_average_weights_must_be_one_per_client_non_negative_with_positive_sum() -> None:
    ps = [[np.array([1.0])], [np.array([3.0])]]
    np.testing.assert_allclose(weighted_average(ps, [0, 2])[0], [3.0])  # a zero weight is allowed
    for bad in ([1.0], [1.0, 1.0, 1.0], [-1.0, 2.0], [0.0, 0.0]):
        with pytest.raises(
            ValueError, match=r"^weights must be non-negative, one per client, with a positive sum$"
        ):
            weighted_average(ps, bad)
    with pytest.raises(ValueError, match=r"^nothing to aggregate$"):
        weighted_average([], [])


def test_weighted_average_is_float64_for_any_real_input() -> None:
    """Integer and float32 parameters average in float64: (1 * 1 + 2 * 3) / 3 = 7/3, not an integer."""
    out = weighted_average([[np.array([1], dtype=np.int64)], [np.array([3], dtype=np.float32)]], [1, 2])
    assert out[0].dtype == np.float64
    np.testing.assert_allclose(out[0], [7 / 3], rtol=1e-12)


def test_shape_check_names_the_client() -> None:
    ps = [[np.zeros(2)], [np.zeros(2)], [np.zeros((2, 1))]]
    for fn in (lambda: coordinate_median(ps), lambda: trimmed_mean(ps, 0.2), lambda: krum_scores(ps, 0)):
        with pytest.raises(ValueError, match=r"^client 2 parameter shapes differ from client 0$"):
            fn()


def test_flatten_unflatten_roundtrip() -> None:
    like = [np.arange(6.0).reshape(2, 3), np.array([7.0]), np.array([[8.0], [9.0]])]
    vec = flatten(like)
    np.testing.assert_array_equal(vec, [0, 1, 2, 3, 4, 5, 7, 8, 9])
    back = unflatten(vec * 2, like)
    assert [b.shape for b in back] == [(2, 3), (1,), (2, 1)]
    np.testing.assert_array_equal(back[2], [[16.0], [18.0]])
    back[0][0, 0] = 99.0
    assert vec[0] == 0.0  # unflatten copies
    assert flatten([]).shape == (0,)
    with pytest.raises(ValueError, match=r"^vector length does not match the template$"):
        unflatten(np.zeros(10), like)


@pytest.mark.parametrize(
    ("params", "n", "reason"),
    [
        ([np.zeros(2), np.zeros((1, 1))], 5, None),
        ([np.zeros(2), np.zeros((1, 1))], np.int64(5), None),
        ([np.zeros(2), np.zeros((1, 1))], 5.0, None),
        ([np.zeros(2), np.zeros((1, 1))], 0, "num_examples must be > 0, got 0"),
        ([np.zeros(2), np.zeros((1, 1))], -3, "num_examples must be > 0, got -3"),
        ([np.zeros(2), np.zeros((1, 1))], 2.5, "num_examples must be a whole number, got 2.5"),
        ([np.zeros(2), np.zeros((1, 1))], float("nan"), "num_examples must be a whole number, got nan"),
        ([np.zeros(2), np.zeros((1, 1))], True, "num_examples must be a number, got bool"),
        ([np.zeros(2), np.zeros((1, 1))], "5", "num_examples must be a number, got str"),
        ([np.zeros(2)], 5, "expected 2 parameter arrays, got 1"),
        ([np.zeros(2), np.zeros((1, 2))], 5, "parameter 1 has shape (1, 2), expected (1, 1)"),
        ([np.array([0.0, np.inf]), np.zeros((1, 1))], 5, "parameter 0 has 1 non-finite values"),
        ([np.zeros(2), np.full((1, 1), np.nan)], 5, "parameter 1 has 1 non-finite values"),
        (
            [np.array(["a", "b"]), np.zeros((1, 1))],
            5,
            "parameter 0 has dtype <U1, expected a real number type",
        ),
        (
            [np.array([True, False]), np.zeros((1, 1))],
            5,
            "parameter 0 has dtype bool, expected a real number type",
        ),
        ([np.array([1, 2]), np.zeros((1, 1), dtype=np.float32)], 5, None),
    ],
)
def test_update_problem_reasons(params: list[np.ndarray], n: object, reason: str | None) -> None:
    assert update_problem(params, n, [np.zeros(2), np.zeros((1, 1))]) == reason


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


def test_krum_ties_keep_the_clients_order_even_for_many_clients() -> None:
    """Clients at 100, 200, ..., 1000, then ten at 0; f = 9 leaves 9 neighbours, so the ten at 0 all score 0:
    a ten-way tie at the top. The first listed are kept (a non-stable sort of 20 scores scrambles ties)."""
    ps = [[np.array([100.0 * (i + 1)])] for i in range(10)] + [[np.array([0.0])]] * 10
    np.testing.assert_allclose(krum_scores(ps, 9)[10:], np.zeros(10))
    assert krum_select(ps, 9, num_selected=5) == [10, 11, 12, 13, 14]
