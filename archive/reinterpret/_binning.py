"""Binnings: ``lo:hi:n`` (uniform), explicit edges ``0,1,2.5,5``, or ``official`` (the dataset's recorded one).

Bins are half-open ``[e_i, e_i+1)``; the histogram keeps an underflow bin (index 0) and an overflow bin
(index n + 1), so an n-bin binning fills n + 2 cells. NaN values go to the overflow bin (as in
boost-histogram); a value equal to the last edge is overflow too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archive.errors import ValidationError

__all__ = ["Binning", "bin_index", "parse_bins"]

MAX_BINS = 100_000


@dataclass(frozen=True)
class Binning:
    """Ascending bin edges and where they came from (``uniform``, ``edges`` or ``official``)."""

    edges: tuple[float, ...]
    source: str = "edges"

    @property
    def n(self) -> int:
        """Number of in-range bins (without under/overflow)."""
        return len(self.edges) - 1

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.edges, dtype=np.float64)

    def spec(self) -> str:
        """A spec string that :func:`parse_bins` turns back into the same edges."""
        return ",".join(repr(e) for e in self.edges)


def _check_edges(edges: Sequence[float], field: str) -> tuple[float, ...]:
    out = tuple(float(e) for e in edges)
    if len(out) < 2:
        raise ValidationError("a binning needs at least two edges (one bin), e.g. '0:1:20' or '0,0.5,1'",
                              field=field)
    if len(out) - 1 > MAX_BINS:
        raise ValidationError(f"at most {MAX_BINS} bins are supported, got {len(out) - 1}", field=field)
    if not all(math.isfinite(e) for e in out):
        raise ValidationError("bin edges must be finite numbers (under/overflow bins are always kept)",
                              field=field)
    bad = [i for i in range(len(out) - 1) if out[i + 1] <= out[i]]
    if bad:
        i = bad[0]
        raise ValidationError(f"bin edges must be strictly ascending: edge {i + 1} ({out[i + 1]!r}) <= edge {i} "
                              f"({out[i]!r})", field=field)
    return out


def _number(text: str, spec: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{text.strip()!r} in bins {spec!r} is not a number; use 'lo:hi:n', edges "
                              "'0,1,2.5,5' or 'official'", field=field) from None


def parse_bins(
    spec: str | Sequence[float] | Binning, *, official: Any = None, observable: str | None = None,
    field: str = "bins",
) -> Binning:
    """Turn a binning spec into a :class:`Binning`.

    Args:
        spec: ``"lo:hi:n"``, ``"e0,e1,...,en"``, ``"official"``, a sequence of edges, or a Binning.
        official: the dataset's recorded binnings, ``{observable: object with .edges or edge list}``.
        observable: the observable's name (to look up the official binning).
        field: the error field name.

    Raises:
        ValidationError: malformed specs, non-ascending edges, or no official binning for the observable.
    """
    if isinstance(spec, Binning):
        return spec
    if not isinstance(spec, str):
        return Binning(_check_edges(list(spec), field), "edges")
    text = spec.strip()
    if text == "official":
        table = dict(official or {})
        if observable is None or observable not in table:
            have = ", ".join(sorted(table)) or "none"
            raise ValidationError(f"the dataset records no official binning for {observable!r} (it has: {have}); "
                                  "give 'lo:hi:n' or explicit edges", field=field)
        entry = table[observable]
        official_edges: Sequence[float] = getattr(entry, "edges", None) or entry
        return Binning(_check_edges(list(official_edges), field), "official")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValidationError(f"uniform bins are 'lo:hi:n' (three fields), got {spec!r}", field=field)
        lo, hi = _number(parts[0], spec, field), _number(parts[1], spec, field)
        try:
            n = int(parts[2])
        except ValueError:
            raise ValidationError(f"the bin count in {spec!r} must be a whole number", field=field) from None
        if n < 1 or n > MAX_BINS:
            raise ValidationError(f"the bin count in {spec!r} must be between 1 and {MAX_BINS}", field=field)
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise ValidationError(f"uniform bins need finite lo < hi, got {spec!r}", field=field)
        return Binning(_check_edges(np.linspace(lo, hi, n + 1).tolist(), field), "uniform")
    if "," in text:
        return Binning(_check_edges([_number(t, spec, field) for t in text.split(",") if t.strip()], field),
                       "edges")
    raise ValidationError(f"cannot read bins {spec!r}; use 'lo:hi:n' (e.g. 0:1:20), edges '0,1,2.5,5' or "
                          "'official'", field=field)


def bin_index(values: np.ndarray, edges: np.ndarray, *, use_numba: bool | None = None) -> np.ndarray:
    """The cell of every value: 0 underflow, 1..n the bins, n + 1 overflow (and NaN), as int32.

    Equal to ``numpy.searchsorted(edges, values, side="right")``, computed by a numba kernel when ``use_numba``
    (default: when numba is installed).
    """
    from archive.reinterpret._kernel import bin_index as _index

    return _index(np.asarray(values), np.asarray(edges, dtype=np.float64), use_numba=use_numba)
