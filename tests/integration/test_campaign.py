"""A scripted campaign on the real broker, Redis and Prefect test API: a champion and a shadow score the
stream, the truth says where the fault took effect, and the live evaluation covers both models."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedtwin.settings import Settings, get_settings
from tests.integration._broker import broker, model_record, settings_env, stream_settings

__all__ = ["broker", "model_record", "stream_settings"]  # fixtures imported for pytest

pytestmark = pytest.mark.integration

CAMPAIGN = """
name: tiny
assets: 2
asset_prefix: tiny
seed: 3
duration_s: 8
speedup: 0
events:
  - {at: 3, asset: tiny-1, fault: leak, severity: 1.0}
  - {at: 2, asset: tiny-2, operating_point: {speed_rpm: 1000}}
"""


@pytest.fixture()
def campaign_env(stream_settings: Settings, model_record: tuple) -> Iterator[Settings]:
    """The stream settings as FEDTWIN_* variables (flows read get_settings()), one shadow slot ``s1``
    holding the same model as the champion, and a decision topic of the test's own."""
    from fedtwin.adapters.kafka_io import ensure_topics
    from fedtwin.adapters.model_store import ModelStore

    env = {
        **settings_env(stream_settings),
        "FEDTWIN_DECISION_TOPIC": stream_settings.sensor_topic + ".decisions",
        "FEDTWIN_SHADOW_MODELS": json.dumps(["s1"]),
        "FEDTWIN_LIVE_EVAL_TIMEOUT_S": "40",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    s = get_settings()
    ensure_topics(s, [s.decision_topic])
    store = ModelStore.from_settings(s)
    store.promote(store.put(*model_record), slot="s1")
    yield s
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


def test_campaign_truth_and_live_evaluation_of_champion_and_shadow(
    campaign_env: Settings, prefect_api: None, tmp_path: Path
) -> None:
    from fedtwin.streaming.scorer import Scorer
    from fedtwin.training.live_eval import parse_truth
    from flows.campaign import campaign_flow
    from tasks.live_eval import read_truth

    s = campaign_env
    scorer = Scorer(s)
    stop = threading.Event()
    worker = threading.Thread(target=scorer.run, kwargs={"stop_event": stop, "model_wait_s": 10}, daemon=True)
    worker.start()
    path = tmp_path / "tiny.yaml"
    path.write_text(CAMPAIGN)
    try:
        out = campaign_flow(str(path), log_to_mlflow=False)
    finally:
        stop.set()
        worker.join(30)
    assert out["events_applied"] == 2 and out["plant"]["chunks"] == 2 * 80
    # The leak took effect exactly 3 s (30 chunks) after the campaign's first chunk.
    truth = [parse_truth(r) for r in read_truth.fn(["tiny-1"], out["since_wall_s"])]
    start, onset = truth[0], [t for t in truth if t.active == {"leak"}]
    assert len(onset) == 1 and onset[0].seq - start.seq == 30
    assert onset[0].t - start.t == pytest.approx(3.0)
    results = out["live"]["results"]
    assert len(results) == 2, results  # the champion and the shadow, both on every window
    champ = next(m for m in results.values() if m["is_champion"])
    shadow = next(m for m in results.values() if not m["is_champion"])
    # 8 windows per asset; the window holding the onset settles: 15 windows labelled, one onset.
    assert champ["windows"] == 15 and champ["settling_windows"] == 1 and champ["onsets"] == 1
    # The same model in both roles: the same decisions, so the same figures.
    for key in ("exact_match", "windows", "detection_delay_p50_s", "false_alarms", "recall_leak"):
        assert champ[key] == pytest.approx(shadow[key], nan_ok=True)
    assert champ["missed_onsets"] == 0 and 0 < champ["detection_delay_p50_s"] <= 2.0
    assert "Live evaluation: campaign tiny" in out["live"]["markdown"]
