"""The source interface every importer implements, format detection and re-batching."""

from __future__ import annotations

import abc
import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError

__all__ = ["Batch", "ColumnInfo", "Source", "batch_rows_of", "detect_format", "open_source", "rebatch"]

#: one batch of rows: column name -> numpy array (flat ``[n]`` or dense ``[n, ...]``) or pyarrow array
#: (jagged lists, strings)
Batch = dict[str, Any]


@dataclass(frozen=True)
class ColumnInfo:
    """A column of a source: ``dtype`` is numpy-style (``float32``), ``var * float32`` for jagged lists,
    ``string`` for text; ``shape`` is the per-event shape of a dense array (``()`` for scalars)."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    unit: str | None = None
    description: str | None = None

    @property
    def jagged(self) -> bool:
        return self.dtype.startswith("var * ")

    @property
    def dense(self) -> bool:
        return bool(self.shape)


@dataclass
class Source(abc.ABC):
    """A readable input file: its row count, columns and inferred metadata, read in row batches."""

    path: Path
    format: str = ""
    num_rows: int = 0
    columns: list[ColumnInfo] = field(default_factory=list)
    #: record fields the importer could infer (merged under the user's metadata), e.g. generators
    metadata: dict[str, Any] = field(default_factory=dict)

    @abc.abstractmethod
    def iter_batches(self, batch_rows: int) -> Iterator[Batch]:
        """Yield consecutive row batches of at most ``batch_rows`` rows (bounded memory)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release file handles."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_rows_of(batch: Mapping[str, Any]) -> int:
    for v in batch.values():
        return len(v)
    return 0


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import pyarrow as pa

    return pa.concat_arrays(parts)


def rebatch(batches: Iterator[Batch], rows: int) -> Iterator[Batch]:
    """Re-cut a stream of batches into batches of exactly ``rows`` rows (the last one may be shorter)."""
    pending: list[Batch] = []
    have = 0
    for b in batches:
        n = batch_rows_of(b)
        if n == 0:
            continue
        pending.append(b)
        have += n
        while have >= rows:
            merged = pending[0] if len(pending) == 1 else {k: _concat([p[k] for p in pending]) for k in pending[0]}
            yield {k: v[:rows] for k, v in merged.items()}
            rest = {k: v[rows:] for k, v in merged.items()}
            have -= rows
            pending = [rest] if have else []
    if have:
        yield pending[0] if len(pending) == 1 else {k: _concat([p[k] for p in pending]) for k in pending[0]}


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def detect_format(path: Path) -> str:
    """Guess an importer from the file's first bytes and name (``atlas-hdf5`` vs ``hdf5`` by the layout)."""
    if not path.exists():
        raise ValidationError("file does not exist", file=str(path))
    if path.is_dir():
        raise ValidationError("is a directory; give the data files themselves", file=str(path))
    head = _magic(path)
    name = path.name.lower()
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        import h5py

        with h5py.File(path, "r") as f:
            for key in f:
                if isinstance(f[key], h5py.Group) and "pandas_type" in f[key].attrs:
                    return "atlas-hdf5"
        return "hdf5"
    if head.startswith(b"root"):
        return "root"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or name.endswith((".arrow", ".feather", ".ipc", ".arrows")):
        return "arrow"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04") and name.endswith(".npz"):
        return "npz"
    if name.endswith((".lhe", ".lhe.gz")):
        return "lhe"
    if head.startswith(b"\x1f\x8b"):
        with gzip.open(path, "rb") as g:
            if b"<LesHouchesEvents" in g.read(4096):
                return "lhe"
    elif b"<LesHouch" in head or head.startswith(b"<?xml"):
        return "lhe"
    raise ValidationError(
        "cannot tell the file format; pass --format (atlas-hdf5, hdf5, root, parquet, arrow, lhe, npy, npz)",
        file=str(path),
    )


def open_source(path: Path, fmt: str | None = None, **options: Any) -> Source:
    """Open ``path`` with the importer for ``fmt`` (detected when ``None``)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if not path.is_file():
        raise ValidationError("file does not exist", file=str(path))
    if fmt == "atlas-hdf5":
        from archive.formats.atlas_hdf5 import AtlasHDF5Source

        return AtlasHDF5Source.open(path, **options)
    if fmt == "hdf5":
        from archive.formats.hdf5 import HDF5Source

        return HDF5Source.open(path, **options)
    if fmt == "root":
        from archive.formats.root import RootSource

        return RootSource.open(path, **options)
    if fmt in ("parquet", "arrow"):
        from archive.formats.arrow import ArrowSource

        return ArrowSource.open(path, fmt, **options)
    if fmt == "lhe":
        from archive.formats.lhe import LHESource

        return LHESource.open(path, **options)
    if fmt in ("npy", "npz"):
        from archive.formats.numpy_files import NumpySource

        return NumpySource.open(path, fmt, **options)
    raise ValidationError(
        f"unknown format {fmt!r} (expected one of atlas-hdf5, hdf5, root, parquet, arrow, lhe, npy, npz)",
        file=str(path), field="format",
    )
