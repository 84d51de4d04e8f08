"""Central DP: clipping bounds every client's update, the noise has the configured spread, and the privacy
accountant matches the Gaussian mechanism's RDP bound; epsilon is finite only when noise is really added."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pytest

from federated.client import ClientResult
from federated.strategy import FedAdam, FedAvg, FedMedian, FedProx, QuorumError
from federated.strategy.dp import DPFixedClipping, clip_update, gaussian_epsilon

CFG: dict[str, Any] = {"model": {"fault_names": ["leak"], "n_features": 1}}


def _r(vec: np.ndarray, n: int = 1, cid: str = "") -> ClientResult:
    return ClientResult([np.asarray(vec, dtype=np.float64)], n, {}, cid)


def test_clip_update_scales_only_long_updates() -> None:
    g = [np.array([1.0, 1.0, 1.0]), np.array([2.0])]
    # update (3, 0, 0 | 4): norm 5 -> scaled by 1/5 onto the clip sphere around the global model
    clipped, norm = clip_update([np.array([4.0, 1.0, 1.0]), np.array([6.0])], g, clip_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped[0], [1.6, 1.0, 1.0])
    np.testing.assert_allclose(clipped[1], [2.8])
    # update of norm 0.5 < clip: unchanged
    short, norm = clip_update([np.array([1.3, 1.4, 1.0]), np.array([2.0])], g, clip_norm=1.0)
    assert norm == pytest.approx(0.5)
    np.testing.assert_allclose(short[0], [1.3, 1.4, 1.0])
    # norms between the clip and 1 are clipped too: (0.6, 0.8) has norm 1, clip 0.5 halves it
    half, norm = clip_update([np.array([1.6, 1.8, 1.0]), np.array([2.0])], g, clip_norm=0.5)
    assert norm == pytest.approx(1.0)
    np.testing.assert_allclose(half[0], [1.3, 1.4, 1.0])
    # no update at all: the global model back, no division by zero
    same, norm = clip_update(g, g, clip_norm=1.0)
    assert norm == 0.0
    np.testing.assert_array_equal(same[0], g[0])


def test_clipped_norms_are_bounded_by_the_clip() -> None:
    """Random updates with norms spread over 0.01..100: after clipping each norm is min(norm, clip)."""
    rng = np.random.default_rng(0)
    g = [rng.normal(size=7), rng.normal(size=(2, 3))]
    for scale in np.geomspace(0.01, 100, 25):
        p = [a + scale * rng.normal(size=a.shape) for a in g]
        clipped, norm = clip_update(p, g, clip_norm=0.7)
        after = np.sqrt(sum(np.sum((c - a) ** 2) for c, a in zip(clipped, g, strict=True)))
        assert after == pytest.approx(min(norm, 0.7), rel=1e-12)


def test_dp_mean_without_noise_is_the_mean_of_clipped_updates() -> None:
    """Global (1, 1). Client a moves by (10, 0) (norm 10, clipped to (1, 0)); b by (0, 0.1) (kept);
    c by (-3, 4) (norm 5, clipped to (-0.6, 0.8)); counts are ignored (uniform mean):
    (0.4/3, 0.9/3) + global."""
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=1.0, noise_multiplier=0.0)
    g = [np.array([1.0, 1.0])]
    out = dp.aggregate_fit(1, [_r([11.0, 1.0], 100), _r([1.0, 1.1]), _r([-2.0, 5.0])], [], global_params=g)
    np.testing.assert_allclose(out[0], [1.0 + 0.4 / 3, 1.0 + 0.9 / 3], rtol=1e-12)
    assert dp.epsilon() == float("inf")  # no noise: no privacy claimed
    assert dp.describe()["epsilon"] == float("inf")


def test_dp_noise_has_the_configured_spread() -> None:
    """Four clients that do not move: the aggregate is the global model plus N(0, (z*C)^2)/n per coordinate,
    std 2.0 * 0.5 / 4 = 0.25. With 40 000 coordinates the sample std is within 1.5 % (se 0.35 %)."""
    n_coords = 40_000
    g = [np.full(n_coords, 3.0)]
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=0.5, noise_multiplier=2.0, seed=7)
    out = dp.aggregate_fit(1, [_r(g[0], 10, f"c{i}") for i in range(4)], [], global_params=g)[0]
    noise = out - 3.0
    assert np.std(noise) == pytest.approx(0.25, rel=0.015)
    assert abs(np.mean(noise)) < 5 * 0.25 / np.sqrt(n_coords)
    # A second round draws fresh noise (not the same vector again).
    out2 = dp.aggregate_fit(2, [_r(g[0], 10, f"c{i}") for i in range(4)], [], global_params=g)[0]
    assert abs(np.corrcoef(out - 3.0, out2 - 3.0)[0, 1]) < 0.03


def test_dp_noise_is_reproducible_from_its_seed() -> None:
    def run(seed: int) -> np.ndarray:
        dp = DPFixedClipping(FedAvg(CFG), clip_norm=1.0, noise_multiplier=1.0, seed=seed)
        return dp.aggregate_fit(1, [_r(np.zeros(50), 1, "a"), _r(np.zeros(50), 1, "b")], [], [np.zeros(50)])[
            0
        ]

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))


def test_dp_clips_before_adding_noise() -> None:
    """Clients moved by 1000 along coordinate 0: clipped to 0.5 each, so the mean moves by 0.5 (+ noise of
    std 1 * 0.5 / 2 = 0.25 per coordinate); unclipped it would move by 1000."""
    g = [np.zeros(10_000)]
    far = np.zeros(10_000)
    far[0] = 1000.0
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=0.5, noise_multiplier=1.0, seed=3)
    out = dp.aggregate_fit(1, [_r(far, 1, "a"), _r(far, 1, "b")], [], global_params=g)[0]
    assert abs(out[0] - 0.5) < 4 * 0.25
    assert np.std(out[1:]) == pytest.approx(0.25, rel=0.03)


def test_dp_epsilon_counts_aggregated_rounds_only() -> None:
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=1.0, noise_multiplier=1.3, delta=1e-6, seed=0)
    assert dp.epsilon() == 0.0 and dp.rounds_ == 0
    g = [np.zeros(3)]
    for rnd in (1, 2):
        dp.aggregate_fit(rnd, [_r(np.ones(3), 1, "a"), _r(np.ones(3), 1, "b")], [], global_params=g)
    with pytest.raises(QuorumError):
        dp.aggregate_fit(3, [_r(np.ones(3), 1, "a")], [], global_params=g)
    assert dp.rounds_ == 2
    assert dp.epsilon() == gaussian_epsilon(1.3, 2, 1e-6)
    assert dp.epsilon(5) == gaussian_epsilon(1.3, 5, 1e-6)
    assert dp.describe() == {
        "clip_norm": 1.0,
        "noise_multiplier": 1.3,
        "delta": 1e-6,
        "epsilon": gaussian_epsilon(1.3, 2, 1e-6),
        "rounds": 2,
    }


def test_dp_excludes_an_invalid_update_and_keeps_the_round() -> None:
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=10.0, noise_multiplier=0.0)
    g = [np.zeros(2)]
    out = dp.aggregate_fit(
        1, [_r([1.0, 2.0], 1, "a"), _r([3.0, 4.0], 1, "b"), _r([np.nan, 0], 1, "x")], [], g
    )
    np.testing.assert_allclose(out[0], [2.0, 3.0])
    assert [(f.client_id, f.reason) for f in dp.failures_] == [
        ("x", "invalid update: parameter 0 has 1 non-finite values")
    ]  # type: ignore[union-attr]


def test_dp_applies_the_inner_rule_to_the_private_mean() -> None:
    """FedAdam inside DP sees one "client" at the clipped mean: lr 0.1, first step moves each coordinate by
    0.1 * d / (|d| + 1e-3) for d = mean clipped update = (0.3, -0.2)."""
    dp = DPFixedClipping(FedAdam(CFG, server_learning_rate=0.1), clip_norm=10.0, noise_multiplier=0.0)
    out = dp.aggregate_fit(1, [_r([0.2, -0.2], 1, "a"), _r([0.4, -0.2], 9, "b")], [], [np.zeros(2)])[0]
    np.testing.assert_allclose(out, [0.1 * 0.3 / 0.301, -0.1 * 0.2 / 0.201], rtol=1e-12)


def test_dp_keeps_the_inner_client_config_and_name() -> None:
    inner = FedProx(
        CFG, proximal_mu=0.4, min_fit_clients=1, min_completion_rate=0.3, fraction_fit=0.5, seed=8
    )
    dp = DPFixedClipping(inner)
    assert dp.name == "dp-fedprox" and dp.min_fit_clients == 1
    assert (dp.min_completion_rate, dp.fraction_fit, dp.seed) == (0.3, 0.5, 8)
    (ins,) = dp.configure_fit(1, [np.zeros(2)], ["a"])
    assert ins.options.proximal_mu == 0.4
    assert (dp.clip_norm, dp.noise_multiplier, dp.delta) == (1.0, 1.0, 1e-5)
    with pytest.raises(NotImplementedError):
        dp.aggregate(1, [], [np.zeros(2)])
    with pytest.raises(RuntimeError, match="needs global_params"):
        DPFixedClipping(FedAvg(CFG)).aggregate_fit(1, [_r([1.0]), _r([1.0])], [])


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"clip_norm": 0.0}, "clip_norm must be a positive number, got 0.0"),
        ({"clip_norm": float("inf")}, "clip_norm must be a positive number"),
        ({"noise_multiplier": -0.1}, "noise_multiplier must be >= 0, got -0.1"),
        ({"delta": 0.0}, r"delta must be in \(0, 1\), got 0.0"),
        ({"delta": 1.0}, r"delta must be in \(0, 1\)"),
    ],
)
def test_dp_refuses_settings_that_promise_nothing(kwargs: dict[str, float], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        DPFixedClipping(FedAvg(CFG), **kwargs)


def test_dp_needs_a_mean_based_inner_rule() -> None:
    with pytest.raises(
        TypeError, match=r"^DP averaging needs a mean-based inner strategy \(FedAvg, FedProx or FedAdam\)$"
    ):
        DPFixedClipping(FedMedian(CFG))  # type: ignore[arg-type]


def _rdp_epsilon(sigma: float, rounds: int, delta: float) -> float:
    """The conversion the accountant uses (Balle et al. 2020), minimised over a fine grid of orders:
    eps = min_a  T*a/(2 sigma^2) + log(1 - 1/a) - (log(delta) + log(a)) / (a - 1)."""
    a = np.linspace(1.001, 600.0, 2_000_000)
    return float(
        np.min(rounds * a / (2 * sigma**2) + np.log1p(-1 / a) - (np.log(delta) + np.log(a)) / (a - 1))
    )


@pytest.mark.parametrize(("sigma", "rounds", "delta"), [(1.0, 1, 1e-5), (2.0, 10, 1e-5), (0.7, 3, 1e-3)])
def test_gaussian_epsilon_is_the_rdp_bound(sigma: float, rounds: int, delta: float) -> None:
    assert gaussian_epsilon(sigma, rounds, delta) == pytest.approx(
        _rdp_epsilon(sigma, rounds, delta), rel=1e-4
    )


def test_gaussian_epsilon_composition_and_edges() -> None:
    """T rounds at noise sigma spend what one round at sigma / sqrt(T) spends (RDP adds linearly)."""
    assert gaussian_epsilon(2.0, 16, 1e-5) == pytest.approx(gaussian_epsilon(0.5, 1, 1e-5), rel=1e-12)
    assert gaussian_epsilon(1.0, 4, 1e-5) == pytest.approx(10.725284317042941, rel=1e-9)
    assert gaussian_epsilon(1.0, 0, 1e-5) == 0.0
    assert gaussian_epsilon(0.0, 5, 1e-5) == float("inf")
    assert gaussian_epsilon(-1.0, 5, 1e-5) == float("inf")
    # Huge noise: the bound goes to 0 but never below.
    assert gaussian_epsilon(1e6, 1, 0.5) == 0.0


def test_dp_logs_what_it_did_each_round(caplog: pytest.LogCaptureFixture) -> None:
    """Updates of norm 3 and 5 (median 4) clipped at 2, noise 1.5: the log says so, with the epsilon spent."""
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=2.0, noise_multiplier=1.5, delta=1e-4, seed=0)
    g = [np.zeros(2)]
    with caplog.at_level(logging.INFO, logger="federated.strategy.dp"):
        dp.aggregate_fit(4, [_r([3.0, 0.0], 1, "a"), _r([3.0, 4.0], 1, "b")], [], global_params=g)
    eps = gaussian_epsilon(1.5, 1, 1e-4)
    assert [r.getMessage() for r in caplog.records if r.name == "federated.strategy.dp"] == [
        f"round 4: DP clip=2 median update norm=4 noise_multiplier=1.5 epsilon={eps:.3g} (delta=0.0001)"
    ]


def test_dp_uses_the_global_model_given_to_configure_fit() -> None:
    """Without global_params, aggregate_fit clips around the parameters configure_fit copied (a caller
    changing its array afterwards does not move them). Update (3, 4) from (1, 1): norm 5, clipped to 1."""
    dp = DPFixedClipping(FedAvg(CFG), clip_norm=1.0, noise_multiplier=0.0)
    g = np.array([1.0, 1.0])
    dp.configure_fit(1, [g], ["a", "b"])
    g[:] = 100.0
    out = dp.aggregate_fit(1, [_r([4.0, 5.0], 1, "a"), _r([4.0, 5.0], 1, "b")], [])[0]
    np.testing.assert_allclose(out, [1.6, 1.8], rtol=1e-12)


def test_gaussian_epsilon_without_noise_does_not_divide_by_zero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gaussian_epsilon(0.0, 3, 1e-5) == float("inf")
