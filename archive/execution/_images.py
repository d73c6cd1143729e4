"""Step images: container records <-> manifest digests, and the root filesystem a runner needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import NotFoundError

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.schema import RecordBase

__all__ = ["container_for_digest", "image_digest_of", "step_rootfs"]


def image_digest_of(record: RecordBase) -> str | None:
    """The manifest digest of a container record: its ``image-manifest`` file (whose sha256 *is* the
    manifest digest), else a ``manifest_digest``/``digest`` field of its ``container`` section."""
    section: Any = getattr(record, "container", None)
    for key in ("manifest_digest", "digest"):
        value = getattr(section, key, None)
        if isinstance(value, str) and value.startswith("sha256:"):
            return value
    for entry in record.files:
        if entry.role == "image-manifest":
            return entry.sha256
    return None


def container_for_digest(archive: Archive, digest: str) -> str | None:
    """The ``container/NAME@VERSION`` record whose image has this manifest digest (None when absent)."""
    from archive.errors import ValidationError

    for f in archive.catalog.files():
        if f.kind != "container":
            continue  # never parse the (large) records of other kinds
        try:
            rec = archive.catalog.load_file(f.path)
        except ValidationError:
            continue
        if image_digest_of(rec) == digest:
            return rec.ref
    return None


def step_rootfs(archive: Archive, image: str | None, digest: str | None) -> tuple[Path, dict[str, str]]:
    """The unpacked root filesystem of a step's image (through the containers layer's cache) and the
    environment of the image's config."""
    ref = image or (container_for_digest(archive, digest) if digest else None)
    if ref is None:
        raise NotFoundError(
            f"no container record holds image {digest}; import it first with `hep-archive container add`",
            field="environment",
        )
    from archive.container import container_record, image_env, unpacked_root

    return Path(unpacked_root(archive, ref)), image_env(container_record(archive, ref))
