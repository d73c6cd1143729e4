"""Core commands: init, validate, put, add, publish, withdraw, show, search, index, schemas, info."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive, progress_callback

__all__ = ["register"]


def init(
    path: Annotated[Path, typer.Argument(help="directory to make an archive root")],
    name: Annotated[str | None, typer.Option(help="archive name (default: directory name)")] = None,
    store: Annotated[str | None, typer.Option(help="object store URL (default: objects/ inside the root)")] = None,
    datalad: Annotated[bool, typer.Option("--datalad", help="make the root a DataLad dataset")] = False,
) -> None:
    """Create an archive root: archive.yaml, catalog/, schemas/, recipes/, containers/."""
    from archive._archive import init_archive

    stores = [{"name": "local", "url": store}] if store else None
    a = init_archive(path, name=name, stores=stores, datalad=datalad)
    emit({"root": str(a.root), "stores": list(a.stores)}, lambda: console.print(f"created archive root {a.root}"))


def validate() -> None:
    """Check every record against its schema, its location, every reference and the ledger."""
    from archive.catalog import validate_archive

    a = get_archive()
    problems = validate_archive(a)
    n = sum(1 for _ in a.catalog.files())

    def human() -> None:
        for p in problems:
            err_console.print(str(p), markup=False, highlight=False)
        msg = f"{n} record file(s) checked: " + (f"{len(problems)} problem(s)" if problems else "all valid")
        (err_console if problems else console).print(msg, markup=False)

    emit({"ok": not problems, "records": n, "problems": [p.as_dict() for p in problems]}, human)
    if problems:
        raise typer.Exit(1)


def put(files: Annotated[list[Path], typer.Argument(help="files to store")]) -> None:
    """Store files in the archive's primary object store and print their digests."""
    a = get_archive()
    out = []
    for f in files:
        size = f.stat().st_size if f.is_file() else None
        with a.lock(), progress_callback(size, f.name) as cb:
            info = a.put(f, progress=cb)
        out.append({"file": str(f), "sha256": info.digest, "size": info.size})
    def human() -> None:
        for o in out:
            console.print(f"{o['sha256']}  {o['file']}", markup=False, highlight=False)

    emit(out, human)


def add(record_file: Annotated[Path, typer.Argument(help="a record as YAML (or - for stdin)")]) -> None:
    """Add a record version from a YAML file (validated; published versions are never overwritten)."""
    from archive.schema import parse_record
    from archive.schema._yaml import load_yaml_file, load_yaml_text

    label = str(record_file)
    data = load_yaml_text(sys.stdin.read(), source="<stdin>") if label == "-" else load_yaml_file(record_file)
    record = parse_record(data, source=label)
    path = get_archive().add_record(record)
    emit({"ref": record.ref, "path": str(path), "status": record.status},
         lambda: console.print(f"added {record.ref} ({record.status})", markup=False))


def publish(ref: Annotated[str, typer.Argument(help="kind/name@version")]) -> None:
    """Publish a draft record version; from then on it is immutable."""
    a = get_archive()
    with a.lock():
        r = a.catalog.publish(ref)
    emit({"ref": r.ref, "status": r.status}, lambda: console.print(f"published {r.ref}", markup=False))


def withdraw(
    ref: Annotated[str, typer.Argument(help="kind/name@version")],
    reason: Annotated[str, typer.Option(help="why (kept in the tombstone)")],
    deprecate: Annotated[bool, typer.Option("--deprecate", help="deprecate instead of withdrawing")] = False,
) -> None:
    """Withdraw (tombstone) or deprecate a published record version."""
    a = get_archive()
    with a.lock():
        r = a.catalog.transition(ref, "deprecated" if deprecate else "withdrawn", reason=reason)
    emit({"ref": r.ref, "status": r.status}, lambda: console.print(f"{r.status}: {r.ref}", markup=False))


def show(ref: Annotated[str, typer.Argument(help="kind/name[@version], a DOI or a digest")]) -> None:
    """Print a record (by default the latest published version)."""
    from archive.catalog import parse_ref
    from archive.errors import RecordNotFoundError, ValidationError
    from archive.schema import record_to_data
    from archive.schema._yaml import dump_yaml

    a = get_archive()
    try:
        rid, version = parse_ref(ref)
    except ValidationError:
        hits = a.index.lookup(ref)
        if not hits:
            raise RecordNotFoundError(f"no record with id, DOI or digest {ref!r}") from None
        rid, version = parse_ref(hits[0])
    r = a.catalog.get(rid, version)
    data = record_to_data(r)
    emit(data, lambda: console.print(dump_yaml(data), markup=False, highlight=False, end=""))


def search(
    query: Annotated[str, typer.Argument(help="words to look for")] = "",
    kind: Annotated[str | None, typer.Option(help="only this record kind")] = None,
    experiment: Annotated[str | None, typer.Option(help="only this experiment")] = None,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", help="every version, not only the latest")] = False,
    limit: Annotated[int, typer.Option(help="at most this many results")] = 20,
) -> None:
    """Ranked full-text search over the catalog."""
    hits = get_archive().index.search(query, kind=kind, experiment=experiment, status=status,
                                      all_versions=all_versions, limit=limit)

    def human() -> None:
        from rich.table import Table

        t = Table("score", "record", "status", "experiment", "title")
        for h in hits:
            t.add_row(f"{h.score:.2f}", h.ref, h.status, h.experiment or "", h.title)
        console.print(t)

    emit([h.as_dict() for h in hits], human)


def index() -> None:
    """Drop and rebuild the derived search index from the catalog's YAML files."""
    a = get_archive()
    n = a.index.rebuild()
    emit({"indexed": n, "path": str(a.index.path)}, lambda: console.print(f"indexed {n} record(s)", markup=False))


def schemas(
    write: Annotated[bool, typer.Option("--write", help="regenerate schemas/ from the models")] = False,
    output: Annotated[Path | None, typer.Option(help="directory (default: the archive root's schemas/)")] = None,
) -> None:
    """Check (default) or regenerate the JSON Schemas generated from the record models."""
    from archive.schema import stale_schemas, write_schemas

    target = output or (get_archive().root / "schemas")
    if write:
        paths = write_schemas(target)
        emit([str(p) for p in paths], lambda: console.print(f"wrote {len(paths)} schema file(s) to {target}"))
        return
    stale = sorted(stale_schemas(target))
    emit({"stale": stale}, lambda: (err_console if stale else console).print(
        ("stale: " + ", ".join(stale)) if stale else "schemas are up to date", markup=False))
    if stale:
        raise typer.Exit(1)


def info() -> None:
    """Versions of Python, hep-archive, its dependencies and the system tools it can use."""
    import importlib.metadata as md
    import platform
    import shutil

    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("hep-archive", "pydantic", "numpy", "pyarrow", "h5py", "zarr", "uproot", "awkward", "numba",
                 "onnx", "onnxruntime", "torch", "pythia8mc", "fastjet", "datalad", "reana-client"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    for tool in ("bwrap", "podman", "skopeo", "umoci", "git-annex", "apptainer", "docker"):
        out[tool] = shutil.which(tool)
    def human() -> None:
        for k, v in out.items():
            console.print(f"{k:14} {v or '-'}", markup=False, highlight=False)

    emit(out, human)


def register(app: typer.Typer) -> None:
    for fn in (init, validate, put, add, publish, withdraw, show, search, index, schemas, info):
        app.command(name=fn.__name__)(fn)
