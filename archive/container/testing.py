"""Real, tiny OCI images for tests and demos, built offline from Debian's static busybox.

``build_busybox_oci(dir)`` writes an OCI image layout directory with two layers:

1. (gzip) ``bin/busybox`` plus applet symlinks, ``etc/passwd``, ``etc/group``, ``etc/removed.txt``,
   ``opt/data/old.txt`` and an absolute symlink ``usr/bin/env -> /bin/busybox``;
2. (uncompressed tar) ``etc/motd``, ``opt/data/new.txt`` and, with ``whiteout=True``, the whiteouts
   ``etc/.wh.removed.txt`` and ``opt/data/.wh..wh..opq`` (so ``removed.txt`` and ``old.txt`` disappear).

Every byte is deterministic (fixed mtimes, owners and gzip header), so the manifest digest only depends on the
busybox binary. ``oci_to_docker_archive`` turns such a layout into a ``docker save`` tar.
"""

from __future__ import annotations

import gzip
import io
import json
import platform
import shutil
import tarfile
from pathlib import Path
from typing import Any

from archive.container._oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from archive.digest import digest_bytes, hex_of
from archive.errors import MissingDependencyError, ValidationError

__all__ = [
    "BUSYBOX_APPLETS", "build_busybox_oci", "find_busybox", "goarch", "layer_tar", "oci_to_docker_archive",
    "write_blob", "write_layout",
]

BUSYBOX_APPLETS = (
    "sh", "cat", "ls", "echo", "env", "id", "test", "true", "false", "sleep", "mkdir", "rm", "touch", "head",
    "wc", "sed", "grep", "printf", "pwd", "uname", "nc", "wget", "sha256sum", "cp", "mv", "tr", "sort", "expr",
)
MTIME = 946684800  # 2000-01-01T00:00:00Z
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: (name, type, data or link target, mode); type: "dir", "file", "symlink", "hardlink", "chr", "fifo"
Entry = tuple[str, str, bytes | str, int]


def find_busybox() -> Path:
    """The static busybox binary (Debian ``busybox-static``), or MissingDependencyError."""
    for cand in ("/usr/bin/busybox", "/bin/busybox"):
        p = Path(cand)
        if p.is_file():
            return p
    which = shutil.which("busybox")
    if which:
        return Path(which)
    raise MissingDependencyError("busybox", "install Debian's busybox-static (apt-get install busybox-static)")


