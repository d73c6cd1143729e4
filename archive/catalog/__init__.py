"""The catalog layer: records on disk, their search index, and their validation.

What it is: one YAML file per record version under ``catalog/<kind>/<name>/<version>.yaml``, an append-only
ledger that makes published versions immutable and their edits detectable, a derived SQLite FTS5 index for
ranked search and exact look-ups (id, DOI, digest), and ``validate``. What it is not: the record models
(``archive.schema``) or the bytes of files (``archive.storage``).
"""

from __future__ import annotations

from archive.catalog._index import Index, SearchHit
from archive.catalog._ledger import Ledger
from archive.catalog._store import Catalog, RecordFile, parse_ref, record_digest
from archive.catalog._validate import validate_archive

__all__ = ["Catalog", "Index", "Ledger", "RecordFile", "SearchHit", "parse_ref", "record_digest", "validate_archive"]
