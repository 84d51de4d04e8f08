"""Round loop: quorum, failures, timeouts and invalid clients."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from federated.client import ClientData, ClientResult, client_update
from federated.model import FaultClassifier, get_parameters, model_config
from federated.server import ClientFn, run_federated
from federated.strategy import FedAvg, QuorumError
from plant_models.spec import FAULTS

from .conftest import N_FEATURES


def _strategy(**kw: object) -> tuple[FedAvg, list[np.ndarray]]:
    model = FaultClassifier(fault_names=FAULTS, hidden=0).initialize(N_FEATURES)
    return FedAvg({"model": model_config(model), "local_epochs": 1}, **kw), get_parameters(model)  # type: ignore[arg-type]


def _crash(params: list[np.ndarray], config: dict) -> ClientResult:
    raise RuntimeError("site offline")


def _moves_by(step: float, n: int, **metrics: float) -> ClientFn:
    """A client that returns the global parameters plus ``step`` and reports ``n`` examples."""

    def fn(params: list[np.ndarray], config: dict) -> ClientResult:
        return ClientResult([p + step for p in params], n, dict(metrics), f"moves{step:g}")

    return fn


def test_round_succeeds_with_quorum_despite_a_crash() -> None:
    """Clients move the model by +1 (1 example) and +3 (3 examples); the third crashes every round.
    Round 1 from 0: (1*1 + 3*3)/4 = 2.5. Round 2: (3.5*1 + 5.5*3)/4 = 5."""
    strategy, _ = _strategy(min_fit_clients=2, min_completion_rate=0.5)
    init = [np.zeros(2), np.zeros((1, 1))]
    clients = {"a": _moves_by(1.0, 1, train_loss=1.0), "b": _moves_by(3.0, 3, train_loss=3.0), "c": _crash}
    hist = run_federated(strategy, clients, rounds=2, initial_params=init)
    np.testing.assert_allclose(hist.params[0], [5.0, 5.0])
    np.testing.assert_allclose(hist.params[1], [[5.0]])
    assert [r.n_results for r in hist.rounds] == [2, 2]
    assert [r.server_round for r in hist.rounds] == [1, 2]
    assert all(
        [(f.client_id, f.reason) for f in r.failures] == [("c", "RuntimeError: site offline")]
        for r in hist.rounds
    )  # type: ignore[union-attr]
    # train_loss is example-weighted over the clients whose update was used: (1*1 + 3*3)/4
    assert hist.rounds[0].metrics["train_loss"] == pytest.approx(2.5)
    assert np.isnan(hist.rounds[0].metrics["train_acc"])  # nobody reported it
    assert [r.skipped for r in hist.rounds] == [False, False] and hist.excluded == {}


def test_real_clients_round_is_the_weighted_average_of_their_updates(
    skewed_clients: dict[str, ClientData],
) -> None:
    strategy, init = _strategy(min_fit_clients=3)
    hist = run_federated(strategy, skewed_clients, rounds=1, initial_params=init)
    replay, _ = _strategy(min_fit_clients=3)
    updates = [
        client_update(ins.params, skewed_clients[ins.client_id], ins.config)
        for ins in replay.configure_fit(1, init, list(skewed_clients))
    ]
    n = np.array([u.num_examples for u in updates], dtype=float)
    for i, p in enumerate(hist.params):
        np.testing.assert_allclose(p, sum(w * u.params[i] for w, u in zip(n / n.sum(), updates, strict=True)))


def test_invalid_update_is_excluded_and_the_quorum_decides(caplog: pytest.LogCaptureFixture) -> None:
    """A NaN update, a wrong shape and a zero count are rejected with their reasons; the two good clients
    carry the round: (1*1 + 3*3)/4 = 2.5."""

    def nan_update(params: list[np.ndarray], config: dict) -> ClientResult:
        bad = [p.copy() for p in params]
        bad[0][1] = np.nan
        return ClientResult(bad, 10, {"train_loss": 100.0}, "nan")

    def wrong_shape(params: list[np.ndarray], config: dict) -> ClientResult:
        return ClientResult([np.zeros(3), params[1]], 10, {}, "shape")

    clients = {
        "a": _moves_by(1.0, 1, train_loss=1.0),
        "b": _moves_by(3.0, 3, train_loss=3.0),
        "nan": nan_update,
        "shape": wrong_shape,
        "zero": _moves_by(50.0, 0),
        "dict": lambda p, c: {"params": p},
    }
    strategy, _ = _strategy(min_fit_clients=2, min_completion_rate=0.3)
    with caplog.at_level(logging.WARNING, logger="federated.strategy.base"):
        hist = run_federated(strategy, clients, 1, [np.zeros(2), np.zeros((1, 1))])  # type: ignore[arg-type]
    np.testing.assert_allclose(hist.params[0], [2.5, 2.5])
    rec = hist.rounds[0]
    assert rec.n_results == 2 and rec.metrics["train_loss"] == pytest.approx(2.5)
    reasons = {f.client_id: f.reason for f in rec.failures}  # type: ignore[union-attr]
    # Failures are named by the site the executor called, not by the id a payload claims ("moves50").
    assert reasons == {
        "dict": "malformed result: result lacks num_examples",
        "nan": "invalid update: parameter 0 has 1 non-finite values",
        "shape": "invalid update: parameter 0 has shape (3,), expected (2,)",
        "zero": "invalid update: num_examples must be > 0, got 0",
    }
    assert "round 1: client failed: nan: invalid update: parameter 0 has 1 non-finite values" in [
        r.getMessage() for r in caplog.records
    ]
    # With a completion-rate floor of 0.5 the same round (2 of 6 usable) is below quorum.
    strict, _ = _strategy(min_fit_clients=2, min_completion_rate=0.5)
    with pytest.raises(QuorumError, match=r"2/6 clients completed \(completion rate 0.33 < min 0.50"):
        run_federated(strict, clients, 1, [np.zeros(2), np.zeros((1, 1))])  # type: ignore[arg-type]


def test_evaluate_fn_sees_each_rounds_model() -> None:
    seen: list[tuple[int, float]] = []

    def evaluate(params: list[np.ndarray], rnd: int) -> dict[str, float]:
        seen.append((rnd, float(params[0][0])))
        return {"val_loss": 10.0 * rnd}

    strategy, _ = _strategy(min_fit_clients=2)
    clients = {"a": _moves_by(1.0, 1), "b": _moves_by(1.0, 1)}
    hist = run_federated(strategy, clients, 2, [np.zeros(2), np.zeros((1, 1))], evaluate_fn=evaluate)
    assert seen == [(1, 1.0), (2, 2.0)]
    assert [r.metrics["val_loss"] for r in hist.rounds] == [10.0, 20.0]


def test_on_quorum_failure_must_be_raise_or_skip() -> None:
    strategy, init = _strategy()
    with pytest.raises(ValueError, match=r"^on_quorum_failure must be 'raise' or 'skip'$"):
        run_federated(strategy, {}, 1, init, on_quorum_failure="retry")


def test_round_fails_with_clear_error_below_quorum(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=2, min_completion_rate=0.5)
    clients: dict[str, object] = {"site0": skewed_clients["site0"], "site1": _crash, "site2": _crash}
    with pytest.raises(QuorumError, match=r"quorum not reached: 1/3 clients completed.*site offline"):
        run_federated(strategy, clients, rounds=1, initial_params=init)  # type: ignore[arg-type]


def test_below_quorum_round_can_be_skipped(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=2)
    clients: dict[str, object] = {"site0": skewed_clients["site0"], "site1": _crash}
    hist = run_federated(strategy, clients, 2, init, on_quorum_failure="skip")  # type: ignore[arg-type]
    assert [r.skipped for r in hist.rounds] == [True, True]
    assert [r.n_results for r in hist.rounds] == [0, 0] and hist.rounds[0].metrics == {}
    assert [f.reason for f in hist.rounds[1].failures] == ["RuntimeError: site offline"]  # type: ignore[union-attr]
    np.testing.assert_array_equal(hist.params[0], init[0])
    np.testing.assert_array_equal(hist.params[1], init[1])


def test_too_few_available_clients_fails_configure(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=4)
    with pytest.raises(QuorumError, match="min_fit_clients=4"):
        run_federated(strategy, skewed_clients, 1, init)


def test_timeout_counts_as_failure(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=2)

    def slow(params: list[np.ndarray], config: dict) -> ClientResult:
        time.sleep(1.5)
        return client_update(params, skewed_clients["site2"], config)

    clients: dict[str, object] = {
        "site0": skewed_clients["site0"],
        "site1": skewed_clients["site1"],
        "site2": slow,
    }
    hist = run_federated(strategy, clients, 1, init, timeout_s=0.8)  # type: ignore[arg-type]
    assert hist.rounds[0].n_results == 2
    assert [(f.client_id, f.reason) for f in hist.rounds[0].failures] == [("site2", "timed out after 0.8 s")]  # type: ignore[union-attr]
    # The round waited for the timeout, not for the stuck client's 1.5 s.
    assert 0.8 <= hist.rounds[0].seconds < 1.5


def test_invalid_clients_excluded_with_logged_reason(
    skewed_clients: dict[str, ClientData], caplog: pytest.LogCaptureFixture
) -> None:
    strategy, init = _strategy(min_fit_clients=2)
    clients = dict(skewed_clients)
    clients["empty"] = ClientData(np.zeros((0, N_FEATURES)), np.zeros((0, 3)), "empty")
    clients["healthy_only"] = ClientData(np.ones((5, N_FEATURES)), np.zeros((5, 3)), "healthy_only")
    clients["wrong_shape"] = ClientData(np.ones((5, 2)), np.eye(5, 3), "wrong_shape")
    clients["two_faults"] = ClientData(np.ones((5, N_FEATURES)), np.eye(5, 2), "two_faults")
    with caplog.at_level(logging.WARNING, logger="federated.server"):
        hist = run_federated(strategy, clients, 1, init)
    assert hist.rounds[0].n_results == 3
    assert set(hist.excluded) == {"empty", "healthy_only", "wrong_shape", "two_faults"}
    assert hist.excluded["two_faults"] == "labels shape (5, 2) does not match 5 rows x 3 faults"
    assert "no data" in hist.excluded["empty"]
    assert "single class" in hist.excluded["healthy_only"]
    assert "wrong feature shape" in hist.excluded["wrong_shape"]
    messages = [rec.getMessage() for rec in caplog.records]
    for cid, reason in hist.excluded.items():
        assert f"client {cid} excluded: {reason}" in messages


def test_invalid_client_inside_a_round_is_a_failure_not_a_crash(
    skewed_clients: dict[str, ClientData],
) -> None:
    strategy, init = _strategy(min_fit_clients=2)
    bad = ClientData(np.full((4, N_FEATURES), np.nan), np.eye(4, 3), "nan_site")
    clients: dict[str, object] = dict(skewed_clients)
    clients["nan_site"] = lambda p, c: client_update(p, bad, c)
    hist = run_federated(strategy, clients, 1, init)  # type: ignore[arg-type]
    assert hist.rounds[0].n_results == 3
    assert [(f.client_id, f.reason) for f in hist.rounds[0].failures] == [  # type: ignore[union-attr]
        ("nan_site", "invalid: non-finite feature values")
    ]


def test_run_logs_each_round_and_each_skip(caplog: pytest.LogCaptureFixture) -> None:
    strategy, _ = _strategy(min_fit_clients=2)
    clients = {"a": _moves_by(1.0, 1, train_loss=2.0), "b": _moves_by(1.0, 3, train_loss=2.0), "c": _crash}
    with caplog.at_level(logging.INFO, logger="federated.server"):
        run_federated(strategy, clients, 1, [np.zeros(2), np.zeros((1, 1))])
    assert [r.getMessage() for r in caplog.records if r.name == "federated.server"] == [
        "round 1: 2 results, 1 failures, {'train_loss': 2.0, 'train_acc': nan}"
    ]
    caplog.clear()
    lonely, _ = _strategy(min_fit_clients=2)
    with caplog.at_level(logging.INFO, logger="federated.server"):
        hist = run_federated(
            lonely, {"a": _moves_by(1.0, 1)}, 1, [np.zeros(2), np.zeros((1, 1))], on_quorum_failure="skip"
        )
    assert [r.getMessage() for r in caplog.records if r.name == "federated.server"] == [
        "round 1 skipped: round 1: only 1 clients available, min_fit_clients=2",
        "round 1: 0 results, 0 failures, {}",
    ]
    assert hist.rounds[0].skipped is True and hist.rounds[0].failures == []


def test_initial_parameters_are_copied_as_float64() -> None:
    strategy, _ = _strategy()
    init = [np.array([1, 2]), np.array([[3.0]])]
    hist = run_federated(strategy, {}, 0, init)
    assert hist.rounds == [] and [p.dtype for p in hist.params] == [np.float64, np.float64]
    np.testing.assert_array_equal(hist.params[0], [1.0, 2.0])
    hist.params[0][0] = 50.0
    hist.params[1][0, 0] = 50.0
    assert init[0][0] == 1 and init[1][0, 0] == 3.0


def test_one_worker_runs_clients_in_turn_and_unstarted_ones_are_cancelled() -> None:
    """One worker, three clients of 0.6 s each, timeout 0.9 s: a finishes, b still runs, c never starts."""
    started: list[str] = []

    def slow(cid: str) -> ClientFn:
        def fn(params: list[np.ndarray], config: dict) -> ClientResult:
            started.append(cid)
            time.sleep(0.6)
            return ClientResult([p + 1.0 for p in params], 1, {}, cid)

        return fn

    strategy, _ = _strategy(min_fit_clients=1, min_completion_rate=0.0)
    clients = {"a": slow("a"), "b": slow("b"), "c": slow("c")}
    hist = run_federated(strategy, clients, 1, [np.zeros(2), np.zeros((1, 1))], timeout_s=0.9, max_workers=1)
    time.sleep(1.0)  # b finishes in the background; c must not start
    assert started == ["a", "b"]
    assert hist.rounds[0].n_results == 1
    assert sorted((f.client_id, f.reason) for f in hist.rounds[0].failures) == [  # type: ignore[union-attr]
        ("b", "timed out after 0.9 s"),
        ("c", "timed out after 0.9 s"),
    ]


def test_a_crash_under_a_timeout_is_named() -> None:
    strategy, _ = _strategy(min_fit_clients=1, min_completion_rate=0.0)
    clients = {"a": _moves_by(1.0, 1), "c": _crash}
    hist = run_federated(strategy, clients, 1, [np.zeros(2), np.zeros((1, 1))], timeout_s=5.0)
    assert [(f.client_id, f.reason) for f in hist.rounds[0].failures] == [("c", "RuntimeError: site offline")]  # type: ignore[union-attr]
