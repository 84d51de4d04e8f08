"""Client side of a federated round: validation and the local update. Only parameters, counts and scalar
metrics leave the client."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from federated.model import calibrate_head, get_parameters, model_from_config, train_local

logger = logging.getLogger(__name__)


class InvalidClientError(ValueError):
    """The client's data cannot take part in training; ``reason`` says why."""

    def __init__(self, client_id: str, reason: str) -> None:
        super().__init__(f"client {client_id!r} rejected: {reason}")
        self.client_id = client_id
        self.reason = reason


@dataclass(frozen=True)
class ClientData:
    """One site's feature matrix ``X`` (n, n_features) and 0/1 fault labels ``Y`` (n, n_faults)."""

    X: np.ndarray
    Y: np.ndarray
    client_id: str

    def __repr__(self) -> str:  # never print rows into logs
        shapes = f"X.shape={np.shape(self.X)}, Y.shape={np.shape(self.Y)}"
        return f"ClientData(client_id={self.client_id!r}, {shapes})"


@dataclass(frozen=True)
class ClientResult:
    """What a client sends back: parameters, its number of examples and scalar metrics. Nothing else."""

    params: list[np.ndarray]
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    client_id: str = ""

    def to_plain(self) -> dict[str, Any]:
        """Plain data (arrays, numbers, strings) a remote executor can move with a safe codec."""
        return {
            "params": [np.asarray(p) for p in self.params],
            "num_examples": self.num_examples,
            "metrics": dict(self.metrics),
            "client_id": self.client_id,
        }

    @classmethod
    def from_plain(cls, data: Any) -> ClientResult:
        """Inverse of :meth:`to_plain`; raises ValueError naming what is missing or of the wrong kind.

        Values are kept as sent (no casting), so :meth:`Strategy.screen_results` still sees a NaN, a wrong
        shape or a bad count and rejects the update with its reason.
        """
        if isinstance(data, ClientResult):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"result is {type(data).__name__}, not a mapping")
        missing = sorted({"params", "num_examples"} - set(data))
        if missing:
            raise ValueError(f"result lacks {', '.join(missing)}")
        params, metrics = data["params"], data.get("metrics", {})
        if not isinstance(params, list | tuple) or not isinstance(metrics, Mapping):
            raise ValueError("result params must be a list of arrays and metrics a mapping")
        return cls(
            [np.asarray(p) for p in params],
            data["num_examples"],
            {str(k): v for k, v in metrics.items()},
            str(data.get("client_id", "")),
        )


def validate_client(data: ClientData, n_features: int, n_faults: int | None = None) -> str | None:
    """Why the client cannot train (no data, single class, wrong shape, non-finite), or None if valid."""
    X, Y = np.asarray(data.X), np.asarray(data.Y)
    if X.ndim != 2 or X.shape[0] == 0:
        return f"no data (X shape {X.shape})"
    if X.shape[1] != n_features:
        return f"wrong feature shape: expected {n_features} features, got {X.shape[1]}"
    if Y.ndim != 2 or Y.shape[0] != X.shape[0] or (n_faults is not None and Y.shape[1] != n_faults):
        return f"labels shape {Y.shape} does not match {X.shape[0]} rows x {n_faults} faults"
    if not np.all(np.isfinite(X)):
        return "non-finite feature values"
    if not np.all((Y == 0) | (Y == 1)):
        return "labels are not 0/1"
    if len(np.unique(Y, axis=0)) < 2:
        return "single class: all rows carry the same label set"
    return None


def own_heads(Y: np.ndarray) -> list[int]:
    """Faults for which this client holds positive examples (the faults it is an expert on)."""
    return [int(k) for k in np.flatnonzero(np.asarray(Y).sum(axis=0) > 0)]


def calibration_rows(Y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask holding out ``round(fraction * n)`` rows (at least one) of every label set."""
    Y = np.asarray(Y)
    keys = Y @ (2 ** np.arange(Y.shape[1]))  # one integer per label set
    rng = np.random.default_rng(seed)
    cal = np.zeros(len(Y), dtype=bool)
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        cal[rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False)] = True
    return cal


def client_update(
    global_params: Sequence[np.ndarray], data: ClientData, config: Mapping[str, Any]
) -> ClientResult:
    """Train the global model locally and return a :class:`ClientResult`.

    ``config`` comes from ``Strategy.configure_fit``: ``model`` (from :func:`federated.model.model_config`),
    ``local_epochs``, ``learning_rate``, ``batch_size``, ``proximal_mu``, ``seed``, and for the expert
    ensemble ``train_heads="own"`` and ``calibrate=True``.
    Raises :class:`InvalidClientError` when :func:`validate_client` rejects the data.
    """
    model_cfg = config["model"]
    n_faults = len(model_cfg["fault_names"])
    reason = validate_client(data, int(model_cfg["n_features"]), n_faults)
    if reason is not None:
        raise InvalidClientError(data.client_id, reason)
    model = model_from_config(model_cfg, global_params)
    X = np.asarray(data.X, dtype=np.float64)
    Y = np.asarray(data.Y, dtype=np.float64)
    seed = int(config.get("seed", 0))
    heads = own_heads(Y) if config.get("train_heads") == "own" else None
    # Platt scaling needs rows the heads were not trained on: hold out a stratified slice.
    cal = (
        calibration_rows(Y, float(config.get("calibration_fraction", 0.25)), seed + 1)
        if heads and config.get("calibrate")
        else np.zeros(len(X), dtype=bool)
    )
    metrics = train_local(
        model,
        X[~cal],
        Y[~cal],
        epochs=int(config.get("local_epochs", 1)),
        learning_rate=config.get("learning_rate"),
        batch_size=config.get("batch_size"),
        proximal_mu=float(config.get("proximal_mu", 0.0)),
        heads=heads,
        seed=seed,
        optimizer=str(config.get("optimizer", "adam")),
    )
    for k in heads if cal.any() and heads else []:
        a, c = calibrate_head(model, X[cal], Y[cal, k], k)
        metrics[f"calibration_slope_{model.fault_names[k]}"] = a
        metrics[f"calibration_offset_{model.fault_names[k]}"] = c
    for k, name in enumerate(model.fault_names):
        metrics[f"positives_{name}"] = float(np.asarray(data.Y)[:, k].sum())
    logger.debug("client %s trained: %s", data.client_id, metrics)
    return ClientResult(
        params=get_parameters(model),
        num_examples=len(data.X),
        metrics={k: float(v) for k, v in metrics.items()},
        client_id=data.client_id,
    )
