"""Client validation and the privacy of what a client sends."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from federated.client import ClientData, ClientResult, InvalidClientError, client_update, validate_client
from federated.model import FaultClassifier, get_parameters, model_config

from .conftest import N_FEATURES


def _config(hidden: int = 4, **extra: object) -> tuple[dict, list[np.ndarray]]:
    model = FaultClassifier(hidden=hidden).initialize(N_FEATURES)
    return {"model": model_config(model), "local_epochs": 2, **extra}, get_parameters(model)


def test_validate_client_reasons() -> None:
    ok = ClientData(np.zeros((4, N_FEATURES)), np.array([[0, 0, 0], [1, 0, 0]] * 2), "ok")
    assert validate_client(ok, N_FEATURES, 3) is None
    assert "no data" in str(
        validate_client(ClientData(np.zeros((0, N_FEATURES)), np.zeros((0, 3)), "e"), N_FEATURES)
    )
    one = ClientData(np.zeros((4, N_FEATURES)), np.ones((4, 3)), "one")
    assert "single class" in str(validate_client(one, N_FEATURES))
    assert "wrong feature shape" in str(validate_client(ok, N_FEATURES + 1))


def test_client_update_rejects_invalid_data() -> None:
    cfg, params = _config()
    with pytest.raises(InvalidClientError, match="single class"):
        client_update(params, ClientData(np.zeros((4, N_FEATURES)), np.zeros((4, 3)), "h"), cfg)


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


def test_own_heads_training_leaves_other_heads_untouched(skewed_clients: dict[str, ClientData]) -> None:
    cfg, params = _config(train_heads="own")
    res = client_update(params, skewed_clients["site1"], cfg)
    for before, after in zip(params, res.params, strict=True):
        np.testing.assert_array_equal(before[[0, 2]], after[[0, 2]])
        assert not np.array_equal(before[1], after[1])


def test_proximal_term_keeps_update_closer(skewed_clients: dict[str, ClientData]) -> None:
    cfg, params = _config(hidden=0)
    free = client_update(params, skewed_clients["site0"], {**cfg, "local_epochs": 5})
    prox = client_update(params, skewed_clients["site0"], {**cfg, "local_epochs": 5, "proximal_mu": 5.0})

    def dist(r: ClientResult) -> float:
        return float(sum(np.sum((a - b) ** 2) for a, b in zip(r.params, params, strict=True)))

    assert dist(prox) < dist(free)
