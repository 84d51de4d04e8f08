"""Shadow models in the scoring engine and the scorer's batch path: every model decides on every window of
the same feature matrix, only the champion alerts, a failing shadow costs only its own decisions; the
decision record's strict decoding; shadow settings; shadow pointers sign their slot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedtwin.adapters.model_store import sign_pointer, verify_pointer
from fedtwin.data.schema import SchemaError, decode_decision, encode_decision
from fedtwin.errors import InvalidModel
from fedtwin.settings import Settings
from fedtwin.streaming.scoring import ActiveModel, ScoringEngine
from tests.unit.fedtwin.streaming.test_scoring import BOTH, LEAK, FakeModel, H, chunk, mean_features, stream


class AlwaysLeak(FakeModel):
    """A shadow that finds a leak in every window (p = 0.95) and nothing else."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return np.tile([0.95, 0.05, 0.05], (len(X), 1))


class Broken(FakeModel):
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise RuntimeError("shape mismatch in layer 2")


class Narrow(FakeModel):
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.full((len(X), 2), 0.1)


class CountingFeatures:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, windows: dict[str, np.ndarray], fs: float) -> np.ndarray:
        self.calls += 1
        return mean_features(windows, fs)


def engine_with(*shadows: tuple[str, FakeModel]) -> tuple[ScoringEngine, FakeModel, CountingFeatures]:
    champion = FakeModel()
    feats = CountingFeatures()
    eng = ScoringEngine(
        feats, ActiveModel.wrap(champion, "champ", 3), window_s=1.0, fs=100.0, clock=lambda: 42.0
    )
    for slot, model in shadows:
        eng.set_shadow(slot, ActiveModel.wrap(model, slot, 7))
    return eng, champion, feats


def test_every_window_is_decided_by_every_model_from_one_feature_matrix() -> None:
    shadow = AlwaysLeak()
    eng, champion, feats = engine_with(("challenger", shadow))
    res = eng.process(stream("a", [H, LEAK, BOTH]))
    assert feats.calls == 1 and champion.calls == [3] and shadow.calls == [3]  # one vectorised pass each
    champ = [d for d in res.decisions if d["role"] == "champion"]
    shad = [d for d in res.decisions if d["role"] == "shadow"]
    assert [d["faults"] for d in champ] == [[], ["leak"], ["leak", "blocked_inlet"]]
    assert [d["faults"] for d in shad] == [["leak"]] * 3
    assert {(d["model"], d["version"]) for d in champ} == {("champ", 3)}
    assert {(d["model"], d["version"]) for d in shad} == {("challenger", 7)}
    # seq/t are those of the chunk that completed each window (chunks 9, 19, 29 of 10 per window).
    for rows in (champ, shad):
        assert [d["seq"] for d in rows] == [9, 19, 29]
        assert [d["t"] for d in rows] == pytest.approx([1000.9, 1001.9, 1002.9])
        assert {d["ts"] for d in rows} == {42.0} and {d["asset"] for d in rows} == {"a"}
    assert shad[0]["scores"] == {"leak": 0.95, "blocked_inlet": 0.05, "bearing": 0.05}
    for d in res.decisions:
        assert decode_decision(encode_decision(d)) == d


def test_shadow_decisions_never_raise_or_clear_an_alert() -> None:
    eng, _, _ = engine_with(("challenger", AlwaysLeak()), ("other", AlwaysLeak()))
    res = eng.process(stream("a", [H] * 6))
    assert res.alerts == [] and eng.active_faults("a") == []  # the shadows say leak 6 times: no alert
    assert sum(d["role"] == "shadow" and d["faults"] == ["leak"] for d in res.decisions) == 12
    res = eng.process(stream("a", [LEAK, LEAK, H, H, H], start_seq=60))
    kinds = [(a["kind"], a["faults"], a["model_name"]) for a in res.alerts]
    assert kinds == [("raise", ["leak"], "champ"), ("clear", ["leak"], "champ")]  # the champion's only


