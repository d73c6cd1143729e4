"""The storage layer: content-addressed, immutable objects over fsspec.

What it is: bytes addressed by their sha256 (``sha256:<hex>``), written atomically (temporary name, fsync,
rename; a crash never leaves a partial object visible), hashed while streaming in, read back and re-hashed
after writing, and verified while streaming out. Backends: a local directory (default), fsspec's in-memory
filesystem (tests), S3-compatible servers (through s3fs; credentials from the environment only) and the
annexed ``objects/`` of a DataLad dataset (``datalad:///path``). ``copy_object`` moves one object between
stores, verified on both ends.

What it is not: a catalog (it knows nothing about records, names or versions), a replication policy
(``archive.integrity`` decides how many copies exist and repairs them) nor a file-format layer.
"""

from __future__ import annotations

from archive.storage._base import ObjectInfo, ObjectStatus, ObjectStore, VerifyingReader, copy_object
from archive.storage._fsspec import FsspecStore, LocalStore, open_store, s3_options

__all__ = [
    "FsspecStore",
    "LocalStore",
    "ObjectInfo",
    "ObjectStatus",
    "ObjectStore",
    "VerifyingReader",
    "copy_object",
    "open_store",
    "s3_options",
]
