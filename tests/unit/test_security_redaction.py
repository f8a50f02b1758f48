"""Secrets are never printed: a Redis URL's password and the Kafka SASL password stay out of what the CLI
shows (``infra up|status``, plain and ``--json``), error messages, progress lines and ``repr``s; Redis
clients come from one builder that keeps ACL users, passwords and ``rediss://``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from stand_ins import CheckpointRedis, RecordingSink

from tidecast import cli, infra
from tidecast.config import ConfigError, Endpoints, KafkaSecurity, Settings, redact

SECRET = "s3cr%23t-pw"  # percent-encoded, as a URL needs
URL = f"redis://:{SECRET}@10.0.0.5:6379/0"
SHOWN = "redis://:***@10.0.0.5:6379/0"


@pytest.mark.parametrize(("url", "shown"), [
    (URL, SHOWN),
    (f"rediss://tidecast:{SECRET}@redis.internal:6380/2", "rediss://tidecast:***@redis.internal:6380/2"),
    (f"redis://{SECRET}@10.0.0.5:6379", "redis://***@10.0.0.5:6379"),  # a lone token before @
    ("redis://u:s3/cr#t?x@y@10.0.0.5:6379", "redis://u:***@10.0.0.5:6379"),  # not encoded: still hidden whole
    (f"unix:///run/redis.sock?db=1&password={SECRET}", "unix:///run/redis.sock?db=1&password=***"),
    (f"redis://10.0.0.5:6379/0?Password={SECRET}", "redis://10.0.0.5:6379/0?Password=***"),
    (f"tidecast:{SECRET}@10.0.0.5:6379", "tidecast:***@10.0.0.5:6379"),  # no scheme (a mistyped URL)
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("127.0.0.1:9092", "127.0.0.1:9092"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_reprs_leave_the_secrets_out() -> None:
    s = Settings(redis_url=URL, kafka_security=KafkaSecurity("SASL_SSL", "PLAIN", "tidecast", SECRET))
    for text in (repr(s), str(s), repr(s.kafka_security), repr(Endpoints("k:9092", URL))):
        assert SECRET not in text, text
    assert SHOWN in repr(s) and "sasl_username='tidecast'" in repr(s)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIDECAST_HOME", str(tmp_path))
    monkeypatch.setenv("TIDECAST_KAFKA_BOOTSTRAP", "10.0.0.4:9092")
    monkeypatch.setenv("TIDECAST_REDIS_URL", URL)


@pytest.mark.parametrize("as_json", [True, False])
def test_infra_up_with_configured_servers_hides_the_password(
    configured: None, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    assert cli.main(["infra", "up", *(["--json"] if as_json else [])]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    if as_json:
        assert json.loads(out) == {"kafka": "10.0.0.4:9092", "redis": SHOWN}
    else:
        assert SHOWN in err


@pytest.mark.parametrize("as_json", [True, False])
def test_infra_status_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    monkeypatch.setenv("TIDECAST_HOME", str(tmp_path))
    monkeypatch.setattr(infra, "find", lambda settings: Endpoints("10.0.0.4:9092", URL))
    assert cli.main(["infra", "status", *(["--json"] if as_json else [])]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err and SHOWN in out + err


def test_format_endpoints() -> None:
    from tidecast.commands.infra_cmd import format_endpoints

    endpoints = Endpoints("10.0.0.4:9092", URL)
    assert json.loads(format_endpoints(endpoints, as_json=True))["redis"] == SHOWN
    assert format_endpoints(endpoints, as_json=False) == f"kafka  10.0.0.4:9092\nredis  {SHOWN}"
    assert endpoints.as_json()["redis"] == URL  # to hand on, unchanged


def test_a_bad_redis_url_error_hides_the_password(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"TIDECAST_REDIS_URL": f"http://tidecast:{SECRET}@10.0.0.5:6379/0"})
    assert SECRET not in str(caught.value) and "http://tidecast:***@10.0.0.5:6379/0" in str(caught.value)
    assert cli.main(["--home", str(tmp_path), "--redis", f"tidecast:{SECRET}@10.0.0.5:6379", "infra", "status"]) == 2
    err = capsys.readouterr().err
    assert "TIDECAST_REDIS_URL" in err and SECRET not in err


def test_the_live_forecasters_checkpoint_error_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    from tidecast import live
    from tidecast.models import checkpoint
    from tidecast.producers import forecast_publisher

    blob = checkpoint.dumps({"format": "tidecast.forecaster/1", "last_closed": 3})
    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(lambda url, **kwargs: CheckpointRedis(blob)))
    monkeypatch.setattr(forecast_publisher, "KafkaForecastSink", RecordingSink)
    with pytest.raises(ConfigError, match="another tidecast version") as caught:
        live.build(Settings(topic_prefix="x."), Endpoints("127.0.0.1:1", URL))
    assert SECRET not in str(caught.value) and SHOWN in str(caught.value)


def test_the_supervisors_ready_line_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tidecast.infra import supervisor

    monkeypatch.setattr(supervisor, "create_topics", lambda *args, **kwargs: None)
    args = argparse.Namespace(topic_prefix="x.", partitions=1)
    supervisor.publish(args, tmp_path, {}, "127.0.0.1:1", URL)
    assert SECRET not in capsys.readouterr().out
    assert json.loads((tmp_path / "state.json").read_text())["redis"] == URL  # later commands still connect


def test_one_redis_builder_keeps_user_password_and_tls(tmp_path: Path) -> None:
    from tidecast.stream.adapters.redis_clients import redis_client

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN PLACEHOLDER-----\n")
    plain = redis_client(Settings(), f"redis://tidecast:{SECRET}@10.0.0.5:6379/3").connection_pool
    assert (plain.connection_kwargs["username"], plain.connection_kwargs["password"]) == ("tidecast", "s3cr#t-pw")
    assert plain.connection_kwargs["db"] == 3
    tls_url = f"rediss://tidecast:{SECRET}@10.0.0.5:6380/0"
    s = Settings.from_env({"TIDECAST_REDIS_URL": tls_url, "TIDECAST_REDIS_CA_FILE": str(ca)})
    tls = redis_client(s, tls_url).connection_pool
    assert tls.connection_class.__name__ == "SSLConnection" and tls.connection_kwargs["ssl_ca_certs"] == str(ca)
    with pytest.raises(ConfigError, match="TIDECAST_REDIS_CA_FILE: only used with a TLS Redis"):
        Settings.from_env({"TIDECAST_REDIS_URL": "redis://10.0.0.5:6379/0", "TIDECAST_REDIS_CA_FILE": str(ca)})
    with pytest.raises(ConfigError, match="TIDECAST_REDIS_CA_FILE: no such file"):
        Settings.from_env({"TIDECAST_REDIS_URL": tls_url, "TIDECAST_REDIS_CA_FILE": str(tmp_path / "none.pem")})


def test_the_live_jobs_build_redis_clients_through_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    from tidecast import live
    from tidecast.stream.adapters import redis_clients

    built: list[str] = []

    def builder(settings: Settings, url: str, **options: object) -> object:
        built.append(url)
        raise RuntimeError("stop here")

    monkeypatch.setattr(redis_clients, "redis_client", builder)
    for call in (lambda: live.build(Settings(), Endpoints("127.0.0.1:1", URL)),
                 lambda: live.run_ingest(Settings(), Endpoints("127.0.0.1:1", URL), until_idle=0.0)):
        with pytest.raises(RuntimeError, match="stop here"):
            call()
    assert built == [URL, URL]
