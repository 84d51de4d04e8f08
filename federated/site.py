"""Site side of every executor: one operation on one site's rows, answered with plain data only.

Every executor (in-process threads, Prefect tasks, a site's own deployment) ends in :func:`run_site_op`, so
what a site computes is the same wherever it runs. Rows never leave: the answers are sums, statistics,
parameters, counts and scalar metrics (see :mod:`federated.executor` for each operation's arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from federated.baseline import BaselineSpec, HealthyBaseline, local_gram, local_residual_ss
from federated.client import ClientData, client_update, validate_client
from federated.model import model_from_config
from federated.stats import local_stats

if TYPE_CHECKING:
    from federated.executor import SiteCall


def _validate(data: ClientData, args: Mapping[str, Any]) -> dict[str, Any]:
    n_faults = args.get("n_faults")
    return {
        "reason": validate_client(data, int(args["n_features"]), None if n_faults is None else int(n_faults))
    }


def _gram(data: ClientData, args: Mapping[str, Any]) -> dict[str, Any]:
    return local_gram(data.X, data.Y, list(args["feature_names"]), BaselineSpec.from_json(args["spec"]))


def _residual_ss(data: ClientData, args: Mapping[str, Any]) -> dict[str, Any]:
    baseline = HealthyBaseline.from_json(args["baseline"])
    spec = BaselineSpec.from_json(args["spec"])
    return local_residual_ss(data.X, data.Y, list(args["feature_names"]), baseline, spec)


def _stats(data: ClientData, args: Mapping[str, Any]) -> dict[str, Any]:
    # The scaler covers the model's input (features plus baseline residuals), so the site rebuilds the model.
    model = model_from_config(args["model"], [np.asarray(p) for p in args["params"]])
    return local_stats(model.augment(data.X)).to_dict()


def _update(data: ClientData, args: Mapping[str, Any]) -> dict[str, Any]:
    return client_update([np.asarray(p) for p in args["params"]], data, args["config"]).to_plain()


_OPS: dict[str, Callable[[ClientData, Mapping[str, Any]], dict[str, Any]]] = {
    "validate": _validate,
    "gram": _gram,
    "residual_ss": _residual_ss,
    "stats": _stats,
    "update": _update,
}


def run_site_op(call: SiteCall, data: ClientData) -> dict[str, Any]:
    """Run ``call`` on the site's ``data``; returns plain data (see :mod:`federated.executor`).

    Raises ValueError for an unknown operation and :class:`federated.client.InvalidClientError` when an
    update is asked of data that cannot train.
    """
    try:
        op = _OPS[call.op]
    except KeyError:
        raise ValueError(f"unknown site operation {call.op!r}; known: {sorted(_OPS)}") from None
    return op(data, call.args)
