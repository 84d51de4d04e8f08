"""Healthy-baseline residuals, fitted federatedly: a digital-twin reference of what a healthy pump reads.

Many fault signatures are small shifts of operating-point-dependent quantities (a blocked inlet raises motor
current by ~0.5 % at the smallest severities, while current varies by tens of percent with speed and load).
A quadratic model of each target feature in the operating point (outlet pressure, speed) is fitted on healthy
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

BASELINE_INPUTS: tuple[str, ...] = ("pressure_mean_bar", "speed_mean_rpm")
BASELINE_TARGETS: tuple[str, ...] = (
    "current_mean_a",
    "volumetric_efficiency",
    "flow_order3_rel",
    "flow_order6_rel",
    "pressure_order3_rel",
    "tsa_flow_min_rel",
    "current_order3_abs",
    "speed_order3_abs",
    # Suction-stroke signatures: a blocked inlet adds suction torque (current ripple and its phase against the
    # discharge flow) and, once the cylinders cavitate, late delivery (flow ripple, one-per-rev asymmetry).
    "current_ripple_rel",
    "current_order6_abs",
    "current_vs_flow_phase3_cos",
    "current_vs_flow_phase3_sin",
    "flow_ripple_rel",
    "flow_order1_rel",
    # One short cylinder breaks the three-fold symmetry: the leak's own signature.
    "flow_order2_rel",
    "flow_asym_orders12",
    "cyl_flow_spread_rel",
)
#: Residuals that only a seal leak moves (one cylinder delivering less: crank orders 1 and 2 of the flow).
LEAK_SIGNATURE: tuple[str, ...] = ("flow_order1_rel", "flow_order2_rel")
#: Residuals a leak shares with other faults (delivery, current, ripple). Their leak share, predicted linearly
#: from LEAK_SIGNATURE, is removed so a blocked inlet's cavitation or a bearing's current reads the same with
#: or without a leak: the label-skewed sites never show a head the combinations.
LEAK_SHARED: tuple[str, ...] = (
    "current_mean_a",
    "volumetric_efficiency",
    "flow_order3_rel",
    "flow_order6_rel",
    "current_order3_abs",
)
LEAK_COLUMN = 0  # column of the leak in the label matrix (federated.model.FAULT_NAMES[0])
_INPUT_REF = (7.0, 1916.0)  # nominal outlet bar, motor rpm: keeps the polynomial well conditioned


@dataclass(frozen=True)
class HealthyBaseline:
    """Quadratic healthy model ``target ~ poly2(inputs / input_ref)`` and its healthy residual std."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    input_ref: np.ndarray
    coef: np.ndarray  # (n_poly, n_targets)
    scale: np.ndarray  # (n_targets,)
    #: Leak share removal: residuals of ``shared`` regressed on [residuals of ``signature``, 1].
    signature: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    shared_coef: np.ndarray | None = None  # (len(signature) + 1, len(shared))

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the residual features appended to the input."""
        leak_free = (
            tuple(f"resid_{t}_leak_removed" for t in self.shared) if self.shared_coef is not None else ()
        )
        return tuple(f"resid_{t}" for t in self.targets) + leak_free

    def raw_residuals(self, X: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """Target minus its healthy prediction, in the target's units, shape (n, n_targets)."""
        names = list(feature_names)
        phi = design(X[:, [names.index(n) for n in self.inputs]], self.input_ref)
        return X[:, [names.index(n) for n in self.targets]] - phi @ self.coef

    def transform(self, X: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """``asinh(residual / scale)`` per target, then the leak-removed residuals; shape (n, outputs)."""
        R = self.raw_residuals(X, feature_names)
        out = np.arcsinh(R / self.scale)
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
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HealthyBaseline:
        """Inverse of :meth:`to_json`, with shape checks (models written before leak removal load too)."""
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
        )
        n_poly = design(np.zeros((1, len(b.inputs))), b.input_ref).shape[1]
        if b.coef.shape != (n_poly, len(b.targets)) or b.scale.shape != (len(b.targets),):
            raise ValueError("baseline coef/scale shapes do not match inputs/targets")
        if not (np.all(np.isfinite(b.coef)) and np.all(b.scale > 0)):
            raise ValueError("baseline coef must be finite and scale > 0")
        if b.shared_coef is not None:
            if not set(b.signature + b.shared) <= set(b.targets):
                raise ValueError("leak signature/shared residuals must be baseline targets")
            if b.shared_coef.shape != (len(b.signature) + 1, len(b.shared)) or not np.all(
                np.isfinite(b.shared_coef)
            ):
                raise ValueError("leak removal coefficients do not match signature/shared")
        return b


