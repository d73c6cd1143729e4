"""The safe layer unpacker: applies OCI layers in order into a directory and never writes outside it.

Rules (see docs/containers.md):

* names are container-root relative; ``..`` components, absolute names and NUL bytes are **refused**;
* parent components are resolved without following host symlinks: a symlink met on the way is resolved
  *inside the image root* (chroot semantics, at most 40 links); a relative link climbing above the root is
  **refused**; an absolute one (``etc -> /outside``) is **neutralised** (it lands inside the root);
* symlinks are kept as they are (absolute targets included); an entry replaces an existing symlink, never
  writes through it;
* hardlinks must name an existing regular file inside the root (absolute or ``..`` targets are refused);
* device nodes and FIFOs are skipped; setuid, setgid (and sticky on files) bits are dropped; owners ignored;
* whiteouts: ``.wh.NAME`` deletes NAME from lower layers, ``.wh..wh..opq`` empties its directory of lower
  entries; entries of the same layer are never hidden;
* decompression bombs: unpacking stops with a refusal as soon as the bytes written exceed ``max_ratio`` times
  the (compressed) bytes read (past a floor of ``min_budget``), or the image exceeds ``max_members`` entries;
  a refused unpack happens in a temporary directory that is discarded, so nothing of it stays.

Refusals raise :class:`~archive.errors.UnsafeInputError` with one line; neutralisations are listed in
:class:`UnpackReport.notes`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from archive.errors import MissingDependencyError, UnsafeInputError

__all__ = ["LayerSource", "UnpackReport", "ensure_mountpoint", "open_layer_stream", "unpack_layers", "write_skeleton"]

MAX_LINK_HOPS = 40
MAX_RATIO = 200.0  # real layers expand 2-10x; a bomb expands 1000x
MIN_BUDGET = 1 << 30  # below 1 GiB unpacked, no ratio applies
MAX_MEMBERS = 2_000_000
WH = ".wh."
OPAQUE = ".wh..wh..opq"

#: a layer to unpack: a tar file path, or (label, opener) where opener returns a binary stream
LayerSource = Path | tuple[str, Callable[[], BinaryIO]]


@dataclass
class UnpackReport:
    """What the unpacker did: counts, and one line per neutralised entry."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    whiteouts: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        if len(self.notes) < 1000:
            self.notes.append(line)


class _Refused(Exception):
    pass


class _Decompressed(io.RawIOBase):
    """A zstd-decompressing reader (gzip, bzip2 and xz are handled by tarfile itself)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        try:
            import zstandard  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise MissingDependencyError("zstd layer support", "pip install zstandard") from None
        self._reader = zstandard.ZstdDecompressor().stream_reader(raw)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._reader.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Counting(io.RawIOBase):
    """Counts the (compressed) bytes read from a layer blob."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.count += n
        return n


@contextmanager
def open_layer_stream(raw: BinaryIO) -> Iterator[tarfile.TarFile]:
    """A streaming tar reader over a layer blob: plain tar, gzip, bzip2, xz or zstd (sniffed)."""
    buffered: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type,type-var,unused-ignore]
    head = buffered.peek(4)[:4]
    src: Any = buffered
    if head == b"\x28\xb5\x2f\xfd":
        src = io.BufferedReader(_Decompressed(buffered))
    try:
        tar = tarfile.open(fileobj=src, mode="r|*")  # noqa: SIM115
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise UnsafeInputError(f"not a readable tar layer: {exc}") from None
    with tar:
        yield tar


