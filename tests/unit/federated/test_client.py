"""Client validation and the privacy of what a client sends."""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pytest

from federated.client import (
    ClientData,
    ClientResult,
    FitOptions,
    InvalidClientError,
    calibration_rows,
    client_update,
    own_heads,
    validate_client,
)
from federated.model import FaultClassifier, get_parameters, model_config, model_from_config, train_local
from federated.strategy import FedAvg

from .conftest import N_FEATURES


def _config(hidden: int = 4, **extra: object) -> tuple[dict, list[np.ndarray]]:
    model = FaultClassifier(hidden=hidden).initialize(N_FEATURES)
    return {"model": model_config(model), "options": {"local_epochs": 2, **extra}}, get_parameters(model)


def _with(cfg: dict, **options: object) -> dict:
    """``cfg`` with some options changed."""
    return {**cfg, "options": {**cfg["options"], **options}}


OK_Y = np.array([[0, 0, 0], [1, 0, 0]] * 2)


@pytest.mark.parametrize(
    ("X", "Y", "n_faults", "reason"),
    [
        (np.zeros((4, N_FEATURES)), OK_Y, 3, None),
        (np.zeros((4, N_FEATURES)), OK_Y, None, None),
        (np.zeros((0, N_FEATURES)), np.zeros((0, 3)), 3, "no data (X shape (0, 6))"),
        (np.zeros(N_FEATURES), OK_Y, 3, "no data (X shape (6,))"),
        (np.zeros((4, N_FEATURES + 1)), OK_Y, 3, "wrong feature shape: expected 6 features, got 7"),
        (np.zeros((4, N_FEATURES)), OK_Y[:3], 3, "labels shape (3, 3) does not match 4 rows x 3 faults"),
        (np.zeros((4, N_FEATURES)), OK_Y[:, :2], 3, "labels shape (4, 2) does not match 4 rows x 3 faults"),
        (
            np.zeros((4, N_FEATURES)),
            OK_Y[:, 0],
            None,
            "labels shape (4,) does not match 4 rows x None faults",
        ),
        (np.full((4, N_FEATURES), np.inf), OK_Y, 3, "non-finite feature values"),
        (np.zeros((4, N_FEATURES)), OK_Y * 2, 3, "labels are not 0/1"),
        (np.zeros((4, N_FEATURES)), np.ones((4, 3)), 3, "single class: all rows carry the same label set"),
        (np.zeros((4, N_FEATURES)), np.zeros((4, 3)), 3, "single class: all rows carry the same label set"),
    ],
)
def test_validate_client_reasons(
    X: np.ndarray, Y: np.ndarray, n_faults: int | None, reason: str | None
) -> None:
    assert validate_client(ClientData(X, Y, "c"), N_FEATURES, n_faults) == reason


def test_client_data_repr_shows_shapes_never_rows() -> None:
    data = ClientData(np.full((2, 3), 123.456), np.zeros((2, 1)), "s")
    assert repr(data) == "ClientData(client_id='s', X.shape=(2, 3), Y.shape=(2, 1))"


def test_own_heads_are_the_faults_with_positives() -> None:
    assert own_heads(np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]])) == [0, 2]
    assert own_heads(np.zeros((3, 3))) == []


def test_client_update_rejects_invalid_data() -> None:
    cfg, params = _config()
    with pytest.raises(InvalidClientError, match="single class") as err:
        client_update(params, ClientData(np.zeros((4, N_FEATURES)), np.zeros((4, 3)), "h"), cfg)
    assert err.value.client_id == "h"
    assert err.value.reason == "single class: all rows carry the same label set"
    assert str(err.value) == "client 'h' rejected: single class: all rows carry the same label set"


