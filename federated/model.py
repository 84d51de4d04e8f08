"""Multi-label fault classifier in plain numpy, its parameter bridge and its safe serialisation.

The network has small independent sub-networks ("heads"), each reading its own subset of the standardised
inputs (``head_inputs``) and voting for one fault (``head_groups``); a fault's probability is the noisy-OR of
its heads, ``1 - prod(1 - p_head)``, so a fault with two kinds of evidence (e.g. one signature when mild,
another once severe) is seen when either is, and evidence another fault can mask cannot veto the other.
Fault and feature names are the caller's (``fault_names``, ``feature_names``): this module knows no asset.
By default there is one head per fault reading every input. Heads share no weights, so

* a fault combination is scored by independent detectors (no 8-way softmax that would need every subset seen),
* an expert trained at the one site that holds fault ``k`` can be dropped in as head ``k`` (expert ensemble),
* federated averaging works head by head without permutation problems (all heads start from the same init).

``hidden=0`` gives logistic heads (a linear model per fault).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from federated.baseline import (
    BaselineSpec,
    HealthyBaseline,
    local_gram,
    local_residual_ss,
    set_residual_scale,
    solve_baseline,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # version 1: one all-input head per fault
MODEL_KIND = "fedtwin.fault_heads"
_PARAM_NAMES_MLP = ("W1", "b1", "W2", "b2")
_PARAM_NAMES_LOGISTIC = ("W", "b")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _bce_with_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Element-wise binary cross-entropy computed from logits (no log(0))."""
    loss: np.ndarray = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return loss


def decide(P: np.ndarray, thresholds: np.ndarray, fallback: float | None = None) -> np.ndarray:
    """0/1 faults per row: fault ``k`` where ``P[:, k] >= thresholds[k]``; and where none clears its threshold
    but the most probable fault has at least ``fallback``, that fault alone.

    Independent heads can split one piece of evidence: a shift between what a severe case of one fault and a
    mild case of another cause can get p ~0.4 from each head, so neither fires and the window would read
    healthy, the one answer the evidence rules out (on the pump's data healthy windows stay below ~0.015).
    """
    P = np.asarray(P, dtype=np.float64)
    out = (np.asarray(thresholds, dtype=np.float64) <= P).astype(np.int64)
    if fallback is not None and P.shape[1] > 0:
        rows = np.flatnonzero(~out.any(axis=1) & (P.max(axis=1) >= fallback))
        out[rows, P[rows].argmax(axis=1)] = 1
    return out


