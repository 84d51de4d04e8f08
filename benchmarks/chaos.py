"""Fault injection on real services: the scorer (``fedtwin score`` in a subprocess) against a Tansu broker and
Redis while a paced stream of simulated pumps with a known fault schedule (the truth) flows, and one fault is
injected mid-stream. Run ``python -m benchmarks.chaos``; prints per scenario::

    scenario=<name> recovered=<bool> recovery_s=<f> alerts_lost=<n> alerts_duplicated=<n> alerts_false=<n> ...

and a summary line ``faults_injected=<n> alerts_lost=<n> alerts_duplicated=<n> scorer_recovered_max_s=<f>
poison_messages_tried=<n> scorer_stopped=<n>``.

Scenarios: ``scorer_kill9`` (SIGKILL mid-stream, a successor started at once), ``broker_restart`` (kill -9
of a memory-only Tansu, restarted on its port after ``outage_s``: topics, data, offsets and groups are gone),
``redis_restart`` (kill -9 of an own redis-server without persistence, restarted empty: model pointer, scorer
state and open alerts are gone). Each scenario has its own broker, topics, group and Redis key prefix; the
shared Redis (127.0.0.1:6379) is never restarted. Three poison messages (two 1e308 speed samples, ``seq`` =
2**64-1, an invalid 900 KB value) are sent after the fault on an asset of their own.

``--pipeline`` (or ``--pipeline-only``) also runs the training pipeline's faults, one line each, outside the
summary (they involve no scorer): ``mlflow_down_at_start`` (``fedtwin train`` with MLflow unreachable: the
exit code, the seconds until it failed and the line it printed) and ``prefect_restart`` (kill -9 of an own
Prefect server 20 s into ``fedtwin train``, restarted at once with its database: the run's exit code, the
state and task-run count the server recorded, and whether a re-run works)::

    scenario=<name> exit_code=<n> seconds=<f> outage_s=<f> flow_state=<STATE> task_runs=<n>
    rerun_exit_code=<n> rerun_task_runs=<n> message="<last stderr line on failure>"

Alerts are counted against the schedule, per asset and fault: a fault episode with no raise between its onset
and its end is one lost alert, and one with no clear within ``clear_windows + 3`` windows of its end another
(when the stream lasts that long); a raise while the fault is already raised, or a clear while it is not, is a
duplicate; a raise outside every episode is false. ``recovery_s`` is the time from the end of the fault (the
successor started, the service back) until the scorer has published a window of data produced at that moment
(it caught up with live data); ``recovered`` also requires the scorer to exit 0 on SIGTERM at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedtwin.data.schema import SIGNALS, decode_alert, encode_chunk

SCENARIOS = ("scorer_kill9", "broker_restart", "redis_restart")
#: Per asset: (fault or None, seconds of plant time). Faults at severity 1.0 (what the quick model detects).
SCHEDULE: dict[str, list[tuple[str | None, float]]] = {
    "pump-1": [(None, 6.0), ("leak", 12.0), (None, 10.0)],
    "pump-2": [(None, 10.0), ("bearing", 10.0), (None, 8.0)],
}
POISON_ASSET = "pump-poison"
#: Poison pills per scenario (``poison_messages``); each costs exactly one dead letter.
POISON_PILLS = 3
RECOVERY_BOUND_S = 30.0


@dataclass
class Episode:
    """A fault present on an asset from ``on`` to ``off`` (data time, epoch s)."""

    asset: str
    fault: str
    on: float
    off: float


@dataclass
class Count:
    """Alerts of one run counted against the episodes."""

    expected: int = 0
    observed: int = 0
    lost: int = 0
    duplicated: int = 0
    false: int = 0
    detail: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """Outcome of one fault scenario."""

    scenario: str
    recovered: bool
    recovery_s: float
    alerts_lost: int
    alerts_duplicated: int
    alerts_false: int
    alerts_expected: int
    alerts_observed: int
    poison_messages: int
    dead_letters: int
    scorer_exit: int | None
    sent: int
    undelivered: int
    detail: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """``name=value`` line of this scenario."""
        d = asdict(self)
        d.pop("detail")
        d.pop("alerts")
        return " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


# ---------------------------------------------------------------------------------------------- the truth
def simulate_plant(schedule: dict[str, list[tuple[str | None, float]]], seed: int = 40) -> dict[str, Any]:
    """Per asset, the concatenated signals of its schedule's segments (one simulation per segment)."""
    from benchmarks.streaming import simulate_signals

    out: dict[str, Any] = {}
    for i, (asset, segments) in enumerate(sorted(schedule.items())):
        parts = [
            simulate_signals({fault: 1.0} if fault else {}, seconds, seed=seed + 10 * i + k)
            for k, (fault, seconds) in enumerate(segments)
        ]
        out[asset] = {s: np.concatenate([p[s] for p in parts]) for s in SIGNALS}
    return out


