"""The ``result`` record (schema v1). A derived result: histogram, table, figure or test verdict."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ResultRecord", "ResultSpec"]


class ResultSpec(StrictModel):
    """Kind-specific section of a result record; filled in by the issue that owns this kind."""


class ResultRecord(KindRecord):
    KIND: ClassVar[str] = "result"
    schema_version: Literal["1.0.0"] = "1.0.0"
    result: ResultSpec = Field(default_factory=ResultSpec)
