"""Every strategy against numbers worked out by hand, over several rounds where the rule keeps state."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from federated.aggregate import trim_count
from federated.client import ClientData, ClientResult, client_update
from federated.model import FaultClassifier, get_parameters, model_config
from federated.strategy import (
    STRATEGIES,
    ExpertEnsemble,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    QuorumError,
    make_strategy,
)

CFG: dict[str, Any] = {"model": {"fault_names": ["leak", "blocked_inlet", "bearing"], "n_features": 2}}


def _r(values: list[float], n: int = 1, cid: str = "", **metrics: float) -> ClientResult:
    """A client result with a single 1-D parameter array."""
    return ClientResult([np.asarray(values, dtype=np.float64)], n, dict(metrics), cid)


def _round(s: Any, rnd: int, g: list[float], results: list[ClientResult]) -> np.ndarray:
    return s.aggregate_fit(rnd, results, [], global_params=[np.asarray(g, dtype=np.float64)])[0]


def test_registry_names_every_rule() -> None:
    assert set(STRATEGIES) == {
        "fedavg",
        "fedprox",
        "fedadam",
        "fedmedian",
        "fedtrimmedavg",
        "krum",
        "ensemble",
    }
    assert all(STRATEGIES[name].name == name for name in STRATEGIES)
    assert isinstance(make_strategy("krum", CFG, num_byzantine=2), Krum)
    assert make_strategy("krum", CFG, num_byzantine=2).num_byzantine == 2
    with pytest.raises(ValueError, match=r"unknown strategy 'fedsgd'; known: \['ensemble', 'fedadam'"):
        make_strategy("fedsgd", CFG)


def test_fedavg_two_rounds_by_hand() -> None:
    """Round 1: (1*1 + 3*3)/4 = 2.5, (1*2 + 3*6)/4 = 5. Round 2 (weights 2, 2, 4): (2*0 + 2*4 + 4*10)/8 = 6,
    (2*1 + 2*1 + 4*1)/8 = 1; the global model does not enter the mean."""
    s = FedAvg(CFG)
    out1 = _round(s, 1, [0.0, 0.0], [_r([1.0, 2.0], 1, "a"), _r([3.0, 6.0], 3, "b")])
    np.testing.assert_allclose(out1, [2.5, 5.0], rtol=1e-12)
    out2 = _round(s, 2, list(out1), [_r([0.0, 1.0], 2, "a"), _r([4.0, 1.0], 2, "b"), _r([10.0, 1.0], 4, "c")])
    np.testing.assert_allclose(out2, [6.0, 1.0], rtol=1e-12)


def test_fedadam_two_rounds_with_state_by_hand() -> None:
    """eta=0.1, beta1=0.9, beta2=0.99, tau=1e-3; global x0 = (0, 1).

    Round 1: the example-weighted client mean is ((-0.1*1 + 0.7*3)/4, 0.8) = (0.5, 0.8), so d1 = (0.5, -0.2).
    m1 = 0.1*d1 = (0.05, -0.02); v1 = 0.01*d1^2 = (0.0025, 0.0004); m_hat = m1/0.1 = d1;
    v_hat = v1/0.01 = d1^2, sqrt = (0.5, 0.2); x1 = x0 + 0.1*d1/(|d1| + 1e-3)
    = (0.05/0.501, 1 - 0.02/0.201) = (0.0998004, 0.9004975).
    Round 2: mean (2.0, 0.8), d2 = (1.9001996, -0.1004975).
    m2 = 0.9*m1 + 0.1*d2 = (0.2350200, -0.0280498); v2 = 0.99*v1 + 0.01*d2^2 = (0.0385826, 0.000496998);
    m_hat = m2/0.19 = (1.2369472, -0.1476315); v_hat = v2/0.0199, sqrt = (1.3924164, 0.1580338);
    x2 = x1 + 0.1*m_hat/(sqrt + 1e-3) = (0.0998004 + 0.0887708, 0.9004975 - 0.0928294)
    = (0.1885712, 0.8076681).
    """
    s = FedAdam(CFG, server_learning_rate=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3)
    x1 = _round(s, 1, [0.0, 1.0], [_r([-0.1, 0.8], 1, "a"), _r([0.7, 0.8], 3, "b")])
    np.testing.assert_allclose(x1, [0.0998003992015968, 0.900497512437811], rtol=1e-12)
    np.testing.assert_allclose(s.m_[0], [0.05, -0.02], rtol=1e-12)  # type: ignore[index]
    np.testing.assert_allclose(s.v_[0], [0.0025, 0.0004], rtol=1e-12)  # type: ignore[index]
    x2 = _round(s, 2, list(x1), [_r([2.0, 0.8], 1, "a"), _r([2.0, 0.8], 3, "b")])
    np.testing.assert_allclose(s.m_[0], [0.23501996007984027, -0.02804975124378108], rtol=1e-12)  # type: ignore[index]
    np.testing.assert_allclose(s.v_[0], [0.038582585228744144, 0.0004969975000618798], rtol=1e-12)  # type: ignore[index]
    np.testing.assert_allclose(x2, [0.1885712199771502, 0.8076681431470764], rtol=1e-12)
    assert s.t_ == 2


def test_fedadam_defaults() -> None:
    """Reddi et al.'s defaults as used here: eta=0.03, beta1=0.9, beta2=0.99, tau=1e-3."""
    s = FedAdam(CFG)
    assert (s.server_learning_rate, s.beta_1, s.beta_2, s.tau) == (0.03, 0.9, 0.99, 1e-3)
    assert s.m_ is None and s.v_ is None and s.t_ == 0


