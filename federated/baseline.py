"""Healthy-baseline residuals, fitted federatedly: a digital-twin reference of what a healthy asset reads.

Many fault signatures are small shifts of operating-point-dependent quantities (a mild fault may move a
quantity by ~0.5 % while the operating point moves it by tens of percent). Which features are the operating
point and which are modelled is the caller's: a :class:`BaselineSpec` of named features. A quadratic model
of each target feature in the operating point is fitted on healthy
rows by least squares from clients' sufficient statistics (``Phi^T Phi``, ``Phi^T T``, residual sum of
squares: sums over rows, never rows). The classifier then sees ``asinh(residual / healthy residual std)``:
about +-1 when healthy, a few units for a small fault, log-compressed for large ones: one scaling suits all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: The removed-share columns of models serialised before the fault's name was stored in the baseline are
#: named after this fault (their only signature fault); new models store the name (``signature_fault``).
LEGACY_SIGNATURE_FAULT = "leak"


@dataclass(frozen=True)
class BaselineSpec:
    """What the healthy baseline models, by feature name: the caller's vocabulary (this module knows none).

    Attributes
    ----------
    inputs : tuple of str
        Operating-point features the baseline is a quadratic in.
    input_ref : tuple of float
        A typical value of each input (e.g. at the nominal operating point); inputs are divided by it so the
        polynomial is well conditioned.
    targets : tuple of str
        Features whose healthy value is modelled; their residuals are appended to the model's input.
    signature : tuple of str
        Residuals that only one fault moves (its signature).
    shared : tuple of str
        Residuals that fault shares with others. Their share of it, predicted linearly from ``signature``, is
        removed (extra ``resid_<target>_<signature_fault>_removed`` columns), so another fault's residual
        reads the same with or without it.
    signature_column : int
        Label column of that fault (rows where no other fault is present fit the removal).
    signature_fault : str
        That fault's name, used in the removed columns' names.
    """

    inputs: tuple[str, ...]
    input_ref: tuple[float, ...]
    targets: tuple[str, ...]
    signature: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    signature_column: int = 0
    signature_fault: str = LEGACY_SIGNATURE_FAULT

    def __post_init__(self) -> None:
        if len(self.input_ref) != len(self.inputs) or not all(r > 0 for r in self.input_ref):
            raise ValueError(f"input_ref needs one positive value per input {self.inputs}: {self.input_ref}")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form, e.g. for a site call's arguments."""
        return {
            "inputs": list(self.inputs),
            "input_ref": [float(r) for r in self.input_ref],
            "targets": list(self.targets),
            "signature": list(self.signature),
            "shared": list(self.shared),
            "signature_column": int(self.signature_column),
            "signature_fault": self.signature_fault,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BaselineSpec:
        """Inverse of :meth:`to_json` (``ValueError`` on a malformed spec)."""
        try:
            return cls(
                inputs=tuple(str(n) for n in d["inputs"]),
                input_ref=tuple(float(r) for r in d["input_ref"]),
                targets=tuple(str(n) for n in d["targets"]),
                signature=tuple(str(n) for n in d.get("signature", ())),
                shared=tuple(str(n) for n in d.get("shared", ())),
                signature_column=int(d.get("signature_column", 0)),
                signature_fault=str(d.get("signature_fault") or LEGACY_SIGNATURE_FAULT),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed baseline spec: {exc!r}") from None


@dataclass(frozen=True)
class HealthyBaseline:
    """Quadratic healthy model ``target ~ poly2(inputs / input_ref)`` and its healthy residual std."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    input_ref: np.ndarray
    coef: np.ndarray  # (n_poly, n_targets)
    scale: np.ndarray  # (n_targets,)
    #: Share removal: residuals of ``shared`` regressed on [residuals of ``signature``, 1] (BaselineSpec).
    signature: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    shared_coef: np.ndarray | None = None  # (len(signature) + 1, len(shared))
    signature_fault: str = LEGACY_SIGNATURE_FAULT

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the residual features appended to the input."""
        tag = self.signature_fault
        removed = (
            tuple(f"resid_{t}_{tag}_removed" for t in self.shared) if self.shared_coef is not None else ()
        )
        return tuple(f"resid_{t}" for t in self.targets) + removed

    def raw_residuals(self, X: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """Target minus its healthy prediction, in the target's units, shape (n, n_targets)."""
        names = list(feature_names)
        phi = design(X[:, [names.index(n) for n in self.inputs]], self.input_ref)
        resid: np.ndarray = X[:, [names.index(n) for n in self.targets]] - phi @ self.coef
        return resid

    def transform(self, X: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """``asinh(residual / scale)`` per target, then the share-removed residuals; shape (n, outputs)."""
        R = self.raw_residuals(X, feature_names)
        out: np.ndarray = np.arcsinh(R / self.scale)
        if self.shared_coef is None:
            return out
        t = list(self.targets)
        sig, sh = [t.index(n) for n in self.signature], [t.index(n) for n in self.shared]
        E = np.column_stack([R[:, sig], np.ones(len(R))])
        return np.hstack([out, np.arcsinh((R[:, sh] - E @ self.shared_coef) / self.scale[sh])])

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (used in model metadata / client config)."""
        return {
            "inputs": list(self.inputs),
            "targets": list(self.targets),
            "input_ref": self.input_ref.tolist(),
            "coef": self.coef.tolist(),
            "scale": self.scale.tolist(),
            "signature": list(self.signature),
            "shared": list(self.shared),
            "shared_coef": None if self.shared_coef is None else self.shared_coef.tolist(),
            "signature_fault": self.signature_fault,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HealthyBaseline:
        """Inverse of :meth:`to_json`, with shape checks (models written before share removal load too)."""
        sc = d.get("shared_coef")
        b = cls(
            tuple(d["inputs"]),
            tuple(d["targets"]),
            np.asarray(d["input_ref"], dtype=np.float64),
            np.asarray(d["coef"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            tuple(d.get("signature", ())),
            tuple(d.get("shared", ())),
            None if sc is None else np.asarray(sc, dtype=np.float64),
            str(d.get("signature_fault") or LEGACY_SIGNATURE_FAULT),
        )
        n_poly = design(np.zeros((1, len(b.inputs))), b.input_ref).shape[1]
        if b.coef.shape != (n_poly, len(b.targets)) or b.scale.shape != (len(b.targets),):
            raise ValueError("baseline coef/scale shapes do not match inputs/targets")
        if not (np.all(np.isfinite(b.coef)) and np.all(b.scale > 0)):
            raise ValueError("baseline coef must be finite and scale > 0")
        if b.shared_coef is not None:
            if not set(b.signature + b.shared) <= set(b.targets):
                raise ValueError("signature/shared residuals must be baseline targets")
            if b.shared_coef.shape != (len(b.signature) + 1, len(b.shared)) or not np.all(
                np.isfinite(b.shared_coef)
            ):
                raise ValueError("share removal coefficients do not match signature/shared")
        return b


def design(U: np.ndarray, input_ref: np.ndarray) -> np.ndarray:
    """Quadratic design matrix [1, u_i, u_i u_j] of inputs normalised by ``input_ref``."""
    u = np.asarray(U, dtype=np.float64) / input_ref
    cols = [np.ones(len(u))] + [u[:, i] for i in range(u.shape[1])]
    cols += [u[:, i] * u[:, j] for i in range(u.shape[1]) for j in range(i, u.shape[1])]
    return np.column_stack(cols)


def _healthy(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    rows: np.ndarray = np.asarray(X)[np.asarray(Y).sum(axis=1) == 0]
    return rows


def local_gram(
    X: np.ndarray, Y: np.ndarray, feature_names: Sequence[str], spec: BaselineSpec
) -> dict[str, np.ndarray]:
    """A client's healthy-row sufficient statistics: ``Phi^T Phi``, ``Phi^T T`` and the row count."""
    H = _healthy(X, Y)
    names = list(feature_names)
    phi = design(H[:, [names.index(n) for n in spec.inputs]], np.asarray(spec.input_ref))
    T = H[:, [names.index(n) for n in spec.targets]]
    return {"gram": phi.T @ phi, "cross": phi.T @ T, "count": np.array(float(len(H)))}


def solve_baseline(
    grams: Iterable[Mapping[str, np.ndarray]], spec: BaselineSpec, ridge: float = 1e-9
) -> HealthyBaseline:
    """Least-squares coefficients from summed statistics (scale set to 1 until :func:`set_residual_scale`).

    Solves ``(G + ridge * n * I) coef = C`` (the ridge is per row, so it means the same for any site count)
    and needs at least three healthy rows per polynomial term.
    """
    items = list(grams)
    G = np.sum([g["gram"] for g in items], axis=0)
    C = np.sum([g["cross"] for g in items], axis=0)
    n = float(np.sum([g["count"] for g in items]))
    if n < G.shape[0] * 3:
        raise ValueError(f"too few healthy rows ({n:g}) to fit a {G.shape[0]}-term baseline")
    coef = np.linalg.solve(G + ridge * n * np.eye(G.shape[0]), C)
    ref = np.asarray(spec.input_ref, dtype=np.float64)
    return HealthyBaseline(spec.inputs, spec.targets, ref, coef, np.ones(len(spec.targets)))


def local_residual_ss(
    X: np.ndarray,
    Y: np.ndarray,
    feature_names: Sequence[str],
    baseline: HealthyBaseline,
    spec: BaselineSpec,
) -> dict[str, np.ndarray]:
    """A client's healthy-row residual sum of squares per target and count, plus the normal equations of the
    share removal (``spec.shared`` residuals on [``spec.signature`` residuals, 1]) over its rows with no fault
    other than the signature's."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y)
    R = baseline.raw_residuals(X, feature_names)
    healthy = Y.sum(axis=1) == 0
    out = {"ss": np.square(R[healthy]).sum(axis=0), "count": np.array(float(healthy.sum()))}
    t = list(baseline.targets)
    signature, shared, col = spec.signature, spec.shared, spec.signature_column
    if set(signature) | set(shared) <= set(t) and signature and shared:
        others = np.delete(Y, col, axis=1) if Y.shape[1] > col else Y
        rows = others.sum(axis=1) == 0
        Rl = R[rows]
        E = np.column_stack([Rl[:, [t.index(n) for n in signature]], np.ones(len(Rl))])
        out["shared_gram"] = E.T @ E
        out["shared_cross"] = E.T @ Rl[:, [t.index(n) for n in shared]]
        out["signature_rows"] = np.array(float(Y[rows, col].sum()) if Y.shape[1] > col else 0.0)
    return out


def set_residual_scale(
    baseline: HealthyBaseline,
    ss: Iterable[Mapping[str, np.ndarray]],
    spec: BaselineSpec,
    min_signature_rows: int = 10,
) -> HealthyBaseline:
    """Baseline with ``scale`` = pooled healthy residual RMS (floored so a perfect fit cannot divide by 0) and
    the share removal's least-squares coefficients.

    With fewer than ``min_signature_rows`` rows of the signature fault across the sites (no site holding it
    answered), the coefficients are zero: the ``_removed`` columns equal the plain residuals and the model's
    inputs keep their names.
    """
    items = list(ss)
    total = np.sum([s["ss"] for s in items], axis=0)
    n = float(np.sum([s["count"] for s in items]))
    rms = np.sqrt(total / max(n, 1.0))
    scale = np.maximum(rms, 1e-9 + 1e-6 * np.abs(baseline.coef[0]))
    with_share = [s for s in items if "shared_gram" in s]
    shared_coef = None
    if with_share:
        G = np.sum([s["shared_gram"] for s in with_share], axis=0)
        C = np.sum([s["shared_cross"] for s in with_share], axis=0)
        n_rows = float(np.sum([s["signature_rows"] for s in with_share]))
        if n_rows >= min_signature_rows:
            shared_coef = np.linalg.solve(G + 1e-9 * np.trace(G) * np.eye(len(G)), C)
        else:
            logger.warning(
                "only %d %s rows at the sites: its share not removed", int(n_rows), spec.signature_fault
            )
            shared_coef = np.zeros_like(C)
    return HealthyBaseline(
        baseline.inputs,
        baseline.targets,
        baseline.input_ref,
        baseline.coef,
        scale,
        spec.signature if shared_coef is not None else (),
        spec.shared if shared_coef is not None else (),
        shared_coef,
        spec.signature_fault,
    )
