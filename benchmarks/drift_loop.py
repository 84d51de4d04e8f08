"""The continuous-retraining loop, measured end to end on the real stack (``fedtwin stack up`` first).

1. A champion trained at the nominal operating point serves a live fleet (4 pumps, real time) via the scorer.
2. The fleet's operating point moves (speed and outlet load; not a fault).
3. The drift monitor flow (what the scheduled deployment runs) compares the new windows with the reference
   and emits the drift event; the retrain deployment, served here by ``serve()`` with its event trigger, is
   started by the Prefect automation (no polling of ours), recalibrates, retrains and promotes.
4. ``drift_loop_s`` is the time from the shift to the Redis pointer naming the new champion (what the running
   scorer hot-swaps to). False-alarm rates are the share of healthy windows at the new operating point that
   the old champion (before) and the new champion (after) flag as faulty.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np

SHIFT = {"speed_rpm": 1300.0, "load_area_factor": 1.3}  # outside the trained envelope, same ~7 bar
ASSETS = 4


def _false_alarm_rate(version: int, since: float) -> tuple[float, int]:
    from federated.model import from_arrays
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.settings import get_settings
    from tasks.monitoring import read_recent_windows

    stored = ModelStore.from_settings(get_settings()).load(version)
    model = from_arrays(stored.arrays, stored.meta)
    frame, _ = read_recent_windows.fn(5000, since)
    X = frame[list(stored.meta["feature_names"])].to_numpy()
    if len(X) == 0:
        return float("nan"), 0
    return float(np.mean(model.predict(X).any(axis=1))), len(X)


def main() -> None:
    """Run the loop once and print the figures."""
    from fedtwin.app.cli import use_prefect_api
    from fedtwin.settings import get_settings

    use_prefect_api()
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.adapters.stack import start_process, stop_pid
    from fedtwin.streaming import live
    from fedtwin.streaming.scorer import run_scorer
    from flows.monitor import drift_monitor_flow
    from flows.training import training_flow

    s = get_settings()
    store = ModelStore.from_settings(s)
    print(
        f"stack: kafka={s.kafka_bootstrap_servers} redis={s.redis_url} mlflow={s.mlflow_tracking_uri} "
        f"prefect={s.prefect_api_url}"
    )
    t = time.time()
    base = training_flow(profile="demo", reason="drift-benchmark-baseline")
    print(
        f"baseline champion at nominal: {base['exact_match']} promoted={base['registry']['promoted']} "
        f"({time.time() - t:.0f} s)"
    )
    champion = store.current_version()
    assert champion is not None

    # The retrain deployment with its drift trigger, served by a separate process as in production.
    log = Path(s.state_dir).resolve() / "serve-retrain.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = start_process(
        [sys.executable, "-m", "deployments.serve", "--only", "retrain"],
        log,
        {"PREFECT_RUNNER_POLL_FREQUENCY": "2"},
    )
    stop = threading.Event()
    for i in range(1, ASSETS + 1):
        live.clear(s, f"pump-{i}")
        live.set_operating_point(s, f"pump-{i}", speed_rpm=958.0, load_area_factor=1.0)
    scorer_kw = {"max_seconds": 900, "publish_features": True, "stop_event": stop}
    plant_kw = {"assets": ASSETS, "duration_s": 900, "speedup": 1.0, "stop_event": stop}
    scorer = threading.Thread(target=run_scorer, args=(s,), kwargs=scorer_kw, daemon=True)
    plant = threading.Thread(target=live.run_plant, args=(s,), kwargs=plant_kw, daemon=True)
    scorer.start()
    time.sleep(3.5)
    plant.start()
    try:
        time.sleep(15)
        nominal_fa, n_nom = _false_alarm_rate(champion, time.time() - 15)
        print(f"nominal: champion v{champion} false alarms {nominal_fa:.4f} over {n_nom} windows")
        t_shift = time.time()
        for i in range(1, ASSETS + 1):
            live.set_operating_point(s, f"pump-{i}", **SHIFT)
        print(f"shifted operating point to {SHIFT} at t=0")
        time.sleep(20)
        before, n_before = _false_alarm_rate(champion, t_shift + 2)
        print(
            f"t={time.time() - t_shift:.0f} s: old champion false alarms at new point {before:.4f} "
            f"over {n_before} windows"
        )
        result = drift_monitor_flow(windows=200, since_s=t_shift + 2)
        print(
            f"t={time.time() - t_shift:.0f} s: drift monitor: {result['status']} "
            f"({len(result['feature']['drifted_features'])} features drifted)"
        )
        deadline = time.time() + 600
        while store.current_version() == champion and time.time() < deadline:
            time.sleep(0.5)
        new = store.current_version()
        loop_s = time.time() - t_shift
        if new == champion:
            print(f"no new champion within {deadline - t_shift:.0f} s; see {log}")
            loop_s = float("nan")
        else:
            print(f"t={loop_s:.0f} s: new champion v{new} serving")
        t_new = time.time()
        time.sleep(20)
        after, n_after = _false_alarm_rate(new or champion, t_new + 2)
    finally:
        for i in range(1, ASSETS + 1):  # leave the fleet at the nominal point for the next user of the stack
            live.set_operating_point(s, f"pump-{i}", speed_rpm=958.0, load_area_factor=1.0)
        stop.set()
        scorer.join(30)
        plant.join(30)
        stop_pid(server.pid)
    print(f"old champion v{champion} at new point: false alarms {before:.4f} ({n_before} windows)")
    print(f"new champion v{new} at new point: false alarms {after:.4f} ({n_after} windows)")
    print(f"drift_loop_s={loop_s:.1f}")
    print(f"false_alarm_before={before:.4f}")
    print(f"false_alarm_after={after:.4f}")


if __name__ == "__main__":
    main()
