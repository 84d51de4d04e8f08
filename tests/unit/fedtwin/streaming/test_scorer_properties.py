"""Property: no batch of messages, valid or hostile, makes the scorer's batch path raise, with the real
feature extractor. Every message is either scored or dead-lettered, every dead letter fits Kafka's message
limit, no published feature row holds a NaN, and the partition state stays serialisable."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from confluent_kafka import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedtwin.data.features import extract_features
from fedtwin.data.schema import SIGNALS, dumps
from fedtwin.settings import Settings
from fedtwin.streaming.scorer import Scorer
from fedtwin.streaming.scoring import FAULTS, ActiveModel

FS = 1000.0
WINDOW_S = 0.05  # 50 samples: windows complete within a few chunks


class LinearModel:
    """Logistic of fixed feature weights: finite for finite features, NaN for NaN (like the real model)."""

    fault_names = FAULTS
    thresholds_ = np.array([0.5, 0.5, 0.5])

    def __init__(self, n_features: int) -> None:
        self.w = np.random.default_rng(0).normal(0, 1e-3, (n_features, len(FAULTS)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return 1.0 / (1.0 + np.exp(-np.clip(X @ self.w, -50, 50)))


#: Plausible readings most of the time, the extremes a careless producer sends some of the time.
sample = st.one_of(
    st.floats(-1.0, 40.0),
    st.floats(1400.0, 1600.0),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 1e-300, 2**53 + 1.0]),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def batches(draw: Any) -> list[tuple[str, bytes]]:
    """Messages: mostly continuing streams of 3 assets, with hostile headers and values mixed in."""
    next_seq = {"p1": 0, "p2": 0, "p3": 0}
    out = []
    for _ in range(draw(st.integers(1, 12))):
        asset = draw(st.sampled_from(sorted(next_seq)))
        n = draw(st.integers(1, 60))
        seq = next_seq[asset] if draw(st.booleans()) else draw(st.integers(0, 2**64 - 1))
        next_seq[asset] = min(seq + 1, 2**64 - 1)
        flat = draw(st.booleans())
        values = {
            s: [draw(sample)] * n if flat else draw(st.lists(sample, min_size=n, max_size=n)) for s in SIGNALS
        }
        msg = {
            "v": 1,
            "asset": asset,
            "seq": seq,
            "t0": draw(st.one_of(st.just(1_700_000_000.0 + seq * 0.001), st.floats(-1e308, 1e308))),
            "fs": draw(st.sampled_from([FS, FS, FS, 500.0, 1e-300, 1e308])),
            **values,
        }
        key = asset if draw(st.integers(0, 9)) else "other"
        out.append((key, json.dumps(msg).encode()))
    return out


def make_scorer() -> Scorer:
    s = Settings(sample_rate_hz=FS, window_s=WINDOW_S, alert_raise_windows=1, alert_clear_windows=1)
    sc = Scorer(s, features=extract_features, publish_features=True)
    n_features = extract_features({k: np.ones((1, 50)) for k in SIGNALS}, FS).shape[1]
    sc.engine.set_model(ActiveModel.wrap(LinearModel(n_features), "m", 1))
    return sc


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(batches=st.lists(batches(), min_size=1, max_size=3))
def test_no_batch_makes_the_scorer_raise(batches: list[list[tuple[str, bytes]]]) -> None:
    sc = make_scorer()
    offset = 0
    with np.errstate(all="ignore"):
        for values in batches:
            msgs = [
                Message(topic="t", partition=0, offset=offset + i, key=k.encode(), value=v, timestamp=(0, 0))
                for i, (k, v) in enumerate(values)
            ]
            offset += len(values)
            batch = sc.decode_batch(msgs)
            out = sc.score_batch(batch)
            records = sc.kafka_records(out, batch.dlq)
            dead = {m.offset() for m, _ in batch.dlq}
            assert len(dead) == len(batch.dlq)  # a message is dead-lettered at most once
            assert all(len(value) < 1_000_000 for _, value, _, _ in records)
            assert all(b"null" not in row["x"] for row in out.feature_rows)
            assert json.loads(out.snapshots[("t", 0)])["offset"] == offset
            dumps(sc.engine.snapshot())
