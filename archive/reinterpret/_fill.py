"""One request, one pass: plan the columns, fill every weight column per row range, combine in a fixed order.

A :class:`FillPlan` is plain data (expression texts, edges, column names), so it travels to Dask workers and is
re-parsed there. :func:`fill_range` reads only the needed columns of rows ``[start, stop)`` in bounded batches,
computes the cell index once per event and accumulates all weight columns with the one-pass kernel, reading
the next batch in a background thread meanwhile.
:func:`run_fill` does this per dataset partition, either in this process or as one Dask task per partition,
and sums the float64 partials in partition order, so both ways give bit-identical results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.reinterpret._binning import bin_index
from archive.reinterpret._expr import parse_expression
from archive.reinterpret._kernel import fill_columns

__all__ = ["FillPlan", "Partial", "fill_range", "fill_ranges", "run_fill"]

#: rows per read inside a partition: bounds memory to batch_rows x (needed columns) x 8 bytes
DEFAULT_BATCH_ROWS = 262_144
#: the pseudo-column of an unweighted dataset (weight 1 per event)
UNIT_WEIGHT = "__unit_weight__"


@dataclass(frozen=True)
class FillPlan:
    """Everything a worker needs to fill one row range (plain, serialisable data)."""

    observable: str
    where: str | None
    edges: tuple[float, ...]
    weight_columns: tuple[str, ...]
    squares: tuple[bool, ...]
    scale_column: str | None = None
    scaled: tuple[bool, ...] = ()
    batch_rows: int = DEFAULT_BATCH_ROWS
    nthreads: int = 0
    prefetch: bool = True

    @property
    def cells(self) -> int:
        return len(self.edges) + 1


@dataclass
class Partial:
    """Float64 sums (k, cells), sums of squares, and event counts of one row range."""

    sums: np.ndarray
    sums2: np.ndarray
    selected: int
    rows: int

    def add(self, other: Partial) -> Partial:
        return Partial(self.sums + other.sums, self.sums2 + other.sums2, self.selected + other.selected,
                       self.rows + other.rows)


def _threads(n: int) -> int:
    return n if n > 0 else max(1, min(os.cpu_count() or 1, 8))


def _reads(dataset: Any, needed: list[str], batches: list[tuple[int, int]], prefetch: bool
           ) -> Iterator[dict[str, Any]]:
    """The batches' columns in order; with ``prefetch`` the next batch is read in a thread while this one fills
    (the Parquet decoding and the nogil kernel overlap; at most two batches are in memory)."""
    if not prefetch or len(batches) < 2:
        for a, b in batches:
            yield dataset.read_rows(needed, a, b)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="hep-archive-read") as pool:
        future = pool.submit(dataset.read_rows, needed, *batches[0])
        for i in range(len(batches)):
            cols = future.result()
            if i + 1 < len(batches):
                future = pool.submit(dataset.read_rows, needed, *batches[i + 1])
            yield cols


def fill_range(dataset: Any, plan: FillPlan, start: int, stop: int,
               progress: Callable[[int], None] | None = None) -> Partial:
    """Fill rows ``[start, stop)`` of ``dataset``: one read of the needed columns per batch, one index per event.

    Args:
        dataset: a :class:`~archive.reinterpret.DatasetLike` (``read_rows`` and ``columns`` are used).
        plan: what to fill.
        start: first row.
        stop: one past the last row.
        progress: called with the number of rows done after each batch.
    """
    return fill_ranges(dataset, plan, [(start, stop)], progress)[0]


def fill_ranges(dataset: Any, plan: FillPlan, ranges: Sequence[tuple[int, int]],
                progress: Callable[[int], None] | None = None) -> list[Partial]:
    """Fill each row range into its own :class:`Partial` (batches of ``plan.batch_rows``, read one ahead)."""
    available = list(dataset.columns)
    obs = parse_expression(plan.observable, available)
    where = parse_expression(plan.where, available, what="where", boolean=True) if plan.where else None
    edges = np.asarray(plan.edges, dtype=np.float64)
    k = len(plan.weight_columns)
    squares = np.asarray(plan.squares, np.uint8)
    scaled = np.asarray(plan.scaled or (False,) * k, np.uint8)
    needed = [c for c in dict.fromkeys([*obs.columns, *(where.columns if where else ()), *plan.weight_columns,
                                        *([plan.scale_column] if plan.scale_column else [])]) if c != UNIT_WEIGHT]
    nthreads = _threads(plan.nthreads)
    step = max(1, int(plan.batch_rows))
    batches = [(p, b0, min(b0 + step, stop)) for p, (start, stop) in enumerate(ranges)
               for b0 in range(start, stop, step)]
    parts = [Partial(np.zeros((k, plan.cells)), np.zeros((k, plan.cells)), 0, stop - start)
             for start, stop in ranges]
    reads = _reads(dataset, needed, [(b0, b1) for _, b0, b1 in batches], plan.prefetch)
    for (p, b0, b1), cols in zip(batches, reads, strict=True):
        part = parts[p]
        n = b1 - b0
        x = obs.evaluate(cols, n)
        if x.dtype == np.bool_:
            x = x.astype(np.float64)
        idx = bin_index(x, edges)
        if where is not None:
            m = where.mask(cols, n)
            idx[~m] = -1
            part.selected += int(np.count_nonzero(m))
        else:
            part.selected += n
        weights = [np.ones(n, np.float32) if c == UNIT_WEIGHT else np.asarray(cols[c]) for c in plan.weight_columns]
        scale = np.asarray(cols[plan.scale_column], np.float64) if plan.scale_column else None
        fill_columns(idx, weights, part.sums, part.sums2, squares=squares, scale=scale, scaled=scaled,
                     nthreads=nthreads)
        del cols, weights, idx, x
        if progress is not None:
            progress(n)
    return parts


def _ranges(dataset: Any) -> list[tuple[int, int]]:
    parts = [(int(a), int(b)) for a, b in dataset.partitions()]
    n = int(dataset.num_rows)
    pos = 0
    for a, b in parts:
        if a != pos or b < a:
            raise ValidationError(f"dataset partitions are not contiguous row ranges at row {pos}: ({a}, {b})",
                                  field="partitions")
        pos = b
    if pos != n:
        raise ValidationError(f"dataset partitions cover {pos} of {n} rows", field="partitions")
    return [(a, b) for a, b in parts if b > a] or [(0, 0)]


def combine(partials: Sequence[Partial]) -> Partial:
    """Sum partials in the given (partition) order, starting from zeros: the fixed, reproducible order."""
    first = partials[0]
    total = Partial(np.zeros_like(first.sums), np.zeros_like(first.sums2), 0, 0)
    for p in partials:
        total = total.add(p)
    return total


def run_fill(dataset: Any, plan: FillPlan, *, scheduler: Any = None,
             progress: Callable[[int], None] | None = None) -> Partial:
    """Fill the whole dataset, per partition, here or on Dask (``scheduler``), and combine in partition order."""
    ranges = _ranges(dataset)
    if scheduler is None:
        return combine(fill_ranges(dataset, plan, ranges, progress))
    from archive.reinterpret._dask import run_on_dask

    return combine(run_on_dask(dataset, plan, ranges, scheduler))
