"""``hep-archive hist``: histogram an observable of an archived dataset with every weight family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import STATE, console, emit, err_console, get_archive

__all__ = ["register"]


def _split_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    if name.startswith("dataset/"):
        name = name[len("dataset/"):]
    return name, version or None


def _open(archive: Any, ref: str) -> Any:
    from archive.datasets import open_dataset

    name, version = _split_ref(ref)
    return open_dataset(archive, name, version)


def _rel(sigma: float, value: float) -> str:
    return f"{100 * sigma / abs(value):.2f}" if value else "-"


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:48] or "h"


def _specs(ds: Any, observables: list[str], bins: list[str], all_official: bool) -> list[tuple[Any, Any]]:
    """(observable, bins) per histogram: ';' separates the axes of an N-D histogram (and their binnings)."""
    from archive.errors import ValidationError

    obs = list(observables)
    if all_official:
        spec = getattr(getattr(ds, "record", None), "dataset", None)
        official = sorted(getattr(spec, "binnings", None) or {})
        if not official:
            raise ValidationError(f"dataset {ds.name}@{ds.version} records no official binning",
                                  field="all-official")
        obs += [o for o in official if o not in obs]
    if not obs:
        raise ValidationError("give --observable (repeatable) or --all-official", field="observable")
    if not observables:
        bins = bins or ["official"]
    if not bins:
        raise ValidationError("give --bins: one for every observable, or one per observable", field="bins")
    given = len(observables) or len(obs)
    if len(bins) not in (1, given):
        raise ValidationError(f"{len(bins)} --bins for {given} observables; give one for all or one each",
                              field="bins")
    out: list[tuple[Any, Any]] = []
    for i, o in enumerate(obs):
        if i >= len(observables):  # added by --all-official
            out.append((o, "official"))
            continue
        b = bins[0] if len(bins) == 1 else bins[i]
        axes = [a.strip() for a in o.split(";")]
        if len(axes) == 1:
            out.append((o, b))
            continue
        axis_bins = [x.strip() for x in b.split(";")]
        if len(axis_bins) == 1:
            axis_bins *= len(axes)
        if len(axis_bins) != len(axes):
            raise ValidationError(f"{o!r} has {len(axes)} axes but --bins {b!r} gives {len(axis_bins)} binnings; "
                                  "separate them with ';'", field="bins")
        out.append((axes, axis_bins))
    return out


def hist(
    dataset: Annotated[str, typer.Argument(help="dataset NAME[@VERSION]")],
    observable: Annotated[list[str] | None, typer.Option(
        "--observable", help="column or 'name = expression', e.g. 'tau21 = tau2_trackj1 / tau1_trackj1'; over "
        "jagged columns e.g. 'ptlead = max(Muon_pt)' or 'mll = mass(Muon[0] + Muon[1])' (a list per event, such "
        "as 'Muon_pt', fills one entry per object). Repeatable: every histogram in one pass. 'x;y' is a 2-D "
        "histogram of x and y")] = None,
    bins: Annotated[list[str] | None, typer.Option(
        "--bins", "-b", help="'lo:hi:n', edges '0,1,2.5,5' or 'official'; one for every observable or one each "
        "(repeatable); N-D: one per axis, separated by ';'")] = None,
    where: Annotated[str | None, typer.Option("--where", "-w", help="selection, e.g. 'pT_trackj1 > 5'")] = None,
    all_official: Annotated[bool, typer.Option(
        "--all-official", help="also every observable the dataset records an official binning for")] = False,
    families: Annotated[str | None, typer.Option("--families", help="comma-separated weight families (default all)")]
    = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="write a plot (.png or .pdf); several histograms: one file each, NAME-OBSERVABLE.png")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="write the full result as JSON")] = None,
    hepdata: Annotated[Path | None, typer.Option(
        "--hepdata", help="write a validated HEPData submission here (several histograms: one directory each)")]
    = None,
    compare: Annotated[str | None, typer.Option(
        "--compare", help="prediction: a HEPData table YAML, a JSON file, or another dataset NAME[@VERSION]")] = None,
    alternative: Annotated[list[str] | None, typer.Option(
        "--alternative", help="NAME=DATASET[@VERSION]: a separately stored alternative sample, as an "
        "uncertainty |h_alt - h_nominal| (repeatable)")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="run on Dask: 'local' or 'dask://HOST:PORT' (default: this process)")] = None,
    min_neff: Annotated[float, typer.Option("--min-neff", help="warn for bins with fewer effective events")] = 100.0,
    threads: Annotated[int, typer.Option("--threads", help="kernel threads (0: all cores)")] = 0,
) -> None:
    """Histogram observables with every weight family in one pass; uncertainties, covariance, chi2, plot, HEPData."""
    from archive.errors import ValidationError
    from archive.reinterpret import compare as compare_fn
    from archive.reinterpret import histogram, histograms, joint_covariance, load_prediction, write_hepdata
    from archive.reinterpret._histogram import correlation
    from archive.reinterpret._plot import SUFFIXES

    if plot is not None and plot.suffix.lower() not in SUFFIXES:  # refuse before any work or any file
        raise ValidationError(f"plot file must end in {', '.join(SUFFIXES)}, got {plot.name!r}", field="plot")
    a = get_archive()
    ds = _open(a, dataset)
    specs = _specs(ds, observable or [], bins or [], all_official)
    if len(specs) > 1 and compare is not None:
        raise ValidationError("--compare takes one observable; compare the histograms one at a time",
                              field="compare")
    fams = [f.strip() for f in families.split(",") if f.strip()] if families else None
    alts: dict[str, Any] = {}
    for spec in alternative or []:
        alt_name, eq, ref = spec.partition("=")
        if not eq or not alt_name.strip() or not ref.strip():
            raise ValidationError(f"--alternative must be NAME=DATASET[@VERSION], got {spec!r}", field="alternative")
        alts[alt_name.strip()] = _open(a, ref.strip())
    hs = histograms(ds, specs, where=where, families=fams, scheduler=scheduler, min_neff=min_neff,
                    threads=threads, alternatives=alts)
    h = hs[0]
    pred: Any = None
    if compare is not None:
        looks_like_file = Path(compare).suffix.lower() in (".json", ".yaml", ".yml") or "/" in compare
        if Path(compare).is_file() or looks_like_file:
            pred = load_prediction(Path(compare))
        else:
            obs = specs[0][0]
            pred = histogram(_open(a, compare), obs, h.binnings if h.ndim > 1 else h.binning, where=where,
                             scheduler=scheduler, min_neff=min_neff, threads=threads)
    cmp = compare_fn(h, pred) if pred is not None else None
    several = len(hs) > 1
    data: dict[str, Any]
    if several:
        joint = joint_covariance(hs)
        data = {"histograms": [x.to_dict() for x in hs],
                "joint": {"observables": [x.observable for x in hs], "bins": [int(x.values.size) for x in hs],
                          "covariance": joint.tolist(), "correlation": correlation(joint).tolist()}}
    else:
        data = h.to_dict()
    if cmp is not None:
        data["comparison"] = cmp.to_dict()
    files: dict[str, Any] = {}
    if output is not None:
        from archive._fsutil import atomic_write_text

        atomic_write_text(output, json.dumps(data, indent=1) + "\n")
        files["output"] = str(output)
    if plot is not None:
        plots = [str(x.plot(plot if not several else plot.with_name(f"{plot.stem}-{_slug(x.observable)}"
                                                                     f"{plot.suffix}"), pred)) for x in hs]
        files["plot"] = plots[0] if not several else plots
    if hepdata is not None:
        written = [p for x in hs for p in write_hepdata(x, hepdata if not several else hepdata / _slug(x.observable))]
        files["hepdata"] = [str(p) for p in written]
    data["files"] = files
    def human() -> None:
        for x in hs:
            _human(x, cmp if x is h else None, files if x is hs[-1] else {})

    emit(data, human)


def _human(h: Any, cmp: Any, files: dict[str, Any]) -> None:
    import numpy as np
    from rich.table import Table

    unit = f" [{h.unit}]" if h.unit and h.normalisation == "absolute" else ""
    t = Table(title=f"{h.observable} = {h.expression}" if h.observable != h.expression else h.observable,
              caption=f"{h.dataset}; "
              + (f"{h.entries} objects from " if getattr(h, "per_object", False) else "")
              + f"{h.selected} of {h.rows} events selected" + (f" by {h.where}" if h.where else ""))
    for col in ("bin", f"value{unit}", "total", "total %", "n_eff"):
        t.add_column(col, justify="right")
    shown = [f for f in h.families if f.in_total][:6]
    for f in shown:
        t.add_column(f"{f.name} %", justify="right")
    vals, tot, neff = (np.asarray(x).ravel() for x in (h.values, h.total, h.n_eff))
    unc = {k: np.asarray(v).ravel() for k, v in h.uncertainties.items()}
    for i in range(vals.size):
        if h.ndim == 1:
            e = h.edges
            label = f"[{e[i]:g}, {e[i + 1]:g})"
        else:
            pos = np.unravel_index(i, h.shape)
            label = " x ".join(f"[{b.array[p]:g}, {b.array[p + 1]:g})" for b, p in zip(h.binnings, pos, strict=True))
        t.add_row(label, f"{vals[i]:.5g}", f"{tot[i]:.3g}", _rel(tot[i], vals[i]),
                  f"{neff[i]:.4g}", *(_rel(unc[f.name][i], vals[i]) for f in shown))
    console.print(t)
    console.print(f"underflow {h.underflow:.5g}, overflow {h.overflow:.5g}", highlight=False)
    for w in h.warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False)
    if cmp is not None:
        console.print(f"chi2/ndf = {cmp.chi2:.3f}/{cmp.ndf}, p-value = {cmp.p_value:.4g} (vs {cmp.label})",
                      markup=False, highlight=False)
        for w in cmp.warnings:
            err_console.print(f"warning: {w}", markup=False, highlight=False)
    for k, v in files.items():
        console.print(f"{k}: {', '.join(v) if isinstance(v, list) else v}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("hist")(hist)
    _ = STATE  # the global --json flag is handled by emit()