def design(U: np.ndarray, input_ref: np.ndarray) -> np.ndarray:
    """Quadratic design matrix [1, u_i, u_i u_j] of inputs normalised by ``input_ref``."""
    u = np.asarray(U, dtype=np.float64) / input_ref
    cols = [np.ones(len(u))] + [u[:, i] for i in range(u.shape[1])]
    cols += [u[:, i] * u[:, j] for i in range(u.shape[1]) for j in range(i, u.shape[1])]
    return np.column_stack(cols)


def _healthy(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return np.asarray(X)[np.asarray(Y).sum(axis=1) == 0]


def local_gram(
    X: np.ndarray,
    Y: np.ndarray,
    feature_names: Sequence[str],
    inputs: Sequence[str] = BASELINE_INPUTS,
    targets: Sequence[str] = BASELINE_TARGETS,
) -> dict[str, np.ndarray]:
    """A client's healthy-row sufficient statistics: ``Phi^T Phi``, ``Phi^T T`` and the row count."""
    H = _healthy(X, Y)
    names = list(feature_names)
    phi = design(H[:, [names.index(n) for n in inputs]], np.asarray(_INPUT_REF[: len(inputs)]))
    T = H[:, [names.index(n) for n in targets]]
    return {"gram": phi.T @ phi, "cross": phi.T @ T, "count": np.array(float(len(H)))}


def solve_baseline(
    grams: Iterable[Mapping[str, np.ndarray]],
    inputs: Sequence[str] = BASELINE_INPUTS,
    targets: Sequence[str] = BASELINE_TARGETS,
    ridge: float = 1e-9,
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
    ref = np.asarray(_INPUT_REF[: len(inputs)], dtype=np.float64)
    return HealthyBaseline(tuple(inputs), tuple(targets), ref, coef, np.ones(len(targets)))


def local_residual_ss(
    X: np.ndarray,
    Y: np.ndarray,
    feature_names: Sequence[str],
    baseline: HealthyBaseline,
    signature: Sequence[str] = LEAK_SIGNATURE,
    shared: Sequence[str] = LEAK_SHARED,
) -> dict[str, np.ndarray]:
    """A client's healthy-row residual sum of squares per target and count, plus the normal equations of the
    leak share (``shared`` residuals on [``signature`` residuals, 1]) over its rows with no other fault."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y)
    R = baseline.raw_residuals(X, feature_names)
    healthy = Y.sum(axis=1) == 0
    out = {"ss": np.square(R[healthy]).sum(axis=0), "count": np.array(float(healthy.sum()))}
    t = list(baseline.targets)
    if set(signature) | set(shared) <= set(t) and signature and shared:
        others = np.delete(Y, LEAK_COLUMN, axis=1) if Y.shape[1] > LEAK_COLUMN else Y
        rows = others.sum(axis=1) == 0
        Rl = R[rows]
        E = np.column_stack([Rl[:, [t.index(n) for n in signature]], np.ones(len(Rl))])
        out["leak_gram"] = E.T @ E
        out["leak_cross"] = E.T @ Rl[:, [t.index(n) for n in shared]]
        out["leak_rows"] = np.array(float(Y[rows, LEAK_COLUMN].sum()) if Y.shape[1] > LEAK_COLUMN else 0.0)
    return out


def set_residual_scale(
    baseline: HealthyBaseline,
    ss: Iterable[Mapping[str, np.ndarray]],
    signature: Sequence[str] = LEAK_SIGNATURE,
    shared: Sequence[str] = LEAK_SHARED,
    min_leak_rows: int = 10,
) -> HealthyBaseline:
    """Baseline with ``scale`` = pooled healthy residual RMS (floored so a perfect fit cannot divide by 0) and
    the leak share's least-squares coefficients.

    With fewer than ``min_leak_rows`` leak rows across the sites (no leak site answered), the coefficients
    are zero: the ``_leak_removed`` columns equal the plain residuals and the model's inputs keep their names.
    """
    items = list(ss)
    total = np.sum([s["ss"] for s in items], axis=0)
    n = float(np.sum([s["count"] for s in items]))
    rms = np.sqrt(total / max(n, 1.0))
    scale = np.maximum(rms, 1e-9 + 1e-6 * np.abs(baseline.coef[0]))
    leak = [s for s in items if "leak_gram" in s]
    shared_coef = None
    if leak:
        G = np.sum([s["leak_gram"] for s in leak], axis=0)
        C = np.sum([s["leak_cross"] for s in leak], axis=0)
        n_leak = float(np.sum([s["leak_rows"] for s in leak]))
        if n_leak >= min_leak_rows:
            shared_coef = np.linalg.solve(G + 1e-9 * np.trace(G) * np.eye(len(G)), C)
        else:
            logger.warning("only %d leak rows at the sites: leak share not removed", int(n_leak))
            shared_coef = np.zeros_like(C)
    return HealthyBaseline(
        baseline.inputs,
        baseline.targets,
        baseline.input_ref,
        baseline.coef,
        scale,
        tuple(signature) if shared_coef is not None else (),
        tuple(shared) if shared_coef is not None else (),
        shared_coef,
    )
