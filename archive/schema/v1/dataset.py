"""The ``dataset`` record (schema v1). An unbinned (or dense) dataset: events, weights, arrays."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["DatasetRecord", "DatasetSpec"]


class DatasetSpec(StrictModel):
    """Kind-specific section of a dataset record; filled in by the issue that owns this kind."""


class DatasetRecord(KindRecord):
    KIND: ClassVar[str] = "dataset"
    schema_version: Literal["1.0.0"] = "1.0.0"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
