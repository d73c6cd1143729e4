"""The one-pass multi-weight fill: bin index computed once per event, every weight column accumulated at once.

``fill_columns(idx, weights, ...)`` adds ``weights[c][i]`` to ``out[c, idx[i]]`` for every column ``c`` and event
``i`` (``idx[i] < 0`` = not selected), and ``weights[c][i]**2`` to ``out2[c, idx[i]]`` for the columns flagged in
``squares``. Weights stay column-major (one contiguous array per column, as columnar files deliver them): the
columns are split over threads, and each thread sweeps the index once per group of four plain columns (the
index is read once for four weight streams; columns needing squares or the prior scale go one at a time).

Exact reproducibility: every column is accumulated in float64 in event order by exactly one thread, so the
result does not depend on the thread count; partial sums over row ranges are combined by the caller in a fixed
order. The thread count is an argument (``numba.get_num_threads()`` inside a cached kernel breaks caching).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bin_index", "fill_columns", "fill_columns_numpy", "numba_available"]
_KERNEL: Any = None


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is in the analysis extra
        return False
    return os.environ.get("HEP_ARCHIVE_NO_NUMBA", "") == ""


def _build() -> Any:
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import numba

    @numba.njit(inline="always")
    def acc(idx, w, h):  # type: ignore[no-untyped-def]
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                h[j] += w[i]

    @numba.njit(inline="always")
    def acc4(idx, w0, w1, w2, w3, h0, h1, h2, h3):  # type: ignore[no-untyped-def]
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                h0[j] += w0[i]
                h1[j] += w1[i]
                h2[j] += w2[i]
                h3[j] += w3[i]

    @numba.njit(inline="always")
    def acc_general(idx, w, scale, use_scale, square, h, h2):  # type: ignore[no-untyped-def]
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                v = np.float64(w[i])
                if use_scale:
                    v *= scale[i]
                h[j] += v
                if square:
                    h2[j] += v * v

    @numba.njit(parallel=True, cache=True, nogil=True)
    def kernel(idx, weights, scale, scaled, squares, out, out2, nthreads):  # type: ignore[no-untyped-def]
        k = len(weights)
        has_scale = scale.shape[0] == idx.shape[0]
        for t in numba.prange(nthreads):
            c = (k * t) // nthreads
            c1 = (k * (t + 1)) // nthreads
            while c < c1:
                plain4 = c + 4 <= c1
                if plain4:
                    for q in range(c, c + 4):
                        if squares[q] != 0 or (has_scale and scaled[q] != 0):
                            plain4 = False
                if plain4:
                    acc4(idx, weights[c], weights[c + 1], weights[c + 2], weights[c + 3],
                         out[c], out[c + 1], out[c + 2], out[c + 3])
                    c += 4
                elif squares[c] != 0 or (has_scale and scaled[c] != 0):
                    acc_general(idx, weights[c], scale, has_scale and scaled[c] != 0, squares[c] != 0,
                                out[c], out2[c])
                    c += 1
                else:
                    acc(idx, weights[c], out[c])
                    c += 1

    @numba.njit(parallel=True, cache=True, nogil=True)
    def index(x, edges, uniform, out):  # type: ignore[no-untyped-def]
        nb = edges.shape[0] - 1
        lo = edges[0]
        inv = nb / (edges[nb] - edges[0])
        for i in numba.prange(x.shape[0]):
            v = x[i]
            if v != v:
                out[i] = nb + 1
                continue
            if uniform:
                f = (v - lo) * inv
                if f < 0:
                    j = 0
                elif f >= nb:
                    j = nb + 1
                else:
                    j = int(f) + 1
                while j > 0 and v < edges[j - 1]:
                    j -= 1
                while j <= nb and v >= edges[j]:
                    j += 1
            else:
                a = 0
                b = nb + 1
                while a < b:
                    m = (a + b) // 2
                    if edges[m] <= v:
                        a = m + 1
                    else:
                        b = m
                j = a
            out[i] = j

    _KERNEL = (kernel, index)
    return _KERNEL


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The cell of every value: 0 underflow, 1..n the bins, n + 1 overflow (and NaN), as int32.

    Exactly ``numpy.searchsorted(edges, values, side="right")``; with numba, a parallel per-event kernel with a
    uniform-bin fast path (an arithmetic guess corrected against the edges, so edge values land identically).
    """
    e = np.ascontiguousarray(edges, dtype=np.float64)
    if not numba_available() or values.size < 4096:
        return np.searchsorted(e, values, side="right").astype(np.int32, copy=False)
    _, index = _build()
    x = values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)
    out = np.empty(x.shape[0], np.int32)
    width = np.diff(e)
    uniform = bool(np.allclose(width, width[0], rtol=1e-9, atol=0.0))
    index(np.ascontiguousarray(x), e, uniform, out)
    return out


