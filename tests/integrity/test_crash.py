"""Crash safety: SIGKILL ``put``, ``add``, ``publish``, ``replicate``, ``ingest`` and ``release create`` /
``publish`` / ``export`` at random points (62 trials, 78 kills), then check that no partial object (or half-written
export) is visible, the catalog, ledger and index are consistent, and that running the command again simply
finishes the job. Also: writers wait for the archive lock, and two processes writing at once leave a consistent
archive."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from integrity_helpers import make_archive, publish

from archive._archive import Archive
from archive.catalog import validate_archive
from archive.integrity import verify_archive
from archive.schema import parse_record, record_to_data
from archive.schema._yaml import dump_yaml
from archive.schema.v1.release import ReleaseRecord

EXE = str(Path(sys.executable).parent / "hep-archive")
TRIALS = {"put": 12, "add": 12, "publish": 12, "replicate": 12, "ingest": 6,
          "release": 8}  # 62 trials, 78 kills at random points (release: 3 commands killed per trial)


def _cmd(root: Path, *args: str) -> list[str]:
    return [EXE, "--root", str(root), *args]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _kill_at(argv: Sequence[str], delay: float) -> int:
    """Start a command, SIGKILL it after ``delay`` seconds (unless it finished); returns its return code."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


_SEEN: set[tuple[str, str]] = set()  # (store path, digest) already re-hashed ok: objects are immutable


#: the one state a kill may leave for the command run again to complete: the catalog appends a lifecycle's ledger
#: line *before* it replaces the record file (write-ahead), so a kill between the two leaves the ledger ahead
AHEAD = "(ledger) but is now a draft"


def _consistent(root: Path, where: str, *, full: bool = False, ahead_ok: bool = False) -> int:
    """No partial object is visible; validate and verify are clean. ``full``: also rebuild the index and
    re-hash every copy (otherwise verify skips copies with an ``ok`` fixity event in this test). ``ahead_ok``:
    records whose ledger is ahead of their file (``AHEAD``) are tolerated and counted (returned)."""
    a = Archive(root)
    for store in a.stores.values():
        for d in store.iter_digests():
            if full or (store.url, d) not in _SEEN:
                assert store.verify(d).state == "ok", f"{where}: partial or corrupt object {d} in {store.url}"
                _SEEN.add((store.url, d))
    problems = validate_archive(a)
    ahead = [p for p in problems if ahead_ok and AHEAD in p.reason]
    assert len(problems) == len(ahead), f"{where}: validate: {[str(p) for p in problems]}"
    rep = verify_archive(a, formats=False, since=None if full else "2000-01-01", orphans=False)
    if ahead:
        assert all(o.state == "ok" for o in rep.objects), f"{where}: verify: {rep.as_dict()}"
        assert all(AHEAD in p.reason for p in rep.problems), f"{where}: verify: {rep.as_dict()}"
    else:
        assert rep.ok, f"{where}: verify: {rep.as_dict()}"
    if full:
        assert a.index.rebuild() == len(list(a.catalog.files())), f"{where}: index"
    return len(ahead)


def _data(name: str, payload: Path, archive: Archive, status: str = "draft") -> dict[str, object]:
    entry = archive.file_entry(payload).model_dump(mode="json", exclude_none=True)
    return {"id": f"dataset/{name}", "version": "1.0.0", "title": f"Crash {name}", "license": "CC0-1.0",
            "status": status, "dates": {"published": "2026-01-01"} if status == "published" else {},
            "files": [entry]}


def _record_yaml(path: Path, name: str, payload: Path, archive: Archive, status: str) -> Path:
    path.write_text(dump_yaml(record_to_data(parse_record(_data(name, payload, archive, status)))))
    return path


