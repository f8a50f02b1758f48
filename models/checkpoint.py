"""Safe checkpoint bytes for a learner state: a framed ``torch.save`` payload, read back weights-only.

Layout: ``MAGIC`` (8 bytes) | format version (1 byte) | BLAKE2b-256 of the payload (32 bytes) | payload.
:func:`loads` checks the frame and the digest before parsing, then parses with
``torch.load(weights_only=True)``, which admits tensors and plain containers/values only and refuses any
other global: bytes from a foreign or malicious source can never run code here. Every failure raises
:class:`CheckpointError`. (The digest detects corruption, not forgery; the weights-only parser is the guard.)

>>> import torch
>>> blob = dumps({"w": torch.ones(2), "n": 3})
>>> loads(blob)["n"]
3
>>> try:
...     loads(b"\\x80\\x04junk")
... except CheckpointError as exc:
...     print(exc)
not a tidecast checkpoint (bad magic bytes)
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import torch

MAGIC = b"TDCKPT\x00\x01"
VERSION = 1
_HEADER = len(MAGIC) + 1 + 32


class CheckpointError(ValueError):
    """The bytes are not a readable tidecast checkpoint (foreign, truncated, corrupted or unsafe)."""


def dumps(state: dict[str, Any]) -> bytes:
    """Serialise a state made of tensors and plain values (dict, list, tuple, str, int, float, bool, None)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    return MAGIC + bytes([VERSION]) + hashlib.blake2b(payload, digest_size=32).digest() + payload


def loads(blob: bytes) -> dict[str, Any]:
    """Parse :func:`dumps` output; raises :class:`CheckpointError` on anything else."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise CheckpointError(f"checkpoint must be bytes, not {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) < _HEADER or not blob.startswith(MAGIC):
        raise CheckpointError("not a tidecast checkpoint (bad magic bytes)")
    if blob[len(MAGIC)] != VERSION:
        found = blob[len(MAGIC)]
        raise CheckpointError(f"unsupported checkpoint version {found} (this code reads {VERSION})")
    digest, payload = blob[len(MAGIC) + 1 : _HEADER], blob[_HEADER:]
    if hashlib.blake2b(payload, digest_size=32).digest() != digest:
        raise CheckpointError("checkpoint is corrupted (digest mismatch)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure, including refused globals
        raise CheckpointError(f"checkpoint payload refused by the weights-only loader: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint holds a {type(state).__name__}, not a state dict")
    return state
