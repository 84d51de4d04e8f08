"""The standard campaign with a champion and two shadow challengers of other strategies, on real services.

Self-contained: an own Tansu broker, an own Redis key prefix (the machine's Redis), a temporary MLflow store
and Prefect's test harness. Trains the champion (``fedadam``) and two challengers (``fedavg``, ``fedprox``;
registered without touching the champion), serves the challengers in shadow slots, runs one scorer, plays
``campaigns/standard.yaml`` and prints one line per model::

    model=<strategy>@v<version> live_exact_match=<f> detection_delay_p50_s=<f> false_alarms_per_asset_hour=<f>

Run: ``python -m benchmarks.shadow_campaign`` (a few minutes: three demo trainings, then the campaign).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STANDARD = ROOT / "campaigns" / "standard.yaml"
SLOTS = ("challenger-a", "challenger-b")


@contextmanager
def own_services(slots: Sequence[str] = SLOTS) -> Iterator[Any]:
    """FEDTWIN_* settings on an own broker, Redis prefix, MLflow store and Prefect test API; cleaned after."""
    import json

    import redis
    from prefect.testing.utilities import prefect_test_harness

    from fedtwin.adapters import stack
    from fedtwin.settings import get_settings

    base = Path(tempfile.mkdtemp(prefix="fedtwin-bench-shadow-"))
    proc, bootstrap = stack.start_tansu(base / "tansu.log")
    tag = uuid.uuid4().hex[:8]
    env = {
        "FEDTWIN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FEDTWIN_REDIS_PREFIX": f"fedtwin-bench-{tag}:",
        "FEDTWIN_MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "FEDTWIN_MLFLOW_EXPERIMENT": f"bench-{tag}",
        "FEDTWIN_REGISTERED_MODEL": f"bench-{tag}",
        "FEDTWIN_CONSUMER_GROUP": f"scorer-{tag}",
        "FEDTWIN_SHADOW_MODELS": json.dumps(list(slots)),
        "FEDTWIN_DATA_DIR": str(base / "data"),
        "FEDTWIN_ARTIFACT_DIR": str(base / "artifacts"),
        "FEDTWIN_STATE_DIR": str(base / "stack"),
        "FEDTWIN_MONITORING_DIR": str(base / "monitoring"),
        "FEDTWIN_EVIDENTLY_WORKSPACE": str(base / "evidently"),
        "FEDTWIN_SIGNING_KEY": f"bench-key-{tag}",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield settings
    finally:
        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        stack.stop_pid(proc.pid)
        shutil.rmtree(base, ignore_errors=True)


def measure_campaign(
    champion: str = "fedadam",
    challengers: Sequence[str] = ("fedavg", "fedprox"),
    campaign_file: Path = STANDARD,
    profile: str = "demo",
) -> dict[str, dict[str, float]]:
    """Run the campaign with the champion and the challengers in shadow; the live figures per model.

    Must run inside :func:`own_services` (or any configured stack with ``shadow_models`` naming
    ``len(challengers)`` slots). Returns ``{"<strategy>@v<version>": figures}`` (see
    fedtwin.training.live_eval).
    """
    from fedtwin.settings import get_settings
    from fedtwin.streaming.scorer import run_scorer
    from flows.campaign import campaign_flow
    from flows.candidate import put_in_shadow
    from flows.training import training_flow

    settings = get_settings()
    slots = list(settings.shadow_sources())
    if len(slots) < len(challengers):
        raise ValueError(f"need {len(challengers)} shadow slots in shadow_models, have {slots}")
    t = time.time()
    first = training_flow(strategy=champion, profile=profile, reason="bench-champion")
    print(f"# champion {champion} v{first['registry']['version']} ({time.time() - t:.0f} s)", flush=True)
    for slot, strategy in zip(slots, challengers, strict=False):
        t = time.time()
        cand = training_flow(strategy=strategy, profile=profile, reason="bench-challenger", promote=False)
        put_in_shadow(int(cand["registry"]["version"]), slot)
        print(
            f"# {strategy} v{cand['registry']['version']} in slot {slot} ({time.time() - t:.0f} s)",
            flush=True,
        )
    stop = threading.Event()
    scorer_out: dict[str, Any] = {}
    scorer = threading.Thread(
        target=lambda: scorer_out.update(run_scorer(settings, stop_event=stop)), name="scorer", daemon=True
    )
    scorer.start()
    try:
        t = time.time()
        result = campaign_flow(str(campaign_file))
        print(
            f"# campaign {result['campaign']}: {result['plant']['chunks']} chunks ({time.time() - t:.0f} s)"
        )
    finally:
        stop.set()
        scorer.join(timeout=60)
    print(
        f"# scorer: {scorer_out.get('decisions')} decisions, shadows {scorer_out.get('shadow_versions')}",
        flush=True,
    )
    try:
        _per_asset_false_alarms(result)
    except Exception as exc:  # a diagnostic only: never lose the figures to it
        print(f"# per-asset diagnostic failed: {type(exc).__name__}: {exc}", flush=True)
    return dict(result["live"]["results"])


def _per_asset_false_alarms(result: dict[str, Any]) -> None:
    """Where the false alarms were: per model, the assets and counts (a diagnostic line per model)."""
    from fedtwin.settings import get_settings
    from fedtwin.training.live_eval import evaluate, parse_decision, parse_truth
    from tasks.live_eval import plant_cursors, read_decisions, read_truth

    s = get_settings()
    # Tasks called outside a flow run as their own task runs (their run logger needs one).
    truth = [parse_truth(r) for r in read_truth(result["assets"], result["since_wall_s"])]
    since_t = min(t.t for t in truth)
    per_window = max(1, round(s.window_s / s.chunk_s))
    targets = {a: seq - per_window for a, seq in plant_cursors(result["assets"]).items()}
    raws = read_decisions(result["assets"], since_t, result["since_wall_s"], targets, 30.0)
    decisions = [parse_decision(r) for r in raws]
    per: dict[str, dict[str, int]] = {}
    for asset in result["assets"]:
        mine = [d for d in decisions if d.asset == asset]
        for label, m in evaluate(mine, [t for t in truth if t.asset == asset], window_s=s.window_s).items():
            if m["false_alarms"]:
                per.setdefault(label, {})[asset] = int(m["false_alarms"])
    for label, counts in sorted(per.items()):
        print(f"# false alarms of {label} by asset: {counts}", flush=True)


def lines(results: dict[str, dict[str, float]]) -> list[str]:
    """The benchmark's ``model=... live_exact_match=...`` lines, champion first."""
    order = sorted(results, key=lambda m: (-results[m].get("is_champion", 0.0), m))
    return [
        f"model={m} live_exact_match={results[m]['exact_match']:.4f} "
        f"detection_delay_p50_s={results[m]['detection_delay_p50_s']:.3f} "
        f"false_alarms_per_asset_hour={results[m]['false_alarms_per_asset_hour']:.3f}"
        for m in order
    ]


def campaign_step(bench: Any = None) -> None:
    """A step of ``benchmarks.shadow``: the per-model lines of the standard campaign (own services)."""
    with own_services():
        results = measure_campaign()
    for line in lines(results):
        print(line, flush=True)


def main() -> None:
    """Measure once on own services and print the per-model lines."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    campaign_step()


if __name__ == "__main__":
    main()
