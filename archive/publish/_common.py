"""Helpers shared by the release lifecycle, the checks and every exporter."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.digest import digest_json
from archive.errors import ObjectNotFoundError, ValidationError
from archive.schema import FileEntry, RecordBase, record_to_data
from archive.schema.v1._common import spdx_url
from archive.schema.v1.release import ReleaseRecord

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = [
    "ReleaseView",
    "as_json_bytes",
    "dataset_variables",
    "dataset_weight_families",
    "kind_section",
    "load_release",
    "manifest_digest",
    "manifest_rows",
    "member_doi",
    "normalize_ref",
    "release_date",
    "spdx_url",
    "staged_output",
]

KIND_LABELS = {
    "dataset": "Dataset", "model": "Model", "container": "Container image", "recipe": "Workflow recipe",
    "software": "Software", "result": "Result", "run": "Run", "release": "Release",
}


def normalize_ref(ref: str) -> str:
    """Accept ``kind:name@v`` (the issue's spelling) as well as ``kind/name@v``."""
    head, sep, tail = ref.partition("@")
    if "/" not in head and ":" in head:
        head = head.replace(":", "/", 1)
    return head + sep + tail


def release_id(name: str) -> str:
    name = name.removeprefix("release/").removeprefix("release:")
    return f"release/{name}"


def load_release(archive: Archive, ref: str) -> ReleaseRecord:
    """A release by ``NAME``, ``NAME@V`` or ``release/NAME[@V]`` (no version: latest published, else latest)."""
    name, _, version = ref.partition("@")
    record = archive.catalog.get(release_id(name), version or None)
    if not isinstance(record, ReleaseRecord):  # pragma: no cover - the catalog types records by kind
        raise ValidationError(f"{ref} is not a release record")
    return record


def manifest_rows(members: Sequence[RecordBase]) -> list[list[Any]]:
    """``[member ref, file path, sha256, size]`` for every member file, sorted."""
    rows = [[r.ref, f.path, f.sha256, f.size] for r in members for f in r.files]
    return sorted(rows)


def manifest_digest(members: Sequence[RecordBase]) -> str:
    return digest_json(manifest_rows(members))


def release_date(release: ReleaseRecord) -> dt.date:
    """The release's declared date: published, else created, else updated. Never the clock."""
    d = release.dates
    found = d.published or d.created or d.updated
    if found is None:
        raise ValidationError("the release has no date (dates.published or dates.created)",
                              field="dates", file=release.ref)
    return found


def member_doi(release: ReleaseRecord, record: RecordBase) -> str:
    """A member's own DOI, else one derived under the release's prefix (stable across release versions)."""
    if record.identifiers.doi:
        return record.identifiers.doi
    return f"{release.release.doi_prefix}/{release.release.concept_id}.{record.kind}.{record.name}.v{record.version}"


def kind_section(record: RecordBase) -> dict[str, Any]:
    """The kind-specific section (``dataset:``, ``container:``, ...) as plain data (empty when absent)."""
    data = record_to_data(record)
    section = data.get(record.kind)
    return section if isinstance(section, dict) else {}


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if mapping.get(k) not in (None, "", []):
            return mapping[k]
    return None


def dataset_variables(record: RecordBase) -> list[dict[str, str]]:
    """``[{variable, type, unit, description}]`` from a dataset record's column description, whatever its
    exact spelling (``variables``, ``columns``, ``semantics``, ``tables[].columns``)."""
    spec = kind_section(record)
    raw: list[Any] = []
    for key in ("variables", "columns", "semantics", "dataset_semantics"):
        if isinstance(spec.get(key), list):
            raw.extend(spec[key])
    for table in spec.get("tables") or []:
        if isinstance(table, dict):
            for key in ("columns", "variables"):
                if isinstance(table.get(key), list):
                    raw.extend(table[key])
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in raw:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            continue
        name = _first(item, "name", "variable", "column")
        if not name or name in seen:
            continue
        seen.add(str(name))
        out.append({
            "variable": str(name),
            "type": str(_first(item, "dtype", "type") or ""),
            "unit": str(_first(item, "unit", "units") or ""),
            "description": str(_first(item, "description", "doc") or ""),
        })
    return out


def dataset_weight_families(record: RecordBase) -> list[dict[str, Any]]:
    """The weight families of a dataset record as plain data (``dataset.weights``)."""
    spec = kind_section(record)
    fams = spec.get("weights") or spec.get("weight_families") or []
    return [f for f in fams if isinstance(f, dict)]


def family_columns(family: Mapping[str, Any]) -> list[str]:
    """The columns of a weight family (explicit, from a pattern and index range, or from pairs)."""
    cols = [str(c) for c in family.get("columns") or []]
    pattern, rng = family.get("pattern"), family.get("index_range")
    if pattern and rng:
        cols += [str(pattern).format(i=i) for i in range(int(rng[0]), int(rng[1]))]
    for pair in family.get("pairs") or []:
        cols += [str(c) for c in pair]
    return list(dict.fromkeys(cols))


def as_json_bytes(obj: Any) -> bytes:
    """Deterministic, human-readable JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_stages(output: Path) -> None:
    """Remove the hidden stage folders of exports to ``output`` whose process is gone (a killed export)."""
    for p in output.parent.glob(f".{output.name}.*.partial"):
        parts = p.name[len(output.name) + 2:].split(".")
        if len(parts) == 3 and parts[0].isdigit() and not _pid_alive(int(parts[0])):
            shutil.rmtree(p, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk before the export becomes visible."""
    for d, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(d, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """Write an export into a hidden sibling folder and move it to ``output`` only when complete and flushed to
    disk, so a failed export never leaves a partial folder. ``output`` must not exist or be an empty folder.
    A stage left by a killed export (its process is gone) is removed by the next export to the same output."""
    output = Path(output).absolute()
    if output.parent.is_dir():
        _remove_stale_stages(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ValidationError("the output folder exists and is not empty; choose a new folder", file=str(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = output.parent / f".{output.name}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    stage.mkdir()
    try:
        yield stage
        _fsync_tree(stage)
        if output.exists():
            output.rmdir()
        os.replace(stage, output)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


@dataclass
class ReleaseView:
    """A release with its member records loaded, the input every exporter takes."""

    archive: Archive
    release: ReleaseRecord
    members: list[RecordBase] = field(default_factory=list)

    @classmethod
    def load(cls, archive: Archive, ref: str) -> ReleaseView:
        release = load_release(archive, ref)
        members = [archive.catalog.get(m) for m in release.release.members]
        return cls(archive, release, members)

    @property
    def date(self) -> dt.date:
        return release_date(self.release)

    def of_kind(self, kind: str) -> list[RecordBase]:
        return [m for m in self.members if m.kind == kind]

    def local_file(self, entry: FileEntry) -> Path:
        """A readable local path for a member file (object store or archive tree)."""
        try:
            return self.archive.file_path(entry)
        except ObjectNotFoundError:
            raise ObjectNotFoundError(
                f"{entry.path} ({entry.sha256}) is not stored in this archive; run `hep-archive release check`",
                file=entry.path,
            ) from None

    def payload_path(self, record: RecordBase, entry: FileEntry) -> str:
        """Where a member file goes inside an export: ``<kind>/<name>/<version>/<path>``."""
        return f"{record.kind}/{record.name}/{record.version}/{entry.path}"

    def creators(self) -> list[dict[str, Any]]:
        return [c.model_dump(mode="json", exclude_none=True) for c in self.release.creators]
