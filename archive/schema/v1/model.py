"""The ``model`` record (schema v1). An ONNX model with its card and reference vectors."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ModelRecord", "ModelSpec"]


class ModelSpec(StrictModel):
    """Kind-specific section of a model record; filled in by the issue that owns this kind."""


class ModelRecord(KindRecord):
    KIND: ClassVar[str] = "model"
    schema_version: Literal["1.0.0"] = "1.0.0"
    model: ModelSpec = Field(default_factory=ModelSpec)
