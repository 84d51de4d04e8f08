import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from fedtwin.errors import FedtwinError
from fedtwin.settings import (
    DEV_SIGNING_KEY,
    Settings,
    ensure_credentials,
    mask_url,
    read_credentials,
    service_address,
    write_credentials,
)


@pytest.fixture(autouse=True)
def _no_fedtwin_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Defaults are what these tests check: hide any FEDTWIN_* set by the shell or another fixture, and run
    where no fedtwin.yaml or .fedtwin/ of the checkout can be picked up."""
    for name in [k for k in os.environ if k.startswith("FEDTWIN_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


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


def test_shown_masks_secrets_and_says_where_the_key_comes_from() -> None:
    s = Settings(
        signing_key="top-secret",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="svc",
        kafka_sasl_password="kafka-pw",
    )
    shown = s.shown()
    assert shown["signing_key"].startswith("configured")
    assert shown["kafka_sasl_password"] == "********"
    assert "top-secret" not in str(shown) and "kafka-pw" not in str(shown)
    assert s.key("model", "current") == "fedtwin:model:current"


# ---------------------------------------------------------------- signing key modes


def test_without_a_key_signing_is_refused_with_one_line() -> None:
    s = Settings()
    with pytest.raises(FedtwinError, match="no model signing key") as info:
        s.signing_key_bytes()
    assert "\n" not in str(info.value) and "FEDTWIN_SIGNING_KEY" in str(info.value)
    assert s.shown()["signing_key"].startswith("none")


def test_the_public_key_is_refused_outside_dev_mode_even_when_configured() -> None:
    with pytest.raises(FedtwinError, match="public development key"):
        Settings(signing_key=DEV_SIGNING_KEY).signing_key_bytes()
    assert "refused" in Settings(signing_key=DEV_SIGNING_KEY).shown()["signing_key"]


def test_an_empty_key_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDTWIN_SIGNING_KEY", " ")
    with pytest.raises(FedtwinError, match="no model signing key"):
        Settings().signing_key_bytes()


def test_dev_mode_allows_the_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDTWIN_DEV_MODE", "true")
    s = Settings()
    assert s.signing_key_bytes() == DEV_SIGNING_KEY.encode()
    assert s.shown()["signing_key"].startswith("default")


def test_generated_key_is_used_and_a_configured_one_wins(tmp_path: Path) -> None:
    path = tmp_path / ".fedtwin" / "credentials.json"
    data = ensure_credentials(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(data["signing_key"]) == 64  # 32 random bytes, hex
    s = Settings(credentials_file=path)
    assert s.signing_key_bytes() == data["signing_key"].encode()
    assert s.shown()["signing_key"] == f"generated ({path})"
    assert data["signing_key"] not in str(s.shown())
    assert Settings(credentials_file=path, signing_key="mine").signing_key_bytes() == b"mine"
    # Dev mode does not replace a generated key with the public one.
    assert Settings(credentials_file=path, dev_mode=True).signing_key_bytes() == data["signing_key"].encode()


def test_credentials_are_generated_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    first = ensure_credentials(path)
    assert ensure_credentials(path) == first
    assert {first[s]["username"] for s in ("redis", "prefect", "mlflow")} == {"fedtwin"}
    assert len({first[s]["password"] for s in ("redis", "prefect", "mlflow")}) == 3


def test_a_credentials_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    write_credentials(path, {"signing_key": "k"})
    path.chmod(0o644)
    with pytest.raises(FedtwinError, match="chmod 600"):
        read_credentials(path)
    with pytest.raises(FedtwinError, match="chmod 600"):
        Settings(credentials_file=path).signing_key_bytes()


# ---------------------------------------------------------------- service credentials and masking


def test_generated_credentials_go_only_to_the_address_the_stack_recorded(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    data = ensure_credentials(path)
    s = Settings(credentials_file=path, redis_url="redis://127.0.0.1:26379/0")
    assert s.redis_auth() == (None, None)  # nothing recorded: an external Redis gets no AUTH
    data["redis"]["address"] = "127.0.0.1:26379"
    data["prefect"]["address"] = "127.0.0.1:4200"
    data["mlflow"]["address"] = "127.0.0.1:5999"  # another MLflow than the configured one
    write_credentials(path, data)
    assert s.redis_auth() == ("fedtwin", data["redis"]["password"])
    assert s.prefect_auth_string() == f"fedtwin:{data['prefect']['password']}"
    assert s.mlflow_auth() is None
    assert Settings(credentials_file=path).redis_auth() == (None, None)  # port 6379: not the stack's
    shown = s.shown()
    assert shown["redis_auth"] == "user fedtwin, generated by `fedtwin stack up`"
    assert shown["mlflow_auth"] == "none"
    assert data["redis"]["password"] not in str(shown) and data["prefect"]["password"] not in str(shown)


def test_a_password_in_the_redis_url_is_moved_out_of_it() -> None:
    s = Settings(redis_url="redis://ops:p%40ss@redis.example:6380/2")
    assert s.redis_url == "redis://ops@redis.example:6380/2"
    assert s.redis_password == SecretStr("p@ss")
    assert s.redis_auth() == ("ops", "p@ss")
    assert "p@ss" not in str(s.shown()) and "p%40ss" not in str(s.shown())
    with pytest.raises(ValidationError, match="different Redis passwords"):
        Settings(redis_url="redis://:a@h:1/0", redis_password="b")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@mlflow.example:5000/x", "http://user:***@mlflow.example:5000/x"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("http://127.0.0.1:4200/api", "http://127.0.0.1:4200/api"),
        ("sqlite:///tmp/mlflow.db", "sqlite:///tmp/mlflow.db"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_urls_with_passwords_are_masked_in_config_show() -> None:
    s = Settings(
        mlflow_tracking_uri="https://u:secret1@ml.example", prefect_api_url="https://v:secret2@p/api"
    )
    shown = s.shown()
    assert shown["mlflow_tracking_uri"] == "https://u:***@ml.example"
    assert "secret1" not in str(shown) and "secret2" not in str(shown)


def test_service_address() -> None:
    assert service_address("redis://127.0.0.1/0") == "127.0.0.1:6379"
    assert service_address("http://127.0.0.1:4200/api") == "127.0.0.1:4200"


# ---------------------------------------------------------------- Kafka security options


def test_kafka_security_options_reach_every_client_config(tmp_path: Path) -> None:
    from fedtwin.adapters.kafka_io import client_config, consumer_config, producer_config

    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        kafka_ssl_ca_location=ca,
    )
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "pw",
        "ssl.ca.location": str(ca),
    }
    for conf in (client_config(s), producer_config(s), consumer_config(s)):
        assert {k: conf[k] for k in expected} == expected
    assert "ssl.certificate.location" not in client_config(s)
    plain = client_config(Settings())
    assert {k: v for k, v in plain.items() if k != "logger"} == {
        "bootstrap.servers": "127.0.0.1:19092",
        "security.protocol": "PLAINTEXT",
    }


def test_librdkafka_accepts_the_sasl_options() -> None:
    """The keys and values are ones librdkafka knows (it rejects unknown ones when a client is built)."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

    from fedtwin.adapters.kafka_io import client_config, consumer_config, producer_config

    s = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
    )
    Producer(producer_config(s)).flush(0)
    Consumer(consumer_config(s)).close()
    AdminClient(client_config(s))


