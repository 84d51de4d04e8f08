"""Pure federated round loop. The Prefect flow does the same three steps per round with one task per client:

instructions = strategy.configure_fit(rnd, params, client_ids)
results/failures = [client_update(ins.params, data[ins.client_id], ins.config) for ins in instructions]
params = strategy.aggregate_fit(rnd, results, failures)
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from federated.client import ClientData, ClientResult, InvalidClientError, client_update, validate_client
from federated.strategy.base import ClientFailure, QuorumError, Strategy

logger = logging.getLogger(__name__)

ClientFn = Callable[[list[np.ndarray], dict[str, Any]], ClientResult]


@dataclass
class RoundRecord:
    """What happened in one round (scalars only)."""

    server_round: int
    n_results: int
    failures: list[ClientFailure | BaseException]
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: bool = False


@dataclass
class FederatedHistory:
    """Final global parameters plus a per-round record."""

    params: list[np.ndarray]
    rounds: list[RoundRecord]
    excluded: dict[str, str]


def _as_fn(entry: ClientData | ClientFn) -> ClientFn:
    if isinstance(entry, ClientData):
        return lambda params, config: client_update(params, entry, config)
    return entry


def run_clients(
    instructions: Sequence[Any],
    fns: Mapping[str, ClientFn],
    timeout_s: float | None = None,
    max_workers: int | None = None,
) -> tuple[list[ClientResult], list[ClientFailure]]:
    """Run every instruction's client; exceptions and timeouts become :class:`ClientFailure` entries."""
    results: list[ClientResult] = []
    failures: list[ClientFailure] = []

    def record(cid: str, call: Callable[[], ClientResult]) -> None:
        try:
            res = call()
        except InvalidClientError as exc:
            failures.append(ClientFailure(cid, f"invalid: {exc.reason}"))
            return
        except Exception as exc:  # a site's crash must not take the round down
            failures.append(ClientFailure(cid, f"{type(exc).__name__}: {exc}"))
            return
        if not isinstance(res, ClientResult):
            failures.append(ClientFailure(cid, f"returned {type(res).__name__}, not ClientResult"))
        else:
            results.append(res)

    if timeout_s is None:
        for ins in instructions:
            record(ins.client_id, partial(fns[ins.client_id], ins.params, ins.config))
        return results, failures
    pool = cf.ThreadPoolExecutor(max_workers=max_workers or max(1, len(instructions)))
    try:
        futures = {
            pool.submit(fns[ins.client_id], ins.params, ins.config): ins.client_id for ins in instructions
        }
        _done, not_done = cf.wait(futures, timeout=timeout_s)
        for fut in futures:
            cid = futures[fut]
            if fut in not_done:
                failures.append(ClientFailure(cid, f"timed out after {timeout_s:g} s"))
            else:
                record(cid, fut.result)
    finally:
        # Threads cannot be killed; a stuck client finishes in the background and its result is ignored.
        pool.shutdown(wait=False, cancel_futures=True)
    return results, failures


def run_federated(
    strategy: Strategy,
    clients: Mapping[str, ClientData | ClientFn],
    rounds: int,
    initial_params: Sequence[np.ndarray],
    *,
    timeout_s: float | None = None,
    max_workers: int | None = None,
    on_quorum_failure: str = "raise",
    evaluate_fn: Callable[[list[np.ndarray], int], Mapping[str, float]] | None = None,
) -> FederatedHistory:
    """Run ``strategy`` for ``rounds`` rounds over ``clients`` (data or ``(params, config) -> result`` fns).

    Clients given as :class:`ClientData` are validated once up front; invalid ones are excluded with a logged
    reason. Clients that raise or exceed ``timeout_s`` count as failures of that round; the strategy's quorum
    decides whether the round still counts. ``on_quorum_failure="skip"`` keeps the previous global model for a
    round below quorum (Flower's behaviour) instead of raising :class:`QuorumError`.
    """
    if on_quorum_failure not in ("raise", "skip"):
        raise ValueError("on_quorum_failure must be 'raise' or 'skip'")
    model_cfg = strategy.fit_config["model"]
    excluded: dict[str, str] = {}
    fns: dict[str, ClientFn] = {}
    for cid, entry in clients.items():
        if isinstance(entry, ClientData):
            reason = validate_client(entry, int(model_cfg["n_features"]), len(model_cfg["fault_names"]))
            if reason is not None:
                logger.warning("client %s excluded: %s", cid, reason)
                excluded[cid] = reason
                continue
        fns[cid] = _as_fn(entry)
    params = [np.array(p, dtype=np.float64) for p in initial_params]
    history: list[RoundRecord] = []
    for rnd in range(1, int(rounds) + 1):
        t0 = time.perf_counter()
        results: list[ClientResult]
        failures: list[ClientFailure | BaseException] = []
        try:
            instructions = strategy.configure_fit(rnd, params, list(fns))
            returned, crashed = run_clients(instructions, fns, timeout_s, max_workers)
            # Screened here too (aggregate_fit screens again) so the record counts only the updates used.
            results, failures = strategy.screen_results(returned, crashed, params)
            params = strategy.aggregate_fit(rnd, results, failures)
            skipped = False
        except QuorumError as exc:
            if on_quorum_failure == "raise":
                raise
            logger.warning("round %d skipped: %s", rnd, exc)
            results, skipped = [], True
        metrics: dict[str, float] = {}
        if results:
            w = np.array([r.num_examples for r in results], dtype=np.float64)
            for key in ("train_loss", "train_acc"):
                vals = [r.metrics.get(key, np.nan) for r in results]
                metrics[key] = float(np.average(vals, weights=w))
        if evaluate_fn is not None:
            metrics.update({k: float(v) for k, v in evaluate_fn(params, rnd).items()})
        history.append(
            RoundRecord(rnd, len(results), list(failures), time.perf_counter() - t0, metrics, skipped)
        )
        logger.info("round %d: %d results, %d failures, %s", rnd, len(results), len(failures), metrics)
    return FederatedHistory(params, history, excluded)