@pytest.mark.parametrize("extra", [{}, {"train_heads": "own", "calibrate": True}, {"proximal_mu": 0.5}])
def test_payload_contains_only_params_counts_and_scalars(
    skewed_clients: dict[str, ClientData], extra: dict
) -> None:
    data = skewed_clients["site1"]
    cfg, params = _config(**extra)
    res = client_update(params, data, cfg)
    assert isinstance(res, ClientResult)
    assert {f.name for f in dataclasses.fields(res)} == {"params", "num_examples", "metrics", "client_id"}
    assert res.num_examples == len(data.X)
    assert all(isinstance(v, float) for v in res.metrics.values())
    assert [p.shape for p in res.params] == [p.shape for p in params]
    sent = np.concatenate([p.ravel() for p in res.params] + [np.array(list(res.metrics.values()))])
    # No single raw value (let alone a row) of X leaves the client.
    assert not np.isin(data.X.ravel(), sent).any()
    assert all(p.shape[0] == 3 for p in res.params)  # every array is per-fault, none per-row


def _direct(
    params: list[np.ndarray], cfg: dict, X: np.ndarray, Y: np.ndarray, **kw: object
) -> list[np.ndarray]:
    """What the client should send: the global model trained by train_local with the config's settings."""
    model = model_from_config(cfg["model"], params)
    train_local(model, X, Y, epochs=cfg["options"]["local_epochs"], **kw)  # type: ignore[arg-type]
    return get_parameters(model)


def test_own_heads_training_is_train_local_of_those_heads(skewed_clients: dict[str, ClientData]) -> None:
    cfg, params = _config(train_heads="own", seed=5, optimizer="sgd", learning_rate=0.05, batch_size=16)
    data = skewed_clients["site1"]
    res = client_update(params, data, cfg)
    want = _direct(
        params, cfg, data.X, data.Y, heads=[1], seed=5, optimizer="sgd", learning_rate=0.05, batch_size=16
    )
    for before, after, expected in zip(params, res.params, want, strict=True):
        np.testing.assert_array_equal(before[[0, 2]], after[[0, 2]])
        np.testing.assert_allclose(after, expected, rtol=1e-12)
    assert res.metrics["steps"] == 2 * 10  # 160 rows / 16 per batch, 2 epochs
    assert res.metrics["positives_leak"] == 0.0 and res.metrics["positives_blocked_inlet"] == 80.0
    assert res.num_examples == 160 and res.client_id == "site1"


def test_calibration_holds_out_a_stratified_share(skewed_clients: dict[str, ClientData]) -> None:
    """160 rows in two label sets of 80: a quarter of each (20 + 20) is held out, 120 rows train, 4 batches of
    32 per epoch; at half, 80 rows train, 3 batches. Only the client's own heads get calibration figures."""
    data = skewed_clients["site2"]
    cfg, params = _config(train_heads="own", calibrate=True, batch_size=32)
    res = client_update(params, data, cfg)
    assert res.metrics["steps"] == 2 * 4
    assert {k for k in res.metrics if k.startswith("calibration_")} == {
        "calibration_slope_bearing",
        "calibration_offset_bearing",
    }
    half = client_update(params, data, _with(cfg, calibration_fraction=0.5))
    assert half.metrics["steps"] == 2 * 3
    # Without own heads there is nothing to calibrate: all 160 rows train (5 batches).
    assert client_update(params, data, _with(cfg, train_heads="all")).metrics["steps"] == 2 * 5
    assert res.num_examples == 160  # the count sent is the site's rows, held-out ones included


def test_proximal_term_keeps_update_closer(skewed_clients: dict[str, ClientData]) -> None:
    cfg, params = _config(hidden=0)
    free = client_update(params, skewed_clients["site0"], _with(cfg, local_epochs=5))
    prox = client_update(params, skewed_clients["site0"], _with(cfg, local_epochs=5, proximal_mu=5.0))

    def dist(r: ClientResult) -> float:
        return float(sum(np.sum((a - b) ** 2) for a, b in zip(r.params, params, strict=True)))

    assert dist(prox) < dist(free)


