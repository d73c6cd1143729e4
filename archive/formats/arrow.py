"""Parquet and Arrow IPC: a streaming reader, and Parquet / CSV writers for exports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.formats._base import Batch, ColumnInfo, Source

__all__ = ["ArrowSource", "arrow_schema", "arrow_to_value", "column_info", "parquet_options", "to_record_batch",
           "value_to_arrow", "write_csv", "write_parquet"]


def column_info(name: str, t: Any) -> ColumnInfo | None:
    """A ColumnInfo for an arrow type: numbers, lists of numbers (jagged), strings, fixed-size lists (dense)."""
    import pyarrow as pa

    def prim(x: Any) -> str | None:
        if pa.types.is_integer(x) or pa.types.is_floating(x) or pa.types.is_boolean(x):
            return str(np.dtype(x.to_pandas_dtype()).name)
        return None

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return ColumnInfo(name, "string")
    if pa.types.is_fixed_size_list(t):
        shape: list[int] = []
        while pa.types.is_fixed_size_list(t):
            shape.append(t.list_size)
            t = t.value_type
        p = prim(t)
        return ColumnInfo(name, p, tuple(shape)) if p else None
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        p = prim(t.value_type)
        return ColumnInfo(name, f"var * {p}") if p else None
    p = prim(t)
    return ColumnInfo(name, p) if p else None


def arrow_to_value(arr: Any, info: ColumnInfo) -> Any:
    """Batch value of an arrow column: numpy for flat/dense numbers, arrow otherwise."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if info.dense:
        flat = arr
        while pa.types.is_fixed_size_list(flat.type):
            flat = flat.flatten()
        return np.asarray(flat.to_numpy(zero_copy_only=False)).reshape((len(arr), *info.shape))
    if info.jagged or info.dtype in ("string", "bytes"):
        return arr
    if arr.null_count:
        raise ValidationError(f"column {info.name!r} has {arr.null_count} missing values (nulls)", field=info.name)
    return np.asarray(arr.to_numpy(zero_copy_only=False)).astype(info.dtype, copy=False)


def value_to_arrow(value: Any, info: ColumnInfo) -> Any:
    """The inverse of arrow_to_value: an arrow array for a batch value."""
    import pyarrow as pa

    if isinstance(value, pa.Array | pa.ChunkedArray):
        return value
    v = np.ascontiguousarray(value)
    if info.dense:
        arr: Any = pa.array(v.reshape(-1))
        for size in reversed(info.shape):
            arr = pa.FixedSizeListArray.from_arrays(arr, size)
        return arr
    return pa.array(v)


@dataclass
class ArrowSource(Source):
    """Parquet (row groups streamed with ``iter_batches``) or Arrow IPC file/stream (record batches)."""

    _reader: Any = None

    @classmethod
    def open(cls, path: Path, fmt: str = "parquet", *, columns: Sequence[str] | None = None,
             **_: Any) -> ArrowSource:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if fmt == "parquet":
                reader: Any = pq.ParquetFile(path, page_checksum_verification=True)
                schema = reader.schema_arrow
                n = reader.metadata.num_rows
            else:
                try:
                    reader = pa.ipc.open_file(path)
                    n = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
                except pa.ArrowInvalid:
                    with pa.ipc.open_stream(path) as s:
                        n = sum(b.num_rows for b in s)
                    reader = None
                    schema = pa.ipc.open_stream(path).schema
                else:
                    schema = reader.schema
        except (OSError, pa.ArrowException) as exc:
            raise ValidationError(f"not a readable {fmt} file: {exc}", file=str(path)) from None
        names = list(schema.names)
        dups = sorted({c for c in names if names.count(c) > 1})
        if dups:
            raise ValidationError(f"duplicate column names: {', '.join(dups[:5])}", file=str(path))
        cols: list[ColumnInfo] = []
        bad = []
        for fld in schema:
            if columns is not None and fld.name not in columns:
                continue
            info = column_info(fld.name, fld.type)
            if info is None:
                bad.append(f"{fld.name} ({fld.type})")
            else:
                cols.append(info)
        if bad:
            raise ValidationError(f"unsupported column types: {', '.join(bad[:5])}", file=str(path))
        return cls(path=path, format=fmt, num_rows=int(n), columns=cols, _reader=reader)

    def _raw_batches(self, batch_rows: int) -> Iterator[Any]:
        import pyarrow as pa

        names = [c.name for c in self.columns]
        if self.format == "parquet":
            yield from self._reader.iter_batches(batch_size=batch_rows, columns=names)
        elif self._reader is not None:
            for i in range(self._reader.num_record_batches):
                yield self._reader.get_batch(i).select(names)
        else:
            with pa.ipc.open_stream(self.path) as s:
                for b in s:
                    yield b.select(names)

    def iter_batches(self, batch_rows: int) -> Iterator[Batch]:
        for rb in self._raw_batches(batch_rows):
            for start in range(0, rb.num_rows, batch_rows):
                part = rb.slice(start, batch_rows)
                yield {c.name: arrow_to_value(part.column(c.name), c) for c in self.columns}


