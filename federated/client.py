"""Client side of a federated round: validation and the local update. Only parameters, counts and scalar
metrics leave the client."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

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


@dataclass(frozen=True)
class FitOptions:
    """How a client trains this round (set by the strategy; travels as plain data via :meth:`to_plain`).

    Parameters
    ----------
    local_epochs : int
        Passes over the site's rows per round.
    learning_rate, batch_size : float, int or None
        None: the model's own hyperparameters.
    proximal_mu : float
        FedProx term ``mu/2 * ||w - w_global||^2`` (0: none).
    optimizer : {"adam", "sgd"}
        See :func:`federated.model.train_local` for why federated clients use SGD.
    train_heads : {"all", "own"}
        ``"own"``: only the heads of faults the site holds positives for (expert ensemble).
    calibrate : bool
        Platt-scale the own heads on a held-out ``calibration_fraction`` of every label set.
    seed : int
        Minibatch order and calibration hold-out.
    """

    local_epochs: int = 1
    learning_rate: float | None = None
    batch_size: int | None = None
    proximal_mu: float = 0.0
    optimizer: Literal["adam", "sgd"] = "adam"
    train_heads: Literal["all", "own"] = "all"
    calibrate: bool = False
    calibration_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        problems = [
            (self.local_epochs < 0, f"local_epochs must be >= 0, got {self.local_epochs}"),
            (
                self.learning_rate is not None and not self.learning_rate > 0,
                f"learning_rate must be > 0 or None, got {self.learning_rate}",
            ),
            (
                self.batch_size is not None and self.batch_size < 1,
                f"batch_size must be >= 1 or None, got {self.batch_size}",
            ),
            (not self.proximal_mu >= 0, f"proximal_mu must be >= 0, got {self.proximal_mu}"),
            (
                self.optimizer not in ("adam", "sgd"),
                f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}",
            ),
            (
                self.train_heads not in ("all", "own"),
                f"train_heads must be 'all' or 'own', got {self.train_heads!r}",
            ),
            (
                not 0 < self.calibration_fraction < 1,
                f"calibration_fraction must be in (0, 1), got {self.calibration_fraction}",
            ),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)

    def to_plain(self) -> dict[str, Any]:
        """JSON-able form (what a site call carries)."""
        return asdict(self)

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> FitOptions:
        """Inverse of :meth:`to_plain`; unknown keys (a typo such as ``local_epoch``) are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fit option(s) {unknown}; known: {sorted(known)}")
        d = dict(data)
        for key, cast in (("local_epochs", int), ("seed", int), ("proximal_mu", float), ("calibrate", bool)):
            if key in d:
                d[key] = cast(d[key])
        for key, opt_cast in (("learning_rate", float), ("batch_size", int)):
            if d.get(key) is not None:
                d[key] = opt_cast(d[key])
        if "calibration_fraction" in d:
            d["calibration_fraction"] = float(d["calibration_fraction"])
        return cls(**d)


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
    ``server_round`` and ``options`` (:meth:`FitOptions.to_plain`; missing: the defaults).
    Raises :class:`InvalidClientError` when :func:`validate_client` rejects the data.
    """
    model_cfg = config["model"]
    opts = FitOptions.from_plain(config.get("options", {}))
    n_faults = len(model_cfg["fault_names"])
    reason = validate_client(data, int(model_cfg["n_features"]), n_faults)
    if reason is not None:
        raise InvalidClientError(data.client_id, reason)
    model = model_from_config(model_cfg, global_params)
    X = np.asarray(data.X, dtype=np.float64)
    Y = np.asarray(data.Y, dtype=np.float64)
    heads = own_heads(Y) if opts.train_heads == "own" else None
    # Platt scaling needs rows the heads were not trained on: hold out a stratified slice.
    cal = (
        calibration_rows(Y, opts.calibration_fraction, opts.seed + 1)
        if heads and opts.calibrate
        else np.zeros(len(X), dtype=bool)
    )
    metrics = train_local(
        model,
        X[~cal],
        Y[~cal],
        epochs=opts.local_epochs,
        learning_rate=opts.learning_rate,
        batch_size=opts.batch_size,
        proximal_mu=opts.proximal_mu,
        heads=heads,
        seed=opts.seed,
        optimizer=opts.optimizer,
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
