"""Kafka SASL/TLS settings: read from TIDECAST_KAFKA_* with errors naming the variable, and carried to every
kafka-python client tidecast builds (consumers, producers, the admin client, the forecast reader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from tidecast.config import ConfigError, KafkaSecurity, Settings
from tidecast.infra.processes import free_port
from tidecast.stream.adapters import kafka_clients
from tidecast.stream.adapters.kafka_clients import consumer_config, producer_config, security_config

SASL_ENV = {
    "TIDECAST_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "TIDECAST_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "TIDECAST_KAFKA_SASL_USERNAME": "tidecast",
    "TIDECAST_KAFKA_SASL_PASSWORD": "s3cret",
}
SASL_KWARGS = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "tidecast",
    "sasl_plain_password": "s3cret",
    "ssl_check_hostname": True,
}


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    files = {}
    for name in ("ca", "cert", "key"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN PLACEHOLDER-----\n")
        files[name] = str(path)
    return files


def sasl_settings() -> Settings:
    return Settings.from_env(SASL_ENV)


def test_default_is_plaintext_and_adds_nothing_else() -> None:
    assert security_config(Settings.from_env({})) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_from_env(pem: dict[str, str]) -> None:
    env = {**SASL_ENV, "TIDECAST_KAFKA_SSL_CAFILE": pem["ca"], "TIDECAST_KAFKA_SSL_CERTFILE": pem["cert"],
           "TIDECAST_KAFKA_SSL_KEYFILE": pem["key"], "TIDECAST_KAFKA_SSL_CHECK_HOSTNAME": "false"}
    security = Settings.from_env(env).kafka_security
    assert security == KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "tidecast", "s3cret", Path(pem["ca"]),
                                     Path(pem["cert"]), Path(pem["key"]), ssl_check_hostname=False)
    assert security_config(Settings.from_env(env)) == {
        **SASL_KWARGS, "ssl_check_hostname": False,
        "ssl_cafile": pem["ca"], "ssl_certfile": pem["cert"], "ssl_keyfile": pem["key"],
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_mechanisms(mechanism: str) -> None:
    env = {**SASL_ENV, "TIDECAST_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TIDECAST_KAFKA_SASL_MECHANISM": mechanism}
    assert security_config(Settings.from_env(env)) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "tidecast", "sasl_plain_password": "s3cret",
    }


@pytest.mark.parametrize(("env", "message"), [
    ({"TIDECAST_KAFKA_SECURITY_PROTOCOL": "TLS"},
     r"TIDECAST_KAFKA_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got 'TLS'"),
    ({**SASL_ENV, "TIDECAST_KAFKA_SASL_MECHANISM": "GSSAPI"},
     r"TIDECAST_KAFKA_SASL_MECHANISM: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got 'GSSAPI'"),
    ({"TIDECAST_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     r"TIDECAST_KAFKA_SASL_MECHANISM, TIDECAST_KAFKA_SASL_USERNAME, TIDECAST_KAFKA_SASL_PASSWORD: required with "
     r"TIDECAST_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ({k: v for k, v in SASL_ENV.items() if k != "TIDECAST_KAFKA_SASL_PASSWORD"},
     r"^TIDECAST_KAFKA_SASL_PASSWORD: required"),
    ({"TIDECAST_KAFKA_SASL_USERNAME": "tidecast"},
     r"TIDECAST_KAFKA_SASL_USERNAME: SASL needs TIDECAST_KAFKA_SECURITY_PROTOCOL=SASL_SSL .* it is PLAINTEXT"),
    ({"TIDECAST_KAFKA_SECURITY_PROTOCOL": "SSL", "TIDECAST_KAFKA_SSL_CAFILE": "/no/such/ca.pem"},
     r"TIDECAST_KAFKA_SSL_CAFILE: no such file: /no/such/ca.pem"),
    ({"TIDECAST_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", **{k: v for k, v in SASL_ENV.items() if "SASL_" in k},
      "TIDECAST_KAFKA_SSL_CAFILE": __file__},
     r"TIDECAST_KAFKA_SSL_CAFILE: TLS needs TIDECAST_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"),
    ({"TIDECAST_KAFKA_SECURITY_PROTOCOL": "SSL", "TIDECAST_KAFKA_SSL_KEYFILE": __file__},
     r"TIDECAST_KAFKA_SSL_KEYFILE: needs TIDECAST_KAFKA_SSL_CERTFILE"),
    ({"TIDECAST_KAFKA_SECURITY_PROTOCOL": "SSL", "TIDECAST_KAFKA_SSL_CHECK_HOSTNAME": "perhaps"},
     r"TIDECAST_KAFKA_SSL_CHECK_HOSTNAME: expected true or false, got 'perhaps'"),
])
def test_bad_security_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env)
    assert "s3cret" not in str(caught.value)


def test_every_built_config_carries_the_security_settings() -> None:
    s = sasl_settings()
    consumer = consumer_config(s, "127.0.0.1:9092", s.consumer_group, reset="none")
    reader = consumer_config(s, "127.0.0.1:9092", None, reset="earliest")
    producer = producer_config(s, "127.0.0.1:9092", "tidecast-test")
    for config, client in ((consumer, KafkaConsumer), (reader, KafkaConsumer), (producer, KafkaProducer)):
        assert SASL_KWARGS.items() <= config.items()
        assert set(config) <= set(client.DEFAULT_CONFIG), set(config) - set(client.DEFAULT_CONFIG)
    assert set(security_config(s)) <= set(KafkaAdminClient.DEFAULT_CONFIG)


def test_kafka_python_accepts_the_configs_without_a_network(pem: dict[str, str]) -> None:
    """kafka-python checks some combinations when a client is made; a closed loopback port and a given API
    version keep it from connecting."""
    closed = f"127.0.0.1:{free_port()}"
    for security in (KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-256", "u", "p"),
                     KafkaSecurity("SASL_SSL", "PLAIN", "u", "p", Path(pem["ca"]), ssl_check_hostname=False),
                     KafkaSecurity("SSL", ssl_cafile=Path(pem["ca"]))):
        s = Settings(kafka_security=security)
        producer = KafkaProducer(**producer_config(s, closed, "tidecast-test"), api_version=(2, 5))
        try:
            assert producer.config["security_protocol"] == security.protocol
            assert producer.config["sasl_mechanism"] == security.sasl_mechanism
        finally:
            producer.close(timeout=0)
        consumer = KafkaConsumer(**consumer_config(s, closed, None, reset="earliest"), api_version=(2, 5))
        try:
            assert consumer.config["ssl_cafile"] == (pem["ca"] if security.ssl_cafile else None)
        finally:
            consumer.close()


class _Recorder:
    """A kafka-python client stand-in that records its keyword arguments."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.made.append(kwargs)

    def partitions_for(self, topic: str) -> set[int]:
        return {0}

    partitions_for_topic = partitions_for

    def list_topics(self) -> list[str]:
        return []

    def __getattr__(self, name: str) -> Any:  # create_topics, assign, seek_*, poll, flush, close ...
        return lambda *args, **kwargs: {}


