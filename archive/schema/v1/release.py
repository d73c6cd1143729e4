"""The ``release`` record (schema v1). A fixed set of record versions published together.

A release names its members by exact ``kind/name@version`` references, carries a concept identifier shared
by all of its versions and a version identifier of its own (both DOI-ready: the DOI is
``<prefix>/<identifier>``), a manifest digest over every member file, and a changelog. Creators, licence,
description and usage live in the envelope like any other record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from archive.schema.v1._common import Digest, LongText, RecordRef, SemVer, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ChangelogEntry", "ReleaseRecord", "ReleaseSpec"]

#: DOI-suffix-safe token, e.g. ``hep-archive.zjets-legacy`` or ``hep-archive.zjets-legacy.v1.0.0``.
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")]
DoiPrefix = Annotated[str, StringConstraints(pattern=r"^10\.\d{4,9}$")]


class ChangelogEntry(StrictModel):
    """What changed in one release version."""

    version: SemVer
    date: dt.date
    changes: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


class ReleaseSpec(StrictModel):
    """Kind-specific section of a release record."""

    members: list[RecordRef] = Field(
        default_factory=list, max_length=10_000,
        description="exact record versions in the release, kind/name@X.Y.Z, sorted",
    )
    doi_prefix: DoiPrefix = Field(
        default="10.5072", description="DOI prefix the identifiers are minted under (10.5072: DataCite test prefix)"
    )
    concept_id: Token = Field(description="identifier shared by every version of this release (DOI suffix)")
    version_id: Token = Field(description="identifier of this version (DOI suffix)")
    manifest_digest: Digest = Field(
        description="sha256 over the canonical JSON list of [member ref, file path, sha256, size], sorted"
    )
    file_count: int = Field(default=0, ge=0)
    total_size: int = Field(default=0, ge=0, description="bytes over all member files")
    previous_version: SemVer | None = None
    changelog: list[ChangelogEntry] = Field(default_factory=list, max_length=1000)
    publisher: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "hep-archive"
    notes: LongText | None = None

    @field_validator("members")
    @classmethod
    def _exact_versions(cls, value: list[str]) -> list[str]:
        for ref in value:
            if "@" not in ref:
                raise ValueError(f"member {ref!r} must name an exact version (kind/name@X.Y.Z)")
            if ref.startswith("release/"):
                raise ValueError(f"member {ref!r}: a release cannot contain another release")
        if len(value) != len(set(value)):
            raise ValueError("members must be unique")
        ids = [r.split("@", 1)[0] for r in value]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"a release holds one version per record; several versions of {', '.join(dup)}")
        return value

    @property
    def doi(self) -> str:
        return f"{self.doi_prefix}/{self.version_id}"

    @property
    def concept_doi(self) -> str:
        return f"{self.doi_prefix}/{self.concept_id}"


class ReleaseRecord(KindRecord):
    KIND: ClassVar[str] = "release"
    schema_version: Literal["1.0.0"] = "1.0.0"
    release: ReleaseSpec

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        for i, ref in enumerate(self.release.members):
            yield f"release.members[{i}]", ref

    @model_validator(mode="after")
    def _release_rules(self) -> ReleaseRecord:
        if not self.release.version_id.startswith(self.release.concept_id):
            raise ValueError("release.version_id must start with release.concept_id")
        return self
