"""Federated vs centralised fault classification on simulated sweeps.

Run from the repo root: ``python -m benchmarks.federated``. Generates the training sweep (per-fault sites with
extreme label skew) and a disjoint held-out sweep (unseen severities, operating points, seeds, and fault
combinations no site holds), trains every strategy, the expert ensemble and the centralised baseline, and
prints ``name=value`` lines ending with one line per strategy and the federated-vs-centralised gap.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace
from typing import Any, get_args

import numpy as np

from federated.client import FitOptions
from fedtwin.settings import FederatedStrategy
from plant_models.spec import FAULT_SPECS
from plant_models.spec import FAULTS as FAULT_NAMES

SHORT = {f.name: f.short for f in FAULT_SPECS}  # shorter fault names in the confusion tables

SEED = 20240601  # fixed up front; never tuned on the test set
# Every rule the settings accept (the registry must match them: tests/unit/fedtwin/test_settings.py), then
# the pooled baseline federation is compared against.
STRATEGY_NAMES = (*get_args(FederatedStrategy), "centralised")
TARGETS = {"exact_match_8class": 0.95, "fault_detection_acc": 0.995}
FALSE_ALARM_TARGET = 0.005


def _per_severity(name: str, test: object, Y_pred: np.ndarray, fault_names: tuple[str, ...]) -> list[str]:
    """Exact-match per (fault set, severity) cell where the targets are missed."""
    from federated.evaluate import subset_codes, subset_names

    Y = test.Y  # type: ignore[attr-defined]
    sev = test.severity  # type: ignore[attr-defined]
    codes = subset_codes(Y)
    names = subset_names(fault_names)
    lines = []
    for code in range(1, 2 ** len(fault_names)):
        rows = codes == code
        if not rows.any():
            continue
        fault_idx = [k for k in range(len(fault_names)) if code >> k & 1]
        s = np.round(sev[rows][:, fault_idx[0]], 3)
        cells = []
        for level in np.unique(s):
            m = s == level
            acc = float(np.mean(np.all(Y_pred[rows][m] == Y[rows][m], axis=1)))
            if acc < TARGETS["exact_match_8class"]:
                cells.append(f"{level:.2f}:{acc:.2f}")
        if cells:
            lines.append(
                f"per_severity strategy={name} class={names[code]} missed(sev:exact)=" + " ".join(cells)
            )
    return lines


def figures(r: dict) -> str:
    """The issue's three headline figures of one evaluation, as ``name=value`` pairs."""
    return (
        f"exact_match_8class={r['exact_match_8class']:.4f} "
        f"fault_detection_acc={r['fault_detection_acc']:.4f} false_alarm_rate={r['false_alarm_rate']:.4f}"
    )


def _combination_client(cfg: object, workers: int) -> object:
    """Diagnostic only: a site holding every fault combination (the issue's sites never do).

    Training on it as well shows how much of the gap to the target is label skew and how much is what the
    sensors can tell apart. Same severities and operating envelope as the sites, seeds of its own.
    """
    from federated.client import ClientData
    from fedtwin.data.datasets import scenario_windows
    from plant_models import ALL_FAULT_SETS, Faults, OperatingPoint, Scenario

    rng = np.random.default_rng([cfg.seed, 3])  # type: ignore[attr-defined]
    speeds, loads = cfg.train_speeds, cfg.train_loads  # type: ignore[attr-defined]
    runs, seed = [], 3_000_000 + cfg.seed % 1_000_000  # type: ignore[attr-defined]
    for fset in (f for f in ALL_FAULT_SETS if len(f) > 1):
        for sev in cfg.train_severities:  # type: ignore[attr-defined]
            for _ in range(len(speeds) * len(loads)):
                op = OperatingPoint(
                    speed_rpm=float(rng.uniform(min(speeds), max(speeds))),
                    load_area_factor=float(rng.uniform(min(loads), max(loads))),
                )
                faults = Faults.from_severity(**{f: sev for f in fset}, leak_cylinder=seed % 3)
                runs.append(
                    Scenario(
                        faults=faults,
                        op=op,
                        seed=seed,
                        duration_s=cfg.duration_s,  # type: ignore[attr-defined]
                        warmup_s=cfg.warmup_s,  # type: ignore[attr-defined]
                    )
                )
                seed += 1
    lw = scenario_windows(runs, cfg.window_s, workers)  # type: ignore[attr-defined]
    return ClientData(lw.X, lw.Y, "combinations")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES))
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="sweep seed (the default is the benchmark's; recipes were chosen on 20240777)",
    )
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the diagnostic run with a site holding combinations"
    )
    parser.add_argument(
        "--window-s",
        type=float,
        default=None,
        help="feature window (s); runs are lengthened to keep 3 windows each (default: SweepConfig's 1 s)",
    )
    return parser.parse_args(argv)