@pytest.mark.parametrize(
    ("env", "field", "message"),
    [
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_PASSWORD": "x",
            },
            "kafka_sasl_username",
            "required when kafka_security_protocol is SASL_SSL",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "x",
            },
            "kafka_sasl_mechanism",
            "required",
        ),
        ({"KAFKA_SASL_USERNAME": "u"}, "kafka_sasl_username", "only used with kafka_security_protocol SASL"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "x",
            },
            "kafka_sasl_mechanism",
            "PLAIN",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka_security_protocol", "SASL_SSL"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem"},
            "kafka_ssl_ca_location",
            "does not exist",
        ),
        ({"KAFKA_SSL_CA_LOCATION": "/etc/hostname"}, "kafka_ssl_ca_location", "only used with"),
    ],
)
def test_bad_kafka_security_options_name_the_field(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str, message: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(f"FEDTWIN_{k}", v)
    with pytest.raises(ValidationError) as info:
        Settings()
    errors = info.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == (field,)
    assert message in errors[0]["msg"]


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="give both"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certificate_location=cert)


def test_cli_reports_a_sasl_setting_without_username_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    env = {
        **os.environ,
        "FEDTWIN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "FEDTWIN_KAFKA_SASL_MECHANISM": "PLAIN",
        "FEDTWIN_KAFKA_SASL_PASSWORD": "pw",
    }
    out = subprocess.run(
        [sys.executable, "-m", "fedtwin.app.cli", "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "fedtwin: error: setting kafka_sasl_username: Value error, required when kafka_security_protocol "
        "is SASL_SSL (set FEDTWIN_KAFKA_SASL_USERNAME)"
    )


def test_credentials_file_is_json_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "credentials.json"
    write_credentials(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unknown_federated_strategy_is_refused_when_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    assert Settings().federated_strategy == "fedadam"
    monkeypatch.setenv("FEDTWIN_FEDERATED_STRATEGY", "krum")
    assert Settings().federated_strategy == "krum"
    monkeypatch.setenv("FEDTWIN_FEDERATED_STRATEGY", "fedavgg")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [("federated_strategy",)]
    out = subprocess.run(
        [sys.executable, "-m", "fedtwin.app.cli", "config", "show"],
        env={**os.environ, "FEDTWIN_FEDERATED_STRATEGY": "fedavgg"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "fedtwin: error: setting federated_strategy: Input should be 'fedavg', 'fedprox', 'fedadam', "
        "'fedmedian', 'fedtrimmedavg', 'krum' or 'ensemble' (set FEDTWIN_FEDERATED_STRATEGY)"
    )


def test_database_url_gives_each_server_its_own_database_and_per_service_urls_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().service_database_url("prefect") is None  # SQLite by default
    monkeypatch.setenv("FEDTWIN_DATABASE_URL", "postgres://ft:pw@db.example:5432")
    s = Settings()
    assert s.service_database_url("prefect") == "postgresql://ft:pw@db.example:5432/fedtwin_prefect"
    assert s.service_database_url("mlflow") == "postgresql://ft:pw@db.example:5432/fedtwin_mlflow"
    monkeypatch.setenv("FEDTWIN_DATABASE_URL", "postgresql://ft@db.example/plant7")
    monkeypatch.setenv("FEDTWIN_MLFLOW_DATABASE_URL", "postgresql://ml@other:6543/tracking")
    s = Settings()
    assert s.service_database_url("prefect") == "postgresql://ft@db.example/plant7_prefect"
    assert s.service_database_url("mlflow") == "postgresql://ml@other:6543/tracking"
    monkeypatch.setenv("FEDTWIN_DATABASE_URL", "")
    assert Settings().service_database_url("prefect") is None


def test_database_urls_are_validated_and_their_passwords_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad, field in [
        ("mysql://u@h/db", "database_url"),
        ("postgresql:///db", "database_url"),
        ("postgresql://u@h:5432", "prefect_database_url"),  # a per-service URL names its database
        ("postgresql://u@h/a/b", "mlflow_database_url"),
    ]:
        monkeypatch.setenv(f"FEDTWIN_{field.upper()}", bad)
        with pytest.raises(ValidationError, match=field):
            Settings()
        monkeypatch.delenv(f"FEDTWIN_{field.upper()}")
    monkeypatch.setenv("FEDTWIN_DATABASE_URL", "postgresql://ft:s3cret-pw@db:5432")
    s = Settings()
    shown = s.shown()
    assert shown["database_url"] == "postgresql://ft:***@db:5432"
    assert shown["mlflow_database_url"] == "none (SQLite)"
    assert "s3cret-pw" not in str(shown) + repr(s)
    with pytest.raises(ValidationError) as err:
        Settings(database_url="mysql://ft:s3cret-pw@db/x")
    message = err.value.errors()[0]["msg"]  # what the CLI prints
    assert "postgresql://" in message and "ft:***@db" in message and "s3cret-pw" not in message


def test_the_strategy_names_settings_accept_are_exactly_the_registry() -> None:
    from typing import get_args

    from federated.strategy import STRATEGIES
    from fedtwin.settings import FederatedStrategy

    # A rule added to the registry but not to the settings (or the reverse) could never be chosen (or crash).
    assert sorted(get_args(FederatedStrategy)) == sorted(STRATEGIES)