def test_without_shadows_only_the_champion_decides() -> None:
    eng, _, _ = engine_with()
    res = eng.process(stream("a", [H, H]))
    assert [d["role"] for d in res.decisions] == ["champion", "champion"] and res.model_errors == {}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(Broken(), "RuntimeError: shape mismatch in layer 2"), (Narrow(), "ValueError: model returned shape")],
)
def test_a_shadow_failing_at_predict_costs_only_its_own_decisions(bad: FakeModel, reason: str) -> None:
    eng, _, _ = engine_with(("broken", bad), ("good", AlwaysLeak()))
    res = eng.process(stream("a", [LEAK, LEAK]))
    assert res.model_errors.keys() == {"broken"} and res.model_errors["broken"].startswith(reason)
    assert [a["faults"] for a in res.alerts] == [["leak"]]  # the champion still raised
    assert sorted({d["model"] for d in res.decisions}) == ["champ", "good"]
    assert len(res.decisions) == 4


def test_a_removed_shadow_stops_deciding_and_invalid_windows_have_no_decisions() -> None:
    eng, _, _ = engine_with(("challenger", AlwaysLeak()))
    eng.set_shadow("challenger", None)
    res = eng.process(stream("a", [H]))
    assert [d["model"] for d in res.decisions] == ["champ"]
    nan = chunk("b", 0, n=100)
    nan.signals["flow"][:] = np.nan
    eng.set_shadow("challenger", ActiveModel.wrap(AlwaysLeak(), "challenger", 7))
    res = eng.process([nan])
    assert res.invalid.tolist() == [True] and res.decisions == []


def decision(**over: object) -> bytes:
    d = {
        "v": 1,
        "asset": "pump-1",
        "model": "challenger",
        "version": 4,
        "role": "shadow",
        "seq": 19,
        "t": 1.5,
        "ts": 2.0,
        "faults": ["leak"],
        "scores": {"leak": 0.9},
    }
    d.update(over)
    return json.dumps({k: v for k, v in d.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "invalid JSON"),
        (decision(v=2), "not a v1 decision record"),
        (decision(v=True), "not a v1 decision record"),
        (decision(extra=1), "decision fields"),
        (decision(scores=...), "decision fields"),
        (decision(role="champ"), "decision role 'champ'"),
        (decision(version="4"), "decision record has a field of the wrong type"),
        (decision(seq=1.0), "decision record has a field of the wrong type"),
        (decision(faults="leak"), "decision record has a field of the wrong type"),
        (decision(scores={"leak": "high"}), "decision record has a field of the wrong type"),
    ],
)
def test_decision_records_decode_strictly(raw: bytes, reason: str) -> None:
    with pytest.raises(SchemaError) as exc:
        decode_decision(raw)
    assert str(exc.value).startswith(reason)


def test_a_valid_decision_decodes() -> None:
    assert decode_decision(decision(t=3, faults=[]))["t"] == 3


def test_shadow_settings_are_validated_at_load() -> None:
    s = Settings(shadow_models=["challenger", "fedprox=7"])
    assert s.shadow_sources() == {"challenger": None, "fedprox": 7}
    assert s.decision_topic == "fedtwin.decisions"
    for bad, text in [
        (["a", "a"], "shadow slot 'a' is named twice"),
        (["Bad"], "shadow slot 'Bad': the name must be"),
        (["champion"], "shadow slot 'champion'"),
        (["a=0"], "the version after '=' must be a positive integer"),
        (["a", "b", "c"], "shadow_models names 3 slots, more than max_shadow_models=2"),
    ]:
        with pytest.raises(ValueError, match=text):
            Settings(shadow_models=bad)
    assert Settings(shadow_models=["a", "b", "c"], max_shadow_models=3).shadow_sources() == dict.fromkeys(
        "abc"
    )


def test_decision_topic_is_created_with_the_others() -> None:
    from fedtwin.adapters.kafka_io import all_topics

    assert Settings(decision_topic="d.x").decision_topic in all_topics(Settings(decision_topic="d.x"))


KEY = b"k" * 32


