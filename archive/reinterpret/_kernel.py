"""The one-pass multi-weight fill: bin index computed once per event, every weight column accumulated at once.

``fill_columns(idx, weights, ...)`` adds ``weights[c][i]`` to ``out[c, idx[i]]`` for every column ``c`` and event
``i`` (``idx[i] < 0`` = not selected), and ``weights[c][i]**2`` to ``out2[c, idx[i]]`` for the columns flagged in
``squares``. Weights stay column-major (one contiguous array per column, as columnar files deliver them): the
columns are split over Python threads running the GIL-free kernels of :mod:`archive.reinterpret._jit`, and each
thread sweeps the index once per group of four plain columns (the index is read once for four weight streams;
columns needing squares or the prior scale go one at a time). The kernels are module-level and cached on disk,
with one fixed signature per weight dtype, so a second process compiles nothing.

Exact reproducibility: every column is accumulated in float64 in entry order by exactly one thread, so the
result depends neither on the thread count nor on the batch size; the numpy path (:func:`fill_columns_numpy`,
used without numba and for requests too small to pay for loading it) adds in the same order, bit for bit;
partial sums over row ranges are combined by the caller in a fixed order. The thread count is an argument
(``numba.get_num_threads()`` inside a cached kernel breaks caching).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bin_index", "fill_columns", "fill_columns_numpy", "numba_available", "use_numba_for"]


#: below this many entries x weight columns per request the numpy path is used: loading numba and its cached
#: kernels costs a fixed ~1 s per process, more than the numpy path needs for the whole request (~0.07 G sums/s)
NUMBA_MIN_WORK = 50_000_000


def numba_available() -> bool:
    """numba is installed and not switched off (``HEP_ARCHIVE_NO_NUMBA``); checked without importing it."""
    import importlib.util

    if os.environ.get("HEP_ARCHIVE_NO_NUMBA", "") != "":
        return False
    return importlib.util.find_spec("numba") is not None


def use_numba_for(entries: int, columns: int) -> bool:
    """Whether a request of ``entries`` x ``columns`` weight sums pays for loading numba in this process.

    The threshold is :data:`NUMBA_MIN_WORK`, or ``HEP_ARCHIVE_NUMBA_MIN_WORK`` from the environment (0: always).
    Both paths sum every column in entry order in float64, so the choice never changes a bit of the result.
    """
    if not numba_available():
        return False
    env = os.environ.get("HEP_ARCHIVE_NUMBA_MIN_WORK", "").strip()
    threshold = int(env) if env.isdigit() else NUMBA_MIN_WORK
    return int(entries) * max(int(columns), 1) >= threshold


def _jit() -> Any:
    """The module-level numba kernels (imported on first use: importing numba costs ~0.4 s)."""
    from archive.reinterpret import _jit as jit

    return jit


_NO_EVENTS = np.zeros(0, np.int64)


def bin_index(values: np.ndarray, edges: np.ndarray, *, use_numba: bool | None = None) -> np.ndarray:
    """The cell of every value: 0 underflow, 1..n the bins, n + 1 overflow (and NaN), as int32.

    Exactly ``numpy.searchsorted(edges, values, side="right")``; with numba, a per-event kernel with a
    uniform-bin fast path (an arithmetic guess corrected against the edges, so edge values land identically).
    """
    e = np.ascontiguousarray(edges, dtype=np.float64)
    if use_numba is None:
        use_numba = numba_available()
    if not use_numba or values.size < 4096:
        return np.searchsorted(e, values, side="right").astype(np.int32, copy=False)
    x = values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)
    out = np.empty(x.shape[0], np.int32)
    width = np.diff(e)
    uniform = bool(np.allclose(width, width[0], rtol=1e-9, atol=0.0))
    _jit().index(np.ascontiguousarray(x), e, uniform, out)
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


def _sweep(jit: Any, idx: np.ndarray, ev: np.ndarray, reps: int, cols: list[tuple[int, np.ndarray]],
           scale: np.ndarray, scaled: np.ndarray, squares: np.ndarray, out: np.ndarray, out2: np.ndarray) -> None:
    """One thread's share: plain columns four at a time, columns needing squares or the scale one by one."""
    has_scale = scale.shape[0] > 0
    general = [(c, w) for c, w in cols if squares[c] or (has_scale and scaled[c])]
    for dtype in (np.float32, np.float64):  # one dtype per call: one cached signature per kernel and dtype
        plain = [(c, w) for c, w in cols if w.dtype == dtype and not squares[c] and not (has_scale and scaled[c])]
        for q in range(0, len(plain) - len(plain) % 4, 4):
            (c0, w0), (c1, w1), (c2, w2), (c3, w3) = plain[q:q + 4]
            jit.acc4(idx, ev, reps, w0, w1, w2, w3, out[c0], out[c1], out[c2], out[c3])
        for c, w in plain[len(plain) - len(plain) % 4:]:
            jit.acc(idx, ev, reps, w, out[c])
    for c, w in general:
        jit.acc_general(idx, ev, reps, w, scale, bool(has_scale and scaled[c]), bool(squares[c]), out[c],
                        out2[c])


