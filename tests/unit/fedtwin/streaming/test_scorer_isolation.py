"""Scorer batch path without services: a poison message costs only itself, non-finite windows never count
as healthy, replayed raises are not emitted twice, dead letters stay bounded, model pointers parse
strictly."""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import numpy as np
import pytest
from confluent_kafka import Message

from fedtwin.adapters.outages import ServiceLink
from fedtwin.data.schema import SIGNALS, encode_chunk
from fedtwin.settings import Settings
from fedtwin.streaming.scorer import MAX_DLQ_VALUE_BYTES, ScoredBatch, Scorer, _as_version
from fedtwin.streaming.scoring import FAULTS, ActiveModel

FS = 100.0  # 10 samples per 0.1 s window; every chunk below is one window
# Current levels (inside the physical range the decoder enforces) that make the features raise / give NaN.
POISON, NAN_MARK = 66.5, 77.5  # exact in binary, so their window means are too


def features(windows: dict[str, np.ndarray], fs: float) -> np.ndarray:
    """Per-signal window means; a window whose current is POISON raises (like bincount on a NaN index), one
    whose current is NAN_MARK gets NaN features (like a flat-lined speed)."""
    cur = windows["current"].mean(axis=1)
    if (cur == POISON).any():
        raise ValueError("'list' argument must have no negative elements")
    X = np.stack([windows[s].mean(axis=1) for s in SIGNALS], axis=1)
    X[cur == NAN_MARK] = np.nan
    return X


class CountingFeatures:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, windows: dict[str, np.ndarray], fs: float) -> np.ndarray:
        self.calls += 1
        return features(windows, fs)


class MeanModel:
    """Fault j (leak, blocked_inlet, bearing) has p = 0.9 when the mean of signal j exceeds 0.5, else 0.1.
    NaN features give p = 0.1 (finite): only the features tell that the window is not usable."""

    fault_names = FAULTS
    thresholds_ = np.array([0.5, 0.5, 0.5])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.where(X[:, :3] > 0.5, 0.9, 0.1)


H, LEAK = (0.0, 0.0, 0.0), (1.0, 0.0, 0.0)


def scorer(**kw: object) -> tuple[Scorer, CountingFeatures]:
    s = Settings(sample_rate_hz=FS, window_s=0.1, alert_raise_windows=2, alert_clear_windows=3)
    feats = CountingFeatures()
    sc = Scorer(s, features=feats, **kw)  # type: ignore[arg-type]
    sc.engine.set_model(ActiveModel.wrap(MeanModel(), "m", 1))
    return sc, feats


def chunk(asset: str, seq: int, level: tuple[float, float, float] = H, current: float = 0.0) -> bytes:
    sig = {s: np.full(10, level[j] if j < 3 else current) for j, s in enumerate(SIGNALS)}
    return encode_chunk(asset, seq, 1000.0 + seq * 0.1, FS, sig)


def messages(values: list[tuple[str, bytes | None]], partition: int = 0) -> list[Message]:
    return [
        Message(
            topic="sensors",
            partition=partition,
            offset=i,
            key=key.encode(),
            value=v,
            timestamp=(1, 1_700_000_000_000),
        )
        for i, (key, v) in enumerate(values)
    ]


def run(sc: Scorer, values: list[tuple[str, bytes | None]]) -> tuple[ScoredBatch, list[tuple[Message, str]]]:
    batch = sc.decode_batch(messages(values))
    out = sc.score_batch(batch)
    return out, batch.dlq