def _prox_site() -> tuple[dict[str, Any], list[np.ndarray], ClientData]:
    """Logistic heads over all-zero (standardised) inputs: only the biases learn, from the label means."""
    model = FaultClassifier(hidden=0).initialize(2)
    Y = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]])
    fit = {"model": model_config(model), "local_epochs": 2, "learning_rate": 0.1, "batch_size": 4}
    return {**fit, "optimizer": "sgd"}, get_parameters(model), ClientData(np.zeros((4, 2)), Y, "s")


def test_fedprox_sends_its_proximal_term_and_it_changes_the_update() -> None:
    """SGD (momentum 0.9, lr 0.1), two full-batch steps from b = 0; with all-zero inputs
    dL/db_k = sigma(b_k) - mean(y_k), mean(y) = (0.75, 0, 0). Step 1 (the proximal term is zero at the start):
    g1 = (-0.25, 0.5, 0.5), b1 = -0.1*g1 = (0.025, -0.05, -0.05).
    Step 2: g2 = sigma(b1) - mean(y) + mu*b1; m2 = 0.9*g1 + g2; b2 = b1 - 0.1*m2.
    With mu = 0:  g2 = (-0.2437503, 0.4875026, ...), b2 = (0.0718750, -0.1437503, ...).
    With mu = 2:  g2 adds 2*b1 = (0.05, -0.1, ...),     b2 = (0.0668750, -0.1337503, ...).
    """
    fit, params, site = _prox_site()
    ins = FedProx(fit, proximal_mu=2.0, min_fit_clients=1).configure_fit(1, params, ["s"])[0]
    assert ins.options.proximal_mu == 2.0
    b_prox = client_update(ins.params, site, ins.config).params[1]
    plain = FedAvg(fit, min_fit_clients=1).configure_fit(1, params, ["s"])[0]
    assert plain.options.proximal_mu == 0.0
    b_plain = client_update(plain.params, site, plain.config).params[1]
    s1 = 1 / (1 + np.exp(-0.025)) - 0.75
    s2 = 1 / (1 + np.exp(0.05))
    np.testing.assert_allclose(b_plain, [0.025 - 0.1 * (-0.225 + s1), *[-0.05 - 0.1 * (0.45 + s2)] * 2])
    np.testing.assert_allclose(
        b_prox, [0.025 - 0.1 * (-0.225 + s1 + 0.05), *[-0.05 - 0.1 * (0.45 + s2 - 0.1)] * 2]
    )
    np.testing.assert_allclose(b_prox[:2], [0.066875, -0.13375025], atol=1e-6)


