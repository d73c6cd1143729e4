"""Canonical table writers: Parquet (events, weights) and Zarr v3 in a zip (dense arrays), plus column digests.

Every table carries the alignment key column ``_row`` (int64 original row order, delta-encoded: a few bytes per
row group). Row groups of every table of a dataset have the same boundaries, so batches stay row-aligned.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archive.formats._base import Batch, ColumnInfo

__all__ = ["KEY", "ColumnHasher", "TableWriter", "array_chunk_rows"]

KEY = "_row"
ZARR_CHUNK_BYTES = 8 << 20


class ColumnHasher:
    """sha256 of a column in canonical form: little-endian values in row order (C order for dense arrays);
    for jagged and string columns sha256 over ``"jagged:" + sha256(int64 counts) + sha256(values)``."""

    def __init__(self, info: ColumnInfo) -> None:
        self.info = info
        self.values = hashlib.sha256()
        self.counts = hashlib.sha256() if info.jagged or info.dtype in ("string", "bytes") else None

    def update(self, value: Any) -> None:
        if self.counts is None:
            a = np.ascontiguousarray(value)
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            self.values.update(a.tobytes() if not a.flags.c_contiguous else a.data.cast("B"))
            return
        import pyarrow as pa

        arr = value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value
        if self.info.dtype in ("string", "bytes"):
            arr = arr.cast(pa.large_binary())
            items = arr.to_pylist()
            self.counts.update(np.array([len(x) for x in items], dtype="<i8").tobytes())
            self.values.update(b"".join(items))
            return
        offsets = np.asarray(arr.offsets.to_numpy(), dtype=np.int64)
        self.counts.update(np.diff(offsets).astype("<i8").tobytes())
        vals = np.ascontiguousarray(arr.flatten().to_numpy(zero_copy_only=False))
        self.values.update(vals.data.cast("B"))

    def digest(self) -> str:
        if self.counts is None:
            return "sha256:" + self.values.hexdigest()
        combined = b"jagged:" + self.counts.hexdigest().encode() + self.values.hexdigest().encode()
        return "sha256:" + hashlib.sha256(combined).hexdigest()


def array_chunk_rows(info: ColumnInfo, row_group_rows: int) -> int:
    """Rows per Zarr chunk: about 8 MiB uncompressed, a power of two dividing the row-group size."""
    per_row = int(np.prod(info.shape)) * np.dtype(info.dtype).itemsize
    rows = row_group_rows
    while rows > 1 and rows * per_row > ZARR_CHUNK_BYTES:
        rows //= 2
    return max(rows, 1)


class TableWriter:
    """Write one table (``role`` events/weights: Parquet; ``array``: Zarr v3 zip) from row batches."""

    def __init__(self, path: Path, role: str, columns: Sequence[ColumnInfo], num_rows: int,
                 row_group_rows: int) -> None:
        self.path = path
        self.role = role
        self.columns = list(columns)
        self.num_rows = num_rows
        self.row_group_rows = row_group_rows
        self.row_groups: list[int] = []
        self.hashers = {c.name: ColumnHasher(c) for c in self.columns}
        self.stats: dict[str, list[float | None]] = {
            c.name: [None, None, None] for c in self.columns
            if not c.jagged and not c.dense and c.dtype not in ("string", "bytes")}
        self.key_hash = hashlib.sha256()
        self.rows = 0
        self._writer: Any = None
        self._store: Any = None
        self._arrays: dict[str, Any] = {}
        if role == "array":
            self._open_zarr()
        else:
            self._open_parquet()

    def _open_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from archive.formats.arrow import arrow_schema, parquet_options

        self.schema = arrow_schema([*self.columns, ColumnInfo(KEY, "int64")])
        opts = parquet_options(self.columns)
        opts["column_encoding"] = {**(opts["column_encoding"] or {}), KEY: "DELTA_BINARY_PACKED"}
        self._writer = pq.ParquetWriter(self.path, self.schema, **opts)
        self._pa = pa

    def _open_zarr(self) -> None:
        import zarr
        from zarr.codecs import Crc32cCodec, ZstdCodec

        self._store = zarr.storage.ZipStore(self.path, mode="w")
        root = zarr.open_group(self._store, mode="w", attributes={"hep-archive": "dense arrays, axis 0 = event"})
        for i, c in enumerate(self.columns):
            self._arrays[c.name] = root.create_array(
                f"c{i}", shape=(self.num_rows, *c.shape), dtype=c.dtype,
                chunks=(array_chunk_rows(c, self.row_group_rows), *c.shape),
                compressors=[ZstdCodec(level=1), Crc32cCodec()], attributes={"name": c.name}, fill_value=0,
            )

    def write(self, batch: Batch, n: int) -> None:
        """Append ``n`` rows (``batch`` holds at least this table's columns)."""
        key = np.arange(self.rows, self.rows + n, dtype="<i8")
        self.key_hash.update(key.tobytes())
        for c in self.columns:
            self.hashers[c.name].update(batch[c.name])
            if c.name in self.stats:
                self._update_stats(c.name, batch[c.name])
        if self.role == "array":
            for c in self.columns:
                self._arrays[c.name][self.rows:self.rows + n] = batch[c.name]
        else:
            from archive.formats.arrow import value_to_arrow

            pa = self._pa
            arrays = []
            for c, f in zip(self.columns, self.schema, strict=False):
                a = value_to_arrow(batch[c.name], c)
                arrays.append(a if a.type == f.type else a.cast(f.type))
            arrays.append(pa.array(key))
            table = pa.Table.from_arrays(arrays, schema=self.schema)
            self._writer.write_table(table, row_group_size=max(n, 1))
        self.rows += n
        self.row_groups.append(n)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @property
    def key_digest(self) -> str:
        return "sha256:" + self.key_hash.hexdigest()

    def digests(self) -> dict[str, str]:
        return {k: h.digest() for k, h in self.hashers.items()}

    def _update_stats(self, name: str, value: Any) -> None:
        a = np.asarray(value)
        if a.size == 0:
            return
        finite = a if a.dtype.kind in "biu" else a[np.isfinite(a)]
        if finite.size == 0:
            return
        lo, hi, total = float(finite.min()), float(finite.max()), float(np.sum(finite, dtype=np.float64))
        st = self.stats[name]
        st[0] = lo if st[0] is None else min(st[0], lo)
        st[1] = hi if st[1] is None else max(st[1], hi)
        st[2] = total if st[2] is None else st[2] + total

    def statistics(self) -> dict[str, dict[str, float]]:
        """minimum, maximum and sum (float64 accumulation) of the finite values of every flat numeric column."""
        out = {}
        for k, (lo, hi, total) in self.stats.items():
            if lo is not None and hi is not None and total is not None:
                vals = {"minimum": lo, "maximum": hi, "sum": total}
                out[k] = {n: v for n, v in vals.items() if np.isfinite(v)}
        return out
