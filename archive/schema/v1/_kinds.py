"""Helper used by every kind module: the ``id`` must start with the record's kind."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from archive.schema.v1._common import RecordBase

__all__ = ["KindRecord"]


class KindRecord(RecordBase):
    KIND: ClassVar[str] = ""

    @model_validator(mode="after")
    def _kind_matches_id(self) -> KindRecord:
        if self.id.split("/", 1)[0] != self.KIND:
            raise ValueError(f"id {self.id!r} must start with '{self.KIND}/' for a {self.KIND} record")
        return self
