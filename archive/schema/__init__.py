"""The schema layer: pydantic models (the source of truth), their JSON Schemas and migrations.

What it is: the definition of every catalog record kind, one versioned model each (``v1/``), plus loading a
record from plain data (with migration from older ``schema_version`` values) and generating the JSON Schema
files in ``schemas/``. What it is not: storage of records (``archive.catalog``) or of bytes
(``archive.storage``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from archive.errors import Problem, SchemaVersionError, ValidationError
from archive.schema.v1 import RECORD_TYPES, FileEntry, RecordBase

__all__ = [
    "KINDS",
    "MIGRATIONS",
    "RECORD_TYPES",
    "SCHEMA_BASE",
    "FileEntry",
    "RecordBase",
    "current_version",
    "json_schema",
    "parse_record",
    "problems_from_pydantic",
    "record_to_data",
    "register_migration",
    "write_schemas",
]

SCHEMA_BASE = "https://hep-archive.org/schemas"
KINDS: tuple[str, ...] = tuple(RECORD_TYPES)
R = TypeVar("R", bound=RecordBase)

Migration = Callable[[dict[str, Any]], dict[str, Any]]
#: (kind, from_version) -> function returning the record upgraded to the next schema version.
MIGRATIONS: dict[tuple[str, str], tuple[str, Migration]] = {}


def register_migration(kind: str, from_version: str, to_version: str) -> Callable[[Migration], Migration]:
    def deco(fn: Migration) -> Migration:
        MIGRATIONS[(kind, from_version)] = (to_version, fn)
        return fn

    return deco


def current_version(kind: str) -> str:
    field = RECORD_TYPES[kind].model_fields["schema_version"]
    return str(field.default)


def _migrate_0_9_to_1_0(data: dict[str, Any]) -> dict[str, Any]:
    """0.9.0 (the pre-release draft format) had ``authors: [str]`` and ``files[].checksum``."""
    out = dict(data)
    if "authors" in out:
        out["creators"] = [{"name": a} if isinstance(a, str) else a for a in out.pop("authors") or []]
    files = []
    for f in out.get("files") or []:
        f = dict(f) if isinstance(f, dict) else f
        if isinstance(f, dict) and "checksum" in f and "sha256" not in f:
            f["sha256"] = f.pop("checksum")
        files.append(f)
    if "files" in out:
        out["files"] = files
    out["schema_version"] = "1.0.0"
    return out


for _kind in RECORD_TYPES:
    register_migration(_kind, "0.9.0", "1.0.0")(_migrate_0_9_to_1_0)


def _loc_to_field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def problems_from_pydantic(err: pydantic.ValidationError, file: str | None) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        reason = e["msg"]
        if e["type"] == "extra_forbidden":
            reason = "unknown field (not in the schema)"
        elif e["type"] == "string_pattern_mismatch":
            inp = e.get("input")
            shown = repr(inp) if isinstance(inp, str) and len(inp) < 80 else "value"
            reason = f"{shown} does not match the required pattern {e['ctx']['pattern']}"
        elif reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        problems.append(Problem(file, _loc_to_field(loc) or "(record)", reason))
    return problems


def parse_record(data: Any, *, source: str | None = None, kind: str | None = None) -> RecordBase:
    """Validate plain data (from YAML/JSON) into the right record model, migrating old schema versions.

    Raises:
        ValidationError: with one ``Problem`` per invalid field.
        SchemaVersionError: when the record's ``schema_version`` is unknown for its kind.
    """
    if not isinstance(data, dict):
        raise ValidationError("a record must be a mapping", file=source)
    rid = data.get("id")
    rkind = kind
    if isinstance(rid, str) and "/" in rid:
        rkind = rid.split("/", 1)[0]
    if rkind not in RECORD_TYPES:
        raise ValidationError(
            f"unknown record kind {rkind!r} (expected one of {', '.join(KINDS)})", file=source, field="id"
        )
    sv = data.get("schema_version", current_version(rkind))
    target = current_version(rkind)
    seen = 0
    while sv != target:
        step = MIGRATIONS.get((rkind, str(sv)))
        if step is None or seen > 50:
            raise SchemaVersionError(
                f"unsupported schema_version {sv!r} for kind {rkind!r} (this hep-archive reads up to {target})",
                file=source,
                field="schema_version",
            )
        sv, fn = step
        data = fn(data)
        seen += 1
    try:
        return RECORD_TYPES[rkind].model_validate(data)
    except pydantic.ValidationError as err:
        problems = problems_from_pydantic(err, source)
        raise ValidationError(
            f"{len(problems)} problem(s) in {rkind} record", file=source, problems=problems
        ) from None


def record_to_data(record: RecordBase) -> dict[str, Any]:
    """Plain JSON-compatible data for a record (what is written to YAML), without unset optional noise."""
    return record.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


def json_schema(kind: str) -> dict[str, Any]:
    cls = RECORD_TYPES[kind]
    version = current_version(kind)
    schema = cls.model_json_schema(mode="validation")
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/{kind}/{version}.json",
        "$comment": "generated from archive.schema (pydantic) - do not edit; run `hep-archive schemas --write`",
    }
    out.update(schema)
    return out


def schema_files() -> dict[str, str]:
    """Relative path -> JSON text for every kind's current schema."""
    return {
        f"{kind}/{current_version(kind)}.json": json.dumps(json_schema(kind), indent=2, sort_keys=True) + "\n"
        for kind in KINDS
    }


def stale_schemas(directory: str | Path) -> dict[str, str]:
    """The schema files under ``directory`` that are missing or differ from the models in force:
    ``{relative path: "missing" | "differs"}``."""
    base = Path(directory)
    out: dict[str, str] = {}
    for rel, text in schema_files().items():
        p = base / rel
        if not p.exists():
            out[rel] = "missing"
        elif p.read_text(encoding="utf-8") != text:
            out[rel] = "differs"
    return out


def write_schemas(directory: str | Path) -> list[Path]:
    """Write every schema file under ``directory`` (only the stale ones are rewritten); returns them all."""
    base = Path(directory)
    files = schema_files()
    for rel in stale_schemas(base):
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[rel], encoding="utf-8")
    return [base / rel for rel in files]