def test_fedprox_aggregates_like_fedavg_and_refuses_negative_mu() -> None:
    s = FedProx(CFG)
    assert s.proximal_mu == 0.1
    np.testing.assert_allclose(_round(s, 1, [0.0], [_r([1.0], 1, "a"), _r([5.0], 3, "b")]), [4.0])
    FedProx(CFG, proximal_mu=0.0)
    with pytest.raises(ValueError, match=r"^proximal_mu must be >= 0$"):
        FedProx(CFG, proximal_mu=-0.1)


def test_fedmedian_by_hand_over_two_rounds() -> None:
    """Odd count: the middle value; even count: the mean of the two middle values; counts are ignored."""
    s = FedMedian(CFG)
    out = _round(s, 1, [0.0, 0.0], [_r([1.0, -5.0], 100), _r([7.0, 2.0]), _r([3.0, 9.0])])
    np.testing.assert_allclose(out, [3.0, 2.0])
    out = _round(s, 2, list(out), [_r([1.0, 0.0]), _r([2.0, 0.0]), _r([3.0, 4.0]), _r([10.0, 4.0], 50)])
    np.testing.assert_allclose(out, [2.5, 2.0])


@pytest.mark.parametrize(
    ("n", "beta", "cut"),
    [
        (2, 0.2, 0),  # two clients: nothing can be trimmed and leave a value
        (3, 0.2, 1),  # floor(0.6) = 0, but three clients trim one per side
        (4, 0.2, 1),
        (3, 0.0, 0),  # beta = 0 asks for the plain mean
        (5, 0.2, 1),
        (10, 0.29, 2),  # floor(2.9) = 2, not round() = 3
        (10, 0.3, 3),
        (9, 0.49, 4),
    ],
)
def test_trim_count(n: int, beta: float, cut: int) -> None:
    assert trim_count(n, beta) == cut


def test_trim_count_refuses_beta_outside_its_range() -> None:
    for beta in (-0.01, 0.5):
        with pytest.raises(ValueError, match=r"^beta must be in \[0, 0.5\)$"):
            trim_count(5, beta)
    with pytest.raises(ValueError, match=r"^beta must be in \[0, 0.5\)$"):
        FedTrimmedAvg(CFG, beta=0.5)
    with pytest.raises(ValueError, match=r"^beta must be in \[0, 0.5\)$"):
        FedTrimmedAvg(CFG, beta=-0.1)


def test_fedtrimmedavg_by_hand() -> None:
    """Ten clients 1, 2, 4, ..., 512 (given unsorted): beta=0.29 drops floor(2.9) = 2 per side, mean of
    4..128 = 252/6 = 42 (dropping 3 per side would give 30, dropping 1 would give 63.75). Three clients at
    beta 0.2 drop one per side: the middle value."""
    vals = [256.0, 1.0, 16.0, 512.0, 2.0, 64.0, 4.0, 128.0, 8.0, 32.0]
    s = FedTrimmedAvg(CFG, beta=0.29)
    out = _round(s, 1, [0.0, 0.0], [_r([v, -v], 1000 if v == 512 else 1) for v in vals])
    np.testing.assert_allclose(out, [42.0, -42.0], rtol=1e-12)
    s3 = FedTrimmedAvg(CFG)
    assert s3.beta == 0.2
    np.testing.assert_allclose(
        _round(s3, 2, list(out), [_r([1.0, 0.0]), _r([100.0, 3.0]), _r([2.0, 6.0])]), [2.0, 3.0]
    )
    np.testing.assert_allclose(_round(s3, 3, [0.0, 0.0], [_r([1.0, 0.0]), _r([3.0, 4.0])]), [2.0, 2.0])


