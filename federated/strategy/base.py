"""Abstract federated strategy: who trains with what config, and how results become the next global model."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from federated.client import ClientResult

logger = logging.getLogger(__name__)

Params = list[np.ndarray]


class QuorumError(RuntimeError):
    """Too few clients were available or completed the round."""


@dataclass(frozen=True)
class FitInstruction:
    """What one client is asked to do this round."""

    client_id: str
    params: Params
    config: dict[str, Any]


@dataclass(frozen=True)
class ClientFailure:
    """A client that raised, timed out or was rejected, with the reason."""

    client_id: str
    reason: str


class Strategy(ABC):
    """Base class: sampling and quorum rules live here, each subclass supplies :meth:`aggregate`.

    Parameters
    ----------
    fit_config : mapping
        Base client config (must include ``model`` from :func:`federated.model.model_config`), e.g.
        ``local_epochs``, ``learning_rate``, ``batch_size``.
    min_fit_clients : int
        Minimum clients sampled and minimum successful results for a round to count.
    min_completion_rate : float
        Minimum share of sampled clients that must return a result.
    fraction_fit : float
        Share of available clients sampled per round.
    seed : int
        Seed for client sampling and per-client training seeds.
    """

    name: ClassVar[str] = "base"

    def __init__(
        self,
        fit_config: Mapping[str, Any],
        *,
        min_fit_clients: int = 2,
        min_completion_rate: float = 0.5,
        fraction_fit: float = 1.0,
        seed: int = 0,
    ) -> None:
        if "model" not in fit_config:
            raise ValueError("fit_config needs 'model' (federated.model.model_config(initial_model))")
        if not 0 < fraction_fit <= 1 or not 0 <= min_completion_rate <= 1 or min_fit_clients < 1:
            raise ValueError("invalid fraction_fit / min_completion_rate / min_fit_clients")
        self.fit_config = dict(fit_config)
        self.min_fit_clients = int(min_fit_clients)
        self.min_completion_rate = float(min_completion_rate)
        self.fraction_fit = float(fraction_fit)
        self.seed = int(seed)
        self._global: Params | None = None

    def client_config(self, server_round: int) -> dict[str, Any]:
        """Per-round client config; subclasses add their own keys (e.g. ``proximal_mu``)."""
        return {**self.fit_config, "server_round": int(server_round)}

    def configure_fit(
        self, server_round: int, global_params: Sequence[np.ndarray], clients: Sequence[str]
    ) -> list[FitInstruction]:
        """Sample clients and give each the global parameters and its config for this round."""
        available = list(clients)
        if len(available) < self.min_fit_clients:
            raise QuorumError(
                f"round {server_round}: only {len(available)} clients available, "
                f"min_fit_clients={self.min_fit_clients}"
            )
        n = max(self.min_fit_clients, int(np.ceil(self.fraction_fit * len(available))))
        rng = np.random.default_rng([self.seed, server_round])
        chosen = sorted(rng.choice(len(available), size=n, replace=False)) if n < len(available) else range(n)
        self._global = [np.array(p, dtype=np.float64, copy=True) for p in global_params]
        base = self.client_config(server_round)
        return [
            FitInstruction(
                available[i],
                [p.copy() for p in self._global],
                {**base, "seed": int(self.seed * 1_000_003 + server_round * 1009 + i)},
            )
            for i in chosen
        ]

    def check_quorum(
        self, server_round: int, results: Sequence[ClientResult], failures: Sequence[Any]
    ) -> None:
        """Raise :class:`QuorumError` if too few clients completed; log every failure's reason."""
        for f in failures:
            cid = getattr(f, "client_id", "?")
            reason = getattr(f, "reason", repr(f))
            logger.warning("round %d: client %s failed: %s", server_round, cid, reason)
        total = len(results) + len(failures)
        rate = len(results) / total if total else 0.0
        if len(results) < self.min_fit_clients or rate < self.min_completion_rate:
            raise QuorumError(
                f"round {server_round}: quorum not reached: {len(results)}/{total} clients completed "
                f"(completion rate {rate:.2f} < min {self.min_completion_rate:.2f} "
                f"or results < min_fit_clients={self.min_fit_clients}); failures: "
                + "; ".join(f"{getattr(f, 'client_id', '?')}: {getattr(f, 'reason', f)}" for f in failures)
            )

    def aggregate_fit(
        self,
        server_round: int,
        results: Sequence[ClientResult],
        failures: Sequence[ClientFailure | BaseException],
        global_params: Sequence[np.ndarray] | None = None,
    ) -> Params:
        """Check the quorum, then combine results into the next global parameters.

        ``global_params`` defaults to the parameters given to :meth:`configure_fit` this round; pass them
        explicitly when configure and aggregate run in different processes.
        """
        self.check_quorum(server_round, results, failures)
        if global_params is not None:
            self._global = [np.array(p, dtype=np.float64, copy=True) for p in global_params]
        if self._global is None:
            raise RuntimeError(
                "aggregate_fit needs global_params (configure_fit was not called on this object)"
            )
        new = self.aggregate(server_round, list(results), self._global)
        for i, p in enumerate(new):
            if not np.all(np.isfinite(p)):
                raise FloatingPointError(f"round {server_round}: aggregated parameter {i} is not finite")
        return new

    @abstractmethod
    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Combine client parameters (quorum already checked)."""
