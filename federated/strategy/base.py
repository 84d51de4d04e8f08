"""Abstract federated strategy: who trains with what config, and how results become the next global model."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from federated.aggregate import update_problem
from federated.client import ClientResult, FitOptions

logger = logging.getLogger(__name__)

Params = list[np.ndarray]


class QuorumError(RuntimeError):
    """Too few clients were available or completed the round."""


@dataclass(frozen=True)
class FitInstruction:
    """What one client is asked to do this round; ``config`` is plain data: ``model``, ``server_round`` and
    ``options`` (:meth:`FitOptions.to_plain`)."""

    client_id: str
    params: Params
    config: dict[str, Any]

    @property
    def options(self) -> FitOptions:
        """The client's training options, typed."""
        return FitOptions.from_plain(self.config["options"])


@dataclass(frozen=True)
class ClientFailure:
    """A client that raised, timed out or was rejected, with the reason."""

    client_id: str
    reason: str


def _describe(failure: ClientFailure | BaseException) -> str:
    """``"<client>: <reason>"`` for a failure (an exception has no client id: ``"?"``)."""
    if isinstance(failure, ClientFailure):
        return f"{failure.client_id}: {failure.reason}"
    return f"?: {type(failure).__name__}: {failure}"


class Strategy(ABC):
    """Base class: sampling and quorum rules live here, each subclass supplies :meth:`aggregate`.

    Parameters
    ----------
    fit_config : mapping
        ``model`` (from :func:`federated.model.model_config`) and the base :class:`FitOptions` fields, e.g.
        ``local_epochs``, ``learning_rate``, ``batch_size``; an unknown option is refused here.
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
        self.options = FitOptions.from_plain({k: v for k, v in fit_config.items() if k != "model"})
        self.min_fit_clients = int(min_fit_clients)
        self.min_completion_rate = float(min_completion_rate)
        self.fraction_fit = float(fraction_fit)
        self.seed = int(seed)
        self._global: Params | None = None
        # The last aggregate_fit call's valid results and its failures (given + rejected updates).
        self.accepted_: list[ClientResult] = []
        self.failures_: list[ClientFailure | BaseException] = []

    def client_options(self, server_round: int) -> FitOptions:
        """Per-round client options; subclasses set their own (e.g. ``proximal_mu``)."""
        return self.options

    def client_config(self, server_round: int, seed: int | None = None) -> dict[str, Any]:
        """Plain-data config of one client this round (``seed`` replaces the options' seed)."""
        opts = self.client_options(server_round)
        if seed is not None:
            opts = replace(opts, seed=int(seed))
        return {
            "model": self.fit_config["model"],
            "server_round": int(server_round),
            "options": opts.to_plain(),
        }

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
        self._global = [np.array(p, dtype=np.float64) for p in global_params]
        return [
            FitInstruction(
                available[i],
                [p.copy() for p in self._global],
                self.client_config(server_round, self.seed * 1_000_003 + server_round * 1009 + i),
            )
            for i in chosen
        ]

    def check_quorum(
        self,
        server_round: int,
        results: Sequence[ClientResult],
        failures: Sequence[ClientFailure | BaseException],
    ) -> None:
        """Raise :class:`QuorumError` if too few clients completed; log every failure's reason."""
        described = [_describe(f) for f in failures]
        for text in described:
            logger.warning("round %d: client failed: %s", server_round, text)
        total = len(results) + len(failures)
        rate = len(results) / total if total else 0.0
        if len(results) < self.min_fit_clients or rate < self.min_completion_rate:
            raise QuorumError(
                f"round {server_round}: quorum not reached: {len(results)}/{total} clients completed "
                f"(completion rate {rate:.2f} < min {self.min_completion_rate:.2f} "
                f"or results < min_fit_clients={self.min_fit_clients}); failures: " + "; ".join(described)
            )

    def result_problem(self, result: ClientResult, global_params: Sequence[np.ndarray]) -> str | None:
        """Why ``result`` must not be aggregated (see :func:`federated.aggregate.update_problem`), or None.

        Subclasses that read more of a result (e.g. the ensemble's claimed positives) extend this.
        """
        if not isinstance(result, ClientResult):
            return f"returned {type(result).__name__}, not ClientResult"
        return update_problem(result.params, result.num_examples, global_params)

    def screen_results(
        self,
        results: Sequence[ClientResult],
        failures: Sequence[ClientFailure | BaseException],
        global_params: Sequence[np.ndarray],
    ) -> tuple[list[ClientResult], list[ClientFailure | BaseException]]:
        """Split ``results`` into valid ones and rejected ones (added to the failures with the reason).

        One client's NaN, wrong shape or non-positive count must not fail the whole round or skew it: the
        update is excluded (logged by :meth:`check_quorum`) and the quorum decides whether the round counts.
        Sets ``accepted_`` and ``failures_``.
        """
        accepted: list[ClientResult] = []
        all_failures: list[ClientFailure | BaseException] = list(failures)
        for r in results:
            reason = self.result_problem(r, global_params)
            if reason is None:
                accepted.append(r)
            else:
                cid = r.client_id if isinstance(r, ClientResult) else "?"
                all_failures.append(ClientFailure(cid, f"invalid update: {reason}"))
        self.accepted_, self.failures_ = accepted, all_failures
        return accepted, all_failures

    def _round_global(self, global_params: Sequence[np.ndarray] | None) -> Params:
        """This round's global parameters: given explicitly, else those from :meth:`configure_fit`."""
        if global_params is not None:
            self._global = [np.array(p, dtype=np.float64) for p in global_params]
        if self._global is None:
            raise RuntimeError(
                "aggregate_fit needs global_params (configure_fit was not called on this object)"
            )
        return self._global

    def aggregate_fit(
        self,
        server_round: int,
        results: Sequence[ClientResult],
        failures: Sequence[ClientFailure | BaseException],
        global_params: Sequence[np.ndarray] | None = None,
    ) -> Params:
        """Reject invalid updates, check the quorum, then combine the rest into the next global parameters.

        ``global_params`` defaults to the parameters given to :meth:`configure_fit` this round; pass them
        explicitly when configure and aggregate run in different processes. After the call ``accepted_`` and
        ``failures_`` hold the results used and every failure (including rejected updates).
        """
        g = self._round_global(global_params)
        accepted, all_failures = self.screen_results(results, failures, g)
        self.check_quorum(server_round, accepted, all_failures)
        new = self.aggregate(server_round, accepted, g)
        for i, p in enumerate(new):
            if not np.all(np.isfinite(p)):
                raise FloatingPointError(f"round {server_round}: aggregated parameter {i} is not finite")
        return new

    @abstractmethod
    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Combine client parameters (quorum already checked)."""
