"""A local store with an S3 replica on a real S3-compatible server (moto, 127.0.0.1): replicate, repair both
ways, and the copies policy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integrity_helpers import make_archive, publish

from archive.integrity import repair, replicate, verify_archive


def test_s3_replica_roundtrip(tmp_path: Path, s3_server: str, s3_bucket: str, cli: Any,
                              write_file: Callable[[str, bytes], Path]) -> None:
    a = make_archive(tmp_path / "arc", [
        {"name": "local", "url": "objects"},
        {"name": "s3", "url": f"s3://{s3_bucket}/archive", "options": {"endpoint_url": s3_server}},
    ], copies=2)
    rec = publish(a, [write_file("a.bin", os.urandom(3000)), write_file("b.bin", os.urandom(3000))], "s3rec")
    assert verify_archive(a).counts() == {"under-replicated": 2}
    res = cli("--root", a.root, "--json", "replicate")
    assert res.code == 0, res.err
    targets = {act["target"] for act in res.json()["actions"]}
    assert targets == {"s3"}
    s3 = a.stores["s3"]
    d0, d1 = (f.sha256 for f in rec.files)
    assert s3.verify(d0).state == "ok" and s3.verify(d1).state == "ok"
    assert verify_archive(a).ok
    # local copy rots: repaired from S3
    p = a.object_path(d0)
    os.chmod(p, 0o644)
    p.write_bytes(b"\0" * 3000)
    # S3 copy disappears: the policy notices, replicate brings it back
    s3.remove(d1)
    rep = verify_archive(a)
    assert {o.digest: o.state for o in rep.objects if o.state != "ok"} == {d0: "degraded", d1: "under-replicated"}
    healed = repair(a)
    assert healed.ok and {(x.target, x.action) for x in healed.actions} >= {("local", "replaced"), ("s3", "copied")}
    assert verify_archive(a).ok
    assert replicate(a).actions == []  # nothing left to do