class FaultClassifier(BaseEstimator):
    """Independent-head multi-label fault classifier (scikit-learn estimator contract).

    Parameters
    ----------
    hidden : int
        Hidden units per head; 0 means one logistic regression per fault.
    epochs : int
        Passes over the data in :meth:`fit` (and the default for a client's local update).
    learning_rate : float
        Adam step size.
    batch_size : int
        Minibatch size.
    alpha : float
        L2 penalty on weights (not biases).
    activation : {"tanh", "relu"}
        Hidden activation.
    fault_names : sequence of str
        Output order; one probability per fault (keyword, required: the caller's faults, e.g.
        ``plant_models.spec.FAULTS``).
    feature_names : sequence of str or None
        Names of the input columns, carried into the serialised model.
    random_state : int
        Seed for the weight init and minibatch order.
    head_inputs : sequence of sequence of str or None
        Input names (features, then baseline residuals) each head reads; None: every input.
    head_groups : sequence of int or None
        Fault index each head votes for (same length as ``head_inputs``); None: head ``k`` is fault ``k``.
    fallback_threshold : float or None
        See :func:`decide`; None: plain per-fault thresholds.
    """

    def __init__(
        self,
        hidden: int = 16,
        epochs: int = 60,
        learning_rate: float = 0.01,
        batch_size: int = 128,
        alpha: float = 1e-4,
        activation: str = "tanh",
        *,
        fault_names: Sequence[str],
        feature_names: Sequence[str] | None = None,
        random_state: int = 0,
        head_inputs: Sequence[Sequence[str]] | None = None,
        head_groups: Sequence[int] | None = None,
        fallback_threshold: float | None = None,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.alpha = alpha
        self.activation = activation
        self.fault_names = fault_names
        self.feature_names = feature_names
        self.random_state = random_state
        self.head_inputs = head_inputs
        self.head_groups = head_groups
        self.fallback_threshold = fallback_threshold

    # ------------------------------------------------------------------ structure
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the trainable arrays, in bridge order."""
        return _PARAM_NAMES_MLP if int(self.hidden) > 0 else _PARAM_NAMES_LOGISTIC

    def initialize(
        self,
        n_features: int,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        baseline: HealthyBaseline | None = None,
    ) -> FaultClassifier:
        """Allocate scaler and freshly initialised weights without training (used as the global init).

        With a ``baseline`` the network input is the raw features plus the baseline residuals, and
        ``mean``/``scale`` cover that augmented input.
        """
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if baseline is not None:
            missing = set(baseline.inputs + baseline.targets) - set(self.feature_names or ())
            if missing:
                raise ValueError(f"baseline needs features missing from feature_names: {sorted(missing)}")
        self.n_features_in_ = int(n_features)
        self.baseline_ = baseline
        self.groups_, self.input_mask_ = self._head_structure()
        k, f, h = len(self.groups_), self.n_inputs_, int(self.hidden)
        rng = np.random.default_rng(self.random_state)
        self.mean_ = np.zeros(f) if mean is None else np.asarray(mean, dtype=np.float64).copy()
        self.scale_ = np.ones(f) if scale is None else np.asarray(scale, dtype=np.float64).copy()
        if self.mean_.shape != (f,) or self.scale_.shape != (f,):
            raise ValueError(f"scaler mean/scale must have shape ({f},)")
        if np.any(self.scale_ <= 0) or not np.all(np.isfinite(self.scale_)):
            raise ValueError("scaler scale must be finite and > 0")
        self.thresholds_ = np.full(len(self.fault_names), 0.5)
        fb = self.fallback_threshold
        if fb is not None and not 0.0 < float(fb) < 1.0:
            raise ValueError(f"fallback_threshold must be in (0, 1) or None, got {fb!r}")
        if h > 0:
            # Glorot-uniform over the inputs a head reads, so tanh starts in its linear range.
            fan_in = max(1.0, float(self.input_mask_.sum(axis=1).mean()))
            lim1 = np.sqrt(6.0 / (fan_in + h))
            lim2 = np.sqrt(6.0 / (h + 1))
            self.W1_ = rng.uniform(-lim1, lim1, size=(k, f, h)) * self.input_mask_[:, :, None]
            self.b1_ = np.zeros((k, h))
            self.W2_ = rng.uniform(-lim2, lim2, size=(k, h))
            self.b2_ = np.zeros(k)
        else:
            self.W_ = np.zeros((k, f))
            self.b_ = np.zeros(k)
        return self

    def input_names(self) -> list[str]:
        """Names of the network inputs: features, then the baseline's residual columns."""
        names = list(self.feature_names) if self.feature_names is not None else []
        if len(names) != int(self.n_features_in_):
            names = [f"x{i}" for i in range(int(self.n_features_in_))]
        b = getattr(self, "baseline_", None)
        return names + ([] if b is None else list(b.output_names))

    def _head_structure(self) -> tuple[np.ndarray, np.ndarray]:
        """Fault index per head and the (heads, inputs) 0/1 mask of what each head reads."""
        k = len(self.fault_names)
        groups = np.arange(k) if self.head_groups is None else np.asarray(self.head_groups, dtype=np.int64)
        if groups.ndim != 1 or np.any(groups < 0) or np.any(groups >= k):
            raise ValueError(f"head_groups must name faults 0..{k - 1}, got {self.head_groups!r}")
        if set(groups.tolist()) != set(range(k)):
            raise ValueError(f"every fault needs at least one head, got head_groups={groups.tolist()}")
        names = self.input_names()
        mask = np.ones((len(groups), len(names)))
        if self.head_inputs is not None:
            if len(self.head_inputs) != len(groups):
                raise ValueError(f"head_inputs has {len(self.head_inputs)} entries for {len(groups)} heads")
            mask[:] = 0.0
            for j, cols in enumerate(self.head_inputs):
                unknown = sorted(set(cols) - set(names))
                if unknown or not cols:
                    raise ValueError(f"head {j} reads unknown or no inputs: {unknown or cols}")
                mask[j, [names.index(c) for c in cols]] = 1.0
        return groups, mask

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise RuntimeError("FaultClassifier is not initialised; call fit() or initialize() first")

    # ------------------------------------------------------------------ inference (plain numpy)
    def _forward(self, Xs: np.ndarray, params: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Head logits (n, heads) and hidden activations (n, heads, h) for standardised inputs."""
        M = self.input_mask_
        if int(self.hidden) > 0:
            W1, b1, W2, b2 = params
            k, f, h = W1.shape
            W1 = W1 * M[:, :, None]  # masked weights stay out even if an aggregate (DP noise) touched them
            Z = (Xs @ W1.transpose(1, 0, 2).reshape(f, k * h)).reshape(-1, k, h) + b1
            A = np.tanh(Z) if self.activation == "tanh" else np.maximum(Z, 0.0)
            return np.einsum("nkh,kh->nk", A, W2) + b2, A
        W, b = params
        return Xs @ (W * M).T + b, None

    def _fault_logits(self, z: np.ndarray) -> np.ndarray:
        """Per-fault logit of the noisy-OR of its heads (exactly the head logit for a lone head)."""
        # -log(1 - p) = sum of softplus(z) over the fault's heads; logit(p) = log(expm1(that sum)).
        sp = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        k = len(self.fault_names)
        total = np.zeros((len(z), k))
        np.add.at(total.T, self.groups_, sp.T)
        total = np.maximum(total, 1e-300)
        big = total > 30.0
        return np.where(big, total, np.log(np.expm1(np.where(big, 1.0, total))))

    @property
    def n_inputs_(self) -> int:
        """Width of the network input: raw features plus baseline residuals."""
        b = getattr(self, "baseline_", None)
        return int(self.n_features_in_) + (len(b.output_names) if b is not None else 0)

    def augment(self, X: np.ndarray) -> np.ndarray:
        """Raw features with the healthy-baseline residual columns appended (identity without a baseline)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        if self.baseline_ is None:
            return X
        return np.hstack([X, self.baseline_.transform(X, list(self.feature_names or ()))])

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (self.augment(X) - self.mean_) / self.scale_

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Per-fault logits, shape (n, n_faults)."""
        self._check_fitted()
        return self._fault_logits(self._forward(self._standardise(X), get_parameters(self))[0])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Per-fault probabilities, shape (n, n_faults)."""
        return _sigmoid(self.decision_function(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 fault indicators (n, n_faults): see :func:`decide`."""
        return decide(self.predict_proba(X), self.thresholds_, self.fallback_threshold)

    def score(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Exact-match (subset) accuracy."""
        return float(np.mean(np.all(self.predict(X) == np.asarray(Y), axis=1)))

    # ------------------------------------------------------------------ training
    def fit(self, X: np.ndarray, Y: np.ndarray, baseline: BaselineSpec | None = None) -> FaultClassifier:
        """Fit scaler and weights on pooled data (the centralised baseline); with a ``baseline`` spec (and
        ``feature_names``) also the healthy baseline whose residuals join the input."""
        X = np.asarray(X, dtype=np.float64)
        Y = _check_targets(Y, len(self.fault_names), len(X))
        fitted = None
        if baseline is not None and self.feature_names is not None:
            fitted = fit_baseline([(X, Y)], self.feature_names, baseline)
        self.initialize(X.shape[1], None, None, fitted)
        A = self.augment(X)
        std = A.std(axis=0)
        self.mean_, self.scale_ = A.mean(axis=0), np.where(std > 1e-12, std, 1.0)
        train_local(self, X, Y, epochs=int(self.epochs), seed=int(self.random_state))
        return self


def fit_baseline(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], feature_names: Sequence[str], spec: BaselineSpec
) -> HealthyBaseline | None:
    """Healthy baseline from (X, Y) parts via sufficient statistics; None without the needed features."""
    try:
        grams = [local_gram(X, Y, feature_names, spec) for X, Y in parts]
    except ValueError:
        return None  # feature set without the baseline's inputs/targets (e.g. synthetic data)
    base = solve_baseline(grams, spec)
    ss = [local_residual_ss(X, Y, feature_names, base, spec) for X, Y in parts]
    return set_residual_scale(base, ss, spec)


def _check_targets(Y: np.ndarray, n_outputs: int, n_rows: int) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape != (n_rows, n_outputs):
        raise ValueError(f"Y must have shape ({n_rows}, {n_outputs}), got {Y.shape}")
    if not np.all((Y == 0) | (Y == 1)):
        raise ValueError("Y must be 0/1")
    return Y


def train_local(
    model: FaultClassifier,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    proximal_mu: float = 0.0,
    heads: Sequence[int] | None = None,
    seed: int = 0,
    optimizer: str = "adam",
) -> dict[str, float]:
    """Train ``model`` in place from its current weights; returns scalar training metrics.

    ``optimizer="adam"`` suits pooled training; federated clients use ``"sgd"`` (momentum 0.9) because Adam
    normalises step sizes: a site with no positives of fault k would push head k down by ``lr`` per step even
    when its loss is already tiny, and under extreme label skew the average then forgets the fault.

    ``proximal_mu`` adds the FedProx term ``mu/2 * ||w - w_start||^2`` (``w_start`` = weights on entry,
    i.e. the global model). ``heads`` restricts the update to those outputs (the expert-ensemble client
    trains only the fault it has data for); the other heads stay bit-identical.
    """
    model._check_fitted()
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    Xs = model._standardise(X)
    Y = _check_targets(Y, len(model.fault_names), len(Xs))
    lr = float(model.learning_rate if learning_rate is None else learning_rate)
    bs = int(model.batch_size if batch_size is None else batch_size)
    k = len(model.fault_names)
    fault_mask = np.zeros(k)
    fault_mask[list(range(k)) if heads is None else list(heads)] = 1.0
    head_mask = fault_mask[model.groups_]
    params = get_parameters(model)
    center = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    rng = np.random.default_rng(seed)
    n = len(Xs)
    step = 0
    is_weight = [name.startswith("W") for name in model.param_names]
    for _ in range(int(epochs)):
        order = rng.permutation(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            grads = _gradients(model, params, Xs[idx], Y[idx], head_mask)
            step += 1
            for i, g in enumerate(grads):
                if is_weight[i]:
                    g = g + model.alpha * params[i] * _mask_like(head_mask, g)
                if proximal_mu > 0:
                    g = g + proximal_mu * (params[i] - center[i]) * _mask_like(head_mask, g)
                if optimizer == "sgd":
                    m[i] = 0.9 * m[i] + g
                    params[i] = params[i] - lr * m[i]
                    continue
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mhat = m[i] / (1 - b1**step)
                vhat = v[i] / (1 - b2**step)
                params[i] = params[i] - lr * mhat / (np.sqrt(vhat) + eps)
    set_parameters(model, params)
    logits = model._fault_logits(model._forward(Xs, params)[0])
    loss = float(np.mean(_bce_with_logits(logits, Y)[:, fault_mask > 0]))
    acc = float(np.mean(((logits >= 0) == (Y > 0.5))[:, fault_mask > 0]))
    return {"train_loss": loss, "train_acc": acc, "steps": float(step)}


def _mask_like(head_mask: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Broadcast the per-head mask onto a parameter whose first axis is the head axis."""
    return head_mask.reshape((-1,) + (1,) * (g.ndim - 1))


def _gradients(
    model: FaultClassifier, params: list[np.ndarray], Xs: np.ndarray, Y: np.ndarray, head_mask: np.ndarray
) -> list[np.ndarray]:
    """Gradients of the mean BCE (summed over the trained heads) w.r.t. every parameter."""
    z, A = model._forward(Xs, params)
    groups, M = model.groups_, model.input_mask_
    # Noisy-OR: dBCE/dz_head = (p_fault - y) * sigmoid(z_head) / p_fault (sigmoid(z) - y for a lone head).
    p = _sigmoid(model._fault_logits(z))[:, groups]
    s = _sigmoid(z)
    ratio = np.minimum(s / np.maximum(p, 1e-300), 1.0)
    G = (p - Y[:, groups]) * ratio * head_mask / len(Xs)
    if A is None:
        return [(G.T @ Xs) * M, G.sum(axis=0)]
    _, _, W2, _ = params
    gW2 = np.einsum("nk,nkh->kh", G, A)
    gb2 = G.sum(axis=0)
    dA = G[:, :, None] * W2[None, :, :]
    dZ = dA * (1.0 - A * A) if model.activation == "tanh" else dA * (A > 0)
    gW1 = np.einsum("nf,nkh->kfh", Xs, dZ) * M[:, :, None]
    gb1 = dZ.sum(axis=0)
    return [gW1, gb1, gW2, gb2]


def calibrate_head(
    model: FaultClassifier, X: np.ndarray, y: np.ndarray, head: int, *, iters: int = 50, reg: float = 1e-3
) -> tuple[float, float]:
    """Platt-scale one head in place on held-out data; returns the (slope, offset) folded into its last layer.

    The calibrated logit is ``a * z + c``; because the output layer is linear in ``z`` the map is folded into
    the head's last weights and bias, so the serialised model needs no extra calibration arrays. ``(a, c)``
    minimise the mean log-loss of ``a * z + c`` plus ``reg / 2 * (a - 1)^2`` (Newton steps), then ``a`` is
    floored at 1e-3.
    """
    z = model.decision_function(X)[:, head]
    y = np.asarray(y, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both classes")
    heads = np.flatnonzero(model.groups_ == head)
    if len(heads) != 1:
        # A noisy-OR of several heads has no last layer to fold a Platt map into; its heads stay as trained.
        logger.info("head %d is a noisy-OR of %d heads: not calibrated", head, len(heads))
        return 1.0, 0.0
    head = int(heads[0])
    a, c = 1.0, 0.0
    for _ in range(iters):
        p = _sigmoid(a * z + c)
        w = p * (1 - p)
        ga = np.mean((p - y) * z) + reg * (a - 1.0)
        gc = np.mean(p - y)
        H = np.array([[np.mean(w * z * z) + reg, np.mean(w * z)], [np.mean(w * z), np.mean(w) + 1e-9]])
        da, dc = np.linalg.solve(H, [ga, gc])
        a, c = a - da, c - dc
        if abs(da) + abs(dc) < 1e-10:
            break
    # Keep the head monotone: a negative slope would mean the head is anti-correlated, a training failure.
    a = max(a, 1e-3)
    params = get_parameters(model)
    params[-2][head] *= a
    params[-1][head] = a * params[-1][head] + c
    set_parameters(model, params)
    return float(a), float(c)


# ---------------------------------------------------------------------- parameter bridge
def get_parameters(model: FaultClassifier) -> list[np.ndarray]:
    """Copies of the trainable arrays in a fixed order (the federated payload)."""
    model._check_fitted()
    return [np.array(getattr(model, name + "_"), dtype=np.float64) for name in model.param_names]


def set_parameters(model: FaultClassifier, params: Sequence[np.ndarray]) -> FaultClassifier:
    """Load trainable arrays into ``model`` after checking count, shapes and finiteness."""
    model._check_fitted()
    names = model.param_names
    if len(params) != len(names):
        raise ValueError(f"expected {len(names)} parameter arrays, got {len(params)}")
    new = []
    for name, p in zip(names, params, strict=True):
        cur = getattr(model, name + "_")
        arr = np.asarray(p, dtype=np.float64)
        if arr.shape != cur.shape:
            raise ValueError(f"parameter {name}: expected shape {cur.shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"parameter {name} contains non-finite values")
        new.append(arr.copy())
    for name, arr in zip(names, new, strict=True):
        setattr(model, name + "_", arr)
    return model


# ---------------------------------------------------------------------- safe serialisation
_HYPER_KEYS = ("hidden", "epochs", "learning_rate", "batch_size", "alpha", "activation", "random_state")


def _hyper(config: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments from serialised hyperparameters (version 1 has no head structure or fallback)."""
    hp = dict(config["hyperparameters"])
    out = {k: hp[k] for k in _HYPER_KEYS}
    if hp.get("head_inputs") is not None:
        out["head_inputs"] = tuple(tuple(str(c) for c in cols) for cols in hp["head_inputs"])
    if hp.get("head_groups") is not None:
        out["head_groups"] = tuple(int(g) for g in hp["head_groups"])
    if hp.get("fallback_threshold") is not None:
        out["fallback_threshold"] = float(hp["fallback_threshold"])
    return out


def to_arrays(model: FaultClassifier) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split a model into plain float64 arrays and JSON-able metadata (no pickle anywhere)."""
    model._check_fitted()
    arrays = {name: p for name, p in zip(model.param_names, get_parameters(model), strict=True)}
    arrays["feature_mean"] = model.mean_.astype(np.float64).copy()
    arrays["feature_scale"] = model.scale_.astype(np.float64).copy()
    arrays["thresholds"] = model.thresholds_.astype(np.float64).copy()
    if model.baseline_ is not None:
        arrays["baseline_coef"] = model.baseline_.coef.copy()
        arrays["baseline_scale"] = model.baseline_.scale.copy()
        arrays["baseline_input_ref"] = model.baseline_.input_ref.copy()
        if model.baseline_.shared_coef is not None:
            arrays["baseline_shared_coef"] = model.baseline_.shared_coef.copy()
    n_f = int(model.n_features_in_)
    names = model.input_names()[:n_f]
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_kind": MODEL_KIND,
        "architecture": "mlp_heads" if int(model.hidden) > 0 else "logistic_heads",
        "hyperparameters": {
            **{key: _jsonable(getattr(model, key)) for key in _HYPER_KEYS},
            "head_inputs": None if model.head_inputs is None else [list(c) for c in model.head_inputs],
            "head_groups": None if model.head_groups is None else [int(g) for g in model.head_groups],
            "fallback_threshold": None
            if model.fallback_threshold is None
            else float(model.fallback_threshold),
        },
        "feature_names": names,
        "fault_names": list(model.fault_names),
        "n_features": n_f,
        "thresholds": [float(t) for t in model.thresholds_],
        "feature_mean": [float(x) for x in model.mean_],
        "feature_scale": [float(x) for x in model.scale_],
        "param_names": list(model.param_names),
        "baseline": None if model.baseline_ is None else model.baseline_.to_json(),
        "input_names": model.input_names(),
        "array_shapes": {k: list(a.shape) for k, a in arrays.items()},
    }
    json.dumps(meta)  # fail here, not in the store, if anything is not JSON-able
    return arrays, meta


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return x


def from_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> FaultClassifier:
    """Rebuild a model from :func:`to_arrays` output, validating kind, version, shapes and dtypes."""
    if meta.get("model_kind") != MODEL_KIND:
        raise ValueError(f"unknown model_kind {meta.get('model_kind')!r}")
    if int(meta.get("format_version", -1)) not in _READABLE_VERSIONS:
        raise ValueError(f"unsupported format_version {meta.get('format_version')!r}")
    for key, arr in arrays.items():
        a = np.asarray(arr)
        if a.dtype.kind != "f":
            raise ValueError(f"array {key!r} has non-float dtype {a.dtype}")
    model = FaultClassifier(
        **_hyper(meta), fault_names=tuple(meta["fault_names"]), feature_names=tuple(meta["feature_names"])
    )
    if list(model.param_names) != list(meta["param_names"]):
        raise ValueError("param_names do not match the architecture")
    baseline = None
    if meta.get("baseline") is not None:
        baseline = HealthyBaseline.from_json(
            {
                "inputs": meta["baseline"]["inputs"],
                "targets": meta["baseline"]["targets"],
                "input_ref": arrays["baseline_input_ref"],
                "coef": arrays["baseline_coef"],
                "scale": arrays["baseline_scale"],
                "signature": meta["baseline"].get("signature", ()),
                "shared": meta["baseline"].get("shared", ()),
                "shared_coef": arrays.get("baseline_shared_coef"),
                "signature_fault": meta["baseline"].get("signature_fault"),
            }
        )
    model.initialize(int(meta["n_features"]), arrays["feature_mean"], arrays["feature_scale"], baseline)
    set_parameters(model, [arrays[name] for name in model.param_names])
    thr = np.asarray(arrays["thresholds"], dtype=np.float64)
    if thr.shape != (len(model.fault_names),) or not np.all((thr > 0) & (thr < 1)):
        raise ValueError("thresholds must be one value in (0, 1) per fault")
    model.thresholds_ = thr.copy()
    return model


def model_config(model: FaultClassifier) -> dict[str, Any]:
    """JSON-able description (architecture, scaler, thresholds) a client needs to rebuild the global model."""
    return to_arrays(model)[1]


def model_from_config(config: Mapping[str, Any], params: Sequence[np.ndarray]) -> FaultClassifier:
    """Rebuild a model from :func:`model_config` and a parameter list (client side of the bridge)."""
    model = FaultClassifier(
        **_hyper(config),
        fault_names=tuple(config["fault_names"]),
        feature_names=tuple(config["feature_names"]),
    )
    baseline = None if config.get("baseline") is None else HealthyBaseline.from_json(config["baseline"])
    model.initialize(
        int(config["n_features"]),
        np.array(config["feature_mean"]),
        np.array(config["feature_scale"]),
        baseline,
    )
    model.thresholds_ = np.asarray(config["thresholds"], dtype=np.float64)
    return set_parameters(model, params)
