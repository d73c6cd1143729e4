"""verify throughput against plain ``hashlib.sha256`` over the same bytes, side by side in one process.

Generates ``--files`` files of ``--mib`` MiB each (random bytes), publishes them in a fresh archive, then times
(median of ``--repeat`` interleaved rounds; page cache warm, the files are read once first):

* ``hashlib``: a plain loop, ``hashlib.sha256`` fed 8 MiB ``readinto`` blocks of each object file (the floor);
* ``hashlib_1mib``: the same with 1 MiB ``read`` blocks (what small reads cost);
* ``verify_j1`` / ``verify_j2``: ``verify_archive(jobs=1|2)`` (catalog load, fixity events, orphan scan included);
* ``verify_objects_j1``: ``ObjectStore.verify`` of every object alone (the hashing loop of verify).

Ratios are throughput relative to ``hashlib``. Writes ``benchmarks/results/bench_verify.json``.
Usage: ``python benchmarks/bench_verify.py [--files 8 --mib 64 --repeat 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "bench_verify.json"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integrity"))


def _median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _hashlib(paths: list[Path], block: int, readinto: bool) -> None:
    buf = bytearray(block)
    view = memoryview(buf)
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as f:
            if readinto:
                while n := f.readinto(view):
                    h.update(view[:n])
            else:
                while chunk := f.read(block):
                    h.update(chunk)
        h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    from integrity_helpers import make_archive, publish

    from archive.integrity import verify_archive

    with tempfile.TemporaryDirectory() as tmp:
        a = make_archive(Path(tmp) / "arc")
        rng = np.random.default_rng(0)
        inputs = []
        for i in range(args.files):
            p = Path(tmp) / f"f{i}.bin"
            p.write_bytes(rng.bytes(args.mib * 1024 * 1024))
            inputs.append(p)
        rec = publish(a, inputs, "bench")
        for p in inputs:
            p.unlink()
        digests = [f.sha256 for f in rec.files]
        paths = [a.object_path(d) for d in digests]
        total = sum(p.stat().st_size for p in paths)
        _hashlib(paths, 8 << 20, True)  # warm the page cache

        def verify(jobs: int) -> None:
            rep = verify_archive(a, jobs=jobs, formats=False)
            assert rep.ok and rep.bytes_hashed == total

        def objects() -> None:
            assert all(a.store.verify(d).state == "ok" for d in digests)

        fns: dict[str, Callable[[], Any]] = {
            "hashlib": lambda: _hashlib(paths, 8 << 20, True),
            "hashlib_1mib": lambda: _hashlib(paths, 1 << 20, False),
            "verify_objects_j1": objects,
            "verify_j1": lambda: verify(1),
            "verify_j2": lambda: verify(2),
        }
        samples: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeat):  # interleaved rounds: a busy neighbour slows every variant alike
            for k, fn in fns.items():
                samples[k].append(_median(fn, 1))
        times = {k: statistics.median(v) for k, v in samples.items()}
    gbs = {k: total / v / 1e9 for k, v in times.items()}
    out = {
        "bytes": total, "files": args.files, "repeat": args.repeat, "python": platform.python_version(),
        "seconds": times, "gb_per_s": gbs,
        "ratio_vs_hashlib": {k: gbs[k] / gbs["hashlib"] for k in gbs},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    for k in times:
        print(f"{k:20s} {gbs[k]:6.2f} GB/s  {out['ratio_vs_hashlib'][k]:5.2f}x hashlib")


if __name__ == "__main__":
    main()
