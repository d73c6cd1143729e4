"""``histogram(dataset, observable, bins, where=...)``: one pass, every weight family, full uncertainties."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from archive.errors import ExpressionError, MissingDependencyError, ValidationError
from archive.reinterpret._binning import Binning, parse_bins
from archive.reinterpret._expr import parse_expression
from archive.reinterpret._fill import UNIT_WEIGHT, FillPlan, run_fill
from archive.reinterpret._kernel import use_numba_for
from archive.reinterpret._uncertainty import FamilyUncertainty, family_uncertainty

__all__ = ["UNIT_WEIGHT", "Histogram", "histogram"]

DEFAULT_MIN_NEFF = 100.0


class _Values(np.ndarray):
    """The in-range values, as an array that can also be called: ``h.values`` (this package) and ``h.values()``
    (the UHI ``PlottableHistogram`` protocol, ``flow=True`` for the under/overflow cells) give the same numbers.
    Arithmetic on it gives plain arrays."""

    _cells: np.ndarray | None = None
    #: what inspect.signature reports (mplhep looks for ``flow``); an array's own attributes confuse inspect
    __signature__ = inspect.Signature([inspect.Parameter("flow", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                         default=False)])

    def __call__(self, flow: bool = False) -> np.ndarray:
        if flow and self._cells is not None:
            return np.array(self._cells)
        return np.array(self)

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        out = np.asarray(arr)
        return out[()] if return_scalar else out


class UHIAxis:
    """One regular or variable axis in the UHI ``PlottableAxis`` shape: ``axis[i]`` is the (lo, hi) of bin i."""

    def __init__(self, edges: np.ndarray, name: str, label: str) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.name, self.label = name, label
        self.traits = SimpleNamespace(circular=False, discrete=False)

    def __getitem__(self, index: int) -> tuple[float, float]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        i = index % len(self)
        return float(self.edges[i]), float(self.edges[i + 1])

    def __len__(self) -> int:
        return int(self.edges.shape[0] - 1)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UHIAxis) and np.array_equal(self.edges, other.edges)

    __hash__ = None  # type: ignore[assignment]


def _json_list(a: np.ndarray) -> Any:
    return [_json_list(x) for x in a] if a.ndim > 1 else [float(v) if math.isfinite(v) else None for v in a]


@dataclass
class Histogram:
    """A filled histogram with per-family uncertainties, the total, covariance, correlation and n_eff.

    Cell arrays (``cells = n + 2``) keep underflow (first) and overflow (last); the in-range properties
    (``values``, ``total``, ``covariance``, ...) drop them.
    """

    dataset: str
    observable: str
    expression: str
    where: str | None
    binning: Binning
    normalisation: str
    unit: str | None
    observable_unit: str | None
    cell_values: np.ndarray
    cell_sumw2: np.ndarray
    families: list[FamilyUncertainty]
    column_sums: dict[str, np.ndarray]
    cell_covariance: np.ndarray
    rows: int
    selected: int
    warnings: list[str] = field(default_factory=list)
    missing: int = 0  # selected events without a value of the observable (e.g. Muon_pt[1], one muon): not filled
    entries: int = 0  # filled entries: one per selected event, or one per object when filled per object
    per_object: bool = False  # a list per event filled per object (every object with its event's weights)
    #: an N-D histogram's axes (empty for 1-D): binnings, names, expressions and units; cells are flattened in
    #: C order over (bins + 2) per axis, and ``covariance`` is over the flattened in-range bins
    axes_binnings: tuple[Binning, ...] = ()
    axes_names: tuple[str, ...] = ()
    axes_expressions: tuple[str, ...] = ()
    axes_units: tuple[str | None, ...] = ()
    #: for :func:`joint_covariance`: the family records and the signed h_alt - h_ref of stored alternatives
    family_records: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    alternative_diffs: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    # --- shape ----------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return max(1, len(self.axes_binnings))

    @property
    def binnings(self) -> tuple[Binning, ...]:
        return self.axes_binnings or (self.binning,)

    @property
    def shape(self) -> tuple[int, ...]:
        """In-range bins per axis."""
        return tuple(b.n for b in self.binnings)

    @property
    def cell_shape(self) -> tuple[int, ...]:
        """Cells per axis, flow cells included (bins + 2)."""
        return tuple(b.n + 2 for b in self.binnings)

    @property
    def in_range(self) -> np.ndarray:
        """Flat indices (into the cell arrays) of the in-range bins, in C order."""
        grids = np.meshgrid(*[np.arange(1, b.n + 1) for b in self.binnings], indexing="ij")
        return np.asarray(np.ravel_multi_index(tuple(g.ravel() for g in grids), self.cell_shape))

    def _inr(self, cells: np.ndarray) -> np.ndarray:
        """In-range part of a per-cell array, shaped like the bins."""
        return cells[1:-1] if self.ndim == 1 else cells[self.in_range].reshape(self.shape)

    # --- in-range views -------------------------------------------------------------------------
    @property
    def edges(self) -> np.ndarray:
        return self.binning.array

    @property
    def centers(self) -> np.ndarray:
        e = self.edges
        return np.asarray(0.5 * (e[1:] + e[:-1]))

    @property
    def values(self) -> np.ndarray:
        """Nominal sum of weights per bin (an array; ``h.values()`` also works, as the UHI protocol calls it).
        N-D: shaped like the bins."""
        out = self._inr(self.cell_values).view(_Values)
        out._cells = self.cell_values.reshape(self.cell_shape)
        return out

    def _flow_masks(self) -> tuple[np.ndarray, np.ndarray]:
        idx = np.indices(self.cell_shape).reshape(self.ndim, -1)
        last = np.asarray(self.cell_shape).reshape(-1, 1) - 1
        under = np.any(idx == 0, axis=0)
        return under, np.any(idx == last, axis=0) & ~under

    @property
    def underflow(self) -> float:
        """Weight below the range (N-D: in cells below the range on any axis)."""
        if self.ndim == 1:
            return float(self.cell_values[0])
        return float(self.cell_values[self._flow_masks()[0]].sum())

    @property
    def overflow(self) -> float:
        """Weight above the range (and NaN; N-D: above on some axis, below on none)."""
        if self.ndim == 1:
            return float(self.cell_values[-1])
        return float(self.cell_values[self._flow_masks()[1]].sum())

    @property
    def sumw2(self) -> np.ndarray:
        return self._inr(self.cell_sumw2)

    @property
    def n_eff(self) -> np.ndarray:
        """Effective number of events per bin, (sum w)^2 / sum w^2 (0 where empty)."""
        return self._inr(_neff(self.cell_values, self.cell_sumw2))

    @property
    def uncertainties(self) -> dict[str, np.ndarray]:
        """One band per family (in-range bins), by family name."""
        return {f.name: self._inr(f.sigma) for f in self.families}

    @property
    def covariance(self) -> np.ndarray:
        """Total covariance of the in-range bins (sum of the families that enter the total); N-D: over the
        flattened bins (C order)."""
        if self.ndim == 1:
            return self.cell_covariance[1:-1, 1:-1]
        inr = self.in_range
        return np.asarray(self.cell_covariance[np.ix_(inr, inr)])

    @property
    def total(self) -> np.ndarray:
        """Total uncertainty per bin: the quadrature sum of the family bands (sqrt of the covariance diagonal)."""
        return np.asarray(np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))).reshape(self.shape)

    @property
    def correlation(self) -> np.ndarray:
        return correlation(self.covariance)

    # --- the UHI PlottableHistogram protocol (mplhep.histplot(h), hist/boost-histogram conversion) -----------
    @property
    def kind(self) -> str:
        """UHI: ``"COUNT"`` (values are sums of weights)."""
        return "COUNT"

    @property
    def axes(self) -> tuple[UHIAxis, ...]:
        """UHI: one axis per observable."""
        if self.ndim == 1:
            label = f"{self.observable} [{self.observable_unit}]" if self.observable_unit else self.observable
            return (UHIAxis(self.edges, self.observable, label),)
        units = self.axes_units or (None,) * self.ndim
        return tuple(UHIAxis(b.array, name, f"{name} [{unit}]" if unit else name)
                     for b, name, unit in zip(self.axes_binnings, self.axes_names, units, strict=True))

    def variances(self, flow: bool = False) -> np.ndarray:
        """UHI: the variance of every value — the total covariance's diagonal, so that a plot's error bars are the
        full uncertainty (every family in the total), not only the MC statistics (``sumw2`` holds that)."""
        var = np.clip(np.diag(self.cell_covariance), 0.0, None)
        return np.array(var.reshape(self.cell_shape) if flow else self._inr(var))

    def counts(self, flow: bool = False) -> np.ndarray:
        """UHI: the effective number of entries, (sum w)^2 / sum w^2 (0 where empty)."""
        n = _neff(self.cell_values, self.cell_sumw2)
        return np.array(n.reshape(self.cell_shape) if flow else self._inr(n))

    def to_boost(self) -> Any:
        """A ``boost_histogram.Histogram`` with ``Weight`` storage: value = nominal sum of weights, variance = the
        total variance (see :meth:`variances`), under/overflow kept."""
        try:
            import boost_histogram as bh
        except ImportError as exc:  # pragma: no cover - boost-histogram is in the analysis extra
            raise MissingDependencyError("boost-histogram", "to_boost() needs it: pip install "
                                         "'hep-archive[analysis]'") from exc
        axes = [bh.axis.Variable(ax.edges, underflow=True, overflow=True,
                                 __dict__={"name": ax.name, "label": ax.label}) for ax in self.axes]
        return self._fill_boost(bh.Histogram(*axes, storage=bh.storage.Weight()))

    def to_hist(self) -> Any:
        """A ``hist.Hist`` with ``Weight`` storage (as :meth:`to_boost`); ``hist.Hist(h)`` gives the same."""
        import importlib

        try:
            hist = importlib.import_module("hist")  # optional: not a dependency of hep-archive
        except ImportError as exc:
            raise MissingDependencyError("the 'hist' package", "to_hist() needs it: pip install hist") from exc
        axes = [hist.axis.Variable(ax.edges, name=ax.name, label=ax.label, underflow=True, overflow=True)
                for ax in self.axes]
        return self._fill_boost(hist.Hist(*axes, storage=hist.storage.Weight()))

    def _fill_boost(self, out: Any) -> Any:
        view = out.view(flow=True)
        view.value = self.cell_values.reshape(self.cell_shape)
        view.variance = self.variances(flow=True)
        return out

    def _to_boost_histogram_(self) -> Any:
        """What ``boost_histogram.Histogram(h)`` and ``hist.Hist(h)`` call to convert a foreign histogram."""
        return self.to_boost()

    def to_pandas(self) -> Any:
        """One row per in-range bin: ``lo``, ``hi``, ``value``, ``total``, ``sumw2``, ``n_eff`` and ``sigma_<family>``
        for every family (a ``pandas.DataFrame``; underflow and overflow are in :attr:`underflow`/:attr:`overflow`)."""
        import pandas as pd

        data: dict[str, Any] = {}
        if self.ndim == 1:
            e = self.edges
            data.update({"lo": e[:-1], "hi": e[1:]})
        else:  # one row per flattened bin (C order), the bin's range on every axis
            grids = np.meshgrid(*[np.arange(n) for n in self.shape], indexing="ij")
            for name, b, g in zip(self.axes_names, self.axes_binnings, grids, strict=True):
                data[f"lo_{name}"] = b.array[g.ravel()]
                data[f"hi_{name}"] = b.array[g.ravel() + 1]
        data.update({"value": np.array(self.values).ravel(), "total": self.total.ravel(),
                     "sumw2": self.sumw2.ravel(), "n_eff": self.n_eff.ravel()})
        for f in self.families:
            data[f"sigma_{f.name}"] = self._inr(f.sigma).ravel()
        return pd.DataFrame(data)

    def family_covariance(self, name: str) -> np.ndarray:
        inr = self.in_range
        for f in self.families:
            if f.name == name:
                return np.asarray(f.covariance[np.ix_(inr, inr)])
        raise KeyError(name)

    # --- exports --------------------------------------------------------------------------------
    def to_dict(self, *, columns: bool = False) -> dict[str, Any]:
        """JSON-ready data (``edges``, ``values``, ``covariance`` at the top level, so it can be a prediction)."""
        out: dict[str, Any] = {
            "format": "hep-archive-histogram/1",
            "dataset": self.dataset,
            "observable": {"name": self.observable, "expression": self.expression, "unit": self.observable_unit},
            "where": self.where,
            "binning": {"source": self.binning.source, "bins": self.binning.n},
            "normalisation": {"kind": self.normalisation, "unit": self.unit},
            "events": {"rows": self.rows, "selected": self.selected},
            "fill": {"per_object": self.per_object, "entries": self.entries, "missing": self.missing},
            "edges": _json_list(self.edges),
            "values": _json_list(self.values),
            "underflow": self.underflow,
            "overflow": self.overflow,
            "sumw2": _json_list(self.sumw2),
            "n_eff": _json_list(self.n_eff),
            "total": _json_list(self.total),
            "uncertainties": {
                f.name: {"type": f.type, "rule": f.rule, "members": f.members, "in_total": f.in_total,
                         "reference": f.reference, "source": f.source, "sigma": _json_list(self._inr(f.sigma)),
                         "covariance": _json_list(self.family_covariance(f.name))}
                for f in self.families
            },
            "covariance": _json_list(self.covariance),
            "correlation": _json_list(self.correlation),
            "warnings": list(self.warnings),
        }
        if self.ndim > 1:  # N-D: one edge list per axis; values etc. nested like the bins, covariance flattened
            out["axes"] = [{"name": n, "expression": x, "unit": u, "edges": _json_list(b.array), "bins": b.n,
                            "source": b.source}
                           for n, x, u, b in zip(self.axes_names, self.axes_expressions,
                                                 self.axes_units or (None,) * self.ndim, self.axes_binnings,
                                                 strict=True)]
            out["edges"] = [a["edges"] for a in out["axes"]]
        if columns:
            out["columns"] = {k: _json_list(v) for k, v in self.column_sums.items()}
        return out

    def to_hepdata_table(self, name: str, description: str) -> dict[str, Any]:
        """The histogram as HEPData table data (``independent_variables``/``dependent_variables``)."""
        from archive.reinterpret._hepdata import hepdata_table

        return hepdata_table(self, name, description)

    def plot(self, path: Path, prediction: Any = None) -> Path:
        """Draw the distribution, its uncertainty band, an optional prediction and a ratio panel (PNG/PDF)."""
        from archive.reinterpret._plot import plot_histogram

        return plot_histogram(self, Path(path), prediction)


def correlation(cov: np.ndarray) -> np.ndarray:
    """Correlation matrix of a covariance (rows and columns with zero variance are 0, the diagonal 1 elsewhere)."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(all="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = 0.0
    return np.asarray(np.clip(corr, -1.0, 1.0))


