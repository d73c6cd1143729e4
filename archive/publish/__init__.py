"""The publishing layer: immutable releases, release checks, and exports in the field's formats.

What it is: the ``release`` record's lifecycle (create a draft of exact record versions, check it, publish it
immutably, start the next version under the same concept identifier, withdraw it to a tombstone) and the
exporters that turn a release into a BagIt bag, an RO-Crate, DataCite 4.5 metadata, a Zenodo deposition,
CERN Open Data portal records, a HEPData submission and a static web site, each deterministic and validated.

What it is not: a client of any portal (nothing is uploaded, no DOI is registered, nothing is downloaded),
storage (``archive.storage``), or the histogramming itself (``archive.reinterpret``).
"""

from __future__ import annotations

from archive.publish._checks import CHECKS, check_release
from archive.publish._common import ReleaseView, load_release, manifest_digest
from archive.publish._export import FORMATS, ExportResult, export_release
from archive.publish._release import create_release, new_version, publish_release, withdraw_release

__all__ = [
    "CHECKS",
    "FORMATS",
    "ExportResult",
    "ReleaseView",
    "check_release",
    "create_release",
    "export_release",
    "load_release",
    "manifest_digest",
    "new_version",
    "publish_release",
    "withdraw_release",
]
