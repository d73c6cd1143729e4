"""numpy ``.npy`` / ``.npz`` files, loaded with ``allow_pickle=False`` (object arrays are refused).

A 1-D array is a flat column, an N-D array a dense column ``[N, ...]`` (stored as Zarr). ``.npy`` is memory-
mapped so batches are read lazily; ``.npz`` members are read one batch slice at a time from the loaded member.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import UnsafeInputError, ValidationError
from archive.formats._base import Batch, ColumnInfo, Source

__all__ = ["NumpySource"]


@dataclass
class NumpySource(Source):
    _arrays: dict[str, Any] = field(default_factory=dict)
    _npz: Any = None

    @classmethod
    def open(cls, path: Path, fmt: str = "npy", *, name: str | None = None, **_: Any) -> NumpySource:
        arrays: dict[str, Any] = {}
        npz = None
        try:
            if fmt == "npy":
                arrays[name or path.name.split(".")[0]] = np.load(path, mmap_mode="r", allow_pickle=False)
            else:
                npz = np.load(path, allow_pickle=False)
                for k in npz.files:
                    arrays[k] = npz[k]
        except ValueError as exc:
            if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                raise UnsafeInputError("the array holds Python objects (pickles are never loaded)",
                                       file=str(path)) from None
            raise ValidationError(f"not a readable {fmt} file: {exc}", file=str(path)) from None
        cols = []
        rows = {}
        for k, a in arrays.items():
            if a.ndim == 0 or a.dtype.kind not in "biuf":
                raise ValidationError(f"array {k!r} has dtype {a.dtype}, shape {a.shape}: numeric arrays with an "
                                      "event dimension only", file=str(path), field=k)
            cols.append(ColumnInfo(k, a.dtype.name, tuple(int(x) for x in a.shape[1:])))
            rows[k] = int(a.shape[0])
        if len(set(rows.values())) > 1:
            raise ValidationError(f"row-count mismatch between arrays: {rows}", file=str(path))
        return cls(path=path, format=fmt, num_rows=next(iter(rows.values()), 0), columns=cols, _arrays=arrays,
                   _npz=npz)

    def iter_batches(self, batch_rows: int) -> Iterator[Batch]:
        for start in range(0, self.num_rows, batch_rows):
            yield {k: np.ascontiguousarray(a[start:start + batch_rows]) for k, a in self._arrays.items()}

    def close(self) -> None:
        if self._npz is not None:
            self._npz.close()
            self._npz = None
        self._arrays = {}
