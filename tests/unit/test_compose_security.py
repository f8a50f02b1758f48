"""docker/compose.yaml runs Kafka and Redis with credentials, and tidecast's services use them.

No Docker engine runs the file here, so these tests read it: Kafka listeners reachable on the network are
SASL ones, Redis requires a password, every tidecast service carries the Kafka security variables and a Redis
URL with credentials that match what the servers were given, each secret is a required ``${VAR:?...}``
reference (never a value or a default), docker/.env.example names those variables and docker/.env is
git-ignored, and each service command is a command the ``tidecast`` parser accepts.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidecast.cli import build_parser
from tidecast.config import KAFKA_SASL_MECHANISMS, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENV_EXAMPLE = DOCKER / ".env.example"

REQUIRED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}")
"""A variable compose must be given (``${VAR:?message}``: unset or empty stops ``docker compose``)."""
ANY_REF = re.compile(r"\$\{[^}]*\}")
LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
SECRET_KEY = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|_AUTH$", re.IGNORECASE)
SECRET_FLAGS = {"--requirepass", "--masterauth", "-a", "--pass"}
JAAS_SECRET = re.compile(r"\b(?P<key>password|user_\w+)=\"(?P<value>[^\"]*)\"")
URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:(?P<value>\$\{[^}]*\}|[^@\s]*)@")
LISTENER = re.compile(r"(?P<name>[A-Za-z0-9_]+)://(?P<host>\[[^\]]*\]|[^:,]*):(?P<port>\d+)")
REDIS_URL = re.compile(
    r"rediss?://(?P<user>[^:@/]*):(?P<password>\$\{[^}]*\})@(?P<host>[^:/]+):(?P<port>\d+)/\d+"
)


def load(text: str | None = None) -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text() if text is None else text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, mapping or ``KEY=VALUE`` list, as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def argv(value: str | list[Any] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def tidecast_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from docker/Dockerfile (or using a tidecast image)."""
    found = {}
    for name, service in compose["services"].items():
        build = service.get("build")
        dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else None
        if dockerfile == "docker/Dockerfile" or str(service.get("image", "")).startswith("tidecast"):
            found[name] = service
    return found


def required_name(value: str, where: str) -> str:
    """The variable of ``value``, which must be exactly one required reference."""
    match = REQUIRED.fullmatch(value)
    assert match, f"{where}: expected a required ${{VAR:?message}} reference, got {value!r}"
    return match["name"]


