"""Exports of a stored dataset: the ATLAS pandas-fixed HDF5 layout, a ROOT TTree, Parquet, CSV.

Each export is written to a temporary file next to ``output`` and renamed into place, so a failed export never
leaves a partial file under the requested name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archive.datasets._dataset import open_dataset
from archive.errors import ValidationError

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["EXPORT_FORMATS", "export_dataset"]

EXPORT_FORMATS = ("atlas-hdf5", "root", "parquet", "csv")


def export_dataset(archive: Archive, ref: str, fmt: str, output: Path, *, columns: Sequence[str] | None = None,
                   progress: Callable[[int], None] | None = None, tree: str = "events") -> Path:
    """Write ``ref`` (``NAME[@VERSION]``) as ``fmt`` to ``output``; values are bit-identical to the stored ones.

    Raises:
        ValidationError: unknown format, or columns the format cannot hold (jagged in CSV/ATLAS, ...).
        NotFoundError: no such dataset, version or column.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})",
                              field="format")
    ds = open_dataset(archive, ref)
    cols = list(columns) if columns else list(ds.columns)
    infos = ds.column_infos(cols)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.part")
    batches = ds.iter_raw(cols)
    try:
        if fmt == "atlas-hdf5":
            from archive.formats.atlas_hdf5 import write_atlas_hdf5

            write_atlas_hdf5(tmp, infos, batches, ds.num_rows, progress=progress)
        elif fmt == "root":
            from archive.formats.root import write_root

            write_root(tmp, infos, batches, tree=tree, progress=progress)
        elif fmt == "parquet":
            from archive.formats.arrow import write_parquet

            write_parquet(tmp, infos, batches, progress=progress)
        else:
            from archive.formats.arrow import write_csv

            write_csv(tmp, infos, batches, progress=progress)
        os.replace(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return output
