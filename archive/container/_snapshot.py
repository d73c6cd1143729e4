"""Snapshot images: an OCI image of the running Python environment, built offline and deterministically.

An analysis image normally comes from ``podman build`` against a registry. Where no registry can be reached
(an air-gapped cluster, these machines), ``build_snapshot_oci`` writes the same software stack as a real OCI
image layout from what is installed here:

1. ``base``: Debian's static busybox (``/usr/bin/sh``, ``mkdir``, ...), ``/etc/passwd``, ``/etc/group`` and
   the usual merged-``/usr`` links (``bin -> usr/bin``, ``lib -> usr/lib``, ...);
2. ``python``: the interpreter (``sys.base_prefix``: ``bin/python3.X``, ``libpython``, the standard library
   without tests, IDLE, tkinter and ensurepip) under ``/usr/local``, plus every host shared library that any
   binary in the image needs (the ``ldd`` closure, at the host's paths, with the host's symbolic links);
3. ``site-packages``: the installed distributions pinned in a requirements file and everything they require
   (markers evaluated), file by file from their ``RECORD``; an installed version outside a pin is refused;
4. ``analysis``: local package directories (the analysis code) and a minimal ``dist-info`` for each.

Every ``.py`` gets an *unchecked-hash* ``.pyc`` (PEP 552) compiled with its path inside the image, so a
read-only image imports as fast as an installed one and the bytes do not depend on file times. Tar headers are
fixed (owner 0:0, mtime 2000-01-01, normalised modes, sorted names) and layers are uncompressed, so the same
environment gives the same manifest digest. The config carries the definition's ``ENV`` lines and labels
naming the interpreter and every distribution with its version.

This is not a general image builder: it copies what exists on this host, it cannot run ``RUN`` instructions,
and binaries that load libraries by ``dlopen`` name without a ``DT_NEEDED`` entry are only covered when those
libraries lie inside a distribution.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from archive.container._oci import OCI_LAYER
from archive.container.testing import BUSYBOX_APPLETS, MTIME, find_busybox, goarch, write_layout
from archive.digest import MultiHasher, hex_of
from archive.errors import MissingDependencyError, ValidationError

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.schema.v1.container import ContainerRecord

__all__ = ["SnapshotReport", "build_snapshot_oci", "containerfile_env", "read_requirements", "snapshot_image"]

PREFIX = "usr/local"
DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LD_LIBRARY_PATH": "/usr/local/lib",
    "LANG": "C.UTF-8",
}
#: standard-library folders an analysis never needs (tests alone are a third of the library): any path
#: component with one of these names, and the nested test folders below
STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "__pycache__"}
STDLIB_SKIP_DIRS = ("lib2to3/tests/", "distutils/tests/")
MARSHAL_VERSION = 2
_LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


@dataclass(frozen=True)
class _Item:
    """One entry of a layer: ``path`` inside the image (no leading slash)."""

    path: str
    kind: str  # "dir" | "file" | "symlink"
    source: Path | None = None
    data: bytes | None = None
    link: str = ""
    mode: int = 0o644


@dataclass
class SnapshotReport:
    """What :func:`build_snapshot_oci` wrote."""

    layout: Path
    manifest_digest: str
    python: str
    distributions: dict[str, str]
    packages: list[str]
    layers: list[dict[str, Any]] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(int(la["size"]) for la in self.layers)


def read_requirements(path: Path) -> list[str]:
    """The requirements of a pip requirements file, such as a lock compiled with ``--generate-hashes``:
    comments, blank lines and option lines are dropped, continuation lines joined, and per-requirement options
    (``--hash=sha256:...``) cut off, so ``torch==2.13.0+cpu \\ --hash=...`` gives ``torch==2.13.0+cpu``."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = raw if raw.lstrip().startswith("#") else re.sub(r"(^|\s)#.*$", "", raw)
        start, body = pending if pending is not None else (n, "")
        if text.rstrip().endswith("\\"):
            pending = (start, body + " " + text.rstrip()[:-1])
            continue
        pending = None
        logical.append((start, body + " " + text))
    if pending is not None:
        logical.append(pending)
    for n, text in logical:
        line = text.strip()
        if not line or line.startswith(("#", "-")):
            continue
        line = re.split(r"\s--?[a-z]", " " + line, maxsplit=1)[0].strip()
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            raise ValidationError(f"not a requirement: {exc}", file=str(path), field=f"line {n}") from None
        out.append(line)
    return out