def test_a_poison_window_costs_its_message_and_the_batch_goes_on() -> None:
    sc, feats = scorer()
    out, dlq = run(
        sc,
        [
            ("a", chunk("a", 0)),
            ("b", chunk("b", 0, current=POISON)),
            ("a", chunk("a", 1, LEAK)),
            ("b", chunk("b", 1)),
            ("a", chunk("a", 2, LEAK)),
        ],
    )
    assert [(m.offset(), m.key()) for m, _ in dlq] == [(1, b"b")]
    assert "ValueError" in dlq[0][1] and "negative elements" in dlq[0][1]
    assert out.windows == 4 and sc.engine.stats.windows == 4  # the failed vectorised try is not counted
    assert [(a["asset"], a["kind"], a["faults"]) for a in out.alerts] == [("a", "raise", ["leak"])]
    assert sc.stats.isolated_batches == 1 and sc.stats.scoring_failures == 1
    assert feats.calls == 1 + 5  # one vectorised call that raised, then one per message
    assert set(out.snapshots) == {("sensors", 0)}  # state of the partition still saved


def test_a_clean_batch_is_scored_in_one_vectorised_call() -> None:
    sc, feats = scorer()
    out, dlq = run(sc, [("a", chunk("a", k, LEAK)) for k in range(4)])
    assert dlq == [] and out.windows == 4 and feats.calls == 1 and sc.stats.isolated_batches == 0
    assert [a["kind"] for a in out.alerts] == ["raise"]


def test_state_that_cannot_be_serialised_sends_its_message_to_the_dlq() -> None:
    pytest.importorskip("orjson", reason="the standard json module serialises integers of any size")
    sc, _ = scorer()
    # The engine stores seq + 1, which no 64-bit JSON integer holds (a strict decoder refuses it up front).
    huge = json.dumps({**json.loads(chunk("b", 0)), "seq": 2**64 - 1}).encode()
    out, dlq = run(sc, [("a", chunk("a", 0)), ("b", huge), ("a", chunk("a", 1))])
    assert [m.offset() for m, _ in dlq] == [1]
    assert out.windows == 2 and "b" not in sc.engine.assets
    assert json.loads(out.snapshots[("sensors", 0)])["offset"] == 3


def test_undecodable_and_mismatched_messages_go_to_the_dlq_with_reasons() -> None:
    sc, _ = scorer()
    out, dlq = run(sc, [("a", b"{oops"), ("a", None), ("x", chunk("a", 0)), ("a", chunk("a", 0))])
    reasons = [r for _, r in dlq]
    assert len(reasons) == 3 and out.windows == 1
    assert "invalid JSON" in reasons[0] and "null value" in reasons[1] and "differs from asset" in reasons[2]


def test_non_finite_windows_never_count_as_healthy_nor_reach_the_feature_stream() -> None:
    sc, _ = scorer(publish_features=True)
    stream = [chunk("a", 0, LEAK), chunk("a", 1, LEAK)]  # raise after 2 windows
    stream += [chunk("a", k, H, current=NAN_MARK) for k in (2, 3, 4)]  # would clear if read as healthy
    out, dlq = run(sc, [("a", v) for v in stream])
    assert (
        dlq == []
        and [a["kind"] for a in out.alerts] == ["raise"]
        and sc.engine.active_faults("a") == ["leak"]
    )
    assert out.invalid == 3 and sc.engine.stats.invalid_windows == 3
    assert len(out.feature_rows) == 2 and all(b"null" not in r["x"] for r in out.feature_rows)
    out, _ = run(sc, [("a", chunk("a", k)) for k in (5, 6, 7)])
    assert [(a["kind"], a["faults"]) for a in out.alerts] == [("clear", ["leak"])]


def test_an_asset_met_with_an_open_alert_does_not_raise_it_again_and_still_clears_it() -> None:
    sc, _ = scorer()
    sc._open["a"] = {"leak"}  # as read from Redis after a restart (the broker lost the group's offsets)
    out, _ = run(sc, [("a", chunk("a", k, LEAK)) for k in range(40, 43)])
    assert out.alerts == [] and sc.engine.stats.gaps == 0
    out, _ = run(sc, [("a", chunk("a", k)) for k in range(43, 46)])
    assert [(a["kind"], a["faults"]) for a in out.alerts] == [("clear", ["leak"])]
    assert sc._open["a"] == set() and out.open_changed == {"a"}


