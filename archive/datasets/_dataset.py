"""Reading a stored dataset: projection, row-group streaming, row ranges, arrow and awkward views."""

from __future__ import annotations

import hashlib
import itertools
import threading
import zipfile
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archive.datasets._tables import KEY
from archive.errors import ArchiveError, IntegrityError, NotFoundError, RecordNotFoundError, ValidationError
from archive.schema.v1.dataset import DatasetRecord, TableSpec, WeightFamily

if TYPE_CHECKING:
    import pyarrow as pa

    from archive._archive import Archive

__all__ = ["Dataset", "open_dataset", "parse_dataset_ref"]


def parse_dataset_ref(ref: str) -> tuple[str, str | None]:
    """``name``, ``name@1.0.0``, ``dataset/name[@v]`` -> (name, version or None)."""
    name, _, version = ref.partition("@")
    if name.startswith("dataset/"):
        name = name[len("dataset/"):]
    if "/" in name or not name:
        raise ValidationError(f"{ref!r} is not a dataset reference (NAME[@VERSION])")
    return name, version or None


def open_dataset(archive: Archive, name: str, version: str | None = None) -> Dataset:
    """The dataset ``name`` (``name@version`` accepted) at ``version`` (default: latest published, else latest).

    Raises:
        RecordNotFoundError: no such dataset or version.
    """
    n, v = parse_dataset_ref(name)
    record = archive.catalog.get(f"dataset/{n}", version or v)
    if not isinstance(record, DatasetRecord):  # pragma: no cover - the catalog types records by kind
        raise RecordNotFoundError(f"dataset/{n} is not a dataset record")
    return Dataset(archive, record)


