"""Where a site's work runs: the contract between the round loop and whatever executes a site's computation.

The round loop (``federated.server``) never touches a site's rows. It asks an executor to run one operation at
a set of sites and gets back plain data: sums, statistics, parameters, counts, scalar metrics. Executors:

- in-process (the default, laptops, tests and the benchmark): :class:`InProcessExecutor` calls
  :func:`federated.site.run_site_op` on data held in memory;
- Prefect tasks (the training flow): one task per site and operation, with retries;
- Prefect deployments (scale-out): one run of the site's flow on the site's own work pool.

Operations (``SiteCall.op``) and their plain-data arguments / results:

``validate``     args ``n_features``, ``n_faults``           -> ``{"reason": str | None}`` (None: can train)
``gram``         args ``feature_names``, ``spec`` (BaselineSpec JSON) -> the site's normal-equation sums
``residual_ss``  args ``feature_names``, ``baseline`` (JSON), ``spec`` -> healthy residual sum of squares
                 per target, and the share-removal sums
``stats``        args ``model`` (config), ``params``          -> count, sum, sum of squares of the model input
``update``       args ``params``, ``config``                  -> ``ClientResult.to_plain()``

"Plain data" is str, int, float, bool, None, lists/dicts of those and numpy arrays, so a remote executor can
move it with a safe codec (JSON + raw arrays), never pickle.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from federated.client import ClientData, InvalidClientError
from federated.site import run_site_op
from federated.strategy.base import ClientFailure

SiteOp = Literal["validate", "gram", "residual_ss", "stats", "update"]
SITE_OPS: tuple[SiteOp, ...] = ("validate", "gram", "residual_ss", "stats", "update")


@dataclass(frozen=True)
class SiteCall:
    """One operation to run at one site; ``server_round`` is 0 for the round-0 statistics."""

    site: str
    op: SiteOp
    server_round: int
    args: Mapping[str, Any]


class SiteExecutor(Protocol):
    """Runs site calls; a call that raises, times out or whose site is unreachable is a failure, not an
    error."""

    def run(
        self, calls: Sequence[SiteCall], timeout_s: float | None = None
    ) -> tuple[dict[str, Any], list[ClientFailure]]:
        """Run every call (at most one per site); return results by site and the failures with reasons."""
        ...


def failure_reason(exc: BaseException) -> str:
    """One-line reason for a site call that raised (the same wording for every executor)."""
    if isinstance(exc, InvalidClientError):
        return f"invalid: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


#: A site given as code instead of data (tests, fault injection): called with the SiteCall.
SiteFn = Callable[[SiteCall], Any]


class InProcessExecutor:
    """Runs site calls in this process on data held in memory (laptops, tests, the benchmark).

    Parameters
    ----------
    data : mapping of site id to ClientData or SiteFn
        A site's rows (answered by :func:`federated.site.run_site_op`), or a function of the call.
    max_workers : int or None
        Threads when a timeout is given (default: one per call). Without a timeout calls run in turn, in
        order, so results are bit-reproducible.
    """

    def __init__(self, data: Mapping[str, ClientData | SiteFn], max_workers: int | None = None) -> None:
        self.data = dict(data)
        self.max_workers = max_workers

    def _call(self, call: SiteCall) -> Any:
        entry = self.data[call.site]
        return run_site_op(call, entry) if isinstance(entry, ClientData) else entry(call)

    def run(
        self, calls: Sequence[SiteCall], timeout_s: float | None = None
    ) -> tuple[dict[str, Any], list[ClientFailure]]:
        """Run ``calls``; exceptions and timeouts become :class:`ClientFailure` entries, in call order."""
        results: dict[str, Any] = {}
        failures: list[ClientFailure] = []
        if timeout_s is None:
            for call in calls:
                try:
                    results[call.site] = self._call(call)
                except Exception as exc:  # a site's crash must not take the round down
                    failures.append(ClientFailure(call.site, failure_reason(exc)))
            return results, failures
        pool = cf.ThreadPoolExecutor(max_workers=self.max_workers or max(1, len(calls)))
        try:
            futures = {pool.submit(self._call, call): call.site for call in calls}
            _done, not_done = cf.wait(futures, timeout=timeout_s)
            for fut, site in futures.items():
                if fut in not_done:
                    failures.append(ClientFailure(site, f"timed out after {timeout_s:g} s"))
                elif (error := fut.exception()) is not None:
                    failures.append(ClientFailure(site, failure_reason(error)))
                else:
                    results[site] = fut.result()
        finally:
            # Threads cannot be killed; a stuck site finishes in the background and its result is ignored.
            pool.shutdown(wait=False, cancel_futures=True)
        return results, failures
