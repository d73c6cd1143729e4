"""The object-store contract every backend implements."""

from __future__ import annotations

import abc
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from archive.digest import MultiHasher, digest_stream, hex_of, is_digest
from archive.errors import IntegrityError, ObjectNotFoundError, ValidationError

__all__ = ["ObjectInfo", "ObjectStatus", "ObjectStore", "ProgressCallback", "VerifyingReader", "copy_object"]

#: called with the number of bytes just processed
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    digest: str
    size: int
    adler32: str | None = None
    md5: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    digest: str
    state: Literal["ok", "missing", "corrupt", "unreadable"]
    detail: str = ""
    size: int | None = None


class VerifyingReader(io.RawIOBase):
    """A read-only stream that hashes as it is read and raises IntegrityError at EOF on a mismatch."""

    def __init__(self, raw: BinaryIO, digest: str, label: str = "") -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._hasher = MultiHasher()
        self._label = label or digest
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        n = len(data)
        if n:
            b[:n] = data
            self._hasher.update(data)
        elif not self._checked:
            self._check()
        return n

    def _check(self) -> None:
        self._checked = True
        got = self._hasher.sha256
        if got != self._digest:
            raise IntegrityError(
                f"content does not match its digest (read {self._hasher.size} bytes hashing to {got})",
                file=self._label,
            )

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class ObjectStore(abc.ABC):
    """Content-addressed, immutable byte storage. Knows nothing about catalogs."""

    url: str

    # --- required primitives -------------------------------------------------
    @abc.abstractmethod
    def put_stream(
        self, stream: BinaryIO, *, expected: str | None = None, progress: ProgressCallback | None = None,
        adler32: bool = False, md5: bool = False,
    ) -> ObjectInfo:
        """Store bytes from ``stream``; return their digest. Atomic; verified after writing."""

    @abc.abstractmethod
    def open_raw(self, digest: str) -> BinaryIO:
        """Open the stored bytes without verification (ObjectNotFoundError if absent)."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def size(self, digest: str) -> int: ...

    @abc.abstractmethod
    def iter_digests(self) -> Iterator[str]: ...

    @abc.abstractmethod
    def remove(self, digest: str) -> None:
        """Remove one copy. Only repair and tests call this; policy checks live above the store."""

    def local_path(self, digest: str) -> Path | None:
        """A local filesystem path to the object's bytes, when the backend has one (read-only use)."""
        return None

    def sync(self) -> None:
        """Make completed writes durable and visible to other users of the store (DataLad: ``save``).

        Objects are already atomic and fsynced when ``put_*`` returns; most backends have nothing to do."""
        return None

    def clean_temporary(self) -> int:
        """Remove leftovers of interrupted writes (never visible as objects); returns how many."""
        return 0

    # --- derived operations --------------------------------------------------
    def put_file(
        self, path: str | os.PathLike[str], *, expected: str | None = None,
        progress: ProgressCallback | None = None, adler32: bool = False, md5: bool = False,
    ) -> ObjectInfo:
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise ValidationError("file does not exist", file=str(path)) from None
        except IsADirectoryError:
            raise ValidationError("is a directory, not a file", file=str(path)) from None
        with f:
            return self.put_stream(
                f, expected=expected, progress=progress, adler32=adler32, md5=md5
            )

    def put_bytes(self, data: bytes, *, expected: str | None = None) -> ObjectInfo:
        return self.put_stream(io.BytesIO(data), expected=expected)

    def open(self, digest: str) -> VerifyingReader:
        """Open for reading; the stream raises IntegrityError at EOF if the bytes do not match."""
        self._check_digest(digest)
        raw = self.open_raw(digest)
        return VerifyingReader(raw, digest, label=f"{self.url} {digest}")

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as r:
            data = r.read()
            r.read()  # ensure the EOF check ran
        return data

    def verify(self, digest: str) -> ObjectStatus:
        """Re-hash one object: ``ok``, ``missing``, ``corrupt`` or ``unreadable``."""
        self._check_digest(digest)
        try:
            local = self.local_path(digest)  # unbuffered 8 MiB reads straight into one buffer when local
            raw = open(local, "rb", buffering=0) if local is not None else self.open_raw(digest)  # noqa: SIM115
        except ObjectNotFoundError:
            return ObjectStatus(digest, "missing", "not in store")
        except OSError as err:
            return ObjectStatus(digest, "unreadable", f"{type(err).__name__}: {err}")
        try:
            with raw:
                h = digest_stream(raw)
        except OSError as err:
            return ObjectStatus(digest, "unreadable", f"{type(err).__name__}: {err}")
        if h.sha256 != digest:
            return ObjectStatus(digest, "corrupt", f"content hashes to {h.sha256} ({h.size} bytes)", h.size)
        return ObjectStatus(digest, "ok", size=h.size)

    @staticmethod
    def _check_digest(digest: str) -> str:
        if not is_digest(digest):
            raise ValidationError(f"not a sha256 digest: {digest!r}", field="digest")
        return hex_of(digest)

    @staticmethod
    def object_key(digest: str) -> str:
        h = hex_of(digest)
        return f"sha256/{h[:2]}/{h[2:]}"


def copy_object(source: ObjectStore, target: ObjectStore, digest: str,
                progress: ProgressCallback | None = None) -> ObjectInfo:
    """Copy one object between stores, verified twice: the source stream is re-hashed while it is read and
    the target checks the digest before the object becomes visible (IntegrityError on any mismatch; the
    target is left without a partial object)."""
    with source.open(digest) as reader:
        info = target.put_stream(reader, expected=digest, progress=progress)  # type: ignore[arg-type]
    if info.digest != digest:  # pragma: no cover - put_stream(expected=) already refuses this
        raise IntegrityError(f"copied bytes hash to {info.digest}", file=target.url, field=digest)
    return info
