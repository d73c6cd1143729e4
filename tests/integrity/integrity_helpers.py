"""Helpers shared by the integrity tests (imported by name; the tests folder is on sys.path)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from archive._archive import Archive, init_archive
from archive.schema import RecordBase, parse_record

_TEMPLATE: list[Path] = []


def make_archive(path: Path, stores: Sequence[dict[str, Any]] | None = None, copies: int = 1) -> Archive:
    """A fresh archive root (copied from a template made once: writing the schemas takes a second)."""
    if not _TEMPLATE:
        _TEMPLATE.append(init_archive(Path(tempfile.mkdtemp(prefix="hep-template-")) / "arc").root)
    shutil.copytree(_TEMPLATE[0], path)
    cfg = path / "archive.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["name"] = path.name
    if stores:
        data["stores"] = list(stores)
    data["copies"] = copies
    cfg.write_text(yaml.safe_dump(data))
    return Archive(path)


def publish(archive: Archive, files: Sequence[Path], name: str = "sample", *, version: str = "1.0.0",
            kind: str = "dataset", tree: bool = False) -> RecordBase:
    """Store ``files`` and publish a record referencing them (the ledger gets its digest)."""
    entries = [archive.file_entry(p, name=p.name, tree=tree).model_dump(mode="json", exclude_none=True)
               for p in files]
    record = parse_record({"id": f"{kind}/{name}", "version": version, "title": f"Test record {name}",
                           "license": "CC0-1.0", "files": entries})
    archive.add_record(record)
    with archive.lock():
        return archive.catalog.publish(record.ref)
