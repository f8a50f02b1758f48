"""Settings: one frozen object, built in one place from ``TIDECAST_*`` variables and CLI overrides.

>>> s = Settings.from_env({"TIDECAST_BUCKET": "1h", "TIDECAST_LATENESS": "30m"})
>>> s.bucket_seconds, s.lateness_seconds, s.topics.sales
(3600, 1800, 'tidecast.sales')
>>> Settings.from_env({"TIDECAST_PARTITIONS": "zero"})
Traceback (most recent call last):
...
tidecast.config.ConfigError: TIDECAST_PARTITIONS: expected a positive integer, got 'zero'

Secrets (a password in the Redis URL, ``TIDECAST_KAFKA_SASL_PASSWORD``) are never shown: print URLs through
:func:`redact`, and the settings' ``repr`` leaves them out.

>>> redact("redis://:s3cret@10.0.0.5:6379/0")
'redis://:***@10.0.0.5:6379/0'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tidecast.models.quantiles import DEFAULT_QUANTILES, check_quantiles
from tidecast.stream.events import MAX_PRICE, MAX_QTY
from tidecast.stream.ingest import MAX_FUTURE_MS
from tidecast.stream.timebuckets import parse_duration


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable."""


class ServiceError(RuntimeError):
    """A server did not do what tidecast needs (Kafka left forecasts unacknowledged, another forecaster took
    the lease); the message says what happened and what is safe. The CLI prints it and exits 1."""


