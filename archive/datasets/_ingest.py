"""Ingest files into a new dataset version, and add columns (a new weight family) as a new version.

Order of work, so that bad input never leaves anything behind: check the version is new, open the sources and
check columns, families and row counts; stream every batch into table files in a temporary directory (weights
checked for NaN/inf on the way); build and validate the record; only then store the files and add the record,
under the archive lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archive.datasets._families import ENVELOPE_KEYS, infer_families, load_metadata
from archive.datasets._tables import KEY, TableWriter
from archive.errors import ImmutableError, ValidationError
from archive.formats._base import Batch, ColumnInfo, Source, open_source, rebatch
from archive.schema.v1.dataset import DatasetRecord, WeightFamily

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["DEFAULT_ROW_GROUP_ROWS", "add_columns", "ingest"]

DEFAULT_ROW_GROUP_ROWS = 131072
MEDIA = {"parquet": "application/vnd.apache.parquet", "zarr-zip": "application/zip"}


def _check_new_version(archive: Archive, name: str, version: str) -> None:
    if archive.catalog.exists(f"dataset/{name}", version):
        raise ImmutableError(f"dataset/{name}@{version} already exists; versions are never reused: choose a new "
                             f"version (next: {archive.catalog.next_version(f'dataset/{name}')})",
                             field="version")


def _combine(sources: Sequence[Source]) -> tuple[list[ColumnInfo], int, Callable[[int], Iterator[Batch]]]:
    """Sources with the same columns are concatenated; with disjoint columns, joined side by side."""
    first = sources[0]
    names = [c.name for c in first.columns]
    if all([c.name for c in s.columns] == names for s in sources[1:]):
        for s in sources[1:]:
            for a, b in zip(first.columns, s.columns, strict=True):
                if (a.dtype, a.shape) != (b.dtype, b.shape):
                    raise ValidationError(f"column {a.name!r} is {b.dtype} here but {a.dtype} in {first.path.name}",
                                          file=str(s.path), field=a.name)

        def concat(rows: int) -> Iterator[Batch]:
            return itertools.chain.from_iterable(s.iter_batches(rows) for s in sources)

        return list(first.columns), sum(s.num_rows for s in sources), concat
    seen: dict[str, str] = {}
    for s in sources:
        for c in s.columns:
            if c.name in seen:
                raise ValidationError(f"duplicate column name {c.name!r} (also in {seen[c.name]}); files are joined "
                                      "side by side only when their columns differ", file=str(s.path), field=c.name)
            seen[c.name] = s.path.name
    for s in sources[1:]:
        if s.num_rows != first.num_rows:
            raise ValidationError(f"row-count mismatch between tables: {s.path.name} has {s.num_rows} rows, "
                                  f"{first.path.name} has {first.num_rows}; row-aligned tables need equal counts",
                                  file=str(s.path))

    def join(rows: int) -> Iterator[Batch]:
        its = [rebatch(s.iter_batches(rows), rows) for s in sources]
        for parts in zip(*its, strict=True):
            merged: Batch = {}
            for p in parts:
                merged.update(p)
            yield merged

    return [c for s in sources for c in s.columns], first.num_rows, join


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _validate_families(families: list[dict[str, Any]], columns: Mapping[str, ColumnInfo], label: str
                       ) -> list[WeightFamily]:
    import pydantic

    from archive.schema import problems_from_pydantic

    out = []
    for i, f in enumerate(families):
        try:
            fam = WeightFamily.model_validate(f)
        except pydantic.ValidationError as err:
            probs = problems_from_pydantic(err, label)
            for p in probs:
                p.field = f"weights[{i}].{p.field}"
            raise ValidationError(f"invalid weight family {f.get('name', i)!r}", file=label, problems=probs) from None
        missing = [c for c in fam.resolved_columns() if c not in columns]
        if missing:
            raise ValidationError(f"weight family {fam.name!r} names columns that do not exist: "
                                  f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
                                  file=label, field=f"weights[{i}]")
        bad = [c for c in fam.resolved_columns() if columns[c].jagged or columns[c].dense
               or np.dtype(columns[c].dtype).kind != "f"]
        if bad:
            raise ValidationError(f"weight family {fam.name!r}: weight columns must be flat floating-point "
                                  f"({', '.join(f'{c}: {columns[c].dtype}' for c in bad[:3])})",
                                  file=label, field=f"weights[{i}]")
        out.append(fam)
    return out


def _check_finite(batch: Batch, weight_cols: Sequence[str], offset: int, label: str) -> None:
    for c in weight_cols:
        v = batch[c]
        ok = np.isfinite(v)
        if not ok.all():
            row = offset + int(np.argmin(ok))
            what = "NaN" if np.isnan(v[row - offset]) else "infinite"
            raise ValidationError(f"weight column {c!r} has {int((~ok).sum())} NaN/infinite value(s), first at row "
                                  f"{row} ({what}); fix the input or drop the column", file=label, field=c)


def _variables(columns: Sequence[ColumnInfo], table_of: Mapping[str, str], digests: Mapping[str, str],
               weight_cols: set[str], meta_vars: Mapping[str, Any], label: str,
               stats: Mapping[str, Mapping[str, float]] | None = None) -> list[dict[str, Any]]:
    names = {c.name for c in columns}
    unknown = [v for v in meta_vars if v not in names]
    if unknown:
        raise ValidationError(f"metadata describes variables that are not in the data: {', '.join(unknown[:5])}",
                              file=label, field="variables")
    out = []
    for c in columns:
        v: dict[str, Any] = {"name": c.name, "dtype": c.dtype, "table": table_of[c.name], "digest": digests[c.name]}
        if c.shape:
            v["shape"] = list(c.shape)
        if c.unit:
            v["unit"] = c.unit
        if c.description:
            v["description"] = c.description
        if c.name in weight_cols:
            v["level"] = "weight"
        v.update((stats or {}).get(c.name, {}))
        v.update(meta_vars.get(c.name, {}))
        out.append(v)
    return out


def _finish(archive: Archive, data: dict[str, Any], tmp: Path, tables: list[dict[str, Any]],
            descriptions: Mapping[str, str], reuse: Sequence[Any] = ()) -> DatasetRecord:
    """Validate the record (placeholder digests), then, locked, store the table files (hashed once, while
    copying) and add the record with their real digests."""
    from archive.schema import parse_record

    placeholder = "sha256:" + "0" * 64
    files = [f.model_dump(mode="json", exclude_none=True) for f in reuse]
    for t in tables:
        files.append({"path": t["path"], "size": (tmp / t["path"]).stat().st_size, "sha256": placeholder,
                      "role": {"events": "events", "weights": "weights", "array": "array"}[t["role"]],
                      "media_type": MEDIA[t["format"]], "description": descriptions.get(t["name"])})
    spec = data["dataset"]
    spec["distribution"] = {**spec.get("distribution", {}), "events": spec["num_rows"], "files": len(files),
                            "bytes": sum(f["size"] for f in files),
                            "formats": sorted({t["format"] for t in spec["tables"]})}
    source = f"dataset/{data['id'].split('/', 1)[1]}@{data['version']}"
    data["files"] = [{k: v for k, v in f.items() if v is not None} for f in files]
    parse_record(data, source=source)  # every field checked before anything is stored
    new = {t["path"] for t in tables}
    with archive.lock():
        _check_new_version(archive, data["id"].split("/", 1)[1], data["version"])
        for f in data["files"]:
            if f["path"] in new:
                info = archive.store.put_file(tmp / f["path"], adler32=True)
                f.update({"sha256": info.digest, "size": info.size, "adler32": info.adler32})
            else:
                archive.find_object(f["sha256"])
        record = parse_record(data, source=source)
        assert isinstance(record, DatasetRecord)
        archive.catalog.add(record, replace_draft=False)
    return record


def ingest(archive: Archive, paths: Sequence[Path], *, name: str, version: str,
           metadata: Path | Mapping[str, Any] | None = None, fmt: str | None = None,
           progress: Callable[[int], None] | None = None,
           row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
           source_options: Mapping[str, Any] | None = None) -> DatasetRecord:
    """Ingest ``paths`` as ``dataset/name@version`` (draft): canonical Parquet tables (+ Zarr for dense arrays).

    Args:
        archive: the archive to write to.
        paths: input files; same columns are concatenated, disjoint columns joined side by side.
        name: dataset name; version: a new semantic version (reuse is refused).
        metadata: a YAML file or mapping with record fields the importer cannot infer.
        fmt: importer name (default: detected per file).
        progress: called with the number of rows written after each batch.
        row_group_rows: rows per stored row group (bounded memory: one batch of this size at a time).
        source_options: passed to every importer, e.g. ``{"tree": "Events"}`` (ROOT), ``{"key": "df"}`` (ATLAS
            HDF5), ``{"columns": [...]}`` (ROOT, HDF5, Parquet/Arrow: only these).

    Raises:
        ImmutableError: the version exists. ValidationError: bad input (one line; nothing is stored).
    """
    if not paths:
        raise ValidationError("no input files", field="paths")
    _check_new_version(archive, name, version)
    meta = load_metadata(metadata)
    label = meta.pop("_label", "metadata")
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(open_source(Path(p), fmt, **dict(source_options or {}))) for p in paths]
        columns, num_rows, batches = _combine(sources)
        by_name = {c.name: c for c in columns}
        if KEY in by_name:
            raise ValidationError(f"column name {KEY!r} is reserved for the alignment key", field=KEY)
        inferred: dict[str, Any] = {}
        for s in sources:
            inferred = _merge(inferred, {k: v for k, v in s.metadata.items() if not k.startswith("_")})
        unit = "pb" if any(s.format == "lhe" for s in sources) else None
        fam_data = meta.get("weights", inferred.get("weights") or infer_families(list(by_name), unit=unit))
        families = _validate_families(fam_data, by_name, label)
        weight_cols = list(dict.fromkeys(c for f in families for c in f.resolved_columns()))
        wset = set(weight_cols)
        dense = [c for c in columns if c.dense]
        events = [c for c in columns if not c.dense and c.name not in wset]
        plan = [("events", "events", events), ("weights", "weights", [by_name[c] for c in weight_cols]),
                ("arrays", "array", dense)]
        plan = [p for p in plan if p[2] or p[0] == "events"]
        tmpdir = archive.state_dir / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmpdir, prefix="ingest-")))
        suffix = {"events": ".parquet", "weights": ".parquet", "array": ".zarr.zip"}
        writers = {tname: TableWriter(tmp / f"{tname}{suffix[role]}", role, cols, num_rows, row_group_rows)
                   for tname, role, cols in plan}
        try:
            offset = 0
            for batch in rebatch(batches(row_group_rows), row_group_rows):
                n = len(next(iter(batch.values())))
                _check_finite(batch, weight_cols, offset, str(sources[0].path))
                for w in writers.values():
                    w.write(batch, n)
                offset += n
                if progress is not None:
                    progress(n)
            if offset == 0:
                for w in writers.values():
                    w.write({c.name: _empty(c) for c in w.columns}, 0)
        finally:
            for w in writers.values():
                w.abort()
        if offset != num_rows:
            raise ValidationError(f"read {offset} rows but the sources announced {num_rows}", file=str(paths[0]))
        table_of = {c.name: tname for tname, _r, cols in plan for c in cols}
        digests = {k: v for w in writers.values() for k, v in w.digests().items()}
        key_digest = writers["events"].key_digest
        tables = [{"name": tname, "role": role, "path": writers[tname].path.name,
                   "format": "zarr-zip" if role == "array" else "parquet", "columns": [c.name for c in cols],
                   "alignment": {"num_rows": num_rows, "key": KEY, "key_digest": key_digest, "synthetic": True},
                   "row_groups": writers[tname].row_groups,
                   "compression": "zstd-1 + crc32c" if role == "array" else
                   "zstd-1, BYTE_STREAM_SPLIT floats, no dictionary, page CRC"} for tname, role, cols in plan]
        envelope = _merge({k: v for k, v in inferred.items() if k in ENVELOPE_KEYS},
                          {k: v for k, v in meta.items() if k in ENVELOPE_KEYS})
        measurement = _merge(inferred.get("measurement", {}), meta.get("measurement", {}))
        spec: dict[str, Any] = {
            "num_rows": num_rows, "tables": tables,
            "variables": _variables(columns, table_of, digests, wset, meta.get("variables", {}), label,
                                    {k: v for w in writers.values() for k, v in w.statistics().items()}),
            "weights": [f.model_dump(mode="json", exclude_none=True) for f in families],
            "measurement": measurement, "binnings": meta.get("binnings", {}),
            "distribution": {"source_formats": sorted({s.format for s in sources})},
        }
        data = {"id": f"dataset/{name}", "version": version, "title": envelope.pop("title", name), **envelope,
                "dates": _merge({"created": dt.datetime.now(dt.UTC).date().isoformat()}, envelope.get("dates", {})),
                "dataset": spec}
        return _finish(archive, data, tmp, tables, {"events": "event table (observables)",
                                                    "weights": "weight table (weight families)",
                                                    "arrays": "dense per-event arrays (Zarr v3, crc32c)"})
    raise AssertionError("unreachable")  # pragma: no cover


def _empty(c: ColumnInfo) -> Any:
    if c.jagged or c.dtype in ("string", "bytes"):
        import pyarrow as pa

        from archive.formats.arrow import arrow_schema

        return pa.array([], type=arrow_schema([c])[0].type)
    return np.zeros((0, *c.shape), dtype=c.dtype)


def add_columns(archive: Archive, base: str, columns: Mapping[str, np.ndarray], *, new_version: str,
                family: Mapping[str, Any] | None = None) -> DatasetRecord:
    """A new version of ``base`` (``name[@version]``) with extra row-aligned columns in a new table.

    The stored event table (and every other table) is reused as is: only the new table is written. With
    ``family`` the columns form a new weight family (checked like at ingest: existing columns, finite values).

    Raises:
        ImmutableError: ``new_version`` exists. ValidationError: duplicate names, wrong lengths, NaN weights.
    """
    from archive.datasets._dataset import open_dataset
    from archive.schema import record_to_data

    ds = open_dataset(archive, base)
    _check_new_version(archive, ds.name, new_version)
    if not columns:
        raise ValidationError("no columns to add", field="columns")
    infos: dict[str, ColumnInfo] = {}
    for cname, arr in columns.items():
        a = np.asarray(arr)
        if cname in ds.columns or cname == KEY:
            raise ValidationError(f"duplicate column name {cname!r}: {ds.name}@{ds.version} already has it",
                                  field=cname)
        if a.shape[:1] != (ds.num_rows,):
            raise ValidationError(f"row-count mismatch between tables: column {cname!r} has "
                                  f"{a.shape[0] if a.ndim else 0} rows, the dataset {ds.num_rows}", field=cname)
        if a.ndim != 1 or a.dtype.kind not in "biuf":
            raise ValidationError(f"column {cname!r} must be a flat numeric array (got {a.dtype}, ndim {a.ndim})",
                                  field=cname)
        infos[cname] = ColumnInfo(cname, a.dtype.name)
    data = record_to_data(ds.record)
    spec = data["dataset"]
    fams: list[WeightFamily] = []
    if family is not None:
        all_cols = {**{c.name: c for c in ds.column_infos()}, **infos}
        fams = _validate_families([dict(family)], all_cols, "family")
        if fams[0].name in {f.name for f in ds.weight_families}:
            raise ValidationError(f"weight family {fams[0].name!r} already exists in {ds.name}@{ds.version}",
                                  field="family.name")
    role = "weights" if family is not None else "events"
    existing = {t["name"] for t in spec["tables"]}
    tname = next(f"{role}-{i}" for i in itertools.count(1) if f"{role}-{i}" not in existing)
    events = next(t for t in ds.record.dataset.tables if t.role == "events")
    with contextlib.ExitStack() as stack:
        tmpdir = archive.state_dir / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmpdir, prefix="add-")))
        w = TableWriter(tmp / f"{tname}.parquet", role, list(infos.values()), ds.num_rows, DEFAULT_ROW_GROUP_ROWS)
        try:
            start = 0
            for n in events.row_groups or [0]:
                batch = {c: np.asarray(columns[c])[start:start + n] for c in infos}
                if family is not None:
                    _check_finite(batch, list(infos), start, "family")
                w.write(batch, n)
                start += n
        finally:
            w.abort()
        wset = {c for f in fams for c in f.resolved_columns()}
        spec["tables"].append({"name": tname, "role": role, "path": w.path.name, "format": "parquet",
                               "columns": list(infos), "row_groups": w.row_groups,
                               "alignment": {"num_rows": ds.num_rows, "key": KEY, "key_digest": w.key_digest,
                                             "synthetic": True},
                               "compression": "zstd-1, BYTE_STREAM_SPLIT floats, no dictionary, page CRC"})
        spec["variables"] += _variables(list(infos.values()), dict.fromkeys(infos, tname), w.digests(), wset, {},
                                        "columns", w.statistics())
        spec["weights"] += [f.model_dump(mode="json", exclude_none=True) for f in fams]
        data.update({"version": new_version, "status": "draft",
                     "dates": {"created": dt.datetime.now(dt.UTC).date().isoformat()}})
        data.pop("tombstone", None)
        ident = data.get("identifiers", {})
        ident.pop("doi", None)
        data["relations"] = [*data.get("relations", []),
                             {"type": "IsNewVersionOf", "target": f"dataset/{ds.name}@{ds.version}"}]
        reuse = list(ds.record.files)
        data["files"] = []
        return _finish(archive, data, tmp, [spec["tables"][-1]],
                       {tname: f"added columns: {', '.join(list(infos)[:5])}"}, reuse=reuse)
    raise AssertionError("unreachable")  # pragma: no cover
