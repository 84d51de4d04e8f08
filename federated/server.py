"""The federated round loop: the one path the benchmark, the tests and the training flow all run.

The loop never touches a site's rows; it asks a :class:`federated.executor.SiteExecutor` to run operations at
the sites (in-process threads, Prefect tasks, a site's own deployment) and gets plain data back. A run is

1. :func:`validate_sites`: each site says whether its data can train; the ones that cannot are excluded;
2. :func:`build_initial_model`: the round-0 model from site statistics only (healthy baseline from Gram sums,
   its residual scale, then the scaler of the model input from count / sum / sum of squares);
3. :func:`run_rounds`: per round ``strategy.configure_fit`` -> one ``update`` call per site ->
   ``strategy.aggregate_fit``, with timeouts, the strategy's quorum and ``on_quorum_failure``.

:func:`run_federated` is steps 1 and 3 over data held in memory (tests, diagnostics).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from federated.baseline import BASELINE_TARGETS, set_residual_scale, solve_baseline
from federated.client import ClientData, ClientResult
from federated.executor import InProcessExecutor, SiteCall, SiteExecutor, SiteFn, SiteOp
from federated.model import FaultClassifier, get_parameters, model_config
from federated.stats import FeatureStats, mean_std, merge_stats
from federated.strategy.base import ClientFailure, QuorumError, Strategy

logger = logging.getLogger(__name__)

#: A site given as its local-update function (tests, fault injection): ``(params, config) -> ClientResult``.
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
    """Final global parameters plus a per-round record and the sites excluded before round 1."""

    params: list[np.ndarray]
    rounds: list[RoundRecord]
    excluded: dict[str, str]


def validate_sites(
    executor: SiteExecutor,
    sites: Sequence[str],
    n_features: int,
    n_faults: int | None = None,
    timeout_s: float | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Ask every site whether its data can train; returns the sites kept and the excluded ones with reasons.

    A site that cannot answer is kept: an outage is the rounds' business (the quorum decides), while data that
    cannot train will not improve by asking again.
    """
    args = {"n_features": int(n_features), "n_faults": n_faults}
    answers, failures = executor.run([SiteCall(s, "validate", 0, args) for s in sites], timeout_s)
    for f in failures:
        logger.warning("client %s not validated (kept): %s", f.client_id, f.reason)
    excluded: dict[str, str] = {}
    for site in sites:
        answer = answers.get(site)
        reason = answer.get("reason") if isinstance(answer, Mapping) else None
        if reason is not None:
            logger.warning("client %s excluded: %s", site, reason)
            excluded[site] = str(reason)
    return [s for s in sites if s not in excluded], excluded


def _gather(
    executor: SiteExecutor,
    sites: list[str],
    op: SiteOp,
    args: Mapping[str, Any],
    excluded: dict[str, str],
    timeout_s: float | None,
) -> list[Any]:
    """Run one round-0 operation at ``sites``; a site that fails is removed from ``sites`` and excluded.

    Results come back in site order, so sums are the same whatever order the sites answered in.
    """
    answers, failures = executor.run([SiteCall(s, op, 0, args) for s in sites], timeout_s)
    for f in failures:
        logger.warning("client %s excluded: round 0 %s failed: %s", f.client_id, op, f.reason)
        excluded[f.client_id] = f"round 0 {op} failed: {f.reason}"
    sites[:] = [s for s in sites if s in answers]
    if not sites:
        raise QuorumError(f"round 0: no site answered {op!r}; failures: " + "; ".join(excluded.values()))
    return [answers[s] for s in sites]


def build_initial_model(
    model: FaultClassifier,
    executor: SiteExecutor,
    sites: Sequence[str],
    *,
    baseline_targets: Sequence[str] | None = BASELINE_TARGETS,
    timeout_s: float | None = None,
) -> tuple[FaultClassifier, list[str], dict[str, str]]:
    """Initialise ``model`` (feature names set, not yet initialised) from site statistics only.

    Healthy baseline from the sites' Gram sums, its residual scale from their residual sums of squares
    (skipped when ``baseline_targets`` is empty or None), fresh weights, then the scaler of the model input
    from the sites' count / sum / sum of squares. Returns the model, the sites that answered every
    operation, and the sites excluded because an operation failed (with reasons).
    """
    names = list(model.feature_names or ())
    active, excluded = list(sites), dict[str, str]()
    baseline = None
    if baseline_targets:
        targets = tuple(baseline_targets)
        gram_args = {"feature_names": names, "targets": list(targets)}
        base = solve_baseline(
            _gather(executor, active, "gram", gram_args, excluded, timeout_s), targets=targets
        )
        ss_args = {"feature_names": names, "baseline": base.to_json()}
        baseline = set_residual_scale(
            base, _gather(executor, active, "residual_ss", ss_args, excluded, timeout_s)
        )
    model.initialize(len(names), None, None, baseline)
    stats_args = {"model": model_config(model), "params": get_parameters(model)}
    stats = _gather(executor, active, "stats", stats_args, excluded, timeout_s)
    model.mean_, model.scale_ = mean_std(merge_stats(FeatureStats.from_dict(s) for s in stats))
    return model, active, excluded


