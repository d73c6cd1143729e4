"""The ``run`` record (schema v1). The provenance of one execution of a recipe."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["RunRecord", "RunSpec"]


class RunSpec(StrictModel):
    """Kind-specific section of a run record; filled in by the issue that owns this kind."""


class RunRecord(KindRecord):
    KIND: ClassVar[str] = "run"
    schema_version: Literal["1.0.0"] = "1.0.0"
    run: RunSpec = Field(default_factory=RunSpec)
