"""The common envelope shared by every catalog record kind (schema v1)."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "DIGEST_PATTERN",
    "SEMVER_PATTERN",
    "Affiliation",
    "Collision",
    "Creator",
    "Dates",
    "Digest",
    "FileEntry",
    "Identifiers",
    "LongText",
    "Name",
    "RecordBase",
    "RecordId",
    "RecordRef",
    "RelPath",
    "Relation",
    "SemVer",
    "ShortText",
    "StrictModel",
    "Tombstone",
]

SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$"
KINDS = ("dataset", "model", "container", "recipe", "software", "result", "release", "run")
KIND_PATTERN = "(?:" + "|".join(KINDS) + ")"
ID_PATTERN = rf"^{KIND_PATTERN}/[a-z0-9](?:[a-z0-9._-]{{0,98}}[a-z0-9])?$"
REF_PATTERN = ID_PATTERN[:-1] + r"(?:@" + SEMVER_PATTERN[1:-1] + r")?$"

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
SemVer = Annotated[str, StringConstraints(pattern=SEMVER_PATTERN, max_length=100)]
Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
RecordId = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=120)]
SpdxExpression = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9.+-]{1,64}( (AND|OR|WITH) [A-Za-z0-9.+-]{1,64})*$", max_length=300)
]
RecordRef = Annotated[str, StringConstraints(pattern=REF_PATTERN, max_length=220)]


def spdx_url(license_id: str | None) -> str | None:
    """The SPDX licence-list page of a licence expression's first identifier (None without a licence)."""
    if not license_id:
        return None
    return f"https://spdx.org/licenses/{license_id.split(' ')[0]}"


def _check_relpath(value: str) -> str:
    if "\\" in value or "\x00" in value:
        raise ValueError("path must use '/' separators and contain no NUL or backslash")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise ValueError("path must be relative, not absolute")
    parts = value.split("/")
    if any(p in ("..",) for p in parts):
        raise ValueError("path must not contain '..'")
    if any(p in ("", ".") for p in parts):
        raise ValueError("path must be normalised (no empty or '.' components)")
    if posixpath.normpath(value) != value:
        raise ValueError("path must be normalised")
    return value


RelPath = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_check_relpath)]