def _run_updates(
    executor: SiteExecutor, server_round: int, instructions: Sequence[Any], timeout_s: float | None
) -> tuple[list[ClientResult], list[ClientFailure | BaseException]]:
    """One ``update`` call per instruction; results in instruction order, malformed answers as failures."""
    calls = [
        SiteCall(ins.client_id, "update", server_round, {"params": ins.params, "config": ins.config})
        for ins in instructions
    ]
    answers, crashed = executor.run(calls, timeout_s)
    results: list[ClientResult] = []
    failures: list[ClientFailure | BaseException] = list(crashed)
    for call in calls:
        if call.site not in answers:
            continue
        try:
            res = ClientResult.from_plain(answers[call.site])
        except ValueError as exc:
            failures.append(ClientFailure(call.site, f"malformed result: {exc}"))
            continue
        # The executor knows which site answered; a payload's own id is not trusted.
        results.append(ClientResult(res.params, res.num_examples, res.metrics, call.site))
    return results, failures


def _round_metrics(results: Sequence[ClientResult]) -> dict[str, float]:
    """Example-weighted training loss and accuracy over the updates used (rejected ones excluded)."""
    if not results:
        return {}
    w = np.array([r.num_examples for r in results], dtype=np.float64)
    return {
        key: float(np.average([r.metrics.get(key, np.nan) for r in results], weights=w))
        for key in ("train_loss", "train_acc")
    }


def run_rounds(
    strategy: Strategy,
    executor: SiteExecutor,
    sites: Sequence[str],
    rounds: int,
    initial_params: Sequence[np.ndarray],
    *,
    timeout_s: float | None = None,
    on_quorum_failure: str = "raise",
    evaluate_fn: Callable[[list[np.ndarray], int], Mapping[str, float]] | None = None,
    excluded: Mapping[str, str] | None = None,
) -> FederatedHistory:
    """Run ``strategy`` for ``rounds`` rounds over ``sites`` through ``executor``.

    Sites that raise or exceed ``timeout_s`` count as failures of that round, and so do updates the strategy
    rejects (NaN, wrong shape, bad count); the strategy's quorum decides whether the round still counts.
    ``on_quorum_failure="skip"`` keeps the previous global model for a round below quorum (Flower's
    behaviour) instead of raising :class:`QuorumError`. ``excluded`` is carried into the history.
    """
    if on_quorum_failure not in ("raise", "skip"):
        raise ValueError("on_quorum_failure must be 'raise' or 'skip'")
    params = [np.array(p, dtype=np.float64) for p in initial_params]
    history: list[RoundRecord] = []
    for rnd in range(1, int(rounds) + 1):
        t0 = time.perf_counter()
        results: list[ClientResult]
        failures: list[ClientFailure | BaseException] = []
        try:
            instructions = strategy.configure_fit(rnd, params, list(sites))
            returned, crashed = _run_updates(executor, rnd, instructions, timeout_s)
            # Screened here too (aggregate_fit screens again) so the record counts only the updates used.
            results, failures = strategy.screen_results(returned, crashed, params)
            params = strategy.aggregate_fit(rnd, results, failures, global_params=params)
            skipped = False
        except QuorumError as exc:
            if on_quorum_failure == "raise":
                raise
            logger.warning("round %d skipped: %s", rnd, exc)
            results, skipped = [], True
        metrics = _round_metrics(results)
        if evaluate_fn is not None:
            metrics.update({k: float(v) for k, v in evaluate_fn(params, rnd).items()})
        history.append(
            RoundRecord(rnd, len(results), list(failures), time.perf_counter() - t0, metrics, skipped)
        )
        logger.info("round %d: %d results, %d failures, %s", rnd, len(results), len(failures), metrics)
    return FederatedHistory(params, history, dict(excluded or {}))


def _update_only(fn: ClientFn) -> SiteFn:
    """A site given as its update function: it vouches for its own data (its errors surface in a round)."""

    def site(call: SiteCall) -> Any:
        if call.op == "validate":
            return {"reason": None}
        if call.op != "update":
            raise ValueError(f"site given as an update function cannot answer {call.op!r}")
        return fn(call.args["params"], call.args["config"])

    return site


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
    """:func:`validate_sites` then :func:`run_rounds` over in-memory ``clients`` (data or update functions).

    Invalid sites are excluded with a logged reason; see :func:`run_rounds` for failures and the quorum.
    """
    if on_quorum_failure not in ("raise", "skip"):
        raise ValueError("on_quorum_failure must be 'raise' or 'skip'")
    executor = InProcessExecutor(
        {s: c if isinstance(c, ClientData) else _update_only(c) for s, c in clients.items()}, max_workers
    )
    model_cfg = strategy.fit_config["model"]
    active, excluded = validate_sites(
        executor, list(clients), int(model_cfg["n_features"]), len(model_cfg["fault_names"]), timeout_s
    )
    return run_rounds(
        strategy,
        executor,
        active,
        rounds,
        initial_params,
        timeout_s=timeout_s,
        on_quorum_failure=on_quorum_failure,
        evaluate_fn=evaluate_fn,
        excluded=excluded,
    )
