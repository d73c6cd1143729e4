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


def hist(
    dataset: Annotated[str, typer.Argument(help="dataset NAME[@VERSION]")],
    observable: Annotated[str, typer.Option(
        "--observable", help="column or 'name = expression', e.g. 'tau21 = tau2_trackj1 / tau1_trackj1'")],
    bins: Annotated[str, typer.Option("--bins", "-b", help="'lo:hi:n', edges '0,1,2.5,5' or 'official'")],
    where: Annotated[str | None, typer.Option("--where", "-w", help="selection, e.g. 'pT_trackj1 > 5'")] = None,
    families: Annotated[str | None, typer.Option("--families", help="comma-separated weight families (default all)")]
    = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="write a plot (.png or .pdf)")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="write the full result as JSON")] = None,
    hepdata: Annotated[Path | None, typer.Option("--hepdata", help="write a validated HEPData submission here")] = None,
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
    """Histogram an observable with every weight family; uncertainties, covariance, chi2, plot, HEPData."""
    from archive.errors import ValidationError
    from archive.reinterpret import compare as compare_fn
    from archive.reinterpret import histogram, load_prediction, write_hepdata
    from archive.reinterpret._plot import SUFFIXES

    if plot is not None and plot.suffix.lower() not in SUFFIXES:  # refuse before any work or any file
        raise ValidationError(f"plot file must end in {', '.join(SUFFIXES)}, got {plot.name!r}", field="plot")
    a = get_archive()
    ds = _open(a, dataset)
    fams = [f.strip() for f in families.split(",") if f.strip()] if families else None
    alts: dict[str, Any] = {}
    for spec in alternative or []:
        alt_name, eq, ref = spec.partition("=")
        if not eq or not alt_name.strip() or not ref.strip():
            raise ValidationError(f"--alternative must be NAME=DATASET[@VERSION], got {spec!r}", field="alternative")
        alts[alt_name.strip()] = _open(a, ref.strip())
    h = histogram(ds, observable, bins, where=where, families=fams, scheduler=scheduler, min_neff=min_neff,
                  threads=threads, alternatives=alts)
    pred: Any = None
    if compare is not None:
        looks_like_file = Path(compare).suffix.lower() in (".json", ".yaml", ".yml") or "/" in compare
        if Path(compare).is_file() or looks_like_file:
            pred = load_prediction(Path(compare))
        else:
            pred = histogram(_open(a, compare), observable, h.binning, where=where, scheduler=scheduler,
                             min_neff=min_neff, threads=threads)
    cmp = compare_fn(h, pred) if pred is not None else None
    data = h.to_dict()
    if cmp is not None:
        data["comparison"] = cmp.to_dict()
    files: dict[str, Any] = {}
    if output is not None:
        from archive._fsutil import atomic_write_text

        atomic_write_text(output, json.dumps(data, indent=1) + "\n")
        files["output"] = str(output)
    if plot is not None:
        files["plot"] = str(h.plot(plot, pred))
    if hepdata is not None:
        files["hepdata"] = [str(p) for p in write_hepdata(h, hepdata)]
    data["files"] = files
    emit(data, lambda: _human(h, cmp, files))


def _human(h: Any, cmp: Any, files: dict[str, Any]) -> None:
    from rich.table import Table

    unit = f" [{h.unit}]" if h.unit and h.normalisation == "absolute" else ""
    t = Table(title=f"{h.observable} = {h.expression}" if h.observable != h.expression else h.observable,
              caption=f"{h.dataset}; {h.selected} of {h.rows} events selected"
              + (f" by {h.where}" if h.where else ""))
    for col in ("bin", f"value{unit}", "total", "total %", "n_eff"):
        t.add_column(col, justify="right")
    shown = [f for f in h.families if f.in_total][:6]
    for f in shown:
        t.add_column(f"{f.name} %", justify="right")
    vals, tot, neff, unc = h.values, h.total, h.n_eff, h.uncertainties
    e = h.edges
    for i in range(h.binning.n):
        t.add_row(f"[{e[i]:g}, {e[i + 1]:g})", f"{vals[i]:.5g}", f"{tot[i]:.3g}", _rel(tot[i], vals[i]),
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