def episodes(schedule: dict[str, list[tuple[str | None, float]]], t_base: float) -> list[Episode]:
    """The schedule's fault episodes in data time."""
    out = []
    for asset, segments in schedule.items():
        t = t_base
        for fault, seconds in segments:
            if fault:
                out.append(Episode(asset, fault, t, t + seconds))
            t += seconds
    return out


def count_alerts(
    alerts: list[dict[str, Any]],
    truth: list[Episode],
    *,
    window_s: float,
    clear_windows: int,
    stream_end: float,
) -> Count:
    """Lost, duplicated and false alerts against the truth (see the module docstring)."""
    c = Count(observed=len(alerts))
    raises, clears = _transitions(alerts, c)
    matched: set[tuple[tuple[str, str], float]] = set()
    clear_slack = (clear_windows + 3) * window_s
    for ep in truth:
        key = (ep.asset, ep.fault)
        c.expected += 1
        hit = [t for t in raises[key] if ep.on <= t <= ep.off + window_s]
        if hit:
            matched.add((key, hit[0]))
        else:
            c.lost += 1
            c.detail.append(f"lost raise {key} of episode {ep.on:.1f}-{ep.off:.1f}")
        if ep.off + clear_slack <= stream_end:
            c.expected += 1
            if not any(ep.off <= t <= ep.off + clear_slack for t in clears[key]):
                c.lost += 1
                c.detail.append(f"lost clear {key} of episode {ep.on:.1f}-{ep.off:.1f}")
    for key, ts in raises.items():
        false = [t for t in ts if (key, t) not in matched]
        c.false += len(false)
        c.detail += [f"false raise {key} at {t:.1f}" for t in false]
    return c


def _transitions(
    alerts: list[dict[str, Any]], c: Count
) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], list[float]]]:
    """window_end of every raise and clear per (asset, fault) in time order; a raise of a raised fault or a
    clear of a clear one is counted in ``c`` as a duplicate and left out."""
    raises: dict[tuple[str, str], list[float]] = defaultdict(list)
    clears: dict[tuple[str, str], list[float]] = defaultdict(list)
    raised: dict[tuple[str, str], bool] = defaultdict(bool)
    for a in sorted(alerts, key=lambda a: (a["window_start"], a["kind"] == "raise")):
        for f in a["faults"]:
            key, t, up = (a["asset"], f), float(a["window_end"]), a["kind"] == "raise"
            if up == raised[key]:
                c.duplicated += 1
                c.detail.append(f"duplicate {a['kind']} {key} at {t:.1f}")
                continue
            raised[key] = up
            (raises if up else clears)[key].append(t)
    return raises, clears


# ---------------------------------------------------------------------------------------------- services
def scorer_env(settings: Any) -> dict[str, str]:
    """FEDTWIN_* variables that reproduce ``settings`` in a subprocess."""
    from pydantic import SecretStr

    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"FEDTWIN_{name.upper()}"] = str(value)
    return env


