"""File formats: streaming importers (sources) and exporters for event tables and dense arrays.

What it is: readers that turn a file in one of the field's formats (ATLAS pandas-fixed HDF5 read with h5py,
plain HDF5 datasets, ROOT TTree and RNTuple through uproot, Parquet, Arrow IPC, LHE, numpy) into a stream of
row batches with a column schema, and writers for the export formats (ATLAS HDF5 without pandas, ROOT TTree,
Parquet, CSV). What it is not: the archive's canonical storage, records or versions (``archive.datasets``).
Heavy libraries (uproot, awkward) are imported inside functions only.
"""

from __future__ import annotations

from archive.formats._base import Batch, ColumnInfo, Source, detect_format, open_source, rebatch

__all__ = ["FORMATS", "Batch", "ColumnInfo", "Source", "detect_format", "open_source", "rebatch"]

#: importer names accepted by ``open_source(..., fmt=)`` and ``hep-archive ingest --format``
FORMATS = ("atlas-hdf5", "hdf5", "root", "parquet", "arrow", "lhe", "npy", "npz")
