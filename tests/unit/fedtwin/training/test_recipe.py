"""The production training recipe: strategy names, per-rule options, one run path for data and executors."""

from __future__ import annotations

import numpy as np
import pytest

from federated.client import ClientData, FitOptions
from federated.executor import InProcessExecutor, SiteCall
from federated.model import get_parameters
from federated.server import build_initial_model
from federated.strategy import STRATEGIES, ExpertEnsemble, FedAdam, FedProx, Krum
from fedtwin.data.features import FEATURE_NAMES
from fedtwin.training.recipe import (
    DEFAULT_FIT,
    PUMP_BASELINE,
    initial_model,
    make_configured_strategy,
    new_model,
    strategy_names,
    train_strategy,
)

SMALL = {"hidden": 2}


def _site(rng: np.random.Generator, fault: int, n: int = 40) -> ClientData:
    """Healthy rows plus rows of one fault (a shift in every feature), at varied operating points."""
    X = rng.normal(1.0, 0.1, size=(2 * n, len(FEATURE_NAMES)))
    X[:, FEATURE_NAMES.index("pressure_mean_bar")] = rng.uniform(5, 9, 2 * n)
    X[:, FEATURE_NAMES.index("speed_mean_rpm")] = rng.uniform(1600, 2200, 2 * n)
    Y = np.zeros((2 * n, 3))
    Y[n:, fault] = 1.0
    X[n:] += 0.5 * (fault + 1)
    return ClientData(X, Y, f"site{fault}")


@pytest.fixture
def clients() -> dict[str, ClientData]:
    rng = np.random.default_rng(3)
    return {f"site{k}": _site(rng, k) for k in range(3)}


def test_strategy_names_keep_order_drop_repeats_and_refuse_unknown() -> None:
    assert strategy_names("fedadam", ["fedavg", "fedadam", "krum"]) == ["fedadam", "fedavg", "krum"]
    assert strategy_names("ensemble") == ["ensemble"]
    with pytest.raises(
        ValueError, match=r"^unknown federated strategy 'fedavgg'; known: \['ensemble', 'fedadam'"
    ):
        strategy_names("fedadam", ["fedavgg"])
    # Centralised pools rows: the training flow cannot run it.
    with pytest.raises(ValueError, match="unknown federated strategy 'centralised'"):
        strategy_names("centralised")


def test_configured_strategies_carry_the_recipes_options(clients: dict[str, ClientData]) -> None:
    model = initial_model(clients, 0, **SMALL)
    prox, rounds = make_configured_strategy("fedprox", model, 7)
    assert isinstance(prox, FedProx) and rounds == 7
    assert prox.client_options(1) == FitOptions(
        local_epochs=2, learning_rate=0.1, optimizer="sgd", proximal_mu=0.1
    )
    adam, _ = make_configured_strategy("fedadam", model, 7)
    assert isinstance(adam, FedAdam) and adam.server_learning_rate == 0.1 and adam.options == DEFAULT_FIT
    krum, _ = make_configured_strategy("krum", model, 7, min_fit_clients=1)
    assert isinstance(krum, Krum) and krum.min_fit_clients == 1
    # The ensemble: one round, pooled-style Adam at the model's own learning rate for expert_epochs.
    ens, rounds = make_configured_strategy("ensemble", model, 7, expert_epochs=9)
    assert isinstance(ens, ExpertEnsemble) and rounds == 1
    assert ens.client_options(1) == FitOptions(
        local_epochs=9, optimizer="adam", train_heads="own", calibrate=True
    )
    tuned, _ = make_configured_strategy(
        "ensemble", model, 7, fit_config={"local_epochs": 3, "learning_rate": 0.2}
    )
    assert (tuned.options.local_epochs, tuned.options.learning_rate) == (3, 0.2)
    with pytest.raises(ValueError, match=r"^unknown fit option\(s\) \['local_epoch'\]; known: \["):
        make_configured_strategy("fedavg", model, 7, fit_config={"local_epoch": 3})
    with pytest.raises(ValueError, match=r"^unknown federated strategy 'centralised'"):
        make_configured_strategy("centralised", model, 7)


def test_initial_model_is_the_round_zero_builder_over_in_memory_sites(clients: dict[str, ClientData]) -> None:
    a = initial_model(clients, 4, **SMALL)
    b, _, _ = build_initial_model(
        new_model(4, **SMALL), InProcessExecutor(clients), list(clients), baseline_spec=PUMP_BASELINE
    )
    np.testing.assert_array_equal(a.mean_, b.mean_)
    np.testing.assert_array_equal(a.scale_, b.scale_)
    for x, y in zip(get_parameters(a), get_parameters(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.baseline_ is not None
    # Without the baseline the physics heads' residual inputs do not exist: one head per fault, all inputs.
    plain = initial_model(clients, 4, use_baseline=False, head_inputs=None, head_groups=None, **SMALL)
    assert plain.baseline_ is None and plain.n_inputs_ == len(FEATURE_NAMES)


def test_data_and_an_executor_run_the_same_training(clients: dict[str, ClientData]) -> None:
    """In-memory data and an explicit executor over the same sites: bit-identical models and histories."""
    a, hist_a = train_strategy("fedavg", clients, rounds=2, seed=1, model_kwargs=SMALL)
    b, hist_b = train_strategy(
        "fedavg", InProcessExecutor(clients), sites=list(clients), rounds=2, seed=1, model_kwargs=SMALL
    )
    assert hist_a is not None and hist_b is not None
    for x, y in zip(get_parameters(a), get_parameters(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert [r.metrics for r in hist_a.rounds] == [r.metrics for r in hist_b.rounds]
    assert [r.n_results for r in hist_a.rounds] == [3, 3]
    _, hist = train_strategy("ensemble", clients, rounds=5, model_kwargs=SMALL, centralised_epochs=2)
    assert hist is not None and len(hist.rounds) == 1


def test_a_site_down_in_round_zero_is_excluded_and_the_rest_train(clients: dict[str, ClientData]) -> None:
    def down(call: SiteCall) -> object:
        if call.op == "validate":
            return {"reason": None}
        raise ConnectionError("site unreachable")

    sites = {**clients, "down": down}
    _, hist = train_strategy(
        "fedavg",
        InProcessExecutor(sites),
        sites=list(sites),
        rounds=1,
        model_kwargs=SMALL,  # type: ignore[arg-type]
    )
    assert hist is not None
    assert hist.excluded == {"down": "round 0 gram failed: ConnectionError: site unreachable"}
    assert hist.rounds[0].n_results == 3 and hist.rounds[0].failures == []


def test_train_strategy_refusals(clients: dict[str, ClientData]) -> None:
    with pytest.raises(ValueError, match=r"^unknown strategy 'fedsgd'; known: \["):
        train_strategy("fedsgd", clients)
    with pytest.raises(ValueError, match=r"^strategy 'centralised' pools the rows"):
        train_strategy("centralised", InProcessExecutor(clients), sites=list(clients))
    with pytest.raises(ValueError, match=r"^train_strategy with an executor needs the site ids"):
        train_strategy("fedavg", InProcessExecutor(clients))
    model, hist = train_strategy("centralised", clients, centralised_epochs=1, model_kwargs=SMALL)
    assert hist is None and model.predict(clients["site0"].X).shape == (80, 3)


def test_settings_literal_names_every_registered_strategy() -> None:
    from typing import get_args

    from fedtwin.settings import FederatedStrategy

    assert set(get_args(FederatedStrategy)) == set(STRATEGIES)