class Broker:
    """A memory-only Tansu on a fixed free port that can be killed and restarted there."""

    def __init__(self, workdir: Path) -> None:
        from fedtwin.adapters import stack

        self.port = stack.free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log = workdir / f"tansu-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from fedtwin.adapters import stack

        self.proc = stack.start_process(stack.tansu_argv(self.port), self.log)
        if not stack._wait(lambda: stack._kafka_ok(self.bootstrap), 15.0, self.proc):
            raise RuntimeError(f"Tansu did not start on {self.bootstrap}: read {self.log}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


class OwnRedis:
    """A redis-server without persistence on a free port (never the shared one): restarts come back empty."""

    def __init__(self, workdir: Path) -> None:
        from fedtwin.adapters import stack

        self.port = stack.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from fedtwin.adapters import stack

        argv = [stack.redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = stack.start_process(argv, self.workdir / f"redis-{self.port}.log")
        if not stack._wait(lambda: stack._redis_ping(self.url), 10.0, self.proc):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


class Streamer:
    """Paced producer of the simulated plant: chunk k of every asset at ``k * chunk_s / speedup`` s."""

    def __init__(self, settings: Any, signals: dict[str, Any], speedup: float) -> None:
        from fedtwin.adapters.kafka_io import make_producer

        self.s = settings
        self.signals = signals
        self.speedup = speedup
        self.chunk_n = round(settings.chunk_s * settings.sample_rate_hz)
        self.n_chunks = min(len(v["flow"]) for v in signals.values()) // self.chunk_n
        # The plant's producer stays quiet while the broker is away (it retries by itself).
        self.producer = make_producer(settings, **{"reconnect.backoff.max.ms": 1000, "log_level": 2})
        self.sent = 0
        self.failed = 0
        self.t_base = 0.0
        self.start_wall = 0.0
        self.hooks: list[tuple[float, Callable[[], None]]] = []  # (plant time, action) run by this thread
        self.thread = threading.Thread(target=self._run, daemon=True)

    def data_time(self, wall: float) -> float:
        """Data time (epoch s in the messages) produced at monotonic time ``wall``."""
        return self.t_base + (wall - self.start_wall) * self.speedup

    @property
    def end(self) -> float:
        return self.t_base + self.n_chunks * self.s.chunk_s

    def start(self) -> None:
        self.t_base = time.time()
        self.start_wall = time.monotonic()
        self.thread.start()

    def produce(self, key: str, value: bytes) -> None:
        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                self.failed += 1

        while True:
            try:
                self.producer.produce(self.s.sensor_topic, value, key.encode(), on_delivery=on_delivery)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1

    def _run(self) -> None:
        fs, dt = self.s.sample_rate_hz, self.s.chunk_s
        hooks = sorted(self.hooks, key=lambda h: h[0])
        for k in range(self.n_chunks):
            delay = self.start_wall + k * dt / self.speedup - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while hooks and hooks[0][0] <= k * dt:
                hooks.pop(0)[1]()
            for asset, sig in self.signals.items():
                part = {s: sig[s][k * self.chunk_n : (k + 1) * self.chunk_n] for s in SIGNALS}
                self.produce(asset, encode_chunk(asset, k, self.t_base + k * dt, fs, part, decimals=4))
            self.producer.poll(0)
        for _, action in hooks:  # due after the last chunk
            action()
        self.producer.flush(60)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)


def poison_messages(settings: Any, t0: float) -> list[bytes]:
    """The three poison pills of issue 12 on their own asset: 10 chunks completing one window whose 4th chunk
    has two speed samples of 1e308, a chunk with ``seq`` = 2**64-1, and an invalid value of 900 KB. Each costs
    one dead letter."""
    fs, n = settings.sample_rate_hz, round(settings.chunk_s * settings.sample_rate_hz)
    rng = np.random.default_rng(3)
    out = []
    for k in range(10):
        sig = {"pressure": rng.normal(7, 0.1, n), "flow": rng.normal(38, 0.5, n)}
        sig |= {"speed": rng.normal(1900, 5, n), "current": rng.normal(6.6, 0.1, n)}
        if k == 3:
            sig["speed"][[5, 50]] = 1e308
        out.append(encode_chunk(POISON_ASSET, k, t0 + k * settings.chunk_s, fs, sig, decimals=4))
    top = json.loads(out[0])
    top["seq"] = 2**64 - 1
    out.append(json.dumps(top).encode())
    out.append(b'{"v": 1, "asset": "' + POISON_ASSET.encode() + b'", "pad": "' + b"x" * 900_000)
    return out


# ---------------------------------------------------------------------------------------------- scenario
@contextmanager
def _workdir(base: Path | None) -> Iterator[Path]:
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
        yield base
        return
    with tempfile.TemporaryDirectory(prefix="fedtwin-chaos-") as d:
        yield Path(d)


def _latest_window(r: Any, key: str) -> float:
    """window_start of the newest feature row in Redis (-inf when none or Redis is away)."""
    import redis

    try:
        rows = r.xrevrange(key, count=1)
    except (redis.RedisError, OSError):
        return float("-inf")
    return float(rows[0][1][b"window_start"]) if rows else float("-inf")


def _read_alerts(settings: Any, source: str, r: Any) -> list[dict[str, Any]]:
    if source == "redis":
        return [json.loads(f[b"alert"]) for _, f in r.xrange(settings.key("alerts"))]
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from fedtwin.adapters.kafka_io import make_consumer

    c = make_consumer(settings, group=f"chaos-reader-{uuid.uuid4().hex[:6]}")
    topic = settings.alert_topic
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    out, last = [], time.monotonic()
    while time.monotonic() - last < 1.0:
        batch = [m for m in c.consume(1000, 0.2) if m.error() is None]
        if batch:
            out += [decode_alert(m.value() or b"") for m in batch]
            last = time.monotonic()
    c.close()
    return out


def run_scenario(
    scenario: str,
    model: tuple[dict[str, Any], dict[str, Any]],
    signals: dict[str, Any],
    *,
    speedup: float = 4.0,
    fault_at_s: float = 11.0,
    outage_s: float = 2.5,
    redis_url: str = "redis://127.0.0.1:6379/0",
    workdir: Path | None = None,
) -> ScenarioResult:
    """One fault scenario end to end on its own broker, topics, group and Redis prefix."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    with _workdir(workdir) as wd:
        return _Scenario(scenario, model, signals, speedup, fault_at_s, outage_s, redis_url, wd).run()


class _Scenario:
    def __init__(
        self,
        name: str,
        model: tuple[dict[str, Any], dict[str, Any]],
        signals: dict[str, Any],
        speedup: float,
        fault_at_s: float,
        outage_s: float,
        redis_url: str,
        wd: Path,
    ) -> None:
        import redis
        from pydantic import SecretStr

        from fedtwin.settings import Settings

        self.name, self.model, self.speedup = name, model, speedup
        self.fault_at_s, self.outage_s, self.wd = fault_at_s, outage_s, wd
        self.broker = Broker(wd)
        self.own_redis = OwnRedis(wd) if name == "redis_restart" else None
        tag = uuid.uuid4().hex[:8]
        self.s = Settings(
            kafka_bootstrap_servers=self.broker.bootstrap,
            redis_url=self.own_redis.url if self.own_redis else redis_url,
            redis_prefix=f"fedtwin-chaos-{tag}:",
            sensor_topic=f"c{tag}.sensors",
            alert_topic=f"c{tag}.alerts",
            dlq_topic=f"c{tag}.dlq",
            truth_topic=f"c{tag}.truth",
            consumer_group=f"c{tag}-scorer",
            kafka_session_timeout_ms=3000,
            signing_key=SecretStr(f"chaos-{tag}"),
        )
        self.r = redis.Redis.from_url(self.s.redis_url, socket_timeout=2, socket_connect_timeout=1)
        self.signals = signals
        self.scorers: list[subprocess.Popen[bytes]] = []
        self.fault_end: float | None = None
        self.poisoned = False
        self.recovery_s = float("nan")

    def start_scorer(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "fedtwin.app.cli_stream", "score", "--batch-size", "50"]
        argv += ["--features-stream", "--seconds", "300", "-v"]
        log = open(self.wd / f"scorer-{len(self.scorers)}.log", "wb")  # noqa: SIM115 - closed with the process
        env = {**os.environ, **scorer_env(self.s), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.Popen(argv, env=env, cwd=self.wd, stdout=log, stderr=subprocess.STDOUT)
        self.scorers.append(proc)
        return proc

    def inject(self) -> None:
        """The fault, run on the streamer's thread at ``fault_at_s`` of plant time, once an alert is open (so
        the fault tests that it is neither raised again nor left uncleared); the stream waits for that (at
        most 30 s) and for the kill and restart calls themselves, not for the outage."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.r.xlen(self.s.key("alerts")):
            time.sleep(0.05)
        if self.name == "scorer_kill9":
            self.scorers[-1].send_signal(signal.SIGKILL)
            self.scorers[-1].wait(10)
            self.fault_end = time.monotonic()
            self.start_scorer()
            return
        service: Broker | OwnRedis = self.broker if self.name == "broker_restart" else self.own_redis  # type: ignore[assignment]
        service.kill()

        def restart() -> None:
            time.sleep(self.outage_s)
            service.start()
            self.fault_end = time.monotonic()

        threading.Thread(target=restart, daemon=True).start()

    def run(self) -> ScenarioResult:
        from fedtwin.adapters.kafka_io import ensure_topics
        from fedtwin.adapters.model_store import ModelStore

        if self.own_redis:
            self.own_redis.start()
        self.broker.start()
        try:
            ensure_topics(self.s)
            ModelStore.from_settings(self.s).publish(*self.model)
            streamer = Streamer(self.s, self.signals, self.speedup)
            self._wait_for_scorer(self.start_scorer())
            # After the fault (the scorer that handles the pills is the recovered one), before the end.
            end_s = streamer.n_chunks * self.s.chunk_s
            poison_at = min(self.fault_at_s + (self.outage_s + 1.0) * self.speedup, end_s - 3.0)
            streamer.hooks = [(self.fault_at_s, self.inject), (poison_at, lambda: self._poison(streamer))]
            stop = threading.Event()
            watcher = threading.Thread(target=self._watch, args=(streamer, stop), daemon=True)
            streamer.start()
            watcher.start()
            streamer.join(120)
            return self._finish(streamer, watcher, stop)
        finally:
            for p in self.scorers:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
            self.broker.kill()
            self._cleanup()

    def _wait_for_scorer(self, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
        """Until the scorer has its model (its log says so), plus a group join (half the session timeout)."""
        log = self.wd / f"scorer-{len(self.scorers) - 1}.log"
        deadline = time.monotonic() + timeout_s
        while "scoring with model" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"scorer did not start: read {log}")
            time.sleep(0.1)
        time.sleep(self.s.kafka_session_timeout_ms / 2000 + 0.5)

    def _poison(self, streamer: Streamer) -> None:
        for v in poison_messages(self.s, streamer.t_base):
            streamer.produce(POISON_ASSET, v)
        self.poisoned = True

    def _watch(self, streamer: Streamer, stop: threading.Event) -> None:
        """Time from the end of the fault until the scorer publishes a window of data produced at that end."""
        key = self.s.key("features")
        while not stop.is_set():
            if self.fault_end is not None:
                # (A fault that outlasts the stream: caught up once the last windows are out.)
                target = (
                    min(streamer.data_time(self.fault_end), streamer.end - self.s.window_s) - self.s.window_s
                )
                if _latest_window(self.r, key) >= target:
                    self.recovery_s = time.monotonic() - self.fault_end
                    return
            time.sleep(0.05)

    def _finish(self, streamer: Streamer, watcher: threading.Thread, stop: threading.Event) -> ScenarioResult:
        target_end = streamer.end - 2 * self.s.window_s
        deadline = time.monotonic() + RECOVERY_BOUND_S
        caught_up = False
        while time.monotonic() < deadline and not caught_up:
            caught_up = _latest_window(self.r, self.s.key("features")) >= target_end
            time.sleep(0.1)
        watcher.join(max(0.0, deadline - time.monotonic()))
        stop.set()
        recovery_s = self.recovery_s
        scorer = self.scorers[-1]
        exit_code = None
        if scorer.poll() is None:
            scorer.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                exit_code = scorer.wait(30)
        else:
            exit_code = scorer.returncode
        stats = _last_json(self.wd / f"scorer-{len(self.scorers) - 1}.log")
        source = "kafka" if self.name == "redis_restart" else "redis"
        alerts = [a for a in _read_alerts(self.s, source, self.r) if a["asset"] != POISON_ASSET]
        truth = episodes(SCHEDULE, streamer.t_base)
        c = count_alerts(
            alerts,
            truth,
            window_s=self.s.window_s,
            clear_windows=self.s.alert_clear_windows,
            stream_end=streamer.end,
        )
        recovered = caught_up and recovery_s <= RECOVERY_BOUND_S and exit_code == 0
        return ScenarioResult(
            scenario=self.name,
            recovered=recovered,
            recovery_s=recovery_s,
            alerts_lost=c.lost,
            alerts_duplicated=c.duplicated,
            alerts_false=c.false,
            alerts_expected=c.expected,
            alerts_observed=c.observed,
            poison_messages=POISON_PILLS if self.poisoned else 0,
            dead_letters=int(stats.get("dlq", -1)),
            scorer_exit=exit_code,
            sent=streamer.sent,
            undelivered=streamer.failed,
            detail=c.detail,
            alerts=alerts,
        )

    def _cleanup(self) -> None:
        import redis

        try:
            keys = list(self.r.scan_iter(match=self.s.redis_prefix + "*", count=1000))
            if keys:
                self.r.delete(*keys)
        except (redis.RedisError, OSError):
            pass
        self.r.close()
        if self.own_redis:
            self.own_redis.kill()


