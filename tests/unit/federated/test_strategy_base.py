"""What every strategy shares: settings, client sampling and configs, screening of updates, the quorum."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pytest

from federated.client import ClientResult
from federated.strategy import (
    STRATEGIES,
    ClientFailure,
    FedAdam,
    FedAvg,
    FedTrimmedAvg,
    Krum,
    QuorumError,
    Strategy,
)

CFG: dict[str, Any] = {"model": {"fault_names": ["leak"], "n_features": 1}, "local_epochs": 3}


def _r(values: list[float], n: int = 1, cid: str = "") -> ClientResult:
    return ClientResult([np.asarray(values, dtype=np.float64)], n, {}, cid)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_rule_passes_the_shared_settings_on(name: str) -> None:
    s = STRATEGIES[name](CFG, min_fit_clients=3, min_completion_rate=0.75, fraction_fit=0.5, seed=9)
    assert (s.min_fit_clients, s.min_completion_rate, s.fraction_fit, s.seed) == (3, 0.75, 0.5, 9)
    assert s.accepted_ == [] and s.failures_ == []


def test_defaults() -> None:
    s = FedAvg(CFG)
    assert (s.min_fit_clients, s.min_completion_rate, s.fraction_fit, s.seed) == (2, 0.5, 1.0, 0)
    assert Krum(CFG).selected_ == []
    assert FedTrimmedAvg(CFG, beta=0.0).beta == 0.0  # beta 0 is the plain mean
    np.testing.assert_allclose(
        FedTrimmedAvg(CFG, beta=0.0).aggregate_fit(1, [_r([1.0]), _r([2.0]), _r([9.0])], [], [np.zeros(1)])[
            0
        ],
        [4.0],
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fraction_fit": 0.0},
        {"fraction_fit": 1.5},
        {"min_completion_rate": -0.1},
        {"min_completion_rate": 1.5},
        {"min_fit_clients": 0},
    ],
)
def test_settings_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"^invalid fraction_fit / min_completion_rate / min_fit_clients$"):
        FedAvg(CFG, **kwargs)  # type: ignore[arg-type]


def test_settings_at_their_limits_are_accepted() -> None:
    FedAvg(CFG, fraction_fit=1.0, min_completion_rate=0.0, min_fit_clients=1)
    FedAvg(CFG, min_completion_rate=1.0)
    with pytest.raises(
        ValueError, match=r"^fit_config needs 'model' \(federated.model.model_config\(initial_model\)\)$"
    ):
        FedAvg({"local_epochs": 1})


def test_client_configs_carry_round_and_distinct_seeds() -> None:
    """seed * 1_000_003 + round * 1009 + client index: 2_000_006 + 5_045 + i."""
    s = FedAvg(CFG, seed=2)
    ins = s.configure_fit(5, [np.zeros(1)], ["a", "b", "c"])
    assert [i.client_id for i in ins] == ["a", "b", "c"]
    assert [i.options.seed for i in ins] == [2_005_051, 2_005_052, 2_005_053]
    assert all(i.config["server_round"] == 5 and i.options.local_epochs == 3 for i in ins)
    assert all(i.config["model"] == CFG["model"] for i in ins)
    ins[0].params[0][0] = 99.0  # each client gets its own copy
    assert ins[1].params[0][0] == 0.0


def test_sampling_is_seeded_without_replacement_and_changes_by_round() -> None:
    """fraction 0.5 of 4 clients -> 2 per round, never the same client twice, reproducible for a seed, and
    different subsets across rounds."""
    clients = ["a", "b", "c", "d"]
    picks = []
    for rnd in range(1, 31):
        ids = [
            i.client_id
            for i in FedAvg(CFG, fraction_fit=0.5, seed=4).configure_fit(rnd, [np.zeros(1)], clients)
        ]
        again = [
            i.client_id
            for i in FedAvg(CFG, fraction_fit=0.5, seed=4).configure_fit(rnd, [np.zeros(1)], clients)
        ]
        assert ids == again and len(ids) == 2 and len(set(ids)) == 2
        assert ids == sorted(ids, key=clients.index)
        picks.append(tuple(ids))
    assert len(set(picks)) >= 4
    # min_fit_clients is a floor on the sample: 0.1 of 4 clients would be 1.
    assert len(FedAvg(CFG, fraction_fit=0.1, min_fit_clients=3).configure_fit(1, [np.zeros(1)], clients)) == 3
    assert len(FedAvg(CFG, fraction_fit=0.6).configure_fit(1, [np.zeros(1)], clients)) == math.ceil(0.6 * 4)


def test_too_few_available_clients() -> None:
    with pytest.raises(QuorumError, match=r"^round 3: only 1 clients available, min_fit_clients=2$"):
        FedAvg(CFG).configure_fit(3, [np.zeros(1)], ["a"])


def test_global_model_is_copied_at_configure_time() -> None:
    """FedAdam reads the global model: changing the caller's array after configure_fit must not matter.
    First step from 0 towards a client mean of 1: 0.1 * 1 / (1 + 1e-3)."""
    s = FedAdam(CFG, server_learning_rate=0.1)
    g = np.zeros(1)
    s.configure_fit(1, [g], ["a", "b"])
    g[:] = 50.0
    out = s.aggregate_fit(1, [_r([1.0], 1, "a"), _r([1.0], 1, "b")], [])
    np.testing.assert_allclose(out[0], [0.1 / 1.001], rtol=1e-12)
    with pytest.raises(
        RuntimeError, match=r"^aggregate_fit needs global_params \(configure_fit was not called"
    ):
        FedAvg(CFG).aggregate_fit(1, [_r([1.0]), _r([1.0])], [])


def test_quorum_at_the_completion_rate_boundary() -> None:
    s = FedAvg(CFG, min_fit_clients=1, min_completion_rate=0.5)
    out = s.aggregate_fit(1, [_r([2.0], 1, "a")], [ClientFailure("b", "timed out")], [np.zeros(1)])
    np.testing.assert_allclose(out[0], [2.0])  # 1 of 2 = 0.5 is enough
    with pytest.raises(QuorumError, match=r"1/3 clients completed \(completion rate 0.33 < min 0.50"):
        s.aggregate_fit(
            1, [_r([2.0], 1, "a")], [ClientFailure("b", "x"), ClientFailure("c", "y")], [np.zeros(1)]
        )
    with pytest.raises(
        QuorumError, match=r"^round 2: quorum not reached: 0/0 clients completed \(completion rate 0.00"
    ):
        s.aggregate_fit(2, [], [], [np.zeros(1)])


def test_failures_are_logged_and_named_in_the_error(caplog: pytest.LogCaptureFixture) -> None:
    s = FedAvg(CFG, min_fit_clients=2)
    with (
        caplog.at_level(logging.WARNING, logger="federated.strategy.base"),
        pytest.raises(QuorumError) as err,
    ):
        s.aggregate_fit(
            7, [_r([1.0], 1, "a")], [ClientFailure("b", "site offline"), RuntimeError("boom")], [np.zeros(1)]
        )
    assert str(err.value) == (
        "round 7: quorum not reached: 1/3 clients completed (completion rate 0.33 < min 0.50 or results < "
        "min_fit_clients=2); failures: b: site offline; ?: RuntimeError: boom"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "round 7: client failed: b: site offline",
        "round 7: client failed: ?: RuntimeError: boom",
    ]


def test_screening_names_what_is_wrong_with_each_update() -> None:
    s = FedAvg(CFG, min_fit_clients=1, min_completion_rate=0.2)
    results: list[Any] = [
        _r([1.0], 2, "ok"),
        {"params": [1.0]},
        _r([np.inf], 1, "inf"),
        _r([1.0, 2.0], 1, "long"),
    ]
    out = s.aggregate_fit(1, results, [ClientFailure("t", "timed out")], [np.zeros(1)])
    np.testing.assert_allclose(out[0], [1.0])
    assert [r.client_id for r in s.accepted_] == ["ok"]
    assert [(f.client_id, f.reason) for f in s.failures_] == [  # type: ignore[union-attr]
        ("t", "timed out"),
        ("?", "invalid update: returned dict, not ClientResult"),
        ("inf", "invalid update: parameter 0 has 1 non-finite values"),
        ("long", "invalid update: parameter 0 has shape (2,), expected (1,)"),
    ]


def test_ensemble_screens_like_every_rule() -> None:
    s = STRATEGIES["ensemble"](CFG, min_fit_clients=1)
    good = ClientResult([np.ones((1, 1))], 5, {"positives_leak": 2.0}, "good")
    bad = ClientResult([np.full((1, 1), np.nan)], 5, {"positives_leak": 2.0}, "nan")
    silent = ClientResult([np.full((1, 1), 7.0)], 1, {}, "no_claims")  # claims nothing: expert in nothing
    out = s.aggregate_fit(1, [good, bad, silent], [], [np.zeros((1, 1))])
    np.testing.assert_allclose(out[0], [[1.0]])
    assert [f.client_id for f in s.failures_] == ["nan"]  # type: ignore[union-attr]


def test_a_non_finite_aggregate_is_refused() -> None:
    class Broken(Strategy):
        name = "broken"

        def aggregate(self, server_round: int, results: list[ClientResult], global_params: Any) -> Any:
            return [np.zeros(1), np.array([np.nan])]

    with pytest.raises(FloatingPointError, match=r"^round 3: aggregated parameter 1 is not finite$"):
        Broken(CFG).aggregate_fit(3, [_r([1.0]), _r([1.0])], [], [np.zeros(1)])


def test_an_integer_global_model_is_taken_as_float() -> None:
    """The ensemble copies the global arrays and writes expert heads into them: an integer global model must
    not truncate a head of 1.5 to 1, whether given to configure_fit or to aggregate_fit."""
    cfg = {"model": {"fault_names": ["leak", "bearing"], "n_features": 1}}
    experts = [
        ClientResult([np.full((2, 1), 1.5)], 4, {"positives_leak": 1.0}, "a"),
        ClientResult([np.full((2, 1), 9.0)], 4, {"positives_bearing": 2.0}, "b"),
    ]
    s = STRATEGIES["ensemble"](cfg)
    np.testing.assert_allclose(
        s.aggregate_fit(1, experts, [], [np.zeros((2, 1), dtype=int)])[0], [[1.5], [9.0]]
    )
    s.configure_fit(2, [np.zeros((2, 1), dtype=int)], ["a", "b"])
    np.testing.assert_allclose(s.aggregate_fit(2, experts, [])[0], [[1.5], [9.0]])
