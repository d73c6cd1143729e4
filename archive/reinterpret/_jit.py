"""The numba kernels, defined at module level so that numba's on-disk cache (``cache=True``) works.

numba caches only module-level functions: a kernel built inside a closure gets a new cache entry per process
and is compiled every time. Every kernel here has a fixed signature per weight dtype (float32 or float64) —
no typed lists, whose construction is itself compiled on every process start — so a second process loads all
of them from the cache (``__pycache__`` next to this file, or ``NUMBA_CACHE_DIR``) and compiles nothing.

The kernels are serial and release the GIL (``nogil=True``); :mod:`archive.reinterpret._kernel` splits the
weight columns over Python threads, so each column is still summed in event order by exactly one thread. The
thread count is never read inside a kernel (``numba.get_num_threads()`` in a cached kernel breaks caching).

``ev`` is the event of every entry when a jagged quantity is filled per object (each object takes its event's
weight, ``w[ev[i]]``); an empty ``ev`` means ``reps`` consecutive entries per event (``w[i // reps]``: one
entry per event, or one per event and histogram when several are filled in one pass).

Importing this module imports numba (about 0.4 s): only :mod:`archive.reinterpret._kernel` imports it, lazily.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["acc", "acc4", "acc_general", "index"]

@numba.njit(cache=True, nogil=True, boundscheck=False)
def acc(idx, ev, reps, w, h):  # type: ignore[no-untyped-def]
    """``h[idx[i]] += w[i]`` (or ``w[ev[i]]``, or ``w[i // reps]``) for every entry with ``idx[i] >= 0``."""
    if ev.shape[0] > 0:
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                h[j] += w[ev[i]]
    elif reps == 1:
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                h[j] += w[i]
    else:  # reps consecutive entries per event (several histograms): the weight is loaded once
        for e in range(idx.shape[0] // reps):
            v = w[e]
            for i in range(e * reps, (e + 1) * reps):
                j = idx[i]
                if j >= 0:
                    h[j] += v


@numba.njit(cache=True, nogil=True, boundscheck=False)
def acc4(idx, ev, reps, w0, w1, w2, w3, h0, h1, h2, h3):  # type: ignore[no-untyped-def]
    """Four plain columns in one sweep over the index (the index is read once for four weight streams)."""
    if ev.shape[0] > 0:
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                e = ev[i]
                h0[j] += w0[e]
                h1[j] += w1[e]
                h2[j] += w2[e]
                h3[j] += w3[e]
    elif reps == 1:
        for i in range(idx.shape[0]):
            j = idx[i]
            if j >= 0:
                h0[j] += w0[i]
                h1[j] += w1[i]
                h2[j] += w2[i]
                h3[j] += w3[i]
    else:
        for e in range(idx.shape[0] // reps):
            v0, v1, v2, v3 = w0[e], w1[e], w2[e], w3[e]
            for i in range(e * reps, (e + 1) * reps):
                j = idx[i]
                if j >= 0:
                    h0[j] += v0
                    h1[j] += v1
                    h2[j] += v2
                    h3[j] += v3


@numba.njit(cache=True, nogil=True, boundscheck=False)
def acc_general(idx, ev, reps, w, scale, use_scale, square, h, h2):  # type: ignore[no-untyped-def]
    """One column, optionally multiplied by the per-event ``scale`` and with its squares summed into ``h2``."""
    direct = ev.shape[0] == 0
    for i in range(idx.shape[0]):
        j = idx[i]
        if j >= 0:
            e = (i if reps == 1 else i // reps) if direct else ev[i]
            v = np.float64(w[e])
            if use_scale:
                v *= scale[e]
            h[j] += v
            if square:
                h2[j] += v * v


@numba.njit(cache=True, nogil=True, boundscheck=False)
def index(x, edges, uniform, out):  # type: ignore[no-untyped-def]
    """The cell of every value (``searchsorted(edges, x, side="right")``; NaN -> overflow), uniform fast path."""
    nb = edges.shape[0] - 1
    lo = edges[0]
    inv = nb / (edges[nb] - edges[0])
    for i in range(x.shape[0]):
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