def _sweeps(args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """Sweep config, training sites and held-out set, with their description lines printed."""
    from fedtwin.data.datasets import SweepConfig, build_clients, build_test_set
    from fedtwin.training.recipe import DEFAULT_FIT, DEFAULT_MODEL

    cfg = SweepConfig(seed=args.seed)
    if args.window_s is not None:
        n_win = round(cfg.duration_s / cfg.window_s)
        cfg = replace(cfg, window_s=args.window_s, duration_s=n_win * args.window_s)
    print(f"seed={args.seed}")
    print(
        f"train_severities={list(cfg.train_severities)} test_severities={list(cfg.test_severities)} "
        f"(fraction of each reference range: leak 0..0.036, inlet 0.8..0.53, bearing 0..6e-4)"
    )
    print(
        f"train_ops=uniform speed[{min(cfg.train_speeds)},{max(cfg.train_speeds)}]rpm x "
        f"load[{min(cfg.train_loads)},{max(cfg.train_loads)}] "
        f"test_ops={[(s, lo) for s in cfg.test_speeds for lo in cfg.test_loads]}"
    )
    t0 = time.perf_counter()
    clients = build_clients(cfg, workers=args.workers)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = build_test_set(cfg, workers=args.workers)
    t_test = time.perf_counter() - t0
    for cid, c in clients.items():
        print(
            f"client={cid} windows={len(c.X)} "
            f"positives={dict(zip(FAULT_NAMES, c.Y.sum(axis=0).tolist(), strict=True))}"
        )
    n_train = sum(len(c.X) for c in clients.values())
    print(
        f"train_windows={n_train} test_windows={len(test.X)} test_scenarios={test.info['n_scenarios']} "
        f"failed_simulations={test.info['n_failed']} window_s={cfg.window_s} duration_s={cfg.duration_s}"
    )
    # The client options the recipe changes from FitOptions' defaults (every strategy starts from these).
    fit = {k: v for k, v in DEFAULT_FIT.to_plain().items() if v != getattr(FitOptions(), k)}
    print(
        f"sim_seconds_train={t_train:.1f} sim_seconds_test={t_test:.1f} rounds={args.rounds} "
        f"model={DEFAULT_MODEL} fit={fit}"
    )
    return cfg, clients, test


def _train_all(args: argparse.Namespace, clients: dict[str, Any], test: Any) -> tuple[dict, dict]:
    """Every strategy through fedtwin.training.recipe.train_strategy (the training flow's run); evaluation
    per name."""
    from federated.evaluate import evaluate_predictions
    from fedtwin.training.recipe import train_strategy

    results: dict[str, dict] = {}
    preds: dict[str, np.ndarray] = {}
    for name in args.strategies.split(","):
        t0 = time.perf_counter()
        model, history = train_strategy(name, clients, rounds=args.rounds, seed=args.seed % 10_000)
        elapsed = time.perf_counter() - t0
        Y_pred = model.predict(test.X)
        preds[name] = Y_pred
        results[name] = evaluate_predictions(test.Y, Y_pred, FAULT_NAMES)
        n_rounds = len(history.rounds) if history is not None else 0
        print(f"trained strategy={name} rounds={n_rounds} seconds={elapsed:.1f}")
    return results, preds


def _dp_line(args: argparse.Namespace, clients: dict[str, Any], test: Any) -> None:
    """Differential privacy on top of FedAvg: what accuracy costs at a reported epsilon (same round loop)."""
    from federated.evaluate import evaluate_predictions
    from federated.model import get_parameters, model_config, set_parameters
    from federated.server import run_federated
    from federated.strategy import DPFixedClipping, FedAvg
    from fedtwin.training.recipe import DEFAULT_FIT, initial_model

    t0 = time.perf_counter()
    dp_model = initial_model(clients, args.seed % 10_000)
    dp = DPFixedClipping(
        FedAvg({**DEFAULT_FIT.to_plain(), "model": model_config(dp_model)}, seed=args.seed % 10_000),
        clip_norm=5.0,
        noise_multiplier=0.3,
        delta=1e-5,
        seed=args.seed % 10_000,
    )
    hist = run_federated(dp, clients, args.rounds, get_parameters(dp_model))
    set_parameters(dp_model, hist.params)
    dp_res = evaluate_predictions(test.Y, dp_model.predict(test.X), FAULT_NAMES)
    print(
        f"dp strategy=dp-fedavg clip_norm={dp.clip_norm} noise_multiplier={dp.noise_multiplier} "
        f"epsilon={dp.epsilon():.1f} delta={dp.delta} exact_match_8class={dp_res['exact_match_8class']:.4f} "
        f"fault_detection_acc={dp_res['fault_detection_acc']:.4f} seconds={time.perf_counter() - t0:.1f}"
    )


def _diagnostics(args: argparse.Namespace, cfg: Any, clients: dict[str, Any], test: Any, best: str) -> None:
    """Not strategies: the best recipe with a site holding every combination, and the all-input ablation."""
    from federated.evaluate import evaluate_predictions
    from fedtwin.training.recipe import train_strategy

    with_combos = {**clients, "combinations": _combination_client(cfg, args.workers)}
    for name in (best, "centralised"):
        model, _ = train_strategy(name, with_combos, rounds=args.rounds, seed=args.seed % 10_000)
        r = evaluate_predictions(test.Y, model.predict(test.X), FAULT_NAMES)
        print(f"ceiling strategy={name} trained_with_combinations=1 {figures(r)}")
    # Ablation: one head per fault reading every feature and residual (the first session's model).
    every = {"head_inputs": None, "head_groups": None}
    for name in (best, "centralised"):
        model, _ = train_strategy(
            name, clients, rounds=args.rounds, seed=args.seed % 10_000, model_kwargs=every
        )
        r = evaluate_predictions(test.Y, model.predict(test.X), FAULT_NAMES)
        print(f"ablation strategy={name} heads=one_per_fault_all_inputs {figures(r)}")


def _details(results: dict[str, dict], preds: dict[str, np.ndarray], test: Any, best: str) -> None:
    """Per-fault, per-class and per-severity figures, and the confusion matrices."""
    from federated.evaluate import format_confusion

    for name, r in results.items():
        per_fault = " ".join(f"{f}:P={r[f'precision_{f}']:.3f}/R={r[f'recall_{f}']:.3f}" for f in FAULT_NAMES)
        per_class = " ".join(f"{n}={r[f'acc_{n}']:.3f}" for n in r["subset_names"])
        print(f"detail strategy={name} {per_fault}")
        print(f"detail strategy={name} per_class_exact {per_class}")
    for name in results:
        for line in _per_severity(name, test, preds[name], FAULT_NAMES):
            print(line)
    print(f"confusion strategy={best} (rows true, cols predicted)")
    print(format_confusion(results[best]["confusion"], results[best]["subset_names"], SHORT))
    if "centralised" in results and best != "centralised":
        print("confusion strategy=centralised")
        central = results["centralised"]
        print(format_confusion(central["confusion"], central["subset_names"], SHORT))


def _summary(results: dict[str, dict], best: str) -> None:
    """One line per strategy, then the federated-vs-centralised gap."""
    for name, r in results.items():
        print(f"strategy={name} {figures(r)}")
    if "centralised" in results:
        gap = 100.0 * (results[best]["exact_match_8class"] - results["centralised"]["exact_match_8class"])
        print(f"best_federated={best} fed_minus_central={gap:.2f}")
    else:
        print(f"best_federated={best} fed_minus_central=nan")


def main(argv: list[str] | None = None) -> int:
    """Build sweeps, train everything, print measurements."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg, clients, test = _sweeps(args)
    results, preds = _train_all(args, clients, test)
    _dp_line(args, clients, test)
    best = max((n for n in results if n != "centralised"), key=lambda n: results[n]["exact_match_8class"])
    if not args.no_ceiling:
        _diagnostics(args, cfg, clients, test, best)
    _details(results, preds, test, best)
    _summary(results, best)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
