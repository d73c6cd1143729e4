"""Images in the archive: add (verify + store byte for byte + record), export, unpack (cached), run."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from archive.container._oci import OCI_LAYER, REF_NAME, ResolvedImage, open_source, resolve_image
from archive.digest import MultiHasher, digest_file, hex_of, is_digest
from archive.errors import IntegrityError, RecordNotFoundError, ValidationError
from archive.schema.v1._common import NAME_PATTERN
from archive.schema.v1.container import ContainerRecord

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.container._runners import RunOutcome

__all__ = [
    "add_image",
    "container_record",
    "export_image",
    "image_env",
    "list_images",
    "run_image",
    "unpacked_root",
]

DEFINITION_NAMES = ("Containerfile", "Dockerfile", "Singularity.def", "apptainer.def")


class _DiffTee(io.RawIOBase):
    """Reads a layer blob and, for gzip/zstd, hashes the uncompressed tar (the diff_id). An uncompressed layer's
    diff_id is its blob digest, which the store verifies while it reads: it is not hashed a second time."""

    def __init__(self, raw: BinaryIO, media_type: str) -> None:
        super().__init__()
        self.raw = raw
        self.diff = MultiHasher()
        self.decomp: Any = None
        self.kind = "tar"
        if media_type.endswith("+gzip") or media_type.endswith(".tar.gzip"):
            self.kind, self.decomp = "gzip", zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif media_type.endswith("+zstd"):
            self.kind = "zstd"
            try:
                import zstandard  # type: ignore[import-not-found,unused-ignore]

                self.decomp = zstandard.ZstdDecompressor().decompressobj()
            except ImportError:
                self.kind = "unknown"
        elif not media_type.endswith(".tar") and not media_type.endswith("rootfs.diff.tar"):
            self.kind = "unknown"

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        if n and self.decomp is not None:
            try:
                self._feed(data)
            except zlib.error as exc:
                raise IntegrityError(f"layer does not decompress as {self.kind}: {exc}") from None
        return n

    def _feed(self, data: bytes) -> None:
        self.diff.update(self.decomp.decompress(data))
        while self.kind == "gzip" and self.decomp.eof and self.decomp.unused_data:  # multi-member gzip
            rest = self.decomp.unused_data
            self.decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self.diff.update(self.decomp.decompress(rest))

    def diff_id(self, blob_digest: str) -> str | None:
        if self.kind == "tar":
            return blob_digest
        return None if self.kind == "unknown" else self.diff.sha256


def _full_ref(ref: str) -> str:
    return ref if ref.startswith("container/") else f"container/{ref}"


def container_record(archive: Archive, ref: str) -> ContainerRecord:
    """A container record by ``[container/]name[@version]`` or by manifest digest ``sha256:...``."""
    if is_digest(ref):
        hits = [r for _, r in archive.catalog.iter_records()
                if isinstance(r, ContainerRecord) and r.container.manifest_digest == ref]
        if not hits:
            raise RecordNotFoundError(f"no container record has manifest digest {ref}")
        return hits[-1]
    rec = archive.record(_full_ref(ref))
    if not isinstance(rec, ContainerRecord):
        raise ValidationError(f"{ref} is a {rec.kind} record, not a container", field="ref")
    return rec


def list_images(archive: Archive) -> list[ContainerRecord]:
    """Every container record version in the catalog."""
    return [r for _, r in archive.catalog.iter_records() if isinstance(r, ContainerRecord)]


def image_env(record: ContainerRecord) -> dict[str, str]:
    """The image config's environment as a dict."""
    out: dict[str, str] = {}
    for item in record.container.env:
        k, sep, v = item.partition("=")
        if sep and k:
            out[k] = v
    return out


def _find_definition(archive: Archive, name: str, definition: Path | None) -> Path | None:
    if definition is not None:
        if not Path(definition).is_file():
            raise ValidationError("definition file does not exist", file=str(definition), field="definition")
        return Path(definition)
    for cand in DEFINITION_NAMES:
        p = archive.root / "containers" / name / cand
        if p.is_file():
            return p
    return None


def _entry(path: str, info: Any, role: str, media_type: str | None) -> dict[str, Any]:
    return {"path": path, "size": info.size, "sha256": info.digest, "adler32": info.adler32, "role": role,
            "media_type": media_type}


