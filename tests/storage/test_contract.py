"""The object-store contract, run against every backend: local, memory, S3 (real moto server), DataLad."""

from __future__ import annotations

import io
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from archive.digest import digest_bytes
from archive.errors import IntegrityError, ObjectNotFoundError, StorageError, ValidationError
from archive.storage import FsspecStore, LocalStore, ObjectStore, copy_object, open_store, s3_options
from archive.storage._datalad import DataladStore, datalad_available

BACKENDS = ["local", "memory", "s3", "datalad"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    kind = request.param
    if kind == "local":
        return open_store(tmp_path / "objects")
    if kind == "memory":
        return open_store(f"memory://contract-{uuid.uuid4().hex}")
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        return open_store(f"s3://{bucket}/archive", {"endpoint_url": endpoint})
    reason = datalad_available()
    if reason:
        pytest.skip(reason)
    return open_store(f"datalad://{tmp_path / 'ds'}")


def tamper(store: ObjectStore, digest: str, data: bytes) -> None:
    """Overwrite an object's bytes behind the store's back (as bit rot or an operator would)."""
    if isinstance(store, LocalStore):
        p = store.base / store.object_key(digest)
        if p.is_symlink():
            p = p.resolve()
            os.chmod(p.parent, stat.S_IRWXU)
        os.chmod(p, stat.S_IWUSR | stat.S_IRUSR)
        p.write_bytes(data)
    else:
        assert isinstance(store, FsspecStore)
        store.fs.pipe(store._key(digest), data)
        store.fs.invalidate_cache()


def test_put_read_exists_size_iter(store: ObjectStore) -> None:
    a = store.put_bytes(b"alpha" * 1000)
    b = store.put_stream(io.BytesIO(b"beta"))
    assert a.digest == digest_bytes(b"alpha" * 1000) and a.size == 5000
    assert store.exists(a.digest) and store.exists(b.digest)
    assert store.size(b.digest) == 4
    assert store.read_bytes(a.digest) == b"alpha" * 1000
    assert sorted(store.iter_digests()) == sorted([a.digest, b.digest])
    assert store.verify(a.digest).state == "ok"
    again = store.put_bytes(b"beta")  # idempotent
    assert again.digest == b.digest and sorted(store.iter_digests()) == sorted([a.digest, b.digest])
    store.sync()


def test_missing_object(store: ObjectStore) -> None:
    d = digest_bytes(b"never stored")
    assert not store.exists(d)
    assert store.verify(d).state == "missing"
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes(d)
    with pytest.raises(ValidationError):
        store.verify("md5:abc")


def test_expected_digest_mismatch_leaves_nothing(store: ObjectStore) -> None:
    wrong = digest_bytes(b"something else")
    with pytest.raises(IntegrityError):
        store.put_bytes(b"payload", expected=wrong)
    assert list(store.iter_digests()) == []
    assert not store.exists(digest_bytes(b"payload"))
    assert store.clean_temporary() == 0  # the failed write removed its temporary itself


def test_corruption_detected_on_verify_and_read(store: ObjectStore) -> None:
    info = store.put_bytes(b"0123456789" * 100)
    tamper(store, info.digest, b"0123456789" * 99 + b"012345678X")
    st = store.verify(info.digest)
    assert st.state == "corrupt" and "hashes to" in st.detail
    with pytest.raises(IntegrityError):
        store.read_bytes(info.digest)
    # a corrupt copy is replaced by a good put (the atomic rename overwrites it)
    store.put_bytes(b"0123456789" * 100)
    assert store.verify(info.digest).state == "ok"


def test_remove(store: ObjectStore) -> None:
    info = store.put_bytes(b"to be removed")
    store.remove(info.digest)
    assert not store.exists(info.digest)
    assert store.verify(info.digest).state == "missing"
    store.remove(info.digest)  # removing twice is harmless


def test_copy_object_between_backends(store: ObjectStore, tmp_path: Path) -> None:
    src = LocalStore(tmp_path / "src")
    info = src.put_bytes(b"replica me")
    copy_object(src, store, info.digest)
    assert store.verify(info.digest).state == "ok"
    # copying a corrupt source is refused and leaves no object in the target
    bad = src.put_bytes(b"rotten apple")
    tamper(src, bad.digest, b"rotten appl3")
    with pytest.raises(IntegrityError):
        copy_object(src, store, bad.digest)
    assert not store.exists(bad.digest)


def test_local_store_never_shows_partial_objects(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    (store.base / "tmp").mkdir(parents=True)
    (store.base / "tmp" / "dead.part").write_bytes(b"half")
    assert list(store.iter_digests()) == []
    assert store.clean_temporary() == 1
    info = store.put_bytes(b"x" * 10)
    mode = stat.S_IMODE((store.base / store.object_key(info.digest)).stat().st_mode)
    assert mode & 0o222 == 0, "objects are read-only on disk"


def test_unreadable_copy_is_reported(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    d = digest_bytes(b"dir")
    (store.base / store.object_key(d)).mkdir(parents=True)
    assert store.verify(d).state == "unreadable"


def test_s3_options_refuse_credentials_and_map_region() -> None:
    with pytest.raises(StorageError, match="environment"):
        s3_options({"key": "AKIA", "secret": "x"})
    opts = s3_options({"endpoint_url": "http://127.0.0.1:9", "region": "eu-west-1"})
    assert opts == {"endpoint_url": "http://127.0.0.1:9", "client_kwargs": {"region_name": "eu-west-1"}}


def test_s3_missing_bucket_is_a_clear_error(s3_server: str) -> None:
    store = open_store("s3://hep-no-such-bucket/x", {"endpoint_url": s3_server})
    with pytest.raises(StorageError, match="bucket"):
        store.put_bytes(b"data")


def test_s3_objects_are_real_keys(s3_server: str, s3_bucket: str) -> None:
    import boto3

    store = open_store(f"s3://{s3_bucket}/arc", {"endpoint_url": s3_server})
    info = store.put_bytes(b"on the server")
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(
        Bucket=s3_bucket)["Contents"]]
    assert keys == [f"arc/{store.object_key(info.digest)}"]


def test_datalad_store_annexes_objects(tmp_path: Path) -> None:
    if datalad_available():
        pytest.skip(str(datalad_available()))
    store: Any = open_store(f"datalad://{tmp_path / 'ds'}")
    assert isinstance(store, DataladStore)
    info = store.put_bytes(b"annexed bytes")
    store.sync()
    p = store.base / store.object_key(info.digest)
    assert p.is_symlink() and ".git/annex/objects" in os.readlink(p)
    assert store.verify(info.digest).state == "ok"
    store.remove(info.digest)
    assert store.verify(info.digest).state == "missing"