class Dataset:
    """Column access to one version of a dataset. Tables are opened lazily; Parquet page checksums are verified
    on every read and each table file's size is checked against the record."""

    def __init__(self, archive: Archive, record: DatasetRecord) -> None:
        self.archive = archive
        self.record = record
        self.name: str = record.name
        self.version: str = record.version
        spec = record.dataset
        self.num_rows: int = spec.num_rows
        self.columns: list[str] = [v.name for v in spec.variables]
        self.weight_families: list[WeightFamily] = list(spec.weights)
        self._table_of = {c: t for t in spec.tables for c in t.columns}
        self._local = threading.local()  # open files per thread: parallel readers never share a handle

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, version={self.version!r}, rows={self.num_rows}, columns={len(self.columns)})"

    # --- tables -----------------------------------------------------------------------------
    def family(self, name: str) -> WeightFamily:
        for f in self.weight_families:
            if f.name == name:
                return f
        raise NotFoundError(f"dataset {self.name}@{self.version} has no weight family {name!r} "
                            f"(families: {', '.join(f.name for f in self.weight_families) or 'none'})")

    def table_path(self, table: TableSpec) -> Path:
        entry = next(f for f in self.record.files if f.path == table.path)
        path = self.archive.file_path(entry)
        size = path.stat().st_size
        if size != entry.size:
            raise IntegrityError(f"stored table has {size} bytes, the record says {entry.size}; run "
                                 "`hep-archive verify` and repair from a replica", file=str(path), field=table.name)
        return path

    @property
    def _handles(self) -> dict[str, Any]:
        handles: dict[str, Any] | None = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        return handles

    def _handle(self, table: TableSpec) -> Any:
        h = self._handles.get(table.name)
        if h is None:
            path = self.table_path(table)
            if table.format == "parquet":
                import pyarrow.parquet as pq

                h = pq.ParquetFile(path, page_checksum_verification=True)
                if h.metadata.num_rows != self.num_rows:
                    raise IntegrityError(f"table has {h.metadata.num_rows} rows, the record says {self.num_rows}",
                                         file=str(path), field=table.name)
            else:
                import zarr

                store = zarr.storage.ZipStore(path, mode="r")
                group = zarr.open_group(store, mode="r")
                h = {table.columns[i]: group[f"c{i}"] for i in range(len(table.columns))}
            self._handles[table.name] = h
        return h

    def _group(self, columns: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in columns:
            t = self._table_of.get(c)
            if t is None:
                raise NotFoundError(f"dataset {self.name}@{self.version} has no column {c!r}", field=c)
            out.setdefault(t.name, []).append(c)
        return out

    @cached_property
    def _starts(self) -> dict[str, np.ndarray]:
        out = {}
        for t in self.record.dataset.tables:
            out[t.name] = np.concatenate([[0], np.cumsum(np.asarray(t.row_groups, dtype=np.int64))])
        return out

    # --- reading ----------------------------------------------------------------------------
    def _raw(self, columns: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        """Values of ``columns`` for rows [start, stop): numpy (flat, dense) or arrow (jagged, strings)."""
        try:
            return self._read_range(columns, start, stop)
        except ArchiveError:
            raise
        except Exception as exc:
            known = OSError | RuntimeError | ValueError | zipfile.BadZipFile
            if isinstance(exc, known) or type(exc).__module__.startswith(("pyarrow", "zarr", "numcodecs")):
                raise IntegrityError(f"stored table of {self.name}@{self.version} failed to read or verify "
                                     f"({type(exc).__name__}: {exc}); run `hep-archive verify` and repair it",
                                     field=",".join(columns[:3])) from None
            raise

    def _read_range(self, columns: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        start, stop = max(0, start), min(stop, self.num_rows)
        if stop < start:
            stop = start
        out: dict[str, Any] = {}
        spec = self.record.dataset
        for tname, cols in self._group(columns).items():
            table = spec.table(tname)
            h = self._handle(table)
            if table.format != "parquet":
                for c in cols:
                    out[c] = h[c][start:stop]
                continue
            starts = self._starts[tname]
            if start == 0 and stop == self.num_rows:
                tab = h.read(columns=cols)
            else:
                first = int(np.searchsorted(starts, start, side="right") - 1)
                last = int(np.searchsorted(starts, stop, side="left"))
                groups = list(range(max(first, 0), max(last, first + 1)))
                tab = h.read_row_groups(groups, columns=cols) if groups and stop > start else None
                if tab is None:
                    tab = h.schema_arrow.empty_table().select(cols)
                else:
                    tab = tab.slice(start - int(starts[groups[0]]), stop - start)
            for c in cols:
                out[c] = _to_value(tab.column(c), spec.variable(c).dtype)
        return {c: out[c] for c in columns}

    def read_rows(self, columns: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows [start, stop) of ``columns``: numpy arrays (jagged columns as awkward arrays)."""
        return _public(self._raw(columns, start, stop), self)

    def read(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Whole ``columns`` (projection: only those columns' pages are read)."""
        return self.read_rows(columns, 0, self.num_rows)

    def partitions(self) -> list[tuple[int, int]]:
        """(start, stop) row ranges of the stored row groups, for parallel readers."""
        events = next((t for t in self.record.dataset.tables if t.role == "events"), None)
        starts = self._starts[events.name] if events else np.array([0, self.num_rows])
        return [(int(a), int(b)) for a, b in itertools.pairwise(starts) if b > a]

    def _ranges(self, batch_rows: int | None) -> list[tuple[int, int]]:
        if batch_rows is None:
            return self.partitions()
        if batch_rows <= 0:
            raise ValidationError("batch_rows must be positive", field="batch_rows")
        return [(s, min(s + batch_rows, self.num_rows)) for s in range(0, self.num_rows, batch_rows)]

    def iter_raw(self, columns: Sequence[str], *, batch_rows: int | None = None) -> Iterator[dict[str, Any]]:
        """Like iter_batches, with jagged columns as arrow arrays (for writers)."""
        for a, b in self._ranges(batch_rows):
            yield self._raw(columns, a, b)

    def iter_batches(self, columns: Sequence[str], *, batch_rows: int | None = None
                     ) -> Iterator[dict[str, np.ndarray]]:
        """Row-aligned batches of ``columns`` (default: one stored row group each); memory stays bounded."""
        for raw in self.iter_raw(columns, batch_rows=batch_rows):
            yield _public(raw, self)

    def to_arrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The columns as one pyarrow Table (dense arrays as fixed-size lists)."""
        import pyarrow as pa

        from archive.formats.arrow import value_to_arrow

        cols = list(columns) if columns is not None else self.columns
        raw = self._raw(cols, 0, self.num_rows)
        infos = {c.name: c for c in self.column_infos(cols)}
        return pa.table({c: value_to_arrow(raw[c], infos[c]) for c in cols})

    def to_awkward(self, columns: Sequence[str] | None = None) -> Any:
        """The columns as an awkward record array (jagged columns as variable-length lists)."""
        import awkward as ak

        return ak.from_arrow(self.to_arrow(columns), highlevel=True)

    def column_infos(self, columns: Sequence[str] | None = None) -> list[Any]:
        from archive.formats._base import ColumnInfo

        cols = list(columns) if columns is not None else self.columns
        out = []
        for c in cols:
            v = self.record.dataset.variable(c)
            out.append(ColumnInfo(v.name, v.dtype, tuple(v.shape or ()), v.unit, v.description))
        return out

    # --- integrity --------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Re-read every table: row counts, alignment-key digests and column digests against the record.

        Returns:
            One line per problem (empty when all is well).
        """
        from archive.datasets._tables import ColumnHasher

        problems = []
        spec = self.record.dataset
        for t in spec.tables:
            infos = self.column_infos(t.columns)
            hashers = {c.name: ColumnHasher(c) for c in infos}
            for a, b in self._ranges(None):
                raw = self._raw(t.columns, a, b)
                for c in t.columns:
                    hashers[c].update(raw[c])
            if t.format == "parquet":
                h = self._handle(t)
                key = hashlib.sha256()
                for i in range(h.num_row_groups):
                    kv = h.read_row_group(i, columns=[KEY]).column(KEY).to_numpy()
                    key.update(np.ascontiguousarray(kv, dtype="<i8").tobytes())
                if "sha256:" + key.hexdigest() != t.alignment.key_digest:
                    problems.append(f"{t.name}: alignment key digest differs from the record (rows reordered?)")
            for c, hs in hashers.items():
                want = spec.variable(c).digest
                if want is not None and hs.digest() != want:
                    problems.append(f"{t.name}: column {c!r} content digest differs from the record")
        return problems

    def close(self) -> None:
        self._handles.clear()


def _to_value(col: Any, dtype: str) -> Any:
    if dtype.startswith("var * ") or dtype in ("string", "bytes"):
        return col.combine_chunks()
    return col.to_numpy()


def _public(raw: dict[str, Any], ds: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c, v in raw.items():
        if isinstance(v, np.ndarray):
            out[c] = v
            continue
        dtype = ds.record.dataset.variable(c).dtype
        if dtype in ("string", "bytes"):
            out[c] = np.asarray(v.to_pylist(), dtype=object)
        else:
            import awkward as ak

            out[c] = ak.from_arrow(v, highlevel=True)
    return out