def arrow_schema(columns: Sequence[ColumnInfo]) -> Any:
    import pyarrow as pa

    fields = []
    for c in columns:
        if c.dtype in ("string",):
            t: Any = pa.large_string()
        elif c.jagged:
            t = pa.large_list(pa.field("item", pa.from_numpy_dtype(np.dtype(c.dtype[6:])), nullable=False))
        else:
            t = pa.from_numpy_dtype(np.dtype(c.dtype))
            for size in reversed(c.shape):
                t = pa.list_(t, size)
        fields.append(pa.field(c.name, t, nullable=False))
    return pa.schema(fields)


def to_record_batch(columns: Sequence[ColumnInfo], batch: Batch, schema: Any = None) -> Any:
    import pyarrow as pa

    schema = schema if schema is not None else arrow_schema(columns)
    arrays = []
    for c, f in zip(columns, schema, strict=True):
        a = value_to_arrow(batch[c.name], c)
        if a.type != f.type:
            a = a.cast(f.type)
        arrays.append(a)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_parquet(path: Path, columns: Sequence[ColumnInfo], batches: Iterator[Batch], *,
                  row_group_rows: int = 131072, progress: Any = None, **options: Any) -> Path:
    """Write a Parquet file (zstd-1, BYTE_STREAM_SPLIT floats, no dictionary, page checksums)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns)
    opts = parquet_options(columns)
    opts.update(options)
    with pq.ParquetWriter(path, schema, **opts) as w:
        for batch in batches:
            rb = to_record_batch(columns, batch, schema)
            w.write_table(pa.Table.from_batches([rb], schema=schema), row_group_size=row_group_rows)
            if progress is not None:
                progress(rb.num_rows)
    return path


def parquet_options(columns: Sequence[ColumnInfo]) -> dict[str, Any]:
    """The canonical Parquet writer options (chosen by ``benchmarks/bench_formats.py``)."""
    bss = {c.name: "BYTE_STREAM_SPLIT" for c in columns
           if not c.jagged and not c.dense and c.dtype in ("float32", "float64")}
    return {"compression": "zstd", "compression_level": 1, "use_dictionary": False, "column_encoding": bss or None,
            "write_page_checksum": True, "write_statistics": False, "store_schema": True}


def write_csv(path: Path, columns: Sequence[ColumnInfo], batches: Iterator[Batch], *, progress: Any = None) -> Path:
    """Write CSV with a header row; floats keep every digit (shortest round-trip repr)."""
    import pyarrow.csv as pcsv

    for c in columns:
        if c.jagged or c.dense:
            raise ValidationError(f"column {c.name!r} ({c.dtype}) is not flat; CSV holds flat columns only "
                                  "(use --columns, or export parquet/root)", field=c.name)
    schema = arrow_schema(columns)
    with pcsv.CSVWriter(str(path), schema) as w:
        for batch in batches:
            rb = to_record_batch(columns, batch, schema)
            w.write_batch(rb)
            if progress is not None:
                progress(rb.num_rows)
    return path