def _neff(values: np.ndarray, sumw2: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        out = values * values / sumw2
    out[~np.isfinite(out)] = 0.0
    return np.asarray(out)


def _did_you_mean(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=2)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        f"; the dataset has: {', '.join(options) or 'none'}"


def _unit_family() -> Any:
    return SimpleNamespace(
        name="unweighted", type="nominal", pairs=None, includes_mc_weight=True,
        combination=SimpleNamespace(rule="sum_w2", ddof=1, factor=None, reference=None),
        normalisation=SimpleNamespace(kind="shape", unit=None), resolved_columns=lambda: [UNIT_WEIGHT],
    )


def _record_field(dataset: Any, name: str) -> Any:
    record = getattr(dataset, "record", None)
    spec = getattr(record, "dataset", None)
    return getattr(spec, name, None)


def jagged_columns(dataset: Any, available: Sequence[str]) -> tuple[str, ...]:
    """The columns holding a list per event: the adapter's ``jagged_columns``, else the dataset record's
    variables (``var * ...`` dtypes), else a look at the first row of every column."""
    explicit = getattr(dataset, "jagged_columns", None)
    if explicit is not None:
        return tuple(str(c) for c in explicit)
    variables = _record_field(dataset, "variables")
    if variables is not None:
        return tuple(str(v.name) for v in variables if str(getattr(v, "dtype", "")).startswith("var * "))
    if not available:
        return ()
    first = dataset.read_rows(list(available), 0, min(1, int(dataset.num_rows)))
    return tuple(c for c, v in first.items() if not isinstance(v, np.ndarray) or v.ndim > 1 or v.dtype == object)


def _refuse_dense(dataset: Any, columns: Sequence[str]) -> None:
    wanted = set(columns)
    for v in _record_field(dataset, "variables") or []:
        name, dtype = getattr(v, "name", None), str(getattr(v, "dtype", ""))
        if name in wanted and getattr(v, "shape", None) and not dtype.startswith("var * "):
            raise ExpressionError(
                f"column {name!r} holds an array of shape {list(v.shape)} per event ({dtype}); observables and "
                "selections use numbers or lists per event (derive one first, e.g. with `hep-archive model apply` "
                "or add_columns)", field="observable")


def _observable_unit(dataset: Any, column: str) -> str | None:
    for v in _record_field(dataset, "variables") or []:
        if getattr(v, "name", None) == column:
            return getattr(v, "unit", None)
    return None


BinsSpec = str | Sequence[float] | Binning


def histogram(
    dataset: Any, observable: str | Sequence[str], bins: BinsSpec | Sequence[BinsSpec], *, where: str | None = None,
    families: Sequence[str] | None = None, scheduler: Any = None, min_neff: float = DEFAULT_MIN_NEFF,
    batch_rows: int | None = None, threads: int = 0, progress: Callable[[int], None] | None = None,
    alternatives: Mapping[str, Any] | None = None, weight_families: Sequence[Any] | None = None,
) -> Histogram:
    """Histogram an observable (a column or ``name = expression``) with every weight family in one pass.

    Args:
        dataset: an ``archive.datasets.Dataset`` (or anything with the :class:`DatasetLike` shape), or data in
            memory: an awkward record array, a pandas DataFrame or ``{column: array}`` (jagged columns as
            awkward arrays or lists), with ``weight_families``.
        observable: ``"pT_ll"``, ``"tau21 = tau2_trackj1 / tau1_trackj1"``, or over jagged columns
            ``"ptlead = max(Muon_pt)"``, ``"mll = mass(Muon[0] + Muon[1])"``; a list per event (``"Muon_pt"``)
            is filled per object, each object with its event's weights. A sequence of observables makes an
            N-D histogram (``["pT_ll", "y_ll"]`` with one binning per axis), its covariance over the flattened
            bins.
        bins: ``"lo:hi:n"``, ``"e0,e1,..."``, ``"official"``, or a sequence of edges (N-D: one of those per axis).
        where: an optional selection, e.g. ``"pT_trackj1 > 5"``.
        families: only these weight families (the nominal one is always filled); default all.
        scheduler: ``None`` (this process), ``"local"``, ``"dask://HOST:PORT"`` or a ``distributed.Client``.
        min_neff: warn for bins whose effective number of events is below this.
        batch_rows: rows read per batch (bounds memory); default 262,144.
        threads: kernel threads in this process (0 = all cores, at most 8).
        progress: called with rows done.
        alternatives: separately stored alternative samples, ``{name: dataset}`` (e.g. the same measurement
            unfolded with another generator): each is filled with its nominal weights the same way and enters
            as an ``alternative_sample`` uncertainty ``|h_alt - h_nominal|`` named ``name``.
        weight_families: for data in memory, its weight families (``WeightFamily`` records or dicts of their
            fields); none: every event weighs 1.

    Raises:
        ExpressionError: bad observable or selection (syntax, unknown column, ...).
        ValidationError: bad bins, unknown families, no nominal family, or a selection that keeps no event.
    """
    return histograms(dataset, [(observable, bins)], where=where, families=families, scheduler=scheduler,
                      min_neff=min_neff, batch_rows=batch_rows, threads=threads, progress=progress,
                      alternatives=alternatives, weight_families=weight_families)[0]


@dataclass
class _Target:
    axes: list[Any]  # Expression per axis
    binnings: list[Binning]

    @property
    def cells(self) -> int:
        return int(np.prod([b.n + 2 for b in self.binnings]))


def _targets(dataset: Any, specs: Sequence[tuple[Any, Any]], available: list[str], jagged: tuple[str, ...],
             sel: Any) -> list[_Target]:
    official = _record_field(dataset, "binnings")
    out = []
    for observable, bins in specs:
        if isinstance(observable, str):
            texts, bin_specs = [observable], [bins]
        else:
            texts = [str(o) for o in observable]
            if isinstance(bins, str | Binning) or len(bins) != len(texts):
                raise ValidationError(f"an N-D histogram of {len(texts)} observables needs one binning per axis, "
                                      f"got {bins!r}", field="bins")
            bin_specs = list(bins)
        if not texts:
            raise ValidationError("no observable given", field="observable")
        axes = [parse_expression(t, available, jagged=jagged) for t in texts]
        for obs in axes:
            _refuse_dense(dataset, obs.columns)
            if sel is not None and sel.kind == "list" and obs.kind != "list":
                raise ExpressionError(
                    f"the selection {sel.text!r} gives a list per event (one value per object) but the observable "
                    f"{obs.text!r} one number per event; reduce the selection with any(...), all(...) or "
                    "count(...), e.g. 'any(Muon_pt > 20)'", field="where")
        binnings = [parse_bins(b, official=official, observable=obs.name) for b, obs in
                    zip(bin_specs, axes, strict=True)]
        out.append(_Target(axes, binnings))
    if not out:
        raise ValidationError("no observable given", field="observable")
    return out


def histograms(
    dataset: Any, specs: Sequence[tuple[str | Sequence[str], BinsSpec | Sequence[BinsSpec]]], *,
    where: str | None = None, families: Sequence[str] | None = None, scheduler: Any = None,
    min_neff: float = DEFAULT_MIN_NEFF, batch_rows: int | None = None, threads: int = 0,
    progress: Callable[[int], None] | None = None, alternatives: Mapping[str, Any] | None = None,
    weight_families: Sequence[Any] | None = None,
) -> list[Histogram]:
    """Several histograms in one pass: every weight column is read once and filled into all of them.

    Args:
        specs: ``[(observable, bins), ...]`` as for :func:`histogram` (an observable may be a sequence of
            expressions for an N-D histogram, with one binning per axis).
        (the rest as for :func:`histogram`; the selection, the families and the alternatives are shared)

    Returns:
        One :class:`Histogram` per spec, in order, each the same, bit for bit, as when filled alone. Their
        correlations through the shared replicas: :func:`joint_covariance`.
    """
    from archive.reinterpret._memory import as_dataset, is_in_memory

    if is_in_memory(dataset):
        dataset = as_dataset(dataset, weight_families or ())
    elif weight_families is not None:
        raise ValidationError("weight_families is for data in memory; a stored dataset's families are in its "
                              "record", field="weight_families")
    alternatives = {k: as_dataset(v, name=k) if is_in_memory(v) else v for k, v in (alternatives or {}).items()}
    available = list(dataset.columns)
    jagged = jagged_columns(dataset, available)
    sel = parse_expression(where, available, what="where", boolean=True, jagged=jagged) if where else None
    if sel is not None:
        _refuse_dense(dataset, sel.columns)
    targets = _targets(dataset, specs, available, jagged, sel)

    all_fams = list(dataset.weight_families) or [_unit_family()]
    names = [str(f.name) for f in all_fams]
    nominal = next((f for f in all_fams if f.type == "nominal"), None)
    if nominal is None:
        raise ValidationError(f"dataset {dataset.name}@{dataset.version} has no weight family of type 'nominal' "
                              f"(families: {', '.join(names)}); declare one in the ingest metadata 'weights'",
                              field="weights")
    if families is not None:
        unknown = [f for f in families if f not in names]
        if unknown:
            raise ValidationError(f"unknown weight family {unknown[0]!r}{_did_you_mean(unknown[0], names)}",
                                  field="families")
        chosen = [f for f in all_fams if f.name in set(families) or f is nominal]
    else:
        chosen = all_fams
    nominal_col = nominal.resolved_columns()[0]
    prior = next((f for f in all_fams if f.type == "prior"), None)
    prior_col = prior.resolved_columns()[0] if prior is not None else None

    def ref_column(fam: Any) -> str:
        ref = fam.combination.reference
        if ref is None:
            return str(nominal_col)
        for f in all_fams:
            if f.name == ref:
                return str(f.resolved_columns()[0])
        if ref in available:
            return str(ref)
        raise ValidationError(f"family {fam.name!r}: reference {ref!r} is neither a family nor a column"
                              f"{_did_you_mean(ref, names + available)}", field="weights")

    columns: dict[str, None] = {nominal_col: None}
    refs = {}
    for fam in chosen:
        refs[fam.name] = ref_column(fam)
        for c in [*fam.resolved_columns(), refs[fam.name]]:
            columns.setdefault(c, None)
    weight_columns = list(columns)
    missing = [c for c in weight_columns if c not in available and c != UNIT_WEIGHT]
    if missing:
        raise ValidationError(f"weight column {missing[0]!r} is not in the dataset", field="weights")
    squared = {nominal_col} | {c for f in chosen if f.combination.rule == "sum_w2" for c in f.resolved_columns()}
    unscaled = [f for f in chosen if not f.includes_mc_weight and f is not prior]
    scaled_cols = {c for f in unscaled for c in f.resolved_columns()}
    if scaled_cols and prior_col is None:
        raise ValidationError(f"family {unscaled[0].name!r} holds reweighting factors (includes_mc_weight: false) "
                              "but the dataset has no 'prior' family with the MC weight", field="weights")
    plan_targets = tuple(tuple((a.text, b.edges) for a, b in zip(t.axes, t.binnings, strict=True)) for t in targets)
    plan = FillPlan(
        observable=plan_targets[0][0][0], where=sel.text if sel else None, edges=plan_targets[0][0][1],
        weight_columns=tuple(weight_columns), squares=tuple(c in squared for c in weight_columns),
        scale_column=prior_col if scaled_cols else None, scaled=tuple(c in scaled_cols for c in weight_columns),
        batch_rows=batch_rows or FillPlan.batch_rows, nthreads=threads,
        numba=use_numba_for(int(dataset.num_rows) * len(targets), len(weight_columns)), jagged=jagged,
        targets=plan_targets if len(targets) > 1 or len(targets[0].axes) > 1 else (),
    )
    part = run_fill(dataset, plan, scheduler=scheduler, progress=progress)
    alt_sums = {name: _alternative_sums(name, ds, plan, names, scheduler) for name, ds in alternatives.items()}
    offsets = np.concatenate([[0], np.cumsum([t.cells for t in targets])])
    norm = getattr(nominal, "normalisation", None)
    out = []
    for t, target in enumerate(targets):
        sl = slice(int(offsets[t]), int(offsets[t + 1]))
        selected, n_missing, entries = part.target_counts(t)
        label = " and ".join(repr(a.text) for a in target.axes)
        if entries == 0:
            if n_missing:
                what = f"the observable {label} has no value in any of the {n_missing} selected events"
            elif any(a.kind == "list" for a in target.axes) and part.rows:
                what = f"the observable {label} gives no object in any selected event"
            else:
                what = f"the selection {where!r} keeps none of the {part.rows} events" if where else \
                    f"the dataset has no events ({part.rows} rows)"
            raise ValidationError(f"{what}; nothing to histogram", field="where" if where else "dataset")
        hists = {c: part.sums[i, sl] for i, c in enumerate(weight_columns)}
        sumw2 = {c: part.sums2[i, sl] for i, c in enumerate(weight_columns) if c in squared}
        results = [family_uncertainty(f, hists, sumw2, hists[refs[f.name]], refs[f.name]) for f in chosen]
        for alt_name, (label_alt, sums) in alt_sums.items():
            results.append(_alternative(alt_name, label_alt, sums[sl], hists[nominal_col], nominal_col))
        cov = np.zeros((target.cells, target.cells))
        for r in results:
            if r.in_total:
                cov += r.covariance
        units = tuple(_observable_unit(dataset, a.columns[0]) if len(a.columns) == 1 and a.body == a.columns[0]
                      else None for a in target.axes)
        nd = len(target.axes) > 1
        h = Histogram(
            dataset=f"{dataset.name}@{dataset.version}",
            observable=";".join(a.name for a in target.axes), expression=";".join(a.body for a in target.axes),
            where=sel.text if sel else None, binning=target.binnings[0],
            normalisation=str(getattr(norm, "kind", "absolute")), unit=getattr(norm, "unit", None),
            observable_unit=units[0] if not nd else None,
            cell_values=hists[nominal_col].copy(), cell_sumw2=sumw2[nominal_col].copy(), families=results,
            column_sums={c: v.copy() for c, v in hists.items()}, cell_covariance=cov, rows=part.rows,
            selected=selected, missing=n_missing, entries=entries,
            per_object=any(a.kind == "list" for a in target.axes),
            axes_binnings=tuple(target.binnings) if nd else (),
            axes_names=tuple(a.name for a in target.axes) if nd else (),
            axes_expressions=tuple(a.body for a in target.axes) if nd else (),
            axes_units=units if nd else (),
            family_records={str(f.name): f for f in chosen},
            alternative_diffs={n: sums[sl] - hists[nominal_col] for n, (_, sums) in alt_sums.items()},
        )
        h.warnings.extend(_warnings(h, min_neff, results))
        out.append(h)
    return out


def joint_covariance(hists: Sequence[Histogram]) -> np.ndarray:
    """The covariance between the in-range bins of several histograms filled in one pass (:func:`histograms`),
    over their concatenated (flattened) bins: every family's rule applied to the concatenated column histograms,
    so replica-based families (bootstraps, ensembles), systematic shifts and alternative samples correlate the
    observables through the shared events. The blocks on the diagonal are each histogram's own covariance.

    ``sum_w2`` (MC statistics) has no cross terms here: sums of squared weights over pairs of bins of two
    observables are not filled, so its off-diagonal blocks are zero (replica families carry those correlations).

    Raises:
        ValidationError: histograms of different datasets, selections or families.
    """
    if not hists:
        return np.zeros((0, 0))
    first = hists[0]
    key = (first.dataset, first.where, [f.name for f in first.families])
    if any((h.dataset, h.where, [f.name for f in h.families]) != key for h in hists[1:]):
        raise ValidationError("joint_covariance needs histograms of one pass: the same dataset, selection and "
                              "families", field="histograms")
    inr = [h.in_range for h in hists]
    starts = np.concatenate([[0], np.cumsum([i.size for i in inr])]).astype(int)
    total = np.zeros((int(starts[-1]), int(starts[-1])))
    for fam in first.families:
        if not fam.in_total:
            continue
        if fam.rule == "sum_w2":
            for j, h in enumerate(hists):
                total[starts[j]:starts[j + 1], starts[j]:starts[j + 1]] += h.family_covariance(fam.name)
            continue
        if fam.source is not None:  # a separately stored alternative sample: d = h_alt - h_ref, signed
            d = np.concatenate([h.alternative_diffs[fam.name][i] for h, i in zip(hists, inr, strict=True)])
            total += np.outer(d, d)
            continue
        record = first.family_records.get(fam.name)
        if record is None:
            raise ValidationError(f"family {fam.name!r}: the histograms carry no family record (fill them with "
                                  "histograms())", field="histograms")
        hc = {c: np.concatenate([h.column_sums[c][i] for h, i in zip(hists, inr, strict=True)])
              for c in first.column_sums}
        total += family_uncertainty(record, hc, {}, hc[fam.reference], fam.reference).covariance
    return total


def _alternative_sums(name: str, ds: Any, plan: FillPlan, taken: Sequence[str], scheduler: Any
                      ) -> tuple[str, np.ndarray]:
    """An alternative sample stored as its own dataset: its nominal weights filled into every target."""
    if name in taken:
        raise ValidationError(f"alternative {name!r} has the name of a weight family; choose another name",
                              field="alternatives")
    cols = list(ds.columns)
    jagged = jagged_columns(ds, cols)
    for t in plan.all_targets():
        for text, _ in t:
            parse_expression(text, cols, jagged=jagged)
    if plan.where:
        parse_expression(plan.where, cols, what="where", boolean=True, jagged=jagged)
    nominal = next((f for f in ds.weight_families if f.type == "nominal"), None)
    col = nominal.resolved_columns()[0] if nominal is not None else UNIT_WEIGHT
    alt_plan = FillPlan(observable=plan.observable, where=plan.where, edges=plan.edges, weight_columns=(col,),
                        squares=(False,), batch_rows=plan.batch_rows, nthreads=plan.nthreads,
                        numba=use_numba_for(int(ds.num_rows) * len(plan.all_targets()), 1), jagged=jagged,
                        targets=plan.targets)
    return f"{ds.name}@{ds.version}", run_fill(ds, alt_plan, scheduler=scheduler).sums[0]


def _alternative(name: str, label: str, h_alt: np.ndarray, ref: np.ndarray, ref_name: str) -> FamilyUncertainty:
    """d = h_alt - h_ref of a separately stored alternative sample, as a family."""
    d = h_alt - ref
    family = SimpleNamespace(
        name=name, type="alternative_sample", pairs=None,
        combination=SimpleNamespace(rule="alternative_sample", ddof=1, factor=None, reference=None),
        resolved_columns=lambda: ["__alternative__"],
    )
    out = family_uncertainty(family, {"__alternative__": h_alt}, {}, ref, ref_name)
    return FamilyUncertainty(out.name, out.type, out.rule, 1, np.abs(d), out.covariance, True, ref_name,
                             source=label)


def _warnings(h: Histogram, min_neff: float, results: list[FamilyUncertainty]) -> list[str]:
    out: list[str] = []
    neff = h.n_eff.ravel()
    low = [i for i, v in enumerate(neff.tolist()) if v < min_neff]

    def label(i: int) -> str:
        if h.ndim == 1:
            return f"bin {i} [{h.edges[i]:g}, {h.edges[i + 1]:g})"
        pos = np.unravel_index(i, h.shape)
        return f"bin {tuple(int(p) for p in pos)} " + " x ".join(
            f"[{b.array[p]:g}, {b.array[p + 1]:g})" for b, p in zip(h.binnings, pos, strict=True))

    if low:
        shown = ", ".join(f"{label(i)}: {neff[i]:.3g}" for i in low[:5])
        more = f" and {len(low) - 5} more" if len(low) > 5 else ""
        out.append(f"low effective event count (n_eff < {min_neff:g}) in {len(low)} of {neff.size} bins: "
                   f"{shown}{more}; merge bins or widen the selection")
    total = float(np.sum(h.cell_values))
    flow = h.underflow + h.overflow
    if total != 0 and abs(flow / total) > 0.01:
        where = f"[{h.edges[0]:g}, {h.edges[-1]:g})" if h.ndim == 1 else "the range"
        out.append(f"{100 * flow / total:.1f}% of the selected weight is outside {where} "
                   f"(underflow {h.underflow:.4g}, overflow {h.overflow:.4g})")
    if h.missing:
        out.append(f"{h.missing} of the selected events have no value of {h.expression!r} (no object at that "
                   "index, or an empty list to take the maximum, minimum or mean of) and are not filled")
    for r in results:
        out.extend(f"{r.name}: {n}" for n in r.notes)
    return out
