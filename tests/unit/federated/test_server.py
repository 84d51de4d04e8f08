"""Round loop: quorum, failures, timeouts and invalid clients."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from federated.client import ClientData, ClientResult, client_update
from federated.model import FaultClassifier, get_parameters, model_config
from federated.server import run_federated
from federated.strategy import FedAvg, QuorumError

from .conftest import N_FEATURES


def _strategy(**kw: object) -> tuple[FedAvg, list[np.ndarray]]:
    model = FaultClassifier(hidden=0).initialize(N_FEATURES)
    return FedAvg({"model": model_config(model), "local_epochs": 1}, **kw), get_parameters(model)  # type: ignore[arg-type]


def _crash(params: list[np.ndarray], config: dict) -> ClientResult:
    raise RuntimeError("site offline")


def test_round_succeeds_with_quorum_despite_a_crash(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=2, min_completion_rate=0.5)
    clients: dict[str, object] = dict(skewed_clients)
    clients["site2"] = _crash
    hist = run_federated(strategy, clients, rounds=2, initial_params=init)  # type: ignore[arg-type]
    assert [r.n_results for r in hist.rounds] == [2, 2]
    assert all("site offline" in r.failures[0].reason for r in hist.rounds)
    assert not np.allclose(hist.params[0], init[0])


def test_round_fails_with_clear_error_below_quorum(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=2, min_completion_rate=0.5)
    clients: dict[str, object] = {"site0": skewed_clients["site0"], "site1": _crash, "site2": _crash}
    with pytest.raises(QuorumError, match=r"quorum not reached: 1/3 clients completed.*site offline"):
        run_federated(strategy, clients, rounds=1, initial_params=init)  # type: ignore[arg-type]


def test_below_quorum_round_can_be_skipped(skewed_clients: dict[str, ClientData]) -> None:
    strategy, init = _strategy(min_fit_clients=2)
    clients: dict[str, object] = {"site0": skewed_clients["site0"], "site1": _crash}
    hist = run_federated(strategy, clients, 1, init, on_quorum_failure="skip")  # type: ignore[arg-type]
    assert hist.rounds[0].skipped
    np.testing.assert_array_equal(hist.params[0], init[0])


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
    assert "timed out" in hist.rounds[0].failures[0].reason


def test_invalid_clients_excluded_with_logged_reason(
    skewed_clients: dict[str, ClientData], caplog: pytest.LogCaptureFixture
) -> None:
    strategy, init = _strategy(min_fit_clients=2)
    clients = dict(skewed_clients)
    clients["empty"] = ClientData(np.zeros((0, N_FEATURES)), np.zeros((0, 3)), "empty")
    clients["healthy_only"] = ClientData(np.ones((5, N_FEATURES)), np.zeros((5, 3)), "healthy_only")
    clients["wrong_shape"] = ClientData(np.ones((5, 2)), np.eye(5, 3), "wrong_shape")
    with caplog.at_level(logging.WARNING, logger="federated.server"):
        hist = run_federated(strategy, clients, 1, init)
    assert hist.rounds[0].n_results == 3
    assert set(hist.excluded) == {"empty", "healthy_only", "wrong_shape"}
    assert "no data" in hist.excluded["empty"]
    assert "single class" in hist.excluded["healthy_only"]
    assert "wrong feature shape" in hist.excluded["wrong_shape"]
    for cid in hist.excluded:
        assert any(cid in rec.getMessage() and "excluded" in rec.getMessage() for rec in caplog.records)


def test_invalid_client_inside_a_round_is_a_failure_not_a_crash(
    skewed_clients: dict[str, ClientData],
) -> None:
    strategy, init = _strategy(min_fit_clients=2)
    bad = ClientData(np.full((4, N_FEATURES), np.nan), np.eye(4, 3), "nan_site")
    clients: dict[str, object] = dict(skewed_clients)
    clients["nan_site"] = lambda p, c: client_update(p, bad, c)
    hist = run_federated(strategy, clients, 1, init)  # type: ignore[arg-type]
    assert hist.rounds[0].n_results == 3
    assert "non-finite" in hist.rounds[0].failures[0].reason