def _last_json(log: Path) -> dict[str, Any]:
    """The stats line the score command prints last ({} when it did not get there)."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            with suppress(ValueError):
                return dict(json.loads(line))
    return {}


def summary(results: list[ScenarioResult]) -> str:
    """The issue's summary line over all scenarios."""
    rec = [r.recovery_s for r in results]
    worst = max(rec) if rec and not any(np.isnan(rec)) else float("nan")
    return (
        f"faults_injected={len(results)} alerts_lost={sum(r.alerts_lost for r in results)} "
        f"alerts_duplicated={sum(r.alerts_duplicated for r in results)} scorer_recovered_max_s={worst:.2f} "
        f"poison_messages_tried={sum(r.poison_messages for r in results)} "
        f"scorer_stopped={sum(1 for r in results if r.scorer_exit != 0)}"
    )


# ---------------------------------------------------------------------------------------------- the pipeline
#: Faults of the training pipeline (``--pipeline``): reported on lines of their own, outside the summary.
PIPELINE_SCENARIOS = ("mlflow_down_at_start", "prefect_restart")


@dataclass
class PipelineResult:
    """What a user running ``fedtwin train`` sees when a service fails, and whether a re-run works.

    ``flow_state`` and ``task_runs`` are what the Prefect server recorded for the run ("" and -1 when it
    recorded none); ``message`` is the last line the command printed to stderr on failure.
    """

    scenario: str
    exit_code: int
    seconds: float
    outage_s: float
    flow_state: str
    task_runs: int
    rerun_exit_code: int
    rerun_task_runs: int
    message: str

    def line(self) -> str:
        """``name=value`` line of this scenario (the message quoted last)."""
        d = asdict(self)
        message = d.pop("message")
        body = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())
        return f"{body} message={json.dumps(message)}"


