"""Plain HDF5 files: every numeric dataset whose first dimension is the event count becomes a column.

1-D datasets are flat columns, compound 1-D datasets give one column per field, and N-D datasets (calorimeter
images ``[N, layers, voxels]``, padded point clouds ``[N, P, F]``) are dense columns stored as Zarr arrays.
Scalars (0-D datasets) are skipped. Columns are named by their path inside the file (``group/name``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.formats._base import Batch, ColumnInfo, Source

__all__ = ["HDF5Source"]


@dataclass
class HDF5Source(Source):
    _file: Any = None
    #: column name -> (dataset, compound field or None)
    _where: dict[str, tuple[Any, str | None]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, *, columns: Sequence[str] | None = None, **_: Any) -> HDF5Source:
        import h5py

        f = h5py.File(path, "r")
        try:
            found: list[tuple[str, Any]] = []

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset) and obj.ndim > 0:
                    found.append((name, obj))

            f.visititems(visit)
            where: dict[str, tuple[Any, str | None]] = {}
            cols: list[ColumnInfo] = []
            rows: dict[str, int] = {}
            for name, ds in found:
                if ds.dtype.names:
                    for fld in ds.dtype.names:
                        sub = ds.dtype[fld]
                        if sub.kind not in "biuf":
                            continue
                        cname = f"{name}.{fld}"
                        if columns is not None and cname not in columns:
                            continue
                        where[cname] = (ds, fld)
                        cols.append(ColumnInfo(cname, sub.base.name, tuple(sub.shape)))
                        rows[cname] = ds.shape[0]
                    continue
                if columns is not None and name not in columns:
                    continue
                if ds.dtype.kind not in "biuf":
                    raise ValidationError(f"dataset has non-numeric dtype {ds.dtype}; choose columns=",
                                          file=str(path), field=name)
                where[name] = (ds, None)
                cols.append(ColumnInfo(name, ds.dtype.name, tuple(int(x) for x in ds.shape[1:])))
                rows[name] = int(ds.shape[0])
            if not cols:
                raise ValidationError("no numeric datasets in the file", file=str(path))
            counts = sorted(set(rows.values()))
            if len(counts) > 1:
                detail = ", ".join(f"{k}: {v}" for k, v in list(rows.items())[:6])
                raise ValidationError(f"row-count mismatch between datasets ({detail}); every dataset must have "
                                      "the event count as its first dimension (choose columns=)", file=str(path))
        except BaseException:
            f.close()
            raise
        return cls(path=path, format="hdf5", num_rows=counts[0], columns=cols, _file=f, _where=where)

    def iter_batches(self, batch_rows: int) -> Iterator[Batch]:
        for start in range(0, self.num_rows, batch_rows):
            stop = min(start + batch_rows, self.num_rows)
            out: Batch = {}
            for c in self.columns:
                ds, fld = self._where[c.name]
                vals = ds[start:stop] if fld is None else ds.fields(fld)[start:stop]
                out[c.name] = np.ascontiguousarray(vals)
            yield out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