def kafka_listeners(env: dict[str, str], key: str) -> list[tuple[str, str, int, str]]:
    """``(name, host, port, security protocol)`` of KAFKA_LISTENERS or KAFKA_ADVERTISED_LISTENERS."""
    assert "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP" in env, "set each listener's protocol (not the image's default)"
    protocols = dict(pair.split(":", 1) for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    found = []
    for part in env.get(key, "").split(","):
        match = LISTENER.fullmatch(part.strip())
        assert match, f"{key}: cannot read {part!r}"
        name = match["name"]
        assert name in protocols, f"{key}: {name} is not in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"
        found.append((name, match["host"], int(match["port"]), protocols[name]))
    return found


def secrets(compose: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, value)`` of every secret the file hands to a server or a client."""
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                yield f"{name}.environment.{key}", value
            for match in JAAS_SECRET.finditer(value):
                yield f"{name}.environment.{key} ({match['key']})", match["value"]
            for match in URL_PASSWORD.finditer(value):
                yield f"{name}.environment.{key} (URL password)", match["value"]
        for field in ("command", "entrypoint"):
            args = argv(service.get(field))
            for index, arg in enumerate(args):
                if arg in SECRET_FLAGS and index + 1 < len(args):
                    yield f"{name}.{field} {arg}", args[index + 1]
                for token in arg.split():
                    if token.startswith(">"):  # an ACL password: user NAME on >PASSWORD
                        yield f"{name}.{field} (ACL password)", token[1:]
                for match in URL_PASSWORD.finditer(arg):
                    yield f"{name}.{field} (URL password)", match["value"]


# --- Kafka ----------------------------------------------------------------------------------------------------


def test_kafka_reachable_listeners_all_require_sasl(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["kafka"])
    for key in ("KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS"):
        listeners = kafka_listeners(env, key)
        assert any(protocol.startswith("SASL_") for *_, protocol in listeners), f"{key}: no SASL listener"
        for name, host, port, protocol in listeners:
            if not protocol.startswith("SASL_"):
                assert host in LOOPBACK, (
                    f"{key}: {name}://{host}:{port} is {protocol} and reachable from the network; only SASL_PLAINTEXT"
                    " or SASL_SSL listeners may listen beyond localhost"
                )


def test_tidecast_services_talk_sasl_to_the_sasl_listener(compose: dict[str, Any]) -> None:
    kafka = environment(compose["services"]["kafka"])
    advertised = {(host, port): (name, protocol)
                  for name, host, port, protocol in kafka_listeners(kafka, "KAFKA_ADVERTISED_LISTENERS")}
    services = tidecast_services(compose)
    assert services, "no service built from docker/Dockerfile"
    for service_name, service in services.items():
        env = environment(service)
        where = f"{service_name}.environment"
        for var in ("TIDECAST_KAFKA_BOOTSTRAP", "TIDECAST_KAFKA_SECURITY_PROTOCOL", "TIDECAST_KAFKA_SASL_MECHANISM",
                    "TIDECAST_KAFKA_SASL_USERNAME", "TIDECAST_KAFKA_SASL_PASSWORD"):
            assert env.get(var), f"{where}: {var} is missing"
        host, _, port = env["TIDECAST_KAFKA_BOOTSTRAP"].rpartition(":")
        assert (host, int(port)) in advertised, f"{where}: TIDECAST_KAFKA_BOOTSTRAP is no advertised listener"
        listener, protocol = advertised[(host, int(port))]
        assert protocol.startswith("SASL_")
        assert env["TIDECAST_KAFKA_SECURITY_PROTOCOL"] == protocol, f"{where}: the {listener} listener is {protocol}"
        mechanism = env["TIDECAST_KAFKA_SASL_MECHANISM"]
        assert mechanism in KAFKA_SASL_MECHANISMS
        enabled = kafka.get(f"KAFKA_LISTENER_NAME_{listener}_SASL_ENABLED_MECHANISMS",
                            kafka.get("KAFKA_SASL_ENABLED_MECHANISMS", "GSSAPI"))
        assert mechanism in enabled.split(","), f"the broker does not enable {mechanism} ({enabled})"
        password = required_name(env["TIDECAST_KAFKA_SASL_PASSWORD"], f"{where}.TIDECAST_KAFKA_SASL_PASSWORD")
        user = env["TIDECAST_KAFKA_SASL_USERNAME"]
        if mechanism == "PLAIN":
            jaas = kafka.get(f"KAFKA_LISTENER_NAME_{listener}_PLAIN_SASL_JAAS_CONFIG", "")
            users = {match["key"]: match["value"] for match in JAAS_SECRET.finditer(jaas)}
            assert f"user_{user}" in users, f"the {listener} listener's JAAS line declares no user {user}"
            assert required_name(users[f"user_{user}"], "kafka JAAS") == password, "Kafka and tidecast passwords differ"
        else:  # SCRAM users must be added when the storage is formatted
            formatting = " ".join(argv(compose["services"]["kafka"].get("command")))
            assert "--add-scram" in formatting and f"name={user}" in formatting


def test_tidecast_settings_accept_the_compose_environment(compose: dict[str, Any]) -> None:
    for service in tidecast_services(compose).values():
        env = {key: ANY_REF.sub("placeholder", value) for key, value in environment(service).items()}
        settings = Settings.from_env(env)  # validates: SASL complete, a Redis URL
        assert settings.kafka_security.sasl
        assert ":placeholder@" in (settings.redis_url or "")


# --- Redis ----------------------------------------------------------------------------------------------------


def redis_password_variable(compose: dict[str, Any]) -> tuple[str | None, str]:
    """The ACL user (None: the default user) and the variable holding its password."""
    args = argv(compose["services"]["redis"].get("command"))
    if "--requirepass" in args:
        return None, required_name(args[args.index("--requirepass") + 1], "redis --requirepass")
    if "--user" in args:
        rule = args[args.index("--user") + 1].split()
        secret = next(token[1:] for token in rule if token.startswith(">"))
        return rule[0], required_name(secret, "redis --user")
    raise AssertionError("redis-server runs without --requirepass or an ACL --user: anyone on the network gets in")


def test_redis_requires_a_password_and_its_healthcheck_authenticates(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    user, password = redis_password_variable(compose)
    check = " ".join(argv(redis["healthcheck"]["test"]))
    env = environment(redis)
    authenticated = ("REDISCLI_AUTH" in env and required_name(env["REDISCLI_AUTH"], "REDISCLI_AUTH") == password) \
        or password in check
    assert authenticated, "the healthcheck's redis-cli does not authenticate (REDISCLI_AUTH or -a)"
    assert "PONG" in check, "redis-cli exits 0 on a NOAUTH reply: the healthcheck must look for PONG"
    if user is not None:
        assert f"--user {user}" in check or environment(redis).get("REDISCLI_USER") == user


def test_tidecast_services_use_a_redis_url_with_the_password(compose: dict[str, Any]) -> None:
    user, password = redis_password_variable(compose)
    for name, service in tidecast_services(compose).items():
        url = environment(service).get("TIDECAST_REDIS_URL", "")
        match = REDIS_URL.fullmatch(url)
        assert match, f"{name}: TIDECAST_REDIS_URL must be redis://USER:${{VAR:?...}}@redis:PORT/DB, got {url!r}"
        assert match["host"] == "redis"
        assert required_name(match["password"], f"{name}.TIDECAST_REDIS_URL") == password
        assert match["user"] in ((user,) if user else ("", "default"))


# --- secrets --------------------------------------------------------------------------------------------------


def literal_secrets(compose: dict[str, Any]) -> list[str]:
    return [f"{where}: {value!r}" for where, value in secrets(compose) if not REQUIRED.fullmatch(value)]


def test_every_secret_is_a_required_variable(compose: dict[str, Any]) -> None:
    found = list(secrets(compose))
    assert len(found) >= 5  # Kafka's JAAS line, tidecast's SASL password and Redis URL, requirepass, REDISCLI_AUTH
    assert literal_secrets(compose) == []


@pytest.mark.parametrize("mutate", [
    lambda c: c["services"]["redis"]["command"].__setitem__(-1, "hunter2"),
    lambda c: c["services"]["redis"]["environment"].__setitem__("REDISCLI_AUTH", "${TIDECAST_REDIS_PASSWORD:-x}"),
    lambda c: c["services"]["ingest"].__setitem__(
        "environment", {**c["services"]["ingest"]["environment"], "TIDECAST_REDIS_URL": "redis://:pw@redis:6379/0"}),
    lambda c: c["services"]["kafka"]["environment"].__setitem__(
        "KAFKA_LISTENER_NAME_CLIENT_PLAIN_SASL_JAAS_CONFIG", 'PlainLoginModule required user_tidecast="pw";'),
])
def test_a_literal_secret_is_found(compose: dict[str, Any], mutate: Any) -> None:
    doctored = copy.deepcopy(compose)
    mutate(doctored)
    assert literal_secrets(doctored)


def test_env_example_names_the_required_variables_without_values() -> None:
    required = set(REQUIRED.findall(COMPOSE.read_text()))
    assert required >= {"TIDECAST_KAFKA_PASSWORD", "TIDECAST_REDIS_PASSWORD"}
    example = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert set(example) == required
    assert all(value == "" for value in example.values()), "docker/.env.example must hold no password"


def test_docker_env_is_git_ignored() -> None:
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, check=False).returncode
        assert ignored == 0, "docker/.env (real passwords) is not git-ignored"
        example = subprocess.run(["git", "check-ignore", "-q", "docker/.env.example"], cwd=ROOT, check=False)
        assert example.returncode == 1, "docker/.env.example must stay tracked"
    else:
        assert "/docker/.env" in (ROOT / ".gitignore").read_text().splitlines()


# --- commands -------------------------------------------------------------------------------------------------


def dockerfile_instruction(name: str) -> list[str]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(f"{name} ")]
    assert lines, f"docker/Dockerfile has no {name}"
    return json.loads(lines[-1][len(name) + 1:])


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_every_command_of_the_tidecast_image_is_a_tidecast_command(compose: dict[str, Any]) -> None:
    assert dockerfile_instruction("ENTRYPOINT") == ["tidecast"]
    commands = {"Dockerfile CMD": dockerfile_instruction("CMD")}
    for name, service in tidecast_services(compose).items():
        if "entrypoint" in service and argv(service["entrypoint"]) != ["tidecast"]:
            assert "command" not in service, f"{name}: a command for an entrypoint other than tidecast"
            continue
        commands[name] = argv(service.get("command")) or commands["Dockerfile CMD"]
    known = subcommands()
    for name, command in commands.items():
        try:
            parsed = build_parser().parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: tidecast refuses {command}")
        assert parsed.command in known, f"{name}: {command} is not one of `tidecast --help`'s commands {sorted(known)}"