def _train(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``fedtwin train --profile demo`` as a user runs it, its output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fedtwin.app.cli", "train", "--profile", "demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _recorded_runs(settings: Any) -> list[tuple[str, int]]:
    """(state, task runs) of every flow run the Prefect server holds, oldest first."""
    import httpx

    auth_string = settings.prefect_auth_string()
    auth = tuple(auth_string.split(":", 1)) if auth_string else None
    api = settings.prefect_api_url.rstrip("/")
    with httpx.Client(auth=auth, timeout=30) as http:
        runs = http.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_ASC"}).json()
        out = []
        for run in runs:
            n = http.post(f"{api}/task_runs/count", json={"flow_runs": {"id": {"any_": [run["id"]]}}}).json()
            out.append((str((run.get("state") or {}).get("type", "")), int(n)))
    return out


def run_pipeline(restart_after_s: float = 20.0, base: Path | None = None) -> list[PipelineResult]:
    """Both pipeline scenarios against an own Prefect server (started by ``fedtwin.adapters.stack`` with its
    credentials), the shared Redis under an own key prefix and a temporary MLflow store.

    ``mlflow_down_at_start``: ``fedtwin train`` with MLflow's URI pointing at a closed port (the preflight's
    one-line error before any simulation). ``prefect_restart``: kill -9 of the Prefect server
    ``restart_after_s`` into a training run, restarted at once on its port with its database; then a re-run.
    """
    import redis

    from fedtwin.adapters import stack
    from fedtwin.settings import Settings

    results = []
    with _workdir(base) as work:
        tag = uuid.uuid4().hex[:8]
        env = {
            **os.environ,
            "FEDTWIN_PREFECT_API_URL": f"http://127.0.0.1:{stack.free_port()}/api",
            "FEDTWIN_STATE_DIR": str(work / "stack"),
            "FEDTWIN_CREDENTIALS_FILE": str(work / "credentials.json"),
            "FEDTWIN_REDIS_PREFIX": f"fedtwin-chaos-{tag}:",
            "FEDTWIN_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            "FEDTWIN_MLFLOW_EXPERIMENT": f"chaos-{tag}",
            "FEDTWIN_REGISTERED_MODEL": f"chaos-{tag}",
            "FEDTWIN_DATA_DIR": str(work / "data"),
            "FEDTWIN_ARTIFACT_DIR": str(work / "artifacts"),
            "FEDTWIN_SIGNING_KEY": os.environ.get("FEDTWIN_SIGNING_KEY", f"chaos-key-{tag}"),
        }
        settings = Settings(
            prefect_api_url=env["FEDTWIN_PREFECT_API_URL"],
            state_dir=Path(env["FEDTWIN_STATE_DIR"]),
            credentials_file=Path(env["FEDTWIN_CREDENTIALS_FILE"]),
        )
        stack.up(settings, ("prefect",), echo=lambda _: None)
        try:
            down = {**env, "FEDTWIN_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{stack.free_port()}"}
            t = time.monotonic()
            out = subprocess.run(
                [sys.executable, "-m", "fedtwin.app.cli", "train", "--profile", "demo"],
                env=down,
                capture_output=True,
                text=True,
                timeout=600,
            )
            lines = out.stderr.strip().splitlines()
            recorded = _recorded_runs(settings)
            results.append(
                PipelineResult(
                    "mlflow_down_at_start",
                    out.returncode,
                    time.monotonic() - t,
                    0.0,
                    recorded[-1][0] if recorded else "",
                    recorded[-1][1] if recorded else -1,
                    -1,
                    -1,
                    lines[-1] if lines else "",
                )
            )

            t = time.monotonic()
            proc = _train(env, work / "train-restart.log")
            time.sleep(restart_after_s)
            pid = stack._read_pid(settings.state_dir.resolve(), "prefect")
            if pid is None:
                raise RuntimeError("the Prefect server of this benchmark is gone")
            killed = time.monotonic()
            os.killpg(pid, signal.SIGKILL)
            (settings.state_dir.resolve() / "prefect.pid").unlink(missing_ok=True)
            stack.up(settings, ("prefect",), echo=lambda _: None)
            outage = time.monotonic() - killed
            code = proc.wait(timeout=1200)
            seconds = time.monotonic() - t
            rerun = _train(env, work / "train-rerun.log").wait(timeout=1200)
            recorded = _recorded_runs(settings)
            log = (work / "train-restart.log").read_text(errors="replace").strip().splitlines()
            results.append(
                PipelineResult(
                    "prefect_restart",
                    code,
                    seconds,
                    outage,
                    recorded[-2][0] if len(recorded) >= 2 else "",
                    recorded[-2][1] if len(recorded) >= 2 else -1,
                    rerun,
                    recorded[-1][1] if recorded else -1,
                    "" if code == 0 or not log else log[-1],
                )
            )
        finally:
            stack.down(settings, echo=lambda _: None)
            client = redis.Redis.from_url(os.environ.get("FEDTWIN_REDIS_URL", "redis://127.0.0.1:6379/0"))
            keys = list(client.scan_iter(match=env["FEDTWIN_REDIS_PREFIX"] + "*", count=1000))
            if keys:
                client.delete(*keys)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each scenario")
    ap.add_argument("--speedup", type=float, default=2.0, help="plant time / wall time of the stream")
    ap.add_argument("--outage-s", type=float, default=5.0, help="wall seconds a restarted service is away")
    ap.add_argument("--verbose", "-v", action="store_true", help="print what was lost or duplicated")
    ap.add_argument(
        "--pipeline",
        action="store_true",
        help=f"also run the training pipeline's faults ({', '.join(PIPELINE_SCENARIOS)}), one line each",
    )
    ap.add_argument("--pipeline-only", action="store_true", help="run only the pipeline's faults")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.pipeline or args.pipeline_only:
        for pres in run_pipeline():
            print(pres.line(), flush=True)
        if args.pipeline_only:
            return

    from benchmarks.streaming import quick_model

    t = time.perf_counter()
    model = quick_model()
    signals = simulate_plant(SCHEDULE)
    print(f"setup_s={time.perf_counter() - t:.1f}")
    results = []
    for _ in range(args.repeat):
        for name in args.scenarios:
            res = run_scenario(name, model, signals, speedup=args.speedup, outage_s=args.outage_s)
            results.append(res)
            print(res.line(), flush=True)
            if args.verbose:
                for d in res.detail:
                    print(f"  {d}")
    print(summary(results))


if __name__ == "__main__":
    main()
