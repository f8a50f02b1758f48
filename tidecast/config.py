"""Settings: one frozen object, built in one place from ``TIDECAST_*`` variables and CLI overrides.

>>> s = Settings.from_env({"TIDECAST_BUCKET": "1h", "TIDECAST_LATENESS": "30m"})
>>> s.bucket_seconds, s.lateness_seconds, s.topics.sales
(3600, 1800, 'tidecast.sales')
>>> Settings.from_env({"TIDECAST_PARTITIONS": "zero"})
Traceback (most recent call last):
...
tidecast.config.ConfigError: TIDECAST_PARTITIONS: expected a positive integer, got 'zero'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tidecast.models.quantiles import DEFAULT_QUANTILES, check_quantiles
from tidecast.stream.events import MAX_PRICE, MAX_QTY
from tidecast.stream.ingest import MAX_FUTURE_MS
from tidecast.stream.timebuckets import parse_duration


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable."""


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
    """The four topic names under one prefix."""

    prefix: str

    @property
    def clicks(self) -> str:
        return f"{self.prefix}clicks"

    @property
    def sales(self) -> str:
        return f"{self.prefix}sales"

    @property
    def forecasts(self) -> str:
        return f"{self.prefix}forecasts"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}dlq"

    @property
    def inputs(self) -> tuple[str, str]:
        return (self.clicks, self.sales)

    @property
    def all(self) -> tuple[str, str, str, str]:
        return (self.clicks, self.sales, self.forecasts, self.dlq)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the servers are: a Kafka bootstrap ``HOST:PORT`` and a Redis URL."""

    kafka: str
    redis: str

    def as_json(self) -> dict[str, str]:
        return {"kafka": self.kafka, "redis": self.redis}


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
    horizon: int = 14
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 2_000
    group_id: str = field(default="")
    # --- ingest bounds (poison-pill guards) ---
    max_qty: float = MAX_QTY
    max_price: float = MAX_PRICE
    max_future_seconds: int = MAX_FUTURE_MS // 1000
    dlq_max_bytes: int = DLQ_MAX_BYTES
    # --- end of ingest bounds ---

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def consumer_group(self) -> str:
        return self.group_id or f"{self.topic_prefix}ingest"

    @property
    def embedded(self) -> bool:
        """True when either server is not configured and the embedded one is used."""
        return self.kafka_bootstrap is None or self.redis_url is None

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
        if not 1 <= self.horizon <= 1000:
            raise ConfigError(f"TIDECAST_HORIZON: expected 1 to 1000 buckets, got {self.horizon}")
        try:
            check_quantiles(self.quantiles)
        except ValueError as exc:
            raise ConfigError(f"TIDECAST_QUANTILES: {exc}") from None
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"TIDECAST_REDIS_URL: expected redis://HOST:PORT/DB, got {self.redis_url!r}")
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
            "TIDECAST_HORIZON": ("horizon", _positive_int),
            "TIDECAST_QUANTILES": ("quantiles", _quantiles),
            **_INGEST_BOUND_READERS,
        }
        for var, (attr, read) in readers.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[attr] = read(raw)
            except ValueError as exc:
                raise ConfigError(f"{var}: {exc}") from None
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