def test_a_shadow_pointer_signs_its_slot() -> None:
    raw = json.dumps(sign_pointer(5, 2, rollback=False, set_at=1.0, key=KEY, slot="challenger"))
    ptr = verify_pointer(raw, KEY, "challenger")
    assert (ptr.version, ptr.generation, ptr.slot) == (5, 2, "challenger")
    with pytest.raises(InvalidModel, match="the pointer is for shadow slot 'challenger', not the serving"):
        verify_pointer(raw, KEY)  # a shadow pointer copied over the serving one
    with pytest.raises(InvalidModel, match="is for shadow slot 'challenger', not shadow slot 'other'"):
        verify_pointer(raw, KEY, "other")
    serving = json.dumps(sign_pointer(5, 2, rollback=False, set_at=1.0, key=KEY))
    with pytest.raises(InvalidModel, match="is for the serving model, not shadow slot 'challenger'"):
        verify_pointer(serving, KEY, "challenger")
    renamed = json.loads(raw) | {"slot": "other"}  # the slot is inside the signature
    with pytest.raises(InvalidModel, match="signature does not verify"):
        verify_pointer(json.dumps(renamed), KEY, "other")


def test_the_scorer_produces_every_models_decisions_and_only_the_champions_alerts() -> None:
    from fedtwin.data.schema import decode_alert
    from tests.unit.fedtwin.streaming.test_scorer_isolation import LEAK as LEAK_LEVEL
    from tests.unit.fedtwin.streaming.test_scorer_isolation import chunk as chunk_msg
    from tests.unit.fedtwin.streaming.test_scorer_isolation import run, scorer

    sc, _ = scorer()
    sc.engine.set_shadow("challenger", ActiveModel.wrap(AlwaysLeak(), "challenger", 9))
    sc.engine.set_shadow("broken", ActiveModel.wrap(Broken(), "broken", 10))
    out, dlq = run(sc, [("p1", chunk_msg("p1", k)) for k in range(3)])
    assert dlq == [] and out.alerts == []  # the shadow sees a leak in all 3 windows; no alert
    records = sc.kafka_records(out, dlq)
    decisions = [decode_decision(v) for t, v, k, _ in records if t == sc.settings.decision_topic]
    assert [(d["model"], d["seq"], d["faults"]) for d in decisions] == [
        *(("m", k, []) for k in range(3)),
        *(("challenger", k, ["leak"]) for k in range(3)),
    ]
    assert {k for t, _, k, _ in records if t == sc.settings.decision_topic} == {b"p1"}
    assert sc.shadows.predict_failures == 1  # the broken shadow's batch, counted and logged once
    out, _ = run(sc, [("p1", chunk_msg("p1", k, LEAK_LEVEL)) for k in range(3, 5)])
    alerts = [decode_alert(v) for t, v, _, _ in sc.kafka_records(out, []) if t == sc.settings.alert_topic]
    assert [(a["kind"], a["model_name"]) for a in alerts] == [("raise", "m")]


def test_a_batch_scored_message_by_message_counts_a_failing_shadow_once() -> None:
    from tests.unit.fedtwin.streaming.test_scorer_isolation import POISON, run, scorer
    from tests.unit.fedtwin.streaming.test_scorer_isolation import chunk as chunk_msg

    sc, _ = scorer()
    sc.engine.set_shadow("broken", ActiveModel.wrap(Broken(), "broken", 10))
    sc.engine.set_shadow("good", ActiveModel.wrap(AlwaysLeak(), "good", 11))
    values = [
        ("p1", chunk_msg("p1", 0)),
        ("p1", chunk_msg("p1", 1, current=POISON)),
        ("p1", chunk_msg("p1", 2)),
    ]
    out, dlq = run(sc, values)
    assert sc.stats.isolated_batches == 1 and len(dlq) == 1  # the poison window cost its message only
    assert sc.shadows.predict_failures == 1 and out.model_errors.keys() == {"broken"}
    assert sorted((decode_decision(v)["model"], decode_decision(v)["seq"]) for _, v in out.decisions) == [
        ("good", 0),
        ("good", 2),
        ("m", 0),
        ("m", 2),
    ]
