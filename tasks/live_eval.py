"""Prefect tasks of the live evaluation: read decisions and truth, log the figures to MLflow, report.

Thin I/O around :mod:`fedtwin.training.live_eval` (the join itself is pure and unit-tested there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import mlflow
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from mlflow import MlflowClient
from mlflow.entities import Metric
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from fedtwin.adapters import tracking
from fedtwin.adapters.kafka_io import make_consumer
from fedtwin.adapters.model_store import ModelStore
from fedtwin.adapters.redis_io import redis_client
from fedtwin.data.schema import SchemaError, loads
from fedtwin.errors import FedtwinError
from fedtwin.settings import get_settings
from fedtwin.training.live_eval import HEADLINE, parse_decision


def _redis() -> Any:
    return redis_client(get_settings())


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60, cache_policy=NO_CACHE)
def read_truth(assets: Sequence[str], since_wall_s: float) -> list[bytes]:
    """Truth records of ``assets`` written to the Redis truth stream since wall time ``since_wall_s``."""
    settings = get_settings()
    wanted = set(assets)
    out: list[bytes] = []
    start = f"{int(since_wall_s * 1000)}-0"
    with _redis() as r:
        while True:
            entries = r.xrange(settings.key("truth"), min=start, count=5000)
            for _entry_id, fields in entries:
                raw = fields.get(b"truth")
                if raw is not None and _asset_of(raw) in wanted:
                    out.append(raw)
            if len(entries) < 5000:
                return out
            start = "(" + entries[-1][0].decode()


def _asset_of(raw: bytes) -> str | None:
    try:
        msg = loads(raw)
    except ValueError:
        return None
    return msg.get("asset") if isinstance(msg, dict) else None


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60, cache_policy=NO_CACHE)
def plant_cursors(assets: Sequence[str]) -> dict[str, int]:
    """Next chunk ``seq`` of each asset (the live plant's cursor): how far the plant got."""
    settings = get_settings()
    with _redis() as r:
        raws = r.mget([settings.key("plant", "cursor", a) for a in assets])
    return {a: int(loads(raw)["seq"]) for a, raw in zip(assets, raws, strict=True) if raw is not None}


def _caught_up(last: Mapping[tuple[str, str], int], targets: Mapping[str, int]) -> bool:
    """Every model seen has a decision at or past ``targets[asset]`` on every asset."""
    models = {m for m, _ in last}
    return bool(models) and all(last.get((m, a), -1) >= seq for m in models for a, seq in targets.items())


@task(timeout_seconds=900, cache_policy=NO_CACHE)
def read_decisions(
    assets: Sequence[str], since_t: float, since_wall_s: float, targets: Mapping[str, int], wait_s: float
) -> list[bytes]:
    """Decision records of ``assets`` for plant time >= ``since_t``, read from the decision topic.

    Reads from the first offset written at or after ``since_wall_s`` (from the start when the broker cannot
    say) until every model seen has decided up to ``targets[asset]`` on every asset, or ``wait_s`` passed
    (a model that fell behind is then evaluated on what it decided). Invalid records are skipped (counted).
    """
    settings = get_settings()
    wanted = set(assets)
    topic = settings.decision_topic
    consumer = make_consumer(settings, group=f"fedtwin-live-eval-{time.time_ns()}")
    out: list[bytes] = []
    last: dict[tuple[str, str], int] = {}
    bad = 0
    try:
        meta = consumer.list_topics(topic, timeout=10)
        parts = sorted(meta.topics[topic].partitions) if topic in meta.topics else []
        if not parts:
            raise FedtwinError(f"decision topic {topic!r} does not exist: is a scorer running?")
        start_ms = int(since_wall_s * 1000)
        try:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, start_ms) for p in parts], timeout=10
            )
            tps = [
                TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                for tp in found
            ]
        except KafkaException:
            tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
        consumer.assign(tps)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not _caught_up(last, targets):
            for msg in consumer.consume(5000, timeout=0.5):
                raw = msg.value()
                if msg.error() is not None or raw is None:
                    continue
                try:
                    d = parse_decision(raw)
                except SchemaError:
                    bad += 1
                    continue
                if d.asset in wanted and d.t >= since_t:
                    out.append(raw)
                    key = (d.label, d.asset)
                    last[key] = max(last.get(key, -1), d.seq)
    finally:
        consumer.close()
    log = get_run_logger()
    if not _caught_up(last, targets):
        log.warning("decisions had not caught up after %.0f s: evaluating what was decided", wait_s)
    if bad:
        log.warning("skipped %d invalid decision records", bad)
    log.info("read %d decisions of %d models", len(out), len({m for m, _ in last}))
    return out


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120, cache_policy=NO_CACHE)
def resolve_models(labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each ``<name> v<redis version>``: its registry version, MLflow run and strategy (when known)."""
    settings = get_settings()
    tracking.configure(settings)
    store = ModelStore.from_settings(settings)
    client = MlflowClient()
    out: dict[str, dict[str, Any]] = {}
    for label in labels:
        info: dict[str, Any] = {"label": label}
        try:
            meta = store.load(int(label.rsplit(" v", 1)[1])).meta
            name, reg_version = meta.get("registered_model"), meta.get("registry_version")
            info["strategy"] = meta.get("strategy")
            if name and reg_version:
                mv = client.get_model_version(str(name), str(reg_version))
                info.update(registered_model=name, registry_version=int(reg_version), run_id=mv.run_id)
                info["strategy"] = info["strategy"] or mv.tags.get("strategy")
        except Exception as exc:  # one model we cannot place must not hide the others' figures
            get_run_logger().warning("cannot find the MLflow run of %s: %s", label, exc)
        out[label] = info
    return out


def display_name(info: Mapping[str, Any]) -> str:
    """``<strategy>@v<registry version>`` when known, else the decision label."""
    if info.get("strategy") and info.get("registry_version"):
        return f"{info['strategy']}@v{info['registry_version']}"
    return str(info["label"])


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}


@task(retries=2, retry_delay_seconds=2, timeout_seconds=180, cache_policy=NO_CACHE)
def log_live_eval(
    campaign: str,
    results: Mapping[str, Mapping[str, float]],
    models: Mapping[str, Mapping[str, Any]],
    markdown: str,
) -> str | None:
    """``live_*`` metrics on each model's own MLflow run; a ``live-eval-<campaign>`` run with the comparison
    table, a bar chart and the markdown. Returns the live-eval run id."""
    # local: selects the Agg backend before pyplot loads (not a side effect of importing this module); 0.34 s
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = get_settings()
    tracking.configure(settings)
    client = MlflowClient()
    now = int(time.time() * 1000)
    for label, metrics in results.items():
        run_id = models.get(label, {}).get("run_id")
        if run_id:
            batch = [Metric(f"live_{k}", v, now, 0) for k, v in _finite(metrics).items()]
            client.log_batch(run_id, metrics=batch)
            client.set_tag(run_id, "fedtwin.live_campaign", campaign)
    names = [display_name(models.get(label, {"label": label})) for label in results]
    with mlflow.start_run(run_name=f"live-eval-{campaign}", tags={"fedtwin.kind": "live-eval"}) as run:
        cols = sorted({k for m in results.values() for k in m})
        mlflow.log_table(
            {"model": names, **{c: [float(m.get(c, math.nan)) for m in results.values()] for c in cols}},
            artifact_file="live/comparison.json",
        )
        mlflow.log_text(markdown + "\n", "live/comparison.md")
        fig, axes = plt.subplots(1, len(HEADLINE), figsize=(4.2 * len(HEADLINE), 3.6), squeeze=False)
        for ax, metric in zip(axes[0], HEADLINE, strict=True):
            values = [float(m.get(metric, math.nan)) for m in results.values()]
            ax.bar(names, values, color="tab:blue")
            ax.set_title(f"live {metric}")
            ax.tick_params(axis="x", rotation=45, labelsize=8)
        fig.suptitle(f"live evaluation on campaign {campaign}")
        fig.tight_layout()
        mlflow.log_figure(fig, "live/comparison.png")
        plt.close(fig)
        mlflow.set_tag(tracking.DESCRIPTION_TAG, markdown)
        for name, metrics in zip(names, results.values(), strict=True):
            safe = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)
            mlflow.log_metrics({f"{safe}.live_{k}": v for k, v in _finite(metrics).items() if k in HEADLINE})
        return str(run.info.run_id)


@task
def publish_live_report(campaign: str, markdown: str) -> str:
    """The comparison as the flow run's markdown artifact (key ``fedtwin-live-eval``)."""
    create_markdown_artifact(markdown, key="fedtwin-live-eval", description=f"live evaluation: {campaign}")
    return markdown
