"""FedAvg: average client parameters weighted by their number of examples."""

from __future__ import annotations

from federated.aggregate import weighted_average
from federated.client import ClientResult
from federated.strategy.base import Params, Strategy


class FedAvg(Strategy):
    """McMahan et al. 2017."""

    name = "fedavg"

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Example-weighted mean."""
        return weighted_average([r.params for r in results], [r.num_examples for r in results])
