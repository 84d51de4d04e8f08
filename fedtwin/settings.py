"""The one configuration object of fedtwin: ``FEDTWIN_*`` environment variables over an optional YAML file."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fedtwin.errors import FedtwinError

#: Environment variable naming an optional YAML file of settings (keys are the field names).
CONFIG_FILE_ENV = "FEDTWIN_CONFIG"

#: The public development signing key: anyone can forge models with it, so it is usable only in dev mode.
DEV_SIGNING_KEY = "fedtwin-dev-signing-key-change-me"

#: Services of the embedded stack that get generated credentials (one section each in the credentials file).
CREDENTIAL_SERVICES = ("redis", "prefect", "mlflow")

#: The user name the embedded stack creates in Redis, Prefect and MLflow.
STACK_USER = "fedtwin"

KafkaProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: The aggregation rules the training flow runs (federated.strategy.STRATEGIES; a unit test keeps them equal).
FederatedStrategy = Literal["fedavg", "fedprox", "fedadam", "fedmedian", "fedtrimmedavg", "krum", "ensemble"]


#: A shadow slot name: a Redis key part and an MLflow alias, so lower-case letters, digits, ``_`` and ``-``.
SHADOW_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def parse_shadow_entry(entry: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME=VERSION`` of ``shadow_models`` -> (slot name, registry version or None).

    Raises
    ------
    ValueError
        With one line naming the entry, when the name or the version is not valid.
    """
    name, sep, version = entry.partition("=")
    if not SHADOW_NAME.fullmatch(name) or name == "champion":
        raise ValueError(
            f"shadow slot {entry!r}: the name must be 1-40 of a-z, 0-9, _ and - starting with a letter, "
            "and not 'champion'"
        )
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise ValueError(f"shadow slot {entry!r}: the version after '=' must be a positive integer")
    return name, int(version)


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
    decision_topic: str = Field(
        "fedtwin.decisions",
        description="Every model's decision on every scored window (champion and shadows)",
    )
    topic_partitions: int = Field(4, ge=1, description="Partitions when fedtwin creates a topic")
    consumer_group: str = Field("fedtwin-scorer", description="Consumer group of the scorers")
    kafka_assignment_strategy: Literal["cooperative-sticky", "range", "roundrobin"] = Field(
        "cooperative-sticky",
        description="How scorers of one group share partitions; cooperative: a join or leave moves only the "
        "partitions that change owner, the others keep scoring",
    )
    kafka_session_timeout_ms: int = Field(
        6000, ge=1000, description="Consumer session timeout; Tansu holds JoinGroup for half of it"
    )
    # Kafka security: passed to every producer, consumer and admin client
    # (fedtwin.adapters.kafka_io.client_config).
    kafka_security_protocol: KafkaProtocol = Field("PLAINTEXT", description="Kafka security.protocol")
    kafka_sasl_mechanism: SaslMechanism | None = Field(None, description="sasl.mechanism (SASL_* protocols)")
    kafka_sasl_username: str | None = Field(None, description="sasl.username (SASL_* protocols)")
    kafka_sasl_password: SecretStr | None = Field(None, description="sasl.password (SASL_* protocols)")
    kafka_ssl_ca_location: Path | None = Field(
        None, description="CA file that signed the brokers' certificates"
    )
    kafka_ssl_certificate_location: Path | None = Field(None, description="Client certificate (mutual TLS)")
    kafka_ssl_key_location: Path | None = Field(None, description="Client private key (mutual TLS)")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="Password of the client private key")

    # Redis
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (model store, control, alerts)")
    redis_password: SecretStr | None = Field(
        None, description="Redis password (a password inside redis_url is moved here, so it is never shown)"
    )
    redis_prefix: str = Field("fedtwin:", description="Prefix of every Redis key fedtwin writes")

    # MLflow
    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server URI")
    mlflow_experiment: str = Field("fedtwin", description="MLflow experiment name")
    registered_model: str = Field("fedtwin-pump-faults", description="MLflow registered model name")

    # Prefect
    prefect_api_url: str = Field("http://127.0.0.1:4200/api", description="Prefect API URL")

    # PostgreSQL for the servers `fedtwin stack up` starts (unset: SQLite files under state_dir)
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL server for Prefect and MLflow (postgresql://user[:password]@host:port[/name]):"
        " they use the databases <name>_prefect and <name>_mlflow (name default fedtwin)",
    )
    prefect_database_url: SecretStr | None = Field(
        None, description="PostgreSQL database of the Prefect server (overrides database_url)"
    )
    mlflow_database_url: SecretStr | None = Field(
        None, description="PostgreSQL database of the MLflow tracking server (overrides database_url)"
    )

    # Paths
    data_dir: Path = Field(Path(".fedtwin/data"), description="Simulated data sets")
    artifact_dir: Path = Field(Path(".fedtwin/artifacts"), description="MLflow artifact root and reports")
    state_dir: Path = Field(Path(".fedtwin/stack"), description="Logs and pids of services fedtwin starts")
    monitoring_dir: Path = Field(Path(".fedtwin/monitoring"), description="Drift reports (HTML/JSON)")
    plant_params_file: Path | None = Field(
        None,
        description="Calibrated plant parameters (JSON from `fedtwin plant calibrate`); the simulator reads "
        "FEDTWIN_PLANT_PARAMS_FILE, so set it in the environment",
    )

    # Security
    signing_key: SecretStr | None = Field(
        None, description="HMAC key that signs models in Redis (unset: the key `stack up` generated)"
    )
    credentials_file: Path = Field(
        Path(".fedtwin/credentials.json"),
        description="Secrets generated by `fedtwin stack up` (signing key, service passwords), mode 0600",
    )
    dev_mode: bool = Field(False, description="Allow the public development signing key")

    # Modelling and scoring
    window_s: float = Field(1.0, gt=0, description="Scoring window length (s)")
    sample_rate_hz: float = Field(1000.0, gt=0, description="Sensor sample rate (Hz)")
    chunk_s: float = Field(0.1, gt=0, description="Live plant chunk length (s)")
    federated_strategy: FederatedStrategy = Field(
        "fedadam", description="Aggregation rule used for the production model"
    )
    federated_rounds: int = Field(60, ge=1, description="Federated rounds per training run")
    site_executor: Literal["in_process", "site_workers"] = Field(
        "in_process",
        description="Where the training flow runs each site's work: in_process (a Prefect task of the run, "
        "in its own process) or site_workers (a run of the site's deployment on its own worker, "
        "`fedtwin site start`)",
    )
    site_timeout_s: float = Field(
        300.0, gt=0, description="site_workers: a site run not finished after this long fails its round"
    )
    site_pickup_timeout_s: float = Field(
        30.0,
        gt=0,
        description="site_workers: a site run no worker picked up after this long fails its round at once",
    )
    site_poll_s: float = Field(
        1.0, gt=0, le=60, description="site_workers: poll interval of site workers and of the training flow"
    )
    site_result_block: str = Field(
        "fedtwin-site-results",
        pattern=r"^[a-z0-9-]+$",
        description="site_workers: Prefect RedisDatabase block the site runs store their results in",
    )
    alert_raise_windows: int = Field(2, ge=1, description="Consecutive faulty windows that raise an alert")
    alert_clear_windows: int = Field(3, ge=1, description="Consecutive healthy windows that clear an alert")
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted features that means drift")
    shadow_models: list[str] = Field(
        default_factory=list,
        description="Shadow slots the scorer serves besides the champion: NAME (published from the MLflow "
        "alias NAME, e.g. challenger) or NAME=VERSION (a registry version); env as a JSON list",
    )
    max_shadow_models: int = Field(2, ge=0, le=8, description="Most shadow models one scorer serves")
    scorer_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the scorer's Prometheus /metrics (unset: not served)"
    )

    # Live evaluation and the live promotion gate (fedtwin.training.live_eval,
    # fedtwin.training.promotion.live_verdict)
    live_gate: bool = Field(
        True,
        description="The candidate flow promotes only if the candidate also beats the champion live (false: "
        "the offline gate alone decides; the campaign still runs and is logged)",
    )
    live_gate_min_windows: int = Field(
        300, ge=0, description="Labelled windows a candidate must have been evaluated on live"
    )
    live_gate_min_faults: int = Field(3, ge=0, description="Distinct faults a live evaluation must have seen")
    live_settle_s: float | None = Field(
        None, ge=0, description="Windows this soon after a truth change are left out (unset: window_s)"
    )
    live_eval_timeout_s: float = Field(
        120.0, gt=0, description="How long a campaign waits for the scorers' decisions to catch up (s)"
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
            raise ValueError(f"expected redis://host:port/db, got {mask_url(v)!r}")
        return v

    @field_validator("database_url", "prefect_database_url", "mlflow_database_url", mode="before")
    @classmethod
    def _postgres_url(cls, v: Any, info: ValidationInfo) -> Any:
        text = v.get_secret_value() if isinstance(v, SecretStr) else v
        if text is None or (isinstance(text, str) and not text.strip()):
            return None  # FEDTWIN_DATABASE_URL= (empty) means "not set": SQLite
        if not isinstance(text, str):
            raise ValueError("expected a postgresql:// URL")
        parts = urlsplit(text)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError(f"expected postgresql://user@host:port/database, got {mask_url(text)!r}")
        name = parts.path.strip("/")
        if info.field_name != "database_url" and not name:
            raise ValueError(f"expected postgresql://user@host:port/<database>, got {mask_url(text)!r}")
        if "/" in name:
            raise ValueError(f"a database name has no '/': got {mask_url(text)!r}")
        return SecretStr(text)

    @field_validator("signing_key", "redis_password", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, v: Any) -> Any:
        # FEDTWIN_SIGNING_KEY= (empty) means "not set"; an empty HMAC key would sign with no secret at all.
        text = v.get_secret_value() if isinstance(v, SecretStr) else v
        return None if isinstance(text, str) and not text.strip() else v

    @field_validator("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
    @classmethod
    def _sasl_matches_protocol(cls, v: Any, info: ValidationInfo) -> Any:
        protocol = info.data.get("kafka_security_protocol", "PLAINTEXT")
        uses_sasl = protocol.startswith("SASL_")
        if uses_sasl and v is None:
            raise ValueError(f"required when kafka_security_protocol is {protocol}")
        if not uses_sasl and v is not None:
            raise ValueError(
                f"only used with kafka_security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}"
            )
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator(
        "kafka_ssl_ca_location",
        "kafka_ssl_certificate_location",
        "kafka_ssl_key_location",
        "kafka_ssl_key_password",
    )
    @classmethod
    def _ssl_matches_protocol(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None:
            return v
        protocol = info.data.get("kafka_security_protocol", "PLAINTEXT")
        if not protocol.endswith("SSL"):
            raise ValueError(f"only used with kafka_security_protocol SSL or SASL_SSL, not {protocol}")
        if isinstance(v, Path) and not v.is_file():
            raise ValueError(f"file {v} does not exist")
        return v

    @field_validator("shadow_models")
    @classmethod
    def _shadow_entries(cls, v: list[str]) -> list[str]:
        names = [parse_shadow_entry(e)[0] for e in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"shadow slot {dup[0]!r} is named twice")
        return v

    @model_validator(mode="after")
    def _checks_across_fields(self) -> Settings:
        if len(self.shadow_models) > self.max_shadow_models:
            raise ValueError(
                f"shadow_models names {len(self.shadow_models)} slots, more than max_shadow_models="
                f"{self.max_shadow_models}"
            )
        # A password inside the Redis URL moves to redis_password, so no log line or listing can show it.
        parts = urlsplit(self.redis_url)
        if parts.password is not None:
            if self.redis_password is not None and self.redis_password.get_secret_value() != parts.password:
                raise ValueError("redis_url and redis_password give different Redis passwords: give one")
            self.redis_password = SecretStr(_unquote(parts.password))
            self.redis_url = _without_password(self.redis_url)
        if (self.kafka_ssl_certificate_location is None) != (self.kafka_ssl_key_location is None):
            raise ValueError(
                "kafka_ssl_certificate_location and kafka_ssl_key_location: give both (mutual TLS) or neither"
            )
        return self

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

    def shadow_sources(self) -> dict[str, int | None]:
        """Shadow slot -> the registry version named for it (None: publish from the MLflow alias NAME)."""
        return dict(parse_shadow_entry(e) for e in self.shadow_models)

    def key(self, *parts: str) -> str:
        """Redis key under fedtwin's prefix."""
        return self.redis_prefix + ":".join(parts)

    def shown(self) -> dict[str, str]:
        """Effective configuration as strings: secrets masked, passwords in URLs masked.

        ``signing_key`` says where the key comes from (configured, generated, default) but never its value;
        ``<service>_auth`` says which credentials fedtwin sends to Redis, Prefect and MLflow.
        """
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "signing_key":
                out[name] = self.signing_key_source()
            elif name.endswith("database_url"):
                out[name] = mask_url(value.get_secret_value()) if value is not None else "none (SQLite)"
            elif isinstance(value, SecretStr):
                out[name] = "********"
            elif isinstance(value, str) and "://" in value:
                out[name] = mask_url(value)
            else:
                out[name] = str(value)
        username, password = self.redis_auth()
        out["redis_auth"] = _auth_source(username or "default", password, self._generated("redis"))
        prefect = self.prefect_auth_string()
        out["prefect_auth"] = _auth_source(STACK_USER, prefect, self._generated("prefect"))
        mlflow = self.mlflow_auth()
        out["mlflow_auth"] = _auth_source(mlflow[0] if mlflow else "", mlflow, self._generated("mlflow"))
        return out

    def service_database_url(self, service: Literal["prefect", "mlflow"]) -> str | None:
        """The PostgreSQL URL (``postgresql://``, database named) of ``service``'s server, or None for SQLite.

        A per-service URL wins; else ``database_url``'s server with the database ``<name>_<service>`` (one
        database each: both keep their schema version in an ``alembic_version`` table).
        """
        own = self.prefect_database_url if service == "prefect" else self.mlflow_database_url
        if own is not None:
            return _postgresql(own.get_secret_value())
        if self.database_url is None:
            return None
        parts = urlsplit(_postgresql(self.database_url.get_secret_value()))
        base = parts.path.strip("/") or "fedtwin"
        return urlunsplit(parts._replace(path=f"/{base}_{service}"))

    # ------------------------------------------------------------------ secrets
    def credentials(self) -> dict[str, Any]:
        """The generated credentials file (empty when there is none); refuses a file others can read."""
        return read_credentials(self.credentials_file)

    def signing_key_source(self) -> str:
        """Where the model signing key comes from, for ``config show``; never the key itself."""
        configured = self.signing_key.get_secret_value() if self.signing_key is not None else None
        if configured is not None and configured != DEV_SIGNING_KEY:
            return "configured (FEDTWIN_SIGNING_KEY or the config file)"
        if configured is None and self._generated_signing_key() is not None:
            return f"generated ({self.credentials_file})"
        if self.dev_mode:
            return "default (the public development key; dev mode)"
        if configured is not None:
            return "default (the public development key, refused outside dev mode)"
        return "none (run `fedtwin stack up` or set FEDTWIN_SIGNING_KEY)"

    def signing_key_bytes(self) -> bytes:
        """The HMAC key that signs and verifies models: configured, else generated by the stack.

        The public development key is returned only in dev mode (``FEDTWIN_DEV_MODE=true``).

        Raises
        ------
        FedtwinError
            One line saying what to do when there is no usable key.
        """
        configured = self.signing_key.get_secret_value() if self.signing_key is not None else None
        if configured is not None and configured != DEV_SIGNING_KEY:
            return configured.encode()
        generated = self._generated_signing_key() if configured is None else None
        if generated is not None:
            return generated.encode()
        if self.dev_mode:
            return DEV_SIGNING_KEY.encode()
        if configured is not None:
            raise FedtwinError(
                "FEDTWIN_SIGNING_KEY is the public development key, which anyone can sign models with: "
                "set your own key, or FEDTWIN_DEV_MODE=true to accept it for development"
            )
        raise FedtwinError(
            f"no model signing key: run `fedtwin stack up` (it generates one in {self.credentials_file}), "
            "set FEDTWIN_SIGNING_KEY, or set FEDTWIN_DEV_MODE=true for the public development key"
        )

    def _generated_signing_key(self) -> str | None:
        key = self.credentials().get("signing_key")
        return key if isinstance(key, str) and key else None

    def _generated(self, service: str) -> dict[str, str] | None:
        """The stack's credentials of ``service`` when they protect the configured address, else None.

        The stack records the address of each service it started with credentials and clears it when it
        stops that service or reuses another one, so an external service never receives them.
        """
        section = self.credentials().get(service)
        if not isinstance(section, dict) or not section.get("address"):
            return None
        url = {"redis": self.redis_url, "prefect": self.prefect_api_url, "mlflow": self.mlflow_tracking_uri}
        return section if section["address"] == service_address(url[service]) else None

    def redis_auth(self) -> tuple[str | None, str | None]:
        """(username, password) for Redis: from redis_url/redis_password, else the stack's generated ones."""
        if self.redis_password is not None:
            return urlsplit(self.redis_url).username or None, self.redis_password.get_secret_value()
        generated = self._generated("redis")
        if generated is not None:
            return generated["username"], generated["password"]
        return urlsplit(self.redis_url).username or None, None

    def prefect_auth_string(self) -> str | None:
        """``user:password`` for Prefect's basic auth when the stack started the configured Prefect."""
        generated = self._generated("prefect")
        return f"{generated['username']}:{generated['password']}" if generated is not None else None

    def mlflow_auth(self) -> tuple[str, str] | None:
        """(username, password) for MLflow's basic-auth app when the stack started the configured MLflow."""
        generated = self._generated("mlflow")
        return (generated["username"], generated["password"]) if generated is not None else None


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print and log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _postgresql(url: str) -> str:
    """``url`` with the ``postgresql`` scheme (``postgres://`` is an alias SQLAlchemy 2 refuses)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_driver(url: str, driver: str) -> str:
    """A ``postgresql://`` URL for a SQLAlchemy driver: ``postgresql+<driver>://`` (e.g. asyncpg)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=f"postgresql+{driver}"))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def _unquote(text: str) -> str:
    return unquote(text)


def service_address(url: str) -> str:
    """``host:port`` of a service URL (the key under which generated credentials are recorded)."""
    parts = urlsplit(url)
    default = {"redis": 6379, "rediss": 6379, "http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{parts.hostname or ''}:{parts.port or default}"


def _auth_source(user: str, secret: Any, generated: dict[str, str] | None) -> str:
    if secret is None:
        return "none"
    return f"user {user}, " + ("generated by `fedtwin stack up`" if generated is not None else "configured")


def read_credentials(path: Path) -> dict[str, Any]:
    """The JSON credentials file at ``path``, ``{}`` when absent.

    Raises
    ------
    FedtwinError
        If other users may read the file, or it is not a JSON object.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise FedtwinError(
            f"credentials file {path} is accessible to other users (mode {stat.S_IMODE(st.st_mode):o}): "
            f"run `chmod 600 {path}`"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FedtwinError(
            f"credentials file {path} is unreadable ({exc}): remove it and run `fedtwin stack up`"
        ) from exc
    if not isinstance(data, dict):
        raise FedtwinError(
            f"credentials file {path} is not a JSON object: remove it and run `fedtwin stack up`"
        )
    return data


def write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_credentials(path: Path) -> dict[str, Any]:
    """Read the credentials file, generating what is missing (signing key, one password per service).

    Existing secrets are kept: models stay verifiable and restarted services keep their passwords.
    """
    data = read_credentials(path)
    changed = False
    if not data.get("signing_key"):
        data["signing_key"] = secrets.token_hex(32)
        changed = True
    for service in CREDENTIAL_SERVICES:
        section = data.get(service)
        if not isinstance(section, dict) or not section.get("password"):
            # token_urlsafe: no characters that need quoting in URLs, ACL files or ini files.
            data[service] = {"username": STACK_USER, "password": secrets.token_urlsafe(24), "address": None}
            changed = True
    if not data["mlflow"].get("flask_secret_key"):
        # MLflow's basic-auth app needs a static secret for its CSRF tokens.
        data["mlflow"]["flask_secret_key"] = secrets.token_hex(32)
        changed = True
    if changed:
        write_credentials(path, data)
    return data


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
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of setting names to values")
    return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
