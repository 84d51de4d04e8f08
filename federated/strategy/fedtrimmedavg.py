"""FedTrimmedAvg: coordinate-wise mean after trimming the extremes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federated.aggregate import trimmed_mean
from federated.client import ClientResult
from federated.strategy.base import Params, Strategy


class FedTrimmedAvg(Strategy):
    """Yin et al. 2018; ``beta`` is the share trimmed at each end."""

    name = "fedtrimmedavg"

    def __init__(self, fit_config: Mapping[str, Any], *, beta: float = 0.2, **kwargs: Any) -> None:
        super().__init__(fit_config, **kwargs)
        if not 0 <= beta < 0.5:
            raise ValueError("beta must be in [0, 0.5)")
        self.beta = float(beta)

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Trimmed coordinate mean, unweighted."""
        return trimmed_mean([r.params for r in results], self.beta)