def _store_blobs(archive: Archive, img: ResolvedImage, new: list[str]) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Store manifest, config and layers (verifying each); returns file entries and layer diff_ids."""
    store = archive.store
    files: dict[str, dict[str, Any]] = {}

    def remember(digest: str) -> None:
        if not store.exists(digest):
            new.append(digest)

    for data, desc, role in ((img.manifest_bytes, img.manifest_desc, "image-manifest"),
                             (img.config_bytes, img.config_desc, "image-config")):
        remember(desc.digest)
        info = store.put_stream(io.BytesIO(data), expected=desc.digest, adler32=True)
        files[desc.digest] = _entry(f"blobs/sha256/{hex_of(desc.digest)}", info, role, desc.media_type or None)
    diff_ids: list[str | None] = []
    seen: dict[str, str | None] = {}
    for layer in img.layers:
        if layer.digest in seen:
            diff_ids.append(seen[layer.digest])
            continue
        raw = img.open_layer(layer) if img.open_layer else img.source.open_blob(layer.digest)
        tee = _DiffTee(raw, layer.media_type)
        remember(layer.digest)
        try:
            with raw:
                stream: Any = io.BufferedReader(tee)
                info = store.put_stream(stream, expected=layer.digest, adler32=True)
        except IntegrityError as err:
            raise IntegrityError(f"layer {layer.digest} does not match its digest ({err.reason}); the image is "
                                 "corrupt or was modified", file=img.source.label) from None
        if info.size != layer.size:
            raise IntegrityError(f"layer {layer.digest} is {info.size} bytes, the manifest says {layer.size}",
                                 file=img.source.label)
        diff_id = tee.diff_id(layer.digest)
        seen[layer.digest] = diff_id
        diff_ids.append(diff_id)
        files[layer.digest] = _entry(f"blobs/sha256/{hex_of(layer.digest)}", info, "image-layer",
                                     layer.media_type or None)
    expected = (img.config.get("rootfs") or {}).get("diff_ids")
    if isinstance(expected, list):
        if len(expected) != len(img.layers):
            raise IntegrityError(f"the config lists {len(expected)} diff_ids for {len(img.layers)} layers",
                                 file=img.source.label)
        for layer, got, want in zip(img.layers, diff_ids, expected, strict=True):
            if got is not None and got != want:
                raise IntegrityError(f"layer {layer.digest} uncompresses to {got}, the config's diff_id is {want}",
                                     file=img.source.label)
    return list(files.values()), diff_ids


def add_image(
    archive: Archive, source: Path, *, name: str, version: str | None = None, tag: str | None = None,
    definition: Path | None = None, platform: str | None = None, registry: str | None = None,
    title: str | None = None, metadata: Mapping[str, Any] | None = None,
) -> ContainerRecord:
    """Add an image (OCI archive tar, OCI layout directory or docker-archive tar) to the archive.

    Every blob is verified against the manifest and stored byte for byte (shared layers once); a draft
    container record is written. Bad input leaves neither objects nor a record behind.

    Args:
        archive: the archive.
        source: the image file or directory.
        name: the record name (``container/<name>``).
        version: the record version; default: the latest version when it pins the same manifest, else the
            next minor version (``1.0.0`` for a new name).
        tag: which image of a multi-image source to take (``org.opencontainers.image.ref.name``/RepoTags).
        definition: the Containerfile it was built from; default ``containers/<name>/Containerfile`` if present.
        platform: ``os/arch[/variant]`` to select from a multi-platform index (default: the host's).
        registry: the reference of origin, when the source does not say.
        title: the record title.
        metadata: envelope fields for the record (creators, license, description, usage, keywords, ...);
            ``description`` is put before the generated one (digest, layers, platform).

    Returns:
        The container record.
    """
    import re

    if not re.match(NAME_PATTERN, name):
        raise ValidationError(f"invalid image name {name!r}: lowercase letters, digits, '.', '_', '-'", field="name")
    rid = f"container/{name}"
    src = open_source(Path(source))
    try:
        img = resolve_image(src, tag=tag, platform=platform)
        with archive.lock():
            if version is None:
                versions = archive.catalog.versions(rid)
                if versions:
                    latest = archive.catalog.get(rid, versions[-1])
                    if isinstance(latest, ContainerRecord) and \
                            latest.container.manifest_digest == img.manifest_desc.digest:
                        return latest
                version = archive.catalog.next_version(rid, "minor")
            new: list[str] = []
            try:
                record = _build_record(archive, img, rid, version, name, definition, registry, title, new,
                                       dict(metadata or {}))
                archive.catalog.add(record)
            except BaseException:
                for d in new:
                    with contextlib.suppress(Exception):
                        archive.store.remove(d)
                raise
            return record
    finally:
        src.close()


def _definition_entries(archive: Archive, def_path: Path, new: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """File entries for the definition and, when it lies in the archive tree, every other file of its folder
    (``requirements.txt``, ``README.md``, ...): what is needed to rebuild the image, all listed."""
    try:
        rel = def_path.absolute().relative_to(archive.root).as_posix()
    except ValueError:
        rel = f"definition/{def_path.name}"
        existed = archive.store.exists(digest_file(def_path).sha256)
        entry = archive.file_entry(def_path, name=rel, role="definition")
        if not existed:
            new.append(entry.sha256)
        return rel, [entry.model_dump(mode="json", exclude_none=True)]
    entries = [archive.file_entry(def_path, name=rel, role="definition", tree=True)]
    for p in sorted(def_path.parent.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.resolve() != def_path.resolve():
            role = "documentation" if p.suffix.lower() in (".md", ".txt", ".rst") and \
                p.name.lower().startswith("readme") else "definition"
            entries.append(archive.file_entry(p, name=p.absolute().relative_to(archive.root).as_posix(),
                                              role=role, tree=True))
    return rel, [e.model_dump(mode="json", exclude_none=True) for e in entries]


def _build_record(archive: Archive, img: ResolvedImage, rid: str, version: str, name: str,
                  definition: Path | None, registry: str | None, title: str | None,
                  new: list[str], metadata: dict[str, Any]) -> ContainerRecord:
    from archive.schema import parse_record

    files, diff_ids = _store_blobs(archive, img, new)
    spec_def = None
    def_path = _find_definition(archive, name, definition)
    if def_path is not None:
        spec_def, entries = _definition_entries(archive, def_path, new)
        files += entries
    cfg = img.config
    inner = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    assert isinstance(inner, dict)
    plat = {"os": str(cfg.get("os") or "linux"), "architecture": str(cfg.get("architecture") or "unknown")}
    if cfg.get("variant"):
        plat["variant"] = str(cfg["variant"])
    spec = {
        "manifest_digest": img.manifest_desc.digest, "manifest_media_type": img.manifest_desc.media_type,
        "manifest_size": img.manifest_desc.size, "config_digest": img.config_desc.digest,
        "config_size": img.config_desc.size, "index_digest": img.index_digest, "platform": plat,
        "layers": [{"digest": la.digest, "size": la.size, "media_type": la.media_type or OCI_LAYER,
                    "diff_id": did} for la, did in zip(img.layers, diff_ids, strict=True)],
        "tag": img.tag, "registry": registry or img.registry,
        "entrypoint": inner.get("Entrypoint"), "cmd": inner.get("Cmd"), "env": inner.get("Env") or [],
        "workdir": inner.get("WorkingDir") or None, "user": inner.get("User") or None,
        "source_format": img.source.fmt, "conversion": img.conversion, "definition": spec_def,
    }
    label = f"{name}:{img.tag}" if img.tag else name
    generated = (f"OCI image {img.manifest_desc.digest}, {len(img.layers)} layer(s), "
                 f"{plat['os']}/{plat['architecture']}.")
    given = str(metadata.pop("description", "") or "").strip()
    keywords = ["container", "oci-image", *[k for k in metadata.pop("keywords", []) or []
                                            if k not in ("container", "oci-image")]]
    data = {
        **{k: v for k, v in metadata.items() if k not in ("id", "version", "files", "container", "title")},
        "id": rid, "version": version, "title": title or metadata.get("title") or f"Container image {label}",
        "description": f"{given}\n\n{generated}" if given else generated,
        "keywords": keywords, "files": files,
        "container": {k: v for k, v in spec.items() if v is not None},
    }
    record = parse_record(data, source=f"{img.source.label} -> {rid}@{version}")
    assert isinstance(record, ContainerRecord)
    return record


def _blob_list(record: ContainerRecord) -> list[tuple[str, int]]:
    c = record.container
    out = [(c.manifest_digest, c.manifest_size), (c.config_digest, c.config_size)]
    out += [(la.digest, la.size) for la in c.layers]
    unique: dict[str, int] = {}
    for d, s in out:
        unique.setdefault(d, s)
    return list(unique.items())


def _index_json(record: ContainerRecord) -> bytes:
    c = record.container
    desc: dict[str, Any] = {"mediaType": c.manifest_media_type, "digest": c.manifest_digest,
                            "size": c.manifest_size,
                            "platform": {"architecture": c.platform.architecture, "os": c.platform.os}}
    if c.platform.variant:
        desc["platform"]["variant"] = c.platform.variant
    if c.tag:
        desc["annotations"] = {REF_NAME: c.tag}
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [desc]}, sort_keys=True, separators=(",", ":")).encode()


@contextlib.contextmanager
def _verified(archive: Archive, digest: str) -> Iterator[BinaryIO]:
    r = archive.open_object(digest)
    try:
        yield r  # type: ignore[misc]
        r.read()  # reach EOF so the digest is checked
    finally:
        r.close()


def export_image(archive: Archive, ref: str, output: Path) -> str:
    """Write a stored image as an OCI archive tar (``output`` ends in ``.tar``) or an OCI layout directory.

    Args:
        archive: the archive.
        ref: ``[container/]name[@version]`` or a manifest digest.
        output: the tar file or (new or empty) directory to write.

    Returns:
        The manifest digest (equal to the recorded one; every blob is verified while copied).
    """
    record = container_record(archive, ref)
    output = Path(output)
    tmp = output.parent / f".{output.name}.{uuid.uuid4().hex}.tmp"
    output.parent.mkdir(parents=True, exist_ok=True)
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", _index_json(record))]
    try:
        if output.suffix == ".tar":
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                for d in ("blobs/", "blobs/sha256/"):
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                for digest, size in _blob_list(record):
                    info = tarfile.TarInfo(f"blobs/sha256/{hex_of(digest)}")
                    info.size, info.mode = size, 0o644
                    with _verified(archive, digest) as r:
                        tar.addfile(info, r)
                for fname, data in files:
                    info = tarfile.TarInfo(fname)
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
            os.replace(tmp, output)
        else:
            if output.exists() and (not output.is_dir() or any(output.iterdir())):
                raise ValidationError("output directory exists and is not empty", file=str(output))
            (tmp / "blobs" / "sha256").mkdir(parents=True)
            for digest, _ in _blob_list(record):
                with _verified(archive, digest) as r, open(tmp / "blobs" / "sha256" / hex_of(digest), "xb") as out:
                    shutil.copyfileobj(r, out, 1 << 20)
            for fname, data in files:
                (tmp / fname).write_bytes(data)
            if output.exists():
                output.rmdir()
            os.replace(tmp, output)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    return record.container.manifest_digest


def unpacked_root(archive: Archive, ref: str) -> Path:
    """The image's root filesystem, safely unpacked and cached under the archive's state dir.

    The cache key is the manifest digest; unpacking goes to a temporary directory renamed into place, so a
    root is either complete or absent. Layers are verified against their digests while read.

    Args:
        archive: the archive.
        ref: ``[container/]name[@version]`` or a manifest digest.

    Returns:
        The ``rootfs`` directory (with ``proc dev sys tmp workspace`` mount points).
    """
    import filelock

    from archive.container._unpack import unpack_layers, write_skeleton

    record = container_record(archive, ref)
    key = hex_of(record.container.manifest_digest)
    cache = archive.state_dir / "containers" / "unpacked"
    final = cache / key
    rootfs = final / "rootfs"
    if (final / "unpack.json").is_file():
        return rootfs
    cache.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(cache / f"{key}.lock"), timeout=3600):
        if (final / "unpack.json").is_file():
            return rootfs
        tmp = cache / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            (tmp / "rootfs").mkdir(parents=True)
            layers = [(la.digest, _opener(archive, la.digest)) for la in record.container.layers]
            report = unpack_layers(layers, tmp / "rootfs")
            write_skeleton(tmp / "rootfs")
            meta = {"manifest_digest": record.container.manifest_digest, "record": record.ref,
                    "layers": [la.digest for la in record.container.layers], "files": report.files,
                    "dirs": report.dirs, "symlinks": report.symlinks, "hardlinks": report.hardlinks,
                    "whiteouts": report.whiteouts, "skipped": report.skipped, "notes": report.notes}
            (tmp / "unpack.json").write_text(json.dumps(meta, indent=1))
            if final.exists():  # an incomplete leftover (no unpack.json): replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return rootfs


def _opener(archive: Archive, digest: str) -> Any:
    return lambda: archive.open_object(digest)


def run_image(
    archive: Archive, ref: str, argv: Sequence[str], *, runner: str = "bwrap", workspace: Path | None = None,
    env: dict[str, str] | None = None, network: bool = False, timeout: float | None = None,
    stdout: Path, stderr: Path, read_only_workspace: bool = False,
) -> RunOutcome:
    """Run ``argv`` (default: the image's entrypoint + cmd) in a stored image with a runner.

    The workspace (if given) is bound read-write at ``/workspace``, which is the working directory; the
    environment is the image config's ``Env`` overlaid with ``env``.
    """
    from archive.container._runners import Mount, SandboxSpec, get_runner

    record = container_record(archive, ref)
    c = record.container
    cmd = list(argv) or [*(c.entrypoint or []), *(c.cmd or [])]
    if not cmd:
        raise ValidationError("no command given and the image has no entrypoint or cmd", field="argv")
    r = get_runner(runner)
    rootfs = None if runner == "local" else unpacked_root(archive, ref)
    mounts = [Mount(Path(workspace).absolute(), "/workspace", read_only_workspace)] if workspace else []
    spec = SandboxSpec(argv=cmd, rootfs=rootfs, mounts=mounts, env={**image_env(record), **(env or {})},
                       cwd="/workspace" if workspace else (c.workdir or "/"), network=network, timeout=timeout)
    return r.run(spec, stdout=stdout, stderr=stderr)