def test_a_raise_of_a_fault_already_open_is_suppressed() -> None:
    sc, _ = scorer()
    run(sc, [("a", chunk("a", 0))])  # the engine knows "a" (a restored snapshot) ...
    sc._open["a"] = {"leak"}  # ... but the alert is open in Redis (raised before a crash)
    out, _ = run(sc, [("a", chunk("a", 1, LEAK)), ("a", chunk("a", 2, LEAK))])
    assert out.alerts == [] and out.payloads == [] and sc.stats.suppressed_alerts == 1


def test_a_raise_keeps_only_the_faults_not_yet_open() -> None:
    sc, _ = scorer()
    run(sc, [("a", chunk("a", 0))])
    sc._open["a"] = {"leak"}
    out, _ = run(sc, [("a", chunk("a", 1, (1.0, 1.0, 0.0))), ("a", chunk("a", 2, (1.0, 1.0, 0.0)))])
    assert [a["faults"] for a in out.alerts] == [["blocked_inlet"]]
    assert json.loads(out.payloads[0][1])["faults"] == ["blocked_inlet"]
    assert sc._open["a"] == {"leak", "blocked_inlet"}


def test_dead_letters_are_bounded_and_keep_size_and_sha256() -> None:
    sc, _ = scorer(dlq_max_value_bytes=65536)
    raw = b"{" + b"x" * 899_999  # an invalid message of 900 KB
    batch = sc.decode_batch(
        [Message(topic="sensors", partition=2, offset=7, key=b"k" * 5000, value=raw, timestamp=(0, 0))]
    )
    [(topic, value, key, headers)] = sc.kafka_records(ScoredBatch(), batch.dlq)
    rec = json.loads(value)
    assert topic == sc.settings.dlq_topic and len(value) < 100_000
    assert rec["value_size"] == 900_000 and rec["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert rec["value_truncated"] is True and base64.b64decode(rec["value_b64"]) == raw[:65536]
    assert key is not None and len(key) == 1000 and len(rec["key"]) == 1000
    assert (rec["topic"], rec["partition"], rec["offset"]) == ("sensors", 2, 7)
    assert dict(headers or [])["reason"].decode() == rec["reason"] and sc.stats.dlq_truncated == 1


def test_the_largest_allowed_dead_letter_fits_kafkas_message_limit() -> None:
    sc, _ = scorer(dlq_max_value_bytes=MAX_DLQ_VALUE_BYTES)
    raw = "é".encode() * 800_000  # 1.6 MB, and a reason full of escaped characters
    m = Message(topic="sensors", partition=0, offset=0, key="é".encode() * 3000, value=raw, timestamp=(0, 0))
    [(_, value, key, headers)] = sc.kafka_records(ScoredBatch(), [(m, "\x00" * 5000)])
    size = len(value) + len(key or b"") + sum(len(k) + len(v) for k, v in headers or [])
    assert size < 1_000_000
    with pytest.raises(ValueError, match="dlq_max_value_bytes"):
        scorer(dlq_max_value_bytes=MAX_DLQ_VALUE_BYTES + 1)


@pytest.mark.parametrize("raw", ["abc", b"", "-1", "0", "1.5", [], {}, 1.5, True, None])
def test_a_garbage_model_pointer_is_a_value_error(raw: object) -> None:
    with pytest.raises(ValueError, match="version"):
        _as_version(raw)


@pytest.mark.parametrize(("raw", "version"), [("3", 3), (b"12", 12), (7, 7)])
def test_a_model_pointer_is_a_positive_version(raw: object, version: int) -> None:
    assert _as_version(raw) == version


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = ServiceLink("Redis", base_delay_s=0.1, max_delay_s=0.5)
    with caplog.at_level(logging.WARNING, logger="fedtwin.streaming.scorer"):
        delays = [link.failed("writing", ConnectionError("refused")) for _ in range(5)]
        link.ok()
        link.ok()
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and link.outages == 1
    assert msgs[0].startswith("Redis unavailable while writing (refused)") and msgs[1].startswith(
        "Redis is back"
    )
