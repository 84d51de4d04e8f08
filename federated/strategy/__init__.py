"""Federated strategies, one module per aggregation rule, a name -> class registry, and the differential
privacy wrapper (:class:`DPFixedClipping`, not a rule of its own: it wraps a mean-based one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federated.strategy.base import ClientFailure, FitInstruction, QuorumError, Strategy
from federated.strategy.dp import DPFixedClipping
from federated.strategy.ensemble import ExpertEnsemble
from federated.strategy.fedadam import FedAdam
from federated.strategy.fedavg import FedAvg
from federated.strategy.fedmedian import FedMedian
from federated.strategy.fedprox import FedProx
from federated.strategy.fedtrimmedavg import FedTrimmedAvg
from federated.strategy.krum import Krum

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (FedAvg, FedProx, FedAdam, FedMedian, FedTrimmedAvg, Krum, ExpertEnsemble)
}


def make_strategy(name: str, fit_config: Mapping[str, Any], **kwargs: Any) -> Strategy:
    """Instantiate a strategy by its registry name (``fedavg``, ``fedprox``, ...)."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None
    return cls(fit_config, **kwargs)


__all__ = [
    "STRATEGIES",
    "ClientFailure",
    "DPFixedClipping",
    "ExpertEnsemble",
    "FedAdam",
    "FedAvg",
    "FedMedian",
    "FedProx",
    "FedTrimmedAvg",
    "FitInstruction",
    "Krum",
    "QuorumError",
    "Strategy",
    "make_strategy",
]
