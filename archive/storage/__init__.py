"""The storage layer: content-addressed, immutable objects over fsspec.

What it is: bytes addressed by their sha256 (``sha256:<hex>``), written atomically (temporary name, fsync,
rename; a crash never leaves a partial object visible), hashed while streaming in, read back and re-hashed
after writing, and verified while streaming out. Backends: a local directory (default), fsspec's in-memory
filesystem (tests) and S3-compatible servers (through s3fs).

What it is not: a catalog (it knows nothing about records, names or versions) nor a file-format layer.
"""

from __future__ import annotations

from archive.storage._base import ObjectInfo, ObjectStatus, ObjectStore, VerifyingReader
from archive.storage._fsspec import FsspecStore, open_store

__all__ = ["FsspecStore", "ObjectInfo", "ObjectStatus", "ObjectStore", "VerifyingReader", "open_store"]
