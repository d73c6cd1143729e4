"""The ``result`` record (schema v1): a derived result (histogram, closure test, comparison, figure, table)
with the run or records it was made from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from archive.schema.v1._common import RecordRef, ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ResultRecord", "ResultSpec"]

StatName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]


class ResultSpec(StrictModel):
    """What a result is and where it comes from; its files (plots, JSON, HEPData tables) are in ``files``."""

    type: Literal["histogram", "closure-test", "comparison", "figure", "table", "other"] = "other"
    produced_by: RecordRef | None = Field(default=None, description="the run (or record) that produced it")
    inputs: list[RecordRef] = Field(default_factory=list, max_length=1000, description="records it was made from")
    observable: ShortText | None = Field(default=None, description="observable expression, e.g. tau21 = a / b")
    selection: ShortText | None = Field(default=None, description="selection expression")
    binning: list[float] | None = Field(default=None, max_length=100_000)
    statistics: dict[StatName, float] = Field(default_factory=dict, description="e.g. chi2, ndf, p_value")
    passed: bool | None = Field(default=None, description="verdict of a test (closure, compatibility)")


class ResultRecord(KindRecord):
    KIND: ClassVar[str] = "result"
    schema_version: Literal["1.0.0"] = "1.0.0"
    result: ResultSpec = Field(default_factory=ResultSpec)

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        if self.result.produced_by is not None:
            yield "result.produced_by", self.result.produced_by
        for i, ref in enumerate(self.result.inputs):
            yield f"result.inputs[{i}]", ref