# --- ingest bounds (poison-pill guards): TIDECAST_MAX_QTY, _MAX_PRICE, _MAX_FUTURE, _DLQ_MAX_BYTES ---------------
DLQ_MAX_BYTES = 64 * 1024
"""Default cap on the original payload a DLQ message carries: base64 grows it by a third, so a DLQ message
stays far below Kafka's 1 MB default ``message.max.bytes``."""
DLQ_MAX_BYTES_LIMIT = 384 * 1024
"""The largest allowed ``TIDECAST_DLQ_MAX_BYTES``: a key and a payload both cut at it (the payload base64'd) take
7/3 of it, 918 KB, under Kafka's 1 MB default with the reason and the envelope."""
BOUND_LIMIT = 1e12
"""The largest allowed ``TIDECAST_MAX_QTY`` and ``TIDECAST_MAX_PRICE``: unit sums of any batch stay exact in the
commit script's doubles (2^53) and revenue (at most 1e24 a line) finite."""
# --- end of ingest bounds ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topics:
    """The five topic names under one prefix."""

    prefix: str

    @property
    def clicks(self) -> str:
        return f"{self.prefix}clicks"

    @property
    def sales(self) -> str:
        return f"{self.prefix}sales"

    @property
    def plans(self) -> str:
        return f"{self.prefix}plans"

    @property
    def forecasts(self) -> str:
        return f"{self.prefix}forecasts"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}dlq"

    @property
    def targets(self) -> str:
        """Stock targets, one per series and close (docs/decisions.md)."""
        return f"{self.prefix}targets"

    @property
    def inputs(self) -> tuple[str, str]:
        """The topics whose watermarks close buckets (plans are about the future and close nothing)."""
        return (self.clicks, self.sales)

    @property
    def ingested(self) -> tuple[str, str, str]:
        """Every topic the ingest worker reads into Redis: the inputs and the plans."""
        return (self.clicks, self.sales, self.plans)

    @property
    def all(self) -> tuple[str, ...]:
        return (self.clicks, self.sales, self.plans, self.forecasts, self.dlq, self.targets)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the servers are: a Kafka bootstrap ``HOST:PORT`` and a Redis URL."""

    kafka: str
    redis: str

    def as_json(self) -> dict[str, str]:
        """The endpoints as they are, secrets included: to hand on, not to print (see :meth:`redacted`)."""
        return {"kafka": self.kafka, "redis": self.redis}

    def redacted(self) -> dict[str, str]:
        """The endpoints safe to print: a password in either becomes ``***`` (see :func:`redact`)."""
        return {"kafka": redact(self.kafka), "redis": redact(self.redis)}

    def __repr__(self) -> str:
        return f"Endpoints(kafka={redact(self.kafka)!r}, redis={redact(self.redis)!r})"


# --- security settings: Kafka SASL/TLS, Redis TLS, redaction of secrets (docs/operations.md) -----------------

KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How tidecast's Kafka clients authenticate and encrypt (``TIDECAST_KAFKA_SECURITY_PROTOCOL`` and the
    ``TIDECAST_KAFKA_SASL_*``/``TIDECAST_KAFKA_SSL_*`` variables); the password is left out of the ``repr``.

    >>> security = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "tidecast", "s3cret")
    >>> security.sasl, security.ssl, "s3cret" in repr(security)
    (True, True, False)
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the variable: an unknown protocol or mechanism, a SASL protocol
        without mechanism, username or password, SASL or TLS settings the protocol would ignore, a missing file."""
        protocol = "TIDECAST_KAFKA_SECURITY_PROTOCOL"
        if self.protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(
                f"{protocol}: expected one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, got {self.protocol!r}"
            )
        if self.sasl_mechanism is not None and self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(f"TIDECAST_KAFKA_SASL_MECHANISM: expected one of {', '.join(KAFKA_SASL_MECHANISMS)}, "
                              f"got {self.sasl_mechanism!r}")
        sasl = {
            "TIDECAST_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "TIDECAST_KAFKA_SASL_USERNAME": self.sasl_username,
            "TIDECAST_KAFKA_SASL_PASSWORD": self.sasl_password,
        }
        if self.sasl:
            missing = [name for name, value in sasl.items() if not value]
            if missing:
                raise ConfigError(f"{', '.join(missing)}: required with {protocol}={self.protocol}")
        else:
            given = [name for name, value in sasl.items() if value]
            if given:
                raise ConfigError(
                    f"{given[0]}: SASL needs {protocol}=SASL_SSL (or SASL_PLAINTEXT), it is {self.protocol}"
                )
        files = {"TIDECAST_KAFKA_SSL_CAFILE": self.ssl_cafile, "TIDECAST_KAFKA_SSL_CERTFILE": self.ssl_certfile,
                 "TIDECAST_KAFKA_SSL_KEYFILE": self.ssl_keyfile}
        for name, path in files.items():
            if path is None:
                continue
            if not self.ssl:
                raise ConfigError(f"{name}: TLS needs {protocol}=SSL or SASL_SSL, it is {self.protocol}")
            if not path.is_file():
                raise ConfigError(f"{name}: no such file: {path}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ConfigError("TIDECAST_KAFKA_SSL_KEYFILE: needs TIDECAST_KAFKA_SSL_CERTFILE (the client certificate)")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        readers: dict[str, tuple[str, Callable[[str], object]]] = {
            "TIDECAST_KAFKA_SECURITY_PROTOCOL": ("protocol", _upper),
            "TIDECAST_KAFKA_SASL_MECHANISM": ("sasl_mechanism", _upper),
            "TIDECAST_KAFKA_SASL_USERNAME": ("sasl_username", str),
            "TIDECAST_KAFKA_SASL_PASSWORD": ("sasl_password", str),
            "TIDECAST_KAFKA_SSL_CAFILE": ("ssl_cafile", Path),
            "TIDECAST_KAFKA_SSL_CERTFILE": ("ssl_certfile", Path),
            "TIDECAST_KAFKA_SSL_KEYFILE": ("ssl_keyfile", Path),
            "TIDECAST_KAFKA_SSL_CHECK_HOSTNAME": ("ssl_check_hostname", _boolean),
        }
        return cls(**_read(env, readers))  # type: ignore[arg-type]


def _security_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """The security fields of :class:`Settings` from ``env``."""
    values = _read(env, {"TIDECAST_REDIS_CA_FILE": ("redis_ca_file", Path)})
    values["kafka_security"] = KafkaSecurity.from_env(env)
    return values


def _validate_security(settings: Settings) -> None:
    settings.kafka_security.validate()
    if settings.redis_ca_file is not None:
        if not (settings.redis_url or "").startswith(("rediss://", "rediss+cluster://")):
            raise ConfigError("TIDECAST_REDIS_CA_FILE: only used with a TLS Redis, TIDECAST_REDIS_URL=rediss://... "
                              "(or rediss+cluster://...)")
        if not settings.redis_ca_file.is_file():
            raise ConfigError(f"TIDECAST_REDIS_CA_FILE: no such file: {settings.redis_ca_file}")


