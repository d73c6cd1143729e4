"""The archive root's configuration file, ``archive.yaml``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from archive.schema.v1._common import StrictModel

__all__ = ["CONFIG_NAME", "ArchiveConfig", "StoreConfig"]

CONFIG_NAME = "archive.yaml"


class StoreConfig(StrictModel):
    """One object store. ``url``: a path relative to the archive root, an absolute path, or an fsspec URL
    (``s3://bucket/prefix``, ``memory://name``). ``options`` are passed to fsspec (e.g.
    ``{"endpoint_url": "http://127.0.0.1:9000"}`` for an S3-compatible server); credentials come from the
    environment, never from this file."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    options: dict[str, Any] = Field(default_factory=dict)
    kind: Literal["objects", "datalad"] = "objects"


class ArchiveConfig(StrictModel):
    format: Literal["hep-archive/1"] = "hep-archive/1"
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "archive"
    stores: list[StoreConfig] = Field(
        default_factory=lambda: [StoreConfig(name="local", url="objects")], min_length=1, max_length=20
    )
    copies: int = Field(default=1, ge=1, le=20, description="verified copies each object needs (numcopies)")

    @model_validator(mode="after")
    def _unique_names(self) -> ArchiveConfig:
        names = [s.name for s in self.stores]
        if len(names) != len(set(names)):
            raise ValueError("store names must be unique")
        return self
