"""``histogram(dataset, observable, bins, where=...)``: one pass, every weight family, full uncertainties."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from archive.errors import ExpressionError, ValidationError
from archive.reinterpret._binning import Binning, parse_bins
from archive.reinterpret._expr import parse_expression
from archive.reinterpret._fill import UNIT_WEIGHT, FillPlan, run_fill
from archive.reinterpret._uncertainty import FamilyUncertainty, family_uncertainty

__all__ = ["UNIT_WEIGHT", "Histogram", "histogram"]

DEFAULT_MIN_NEFF = 100.0


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
        """Nominal sum of weights per bin."""
        return self.cell_values[1:-1]

    @property
    def underflow(self) -> float:
        return float(self.cell_values[0])

    @property
    def overflow(self) -> float:
        return float(self.cell_values[-1])

    @property
    def sumw2(self) -> np.ndarray:
        return self.cell_sumw2[1:-1]

    @property
    def n_eff(self) -> np.ndarray:
        """Effective number of events per bin, (sum w)^2 / sum w^2 (0 where empty)."""
        return _neff(self.cell_values, self.cell_sumw2)[1:-1]

    @property
    def uncertainties(self) -> dict[str, np.ndarray]:
        """One band per family (in-range bins), by family name."""
        return {f.name: f.sigma[1:-1] for f in self.families}

    @property
    def covariance(self) -> np.ndarray:
        """Total covariance of the in-range bins (sum of the families that enter the total)."""
        return self.cell_covariance[1:-1, 1:-1]

    @property
    def total(self) -> np.ndarray:
        """Total uncertainty per bin: the quadrature sum of the family bands (sqrt of the covariance diagonal)."""
        return np.asarray(np.sqrt(np.clip(np.diag(self.covariance), 0.0, None)))

    @property
    def correlation(self) -> np.ndarray:
        return correlation(self.covariance)

    def family_covariance(self, name: str) -> np.ndarray:
        for f in self.families:
            if f.name == name:
                return f.covariance[1:-1, 1:-1]
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
            "edges": _json_list(self.edges),
            "values": _json_list(self.values),
            "underflow": self.underflow,
            "overflow": self.overflow,
            "sumw2": _json_list(self.sumw2),
            "n_eff": _json_list(self.n_eff),
            "total": _json_list(self.total),
            "uncertainties": {
                f.name: {"type": f.type, "rule": f.rule, "members": f.members, "in_total": f.in_total,
                         "reference": f.reference, "source": f.source, "sigma": _json_list(f.sigma[1:-1]),
                         "covariance": _json_list(f.covariance[1:-1, 1:-1])}
                for f in self.families
            },
            "covariance": _json_list(self.covariance),
            "correlation": _json_list(self.correlation),
            "warnings": list(self.warnings),
        }
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


def _refuse_jagged(dataset: Any, columns: Sequence[str]) -> None:
    wanted = set(columns)
    for v in _record_field(dataset, "variables") or []:
        name = getattr(v, "name", None)
        dtype = str(getattr(v, "dtype", ""))
        if name in wanted and (dtype.startswith("var * ") or getattr(v, "shape", None)):
            raise ExpressionError(
                f"column {name!r} holds a list or array per event ({dtype}); observables and selections use "
                "per-event numbers (derive one first, e.g. with `hep-archive model apply` or add_columns)",
                field="observable")


def _observable_unit(dataset: Any, column: str) -> str | None:
    for v in _record_field(dataset, "variables") or []:
        if getattr(v, "name", None) == column:
            return getattr(v, "unit", None)
    return None


def histogram(
    dataset: Any, observable: str, bins: str | Sequence[float] | Binning, *, where: str | None = None,
    families: Sequence[str] | None = None, scheduler: Any = None, min_neff: float = DEFAULT_MIN_NEFF,
    batch_rows: int | None = None, threads: int = 0, progress: Callable[[int], None] | None = None,
    alternatives: Mapping[str, Any] | None = None,
) -> Histogram:
    """Histogram an observable (a column or ``name = expression``) with every weight family in one pass.

    Args:
        dataset: an ``archive.datasets.Dataset`` (or anything with the :class:`DatasetLike` shape).
        observable: ``"pT_ll"`` or ``"tau21 = tau2_trackj1 / tau1_trackj1"``.
        bins: ``"lo:hi:n"``, ``"e0,e1,..."``, ``"official"``, or a sequence of edges.
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

    Raises:
        ExpressionError: bad observable or selection (syntax, unknown column, ...).
        ValidationError: bad bins, unknown families, no nominal family, or a selection that keeps no event.
    """
    available = list(dataset.columns)
    obs = parse_expression(observable, available)
    sel = parse_expression(where, available, what="where", boolean=True) if where else None
    _refuse_jagged(dataset, obs.columns + (sel.columns if sel else ()))
    binning = parse_bins(bins, official=_record_field(dataset, "binnings"), observable=obs.name)

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
    plan = FillPlan(
        observable=obs.text, where=sel.text if sel else None, edges=binning.edges,
        weight_columns=tuple(weight_columns), squares=tuple(c in squared for c in weight_columns),
        scale_column=prior_col if scaled_cols else None, scaled=tuple(c in scaled_cols for c in weight_columns),
        batch_rows=batch_rows or FillPlan.batch_rows, nthreads=threads,
    )
    part = run_fill(dataset, plan, scheduler=scheduler, progress=progress)
    if part.selected == 0:
        what = f"the selection {where!r} keeps none of the {part.rows} events" if where else \
            f"the dataset has no events ({part.rows} rows)"
        raise ValidationError(f"{what}; nothing to histogram", field="where" if where else "dataset")
    hists = {c: part.sums[i] for i, c in enumerate(weight_columns)}
    sumw2 = {c: part.sums2[i] for i, c in enumerate(weight_columns) if c in squared}
    results = [family_uncertainty(f, hists, sumw2, hists[refs[f.name]], refs[f.name]) for f in chosen]
    for alt_name, alt_ds in (alternatives or {}).items():
        results.append(_alternative(alt_name, alt_ds, plan, hists[nominal_col], nominal_col, names, scheduler))
    cells = binning.n + 2
    cov = np.zeros((cells, cells))
    for r in results:
        if r.in_total:
            cov += r.covariance
    norm = getattr(nominal, "normalisation", None)
    h = Histogram(
        dataset=f"{dataset.name}@{dataset.version}", observable=obs.name, expression=obs.body,
        where=sel.text if sel else None, binning=binning, normalisation=str(getattr(norm, "kind", "absolute")),
        unit=getattr(norm, "unit", None),
        observable_unit=_observable_unit(dataset, obs.columns[0]) if len(obs.columns) == 1 and
        obs.body == obs.columns[0] else None,
        cell_values=hists[nominal_col].copy(), cell_sumw2=sumw2[nominal_col].copy(), families=results,
        column_sums={c: v.copy() for c, v in hists.items()}, cell_covariance=cov, rows=part.rows,
        selected=part.selected,
    )
    h.warnings.extend(_warnings(h, min_neff, results))
    return h


def _alternative(name: str, ds: Any, plan: FillPlan, ref: np.ndarray, ref_name: str, taken: Sequence[str],
                 scheduler: Any) -> FamilyUncertainty:
    """An alternative sample stored as its own dataset: fill its nominal weights, d = h_alt - h_ref."""
    if name in taken:
        raise ValidationError(f"alternative {name!r} has the name of a weight family; choose another name",
                              field="alternatives")
    label = f"{ds.name}@{ds.version}"
    cols = list(ds.columns)
    parse_expression(plan.observable, cols)
    if plan.where:
        parse_expression(plan.where, cols, what="where", boolean=True)
    nominal = next((f for f in ds.weight_families if f.type == "nominal"), None)
    col = nominal.resolved_columns()[0] if nominal is not None else UNIT_WEIGHT
    alt_plan = FillPlan(observable=plan.observable, where=plan.where, edges=plan.edges, weight_columns=(col,),
                        squares=(False,), batch_rows=plan.batch_rows, nthreads=plan.nthreads)
    h_alt = run_fill(ds, alt_plan, scheduler=scheduler).sums[0]
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
    neff = h.n_eff
    low = [i for i, v in enumerate(neff) if v < min_neff]
    if low:
        shown = ", ".join(f"bin {i} [{h.edges[i]:g}, {h.edges[i + 1]:g}): {neff[i]:.3g}" for i in low[:5])
        more = f" and {len(low) - 5} more" if len(low) > 5 else ""
        out.append(f"low effective event count (n_eff < {min_neff:g}) in {len(low)} of {h.binning.n} bins: "
                   f"{shown}{more}; merge bins or widen the selection")
    total = float(np.sum(h.cell_values))
    flow = h.underflow + h.overflow
    if total != 0 and abs(flow / total) > 0.01:
        out.append(f"{100 * flow / total:.1f}% of the selected weight is outside [{h.edges[0]:g}, {h.edges[-1]:g}) "
                   f"(underflow {h.underflow:.4g}, overflow {h.overflow:.4g})")
    for r in results:
        out.extend(f"{r.name}: {n}" for n in r.notes)
    return out