def _groups(weights: Sequence[np.ndarray]) -> list[tuple[list[int], list[np.ndarray]]]:
    """Columns grouped by kernel dtype: float32 stays float32 (no copy), everything else goes to float64."""
    out: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    for i, w in enumerate(weights):
        key = "f4" if w.dtype == np.float32 else "f8"
        rows, arrs = out.setdefault(key, ([], []))
        rows.append(i)
        arrs.append(np.ascontiguousarray(w, dtype=np.float32 if key == "f4" else np.float64))
    return list(out.values())


def fill_columns(
    idx: np.ndarray, weights: Sequence[np.ndarray], out: np.ndarray, out2: np.ndarray, *,
    squares: np.ndarray | None = None, scale: np.ndarray | None = None, scaled: np.ndarray | None = None,
    nthreads: int = 1,
) -> None:
    """Accumulate every weight column into ``out`` (``(k, n_cells)`` float64) in one pass over ``idx``.

    Args:
        idx: int32 cell index per event; negative = skip the event.
        weights: k arrays of the batch length (float32 columns are read as they are; other dtypes as float64;
            a mix runs the kernel once per dtype group, each column still summed in event order).
        out: running sums, ``(k, n_cells)`` float64, updated in place.
        out2: running sums of squares, same shape; only rows flagged in ``squares`` are touched.
        squares: uint8 per column: also accumulate w**2.
        scale: optional per-event factor (the prior MC weight) applied to the columns flagged in ``scaled``.
        scaled: uint8 per column: multiply by ``scale``.
        nthreads: threads to split the columns over (the result does not depend on it).
    """
    k = len(weights)
    if k == 0:
        return
    sq = np.zeros(k, np.uint8) if squares is None else np.ascontiguousarray(squares, np.uint8)
    sc_flags = np.zeros(k, np.uint8) if scaled is None else np.ascontiguousarray(scaled, np.uint8)
    sc = np.zeros(0, np.float64) if scale is None else np.ascontiguousarray(scale, np.float64)
    if not numba_available():
        fill_columns_numpy(idx, weights, out, out2, squares=sq, scale=scale, scaled=sc_flags)
        return
    from numba.typed import List

    kernel, _ = _build()
    index = np.ascontiguousarray(idx, np.int32)
    for rows, arrs in _groups(weights):
        whole = len(rows) == k
        o, o2 = (out, out2) if whole else (out[rows], out2[rows])  # fancy indexing copies: written back below
        kernel(index, List(arrs), sc, sc_flags[rows], sq[rows], o, o2, max(1, min(int(nthreads), len(rows))))
        if not whole:
            out[rows] = o
            out2[rows] = o2


def fill_columns_numpy(
    idx: np.ndarray, weights: Sequence[np.ndarray], out: np.ndarray, out2: np.ndarray, *,
    squares: np.ndarray | None = None, scale: np.ndarray | None = None, scaled: np.ndarray | None = None,
) -> None:
    """The same as :func:`fill_columns` with ``np.bincount`` per column (fallback without numba; not bit-equal)."""
    sel = idx >= 0
    j = idx[sel]
    cells = out.shape[1]
    for c, w in enumerate(weights):
        v = np.asarray(w[sel], dtype=np.float64)
        if scale is not None and scaled is not None and scaled[c]:
            v = v * np.asarray(scale, np.float64)[sel]
        out[c] += np.bincount(j, weights=v, minlength=cells)
        if squares is not None and squares[c]:
            out2[c] += np.bincount(j, weights=v * v, minlength=cells)