@pytest.fixture
def recorder() -> list[dict[str, Any]]:
    _Recorder.made = []
    return _Recorder.made


def test_the_admin_client_gets_them(monkeypatch: pytest.MonkeyPatch, recorder: list[dict[str, Any]]) -> None:
    import kafka.admin

    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", _Recorder)
    kafka_clients.create_topics("127.0.0.1:9092", ["t.a"], 3, settings=sasl_settings())
    kafka_clients.create_topics("127.0.0.1:9092", ["t.a"], 3)  # the embedded broker: PLAINTEXT
    assert SASL_KWARGS.items() <= recorder[0].items()
    assert "sasl_mechanism" not in recorder[1]


def test_the_reader_senders_publisher_and_worker_get_them(
    monkeypatch: pytest.MonkeyPatch, recorder: list[dict[str, Any]]
) -> None:
    from tidecast.consumers import forecast_reader, ingest_worker
    from tidecast.producers import event_sender, forecast_publisher
    from tidecast.stream.ownership import MemoryMembership
    from tidecast.stream.window_store import MemoryWindowStore

    for module, names in ((forecast_reader, ["KafkaConsumer"]), (event_sender, ["KafkaProducer"]),
                          (forecast_publisher, ["KafkaProducer"]), (ingest_worker, ["KafkaConsumer", "KafkaProducer"])):
        for name in names:
            monkeypatch.setattr(module, name, _Recorder)
    monkeypatch.setattr(ingest_worker, "check_retention", lambda settings, bootstrap: [])  # its admin client: below
    s = sasl_settings()
    assert list(forecast_reader.follow(s, "127.0.0.1:9092", from_beginning=True, until_idle=0.0)) == []
    event_sender.EventSender(s, "127.0.0.1:9092").close()
    forecast_publisher.KafkaForecastSink(s, "127.0.0.1:9092").close()
    worker = ingest_worker.IngestWorker(s, "127.0.0.1:9092", MemoryWindowStore(), MemoryMembership())
    worker.committer.close()
    assert len(recorder) == 5  # reader, sender, publisher, worker's consumer and its dead-letter producer
    for kwargs in recorder:
        assert SASL_KWARGS.items() <= kwargs.items(), kwargs.get("client_id")