def fill_columns(
    idx: np.ndarray, weights: Sequence[np.ndarray], out: np.ndarray, out2: np.ndarray, *,
    squares: np.ndarray | None = None, scale: np.ndarray | None = None, scaled: np.ndarray | None = None,
    nthreads: int = 1, events: np.ndarray | None = None, use_numba: bool | None = None, repeat: int = 1,
) -> None:
    """Accumulate every weight column into ``out`` (``(k, n_cells)`` float64) in one pass over ``idx``.

    Args:
        idx: int32 cell index per entry; negative = skip the entry.
        weights: k arrays of the batch length (float32 columns are read as they are; other dtypes as float64;
            each column is summed in entry order by one thread).
        out: running sums, ``(k, n_cells)`` float64, updated in place.
        out2: running sums of squares, same shape; only rows flagged in ``squares`` are touched.
        squares: uint8 per column: also accumulate w**2.
        scale: optional per-event factor (the prior MC weight) applied to the columns flagged in ``scaled``.
        scaled: uint8 per column: multiply by ``scale``.
        nthreads: threads to split the columns over (the result does not depend on it).
        events: per-object filling: the event of every entry (``idx`` is then per object and each object takes
            its event's weights, ``w[events[i]]``); ``None``: one entry per event.
        use_numba: the numba kernels (default: when installed) or the numpy path; the sums are the same bits
            either way (float64, entry order).
        repeat: with ``events=None``, ``repeat`` consecutive entries per event (several histograms filled in one
            pass: entry ``i`` takes the weights of event ``i // repeat``; each weight is loaded once).
    """
    k = len(weights)
    if k == 0:
        return
    sq = np.zeros(k, np.uint8) if squares is None else np.ascontiguousarray(squares, np.uint8)
    sc_flags = np.zeros(k, np.uint8) if scaled is None else np.ascontiguousarray(scaled, np.uint8)
    sc = np.zeros(0, np.float64) if scale is None else np.ascontiguousarray(scale, np.float64)
    if not (numba_available() if use_numba is None else use_numba):
        if events is None and repeat > 1:
            events = np.arange(idx.shape[0], dtype=np.int64) // repeat
        fill_columns_numpy(idx, weights, out, out2, squares=sq, scale=scale, scaled=sc_flags, events=events)
        return
    jit = _jit()
    index = np.ascontiguousarray(idx, np.int32)
    ev = _NO_EVENTS if events is None else np.ascontiguousarray(events, np.int64)
    cols = [(c, w) for rows, arrs in _groups(weights) for c, w in zip(rows, arrs, strict=True)]
    threads = max(1, min(int(nthreads), k))
    reps = max(1, int(repeat)) if events is None else 1
    if threads == 1:
        _sweep(jit, index, ev, reps, cols, sc, sc_flags, sq, out, out2)
        return
    from concurrent.futures import ThreadPoolExecutor

    shares = [cols[(k * t) // threads:(k * (t + 1)) // threads] for t in range(threads)]
    with ThreadPoolExecutor(threads, thread_name_prefix="hep-archive-fill") as pool:
        for f in [pool.submit(_sweep, jit, index, ev, reps, s, sc, sc_flags, sq, out, out2) for s in shares]:
            f.result()


def fill_columns_numpy(
    idx: np.ndarray, weights: Sequence[np.ndarray], out: np.ndarray, out2: np.ndarray, *,
    squares: np.ndarray | None = None, scale: np.ndarray | None = None, scaled: np.ndarray | None = None,
    events: np.ndarray | None = None,
) -> None:
    """The same as :func:`fill_columns` without numba, bit for bit: every cell's entries are added to its running
    sum one after the other in entry order (``numpy.cumsum`` of the running sum and the cell's entries, which
    is a sequential accumulation), so batching changes nothing, as with the kernel."""
    sel = np.flatnonzero(idx >= 0)
    j = idx[sel]
    order = np.argsort(j, kind="stable")  # entries grouped by cell, entry order kept within a cell
    js = j[order]
    if js.size == 0:
        return
    starts = np.flatnonzero(np.concatenate([[True], js[1:] != js[:-1]]))
    segments = list(zip(js[starts].tolist(), starts.tolist(), [*starts[1:].tolist(), js.size], strict=True))
    rows = sel[order] if events is None else np.asarray(events)[sel][order]
    scale_rows = np.asarray(scale, np.float64)[rows] if scale is not None else None
    for c, w in enumerate(weights):
        v = np.asarray(np.asarray(w)[rows], dtype=np.float64)
        if scale_rows is not None and scaled is not None and scaled[c]:
            v = v * scale_rows
        _sequential_add(out[c], segments, v)
        if squares is not None and squares[c]:
            _sequential_add(out2[c], segments, v * v)


def _sequential_add(h: np.ndarray, segments: list[tuple[int, int, int]], v: np.ndarray) -> None:
    for cell, a, b in segments:
        buf = np.empty(b - a + 1)
        buf[0] = h[cell]
        buf[1:] = v[a:b]
        h[cell] = np.cumsum(buf)[-1]
