"""verify checks orphans (stored objects no record references) like git-annex fsck: a damaged one fails."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integrity_helpers import make_archive, publish

from archive._archive import Archive
from archive.integrity import fixity_log, repair, replicate, verify_archive


def _flip_bit(path: Path, offset: int = 0) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _object_file(root: Path, digest: str) -> Path:
    hexd = digest.removeprefix("sha256:")
    return root / "objects" / "sha256" / hexd[:2] / hexd[2:]


def test_cli_put_flip_a_bit_verify_fails(tmp_path: Path, cli: Any, write_file: Callable[[str, bytes], Path]) -> None:
    root = tmp_path / "arc"
    assert cli("init", root).code == 0
    src = write_file("unreferenced.bin", os.urandom(4096))
    put = cli("--root", root, "--json", "put", src)
    assert put.code == 0, put.err
    digest = put.json()[0]["sha256"]
    obj = _object_file(root, digest)
    assert obj.is_file()

    healthy = cli("--root", root, "verify")
    assert healthy.code == 0, healthy.err
    assert "1 orphaned" in healthy.out and digest not in healthy.err

    _flip_bit(obj, 100)
    bad = cli("--root", root, "verify")
    assert bad.code == 3, (bad.out, bad.err)
    lines = [ln for ln in bad.err.splitlines() if digest in ln]
    assert len(lines) == 1, bad.err
    assert lines[0].startswith(f"local: {digest}: ") and "corrupt" in lines[0] and "content hashes to" in lines[0]
    assert "1 orphaned, 1 of them damaged" in bad.err

    js = cli("--root", root, "--json", "verify")
    assert js.code == 3
    data = js.json()
    assert data["ok"] is False and data["orphans"] == [digest]
    assert [(o["digest"], o["state"], o["copies"]) for o in data["orphan_objects"]] == [
        (digest, "corrupt", {"local": "corrupt"})]
    assert any(p["file"] == "local" and p["field"] == digest for p in data["problems"])

    skipped = cli("--root", root, "verify", "--no-orphans")  # as before: orphans are not even listed
    assert skipped.code == 0 and "orphaned" not in skipped.out


def test_healthy_orphan_is_a_note(tmp_path: Path, write_file: Callable[[str, bytes], Path]) -> None:
    a = make_archive(tmp_path / "arc")
    publish(a, [write_file("ref.bin", b"referenced" * 50)])
    orphan = a.store.put_bytes(b"nobody refers to me").digest
    rep = verify_archive(a)
    assert rep.ok and rep.problems == [] and rep.counts() == {"ok": 1}
    assert rep.orphans == [orphan] and len(rep.orphan_objects) == 1
    o = rep.orphan_objects[0]
    assert (o.digest, o.state, o.copies, o.referenced_by, o.size) == (orphan, "ok", {"local": "ok"}, [], 19)
    assert rep.bytes_hashed == 500 + 19
    assert rep.as_dict()["orphan_objects"][0]["state"] == "ok"
    checks = {(e.digest, e.copy, e.state) for e in fixity_log(a).events() if e.run == rep.run}
    assert (orphan, "local", "ok") in checks, "orphan checks are fixity events too"
    off = verify_archive(a, orphans=False)
    assert off.ok and off.orphans == [] and off.orphan_objects == [] and off.bytes_hashed == 500


def test_unreadable_orphan_and_since_resume(tmp_archive: Archive) -> None:
    d = tmp_archive.store.put_bytes(b"x" * 300).digest
    first = verify_archive(tmp_archive)
    assert first.ok and first.bytes_hashed == 300
    again = verify_archive(tmp_archive, since="1d")  # verified ok just now: not re-hashed
    assert again.ok and again.recent == 1 and again.bytes_hashed == 0
    p = tmp_archive.object_path(d)
    os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    p.unlink()
    p.mkdir()  # a stored "object" that cannot be read
    rep = verify_archive(tmp_archive, since="2999-01-01")
    assert not rep.ok and rep.orphan_objects[0].state == "unreadable"
    assert [(p.file, p.field) for p in rep.problems] == [("local", d)]
    assert "is unreadable" in rep.problems[0].reason
    # the latest check found it damaged: --since no longer trusts the older ok
    assert not verify_archive(tmp_archive, since="2000-01-01").ok


def test_sample_covers_orphans(tmp_archive: Archive) -> None:
    digests = [tmp_archive.store.put_bytes(bytes([i]) * 10).digest for i in range(4)]
    rep = verify_archive(tmp_archive, sample=0.5, seed=3)
    assert rep.orphans == sorted(digests) and len(rep.orphan_objects) == 2 and rep.skipped == 2
    same = verify_archive(tmp_archive, sample=0.5, seed=3)
    assert [o.digest for o in same.orphan_objects] == [o.digest for o in rep.orphan_objects]


def test_jobs_give_the_same_orphan_report(tmp_archive: Archive) -> None:
    digests = [tmp_archive.store.put_bytes(os.urandom(2000 + i)).digest for i in range(8)]
    _flip_bit(tmp_archive.object_path(digests[5]))
    one, four = verify_archive(tmp_archive, jobs=1), verify_archive(tmp_archive, jobs=4)
    assert one.as_dict()["orphan_objects"] == four.as_dict()["orphan_objects"]
    assert [str(p) for p in one.problems] == [str(p) for p in four.problems]
    assert [p.field for p in four.problems] == [digests[5]] and not four.ok


def test_repair_heals_corrupt_orphan_from_replica(tmp_path: Path) -> None:
    a = make_archive(tmp_path / "arc", [{"name": "local", "url": "objects"},
                                        {"name": "mirror", "url": str(tmp_path / "m")}], copies=2)
    d = a.store.put_bytes(b"put before add" * 100).digest
    assert replicate(a).ok  # orphans are brought up to the policy
    assert a.stores["mirror"].verify(d).state == "ok"
    _flip_bit(a.object_path(d), 3)
    rep = verify_archive(a)
    assert not rep.ok and rep.orphan_objects[0].copies == {"local": "corrupt", "mirror": "ok"}
    assert [(p.file, p.field) for p in rep.problems] == [("local", d)]
    fixed = repair(a)
    assert fixed.ok and [(x.action, x.target, x.source) for x in fixed.actions] == [("replaced", "local", "mirror")]
    assert verify_archive(a).ok


def test_repair_reports_an_orphan_with_no_verified_copy_as_lost(tmp_archive: Archive) -> None:
    d = tmp_archive.store.put_bytes(b"only copy").digest
    _flip_bit(tmp_archive.object_path(d))
    res = repair(tmp_archive)
    assert not res.ok and res.lost == [d]
    assert tmp_archive.object_path(d).is_file(), "nothing is deleted without a verified copy to replace it"
