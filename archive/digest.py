"""The one hashing implementation: content digests, streaming hashers and canonical JSON.

A digest is written ``sha256:<64 hex>``. Files are read in 8 MiB blocks (``hashlib.file_digest`` with small
reads runs at half speed on this machine kind); ``sha256sum`` is never shelled out to.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "BLOCK_SIZE",
    "DIGEST_RE",
    "MultiHasher",
    "canonical_json",
    "digest_bytes",
    "digest_file",
    "digest_json",
    "hex_of",
    "is_digest",
]

BLOCK_SIZE = 8 * 1024 * 1024
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.match(value))


def hex_of(digest: str) -> str:
    """The hex part of ``sha256:<hex>``; raises ValueError on anything else."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r} (expected 'sha256:' and 64 lowercase hex digits)")
    return digest[7:]


class MultiHasher:
    """sha256 (always) plus optional adler32 and md5, fed once per block."""

    def __init__(self, *, adler32: bool = False, md5: bool = False) -> None:
        self._sha = hashlib.sha256()
        self._adler: int | None = 1 if adler32 else None
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    def update(self, block: bytes | memoryview) -> None:
        self._sha.update(block)
        if self._adler is not None:
            self._adler = zlib.adler32(block, self._adler)
        if self._md5 is not None:
            self._md5.update(block)
        self.size += len(block)

    @property
    def sha256(self) -> str:
        return "sha256:" + self._sha.hexdigest()

    @property
    def adler32(self) -> str | None:
        return None if self._adler is None else f"adler32:{self._adler:08x}"

    @property
    def md5(self) -> str | None:
        return None if self._md5 is None else "md5:" + self._md5.hexdigest()


def digest_bytes(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_stream(stream: BinaryIO, hasher: MultiHasher | None = None) -> MultiHasher:
    """Hash a stream to its end in 8 MiB blocks: straight into one reused buffer when the stream has
    ``readinto`` (no new bytes object per block), else by ``read``."""
    h = hasher or MultiHasher()
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while block := stream.read(BLOCK_SIZE):
            h.update(block)
        return h
    buf = bytearray(BLOCK_SIZE)
    view = memoryview(buf)
    while n := readinto(view):
        h.update(view[:n])
    return h


def digest_file(path: str | Path, *, adler32: bool = False, md5: bool = False) -> MultiHasher:
    """Hash a local file in 8 MiB blocks; returns the hasher (``.sha256``, ``.size``, ...)."""
    with open(path, "rb", buffering=0) as f:
        return digest_stream(f, MultiHasher(adler32=adler32, md5=md5))


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN (pyhf's digest convention)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest_json(obj: Any) -> str:
    return digest_bytes(canonical_json(obj))

