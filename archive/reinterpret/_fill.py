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

from archive.errors import ExpressionError, ValidationError
from archive.reinterpret._binning import bin_index
from archive.reinterpret._expr import Expression, event_values, parse_expression
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
    numba: bool | None = None  # None: numba when installed; histogram() decides by the request's size
    jagged: tuple[str, ...] = ()  # the columns holding a list per event
    #: several histograms in one pass: each target is a tuple of axes (expression text, edges); a 1-axis target
    #: is a 1-D histogram, more axes an N-D one (cells flattened in C order). Empty: ``observable``/``edges``.
    targets: tuple[tuple[tuple[str, tuple[float, ...]], ...], ...] = ()

    def all_targets(self) -> tuple[tuple[tuple[str, tuple[float, ...]], ...], ...]:
        return self.targets or (((self.observable, self.edges),),)

    def target_cells(self) -> list[int]:
        """Cells of every target (flow cells included): the product over its axes of (bins + 2)."""
        return [int(np.prod([len(e) + 1 for _, e in t])) for t in self.all_targets()]

    @property
    def cells(self) -> int:
        return sum(self.target_cells())


@dataclass
class Partial:
    """Float64 sums (k, cells), sums of squares, and counts of one row range.

    ``selected``: events that entered the histogram; ``missing``: events the selection kept but whose observable
    has no value (``Muon_pt[1]`` with one muon), not filled; ``entries``: filled entries (one per selected event,
    or one per object when a list per event is filled per object).
    """

    sums: np.ndarray
    sums2: np.ndarray
    selected: int
    rows: int
    missing: int = 0
    entries: int = 0
    #: per target (several histograms in one pass): [selected, missing, entries]; None: one target
    counts: np.ndarray | None = None

    def add(self, other: Partial) -> Partial:
        counts = None if self.counts is None or other.counts is None else self.counts + other.counts
        return Partial(self.sums + other.sums, self.sums2 + other.sums2, self.selected + other.selected,
                       self.rows + other.rows, self.missing + other.missing, self.entries + other.entries, counts)

    def target_counts(self, t: int) -> tuple[int, int, int]:
        """(selected, missing, entries) of target ``t``."""
        if self.counts is None:
            return self.selected, self.missing, self.entries
        return int(self.counts[t, 0]), int(self.counts[t, 1]), int(self.counts[t, 2])


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
    targets = [[parse_expression(text, available, jagged=plan.jagged) for text, _ in t] for t in plan.all_targets()]
    target_edges = [[np.asarray(e, dtype=np.float64) for _, e in t] for t in plan.all_targets()]
    where = parse_expression(plan.where, available, what="where", boolean=True, jagged=plan.jagged) \
        if plan.where else None
    offsets = np.concatenate([[0], np.cumsum(plan.target_cells())]).astype(np.int64)
    if offsets[-1] >= 2**31:
        raise ValidationError(f"{offsets[-1]} cells in one pass are too many; use fewer bins or fewer histograms",
                              field="bins")
    k = len(plan.weight_columns)
    squares = np.asarray(plan.squares, np.uint8)
    scaled = np.asarray(plan.scaled or (False,) * k, np.uint8)
    obs_columns = [c for axes in targets for a in axes for c in a.columns]
    needed = [c for c in dict.fromkeys([*obs_columns, *(where.columns if where else ()), *plan.weight_columns,
                                        *([plan.scale_column] if plan.scale_column else [])]) if c != UNIT_WEIGHT]
    nthreads = _threads(plan.nthreads)
    step = max(1, int(plan.batch_rows))
    batches = [(p, b0, min(b0 + step, stop)) for p, (start, stop) in enumerate(ranges)
               for b0 in range(start, stop, step)]
    several = len(targets) > 1
    parts = [Partial(np.zeros((k, plan.cells)), np.zeros((k, plan.cells)), 0, stop - start,
                     counts=np.zeros((len(targets), 3), np.int64) if several else None)
             for start, stop in ranges]
    reads = _reads(dataset, needed, [(b0, b1) for _, b0, b1 in batches], plan.prefetch)
    for (p, b0, b1), cols in zip(batches, reads, strict=True):
        part = parts[p]
        n = b1 - b0
        m = where.evaluate_any(cols, n) if where is not None else None
        cells = [entry_cells(axes, where, m, cols, n, edges, plan.numba)
                 for axes, edges in zip(targets, target_edges, strict=True)]
        first = cells[0]
        part.selected += first.selected
        part.missing += first.missing
        part.entries += first.entries
        if part.counts is not None:
            part.counts += np.array([[c.selected, c.missing, c.entries] for c in cells], np.int64)
        index, events, repeat = _merge(cells, offsets, n) if several else (first.index, first.events, 1)
        weights = [np.ones(n, np.float32) if c == UNIT_WEIGHT else np.asarray(cols[c]) for c in plan.weight_columns]
        scale = np.asarray(cols[plan.scale_column], np.float64) if plan.scale_column else None
        fill_columns(index, weights, part.sums, part.sums2, squares=squares, scale=scale, scaled=scaled,
                     nthreads=nthreads, events=events, use_numba=plan.numba, repeat=repeat)
        del cols, weights, cells, index, events
        if progress is not None:
            progress(n)
    return parts


