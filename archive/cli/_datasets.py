"""Dataset commands: ingest, export, diff, and ``dataset show|list|verify|columns``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive, progress_callback

__all__ = ["register"]

dataset_app = typer.Typer(help="Inspect stored datasets.", no_args_is_help=True)


def ingest(
    files: Annotated[list[Path], typer.Argument(help="input files (same columns: concatenated; disjoint: joined)")],
    name: Annotated[str, typer.Option(help="dataset name (the record is dataset/NAME)")],
    version: Annotated[str, typer.Option(help="new semantic version X.Y.Z (never reused)")],
    metadata: Annotated[Path | None, typer.Option(help="YAML with what the files cannot say (units, families, ...)")]
    = None,
    fmt: Annotated[str | None, typer.Option("--format", help="atlas-hdf5, hdf5, root, parquet, arrow, lhe, npy, npz "
                                                           "(default: detected)")] = None,
    tree: Annotated[str | None, typer.Option(help="ROOT: the TTree/RNTuple to read (when there are several)")] = None,
    key: Annotated[str | None, typer.Option(help="ATLAS HDF5: the pandas key (default: df)")] = None,
    columns: Annotated[list[str] | None, typer.Option("--columns", help="ingest only these columns (a,b,c)")]
    = None,
) -> None:
    """Ingest event files as a new dataset version (canonical Parquet + Zarr, content-addressed)."""
    from archive.datasets import ingest as do_ingest

    a = get_archive()
    options: dict[str, Any] = {}
    if tree:
        options["tree"] = tree
    if key:
        options["key"] = key
    cols = [c for item in columns or [] for c in item.split(",") if c]
    if cols:
        options["columns"] = cols
    with progress_callback(None, f"ingest {name}") as cb:
        rec = do_ingest(a, files, name=name, version=version, metadata=metadata, fmt=fmt, progress=cb,
                        source_options=options)
    spec = rec.dataset
    data = {"ref": rec.ref, "rows": spec.num_rows, "columns": len(spec.variables),
            "tables": [{"name": t.name, "role": t.role, "columns": len(t.columns)} for t in spec.tables],
            "families": [f.name for f in spec.weights],
            "bytes": spec.distribution.bytes if spec.distribution else None}
    emit(data, lambda: console.print(
        f"ingested {rec.ref}: {spec.num_rows} rows, {len(spec.variables)} columns in {len(spec.tables)} table(s), "
        f"{len(spec.weights)} weight famil{'y' if len(spec.weights) == 1 else 'ies'}", markup=False, highlight=False))


def export(
    dataset: Annotated[str, typer.Argument(help="NAME[@VERSION]")],
    fmt: Annotated[str, typer.Option("--format", help="atlas-hdf5, root, parquet or csv")],
    output: Annotated[Path, typer.Option(help="output file")],
    columns: Annotated[list[str] | None, typer.Option("--columns", help="only these columns (repeat or a,b,c)")]
    = None,
) -> None:
    """Export a dataset (values bit-identical to the stored ones)."""
    from archive.datasets import export_dataset

    cols = [c for item in columns or [] for c in item.split(",") if c] or None
    with progress_callback(None, f"export {dataset}") as cb:
        out = export_dataset(get_archive(), dataset, fmt, output, columns=cols, progress=cb)
    data = {"dataset": dataset, "format": fmt, "output": str(out), "bytes": out.stat().st_size}
    emit(data, lambda: console.print(f"wrote {out} ({data['bytes']} bytes, {fmt})", markup=False, highlight=False))


def diff(
    a: Annotated[str, typer.Argument(help="NAME@V1")],
    b: Annotated[str, typer.Argument(help="NAME@V2")],
) -> None:
    """Columns added, removed and changed, row-count changes and weight families between two versions."""
    from archive.datasets import diff as do_diff

    d = do_diff(get_archive(), a, b)

    def human() -> None:
        lines = [f"{d['a']} -> {d['b']}"]
        rows = d["rows"]
        lines.append(f"rows: {rows['a']} -> {rows['b']}" if rows["changed"] else f"rows: {rows['a']} (unchanged)")
        for key, sign in (("columns_added", "+"), ("columns_removed", "-")):
            lines += [f"  {sign} {c}" for c in d[key]]
        lines += [f"  ~ {c['name']}: {c['reason']}" for c in d["columns_changed"]]
        for key, sign in (("families_added", "+"), ("families_removed", "-"), ("families_changed", "~")):
            lines += [f"  {sign} family {f}" for f in d[key]]
        if d["tables_reused"]:
            lines.append(f"tables reused: {', '.join(d['tables_reused'])}")
        if d["identical"]:
            lines.append("no differences")
        for ln in lines:
            console.print(ln, markup=False, highlight=False)

    emit(d, human)


def _summary(ds: Any) -> dict[str, Any]:
    r = ds.record
    spec = r.dataset
    return {
        "ref": r.ref, "status": r.status, "title": r.title, "rows": ds.num_rows,
        "tables": [{"name": t.name, "role": t.role, "format": t.format, "columns": len(t.columns),
                    "row_groups": len(t.row_groups), "path": t.path} for t in spec.tables],
        "variables": [{"name": v.name, "dtype": v.dtype, "unit": v.unit, "table": v.table, "level": v.level}
                      for v in spec.variables],
        "families": [{"name": f.name, "type": f.type, "rule": f.combination.rule, "columns": len(f.resolved_columns()),
                      "normalisation": f.normalisation.kind + (f" [{f.normalisation.unit}]" if f.normalisation.unit
                                                               else "")} for f in spec.weights],
        "bytes": spec.distribution.bytes if spec.distribution else None,
    }


@dataset_app.command("show")
def show(dataset: Annotated[str, typer.Argument(help="NAME[@VERSION]")]) -> None:
    """Tables, variables and weight families of a dataset version."""
    from archive.datasets import open_dataset

    s = _summary(open_dataset(get_archive(), dataset))

    def human() -> None:
        p = console.print
        p(f"{s['ref']} ({s['status']}): {s['title']}", markup=False, highlight=False)
        p(f"rows: {s['rows']}, stored bytes: {s['bytes']}", markup=False)
        for t in s["tables"]:
            p(f"table {t['name']} [{t['role']}, {t['format']}]: {t['columns']} columns, {t['row_groups']} row "
              "group(s)", markup=False, highlight=False)
        for f in s["families"]:
            p(f"family {f['name']} ({f['type']}, {f['rule']}, {f['normalisation']}): {f['columns']} column(s)",
              markup=False, highlight=False)
        for v in s["variables"]:
            p(f"  {v['name']}: {v['dtype']}" + (f" [{v['unit']}]" if v["unit"] else ""), markup=False,
              highlight=False)

    emit(s, human)


@dataset_app.command("list")
def list_() -> None:
    """Every dataset and its versions."""
    a = get_archive()
    out = [{"id": rid, "versions": a.catalog.versions(rid)} for rid in a.catalog.ids() if rid.startswith("dataset/")]
    def human() -> None:
        for o in out:
            console.print(f"{o['id']}: {', '.join(o['versions'])}", markup=False, highlight=False)

    emit(out, human)


@dataset_app.command("verify")
def verify(dataset: Annotated[str, typer.Argument(help="NAME[@VERSION]")]) -> None:
    """Re-read every table: page checksums, alignment-key and column digests against the record."""
    from archive.datasets import open_dataset

    ds = open_dataset(get_archive(), dataset)
    problems = ds.verify()
    def human() -> None:
        for p in problems:
            err_console.print(p, markup=False)
        if not problems:
            console.print(f"{ds.record.ref}: all tables and columns match the record", markup=False)

    emit({"ref": ds.record.ref, "ok": not problems, "problems": problems}, human)
    if problems:
        raise typer.Exit(3)


@dataset_app.command("add-columns")
def add_columns_cmd(
    dataset: Annotated[str, typer.Argument(help="NAME[@VERSION] to extend")],
    file: Annotated[Path, typer.Argument(help="file with the new row-aligned columns (any importer format)")],
    version: Annotated[str, typer.Option(help="the new version X.Y.Z")],
    family: Annotated[Path | None, typer.Option(help="YAML of the weight family the columns form")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="importer of FILE (default: detected)")] = None,
) -> None:
    """A new version with extra columns (e.g. a new systematic weight family); the stored tables are reused."""
    import numpy as np

    from archive.datasets import add_columns
    from archive.errors import ValidationError
    from archive.formats import open_source
    from archive.schema._yaml import load_yaml_file

    fam = load_yaml_file(family, source=str(family)) if family is not None else None
    if fam is not None and not isinstance(fam, dict):
        raise ValidationError("the family file must be a mapping (name, type, columns, combination, ...)",
                              file=str(family))
    parts: dict[str, list[Any]] = {}
    with open_source(file, fmt) as src:
        bad = [c.name for c in src.columns if c.jagged or c.dense or c.dtype in ("string", "bytes")]
        if bad:
            raise ValidationError(f"only flat numeric columns can be added ({', '.join(bad[:3])} are not)",
                                  file=str(file))
        for batch in src.iter_batches(1 << 20):
            for k, v in batch.items():
                parts.setdefault(k, []).append(v)
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    rec = add_columns(get_archive(), dataset, cols, new_version=version, family=fam)
    data = {"ref": rec.ref, "columns_added": list(cols), "family": fam.get("name") if fam else None}
    emit(data, lambda: console.print(f"added {', '.join(list(cols)[:5])} as {rec.ref}", markup=False,
                                     highlight=False))


def register(app: typer.Typer) -> None:
    app.command(name="ingest")(ingest)
    app.command(name="export")(export)
    app.command(name="diff")(diff)
    app.add_typer(dataset_app, name="dataset")
