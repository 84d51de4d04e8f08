"""FedAdam: server-side Adam on the pseudo-gradient (average client model minus global model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from federated.aggregate import weighted_average
from federated.client import ClientResult
from federated.strategy.base import Params, Strategy


class FedAdam(Strategy):
    """Reddi et al. 2021 (adaptive federated optimisation), with bias-corrected moments."""

    name = "fedadam"

    def __init__(
        self,
        fit_config: Mapping[str, Any],
        *,
        server_learning_rate: float = 0.03,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(fit_config, **kwargs)
        self.server_learning_rate = float(server_learning_rate)
        self.beta_1, self.beta_2, self.tau = float(beta_1), float(beta_2), float(tau)
        self.m_: Params | None = None
        self.v_: Params | None = None
        self.t_ = 0

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """x <- x + eta * m_hat / (sqrt(v_hat) + tau), with pseudo-gradient = avg(client) - x."""
        avg = weighted_average([r.params for r in results], [r.num_examples for r in results])
        delta = [a - g for a, g in zip(avg, global_params, strict=True)]
        if self.m_ is None or self.v_ is None:
            self.m_ = [np.zeros_like(d) for d in delta]
            self.v_ = [np.zeros_like(d) for d in delta]
        self.t_ += 1
        out = []
        for i, d in enumerate(delta):
            self.m_[i] = self.beta_1 * self.m_[i] + (1 - self.beta_1) * d
            self.v_[i] = self.beta_2 * self.v_[i] + (1 - self.beta_2) * d * d
            m_hat = self.m_[i] / (1 - self.beta_1**self.t_)
            v_hat = self.v_[i] / (1 - self.beta_2**self.t_)
            out.append(global_params[i] + self.server_learning_rate * m_hat / (np.sqrt(v_hat) + self.tau))
        return out