def _merge(cells: Sequence[Cells], offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Every target's entries as one stream in event order (each weight is read once for all targets), with
    the cell indices shifted to the target's block. Within a cell, entries keep their event order, so every
    histogram is the same, bit for bit, as when filled alone."""
    shifted = [np.where(c.index >= 0, c.index + np.int32(offsets[t]), -1).astype(np.int32)
               for t, c in enumerate(cells)]
    if all(c.events is None for c in cells):  # one entry per event and target: interleaved, event-major
        return np.stack(shifted, axis=1).ravel(), None, len(cells)
    events = np.concatenate([np.arange(n, dtype=np.int64) if c.events is None else c.events for c in cells])
    order = np.argsort(events, kind="stable")
    return np.concatenate(shifted)[order], events[order], 1


@dataclass
class Cells:
    """The cell of every entry of a batch (-1: not filled) and, when filled per object, each entry's event."""

    index: np.ndarray
    events: np.ndarray | None
    selected: int
    missing: int
    entries: int


def _event_mask(where: Expression | None, m: Any, n: int) -> np.ndarray:
    if where is None:
        return np.ones(n, bool)
    values, valid = event_values(m)
    keep = np.asarray(values, dtype=bool)
    return keep if valid is None else keep & valid  # a selection without a value (Muon_pt[1] > 20) is false


def _flat_index(idxs: list[np.ndarray], edges: Sequence[np.ndarray]) -> np.ndarray:
    if len(idxs) == 1:
        return idxs[0]
    dims = tuple(len(e) + 1 for e in edges)
    return np.ravel_multi_index(tuple(i.astype(np.int64) for i in idxs), dims).astype(np.int32)


def _binned(values: np.ndarray, edges: np.ndarray, use_numba: bool | None) -> np.ndarray:
    if values.dtype == np.bool_:
        values = values.astype(np.float64)
    return bin_index(values, edges, use_numba=use_numba)


def entry_cells(axes: Sequence[Expression], where: Expression | None, m: Any, cols: dict[str, Any], n: int,
                edges: Sequence[np.ndarray], use_numba: bool | None = None) -> Cells:
    """Evaluate a target's axes on a batch and give every entry its (flattened) cell.

    One entry per event when every axis gives a number per event (events without a value on some axis are
    left out and counted as ``missing``); one entry per object when an axis gives a list per event (every object
    takes its event's weights; per-event axes are broadcast to the event's objects; list axes must have equal
    lengths). A selection (``m``, already evaluated) giving a list per event selects objects, one giving a
    number per event selects events.
    """
    values = [a.evaluate_any(cols, n) for a in axes]
    if not any(a.kind == "list" for a in axes):
        keep = _event_mask(where, m, n)
        all_valid = np.ones(n, bool)
        idxs = []
        for v, e in zip(values, edges, strict=True):
            vals, valid = event_values(v)
            if valid is not None:
                all_valid &= valid
            idxs.append(_binned(vals, e, use_numba))
        missing = int(np.count_nonzero(keep & ~all_valid))
        keep &= all_valid
        idx = _flat_index(idxs, edges)
        idx[~keep] = -1
        selected = int(np.count_nonzero(keep))
        return Cells(idx, None, selected, missing, selected)
    import awkward as ak

    obj_mask = ak.fill_none(m, False) if where is not None and where.kind == "list" else None
    event_keep = _event_mask(where, m, n) if where is not None and where.kind != "list" else None
    counts: np.ndarray | None = None
    flats: list[Any] = []
    for a, v in zip(axes, values, strict=True):
        if a.kind != "list":
            flats.append(None)
            continue
        lists = v
        if obj_mask is not None:
            try:
                lists = lists[obj_mask]
            except (ValueError, IndexError) as exc:
                assert where is not None
                raise ExpressionError(
                    f"the selection {where.text!r} gives a list per event that does not match the observable's "
                    f"lists ({' '.join(str(exc).split())[:120]}); select objects of the same collection",
                    field="where") from None
        c = np.asarray(ak.to_numpy(ak.fill_none(ak.num(lists, axis=1), 0)), dtype=np.int64)
        if counts is None:
            counts = c
        elif not np.array_equal(c, counts):
            raise ExpressionError(f"the axes {' and '.join(repr(x.text) for x in axes)} give lists of different "
                                  "lengths in some events; histogram objects of one collection together",
                                  field="observable")
        flats.append(ak.flatten(lists, axis=1))
    assert counts is not None
    events = np.repeat(np.arange(n, dtype=np.int64), counts)
    keep = np.ones(events.shape[0], bool)
    idxs = []
    for v, flat, e in zip(values, flats, edges, strict=True):
        if flat is not None:
            vals, valid = event_values(flat)
        else:  # a per-event axis: each object takes its event's value
            ev_vals, ev_valid = event_values(v)
            vals, valid = ev_vals[events], (None if ev_valid is None else ev_valid[events])
        if valid is not None:
            keep &= valid
        idxs.append(_binned(vals, e, use_numba))
    if event_keep is not None:
        keep &= event_keep[events]
    idx = _flat_index(idxs, edges)
    idx[~keep] = -1
    entries = int(np.count_nonzero(keep))
    selected = int(np.unique(events[keep]).size) if entries else 0
    return Cells(idx, events, selected, 0, entries)


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
    total = Partial(np.zeros_like(first.sums), np.zeros_like(first.sums2), 0, 0, 0, 0,
                    None if first.counts is None else np.zeros_like(first.counts))
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
