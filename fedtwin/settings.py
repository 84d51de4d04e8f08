"""The one configuration object of fedtwin: ``FEDTWIN_*`` environment variables over an optional YAML file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

#: Environment variable naming an optional YAML file of settings (keys are the field names).
CONFIG_FILE_ENV = "FEDTWIN_CONFIG"


class Settings(BaseSettings):
    """Every external address, name and tunable of fedtwin.

    Precedence: constructor arguments, then ``FEDTWIN_<FIELD>`` environment variables, then the YAML file
    named by ``FEDTWIN_CONFIG`` (or ``fedtwin.yaml`` in the working directory), then the defaults below.
    """

    model_config = SettingsConfigDict(env_prefix="FEDTWIN_", extra="forbid", validate_default=True)

    # Kafka
    kafka_bootstrap_servers: str = Field("127.0.0.1:19092", description="Kafka bootstrap.servers")
    sensor_topic: str = Field("fedtwin.sensors", description="Topic of sensor chunks (key = asset id)")
    alert_topic: str = Field("fedtwin.alerts", description="Topic of raise/clear alerts")
    dlq_topic: str = Field("fedtwin.sensors.dlq", description="Dead-letter topic for invalid sensor messages")
    truth_topic: str = Field("fedtwin.truth", description="Ground truth of injected faults")
    topic_partitions: int = Field(4, ge=1, description="Partitions when fedtwin creates a topic")
    consumer_group: str = Field("fedtwin-scorer", description="Consumer group of the scorers")
    kafka_session_timeout_ms: int = Field(
        6000, ge=1000, description="Consumer session timeout; Tansu holds JoinGroup for half of it"
    )

    # Redis
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (model store, control, alerts)")
    redis_prefix: str = Field("fedtwin:", description="Prefix of every Redis key fedtwin writes")

    # MLflow
    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server URI")
    mlflow_experiment: str = Field("fedtwin", description="MLflow experiment name")
    registered_model: str = Field("fedtwin-pump-faults", description="MLflow registered model name")

    # Prefect
    prefect_api_url: str = Field("http://127.0.0.1:4200/api", description="Prefect API URL")

    # Paths
    data_dir: Path = Field(Path(".fedtwin/data"), description="Simulated data sets")
    artifact_dir: Path = Field(Path(".fedtwin/artifacts"), description="MLflow artifact root and reports")
    state_dir: Path = Field(Path(".fedtwin/stack"), description="Logs and pids of services fedtwin starts")
    monitoring_dir: Path = Field(Path(".fedtwin/monitoring"), description="Drift reports (HTML/JSON)")

    # Security
    signing_key: SecretStr = Field(
        SecretStr("fedtwin-dev-signing-key-change-me"), description="HMAC key that signs models in Redis"
    )

    # Modelling and scoring
    window_s: float = Field(1.0, gt=0, description="Scoring window length (s)")
    sample_rate_hz: float = Field(1000.0, gt=0, description="Sensor sample rate (Hz)")
    chunk_s: float = Field(0.1, gt=0, description="Live plant chunk length (s)")
    federated_strategy: str = Field("fedadam", description="Aggregation rule used for the production model")
    federated_rounds: int = Field(60, ge=1, description="Federated rounds per training run")
    alert_raise_windows: int = Field(2, ge=1, description="Consecutive faulty windows that raise an alert")
    alert_clear_windows: int = Field(3, ge=1, description="Consecutive healthy windows that clear an alert")
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted features that means drift")
    scorer_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the scorer's Prometheus /metrics (unset: not served)"
    )

    # Monitoring UIs (started by `fedtwin stack up`)
    evidently_workspace: Path = Field(
        Path(".fedtwin/evidently"),
        description="Evidently UI workspace: a project per fleet, a snapshot per check",
    )
    evidently_ui_url: str = Field("http://127.0.0.1:8085", description="Evidently UI serving the workspace")
    prometheus_url: str = Field(
        "http://127.0.0.1:9095", description="Prometheus server scraping the scorer (when installed)"
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_has_port(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {v!r}")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected redis://host:port/db, got {v!r}")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Insert the YAML file below the environment."""
        return (init_settings, env_settings, _YamlSource(settings_cls))

    def key(self, *parts: str) -> str:
        """Redis key under fedtwin's prefix."""
        return self.redis_prefix + ":".join(parts)

    def shown(self) -> dict[str, str]:
        """Effective configuration as strings, secrets masked."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            out[name] = "********" if isinstance(value, SecretStr) else str(value)
        return out


class _YamlSource(PydanticBaseSettingsSource):
    """Settings from a YAML mapping; missing file means no values."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data = _load_yaml()

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _load_yaml() -> dict[str, Any]:
    explicit = os.environ.get(CONFIG_FILE_ENV)
    path = Path(explicit) if explicit else Path("fedtwin.yaml")
    if not path.exists():
        if explicit:
            raise ValueError(f"{CONFIG_FILE_ENV}={explicit} does not exist")
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of setting names to values")
    return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
