"""Site executors and the round-0 model: site answers equal the pooled computation; failures are named."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from federated.baseline import (
    local_gram,
    local_residual_ss,
    set_residual_scale,
    solve_baseline,
)
from federated.client import ClientData, ClientResult, InvalidClientError
from federated.executor import InProcessExecutor, SiteCall, failure_reason
from federated.model import FaultClassifier, get_parameters, model_config
from federated.server import build_initial_model, run_rounds, validate_sites
from federated.site import run_site_op
from federated.stats import FeatureStats, local_stats, merge_stats
from federated.strategy import FedAvg, QuorumError
from fedtwin.training.recipe import BASELINE_INPUTS, BASELINE_TARGETS, PUMP_BASELINE
from plant_models.spec import FAULTS

NAMES = [*BASELINE_INPUTS, *BASELINE_TARGETS]


def _site(rng: np.random.Generator, n: int, fault: int, cid: str) -> ClientData:
    """Healthy rows plus rows of one fault; targets a smooth function of the operating point plus noise."""
    p, w = rng.uniform(5, 9, 2 * n), rng.uniform(1600, 2200, 2 * n)
    T = np.column_stack([0.5 + 0.8 * p + 0.001 * w + k * 0.01 * rng.normal(size=2 * n) for k in range(1, 18)])
    Y = np.zeros((2 * n, 3))
    Y[n:, fault] = 1.0
    T[n:, 0] += 0.3
    return ClientData(np.column_stack([p, w, T[:, : len(BASELINE_TARGETS)]]), Y, cid)


@pytest.fixture
def sites() -> dict[str, ClientData]:
    rng = np.random.default_rng(7)
    return {f"s{k}": _site(rng, 40 + 10 * k, k, f"s{k}") for k in range(3)}


def test_site_answers_sum_to_the_pooled_computation(sites: dict[str, ClientData]) -> None:
    pooled = ClientData(
        np.vstack([c.X for c in sites.values()]), np.vstack([c.Y for c in sites.values()]), "all"
    )
    args = {"feature_names": NAMES, "spec": PUMP_BASELINE.to_json()}
    grams = [run_site_op(SiteCall(s, "gram", 0, args), c) for s, c in sites.items()]
    whole = local_gram(pooled.X, pooled.Y, NAMES, PUMP_BASELINE)
    for key in ("gram", "cross", "count"):
        np.testing.assert_allclose(sum(g[key] for g in grams), whole[key], rtol=1e-12)
    base = solve_baseline(grams, PUMP_BASELINE)
    ss_args = {
        "feature_names": NAMES,
        "baseline": json.loads(json.dumps(base.to_json())),
        "spec": PUMP_BASELINE.to_json(),
    }
    ss = [run_site_op(SiteCall(s, "residual_ss", 0, ss_args), c) for s, c in sites.items()]
    whole_ss = local_residual_ss(pooled.X, pooled.Y, NAMES, base, PUMP_BASELINE)
    np.testing.assert_allclose(sum(s["ss"] for s in ss), whole_ss["ss"], rtol=1e-10)
    model = FaultClassifier(fault_names=FAULTS, hidden=2, feature_names=NAMES).initialize(
        len(NAMES), None, None, set_residual_scale(base, ss, PUMP_BASELINE)
    )
    st_args = {"model": model_config(model), "params": get_parameters(model)}
    stats = [
        FeatureStats.from_dict(run_site_op(SiteCall(s, "stats", 0, st_args), c)) for s, c in sites.items()
    ]
    merged = merge_stats(stats)
    direct = local_stats(model.augment(pooled.X))
    assert merged.count == direct.count == len(pooled.X)
    np.testing.assert_allclose(merged.sum, direct.sum, rtol=1e-10)
    np.testing.assert_allclose(merged.sumsq, direct.sumsq, rtol=1e-10)


def test_round_zero_model_equals_the_pooled_statistics(sites: dict[str, ClientData]) -> None:
    model, active, excluded = build_initial_model(
        FaultClassifier(fault_names=FAULTS, hidden=2, feature_names=NAMES),
        InProcessExecutor(sites),
        list(sites),
        baseline_spec=PUMP_BASELINE,
    )
    assert active == ["s0", "s1", "s2"] and excluded == {}
    X = np.vstack([c.X for c in sites.values()])
    Y = np.vstack([c.Y for c in sites.values()])
    base = solve_baseline([local_gram(X, Y, NAMES, PUMP_BASELINE)], PUMP_BASELINE)
    base = set_residual_scale(base, [local_residual_ss(X, Y, NAMES, base, PUMP_BASELINE)], PUMP_BASELINE)
    # The normal equations are ill-conditioned: compare what the baseline predicts, not its coefficients.
    np.testing.assert_allclose(
        model.baseline_.raw_residuals(X, NAMES), base.raw_residuals(X, NAMES), atol=1e-6
    )
    np.testing.assert_allclose(model.baseline_.scale, base.scale, rtol=1e-4)
    A = model.augment(X)
    np.testing.assert_allclose(model.mean_, A.mean(axis=0), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.scale_, A.std(axis=0), rtol=1e-6)


def test_round_zero_without_baseline_scales_the_raw_features(sites: dict[str, ClientData]) -> None:
    model, _, _ = build_initial_model(
        FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES),
        InProcessExecutor(sites),
        list(sites),
    )
    X = np.vstack([c.X for c in sites.values()])
    assert model.baseline_ is None
    np.testing.assert_allclose(model.mean_, X.mean(axis=0), rtol=1e-10)


def _down(call: SiteCall) -> object:
    raise ConnectionError("site unreachable")


def test_round_zero_drops_a_site_that_fails_and_names_it(sites: dict[str, ClientData]) -> None:
    data: dict[str, object] = {**sites, "s2": _down}
    model, active, excluded = build_initial_model(
        FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES),
        InProcessExecutor(data),
        list(data),  # type: ignore[arg-type]
        baseline_spec=PUMP_BASELINE,
    )
    assert active == ["s0", "s1"]
    assert excluded == {"s2": "round 0 gram failed: ConnectionError: site unreachable"}
    X = np.vstack([sites["s0"].X, sites["s1"].X])
    np.testing.assert_allclose(model.mean_[: X.shape[1]], X.mean(axis=0), rtol=1e-10)
    with pytest.raises(
        QuorumError, match=r"^round 0: no site answered 'gram'; failures: round 0 gram failed"
    ):
        build_initial_model(
            FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES),
            InProcessExecutor({"x": _down}),
            ["x"],
            baseline_spec=PUMP_BASELINE,
        )


def _call(site: str, op: str = "validate") -> SiteCall:
    return SiteCall(site, op, 1, {"n_features": len(NAMES), "n_faults": 3})  # type: ignore[arg-type]


def test_in_process_executor_names_a_crash_an_invalid_site_and_a_timeout(
    sites: dict[str, ClientData],
) -> None:
    """Three sites under a 0.5 s timeout: one answers, one raises, one sleeps 1.5 s; plus a rejected site."""

    def slow(call: SiteCall) -> object:
        time.sleep(1.5)
        return {"reason": None}

    def invalid(call: SiteCall) -> object:
        raise InvalidClientError("bad", "labels are not 0/1")

    ex = InProcessExecutor({"ok": sites["s0"], "crash": _down, "slow": slow, "bad": invalid})
    t0 = time.perf_counter()
    results, failures = ex.run([_call("ok"), _call("crash"), _call("slow"), _call("bad")], timeout_s=0.5)
    assert time.perf_counter() - t0 < 1.4  # waited for the timeout, not for the slow site
    assert results == {"ok": {"reason": None}}
    assert [(f.client_id, f.reason) for f in failures] == [
        ("crash", "ConnectionError: site unreachable"),
        ("slow", "timed out after 0.5 s"),
        ("bad", "invalid: labels are not 0/1"),
    ]
    # Without a timeout the calls run in turn, in order, with the same wording.
    results, failures = InProcessExecutor({"ok": sites["s0"], "crash": _down}).run(
        [_call("crash"), _call("ok")]
    )
    assert list(results) == ["ok"] and [f.reason for f in failures] == ["ConnectionError: site unreachable"]


def test_validate_sites_excludes_bad_data_and_keeps_unreachable_sites(sites: dict[str, ClientData]) -> None:
    data: dict[str, object] = {
        **sites,
        "empty": ClientData(np.zeros((0, len(NAMES))), np.zeros((0, 3)), "empty"),
        "down": _down,
    }
    active, excluded = validate_sites(InProcessExecutor(data), list(data), len(NAMES), 3)  # type: ignore[arg-type]
    assert active == ["s0", "s1", "s2", "down"]
    assert excluded == {"empty": f"no data (X shape (0, {len(NAMES)}))"}


def test_unknown_site_operation_is_a_clear_error(sites: dict[str, ClientData]) -> None:
    with pytest.raises(ValueError, match=r"^unknown site operation 'train'; known: \["):
        run_site_op(SiteCall("s0", "train", 1, {}), sites["s0"])  # type: ignore[arg-type]
    assert failure_reason(InvalidClientError("s", "single class")) == "invalid: single class"


def test_client_result_round_trips_as_plain_data() -> None:
    res = ClientResult([np.arange(3.0), np.ones((2, 2))], 7, {"train_loss": 0.5}, "s")
    plain = res.to_plain()
    assert set(plain) == {"params", "num_examples", "metrics", "client_id"}
    back = ClientResult.from_plain(plain)
    assert back.num_examples == 7 and back.metrics == {"train_loss": 0.5} and back.client_id == "s"
    for a, b in zip(back.params, res.params, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"^result lacks num_examples, params$"):
        ClientResult.from_plain({"metrics": {}})
    with pytest.raises(ValueError, match=r"^result is list, not a mapping$"):
        ClientResult.from_plain([1, 2])
    with pytest.raises(ValueError, match=r"^result params must be a list of arrays and metrics a mapping$"):
        ClientResult.from_plain({"params": np.zeros(2), "num_examples": 1})


def test_rounds_through_an_executor_skip_or_raise_below_quorum(sites: dict[str, ClientData]) -> None:
    """One healthy site and one that is down: below min_fit_clients=2 every round."""
    model, _, _ = build_initial_model(
        FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES),
        InProcessExecutor(sites),
        list(sites),
    )
    ex = InProcessExecutor({"s0": sites["s0"], "down": _down})
    init = get_parameters(model)
    hist = run_rounds(
        FedAvg({"model": model_config(model)}), ex, ["s0", "down"], 2, init, on_quorum_failure="skip"
    )
    assert [r.skipped for r in hist.rounds] == [True, True]
    assert [[f.reason for f in r.failures] for r in hist.rounds] == [
        ["ConnectionError: site unreachable"]
    ] * 2
    for a, b in zip(hist.params, init, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(
        QuorumError, match=r"quorum not reached: 1/2 clients completed.*down: ConnectionError"
    ):
        run_rounds(FedAvg({"model": model_config(model)}), ex, ["s0", "down"], 1, init)