def test_krum_picks_by_its_neighbour_count() -> None:
    """Points 0, 1, 3, 7, 20 with f = 1: each scores its n - f - 2 = 2 nearest squared distances:
    0 -> 1 + 9 = 10, 1 -> 1 + 4 = 5, 3 -> 4 + 9 = 13, 7 -> 16 + 36 = 52, 20 -> 169 + 289 = 458, so Krum
    keeps the client at 1. One neighbour (scores 1, 1, 4, ...) would keep 0; three (59, 41, 29, ...) would
    keep 3."""
    results = [_r([v], 1, f"c{v:g}") for v in (0.0, 1.0, 3.0, 7.0, 20.0)]
    s = Krum(CFG)
    assert (s.num_byzantine, s.num_selected) == (1, 1)
    np.testing.assert_allclose(_round(s, 1, [0.0], results), [1.0])
    assert s.selected_ == ["c1"]
    # f = 2 leaves one neighbour: clients 0 and 1 tie at 1 and the first listed wins.
    s2 = Krum(CFG, num_byzantine=2)
    np.testing.assert_allclose(_round(s2, 1, [0.0], results), [0.0])
    assert s2.selected_ == ["c0"]


def test_multi_krum_ignores_reported_counts() -> None:
    """Multi-Krum keeps clients 1 and 0 (scores 5 and 10); their plain mean is 0.5 whatever they claim (by
    counts it would be (1*1e6 + 0*1)/(1e6 + 1))."""
    results = [_r([v], 1, f"c{v:g}") for v in (0.0, 3.0, 7.0, 20.0)] + [_r([1.0], 1_000_000, "c1")]
    s = Krum(CFG, num_selected=2)
    np.testing.assert_allclose(_round(s, 1, [0.0], results), [0.5])
    assert sorted(s.selected_) == ["c0", "c1"]


def test_krum_settings_are_checked() -> None:
    assert Krum(CFG, num_byzantine=0).num_byzantine == 0  # no Byzantine client assumed: allowed
    for kw in ({"num_byzantine": -1}, {"num_selected": 0}):
        with pytest.raises(ValueError, match=r"^Krum needs num_byzantine >= 0 and num_selected >= 1"):
            Krum(CFG, **kw)


def test_krum_with_few_clients_lowers_f_and_needs_three() -> None:
    """Krum needs n > f + 2: with 4 clients f = 5 drops to n - 3 = 1 (one neighbour), with 3 clients to 0."""
    s = Krum(CFG, num_byzantine=5)
    # 0, 1, 3, 7 with f = 1 (= 4 - 3): one neighbour: 0 -> 1, 1 -> 1, 3 -> 4, 7 -> 16: keeps 0.
    np.testing.assert_allclose(_round(s, 1, [0.0], [_r([v]) for v in (7.0, 0.0, 1.0, 3.0)]), [0.0])
    np.testing.assert_allclose(_round(s, 1, [0.0], [_r([v]) for v in (7.0, 3.0, 1.0)]), [3.0])
    with pytest.raises(ValueError, match=r"^Krum needs at least 3 results, got 2$"):
        _round(s, 1, [0.0], [_r([0.0]), _r([1.0])])


def test_krum_aggregate_does_not_raise_on_a_zero_or_negative_count() -> None:
    """Counts play no part in Krum, so a bogus one cannot make it raise (aggregate_fit rejects it anyway)."""
    results = [_r([v], n) for v, n in ((0.0, 0), (1.0, -5), (3.0, 2), (7.0, 1), (20.0, 1))]
    np.testing.assert_allclose(Krum(CFG).aggregate(1, results, [np.zeros(1)])[0], [1.0])


def _experts(
    names: list[str], positives: list[list[float]], values: list[float], n: list[int]
) -> list[ClientResult]:
    return [
        ClientResult(
            [np.full((3, 2), v), np.full(3, v)],
            ni,
            {f"positives_{f}": p for f, p in zip(names, pos, strict=True)},
        )
        for pos, v, ni in zip(positives, values, n, strict=True)
    ]


