"""The ``recipe`` record (schema v1). A REANA workflow recipe (reana.yaml and its files)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archive.schema.v1._common import StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["RecipeRecord", "RecipeSpec"]


class RecipeSpec(StrictModel):
    """Kind-specific section of a recipe record; filled in by the issue that owns this kind."""


class RecipeRecord(KindRecord):
    KIND: ClassVar[str] = "recipe"
    schema_version: Literal["1.0.0"] = "1.0.0"
    recipe: RecipeSpec = Field(default_factory=RecipeSpec)
