"""No JIT tax: the numba kernels are module-level and cached on disk, so a second process compiles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archive.reinterpret._kernel import fill_columns, fill_columns_numpy, numba_available, use_numba_for

REPO = Path(__file__).resolve().parents[2]

# one call of every kernel for float32 and float64 weights, then each kernel's cache statistics as JSON
_SCRIPT = """
import json, numpy as np
from archive.reinterpret._kernel import bin_index, fill_columns
from archive.reinterpret import _jit
rng = np.random.default_rng(1)
n = 5000
idx = bin_index(rng.random(n), np.linspace(0, 1, 11), use_numba=True)
for dt in (np.float32, np.float64):
    ws = [rng.random(n).astype(dt) for _ in range(6)]
    out, out2 = np.zeros((6, 12)), np.zeros((6, 12))
    sq = np.zeros(6, np.uint8); sq[0] = 1
    sc = np.zeros(6, np.uint8); sc[1] = 1
    fill_columns(idx, ws, out, out2, squares=sq, scale=rng.random(n), scaled=sc, nthreads=2, use_numba=True)
    fill_columns(idx[:10], ws, out, out2, events=np.arange(10) * 3, use_numba=True)
    fill_columns(idx[:12], ws, out, out2, squares=sq, repeat=3, use_numba=True)
print(json.dumps({k: [sum(getattr(_jit, k).stats.cache_hits.values()),
                      sum(getattr(_jit, k).stats.cache_misses.values())]
                  for k in ("acc", "acc4", "acc_general", "index")}))
"""


def _run(cache: Path) -> dict[str, list[int]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.pop("HEP_ARCHIVE_NO_NUMBA", None)
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, cwd=REPO,
                         check=True, timeout=900)
    data: dict[str, list[int]] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


@pytest.mark.skipif(not numba_available(), reason="numba is not installed or switched off")
def test_second_process_loads_every_kernel_from_the_disk_cache(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    first = _run(cache)
    assert all(misses > 0 for _, misses in first.values()), first  # a fresh cache: everything compiled once
    files = sorted(p.name for p in cache.rglob("*.nbi"))
    assert files and not any("locals" in f for f in files), files  # module-level kernels, not closures
    second = _run(cache)
    assert all(hits > 0 and misses == 0 for hits, misses in second.values()), second
    assert sorted(p.name for p in cache.rglob("*.nbi")) == files  # nothing new was written
    assert len(list(cache.rglob("*.nbc"))) == sum(m for _, m in first.values())  # one entry per signature


def test_numba_and_numpy_paths_give_the_same_bits() -> None:
    rng = np.random.default_rng(5)
    n, k = 30_000, 7
    ws = [rng.normal(1, 0.3, n).astype(np.float32 if c % 2 else np.float64) for c in range(k)]
    scale = rng.uniform(0.5, 1.5, n)
    idx = rng.integers(-1, 9, n).astype(np.int32)
    sq = np.array([1, 0, 0, 1, 0, 0, 0], np.uint8)
    sc = np.array([0, 1, 0, 0, 0, 0, 1], np.uint8)
    results = []
    for use in ((True, False) if numba_available() else (False,)):
        out, out2 = np.zeros((k, 9)), np.zeros((k, 9))
        for a, b in ((0, 10_000), (10_000, n)):  # two batches accumulate the same way on both paths
            fill_columns(idx[a:b], [w[a:b] for w in ws], out, out2, squares=sq, scale=scale[a:b], scaled=sc,
                         nthreads=2, use_numba=use)
        results.append((out, out2))
    ref, ref2 = np.zeros((k, 9)), np.zeros((k, 9))
    for a, b in ((0, 10_000), (10_000, n)):
        fill_columns_numpy(idx[a:b], [w[a:b] for w in ws], ref, ref2, squares=sq, scale=scale[a:b], scaled=sc)
    for out, out2 in results:
        assert np.array_equal(out, ref) and np.array_equal(out2, ref2)


def test_per_object_entries_take_their_events_weights() -> None:
    w = np.array([1.0, 2.0, 4.0], np.float32)
    events = np.array([0, 0, 2, 2, 2])  # event 0 has two objects, event 1 none, event 2 three
    idx = np.array([1, 2, 1, -1, 1], np.int32)
    for use in ((True, False) if numba_available() else (False,)):
        out, out2 = np.zeros((1, 4)), np.zeros((1, 4))
        fill_columns(idx, [w], out, out2, squares=np.ones(1, np.uint8), events=events, use_numba=use)
        assert out[0].tolist() == [0.0, 9.0, 1.0, 0.0] and out2[0].tolist() == [0.0, 33.0, 1.0, 0.0]


def test_repeated_entries_per_event_equal_explicit_events() -> None:
    rng = np.random.default_rng(8)
    n, reps = 5000, 3
    ws = [rng.normal(1, 0.3, n).astype(np.float32) for _ in range(6)]
    idx = rng.integers(-1, 10, n * reps).astype(np.int32)
    sq = np.array([1, 0, 0, 0, 0, 0], np.uint8)
    sc = np.array([0, 1, 0, 0, 0, 0], np.uint8)
    scale = rng.uniform(0.5, 1.5, n)
    results = []
    for use in ((True, False) if numba_available() else (False,)):
        for kw in ({"repeat": reps}, {"events": np.arange(n * reps) // reps}):
            out, out2 = np.zeros((6, 10)), np.zeros((6, 10))
            fill_columns(idx, ws, out, out2, squares=sq, scale=scale, scaled=sc, nthreads=2, use_numba=use,
                         **kw)  # type: ignore[arg-type]
            results.append((out, out2))
    for out, out2 in results[1:]:
        assert np.array_equal(out, results[0][0]) and np.array_equal(out2, results[0][1])


def test_small_requests_do_not_load_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEP_ARCHIVE_NUMBA_MIN_WORK", raising=False)
    assert not use_numba_for(100_000, 200)  # 2e7 sums: numpy is done before numba would have loaded
    monkeypatch.setenv("HEP_ARCHIVE_NUMBA_MIN_WORK", "0")
    assert use_numba_for(10, 1) == numba_available()
