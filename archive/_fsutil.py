"""Small filesystem helpers shared by every layer: atomic writes and semantic-version sorting."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from packaging.version import InvalidVersion, Version

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_dir", "semver_key"]


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f".{p.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
        fsync_dir(p.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def semver_key(version: str) -> tuple[int, Version | str]:
    """Sort key for semantic versions (packaging's ordering; unparsable strings sort first)."""
    try:
        return (1, Version(version.replace("-", "").split("+")[0]))
    except InvalidVersion:
        return (0, version)