def _calibrate(argv: Sequence[str], again: Sequence[str] | None = None) -> float:
    """How long the command takes here: the faster of a first run and a second one (``again``, else a repeat;
    a cold first run alone would push kills past the end)."""
    took = []
    for args in (argv, again or argv):
        t = time.perf_counter()
        res = _run(args)
        took.append(time.perf_counter() - t)
    assert res.returncode == 0 or again is None, res.stderr
    return min(took)


def _blob(path: Path, kib: int, rng: random.Random) -> Path:
    path.write_bytes(rng.randbytes(kib * 1024))
    return path


def _new(path: Path) -> Archive:
    return make_archive(path, [{"name": "local", "url": "objects"},
                               {"name": "mirror", "url": str(path.parent / f"{path.name}-mirror")}])


@pytest.fixture(autouse=True)
def _schemas_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """validate compares schemas/ with schemas generated from the models (1 s each time); they cannot change
    during this test, so generate them once: the checks after each kill stay about the catalog and ledger."""
    import functools

    import archive.schema as s

    monkeypatch.setattr(s, "schema_files", functools.cache(s.schema_files))


@pytest.fixture
def arc(tmp_path: Path) -> Archive:
    return _new(tmp_path / "arc")


class _Trials:
    def __init__(self, tmp_path: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.data = tmp_path / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.kills = self.finished = self.ahead = 0
        self.landed: Counter[str] = Counter()  # kills that landed, by command (``label`` less its trial number)

    def kill(self, root: Path, label: str, argv: list[str], full: float, *, ahead_ok: bool = False) -> None:
        code = _kill_at(argv, self.rng.uniform(0.3 * full, 1.0 * full))
        if code == -signal.SIGKILL:
            self.kills += 1
            self.landed[label.rsplit(" ", 1)[0]] += 1
        else:
            self.finished += 1
        self.ahead += _consistent(root, f"{label} after kill", ahead_ok=ahead_ok)

    def blob(self, name: str, kib: int) -> Path:
        return _blob(self.data / name, kib, self.rng)


def _put_trials(tmp_path: Path, seed: int, n: int) -> _Trials:
    """put: a 2 MiB file, so that kills land while it is written, fsynced, re-hashed or renamed."""
    t, root = _Trials(tmp_path, seed), _new(tmp_path / "put").root
    full = _calibrate(_cmd(root, "put", str(t.blob("calib.bin", 2048))))
    for i in range(n):
        f = t.blob(f"put{i}.bin", 2048)
        t.kill(root, f"put {i}", _cmd(root, "put", str(f)), full)
        res = _run(_cmd(root, "--json", "put", str(f)))
        assert res.returncode == 0, res.stderr
        assert Archive(root).store.verify(json.loads(res.stdout)[0]["sha256"]).state == "ok"
    _consistent(root, "put end", full=True)
    return t


def _add_trials(tmp_path: Path, seed: int, n: int) -> _Trials:
    """add: a published record (its YAML file and its ledger line)."""
    t, a = _Trials(tmp_path, seed), _new(tmp_path / "add")
    root = a.root
    full = _calibrate(_cmd(root, "add", str(_record_yaml(t.data / "c.yaml", "calib", t.blob("c.bin", 1), a,
                                                          "published"))))
    for i in range(n):
        y = _record_yaml(t.data / f"add{i}.yaml", f"add{i}", t.blob(f"a{i}.bin", 1), a, "published")
        t.kill(root, f"add {i}", _cmd(root, "add", str(y)), full)
        res = _run(_cmd(root, "add", str(y)))
        assert res.returncode == 0, res.stderr
    _consistent(root, "add end", full=True)
    return t


def _publish_trials(tmp_path: Path, seed: int, n: int) -> _Trials:
    """publish: a draft becomes published (rewrite + ledger); running it again finishes or says it is done."""
    t, a = _Trials(tmp_path, seed), _new(tmp_path / "pub")
    root = a.root

    def draft(name: str) -> None:
        a.add_record(parse_record(_data(name, t.blob(f"{name}.bin", 1), a)))

    draft("pubcalib")
    draft("pubcalib2")
    full = _calibrate(_cmd(root, "publish", "dataset/pubcalib@1.0.0"), _cmd(root, "publish", "dataset/pubcalib2@1.0.0"))
    for i in range(n):
        draft(f"pub{i}")
        t.kill(root, f"publish {i}", _cmd(root, "publish", f"dataset/pub{i}@1.0.0"), full)
        res = _run(_cmd(root, "publish", f"dataset/pub{i}@1.0.0"))
        assert res.returncode == 0 or "already published" in res.stderr, res.stderr
        assert Archive(root).record(f"dataset/pub{i}@1.0.0").status == "published"
    _consistent(root, "publish end", full=True)
    return t


def _replicate_trials(tmp_path: Path, seed: int, n: int) -> _Trials:
    """replicate: new objects (and record snapshots) are copied to the mirror; kill it mid-copy."""
    t, a = _Trials(tmp_path, seed), _new(tmp_path / "rep")
    root = a.root
    publish(a, [t.blob("calib.bin", 1024)], "calib")
    full = _calibrate(_cmd(root, "replicate", "--copies", "2"))
    for i in range(n):
        publish(Archive(root), [t.blob(f"r{i}.bin", 1024), t.blob(f"s{i}.bin", 1024)], f"rep{i}")
        t.kill(root, f"replicate {i}", _cmd(root, "replicate", "--copies", "2"), full)
        res = _run(_cmd(root, "replicate", "--copies", "2"))
        assert res.returncode == 0, res.stderr
        mirror = Archive(root).stores["mirror"]
        for f in Archive(root).record(f"dataset/rep{i}@1.0.0").files:
            assert mirror.verify(f.sha256).state == "ok"
    _consistent(root, "replicate end", full=True)
    return t


def _ingest_trials(tmp_path: Path, seed: int, n: int) -> _Trials:
    """ingest (datasets layer): Parquet + Zarr objects and a draft record; killed, then run again."""
    pytest.importorskip("archive.datasets")
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    t, a = _Trials(tmp_path, seed), _new(tmp_path / "ing")
    root = a.root
    src = t.data / "events.parquet"
    rng = np.random.default_rng(5)
    pq.write_table(pa.table({"pt": rng.exponential(30.0, 20_000), "weights_nominal": rng.normal(1, 0.1, 20_000)}),
                   src)
    full = _calibrate(_cmd(root, "ingest", str(src), "--name", "calib", "--version", "1.0.0"),
                      _cmd(root, "ingest", str(src), "--name", "calib2", "--version", "1.0.0"))
    for i in range(n):
        argv = _cmd(root, "ingest", str(src), "--name", f"ing{i}", "--version", "1.0.0")
        t.kill(root, f"ingest {i}", argv, full)
        res = _run(argv)
        assert res.returncode == 0 or "already exists" in res.stderr, res.stderr
        assert Archive(root).record(f"dataset/ing{i}@1.0.0").files
    _consistent(root, "ingest end", full=True)
    return t


def _bag(out: Path, where: str) -> bool:
    """An export folder is absent or a complete, valid bag (never half-written); True when it is there."""
    import bagit

    if not out.exists():
        return False
    try:
        bagit.Bag(str(out)).validate()
    except (bagit.BagError, bagit.BagValidationError) as err:
        raise AssertionError(f"{where}: half-written export {out}: {err}") from None
    return True


def _release_trials(tmp_path: Path, seed: int, n: int) -> _Trials:
    """release create, publish and export (bagit) of a dataset with an 8 MiB stored file, each killed at a random
    point, then run again. The member is published (odd trials: a draft, which `release publish` publishes too).
    After each kill the catalog and ledger are consistent (a ledger line ahead of its draft file is the one
    tolerated state, and the run again must complete it) and the export folder is absent or a complete bag."""
    pytest.importorskip("bagit")
    t, a = _Trials(tmp_path, seed), _new(tmp_path / "rel")
    root = a.root

    def member(name: str, status: str) -> str:
        r = parse_record({**_data(name, t.blob(f"{name}.bin", 8192), a), "description": f"Crash {name} data",
                          "creators": [{"name": "Curie, Marie"}]})
        a.add_record(r)
        if status == "published":
            with a.lock():
                a.catalog.publish(r.ref)
        return r.ref

    def create(rel: str, ref: str) -> list[str]:
        return _cmd(root, "release", "create", rel, "--version", "1.0.0", "--include", ref,
                    "--description", f"Release {rel}", "--usage", "Read the payload file.")

    def export(rel: str, out: Path) -> list[str]:
        return _cmd(root, "release", "export", f"{rel}@1.0.0", "--format", "bagit", "--output", str(out))

    def once(argv: list[str]) -> float:  # the interpreter is warm after `create` was timed twice
        start = time.perf_counter()
        res = _run(argv)
        assert res.returncode == 0, res.stderr
        return time.perf_counter() - start

    full_create = _calibrate(create("relcal", member("relcal", "published")))  # a draft is rewritten: twice
    full_publish = once(_cmd(root, "release", "publish", "relcal@1.0.0"))
    full_export = once(export("relcal", t.data / "bagcal"))
    for i in range(n):
        rel, out = f"rel{i}", t.data / f"bag{i}"
        ref = member(f"rd{i}", "draft" if i % 2 else "published")

        t.kill(root, f"release create {i}", create(rel, ref), full_create)
        res = _run(create(rel, ref))
        assert res.returncode == 0, res.stderr
        r = Archive(root).record(f"release/{rel}@1.0.0")
        assert isinstance(r, ReleaseRecord) and (r.status, r.release.members) == ("draft", [ref])
        _consistent(root, f"release create {i} run again")

        t.kill(root, f"release publish {i}", _cmd(root, "release", "publish", f"{rel}@1.0.0"), full_publish,
               ahead_ok=True)
        res = _run(_cmd(root, "release", "publish", f"{rel}@1.0.0"))
        assert res.returncode == 0 or "already published" in res.stderr, res.stderr
        assert [Archive(root).record(x).status for x in (f"release/{rel}@1.0.0", ref)] == ["published"] * 2
        _consistent(root, f"release publish {i} run again")

        t.kill(root, f"release export {i}", export(rel, out), full_export)
        complete = _bag(out, f"release export {i} after kill")
        res = _run(export(rel, out))
        if complete:  # the killed run had finished: the folder is refused, in one line
            assert res.returncode != 0 and "exists and is not empty" in res.stderr, (res.returncode, res.stderr)
            assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        else:
            assert res.returncode == 0, res.stderr
        assert _bag(out, f"release export {i} run again")
        left = list(out.parent.glob(f".{out.name}.*.partial"))  # a killed export's hidden stage
        assert left == [], f"release export {i}: the stage of the killed export survived the next export: {left}"
        _consistent(root, f"release export {i} run again")
    _consistent(root, "release end", full=True)
    return t


BODIES = {"put": _put_trials, "add": _add_trials, "publish": _publish_trials, "replicate": _replicate_trials,
          "ingest": _ingest_trials, "release": _release_trials}
KILLS_PER_TRIAL = {"release": 3}  # create, publish and export are each killed once per release trial


@pytest.mark.parametrize("command", list(TRIALS))
def test_sigkill_at_random_points(tmp_path: Path, command: str) -> None:
    """Two workers (own archive each, so both cores are used) share the command's trials."""
    n = TRIALS[command]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(BODIES[command], tmp_path / f"w{w}", 100 * w + len(command), n // 2 + (w < n % 2))
                   for w in range(2)]
        results = [f.result() for f in futures]
    attempts = n * KILLS_PER_TRIAL.get(command, 1)
    assert sum(r.kills + r.finished for r in results) == attempts
    kills = sum(r.kills for r in results)
    landed = sum((r.landed for r in results), Counter())
    print(f"{command}: {kills} of {attempts} kills landed {dict(landed)}; ledger ahead after a kill: "
          f"{sum(r.ahead for r in results)}")
    assert kills >= attempts // 4, f"only {kills} of {attempts} kills landed before {command} finished"
    assert sum(TRIALS.values()) >= 50


def test_writers_wait_for_the_lock(arc: Archive, tmp_path: Path) -> None:
    root = arc.root
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(1000))
    y = _record_yaml(tmp_path / "r.yaml", "locked", f, arc, "published")
    d = _record_yaml(tmp_path / "d.yaml", "draftlock", f, arc, "draft")
    assert _run(_cmd(root, "add", str(d))).returncode == 0
    digest = arc.file_entry(f).sha256
    arc.store.remove(digest)  # `put` below must store it again, but only once it holds the lock
    ledger = (root / "catalog" / "ledger.jsonl")
    before_ledger = ledger.read_bytes() if ledger.exists() else b""
    cmds = {"put": _cmd(root, "put", str(f)), "add": _cmd(root, "add", str(y)),
            "publish": _cmd(root, "publish", "dataset/draftlock@1.0.0"),
            "replicate": _cmd(root, "replicate", "--copies", "2"), "repair": _cmd(root, "repair")}
    with arc.lock():
        procs = {k: subprocess.Popen(v, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for k, v in cmds.items()}
        time.sleep(3.0)
        running = {k for k, p in procs.items() if p.poll() is None}
        assert running == set(cmds), f"these did not wait for the lock: {set(cmds) - running}"
        assert list(arc.store.iter_digests()) == [], "put wrote while another process held the lock"
        assert (ledger.read_bytes() if ledger.exists() else b"") == before_ledger
        assert list(Archive(root).stores["mirror"].iter_digests()) == []
    results = {k: (*p.communicate(timeout=120), p.returncode) for k, p in procs.items()}
    writers = ("put", "add", "publish")
    assert all(results[k][2] == 0 for k in writers), results
    # The lock serialises the processes in no fixed order: replicate or repair may run before `put` has
    # stored the object again and then rightly report it lost (exit 3); nothing else is acceptable.
    for k in ("replicate", "repair"):
        out, err, code = results[k]
        assert code == 0 or (code == 3 and "lost" in out + err), (k, results[k])
    assert _run(_cmd(root, "replicate", "--copies", "2")).returncode == 0
    _consistent(root, "after the lock was released")


_WORKER = """
import sys
from pathlib import Path
from archive._archive import Archive
from archive.schema import parse_record
a = Archive(sys.argv[1]); tag = sys.argv[2]; work = Path(sys.argv[3])
for i in range(8):
    f = work / f"{tag}{i}.bin"
    f.write_bytes((tag * 1000 + str(i)).encode())
    shared = work / f"shared{tag}{i}.bin"
    shared.write_bytes(b"the same bytes from both writers " + str(i).encode())
    with a.lock():
        entries = [a.file_entry(p, name=p.name.replace(tag, "")).model_dump(mode="json", exclude_none=True)
                   for p in (f, shared)]
    r = parse_record({"id": f"dataset/{tag}{i}", "version": "1.0.0", "title": "concurrent", "license": "CC0-1.0",
                      "files": entries})
    a.add_record(r)
    with a.lock():
        a.catalog.publish(r.ref)
"""


def test_two_writers_at_once(arc: Archive, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(arc.root), tag, str(work)],
                              stderr=subprocess.PIPE, text=True) for tag in ("x", "y")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    a = Archive(arc.root)
    assert len(a.catalog.ledger.latest()) == 16
    assert len(list(a.catalog.files())) == 16
    _consistent(arc.root, "two writers")
