"""Krum / Multi-Krum: keep the client(s) closest to their neighbours, drop outliers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federated.aggregate import krum_select, weighted_average
from federated.client import ClientResult
from federated.strategy.base import Params, Strategy


class Krum(Strategy):
    """Blanchard et al. 2017. ``num_selected=1`` is Krum; more averages the best ones (Multi-Krum)."""

    name = "krum"

    def __init__(
        self, fit_config: Mapping[str, Any], *, num_byzantine: int = 1, num_selected: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(fit_config, **kwargs)
        if num_byzantine < 0 or num_selected < 1:
            raise ValueError(
                f"Krum needs num_byzantine >= 0 and num_selected >= 1, got {num_byzantine}, {num_selected}"
            )
        self.num_byzantine = int(num_byzantine)
        self.num_selected = int(num_selected)
        self.selected_: list[str] = []

    def aggregate(self, server_round: int, results: list[ClientResult], global_params: Params) -> Params:
        """Plain mean of the ``num_selected`` lowest-score clients.

        Only distances between updates decide, never the example counts clients report: a Byzantine client
        can claim any count, so weighting by it would hand it the aggregate Krum just refused it.
        """
        # Krum needs n > f + 2; with fewer survivors fall back to the largest f that is still defined.
        f = min(self.num_byzantine, len(results) - 3)
        if f < 0:
            raise ValueError(f"Krum needs at least 3 results, got {len(results)}")
        idx = krum_select([r.params for r in results], f, min(self.num_selected, len(results)))
        self.selected_ = [results[i].client_id for i in idx]
        return weighted_average([results[i].params for i in idx], [1.0] * len(idx))
