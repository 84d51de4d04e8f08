"""Expert ensemble: each client's one-fault detector becomes one calibrated head of the global model.

A client trains only the head(s) of the fault(s) it holds positives for (healthy rows are its negatives) and
Platt-calibrates them on a held-out slice; the server copies head ``k`` from the client(s) expert in fault
``k`` (example-weighted when several sites hold the same fault). One round is enough; more rounds refine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from federated.client import ClientResult, FitOptions
from federated.strategy.base import Params, Strategy

logger = logging.getLogger(__name__)


class ExpertEnsemble(Strategy):
    """Assemble per-fault expert heads; heads nobody is expert in keep the global value."""

    name = "ensemble"

    def client_options(self, server_round: int) -> FitOptions:
        """Ask clients to train and calibrate only their own fault heads."""
        return replace(super().client_options(server_round), train_heads="own", calibrate=True)

    def result_problem(self, result: ClientResult, global_params: Sequence[np.ndarray]) -> str | None:
        """Also reject a client whose claimed positives per fault do not fit its reported examples.

        A claim decides which heads a client's weights replace, so a client that claims every fault would
        otherwise overwrite every head. Positives must be whole numbers in ``[0, num_examples)``: a fault
        claimed for every example leaves its head no negatives to have been trained against.
        """
        problem = super().result_problem(result, global_params)
        if problem is not None:
            return problem
        for fault in self.fit_config["model"]["fault_names"]:
            claim = result.metrics.get(f"positives_{fault}", 0.0)
            try:
                value = float(claim)
            except (TypeError, ValueError):
                return f"positives_{fault}={claim!r} is not a number"
            if not np.isfinite(value) or value != round(value) or not 0 <= value < result.num_examples:
                return (
                    f"positives_{fault}={claim!r} is not a whole number in [0, num_examples="
                    f"{result.num_examples})"
                )
        return None

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Head-wise example-weighted average over the experts of each fault."""
        fault_names = list(self.fit_config["model"]["fault_names"])
        hyper = self.fit_config["model"].get("hyperparameters", {})
        groups = hyper.get("head_groups") or range(len(fault_names))
        out = [g.copy() for g in global_params]
        for k, fault in enumerate(fault_names):
            experts = [r for r in results if r.metrics.get(f"positives_{fault}", 0.0) > 0]
            if not experts:
                logger.warning(
                    "round %d: no expert for fault %s; head kept from the global model", server_round, fault
                )
                continue
            w = np.array([r.num_examples for r in experts], dtype=np.float64)
            w /= w.sum()
            heads = [j for j, g in enumerate(groups) if g == k]  # a fault may have several heads
            for i in range(len(out)):
                # Every parameter array has the head axis first (see federated.model).
                out[i][heads] = sum(wi * r.params[i][heads] for wi, r in zip(w, experts, strict=True))
        return out
