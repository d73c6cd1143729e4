"""Catalog schema v1: one pydantic model per record kind, all sharing the envelope in ``_common``."""

from __future__ import annotations

from archive.schema.v1._common import FileEntry, RecordBase
from archive.schema.v1.container import ContainerRecord
from archive.schema.v1.dataset import DatasetRecord
from archive.schema.v1.model import ModelRecord
from archive.schema.v1.recipe import RecipeRecord
from archive.schema.v1.release import ReleaseRecord
from archive.schema.v1.result import ResultRecord
from archive.schema.v1.run import RunRecord
from archive.schema.v1.software import SoftwareRecord

__all__ = [
    "RECORD_TYPES",
    "ContainerRecord",
    "DatasetRecord",
    "FileEntry",
    "ModelRecord",
    "RecipeRecord",
    "RecordBase",
    "ReleaseRecord",
    "ResultRecord",
    "RunRecord",
    "SoftwareRecord",
]

RECORD_TYPES: dict[str, type[RecordBase]] = {
    "dataset": DatasetRecord,
    "model": ModelRecord,
    "container": ContainerRecord,
    "recipe": RecipeRecord,
    "software": SoftwareRecord,
    "result": ResultRecord,
    "release": ReleaseRecord,
    "run": RunRecord,
}