_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pass|pwd|token|secret)=)[^&#]*")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def redact(url: str) -> str:
    """``url`` safe to print: the password of ``user:password@`` (a lone ``token@`` too) and ``password=`` query
    values become ``***``; hosts, ports, users and databases stay. Everything before the last ``@`` counts as
    the user part, so a password with an unencoded ``/``, ``?``, ``#`` or ``@`` is hidden whole.

    >>> redact("rediss://tidecast:s3cret@redis.internal:6380/2"), redact("redis://127.0.0.1:6379/0")
    ('rediss://tidecast:***@redis.internal:6380/2', 'redis://127.0.0.1:6379/0')
    >>> redact("unix:///run/redis.sock?db=0&password=s3cret")
    'unix:///run/redis.sock?db=0&password=***'
    """
    scheme = _SCHEME.match(url)
    head, rest = (url[: scheme.end()], url[scheme.end():]) if scheme else ("", url)
    userinfo, at, host = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user + ':***' if colon else '***'}@{host}"
    return _SECRET_QUERY.sub(r"\1***", head + rest)


# --- end of the security settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a tidecast process needs to know; see README "Configuration"."""

    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    home: Path = Path(".tidecast")
    topic_prefix: str = "tidecast."
    bucket_seconds: int = 86_400
    lateness_seconds: int = 7_200
    retention: int = 56
    partitions: int = 12
    idle_timeout_seconds: int = 30
    publish_timeout_seconds: int = 60
    max_empty_seconds: int = 28 * 86_400
    outage_timeout_seconds: int = 60
    horizon: int = 14
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    lead_time: int = 2
    """TIDECAST_LEAD_TIME: buckets from an order to the bucket before it is on the shelf (stock targets)."""
    review: int = 1
    """TIDECAST_REVIEW: buckets between two orders (stock targets)."""
    service_level: float = 0.95
    """TIDECAST_SERVICE_LEVEL: the chance a replenishment cycle has no stock-out that the targets aim for."""
    explain: bool = False
    """TIDECAST_EXPLAIN: each published forecast carries its explanation (``explain``), at some cost a close."""
    session_timeout_ms: int = 6_000
    """An ingest worker that has not renewed its membership (in Redis) for this long is counted out."""
    heartbeat_interval_ms: int = 2_000
    """How often an ingest worker renews its membership and follows the split of the partitions."""
    group_id: str = field(default="")
    # --- ingest bounds (poison-pill guards) ---
    max_qty: float = MAX_QTY
    max_price: float = MAX_PRICE
    max_future_seconds: int = MAX_FUTURE_MS // 1000
    dlq_max_bytes: int = DLQ_MAX_BYTES
    allow_gaps: bool = False
    """TIDECAST_ALLOW_GAPS: records deleted from Kafka before they were ingested are counted and skipped over
    (``gaps`` in ``inspect stats``) instead of stopping ingest."""
    # --- end of ingest bounds ---
    # security settings (see KafkaSecurity above); secrets are redacted from the repr
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    redis_ca_file: Path | None = None

    def __repr__(self) -> str:
        """The dataclass ``repr`` with the Redis URL redacted (and the Kafka password left out)."""
        shown = ", ".join(
            f"{f.name}={redact(value) if f.name == 'redis_url' and value else value!r}"
            for f in fields(self) if f.repr for value in [getattr(self, f.name)]
        )
        return f"{type(self).__name__}({shown})"

    @property
    def max_empty_buckets(self) -> int:
        """``TIDECAST_MAX_EMPTY`` in buckets: empty buckets the forecaster closes in a row before it holds."""
        return max(1, self.max_empty_seconds // self.bucket_seconds)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def policy(self) -> Any:
        """The replenishment policy of the stock targets (a :class:`~tidecast.models.replenishment.Policy`;
        imported on use: it needs numpy)."""
        from tidecast.models.replenishment import Policy

        return Policy(self.lead_time, self.review, (self.service_level,))

    @property
    def consumer_group(self) -> str:
        return self.group_id or f"{self.topic_prefix}ingest"

    @property
    def embedded(self) -> bool:
        """True when either server is not configured and the embedded one is used."""
        return self.kafka_bootstrap is None or self.redis_url is None

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with the ``TIDECAST_*`` variables of the settings the CLI's top-level flags set (home,
        Kafka, Redis, prefix, bucket, lateness, retention, partitions): what a child process needs to run with
        these settings; the rest it reads from ``base`` as this process did.

        >>> env = Settings(topic_prefix="shop.", bucket_seconds=3_600).environment({"TIDECAST_BUCKET": "1d"})
        >>> env["TIDECAST_TOPIC_PREFIX"], env["TIDECAST_BUCKET"], "TIDECAST_REDIS_URL" in env
        ('shop.', '3600s', False)
        """
        env = dict(base)
        env.update(TIDECAST_HOME=str(self.home), TIDECAST_TOPIC_PREFIX=self.topic_prefix,
                   TIDECAST_BUCKET=f"{self.bucket_seconds}s", TIDECAST_LATENESS=f"{self.lateness_seconds}s",
                   TIDECAST_RETENTION=str(self.retention), TIDECAST_PARTITIONS=str(self.partitions))
        if self.kafka_bootstrap:
            env["TIDECAST_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if self.redis_url:
            env["TIDECAST_REDIS_URL"] = self.redis_url
        return env

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the non-None ``changes`` applied and validated again."""
        kept = {k: v for k, v in changes.items() if v is not None}
        updated = replace(self, **kept)
        updated.validate()
        return updated

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]*", self.topic_prefix):
            raise ConfigError(
                f"TIDECAST_TOPIC_PREFIX: only letters, digits, '.', '_' and '-' are allowed, got {self.topic_prefix!r}"
            )
        if self.bucket_seconds < 60:
            raise ConfigError(f"TIDECAST_BUCKET: buckets must be at least 1m, got {self.bucket_seconds}s")
        if self.lateness_seconds < 0:
            raise ConfigError("TIDECAST_LATENESS: must not be negative")
        for name, value in (("TIDECAST_RETENTION", self.retention), ("TIDECAST_PARTITIONS", self.partitions)):
            if value < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {value}")
        if self.max_empty_seconds < self.bucket_seconds:
            raise ConfigError(f"TIDECAST_MAX_EMPTY: expected at least one bucket ({self.bucket_seconds}s), "
                              f"got {self.max_empty_seconds}s")
        if self.publish_timeout_seconds < 1:
            raise ConfigError(f"TIDECAST_PUBLISH_TIMEOUT: expected at least 1s, got {self.publish_timeout_seconds}s")
        if self.outage_timeout_seconds < 1:
            raise ConfigError(f"TIDECAST_OUTAGE_TIMEOUT: expected at least 1s, got {self.outage_timeout_seconds}s")
        if not 1 <= self.horizon <= 1000:
            raise ConfigError(f"TIDECAST_HORIZON: expected 1 to 1000 buckets, got {self.horizon}")
        try:
            check_quantiles(self.quantiles)
        except ValueError as exc:
            raise ConfigError(f"TIDECAST_QUANTILES: {exc}") from None
        if self.lead_time < 0 or self.review < 1 or self.lead_time + self.review > self.horizon:
            raise ConfigError(f"TIDECAST_LEAD_TIME ({self.lead_time}) and TIDECAST_REVIEW ({self.review}): expected "
                              f"a lead time of 0 or more and a review of 1 or more buckets, together at most "
                              f"TIDECAST_HORIZON ({self.horizon}): the targets are read from the forecast")
        if not 0.5 <= self.service_level < 1:
            raise ConfigError(f"TIDECAST_SERVICE_LEVEL: expected a level from 0.5 to below 1, such as 0.95, got "
                              f"{self.service_level}")
        if self.redis_url is not None and not self.redis_url.startswith(
                ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")):
            raise ConfigError(f"TIDECAST_REDIS_URL: expected redis://HOST:PORT/DB (or redis+cluster://HOST:PORT,... "
                              f"for a Redis Cluster), got {redact(self.redis_url)!r}")
        _validate_security(self)
        self._validate_ingest_bounds()

    def _validate_ingest_bounds(self) -> None:
        for name, bound in (("TIDECAST_MAX_QTY", self.max_qty), ("TIDECAST_MAX_PRICE", self.max_price)):
            if not 0 < bound <= BOUND_LIMIT:  # also refuses NaN
                raise ConfigError(f"{name}: expected a number above 0 and at most {BOUND_LIMIT:.0e}, got {bound}")
        if self.max_future_seconds < 0:
            raise ConfigError("TIDECAST_MAX_FUTURE: must not be negative")
        if not 0 <= self.dlq_max_bytes <= DLQ_MAX_BYTES_LIMIT:
            raise ConfigError(
                f"TIDECAST_DLQ_MAX_BYTES: expected 0 to {DLQ_MAX_BYTES_LIMIT} bytes (a DLQ message must fit Kafka's"
                f" 1 MB default), got {self.dlq_max_bytes}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``TIDECAST_*`` from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        readers: dict[str, tuple[str, Callable[[str], object]]] = {
            "TIDECAST_KAFKA_BOOTSTRAP": ("kafka_bootstrap", _text),
            "TIDECAST_REDIS_URL": ("redis_url", _text),
            "TIDECAST_HOME": ("home", Path),
            "TIDECAST_TOPIC_PREFIX": ("topic_prefix", str),
            "TIDECAST_BUCKET": ("bucket_seconds", parse_duration),
            "TIDECAST_LATENESS": ("lateness_seconds", parse_duration),
            "TIDECAST_RETENTION": ("retention", _positive_int),
            "TIDECAST_PARTITIONS": ("partitions", _positive_int),
            "TIDECAST_IDLE_TIMEOUT": ("idle_timeout_seconds", parse_duration),
            "TIDECAST_PUBLISH_TIMEOUT": ("publish_timeout_seconds", parse_duration),
            "TIDECAST_MAX_EMPTY": ("max_empty_seconds", parse_duration),
            "TIDECAST_OUTAGE_TIMEOUT": ("outage_timeout_seconds", parse_duration),
            "TIDECAST_HORIZON": ("horizon", _positive_int),
            "TIDECAST_QUANTILES": ("quantiles", _quantiles),
            "TIDECAST_LEAD_TIME": ("lead_time", _count),
            "TIDECAST_REVIEW": ("review", _positive_int),
            "TIDECAST_SERVICE_LEVEL": ("service_level", _share),
            "TIDECAST_EXPLAIN": ("explain", _boolean),
            **_INGEST_BOUND_READERS,
        }
        values.update(_read(env, readers))
        values.update(_security_from_env(env))
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings


def _positive_number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ValueError(f"expected a positive number, got {raw!r}")
    return value


def _byte_count(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"expected a number of bytes, got {raw!r}") from None


_INGEST_BOUND_READERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "TIDECAST_MAX_QTY": ("max_qty", _positive_number),
    "TIDECAST_MAX_PRICE": ("max_price", _positive_number),
    "TIDECAST_MAX_FUTURE": ("max_future_seconds", parse_duration),
    "TIDECAST_DLQ_MAX_BYTES": ("dlq_max_bytes", _byte_count),
    "TIDECAST_ALLOW_GAPS": ("allow_gaps", lambda raw: _boolean(raw)),
}


def _text(raw: str) -> str:
    return raw.strip()


def _quantiles(raw: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers like 0.1,0.5,0.9, got {raw!r}") from None


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"expected a positive integer, got {raw!r}")
    return value


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"expected a whole number of buckets, 0 or more, got {raw!r}")
    return value


def _share(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"expected a number such as 0.95, got {raw!r}") from None


def _upper(raw: str) -> str:
    return raw.strip().upper()


def _boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _read(env: Mapping[str, str], readers: Mapping[str, tuple[str, Callable[[str], object]]]) -> dict[str, object]:
    """Attribute values from the set, non-empty variables of ``readers``; a reader's error names its variable."""
    values: dict[str, object] = {}
    for var, (attr, read) in readers.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[attr] = read(raw)
        except ValueError as exc:
            raise ConfigError(f"{var}: {exc}") from None
    return values
