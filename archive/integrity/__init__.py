"""The integrity layer: fixity checks of every referenced object against its recorded digest.

What it is: ``verify`` (re-hash what the catalog references, in every store, and the tree files records point
to; report missing, corrupt and unreadable copies; check the publication ledger). What it is not: writing
objects (``archive.storage``) or records (``archive.catalog``).
"""

from __future__ import annotations

from archive.integrity._verify import ObjectReport, VerifyReport, referenced_objects, verify_archive

__all__ = ["ObjectReport", "VerifyReport", "referenced_objects", "verify_archive"]
