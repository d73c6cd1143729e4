from __future__ import annotations

import numpy as np
import pytest

from archive.reinterpret._kernel import fill_columns, fill_columns_numpy


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(3)
    n, k = 50_000, 13
    idx = rng.integers(-1, 12, n).astype(np.int32)
    return idx, [rng.normal(1, 0.3, n).astype(np.float32) for _ in range(k)]


def _straight(idx: np.ndarray, w: np.ndarray, cells: int) -> np.ndarray:
    out = np.zeros(cells)
    for j, v in zip(idx.tolist(), w.astype(np.float64).tolist(), strict=True):
        if j >= 0:
            out[j] += v
    return out


def test_kernel_matches_event_loop_and_skips_negative(batch: tuple[np.ndarray, list[np.ndarray]]) -> None:
    idx, ws = batch
    out, out2 = np.zeros((len(ws), 12)), np.zeros((len(ws), 12))
    sq = np.zeros(len(ws), np.uint8)
    sq[[0, 5]] = 1
    fill_columns(idx, ws, out, out2, squares=sq, nthreads=2)
    for c in (0, 5, 12):
        np.testing.assert_array_equal(out[c], _straight(idx, ws[c], 12))  # same order, same float64 sums
    np.testing.assert_allclose(out2[0], _straight(idx, ws[0].astype(np.float64) ** 2, 12), rtol=1e-12)
    assert not out2[1].any()  # squares only where asked


def test_thread_count_does_not_change_a_bit(batch: tuple[np.ndarray, list[np.ndarray]]) -> None:
    idx, ws = batch
    results = []
    for t in (1, 2, 5):
        out, out2 = np.zeros((len(ws), 12)), np.zeros((len(ws), 12))
        fill_columns(idx, ws, out, out2, nthreads=t)
        results.append(out)
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def test_accumulates_across_calls_and_scales(batch: tuple[np.ndarray, list[np.ndarray]]) -> None:
    idx, ws = batch
    scale = np.linspace(0.5, 1.5, idx.size)
    scaled = np.zeros(len(ws), np.uint8)
    scaled[1] = 1
    out, out2 = np.zeros((len(ws), 12)), np.zeros((len(ws), 12))
    half = idx.size // 2
    for a, b in ((0, half), (half, idx.size)):
        fill_columns(idx[a:b], [w[a:b] for w in ws], out, out2, scale=scale[a:b], scaled=scaled, nthreads=2)
    ref, ref2 = np.zeros_like(out), np.zeros_like(out)
    fill_columns_numpy(idx, ws, ref, ref2, scale=scale, scaled=scaled)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    np.testing.assert_allclose(out[1], _straight(idx, ws[1] * scale, 12), rtol=1e-12)


def test_mixed_dtypes_go_to_float64() -> None:
    idx = np.array([0, 1, 1, -1], np.int32)
    ws = [np.array([1, 2, 3, 4], np.float32), np.array([0.1, 0.2, 0.3, 0.4], np.float64), np.array([1, 1, 1, 1])]
    out, out2 = np.zeros((3, 2)), np.zeros((3, 2))
    fill_columns(idx, ws, out, out2, nthreads=2)
    np.testing.assert_allclose(out, [[1, 5], [0.1, 0.5], [1, 2]])


def test_mixed_dtype_groups_keep_every_bit(batch: tuple[np.ndarray, list[np.ndarray]]) -> None:
    idx, ws = batch
    mixed = [w.astype(np.float64) if i % 3 == 0 else w for i, w in enumerate(ws)]
    sq = np.zeros(len(ws), np.uint8)
    sq[[1, 3]] = 1
    a, a2 = np.zeros((len(ws), 12)), np.zeros((len(ws), 12))
    b, b2 = np.zeros((len(ws), 12)), np.zeros((len(ws), 12))
    fill_columns(idx, ws, a, a2, squares=sq, nthreads=2)
    fill_columns(idx, mixed, b, b2, squares=sq, nthreads=2)
    assert np.array_equal(a, b) and np.array_equal(a2, b2)  # float32 -> float64 is exact; order unchanged