class StrictModel(BaseModel):
    """Base for every persisted model: unknown fields are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, validate_default=True)


class Affiliation(StrictModel):
    name: ShortText
    ror: Annotated[str, StringConstraints(pattern=r"^https://ror\.org/0[a-hj-km-np-tv-z0-9]{6}[0-9]{2}$")] | None = (
        None
    )


class Creator(StrictModel):
    name: ShortText = Field(description="Family, Given (or a collaboration name)")
    orcid: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")] | None = None
    affiliation: list[Affiliation] = Field(default_factory=list, max_length=20)
    role: ShortText | None = None


class Collision(StrictModel):
    energy_gev: float = Field(gt=0, le=1e9, description="centre-of-mass energy sqrt(s) in GeV")
    beams: list[Annotated[str, StringConstraints(min_length=1, max_length=20)]] = Field(
        min_length=1, max_length=2, description="e.g. ['p', 'p'] or ['Pb', 'Pb']"
    )
    type: ShortText | None = Field(default=None, description="e.g. pp, PbPb, e+e-")


class Identifiers(StrictModel):
    doi: Annotated[str, StringConstraints(pattern=r"^10\.\d{4,9}/[^\s]{1,200}$")] | None = None
    concept_doi: Annotated[str, StringConstraints(pattern=r"^10\.\d{4,9}/[^\s]{1,200}$")] | None = None
    arxiv: (
        Annotated[str, StringConstraints(pattern=r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")] | None
    ) = None
    inspire: Annotated[str, StringConstraints(pattern=r"^\d{1,10}$")] | None = None
    hepdata: Annotated[str, StringConstraints(pattern=r"^ins\d{1,10}(\.v\d+)?$")] | None = None
    swhid: Annotated[str, StringConstraints(pattern=r"^swh:1:(cnt|dir|rev|rel|snp):[0-9a-f]{40}(;.*)?$")] | None = (
        None
    )
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2000}$")] | None = None


RelationType = Literal[
    "IsCitedBy", "Cites", "IsSupplementTo", "IsSupplementedBy", "IsContinuedBy", "Continues", "IsDescribedBy",
    "Describes", "HasMetadata", "IsMetadataFor", "HasVersion", "IsVersionOf", "IsNewVersionOf",
    "IsPreviousVersionOf", "IsPartOf", "HasPart", "IsPublishedIn", "IsReferencedBy", "References",
    "IsDocumentedBy", "Documents", "IsCompiledBy", "Compiles", "IsVariantFormOf", "IsOriginalFormOf",
    "IsIdenticalTo", "IsReviewedBy", "Reviews", "IsDerivedFrom", "IsSourceOf", "IsRequiredBy", "Requires",
    "IsObsoletedBy", "Obsoletes", "IsCollectedBy", "Collects", "IsTranslationOf", "HasTranslation",
]


class Relation(StrictModel):
    """A DataCite relation to another record (``target``: ``kind/name[@version]``) or an external identifier."""

    type: RelationType
    target: RecordRef | None = None
    identifier: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    identifier_type: Literal["DOI", "URL", "arXiv", "INSPIRE", "HEPData", "SWHID", "Handle"] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Relation:
        if (self.target is None) == (self.identifier is None):
            raise ValueError("give exactly one of 'target' (a catalog record) or 'identifier' (external)")
        if self.identifier is not None and self.identifier_type is None:
            raise ValueError("'identifier_type' is required with 'identifier'")
        return self


class Dates(StrictModel):
    created: dt.date | None = None
    published: dt.date | None = None
    updated: dt.date | None = None
    collected: ShortText | None = Field(default=None, description="data-taking period, e.g. 2015-2018")


class Tombstone(StrictModel):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    date: dt.date
    replaced_by: RecordRef | None = None


FileRole = Literal[
    "events", "weights", "array", "model", "model-external-data", "image-manifest", "image-config", "image-layer",
    "image-index", "recipe", "workflow", "definition", "card", "log", "output", "plot", "table", "documentation",
    "reference", "other",
]


class FileEntry(StrictModel):
    """One file of a record. Its bytes live in the object store under ``sha256``; files that live in the
    archive tree itself (recipes, container definitions) name it in ``locations`` as ``tree:<path>``."""

    path: RelPath
    size: int = Field(ge=0, le=2**53)
    sha256: Digest
    adler32: Annotated[str, StringConstraints(pattern=r"^adler32:[0-9a-f]{8}$")] | None = None
    md5: Annotated[str, StringConstraints(pattern=r"^md5:[0-9a-f]{32}$")] | None = None
    media_type: Annotated[str, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=200)] | None = None
    role: FileRole = "other"
    locations: list[Annotated[str, StringConstraints(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=20
    )
    description: ShortText | None = None

    @model_validator(mode="after")
    def _tree_locations_relative(self) -> FileEntry:
        for loc in self.locations:
            if loc.startswith("tree:"):
                _check_relpath(loc[5:])
        return self


Status = Literal["draft", "published", "deprecated", "withdrawn"]


class RecordBase(StrictModel):
    """The envelope every record carries. Kind-specific models add their own section."""

    id: RecordId
    version: SemVer
    schema_version: SemVer
    status: Status = "draft"
    tombstone: Tombstone | None = None
    title: ShortText
    description: LongText = ""
    creators: list[Creator] = Field(default_factory=list, max_length=5000)
    collaboration: ShortText | None = None
    experiment: ShortText | None = None
    collision: Collision | None = None
    keywords: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=100
    )
    license: SpdxExpression | None = Field(default=None, description="SPDX licence identifier or expression")
    identifiers: Identifiers = Field(default_factory=Identifiers)
    relations: list[Relation] = Field(default_factory=list, max_length=1000)
    usage: LongText | None = None
    methodology: LongText | None = None
    validation: LongText | None = None
    preservation_level: Literal[1, 2, 3, 4] | None = Field(default=None, description="DPHEP level 1-4")
    dates: Dates = Field(default_factory=Dates)
    files: list[FileEntry] = Field(default_factory=list, max_length=100_000)

    @property
    def kind(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def references(self) -> Iterator[tuple[str, str]]:
        """``(field, "kind/name[@version]")`` for every catalog record this one refers to.

        Kinds with their own references (a release's members, a run's recipe) extend this; ``validate``
        checks that every reference resolves."""
        for i, rel in enumerate(self.relations):
            if rel.target is not None:
                yield f"relations[{i}].target", rel.target

    @model_validator(mode="after")
    def _envelope_rules(self) -> RecordBase:
        paths = [f.path for f in self.files]
        if len(paths) != len(set(paths)):
            dup = sorted({p for p in paths if paths.count(p) > 1})
            raise ValueError(f"duplicate file paths: {', '.join(dup[:5])}")
        if self.status == "withdrawn" and self.tombstone is None:
            raise ValueError("a withdrawn record needs a 'tombstone' with the reason")
        if self.tombstone is not None and self.status != "withdrawn":
            raise ValueError("'tombstone' is only allowed on a withdrawn record")
        return self
