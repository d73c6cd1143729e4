"""Object store promises at the foundation level: atomic, verified writes; a killed put leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from archive.digest import digest_bytes
from archive.errors import IntegrityError, ObjectNotFoundError
from archive.storage import open_store


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_put_get_verify(kind: str, tmp_path: Path) -> None:
    import uuid

    store = open_store(tmp_path / "objects" if kind == "local" else f"memory://t-{uuid.uuid4().hex}")
    data = os.urandom(3 * 1024 * 1024 + 17)
    info = store.put_bytes(data)
    assert info.digest == digest_bytes(data) and info.size == len(data)
    assert store.read_bytes(info.digest) == data
    assert store.verify(info.digest).state == "ok"
    assert list(store.iter_digests()) == [info.digest]
    assert store.put_bytes(data).digest == info.digest  # idempotent
    with pytest.raises(IntegrityError, match="expected"):
        store.put_bytes(b"other", expected=info.digest)
    assert list(store.iter_digests()) == [info.digest]
    missing = "sha256:" + "0" * 64
    assert store.verify(missing).state == "missing"
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes(missing)


def test_reading_a_corrupt_object_raises_at_eof(tmp_path: Path) -> None:
    store = open_store(tmp_path / "objects")
    info = store.put_bytes(b"x" * 1000)
    p = store.local_path(info.digest)
    assert p is not None
    p.chmod(0o644)
    p.write_bytes(b"x" * 999 + b"y")
    with pytest.raises(IntegrityError, match="does not match its digest"):
        store.read_bytes(info.digest)
    assert store.verify(info.digest).state == "corrupt"
    store.put_bytes(b"x" * 1000)  # storing the right bytes again heals the copy
    assert store.verify(info.digest).state == "ok"


SLOW_PUT = """
import sys, time
from archive.storage import open_store
class Slow:
    def __init__(self): self.n = 0
    def read(self, k):
        self.n += 1
        if self.n == 3:
            print("WRITING", flush=True)
        if self.n > 2000: return b""
        time.sleep(0.01)
        return b"z" * 65536
open_store(sys.argv[1]).put_stream(Slow())
print("DONE", flush=True)
"""


def test_killed_put_leaves_no_object(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PUT, str(objects)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "WRITING"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store: Any = open_store(objects)
    assert list(store.iter_digests()) == []
    assert list((objects / "tmp").glob("*.part"))  # the partial write exists only under a temporary name
    assert store.clean_temporary() == 1
