"""verify: missing, corrupt, unreadable, orphans, sampling, --since, --jobs, resume, fixity events, formats."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from integrity_helpers import make_archive, publish

from archive._archive import Archive
from archive.integrity import check_format, detect_format, fixity_log, parse_since, verify_archive


def _corrupt(path: Path, offset: int = 0) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def three(tmp_archive: Archive, write_file: Callable[[str, bytes], Path]) -> tuple[Archive, list[str]]:
    files = [write_file(f"f{i}.bin", os.urandom(1000 + i)) for i in range(3)]
    rec = publish(tmp_archive, files)
    return tmp_archive, [f.sha256 for f in rec.files]


def test_clean_archive_verifies(three: tuple[Archive, list[str]]) -> None:
    a, _digests = three
    rep = verify_archive(a)
    assert rep.ok and rep.counts() == {"ok": 3} and rep.bytes_hashed == 3003
    assert rep.orphans == [] and rep.temporaries == 0


def test_missing_corrupt_unreadable_orphan(three: tuple[Archive, list[str]]) -> None:
    a, (d0, d1, d2) = three
    a.store.remove(d0)
    _corrupt(a.object_path(d1), 7)
    p2 = a.object_path(d2)
    os.chmod(p2, stat.S_IWUSR | stat.S_IRUSR)
    p2.unlink()
    p2.mkdir()  # an object that cannot be read
    orphan = a.store.put_bytes(b"nobody refers to me").digest
    (a.store.base / "tmp").mkdir(exist_ok=True)  # type: ignore[attr-defined]
    (a.store.base / "tmp" / "x.part").write_bytes(b"half")  # type: ignore[attr-defined]
    rep = verify_archive(a)
    states = {o.digest: o.state for o in rep.objects}
    assert states == {d0: "missing", d1: "corrupt", d2: "unreadable"}
    assert not rep.ok and rep.orphans == [orphan] and rep.temporaries == 1


def test_size_mismatch_with_same_digest_field_is_corrupt(three: tuple[Archive, list[str]]) -> None:
    a, (d0, _, _) = three
    # rewrite the record with a wrong size: verify must not trust the store's size alone
    path = next(a.catalog.files()).path
    text = path.read_text().replace("size: 1000\n", "size: 999\n", 1)
    assert "size: 999" in text
    path.write_text(text)
    rep = verify_archive(a)
    bad = [o for o in rep.objects if o.digest == d0]
    assert bad[0].state == "corrupt" and "recorded 999" in bad[0].details["local"]


def test_sample_is_a_reproducible_fraction(three: tuple[Archive, list[str]]) -> None:
    a, _ = three
    r1 = verify_archive(a, sample=0.34, seed=7)
    r2 = verify_archive(a, sample=0.34, seed=7)
    assert len(r1.objects) == 2 and r1.skipped == 1
    assert [o.digest for o in r1.objects] == [o.digest for o in r2.objects]
    with pytest.raises(ValueError, match="fraction"):
        verify_archive(a, sample=1.5)


def test_since_skips_recently_verified_copies(three: tuple[Archive, list[str]]) -> None:
    a, (d0, _, _) = three
    first = verify_archive(a)
    assert first.bytes_hashed == 3003
    again = verify_archive(a, since="1d")
    assert again.ok and again.recent == 3 and again.bytes_hashed == 0
    # a copy that never verified ok is always re-hashed
    _corrupt(a.object_path(d0))
    rep = verify_archive(a, since="2000-01-01")
    assert rep.ok, "since 2000 every copy counts as verified: the corruption is not looked at"
    rep = verify_archive(a, since="2999-01-01")
    assert not rep.ok and rep.bytes_hashed == 3003
    # the latest check of d0 says corrupt: an older ok no longer counts, whatever the date
    rep = verify_archive(a, since="2000-01-01")
    assert not rep.ok and rep.bytes_hashed == 1000 and rep.recent == 2
    with pytest.raises(ValueError, match="not a date"):
        verify_archive(a, since="yesterday")
    assert parse_since("2026-01-02").year == 2026


def test_jobs_give_the_same_report(tmp_archive: Archive, write_file: Callable[[str, bytes], Path]) -> None:
    rng = np.random.default_rng(1)
    files = [write_file(f"g{i}.bin", rng.bytes(5000 + i)) for i in range(12)]
    rec = publish(tmp_archive, files)
    _corrupt(tmp_archive.object_path(rec.files[3].sha256))
    one = verify_archive(tmp_archive, jobs=1)
    four = verify_archive(tmp_archive, jobs=4)
    assert one.as_dict()["objects"] == four.as_dict()["objects"]
    assert four.counts() == {"ok": 11, "corrupt": 1}


def test_fixity_events_and_resume(three: tuple[Archive, list[str]]) -> None:
    a, digests = three
    log = fixity_log(a)
    run = log.start({"test": True})
    log.check(run, digests[0], "local", "ok", size=1000)  # an interrupted run that checked one copy
    log.close()
    with open(log.path, "a") as f:
        f.write('{"event": "check", "run": "torn')  # and died in the middle of a line
    rep = verify_archive(a, resume=True)
    assert rep.ok and rep.run == run and rep.resumed == 1 and rep.bytes_hashed == 2003
    lines = [json.loads(x) for x in log.path.read_text().splitlines() if x.endswith("}")]
    assert [ln["event"] for ln in lines if ln["run"] == run][-1] == "end"
    checks = [e for e in log.events() if e.run == run]
    assert sorted(e.digest for e in checks) == sorted(digests)
    assert log.interrupted_run() is None
    fresh = verify_archive(a, resume=True)  # nothing to resume: a new full run
    assert fresh.run != run and fresh.bytes_hashed == 3003


def test_tree_files_are_verified(tmp_archive: Archive) -> None:
    p = tmp_archive.root / "recipes" / "run.sh"
    p.write_text("echo hi\n")
    publish(tmp_archive, [p], "treerec", tree=True)
    assert verify_archive(tmp_archive).ok
    p.write_text("echo HI\n")
    rep = verify_archive(tmp_archive)
    assert rep.objects[0].copies == {"tree:recipes/run.sh": "corrupt"}


def test_misplaced_record_is_reported(three: tuple[Archive, list[str]]) -> None:
    a, _ = three
    src = next(a.catalog.files()).path
    dst = src.parent / "2.0.0.yaml"
    src.rename(dst)
    rep = verify_archive(a)
    reasons = " ".join(str(p) for p in rep.problems)
    assert "belongs in catalog/dataset/sample/1.0.0.yaml" in reasons and "missing from the catalog" in reasons


# --- format-level checksums -----------------------------------------------------------------------

def _parquet(path: Path, values: np.ndarray) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": values}), path, write_page_checksum=True, use_dictionary=False,
                   compression="none")
    return path


def test_parquet_page_crc(tmp_path: Path, tmp_archive: Archive) -> None:
    good = _parquet(tmp_path / "good.parquet", np.arange(500, dtype="f8"))
    assert detect_format(good) == "parquet" and check_format(good).ok  # type: ignore[union-attr]
    bad = tmp_path / "bad.parquet"
    data = bytearray(good.read_bytes())
    data[100] ^= 0x10  # inside the first data page
    bad.write_bytes(bytes(data))
    res = check_format(bad)
    assert res is not None and not res.ok and "CRC" in res.detail
    # stored as it is (its sha256 matches), only the format check finds it
    publish(tmp_archive, [bad], "badpq")
    rep = verify_archive(tmp_archive)
    assert rep.counts() == {"ok": 1} and not rep.ok
    assert "parquet checksums" in str(rep.problems[0])
    assert verify_archive(tmp_archive, formats=False).ok


def test_zarr_crc32c(tmp_path: Path) -> None:
    import zarr
    from zarr.codecs import Crc32cCodec

    d = tmp_path / "a.zarr"
    g = zarr.open_group(str(d), mode="w")
    arr = g.create_array("x", shape=(64,), chunks=(32,), dtype="f8", compressors=[Crc32cCodec()])
    arr[:] = np.arange(64.0)
    res = check_format(d)
    assert res is not None and res.ok and "1 with crc32c" in res.detail
    chunk = d / "x" / "c" / "0"
    _corrupt(chunk, 5)
    res = check_format(d)
    assert res is not None and not res.ok and "checksum" in res.detail
    zp = tmp_path / "z.zip"
    store = zarr.storage.ZipStore(str(zp), mode="w")
    zg = zarr.open_group(store, mode="w")
    zg.create_array("y", shape=(8,), chunks=(8,), dtype="i4", compressors=[Crc32cCodec()])[:] = np.arange(8)
    store.close()
    assert detect_format(zp) == "zarr" and check_format(zp).ok  # type: ignore[union-attr]


def test_hdf5_fletcher32(tmp_path: Path) -> None:
    import h5py

    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("w", data=np.arange(4096, dtype="f8"), chunks=(1024,), fletcher32=True)
    res = check_format(p)
    assert res is not None and res.ok and "1 with Fletcher-32" in res.detail
    with h5py.File(p, "r") as f:
        offset = f["w"].id.get_chunk_info(1).byte_offset
    _corrupt(p, offset + 10)
    res = check_format(p)
    assert res is not None and not res.ok


def test_cli_verify_json_and_exit_codes(three: tuple[Archive, list[str]], cli: Any) -> None:
    a, (d0, _, _) = three
    ok = cli("--root", a.root, "--json", "verify", "--jobs", "2")
    assert ok.code == 0 and ok.json()["counts"] == {"ok": 3}
    a.store.remove(d0)
    bad = cli("--root", a.root, "verify")
    assert bad.code == 3 and f"missing: {d0}" in bad.err
    usage = cli("--root", a.root, "verify", "--since", "soon")
    assert usage.code == 1 and "not a date" in usage.err
    assert cli("--root", a.root, "verify", "--sample", "0.5", "--seed", "1").code in (0, 3)


def test_under_replicated_until_replicate(tmp_path: Path, write_file: Callable[[str, bytes], Path]) -> None:
    a = make_archive(tmp_path / "arc", [{"name": "local", "url": "objects"},
                                        {"name": "mirror", "url": str(tmp_path / "m")}], copies=2)
    publish(a, [write_file("x.bin", b"x" * 100)])
    rep = verify_archive(a)
    assert rep.counts() == {"under-replicated": 1}