def containerfile_env(path: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``ENV`` variables a Containerfile sets: ``ENV K=V K2="v w"`` and the legacy ``ENV K value``, with line
    continuations (comment lines inside them skipped) and ``$VAR``/``${VAR}`` expanded against ``base`` and the
    earlier ``ENV`` values, as a builder does (``ENV PATH=/opt/bin:$PATH``)."""
    lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    env: dict[str, str] = {}
    known = dict(base or {})

    def expand(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: known.get(m.group(1) or m.group(2), ""), value)

    for line in joined.splitlines():
        m = re.match(r"^\s*ENV\s+(.*)$", line, re.IGNORECASE)
        if not m:
            continue
        body = m.group(1).strip()
        first = body.split(None, 1)[0] if body else ""
        if "=" not in first:  # legacy form: the rest of the line is the value
            k, _, v = body.partition(" ")
            pairs = [(k, v.strip())]
        else:
            pairs = [(k, v[1:-1] if v.startswith('"') and v.endswith('"') else v)
                     for k, v in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)', body)]
        for k, v in pairs:
            env[k] = known[k] = expand(v)
    return env


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _resolve_distributions(requirements: Sequence[str]) -> dict[str, md.Distribution]:
    """The installed distributions pinned by ``requirements`` and their requirement closure."""
    from packaging.requirements import Requirement

    found: dict[str, md.Distribution] = {}
    extras_of: dict[str, set[str]] = {}
    todo: list[tuple[Requirement, bool]] = [(Requirement(r), True) for r in requirements]
    problems: list[str] = []
    while todo:
        req, root = todo.pop()
        if root and req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # a pin for another platform or Python (universal lock files)
        key = _norm(req.name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            problems.append(f"{req} is not installed here" + ("" if root else " (a dependency)"))
            continue
        if root and req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{req.name} {dist.version} is installed, the pin is {req}")
        new_extras = set(req.extras) - extras_of.get(key, set())
        if key in found and not new_extras:
            continue
        found[key] = dist
        extras_of.setdefault(key, set()).update(req.extras)
        for spec in dist.requires or []:
            sub = Requirement(spec)
            envs = [{"extra": ""}, *({"extra": e} for e in sorted(extras_of[key]))]
            if sub.marker is None or any(sub.marker.evaluate(e) for e in envs):
                todo.append((sub, False))
    if problems:
        raise ValidationError("the environment does not match the requirements: " + "; ".join(sorted(set(problems))),
                              field="requirements")
    return found


def _mode(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644


def _site_dir() -> str:
    """Where this interpreter looks for installed packages under ``/usr/local`` (``site-packages``; Debian's
    patched interpreter uses ``dist-packages``), relative to the image root."""
    import site

    return site.getsitepackages([f"/{PREFIX}"])[0].lstrip("/")


def _python_items(base: Path) -> tuple[list[_Item], list[Path]]:
    """The interpreter under ``usr/local``; returns items and the binaries to scan with ldd."""
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    items: list[_Item] = []
    binaries: list[Path] = []
    exe = base / "bin" / ver
    if not exe.is_file():
        exe = Path(os.path.realpath(sys.executable))
    items.append(_Item(f"{PREFIX}/bin/{ver}", "file", source=exe, mode=0o755))
    binaries.append(exe)
    for alias in ("python3", "python"):
        items.append(_Item(f"{PREFIX}/bin/{alias}", "symlink", link=ver, mode=0o777))
    libdir = Path(sysconfig.get_config_var("LIBDIR") or base / "lib")
    ldlib = sysconfig.get_config_var("LDLIBRARY") or ""
    if ldlib.endswith(".so") or ".so." in ldlib:
        for p in sorted(libdir.glob(ldlib + "*")):
            if p.is_symlink():
                items.append(_Item(f"{PREFIX}/lib/{p.name}", "symlink", link=os.readlink(p), mode=0o777))
            elif p.is_file():
                items.append(_Item(f"{PREFIX}/lib/{p.name}", "file", source=p, mode=0o755))
                binaries.append(p)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for p in sorted(stdlib.rglob("*")):
        rel = p.relative_to(stdlib).as_posix()
        parts = rel.split("/")
        skipped = any(part in STDLIB_SKIP for part in parts) or (rel + "/").startswith(STDLIB_SKIP_DIRS)
        if skipped or p.name.startswith("_tkinter") or parts[0].startswith("config-") or p.suffix == ".pyc":
            continue
        dest = f"{PREFIX}/lib/{ver}/{rel}"
        if p.is_symlink():
            items.append(_Item(dest, "symlink", link=os.readlink(p), mode=0o777))
        elif p.is_file():
            items.append(_Item(dest, "file", source=p, mode=_mode(p.stat().st_mode)))
            if p.suffix == ".so" and not p.name.startswith("_tkinter"):
                binaries.append(p)
    items.append(_Item(_site_dir() + "/", "dir", mode=0o755))
    return items, binaries


def _site_items(dists: Mapping[str, md.Distribution]) -> tuple[list[_Item], list[Path]]:
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = _site_dir()
    items: dict[str, _Item] = {}
    binaries: list[Path] = []
    prefix = Path(sys.prefix).resolve()
    for dist in dists.values():
        for f in dist.files or []:
            rel = PurePosixPath(str(f))
            if "__pycache__" in rel.parts or rel.suffix == ".pyc":
                continue  # host bytecode (recompiled below)
            src = Path(str(dist.locate_file(f)))
            if ".." in rel.parts:  # data files and scripts under the environment's prefix (share/, bin/)
                real = Path(os.path.normpath(src.absolute()))
                try:
                    under = real.relative_to(prefix).as_posix()
                except ValueError:
                    continue  # outside the environment: not part of it
                dest = f"{PREFIX}/{under}"
                if under.startswith("bin/") and src.is_file():
                    head = src.read_bytes()
                    if head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0]:
                        body = head.split(b"\n", 1)[1] if b"\n" in head else b""
                        items[dest] = _Item(dest, "file", data=f"#!/{PREFIX}/bin/{ver}\n".encode() + body,
                                            mode=0o755)
                        continue
                if src.is_file() and not src.is_symlink():
                    items[dest] = _Item(dest, "file", source=src, mode=_mode(src.stat().st_mode))
                continue
            if src.is_symlink():
                items[f"{site}/{rel}"] = _Item(f"{site}/{rel}", "symlink", link=os.readlink(src), mode=0o777)
            elif src.is_file():
                items[f"{site}/{rel}"] = _Item(f"{site}/{rel}", "file", source=src, mode=_mode(src.stat().st_mode))
                if ".so" in rel.suffixes or rel.suffix == ".so":
                    binaries.append(src)
    return list(items.values()), binaries


def _package_items(packages: Sequence[Path], version_of: Callable[[str], tuple[str, str]]) -> list[_Item]:
    site = _site_dir()
    items: list[_Item] = []
    for pkg in packages:
        pkg = Path(pkg).resolve()
        if not (pkg / "__init__.py").is_file():
            raise ValidationError("not a Python package directory (no __init__.py)", file=str(pkg),
                                  field="--package")
        for p in sorted(pkg.rglob("*")):
            rel = p.relative_to(pkg.parent).as_posix()
            if "__pycache__" in p.parts or p.suffix == ".pyc" or not p.is_file():
                continue
            items.append(_Item(f"{site}/{rel}", "file", source=p, mode=0o644))
        dist_name, version = version_of(pkg.name)
        if dist_name:
            info = f"{site}/{dist_name.replace('-', '_')}-{version}.dist-info"
            meta = f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n".encode()
            items += [_Item(f"{info}/METADATA", "file", data=meta), _Item(f"{info}/INSTALLER", "file",
                                                                           data=b"hep-archive snapshot\n"),
                      _Item(f"{info}/top_level.txt", "file", data=f"{pkg.name}\n".encode())]
    return items


def _console_scripts(packages: Sequence[Path], ver: str) -> list[_Item]:
    """``/usr/local/bin`` scripts for the console entry points of the distributions the packages belong to
    (``hep-archive`` for the ``archive`` package), with the image's interpreter."""
    out: list[_Item] = []
    for pkg in packages:
        dist_name, _ = _package_dist(Path(pkg).resolve().name)
        if not dist_name:
            continue
        for ep in md.distribution(dist_name).entry_points.select(group="console_scripts"):
            module, _, attr = ep.value.partition(":")
            if module.split(".")[0] != Path(pkg).resolve().name or not attr:
                continue
            script = (f"#!/{PREFIX}/bin/{ver}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
                      f"sys.exit({attr}())\n")
            out.append(_Item(f"{PREFIX}/bin/{ep.name}", "file", data=script.encode(), mode=0o755))
    return out


@functools.cache
def _package_dist(top: str) -> tuple[str, str]:
    """(distribution name, version) that provides import package ``top`` here ('' when none)."""
    names = md.packages_distributions().get(top) or []
    for n in names:
        try:
            return n, md.version(n)
        except md.PackageNotFoundError:
            continue
    return "", ""


def _ldd(binaries: Sequence[Path]) -> tuple[set[str], set[str]]:
    """Every shared library (absolute path as the loader names it) the binaries need; and what is not found."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise MissingDependencyError("ldd", "install libc-bin (it provides ldd)")
    found: set[str] = set()
    missing: set[str] = set()
    uniq = sorted({str(b) for b in binaries})
    for i in range(0, len(uniq), 200):
        out = subprocess.run([ldd, *uniq[i:i + 200]], capture_output=True, text=True, check=False,
                             env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})
        for line in out.stdout.splitlines():
            if "=> not found" in line:
                missing.add(line.split("=>")[0].strip())
                continue
            m = _LDD_LINE.match(line)
            if m:
                found.add(m.group(1))
    return found, missing


def _host_path_items(path: str, copied: set[Path]) -> list[_Item]:
    """Items that make host ``path`` resolve the same way in the image: every symbolic link on the way
    (directory links such as ``lib -> usr/lib`` included) and the file it ends at, unless that file is already
    in the image (``copied``: real paths of the files the other layers copy, e.g. ``libpython`` or a wheel's
    bundled libraries)."""
    out: list[_Item] = []
    pending = [path]
    hops = 0
    while pending and hops < 64:
        hops += 1
        cur = PurePosixPath(pending.pop())
        parts = cur.parts[1:]
        so_far = PurePosixPath("/")
        for i, part in enumerate(parts):
            so_far = so_far / part
            host = Path(so_far)
            if host.is_symlink():
                target = os.readlink(host)
                out.append(_Item(str(so_far)[1:], "symlink", link=target, mode=0o777))
                resolved = (host.parent / target) if not target.startswith("/") else Path(target)
                rest = PurePosixPath(*parts[i + 1:]) if i + 1 < len(parts) else None
                nxt = PurePosixPath(os.path.normpath(resolved)) / rest if rest else PurePosixPath(
                    os.path.normpath(resolved))
                pending.append(str(nxt))
                break
        else:
            real = Path(str(cur))
            if Path(os.path.realpath(real)) in copied:
                continue
            if real.is_file():
                out.append(_Item(str(cur)[1:], "file", source=real, mode=_mode(real.stat().st_mode)))
    return out


def _compile_one(job: tuple[str, str]) -> tuple[str, bytes | None]:
    import marshal
    import warnings

    src_path, dfile = job
    try:
        source = Path(src_path).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings of third-party code are not ours to print
            code = compile(source, dfile, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError, OSError):
        return dfile, None  # templates and Python-2 leftovers ship as .py: no bytecode, as pip does
    header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + importlib.util.source_hash(source)
    # marshal format 2: no back-references, whose flags depend on reference counts in the compiling process
    # (format 3+), so the same source always gives the same bytes
    return dfile, header + marshal.dumps(code, MARSHAL_VERSION)


def _bytecode(items: Sequence[_Item], jobs: int) -> list[_Item]:
    """An unchecked-hash ``__pycache__/*.pyc`` for every ``.py`` file item."""
    tag = sys.implementation.cache_tag
    todo = [(str(it.source), "/" + it.path) for it in items
            if it.kind == "file" and it.source is not None and it.path.endswith(".py")]
    out: list[_Item] = []

    def add(dfile: str, data: bytes | None) -> None:
        if data is None:
            return
        p = PurePosixPath(dfile[1:])
        out.append(_Item(str(p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc"), "file", data=data))

    if jobs > 1 and len(todo) > 500:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for dfile, data in pool.map(_compile_one, todo, chunksize=64):
                add(dfile, data)
    else:
        for job in todo:
            add(*_compile_one(job))
    return out


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through (``tarfile`` writes into it)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.h = MultiHasher()

    def write(self, b: bytes) -> int:
        self.h.update(b)
        return self.f.write(b)

    def tell(self) -> int:
        return self.h.size


def _with_parents(items: Iterable[_Item]) -> list[_Item]:
    by_path: dict[str, _Item] = {}
    for it in items:
        by_path.setdefault(it.path.rstrip("/"), it)
    dirs: set[str] = set()
    for p in list(by_path):
        parent = PurePosixPath(p).parent
        while str(parent) not in (".", "/", ""):
            dirs.add(str(parent))
            parent = parent.parent
    for d in dirs:
        cur = by_path.get(d)
        if cur is None:
            by_path[d] = _Item(d + "/", "dir", mode=0o755)
    return [by_path[k] for k in sorted(by_path)]


def _write_layer(blobs: Path, items: Sequence[_Item], *, durable: bool = True) -> tuple[str, int]:
    """Write one uncompressed, deterministic layer tar into ``blobs``; returns (digest, size)."""
    tmp = blobs / f".layer-{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as raw:
        w = _HashingWriter(raw)
        with tarfile.open(fileobj=w, mode="w", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
            for it in items:
                info = tarfile.TarInfo(it.path.rstrip("/") + ("/" if it.kind == "dir" else ""))
                info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = MTIME, 0, 0, "", "", it.mode
                if it.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif it.kind == "symlink":
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, it.link, 0o777
                    tar.addfile(info)
                elif it.data is not None:
                    info.size = len(it.data)
                    tar.addfile(info, io.BytesIO(it.data))
                else:
                    assert it.source is not None
                    with open(it.source, "rb") as f:
                        info.size = os.fstat(f.fileno()).st_size
                        tar.addfile(info, f)
        raw.flush()
        if durable:
            os.fsync(raw.fileno())
    digest = w.h.sha256
    os.replace(tmp, blobs / hex_of(digest))
    return digest, w.h.size


def build_snapshot_oci(
    out_dir: Path, requirements: Sequence[str], *, packages: Sequence[Path] = (), title: str = "snapshot",
    env: Mapping[str, str] | None = None, jobs: int = 2, log: Callable[[str], None] | None = None,
    tag: str = "latest", durable: bool = True,
) -> SnapshotReport:
    """Write an OCI image layout of this Python environment to ``out_dir`` (absent or empty).

    Args:
        out_dir: the layout directory to create.
        requirements: pip requirement strings; every one must be installed here within its pin.
        packages: local package directories (the analysis code) to install into the image.
        title: ``org.opencontainers.image.title`` of the image.
        env: variables for the image config (e.g. a Containerfile's ``ENV`` lines) over ``PATH``,
            ``LD_LIBRARY_PATH`` and ``LANG``.
        jobs: processes compiling bytecode.
        log: receives progress lines.
        tag: the ``org.opencontainers.image.ref.name`` of the image in ``index.json``.
        durable: fsync each layer (off for a layout that is copied into a store and deleted).

    Returns:
        A :class:`SnapshotReport` (manifest digest, distributions, layer sizes, host libraries copied).
    """
    say = log or (lambda line: None)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValidationError("output directory is not empty; give a new directory", file=str(out))
    dists = _resolve_distributions(requirements)
    say(f"{len(dists)} distributions: {', '.join(sorted(dists))}")
    base_prefix = Path(sys.base_prefix)
    py_items, py_bins = _python_items(base_prefix)
    site_items, site_bins = _site_items(dists)
    pkg_items = _package_items(packages, _package_dist)
    needed, unresolved = _ldd(py_bins + site_bins)
    shipped = {PurePosixPath(it.path).name for it in site_items}
    unresolved = {u for u in unresolved if u not in shipped}  # found at run time through the loader's RPATH
    copied = {Path(os.path.realpath(it.source)) for it in (*py_items, *site_items) if it.source is not None}
    libs: dict[str, _Item] = {}
    for lib in sorted(needed):
        for it in _host_path_items(lib, copied):
            libs.setdefault(it.path, it)
    say(f"{sum(1 for i in libs.values() if i.kind == 'file')} host libraries; compiling bytecode ({jobs} jobs)")
    busybox = find_busybox()
    base: list[_Item] = [
        _Item("usr/bin/busybox", "file", source=busybox, mode=0o755),
        *(_Item(f"usr/bin/{a}", "symlink", link="busybox", mode=0o777) for a in BUSYBOX_APPLETS),
        _Item("etc/passwd", "file", data=b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"),
        _Item("etc/group", "file", data=b"root:x:0:\nuser:x:1000:\n"),
        _Item("tmp/", "dir", mode=0o1777), _Item("root/", "dir", mode=0o700),
    ]
    top_links = ("bin", "sbin", "lib", "lib64")  # merged /usr, with the host's targets where it has them
    base += [_Item(d, "symlink", link=os.readlink("/" + d) if Path("/" + d).is_symlink() else f"usr/{d}",
                   mode=0o777) for d in top_links]
    libs = {p: it for p, it in libs.items() if p not in top_links}
    py_layer = py_items + list(libs.values())
    py_layer += _bytecode(py_items, jobs)
    site_layer = site_items + _bytecode(site_items, jobs)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    pkg_layer = pkg_items + _bytecode(pkg_items, jobs) + _console_scripts(packages, ver)
    out.mkdir(parents=True, exist_ok=True)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    layers: list[dict[str, Any]] = []
    named = (("base", base), ("python", py_layer), ("site-packages", site_layer), ("analysis", pkg_layer))
    for name, items in named:
        if not items:
            continue
        digest, size = _write_layer(blobs, _with_parents(items), durable=durable)
        layers.append({"name": name, "digest": digest, "size": size, "entries": len(items)})
        say(f"layer {name}: {len(items)} entries, {size / 1e6:.1f} MB")
    distributions = {d.metadata["Name"]: d.version for d in dists.values()}
    package_names = [Path(p).resolve().name for p in packages]
    cfg_env = {**DEFAULT_ENV, **(env or {})}
    python = sys.version.split()[0]
    config = {
        "created": "2000-01-01T00:00:00Z", "architecture": goarch(), "os": "linux",
        "config": {
            "Env": [f"{k}={v}" for k, v in cfg_env.items()], "Cmd": [f"/{PREFIX}/bin/{ver}"], "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": title,
                "org.hep-archive.snapshot.python": python,
                "org.hep-archive.snapshot.distributions": json.dumps(distributions, sort_keys=True),
                "org.hep-archive.snapshot.packages": ",".join(package_names),
            },
        },
        # diff_ids equal the layer digests: the layers are uncompressed
        "rootfs": {"type": "layers", "diff_ids": [la["digest"] for la in layers]},
        "history": [{"created": "2000-01-01T00:00:00Z", "created_by": f"hep-archive container snapshot: {la['name']}"}
                    for la in layers],
    }
    dm = write_layout(out, config, [(OCI_LAYER, la["digest"], la["size"]) for la in layers], tag=tag,
                      annotations={"org.opencontainers.image.title": title})
    return SnapshotReport(layout=out, manifest_digest=dm, python=python, distributions=distributions,
                          packages=package_names, layers=layers,
                          libraries=sorted(p for p, it in libs.items() if it.kind == "file"),
                          unresolved=sorted(unresolved))


def snapshot_image(
    archive: Archive, name: str, *, version: str | None = None, requirements: Path | None = None,
    packages: Sequence[Path] = (), definition: Path | None = None, metadata: Mapping[str, Any] | None = None,
    jobs: int = 2, log: Callable[[str], None] | None = None,
) -> tuple[ContainerRecord, SnapshotReport]:
    """Build a snapshot image of this environment and add it to ``archive`` as ``container/NAME``.

    The definition folder ``containers/NAME/`` supplies the defaults: ``requirements.txt`` (the pins) and the
    ``Containerfile`` (its ``ENV`` lines go into the image config; it and every file beside it are listed in the
    record, so the image can also be rebuilt with a registry). The layout is written under the archive's state
    directory and removed after ``add_image`` stored its blobs.

    Args:
        archive: the archive.
        name: the record name (``container/NAME``).
        version: the record version (default: reuse the latest when it has the same manifest digest).
        requirements: the pip requirements file (default ``containers/NAME/requirements.txt``).
        packages: local package directories to install into the image (the analysis code).
        definition: the Containerfile (default ``containers/NAME/Containerfile`` when present).
        metadata: envelope fields of the record (creators, license, description, usage, ...).
        jobs: processes compiling bytecode.
        log: receives progress lines.

    Returns:
        ``(container record, snapshot report)``.
    """
    from archive.container._images import _find_definition, add_image

    folder = archive.root / "containers" / name
    req = Path(requirements) if requirements is not None else folder / "requirements.txt"
    if not req.is_file():
        raise ValidationError("requirements file does not exist; pass --requirements FILE with the pinned "
                              "distributions the image must hold", file=str(req), field="requirements")
    def_path = _find_definition(archive, name, definition)
    env = containerfile_env(def_path, DEFAULT_ENV) if def_path is not None else {}
    work = archive.state_dir / "containers" / f".snapshot-{uuid.uuid4().hex}"
    try:
        report = build_snapshot_oci(work / "layout", read_requirements(req), packages=packages, title=name,
                                    env=env, jobs=jobs, log=log, tag=version or "latest",
                                    durable=False)
        listing = ", ".join(f"{k} {v}" for k, v in sorted(report.distributions.items(), key=lambda kv: kv[0].lower()))
        meta = dict(metadata or {})
        meta["description"] = ((str(meta.get("description") or "").strip() + "\n\n") if meta.get("description")
                               else "") + (
            f"Snapshot image of a Python {report.python} environment built offline by `hep-archive container "
            f"snapshot` from {req.name}" + (f" and {def_path.name}" if def_path else "") + ": "
            + (f"the packages {', '.join(report.packages)} and " if report.packages else "")
            + f"{len(report.distributions)} distributions ({listing}).")
        record = add_image(archive, report.layout, name=name, version=version, definition=def_path,
                           title=str(meta.pop("title", "")) or None, metadata=meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record, report