def goarch() -> str:
    """The host architecture in OCI (GOARCH) spelling."""
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386",
            "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def layer_tar(entries: list[Entry]) -> bytes:
    """An uncompressed tar with deterministic headers (owner 0:0, fixed mtime, GNU format)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = MTIME, 0, 0, "", "", mode
            data: bytes | None = None
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raise ValueError(f"unknown entry type {kind!r}")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def write_blob(out_dir: Path, data: bytes) -> str:
    """Write ``data`` as ``blobs/sha256/<hex>`` of the layout ``out_dir``; returns its digest."""
    digest = digest_bytes(data)
    p = out_dir / "blobs" / "sha256" / hex_of(digest)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return digest


def write_layout(out_dir: Path, config: dict[str, Any], layers: list[tuple[str, str, int]], *, tag: str,
                 annotations: dict[str, str] | None = None) -> str:
    """Finish an OCI image layout whose layer blobs are already in ``out_dir``: the config, the manifest
    (``layers``: ``(media type, digest, size)``), ``index.json`` naming it ``tag`` and ``oci-layout``. JSON is
    written with sorted keys and no spaces, so the manifest digest depends on the content only.

    Returns:
        The manifest digest.
    """
    def dump(obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    config_bytes = dump(config)
    manifest: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(out_dir, config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": mt, "digest": d, "size": n} for mt, d, n in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    manifest_bytes = dump(manifest)
    dm = write_blob(out_dir, manifest_bytes)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": dm, "size": len(manifest_bytes),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }]}
    (out_dir / "index.json").write_bytes(dump(index))
    (out_dir / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return dm


def build_busybox_oci(out_dir: Path, *, whiteout: bool = True, tag: str = "latest") -> Path:
    """Write a two-layer busybox OCI image layout to ``out_dir`` (created; must be empty or absent).

    Args:
        out_dir: the layout directory to create (``oci-layout``, ``index.json``, ``blobs/sha256/...``).
        whiteout: add the whiteout entries to the second layer.
        tag: the ``org.opencontainers.image.ref.name`` annotation in ``index.json``.

    Returns:
        ``out_dir``.
    """
    busybox = find_busybox().read_bytes()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValidationError("output directory is not empty; give a new directory", file=str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    base: list[Entry] = [
        ("bin/", "dir", "", 0o755), ("bin/busybox", "file", busybox, 0o755),
        *((f"bin/{a}", "symlink", "busybox", 0o777) for a in BUSYBOX_APPLETS),
        ("etc/", "dir", "", 0o755),
        ("etc/group", "file", b"root:x:0:\nusers:x:100:\n", 0o644),
        ("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:0:user:/home/user:/bin/sh\n", 0o644),
        ("etc/removed.txt", "file", b"removed by the whiteout in layer 2\n", 0o644),
        ("opt/", "dir", "", 0o755), ("opt/data/", "dir", "", 0o755),
        ("opt/data/old.txt", "file", b"hidden by the opaque whiteout in layer 2\n", 0o644),
        ("usr/", "dir", "", 0o755), ("usr/bin/", "dir", "", 0o755),
        ("usr/bin/env", "symlink", "/bin/busybox", 0o777),
    ]
    upper: list[Entry] = [("etc/", "dir", "", 0o755), ("opt/", "dir", "", 0o755), ("opt/data/", "dir", "", 0o755)]
    if whiteout:
        upper += [("etc/.wh.removed.txt", "file", b"", 0o644), ("opt/data/.wh..wh..opq", "file", b"", 0o644)]
    upper += [("etc/motd", "file", b"hep-archive busybox test image\n", 0o644),
              ("opt/data/new.txt", "file", b"layer 2\n", 0o644)]
    tar1, tar2 = layer_tar(base), layer_tar(upper)
    gz1 = _gzip(tar1)
    d1, d2 = write_blob(out_dir, gz1), write_blob(out_dir, tar2)
    config = {
        "created": "2000-01-01T00:00:00Z", "architecture": goarch(), "os": "linux",
        "config": {"Env": [f"PATH={DEFAULT_PATH}", "HEP_IMAGE=busybox-test"], "Cmd": ["/bin/sh"],
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [digest_bytes(tar1), digest_bytes(tar2)]},
        "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "hep-archive build_busybox_oci: base"},
                    {"created": "2000-01-01T00:00:00Z", "created_by": "hep-archive build_busybox_oci: whiteouts"}],
    }
    write_layout(out_dir, config, [(OCI_LAYER + "+gzip", d1, len(gz1)), (OCI_LAYER, d2, len(tar2))], tag=tag)
    return out_dir


def oci_to_docker_archive(layout: Path, output: Path, *, repo_tag: str = "busybox-test:latest") -> Path:
    """Write a ``docker save`` style tar (``manifest.json``, ``<id>.json``, ``<n>/layer.tar``) from an OCI
    layout directory with one manifest: gzip layers are decompressed, as ``docker save`` stores them."""
    index = json.loads((layout / "index.json").read_text())

    def blob(d: str) -> bytes:
        return (layout / "blobs" / "sha256" / hex_of(d)).read_bytes()

    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config_bytes = blob(manifest["config"]["digest"])
    files: dict[str, bytes] = {f"{hex_of(manifest['config']['digest'])}.json": config_bytes}
    layer_names = []
    for i, layer in enumerate(manifest["layers"]):
        data = blob(layer["digest"])
        if layer["mediaType"].endswith("+gzip"):
            data = gzip.decompress(data)
        name = f"{i:02d}{hex_of(digest_bytes(data))[:20]}/layer.tar"
        files[name] = data
        layer_names.append(name)
    files["manifest.json"] = json.dumps([{"Config": next(iter(files)), "RepoTags": [repo_tag],
                                          "Layers": layer_names}]).encode()
    with tarfile.open(output, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return output