def test_ensemble_weights_experts_by_examples_and_keeps_heads_without_expert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Leak: experts with 20 and 60 examples -> (1*20 + 5*60)/80 = 4; blocked inlet: one expert -> 2;
    bearing: nobody holds positives -> the global head (-1) stays, with a warning."""
    names = CFG["model"]["fault_names"]
    results = _experts(names, [[3, 0, 0], [0, 4, 0], [10, 0, 0]], [1.0, 2.0, 5.0], [20, 30, 60])
    s = ExpertEnsemble(CFG)
    opts = s.client_options(1)
    assert opts.train_heads == "own" and opts.calibrate is True
    assert s.client_config(1)["options"] == opts.to_plain()
    g = [np.full((3, 2), -1.0), np.full(3, -1.0)]
    with caplog.at_level(logging.WARNING, logger="federated.strategy.ensemble"):
        W, b = s.aggregate_fit(1, results, [], global_params=g)
    np.testing.assert_allclose(b, [4.0, 2.0, -1.0])
    np.testing.assert_allclose(W, [[4.0, 4.0], [2.0, 2.0], [-1.0, -1.0]])
    assert [rec.getMessage() for rec in caplog.records] == [
        "round 1: no expert for fault bearing; head kept from the global model"
    ]
    # A fault without experts early in the list does not stop the later heads from being assembled.
    first_missing = _experts(names, [[0, 4, 0], [0, 0, 10]], [2.0, 5.0], [30, 60])
    _, b = s.aggregate_fit(2, first_missing, [], global_params=g)
    np.testing.assert_allclose(b, [-1.0, 2.0, 5.0])


@pytest.mark.parametrize(
    ("claim", "why"),
    [
        (
            20.0,
            "positives_leak=20.0 is not a whole number in [0, num_examples=20)",
        ),  # every example: no negatives
        (25.0, "positives_leak=25.0 is not a whole number"),
        (-1.0, "positives_leak=-1.0"),
        (2.5, "positives_leak=2.5"),
        (float("nan"), "positives_leak=nan"),
    ],
)
def test_ensemble_rejects_claims_its_examples_cannot_hold(claim: float, why: str) -> None:
    """The liar is excluded with its reason; the honest experts decide every head."""
    names = CFG["model"]["fault_names"]
    results = _experts(names, [[claim, 0, 0], [3, 0, 0], [0, 4, 1]], [9.0, 1.0, 2.0], [20, 20, 20])
    s = ExpertEnsemble(CFG)
    _, b = s.aggregate_fit(1, results, [], global_params=[np.zeros((3, 2)), np.zeros(3)])
    np.testing.assert_allclose(b, [1.0, 2.0, 2.0])
    assert len(s.failures_) == 1 and s.failures_[0].reason.startswith("invalid update: " + why)


def test_ensemble_accepts_the_largest_honest_claim() -> None:
    names = CFG["model"]["fault_names"]
    results = _experts(names, [[19, 0, 0], [0, 1, 0], [0, 0, 1]], [9.0, 1.0, 2.0], [20, 20, 20])
    s = ExpertEnsemble(CFG)
    _, b = s.aggregate_fit(1, results, [], global_params=[np.zeros((3, 2)), np.zeros(3)])
    np.testing.assert_allclose(b, [9.0, 1.0, 2.0])
    assert s.failures_ == []


def test_ensemble_rejects_a_claim_that_is_not_a_number() -> None:
    results = _experts(
        CFG["model"]["fault_names"], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [9.0, 1.0, 2.0], [20] * 3
    )
    results[0].metrics["positives_bearing"] = "many"  # type: ignore[assignment]
    s = ExpertEnsemble(CFG)
    s.aggregate_fit(1, results, [], global_params=[np.zeros((3, 2)), np.zeros(3)])
    assert [f.reason for f in s.failures_] == ["invalid update: positives_bearing='many' is not a number"]


def test_quorum_counts_rejected_updates_as_failures() -> None:
    s = FedAvg(CFG, min_fit_clients=2)
    with pytest.raises(
        QuorumError, match=r"1/2 clients completed.*b: invalid update: parameter 0 has 1 non-finite"
    ):
        _round(s, 1, [0.0, 0.0], [_r([1.0, 2.0], 1, "a"), _r([np.nan, 2.0], 1, "b")])
