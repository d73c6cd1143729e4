"""The ``software`` record (schema v1): a piece of software an analysis needs, by version and source."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from archive.schema.v1._common import ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["SoftwareRecord", "SoftwareSpec"]


class SoftwareSpec(StrictModel):
    package: ShortText | None = Field(default=None, description="distribution name, e.g. pythia8mc")
    package_version: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    ecosystem: Literal["pypi", "conda", "debian", "cran", "git", "other"] | None = None
    repository: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2000}$")] | None = None
    commit: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    language: ShortText | None = None


class SoftwareRecord(KindRecord):
    KIND: ClassVar[str] = "software"
    schema_version: Literal["1.0.0"] = "1.0.0"
    software: SoftwareSpec = Field(default_factory=SoftwareSpec)
