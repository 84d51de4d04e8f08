"""FedProx: FedAvg aggregation; clients add ``mu/2 ||w - w_global||^2`` to their loss."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from federated.client import FitOptions
from federated.strategy.fedavg import FedAvg


class FedProx(FedAvg):
    """Li et al. 2020. The proximal term limits client drift under label skew."""

    name = "fedprox"

    def __init__(self, fit_config: Mapping[str, Any], *, proximal_mu: float = 0.1, **kwargs: Any) -> None:
        super().__init__(fit_config, **kwargs)
        if proximal_mu < 0:
            raise ValueError("proximal_mu must be >= 0")
        self.proximal_mu = float(proximal_mu)

    def client_options(self, server_round: int) -> FitOptions:
        """Sets ``proximal_mu`` for :func:`federated.client.client_update`."""
        return replace(super().client_options(server_round), proximal_mu=self.proximal_mu)
