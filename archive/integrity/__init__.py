"""The integrity layer: fixity, replicas and repair.

What it is: ``verify_archive`` (re-hash every referenced object in every store and the archive tree, with
sampling, ``since``, threads, resumable runs, a fixity event log, orphan and temporary detection, format-level
checksums of Parquet/Zarr/HDF5, record placement and the publication ledger), the ``copies`` policy,
``replicate`` (bring every object up to the policy) and ``repair`` (heal damaged or missing copies and
published records from verified ones; never deletes the last verified copy).

What it is not: writing new objects (``archive.storage``) or records (``archive.catalog``), nor the DataLad
plumbing (``archive.storage._datalad``).
"""

from __future__ import annotations

from archive.integrity._events import FixityEvent, FixityLog, parse_since
from archive.integrity._formats import FormatCheck, check_format, detect_format
from archive.integrity._repair import Action, RepairReport, repair, replicate, snapshot_records
from archive.integrity._verify import (
    ObjectReport,
    VerifyReport,
    fixity_log,
    record_snapshots,
    referenced_objects,
    verify_archive,
)

__all__ = [
    "Action",
    "FixityEvent",
    "FixityLog",
    "FormatCheck",
    "ObjectReport",
    "RepairReport",
    "VerifyReport",
    "check_format",
    "detect_format",
    "fixity_log",
    "parse_since",
    "record_snapshots",
    "referenced_objects",
    "repair",
    "replicate",
    "snapshot_records",
    "verify_archive",
]