def test_calibration_rows_are_stratified_by_label_set() -> None:
    """4 healthy, 6 leak, 10 leak+bearing rows at 0.25: round(1) = 1, round(1.5) = 2, round(2.5) = 2 held out
    (Python rounds halves to even). At 0.01 each set still gives one row."""
    Y = np.array([[0, 0, 0]] * 4 + [[1, 0, 0]] * 6 + [[1, 0, 1]] * 10)
    cal = calibration_rows(Y, 0.25, seed=3)
    assert [int(cal[:4].sum()), int(cal[4:10].sum()), int(cal[10:].sum())] == [1, 2, 2]
    np.testing.assert_array_equal(cal, calibration_rows(Y, 0.25, seed=3))
    assert any(not np.array_equal(cal, calibration_rows(Y, 0.25, seed=s)) for s in range(4, 9))
    assert [int(m.sum()) for m in np.split(calibration_rows(Y, 0.01, seed=0), [4, 10])] == [1, 1, 1]


def test_client_update_defaults_and_checks(
    skewed_clients: dict[str, ClientData], caplog: pytest.LogCaptureFixture
) -> None:
    """No seed means seed 0 and no local_epochs means one epoch (160 rows / 32 = 5 steps); labels for two
    faults where the model has three are refused before training."""
    cfg, params = _config(batch_size=32)
    del cfg["options"]["local_epochs"]
    data = skewed_clients["site0"]
    with caplog.at_level(logging.DEBUG, logger="federated.client"):
        res = client_update(params, data, cfg)
    assert res.metrics["steps"] == 5.0
    seeded = client_update(params, data, _with(cfg, seed=0))
    for a, b in zip(res.params, seeded.params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r.getMessage()[:37] for r in caplog.records] == ["client site0 trained: {'train_loss': "]
    with pytest.raises(InvalidClientError, match="labels shape"):
        client_update(params, ClientData(data.X, data.Y[:, :2], "two"), cfg)


def test_calibrated_update_is_reproducible(skewed_clients: dict[str, ClientData]) -> None:
    cfg, params = _config(train_heads="own", calibrate=True, seed=11)
    a = client_update(params, skewed_clients["site2"], cfg)
    b = client_update(params, skewed_clients["site2"], cfg)
    for x, y in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.metrics == b.metrics


def test_fit_options_round_trip_as_plain_data_and_refuse_typos() -> None:
    opts = FitOptions(local_epochs=3, learning_rate=0.2, optimizer="sgd", train_heads="own", calibrate=True)
    plain = opts.to_plain()
    assert plain == {
        "local_epochs": 3,
        "learning_rate": 0.2,
        "batch_size": None,
        "proximal_mu": 0.0,
        "optimizer": "sgd",
        "train_heads": "own",
        "calibrate": True,
        "calibration_fraction": 0.25,
        "seed": 0,
    }
    assert FitOptions.from_plain(plain) == opts and FitOptions.from_plain({}) == FitOptions()
    # Numbers that went through JSON come back as the field's type.
    assert FitOptions.from_plain({"local_epochs": 2.0, "batch_size": 16.0}) == FitOptions(2, batch_size=16)
    with pytest.raises(
        ValueError, match=r"^unknown fit option\(s\) \['local_epoch'\]; known: \['batch_size', "
    ):
        FitOptions.from_plain({"local_epoch": 2})
    model = FaultClassifier(hidden=0).initialize(N_FEATURES)
    with pytest.raises(ValueError, match=r"^unknown fit option\(s\) \['epochs'\]"):
        FedAvg({"model": model_config(model), "epochs": 2})  # refused when the strategy is built


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"local_epochs": -1}, "local_epochs must be >= 0, got -1"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0 or None, got 0.0"),
        ({"batch_size": 0}, "batch_size must be >= 1 or None, got 0"),
        ({"proximal_mu": -0.5}, "proximal_mu must be >= 0, got -0.5"),
        ({"proximal_mu": float("nan")}, "proximal_mu must be >= 0, got nan"),
        ({"optimizer": "rmsprop"}, "optimizer must be 'adam' or 'sgd', got 'rmsprop'"),
        ({"train_heads": "mine"}, "train_heads must be 'all' or 'own', got 'mine'"),
        ({"calibration_fraction": 1.0}, "calibration_fraction must be in (0, 1), got 1.0"),
    ],
)
def test_fit_options_refuse_out_of_range_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        FitOptions(**kwargs)
