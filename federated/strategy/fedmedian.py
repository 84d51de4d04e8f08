"""FedMedian: coordinate-wise median of client parameters (robust to a minority of bad clients)."""

from __future__ import annotations

from federated.aggregate import coordinate_median
from federated.client import ClientResult
from federated.strategy.base import Params, Strategy


class FedMedian(Strategy):
    """Yin et al. 2018."""

    name = "fedmedian"

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Coordinate median, unweighted."""
        return coordinate_median([r.params for r in results])
