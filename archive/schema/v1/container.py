"""The ``container`` record (schema v1). An OCI image pinned by manifest digest.

The image's blobs (manifest, config, layers) are kept byte for byte in the object store and listed in the
record's ``files`` as ``blobs/sha256/<hex>`` (roles ``image-manifest``, ``image-config``, ``image-layer``), so
``verify`` re-hashes them like any other file. The ``container`` section says what the image is.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from archive.schema.v1._common import Digest, RelPath, ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["ContainerRecord", "ContainerSpec", "ImageLayer", "Platform"]

MediaType = Annotated[str, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=200)]
EnvVar = Annotated[str, StringConstraints(min_length=1, max_length=32_768)]
Arg = Annotated[str, StringConstraints(max_length=32_768)]


class Platform(StrictModel):
    """The OCI platform the image was built for."""

    os: ShortText = "linux"
    architecture: ShortText = Field(description="GOARCH spelling: amd64, arm64, ppc64le, ...")
    variant: ShortText | None = None


class ImageLayer(StrictModel):
    """One layer blob, in application order."""

    digest: Digest = Field(description="sha256 of the stored (possibly compressed) blob bytes")
    size: int = Field(ge=0, le=2**53)
    media_type: MediaType
    diff_id: Digest | None = Field(default=None, description="sha256 of the uncompressed tar (config rootfs)")


class ContainerSpec(StrictModel):
    """Kind-specific section of a container record."""

    manifest_digest: Digest = Field(description="sha256 of the manifest bytes: what repo@sha256: pins")
    manifest_media_type: MediaType = "application/vnd.oci.image.manifest.v1+json"
    manifest_size: int = Field(default=0, ge=0, le=2**53)
    config_digest: Digest = Field(description="the image ID")
    config_size: int = Field(default=0, ge=0, le=2**53)
    index_digest: Digest | None = Field(
        default=None, description="the multi-platform image index the manifest was selected from, if any"
    )
    platform: Platform
    layers: list[ImageLayer] = Field(default_factory=list, max_length=1000)
    tag: ShortText | None = None
    registry: ShortText | None = Field(
        default=None, description="reference of origin, e.g. docker.io/library/busybox or repo@sha256:..."
    )
    entrypoint: list[Arg] | None = None
    cmd: list[Arg] | None = None
    env: list[EnvVar] = Field(default_factory=list, max_length=10_000, description="KEY=VALUE from the config")
    workdir: ShortText | None = None
    user: ShortText | None = None
    source_format: Literal["oci-layout", "oci-archive", "docker-archive"] = "oci-layout"
    conversion: ShortText | None = Field(
        default=None, description="how the stored OCI manifest was derived when the source was not OCI"
    )
    definition: RelPath | None = Field(
        default=None, description="the definition the image was built from, e.g. containers/<name>/Containerfile"
    )

    @model_validator(mode="after")
    def _diff_ids(self) -> ContainerSpec:
        for layer in self.layers:
            if layer.media_type.endswith(".tar") and layer.diff_id not in (None, layer.digest):
                raise ValueError(f"uncompressed layer {layer.digest} must have diff_id equal to its digest")
        return self


class ContainerRecord(KindRecord):
    KIND: ClassVar[str] = "container"
    schema_version: Literal["1.0.0"] = "1.0.0"
    container: ContainerSpec

    @model_validator(mode="after")
    def _blobs_listed(self) -> ContainerRecord:
        listed = {f.sha256 for f in self.files}
        c = self.container
        missing = [d for d in (c.manifest_digest, c.config_digest, *(la.digest for la in c.layers)) if d not in listed]
        if missing:
            raise ValueError(f"image blobs missing from 'files': {', '.join(missing[:3])}")
        return self
