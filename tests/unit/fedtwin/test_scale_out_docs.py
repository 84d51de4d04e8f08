"""The README's multi-machine fedtwin.yaml example is a valid configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedtwin.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"
MARKER = "# fedtwin.yaml on a scorer machine"


def _example() -> str:
    text = README.read_text()
    start = text.index(MARKER)
    return text[start : text.index("```", start)]


def test_the_readme_scorer_yaml_loads_through_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("FEDTWIN_")]:
        monkeypatch.delenv(name)
    cfg = tmp_path / "fedtwin.yaml"
    cfg.write_text(_example())
    monkeypatch.setenv("FEDTWIN_CONFIG", str(cfg))
    monkeypatch.setenv("FEDTWIN_KAFKA_SASL_PASSWORD", "from-the-environment")
    s = Settings()
    assert s.kafka_bootstrap_servers.count(",") == 2 and s.kafka_security_protocol == "SASL_SSL"
    assert s.kafka_assignment_strategy == "cooperative-sticky" and s.topic_partitions == 64
    assert s.redis_url.startswith("rediss://") and s.prefect_api_url == "http://ops.example:4200/api"
    assert s.service_database_url("prefect") is None  # a scorer machine needs no database
