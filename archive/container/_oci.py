"""Reading images: OCI layout directories, OCI archive tars and docker-archive tars (``docker save``).

Nothing here writes anything: a source is opened, the manifest for the wanted tag and platform selected, and
its blobs handed out as streams. A docker-archive is presented as an OCI image: its config and layer bytes are
kept, and an OCI manifest describing them is generated (the record notes the conversion).
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from archive.digest import DIGEST_RE, digest_bytes, hex_of
from archive.errors import IntegrityError, ValidationError

__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "REF_NAME",
    "Descriptor",
    "ImageSource",
    "ResolvedImage",
    "open_source",
    "resolve_image",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
REF_NAME = "org.opencontainers.image.ref.name"
MAX_JSON = 16 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None

    @classmethod
    def parse(cls, d: Any, where: str, label: str) -> Descriptor:
        if not isinstance(d, dict):
            raise ValidationError("descriptor is not an object", file=label, field=where)
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise ValidationError(f"digest {digest!r} is not sha256:<64 hex> (only sha256 is supported)",
                                  file=label, field=f"{where}.digest")
        if not isinstance(size, int) or size < 0:
            raise ValidationError(f"size {size!r} is not a non-negative integer", file=label, field=f"{where}.size")
        ann = d.get("annotations") or {}
        plat = d.get("platform")
        return cls(str(d.get("mediaType") or ""), digest, size,
                   {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {},
                   plat if isinstance(plat, dict) else None)


class ImageSource:
    """Blob access for one image source. ``fmt``: oci-layout, oci-archive or docker-archive."""

    fmt = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.extra_blobs: dict[str, bytes] = {}

    def _open(self, name: str) -> BinaryIO | None:
        raise NotImplementedError

    def open_file(self, name: str) -> BinaryIO:
        f = self._open(name)
        if f is None:
            raise ValidationError(f"{name} is missing from the image", file=self.label)
        return f

    def has(self, name: str) -> bool:
        f = self._open(name)
        if f is None:
            return False
        f.close()
        return True

    def read_json_file(self, name: str) -> Any:
        with self.open_file(name) as f:
            data = f.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise ValidationError(f"{name} is larger than {MAX_JSON} bytes", file=self.label)
        return _loads(data, f"{self.label}:{name}")

    def open_blob(self, digest: str) -> BinaryIO:
        if digest in self.extra_blobs:
            import io

            return io.BytesIO(self.extra_blobs[digest])
        return self.open_file(f"blobs/sha256/{hex_of(digest)}")

    def read_blob(self, desc: Descriptor) -> bytes:
        """A small blob (manifest, config, index), verified against its descriptor."""
        if desc.size > MAX_JSON:
            raise ValidationError(f"blob {desc.digest} is {desc.size} bytes; too large for a manifest or config",
                                  file=self.label)
        with self.open_blob(desc.digest) as f:
            data = f.read(desc.size + 1)
        check_blob(data, desc, self.label)
        return data

    def close(self) -> None:
        pass


def check_blob(data: bytes, desc: Descriptor, label: str) -> None:
    got = digest_bytes(data)
    if got != desc.digest or len(data) != desc.size:
        raise IntegrityError(f"blob {desc.digest} ({desc.size} bytes) hashes to {got} ({len(data)} bytes); the "
                             "image is corrupt or was modified", file=label)


def _loads(data: bytes, label: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"not valid JSON: {exc}", file=label) from None


class _LayoutDir(ImageSource):
    fmt = "oci-layout"

    def _open(self, name: str) -> BinaryIO | None:
        p = self.path.joinpath(*name.split("/"))
        # never follow a symlink out of the layout
        cur = self.path
        for part in name.split("/"):
            cur = cur / part
            if cur.is_symlink():
                raise ValidationError(f"{name} is a symlink inside the image layout; refusing it", file=self.label)
        try:
            return open(p, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None


class _Tar(ImageSource):
    def __init__(self, path: Path, fmt: str) -> None:
        super().__init__(path)
        self.fmt = fmt
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115
            self.members = {os.path.normpath(m.name).lstrip("/"): m for m in self.tar.getmembers()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ValidationError(f"not a readable tar file: {exc}", file=str(path)) from None

    def _open(self, name: str) -> BinaryIO | None:
        m = self.members.get(name)
        if m is None:
            return None
        if not m.isreg():
            raise ValidationError(f"{name} in the archive is not a regular file (links are refused)",
                                  file=self.label)
        f = self.tar.extractfile(m)
        return f  # type: ignore[return-value]

    def close(self) -> None:
        self.tar.close()


def open_source(path: Path) -> ImageSource:
    """Open an OCI layout directory, OCI archive tar or docker-archive tar (detected from its content)."""
    path = Path(path)
    if path.is_dir():
        src: ImageSource = _LayoutDir(path)
        if not src.has("index.json"):
            raise ValidationError("directory is not an OCI image layout (no index.json); create one with "
                                  "`skopeo copy ... oci:DIR:TAG`", file=str(path))
        return src
    if not path.is_file():
        raise ValidationError("image source does not exist", file=str(path))
    tar = _Tar(path, "oci-archive")
    if tar.has("index.json") and tar.has("oci-layout"):
        return tar
    if tar.has("manifest.json"):
        tar.fmt = "docker-archive"
        return tar
    tar.close()
    raise ValidationError("tar is neither an OCI archive (oci-layout + index.json) nor a docker-archive "
                          "(manifest.json)", file=str(path))


@dataclass
class ResolvedImage:
    """One image selected from a source: its manifest and config bytes, descriptors and provenance."""

    source: ImageSource
    manifest_bytes: bytes
    manifest_desc: Descriptor
    manifest: dict[str, Any]
    config_bytes: bytes
    config_desc: Descriptor
    config: dict[str, Any]
    layers: list[Descriptor]
    tag: str | None
    index_digest: str | None = None
    registry: str | None = None
    conversion: str | None = None
    open_layer: Callable[[Descriptor], BinaryIO] | None = None


def _platform_ok(plat: dict[str, Any] | None, wanted: tuple[str, str, str | None]) -> bool:
    if not plat:
        return False
    os_, arch, variant = wanted
    return plat.get("os") == os_ and plat.get("architecture") == arch and (variant is None or
                                                                           plat.get("variant") == variant)


def _parse_platform(value: str | None) -> tuple[str, str, str | None]:
    if value is None:
        from archive.container.testing import goarch

        return ("linux", goarch(), None)
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValidationError(f"platform {value!r} must be os/arch[/variant], e.g. linux/amd64", field="platform")
    return (parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _select(src: ImageSource, descs: list[Descriptor], tag: str | None) -> Descriptor:
    if tag is not None:
        hits = [d for d in descs if d.annotations.get(REF_NAME) == tag
                or d.annotations.get(REF_NAME, "").rsplit(":", 1)[-1] == tag]
        if not hits:
            have = sorted({d.annotations.get(REF_NAME, "") for d in descs} - {""})
            raise ValidationError(f"no image tagged {tag!r} (tags: {', '.join(have) or 'none'})", file=src.label)
        return hits[0]
    if len(descs) != 1:
        have = sorted({d.annotations.get(REF_NAME, "") for d in descs} - {""})
        raise ValidationError(f"the layout holds {len(descs)} images; choose one with --tag "
                              f"({', '.join(have) or 'no tags'})", file=src.label)
    return descs[0]


def resolve_image(src: ImageSource, *, tag: str | None = None, platform: str | None = None) -> ResolvedImage:
    """Select the image (by tag, then platform for multi-platform indexes) and verify manifest and config."""
    if src.fmt == "docker-archive":
        return _resolve_docker(src, tag)
    index = src.read_json_file("index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ValidationError("index.json has no 'manifests' list", file=src.label)
    descs = [Descriptor.parse(d, f"manifests[{i}]", f"{src.label}:index.json")
             for i, d in enumerate(index["manifests"])]
    desc = _select(src, descs, tag)
    ref_name = desc.annotations.get(REF_NAME)
    index_digest = None
    if desc.media_type in INDEX_TYPES:
        index_digest = desc.digest
        nested = _loads(src.read_blob(desc), f"{src.label}:{desc.digest}")
        wanted = _parse_platform(platform)
        subs = [Descriptor.parse(d, f"manifests[{i}]", desc.digest) for i, d in
                enumerate(nested.get("manifests", []) if isinstance(nested, dict) else [])]
        hits = [d for d in subs if _platform_ok(d.platform, wanted)]
        if not hits:
            have = [f"{(d.platform or {}).get('os')}/{(d.platform or {}).get('architecture')}" for d in subs]
            raise ValidationError(f"the image index has no {'/'.join(p for p in wanted if p)} manifest "
                                  f"(platforms: {', '.join(have) or 'none'}); choose one with --platform",
                                  file=src.label)
        desc = hits[0]
    if desc.media_type and desc.media_type not in MANIFEST_TYPES:
        raise ValidationError(f"unsupported manifest media type {desc.media_type!r}", file=src.label)
    manifest_bytes = src.read_blob(desc)
    manifest = _loads(manifest_bytes, f"{src.label}:{desc.digest}")
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise ValidationError("manifest is not an image manifest with schemaVersion 2", file=src.label)
    media_type = desc.media_type or str(manifest.get("mediaType") or OCI_MANIFEST)
    desc = Descriptor(media_type, desc.digest, desc.size, desc.annotations, desc.platform)
    config_desc = Descriptor.parse(manifest.get("config"), "config", f"{src.label}:{desc.digest}")
    config_bytes = src.read_blob(config_desc)
    config = _loads(config_bytes, f"{src.label}:{config_desc.digest}")
    layers = [Descriptor.parse(d, f"layers[{i}]", f"{src.label}:{desc.digest}")
              for i, d in enumerate(manifest.get("layers") or [])]
    registry = desc.annotations.get("io.containers.image.name") or desc.annotations.get(
        "org.opencontainers.image.base.name")
    found_tag = tag
    if ref_name:
        repo, sep, last = ref_name.rpartition(":")
        if "/" in ref_name and sep and "/" not in last:
            registry, found_tag = registry or repo, found_tag or last
        elif "/" in ref_name:
            registry = registry or ref_name
        else:
            found_tag = found_tag or ref_name
    return ResolvedImage(src, manifest_bytes, desc, manifest, config_bytes, config_desc,
                         config if isinstance(config, dict) else {}, layers, found_tag, index_digest, registry)


def _resolve_docker(src: ImageSource, tag: str | None) -> ResolvedImage:
    entries = src.read_json_file("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ValidationError("manifest.json is not a non-empty list", file=src.label)
    chosen = None
    for e in entries:
        tags = e.get("RepoTags") or [] if isinstance(e, dict) else []
        if tag is None or any(t == tag or t.rsplit(":", 1)[-1] == tag for t in tags):
            chosen = e
            break
    if chosen is None or (tag is None and len(entries) > 1):
        raise ValidationError(f"choose one of the {len(entries)} images with --tag", file=src.label)
    repo_tags = [str(t) for t in chosen.get("RepoTags") or []]
    with src.open_file(str(chosen["Config"])) as f:
        config_bytes = f.read(MAX_JSON + 1)
    config = _loads(config_bytes, f"{src.label}:{chosen['Config']}")
    config_desc = Descriptor(OCI_CONFIG, digest_bytes(config_bytes), len(config_bytes))
    layers: list[Descriptor] = []
    names: dict[str, str] = {}
    for name in chosen.get("Layers") or []:
        h, gz = _hash_member(src, str(name))
        mt = OCI_LAYER + ("+gzip" if gz else "")
        layers.append(Descriptor(mt, h.sha256, h.size))
        names[h.sha256] = str(name)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if isinstance(diff_ids, list) and len(diff_ids) == len(layers):
        for d, did in zip(layers, diff_ids, strict=True):
            if not d.media_type.endswith("+gzip") and did != d.digest:
                raise IntegrityError(f"layer {names[d.digest]} hashes to {d.digest} but the config's diff_id is "
                                     f"{did}; the archive is corrupt", file=src.label)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_desc.digest, "size": config_desc.size},
                "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in layers]}
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    mdesc = Descriptor(OCI_MANIFEST, digest_bytes(manifest_bytes), len(manifest_bytes))
    src.extra_blobs[mdesc.digest] = manifest_bytes
    src.extra_blobs[config_desc.digest] = config_bytes
    first = repo_tags[0] if repo_tags else None
    registry = first.rsplit(":", 1)[0] if first and ":" in first else first
    img = ResolvedImage(src, manifest_bytes, mdesc, manifest, config_bytes, config_desc,
                        config if isinstance(config, dict) else {}, layers,
                        tag or (first.rsplit(":", 1)[-1] if first and ":" in first else None), None, registry,
                        conversion="docker-archive: OCI manifest generated by hep-archive; config and layer bytes "
                                   "kept unchanged")
    img.open_layer = lambda d: src.open_file(names[d.digest])
    return img


def _hash_member(src: ImageSource, name: str) -> tuple[Any, bool]:
    from archive.digest import MultiHasher, digest_stream

    with src.open_file(name) as f:
        head = f.read(2)
        h = MultiHasher()
        h.update(head)
        digest_stream(f, h)
    return h, head == b"\x1f\x8b"
