"""The ``container`` record (schema v1). An OCI image pinned by manifest digest."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ContainerRecord", "ContainerSpec"]


class ContainerSpec(StrictModel):
    """Kind-specific section of a container record; filled in by the issue that owns this kind."""


class ContainerRecord(KindRecord):
    KIND: ClassVar[str] = "container"
    schema_version: Literal["1.0.0"] = "1.0.0"
    container: ContainerSpec = Field(default_factory=ContainerSpec)