# --- path resolution inside the root ---------------------------------------------------------------------
def _split_member(name: str) -> list[str]:
    """Container-relative components of a member name; refuses absolute names, ``..`` and NUL."""
    if "\x00" in name:
        raise _Refused("name contains a NUL byte")
    if name.startswith("/"):
        raise _Refused("absolute name (layers must use root-relative names)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("'..' component climbs out of the image root")
    return parts


def _resolve_dir(root: Path, parts: Sequence[str], *, create: bool, report: UnpackReport | None = None,
                 label: str = "") -> Path | None:
    """The host directory for container path ``parts``, following symlinks inside ``root`` only.

    Missing components are created as directories when ``create`` (else None is returned)."""
    resolved: list[str] = []
    pending: deque[str] = deque(parts)
    hops = 0
    while pending:
        c = pending.popleft()
        if c in ("", "."):
            continue
        if c == "..":
            if not resolved:
                raise _Refused("a symlink on the way climbs above the image root")
            resolved.pop()
            continue
        host = root.joinpath(*resolved, c)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(host, 0o755)
            except FileExistsError:  # created concurrently (mount points): look again
                pending.appendleft(c)
                continue
            resolved.append(c)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise _Refused(f"more than {MAX_LINK_HOPS} symlinks on the way (a loop?)")
            target = os.readlink(host)
            if target.startswith("/"):
                if report is not None:
                    report.note(f"{label}: parent symlink {'/'.join([*resolved, c])} -> {target} resolved inside "
                                "the image root")
                resolved = []
            pending.extendleft(reversed(target.split("/")))
            continue
        if stat.S_ISDIR(st.st_mode):
            resolved.append(c)
            continue
        raise _Refused(f"parent {'/'.join([*resolved, c])} is not a directory")
    return root.joinpath(*resolved)


def _remove(path: Path) -> None:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        _make_writable_tree(path)
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _make_writable_tree(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    os.chmod(path, 0o755)


def _clear_replaced(path: Path, *, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if keep_dir and stat.S_ISDIR(st.st_mode):
        return
    _remove(path)


def _opaque(root: Path, dir_path: Path, created: set[str]) -> None:
    """Remove the lower-layer entries of ``dir_path`` (entries created by this layer stay)."""
    for child in sorted(os.listdir(dir_path)):
        p = dir_path / child
        rel = p.relative_to(root).as_posix()
        if rel in created:
            if os.path.isdir(p) and not os.path.islink(p):
                _opaque(root, p, created)
            continue
        _remove(p)


def _safe_mode(mode: int, label: str, report: UnpackReport, *, is_dir: bool) -> int:
    if mode & (stat.S_ISUID | stat.S_ISGID):
        report.note(f"{label}: setuid/setgid bit dropped")
    keep = 0o1777 if is_dir else 0o777
    return (mode & keep) | (0o700 if is_dir else 0o600)


def _apply_member(root: Path, tar: tarfile.TarFile, m: tarfile.TarInfo, layer: str, created: set[str],
                  report: UnpackReport, account: Callable[[int], None] = lambda n: None) -> None:
    label = f"{layer}: {m.name!r}"
    parts = _split_member(m.name)
    if not parts:
        return  # the root directory itself
    base = parts[-1]
    if base.startswith(WH):
        report.whiteouts += 1
        parent = _resolve_dir(root, parts[:-1], create=False, report=report, label=label)
        if parent is None:
            return
        if base == OPAQUE:
            _opaque(root, parent, created)
            return
        name = base[len(WH):]
        if name in ("", ".", ".."):
            raise _Refused("whiteout of an invalid name")
        target = parent / name
        if target.relative_to(root).as_posix() in created:
            return
        if os.path.lexists(target):
            _remove(target)
        return
    if m.ischr() or m.isblk() or m.isfifo():
        report.skipped += 1
        report.note(f"{label}: {'device node' if not m.isfifo() else 'FIFO'} skipped")
        return
    if not (m.isdir() or m.isreg() or m.issym() or m.islnk()):
        report.skipped += 1
        report.note(f"{label}: unsupported entry type {m.type!r} skipped")
        return
    parent = _resolve_dir(root, parts[:-1], create=True, report=report, label=label)
    assert parent is not None
    target = parent / base
    rel = target.relative_to(root).as_posix()
    if m.isdir():
        _clear_replaced(target, keep_dir=True)
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
        os.chmod(target, _safe_mode(m.mode, label, report, is_dir=True))
        report.dirs += 1
    elif m.isreg():
        _clear_replaced(target, keep_dir=False)
        src = tar.extractfile(m)
        assert src is not None
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out, src:
            while chunk := src.read(1 << 20):
                account(len(chunk))  # bytes actually decompressed so far, against the bomb limits
                out.write(chunk)
        os.chmod(target, _safe_mode(m.mode, label, report, is_dir=False))
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)
        report.files += 1
    elif m.issym():
        if "\x00" in m.linkname:
            raise _Refused("symlink target contains a NUL byte")
        _clear_replaced(target, keep_dir=False)
        os.symlink(m.linkname, target)
        report.symlinks += 1
    else:  # hardlink
        link = m.linkname
        if link.startswith("/"):
            raise _Refused(f"hardlink to the absolute path {link!r} (hardlinks must name a file in the layer)")
        lparts = _split_member(link)
        if not lparts:
            raise _Refused("hardlink to the image root")
        lparent = _resolve_dir(root, lparts[:-1], create=False)
        src_path = None if lparent is None else lparent / lparts[-1]
        if src_path is None or not os.path.lexists(src_path) or not stat.S_ISREG(os.lstat(src_path).st_mode):
            raise _Refused(f"hardlink target {link!r} is not an existing regular file inside the image root")
        if src_path == target:
            return
        _clear_replaced(target, keep_dir=False)
        os.link(src_path, target, follow_symlinks=False)
        report.hardlinks += 1
    created.add(rel)


def _open_source(src: LayerSource) -> tuple[str, BinaryIO]:
    if isinstance(src, tuple):
        return src[0], src[1]()
    return str(src), open(src, "rb")


def _drain(raw: BinaryIO) -> None:
    with contextlib.suppress(OSError, ValueError):
        while raw.read(1 << 20):
            pass


def unpack_layers(
    layers: Sequence[LayerSource], target: Path, *, report: UnpackReport | None = None,
    max_ratio: float = MAX_RATIO, min_budget: int = MIN_BUDGET, max_members: int = MAX_MEMBERS,
) -> UnpackReport:
    """Apply ``layers`` in order into ``target`` (an existing directory), safely.

    Args:
        layers: tar files (paths) or ``(label, opener)`` pairs; compressed layers are detected.
        target: the directory to unpack into; nothing is ever created outside it.
        report: a report to add to (a new one by default).
        max_ratio, min_budget, max_members: decompression-bomb limits (see the module docstring).

    Returns:
        The report (counts and neutralised entries).

    Raises:
        UnsafeInputError: a member is refused (``..``, absolute name, escaping symlink, bad hardlink, bomb).
        IntegrityError: a verifying stream found the blob corrupt.
    """
    report = report if report is not None else UnpackReport()
    root = Path(target).absolute()
    if not root.is_dir() or root.is_symlink():
        raise UnsafeInputError("unpack target must be an existing directory (not a symlink)", file=str(root))
    read_before = unpacked = members = 0
    for src in layers:
        label, raw = _open_source(src)
        created: set[str] = set()
        counting = _Counting(raw)
        with raw, open_layer_stream(counting) as tar:  # type: ignore[arg-type]
            try:
                for m in tar:
                    members += 1

                    def account(n: int, m: tarfile.TarInfo = m, label: str = label, c: _Counting = counting,
                                before: int = read_before, count: int = members) -> None:
                        nonlocal unpacked
                        unpacked += n
                        read = before + c.count
                        if unpacked > max(min_budget, max_ratio * read) or count > max_members:
                            raise UnsafeInputError(
                                f"layer refused: member {m.name!r}: expands to {unpacked} bytes in {count} "
                                f"entries from {read} bytes read (a decompression bomb? the limits are "
                                f"{max_ratio:g}x beyond {min_budget} bytes and {max_members} entries)",
                                file=label,
                            )

                    account(0)
                    try:
                        _apply_member(root, tar, m, label, created, report, account)
                    except _Refused as why:
                        raise UnsafeInputError(f"layer refused: member {m.name!r}: {why}", file=label) from None
            except (tarfile.TarError, zlib.error, EOFError) as exc:
                _drain(raw)  # a corrupt blob is reported as such (IntegrityError), not as a bad tar
                raise UnsafeInputError(f"layer is not a valid tar stream: {exc}", file=label) from None
            _drain(raw)  # verifying readers check the digest at EOF
        read_before += counting.count
    return report


def ensure_mountpoint(root: Path, target: str, *, directory: bool) -> Path:
    """Create the mount point ``target`` inside an image root (resolving symlinks inside the root)."""
    try:
        parts = _split_member(target.lstrip("/"))
        if not parts:
            return root
        parent = _resolve_dir(root, parts[:-1], create=True)
    except _Refused as why:
        raise UnsafeInputError(f"mount point {target!r}: {why}", file=str(root)) from None
    assert parent is not None
    p = parent / parts[-1]
    if os.path.lexists(p):
        if os.path.islink(p):
            _remove(p)
        else:
            return p
    with contextlib.suppress(FileExistsError):  # another run may create it at the same time
        if directory:
            os.mkdir(p, 0o755)
        else:
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
    return p


def _write_if_absent(root: Path, path: str, text: str) -> None:
    parts = _split_member(path)
    parent = _resolve_dir(root, parts[:-1], create=True)
    assert parent is not None
    p = parent / parts[-1]
    if os.path.lexists(p):
        return
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_skeleton(root: Path) -> None:
    """The runtime skeleton: ``proc dev sys tmp workspace run var/tmp`` and
    ``etc/{hosts,hostname,resolv.conf,passwd,group}``
    (existing files are kept; a uid-1000 user is added for REANA parity when passwd has none)."""
    try:
        for d in ("proc", "dev", "sys", "tmp", "workspace", "run", "var/tmp"):
            ensure_mountpoint(root, "/" + d, directory=True)
        _write_if_absent(root, "etc/hosts", "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n")
        _write_if_absent(root, "etc/hostname", "sandbox\n")
        _write_if_absent(root, "etc/resolv.conf", "")
        _write_if_absent(root, "etc/group", "root:x:0:\n")
        _write_if_absent(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        parent = _resolve_dir(root, ["etc"], create=True)
        assert parent is not None
        passwd = parent / "passwd"
        if not passwd.is_symlink() and passwd.is_file():
            text = passwd.read_text(errors="replace")
            if not any(line.split(":")[2:3] == ["1000"] for line in text.splitlines()):
                with open(passwd, "a") as f:
                    f.write(("" if text.endswith("\n") or not text else "\n")
                            + "reana:x:1000:0:reana:/workspace:/bin/sh\n")
    except _Refused as why:
        raise UnsafeInputError(f"runtime skeleton: {why}", file=str(root)) from None
