"""Where a site's work runs: the contract between the round loop and whatever executes a site's computation.

The round loop (``federated.server``) never touches a site's rows. It asks an executor to run one operation at
a set of sites and gets back plain data: sums, statistics, parameters, counts, scalar metrics. Executors:

- in-process (the default, laptops, tests and the benchmark): calls :func:`run_site_op` on data held in memory;
- Prefect tasks (the training flow): one task per site and operation, with retries;
- Prefect deployments (scale-out): one run of the site's flow on the site's own work pool.

Operations (``SiteCall.op``) and their plain-data arguments / results:

``gram``         args ``feature_names``, ``targets``         -> the site's normal-equation sums (healthy rows)
``residual_ss``  args ``feature_names``, ``baseline`` (JSON) -> healthy residual sum of squares per target
``stats``        args ``model`` (config), ``params``          -> count, sum, sum of squares of the model input
``update``       args ``params``, ``config``                  -> ``ClientResult`` as plain data

"Plain data" is str, int, float, bool, None, lists/dicts of those and numpy arrays, so a remote executor can
move it with a safe codec (JSON + raw arrays), never pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from federated.strategy.base import ClientFailure

SiteOp = Literal["gram", "residual_ss", "stats", "update"]
SITE_OPS: tuple[SiteOp, ...] = ("gram", "residual_ss", "stats", "update")


@dataclass(frozen=True)
class SiteCall:
    """One operation to run at one site; ``server_round`` is 0 for the round-0 statistics."""

    site: str
    op: SiteOp
    server_round: int
    args: Mapping[str, Any]


class SiteExecutor(Protocol):
    """Runs site calls; a call that raises, times out or whose site is unreachable is a failure, not an error."""

    def run(
        self, calls: Sequence[SiteCall], timeout_s: float | None = None
    ) -> tuple[dict[str, Any], list[ClientFailure]]:
        """Run every call (at most one per site); return results by site and the failures with reasons."""
        ...
