"""`fedtwin model status` lines for each state of registry and serving, by hand."""

from __future__ import annotations

from fedtwin.streaming.serving import FIX_NO_MODEL, ModelStatus


def test_agreeing_champion_and_serving() -> None:
    st = ModelStatus(champion=3, serving=7, serving_registry_version=3)
    assert st.agree is True
    assert st.lines() == ["MLflow champion: v3", "serving: Redis v7 (registry v3)", "status: agree"]


def test_redis_lost_its_model_says_how_to_fix_it() -> None:
    st = ModelStatus(champion=3, serving=None, serving_registry_version=None)
    assert st.agree is False
    assert st.lines() == ["MLflow champion: v3", "serving: nothing", f"status: DISAGREE: {FIX_NO_MODEL}"]
    assert "fedtwin model publish" in FIX_NO_MODEL


def test_serving_an_older_registry_version_disagrees() -> None:
    assert ModelStatus(champion=4, serving=9, serving_registry_version=3).agree is False


def test_an_invalid_pointer_is_named() -> None:
    st = ModelStatus(champion=None, serving=None, serving_registry_version=None, problem="bad signature")
    assert st.lines()[1:] == ["serving: nothing (bad signature)", "status: no champion to serve"]
