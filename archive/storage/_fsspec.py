"""Object stores over fsspec: a local directory (with fsync and atomic rename), memory and S3."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from archive._fsutil import fsync_dir
from archive.digest import BLOCK_SIZE, MultiHasher, digest_file, digest_stream, is_digest
from archive.errors import IntegrityError, MissingDependencyError, ObjectNotFoundError, StorageError
from archive.storage._base import ObjectInfo, ObjectStore, ProgressCallback

__all__ = ["FsspecStore", "LocalStore", "open_store", "s3_options"]


def _copy_hashing(
    src: BinaryIO, dst: BinaryIO, hasher: MultiHasher, progress: ProgressCallback | None
) -> None:
    buf = bytearray(BLOCK_SIZE)
    view = memoryview(buf)
    readinto = getattr(src, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            chunk: bytes | memoryview = view[:n]
        else:
            chunk = src.read(BLOCK_SIZE)
            if not chunk:
                break
            n = len(chunk)
        hasher.update(chunk)
        dst.write(chunk)
        if progress is not None:
            progress(n)


class LocalStore(ObjectStore):
    """A directory ``<base>/sha256/ab/cdef…``; temporary files in ``<base>/tmp`` never look like objects."""

    def __init__(self, base: str | os.PathLike[str]) -> None:
        self.base = Path(base).absolute()
        self.url = str(self.base)

    def _path(self, digest: str) -> Path:
        return self.base / self.object_key(digest)

    def local_path(self, digest: str) -> Path | None:
        p = self._path(digest)
        return p if p.exists() else None

    def put_stream(
        self, stream: BinaryIO, *, expected: str | None = None, progress: ProgressCallback | None = None,
        adler32: bool = False, md5: bool = False,
    ) -> ObjectInfo:
        tmpdir = self.base / "tmp"
        try:
            tmpdir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"cannot create the object store: {err.strerror}", file=str(tmpdir)) from err
        tmp = tmpdir / f"{uuid.uuid4().hex}.part"
        hasher = MultiHasher(adler32=adler32, md5=md5)
        try:
            with open(tmp, "xb") as out:
                _copy_hashing(stream, out, hasher, progress)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.sha256
            if expected is not None and digest != expected:
                raise IntegrityError(f"content hashes to {digest}, expected {expected}", file=str(tmp))
            final = self._path(digest)
            if final.exists() and self.verify(digest).state == "ok":
                tmp.unlink()  # already stored and intact: no read-back of a copy that is thrown away
            else:
                again = digest_file(tmp).sha256  # read back and re-hash what was written
                if again != digest:
                    raise IntegrityError(f"read-back hashes to {again}, written as {digest}", file=str(tmp))
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                os.replace(tmp, final)
                fsync_dir(final.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return ObjectInfo(digest, hasher.size, hasher.adler32, hasher.md5)

    def open_raw(self, digest: str) -> BinaryIO:
        self._check_digest(digest)
        try:
            return open(self._path(digest), "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {digest} is not in the store", file=self.url) from None

    def exists(self, digest: str) -> bool:
        return is_digest(digest) and self._path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {digest} is not in the store", file=self.url) from None

    def iter_digests(self) -> Iterator[str]:
        root = self.base / "sha256"
        if not root.is_dir():
            return
        for d in sorted(root.iterdir()):
            if not d.is_dir() or len(d.name) != 2:
                continue
            for f in sorted(d.iterdir()):
                digest = f"sha256:{d.name}{f.name}"
                if is_digest(digest):
                    yield digest

    def remove(self, digest: str) -> None:
        """Remove this copy. A git-annex symlink (DataLad archives) is removed with its annexed content, so
        that a copy written again later is really rewritten rather than re-linked to the same bytes."""
        p = self._path(digest)
        if p.is_symlink():
            target = p.resolve()
            if ".git" in target.parts and "annex" in target.parts and target.is_file():
                with contextlib.suppress(OSError):
                    os.chmod(target.parent, stat.S_IRWXU)
                    os.chmod(target, stat.S_IWUSR | stat.S_IRUSR)
                    target.unlink()
            p.unlink()
            return
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, stat.S_IWUSR | stat.S_IRUSR)
            p.unlink()

    def clean_temporary(self) -> int:
        """Remove leftovers of interrupted writes; returns how many were removed."""
        n = 0
        for f in (self.base / "tmp").glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                n += 1
        return n


class FsspecStore(ObjectStore):
    """Any fsspec filesystem (memory, s3, ...): write to ``tmp/<uuid>``, re-hash, then move into place."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as err:
            raise MissingDependencyError(f"the filesystem for {url!r}", f"install its fsspec backend ({err})") from err
        self.fs = fs
        self.root = path.rstrip("/")
        self.url = url

    def _key(self, digest: str) -> str:
        return f"{self.root}/{self.object_key(digest)}"

    def put_stream(
        self, stream: BinaryIO, *, expected: str | None = None, progress: ProgressCallback | None = None,
        adler32: bool = False, md5: bool = False,
    ) -> ObjectInfo:
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}.part"
        hasher = MultiHasher(adler32=adler32, md5=md5)
        try:
            self._put(stream, tmp, hasher, expected, progress)
        except OSError as err:
            raise StorageError(f"writing to the store failed ({type(err).__name__}: {err}); check that the bucket "
                               "or directory exists and that the credentials in the environment allow writing",
                               file=self.url) from err
        return ObjectInfo(hasher.sha256, hasher.size, hasher.adler32, hasher.md5)

    def _put(self, stream: BinaryIO, tmp: str, hasher: MultiHasher, expected: str | None,
             progress: ProgressCallback | None) -> None:
        try:
            with self.fs.open(tmp, "wb") as out:
                _copy_hashing(stream, out, hasher, progress)
            digest = hasher.sha256
            if expected is not None and digest != expected:
                raise IntegrityError(f"content hashes to {digest}, expected {expected}", file=f"{self.url} {tmp}")
            final = self._key(digest)
            if self.fs.exists(final) and self.verify(digest).state == "ok":
                self.fs.rm(tmp)
            else:
                with self.fs.open(tmp, "rb") as back:
                    again = digest_stream(back).sha256
                if again != digest:
                    raise IntegrityError(f"read-back hashes to {again}, written as {digest}", file=self.url)
                self.fs.mv(tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            raise
        finally:
            self.fs.invalidate_cache()

    def open_raw(self, digest: str) -> BinaryIO:
        self._check_digest(digest)
        try:
            f: BinaryIO = self.fs.open(self._key(digest), "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {digest} is not in the store", file=self.url) from None
        return f

    def exists(self, digest: str) -> bool:
        return is_digest(digest) and bool(self.fs.exists(self._key(digest)))

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self._key(digest)))
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {digest} is not in the store", file=self.url) from None

    def iter_digests(self) -> Iterator[str]:
        base = f"{self.root}/sha256"
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            return
        for p in sorted(paths):
            parts = p.rstrip("/").split("/")
            digest = f"sha256:{parts[-2]}{parts[-1]}"
            if is_digest(digest):
                yield digest

    def remove(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._key(digest))
        self.fs.invalidate_cache()

    def clean_temporary(self) -> int:
        try:
            parts = [p for p in self.fs.find(f"{self.root}/tmp") if p.endswith(".part")]
        except FileNotFoundError:
            return 0
        for p in parts:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(p)
        self.fs.invalidate_cache()
        return len(parts)


