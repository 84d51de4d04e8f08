"""Central differential privacy for federated averaging: per-client update clipping + Gaussian noise.

Each client's update (its parameters minus the global ones) is clipped to L2 norm ``clip_norm``; the
server adds ``N(0, (noise_multiplier * clip_norm)^2)`` to the sum of clipped updates and divides by the
number of clients.
This is client-level (user-level) DP under add/remove of one client. Privacy is accounted with Renyi DP of the
Gaussian mechanism (no subsampling amplification is claimed, since every client trains every round).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from federated.aggregate import flatten, unflatten
from federated.client import ClientResult
from federated.strategy.base import ClientFailure, FitInstruction, Params, Strategy
from federated.strategy.fedadam import FedAdam
from federated.strategy.fedavg import FedAvg

logger = logging.getLogger(__name__)

_ORDERS = np.concatenate([np.linspace(1.05, 10.0, 180), np.arange(11.0, 513.0)])


def gaussian_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """(epsilon, delta)-DP of ``rounds`` compositions of the Gaussian mechanism (RDP accountant)."""
    if noise_multiplier <= 0:
        return math.inf
    if rounds <= 0:
        return 0.0
    rdp = rounds * _ORDERS / (2.0 * noise_multiplier**2)
    eps = rdp + np.log1p(-1.0 / _ORDERS) - (np.log(delta) + np.log(_ORDERS)) / (_ORDERS - 1.0)
    return float(max(0.0, np.min(eps)))


def clip_update(
    params: Sequence[np.ndarray], global_params: Sequence[np.ndarray], clip_norm: float
) -> tuple[Params, float]:
    """Clip ``params - global_params`` to L2 norm ``clip_norm``; returns clipped params and original norm."""
    delta = flatten(params) - flatten(global_params)
    norm = float(np.linalg.norm(delta))
    scale = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return unflatten(flatten(global_params) + scale * delta, global_params), norm


class DPFixedClipping(Strategy):
    """Wrap a mean-based strategy (FedAvg, FedProx, FedAdam) with fixed clipping and Gaussian noise."""

    name = "dp"

    def __init__(
        self,
        inner: Strategy,
        *,
        clip_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        delta: float = 1e-5,
        seed: int = 0,
    ) -> None:
        if not isinstance(inner, FedAvg | FedAdam):
            raise TypeError("DP averaging needs a mean-based inner strategy (FedAvg, FedProx or FedAdam)")
        if not (np.isfinite(clip_norm) and clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive number, got {clip_norm}")
        if not (np.isfinite(noise_multiplier) and noise_multiplier >= 0):
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        super().__init__(
            inner.fit_config,
            min_fit_clients=inner.min_fit_clients,
            min_completion_rate=inner.min_completion_rate,
            fraction_fit=inner.fraction_fit,
            seed=inner.seed,
        )
        self.inner = inner
        self.name = f"dp-{inner.name}"  # type: ignore[misc]
        self.clip_norm = float(clip_norm)
        self.noise_multiplier = float(noise_multiplier)
        self.delta = float(delta)
        self._rng = np.random.default_rng(seed)
        self.rounds_ = 0

    def configure_fit(
        self, server_round: int, global_params: Sequence[np.ndarray], clients: Sequence[str]
    ) -> list[FitInstruction]:
        """Delegate to the inner strategy (keeps its client config, e.g. ``proximal_mu``)."""
        self._global = [np.array(p, dtype=np.float64) for p in global_params]
        return self.inner.configure_fit(server_round, global_params, clients)

    def aggregate_fit(
        self,
        server_round: int,
        results: Sequence[ClientResult],
        failures: Sequence[ClientFailure | BaseException],
        global_params: Sequence[np.ndarray] | None = None,
    ) -> Params:
        """Clip, average uniformly, add noise, then let the inner strategy apply the noisy mean."""
        g = self._round_global(global_params)
        accepted, all_failures = self.screen_results(results, failures, g)
        self.check_quorum(server_round, accepted, all_failures)
        clipped, norms = zip(*(clip_update(r.params, g, self.clip_norm) for r in accepted), strict=True)
        n = len(clipped)
        total = np.sum([flatten(c) - flatten(g) for c in clipped], axis=0)
        noisy_sum = total + self._rng.normal(0.0, self.noise_multiplier * self.clip_norm, size=total.shape)
        noisy = unflatten(flatten(g) + noisy_sum / n, g)
        self.rounds_ += 1
        logger.info(
            "round %d: DP clip=%.3g median update norm=%.3g noise_multiplier=%.3g epsilon=%.3g (delta=%g)",
            server_round,
            self.clip_norm,
            float(np.median(norms)),
            self.noise_multiplier,
            self.epsilon(),
            self.delta,
        )
        # The inner rule sees a single uniform "client" carrying the privatised mean.
        return self.inner.aggregate(server_round, [ClientResult(noisy, 1, {}, "dp-mean")], g)

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Unused: :meth:`aggregate_fit` is overridden."""
        raise NotImplementedError

    def epsilon(self, rounds: int | None = None) -> float:
        """Epsilon spent after ``rounds`` (default: rounds aggregated so far) at this wrapper's delta."""
        return gaussian_epsilon(self.noise_multiplier, self.rounds_ if rounds is None else rounds, self.delta)

    def describe(self) -> dict[str, Any]:
        """Scalars worth logging next to the model."""
        return {
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "delta": self.delta,
            "epsilon": self.epsilon(),
            "rounds": self.rounds_,
        }
