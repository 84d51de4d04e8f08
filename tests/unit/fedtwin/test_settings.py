from pathlib import Path

import pytest
from pydantic import ValidationError

from fedtwin.settings import Settings


@pytest.fixture(autouse=True)
def _no_fedtwin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults are what these tests check: hide any FEDTWIN_* set by the shell or another fixture."""
    import os

    for name in [k for k in os.environ if k.startswith("FEDTWIN_")]:
        monkeypatch.delenv(name)


def test_env_overrides_yaml_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("sensor_topic: from-yaml\nalert_topic: yaml-alerts\n")
    monkeypatch.setenv("FEDTWIN_CONFIG", str(cfg))
    monkeypatch.setenv("FEDTWIN_SENSOR_TOPIC", "from-env")
    s = Settings()
    assert s.sensor_topic == "from-env"
    assert s.alert_topic == "yaml-alerts"
    assert s.dlq_topic == "fedtwin.sensors.dlq"


def test_bad_values_are_rejected_with_the_field_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDTWIN_KAFKA_BOOTSTRAP_SERVERS", "no-port")
    with pytest.raises(ValidationError, match="kafka_bootstrap_servers"):
        Settings()


def test_unknown_yaml_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("sensor_topik: typo\n")
    monkeypatch.setenv("FEDTWIN_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match="sensor_topik"):
        Settings()


def test_missing_explicit_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDTWIN_CONFIG", "/nonexistent/fedtwin.yaml")
    with pytest.raises(ValueError, match="does not exist"):
        Settings()


def test_shown_masks_secrets() -> None:
    s = Settings(signing_key="top-secret")
    shown = s.shown()
    assert shown["signing_key"] == "********"
    assert "top-secret" not in str(shown)
    assert s.key("model", "current") == "fedtwin:model:current"