#: options that are never read from ``archive.yaml``: credentials come from the environment
SECRET_OPTIONS = frozenset({"key", "secret", "token", "aws_access_key_id", "aws_secret_access_key",
                            "aws_session_token", "password"})


def s3_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """fsspec/s3fs options for an S3-compatible store, from a store's ``options`` mapping.

    ``endpoint_url`` (e.g. ``http://127.0.0.1:9000``), ``region`` and ``anon`` are mapped to s3fs's
    arguments; anything else is passed through. Credentials in the mapping are refused (they belong in the
    environment: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or a profile)."""
    out = dict(options)
    secrets = sorted(SECRET_OPTIONS & set(out))
    if secrets:
        raise StorageError(f"credentials ({', '.join(secrets)}) must not be written in the store options; "
                           "set them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
                           field="options")
    region = out.pop("region", None)
    if region is not None:
        out.setdefault("client_kwargs", {})["region_name"] = region
    return out


def open_store(url: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> ObjectStore:
    """The one coercion point from a store URL (or local path) to an ObjectStore.

    ``path`` or ``file://path``: a local directory; ``datalad:///path``: the ``objects/`` of a DataLad
    dataset (annexed); ``s3://bucket/prefix``: S3 or an S3-compatible server (see :func:`s3_options`);
    any other fsspec URL (``memory://``) through fsspec."""
    s = os.fspath(url)
    if "://" not in s:
        return LocalStore(s)
    if s.startswith("file://"):
        return LocalStore(s[len("file://") :])
    if s.startswith("datalad://"):
        from archive.storage._datalad import DataladStore

        return DataladStore(s[len("datalad://") :])
    if s.startswith(("s3://", "s3a://")):
        return FsspecStore(s, **s3_options(options or {}))
    return FsspecStore(s, **dict(options or {}))
