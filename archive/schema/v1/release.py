"""The ``release`` record (schema v1). A fixed set of record versions published together."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ReleaseRecord", "ReleaseSpec"]


class ReleaseSpec(StrictModel):
    """Kind-specific section of a release record; filled in by the issue that owns this kind."""


class ReleaseRecord(KindRecord):
    KIND: ClassVar[str] = "release"
    schema_version: Literal["1.0.0"] = "1.0.0"
    release: ReleaseSpec = Field(default_factory=ReleaseSpec)
