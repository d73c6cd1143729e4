"""Unbinned datasets: ingest, the self-describing dataset record, versions, reading, diff and exports.

What it is: turning event files (``archive.formats`` importers) into canonical, content-addressed, row-aligned
tables (Parquet events and weights, Zarr v3 dense arrays) described by a ``dataset`` record with variables,
weight families and measurement metadata; reading them back column by column or batch by batch; adding weight
families as new versions that reuse the stored event table; comparing versions; exporting to the field's
formats. What it is not: histogramming or uncertainty combination (``archive.reinterpret``), publication
(``archive.publish``), or the file-format parsers themselves (``archive.formats``).
"""

from __future__ import annotations

from archive.datasets._dataset import Dataset, open_dataset, parse_dataset_ref
from archive.datasets._diff import diff
from archive.datasets._export import EXPORT_FORMATS, export_dataset
from archive.datasets._ingest import add_columns, ingest
from archive.schema.v1.dataset import DatasetRecord, WeightFamily

__all__ = [
    "EXPORT_FORMATS",
    "Dataset",
    "DatasetRecord",
    "WeightFamily",
    "add_columns",
    "diff",
    "export_dataset",
    "ingest",
    "open_dataset",
    "parse_dataset_ref",
]
