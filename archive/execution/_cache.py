"""The step cache: content-addressed keys, entries mapping a key to the digests of the step's outputs.

A key is ``sha256(canonical_json({engine version, image digest, shell, commands after substitution,
allow-listed env, declared input paths -> content digests, declared output paths, device class}))``. Never
mtimes. Entries live in ``<archive>/.hep-archive/cache/steps/<hex>.json``; the output bytes are objects in the
archive's store, so a restore is a verified copy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive._fsutil import atomic_write_text
from archive.digest import canonical_json, digest_file, digest_json, hex_of
from archive.errors import ExecutionError

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["CacheEntry", "StepCache", "path_digests", "step_key"]


def path_digests(workspace: Path, rel: str) -> dict[str, tuple[str, int]]:
    """``{relative file path: (sha256, size)}`` for a file, or every file below a directory (sorted)."""
    p = workspace / rel
    if p.is_symlink():
        raise ExecutionError(f"{rel} is a symbolic link; declared files must be regular files", field=rel)
    if p.is_file():
        h = digest_file(p)
        return {rel: (h.sha256, h.size)}
    if p.is_dir():
        out: dict[str, tuple[str, int]] = {}
        for f in sorted(p.rglob("*")):
            if f.is_symlink():
                raise ExecutionError(f"{f.relative_to(workspace)} is a symbolic link inside a declared folder",
                                     field=rel)
            if f.is_file():
                h = digest_file(f)
                out[f.relative_to(workspace).as_posix()] = (h.sha256, h.size)
        return out
    return {}


def step_key(*, engine_version: str, image_digest: str, shell: str, commands: Sequence[str],
             env: Mapping[str, str], inputs: Mapping[str, str], outputs: Sequence[str], device: str) -> str:
    """The content-addressed cache key of one step (see the module docstring)."""
    return digest_json({
        "engine": engine_version, "image": image_digest, "shell": shell, "commands": list(commands),
        "env": dict(sorted(env.items())), "inputs": dict(sorted(inputs.items())), "outputs": sorted(outputs),
        "device": device,
    })


@dataclass(frozen=True)
class CacheEntry:
    key: str
    outputs: dict[str, tuple[str, int]]
    stdout: str
    stderr: str
    devices: list[dict[str, Any]]


class StepCache:
    """Cache entries of one archive (``<root>/.hep-archive/cache/steps``)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.dir = archive.state_dir / "cache" / "steps"

    def _path(self, key: str) -> Path:
        return self.dir / f"{hex_of(key)}.json"

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` when it exists and every object it names is still stored."""
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text())
            entry = CacheEntry(key, {k: (v[0], int(v[1])) for k, v in data["outputs"].items()},
                               data["stdout"], data["stderr"], list(data.get("devices", [])))
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # a damaged entry is a miss, never an error
        digests = [d for d, _ in entry.outputs.values()] + [entry.stdout, entry.stderr]
        if not all(self.archive.store.exists(d) for d in digests):
            return None
        return entry

    def put(self, entry: CacheEntry) -> None:
        data = {"key": entry.key, "outputs": {k: list(v) for k, v in sorted(entry.outputs.items())},
                "stdout": entry.stdout, "stderr": entry.stderr, "devices": entry.devices}
        atomic_write_text(self._path(entry.key), canonical_json(data).decode() + "\n")

    def restore(self, entry: CacheEntry, workspace: Path) -> None:
        """Copy the entry's outputs into the workspace (each copy verified against its digest)."""
        for rel, (digest, _size) in entry.outputs.items():
            target = workspace / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.restore")
            with self.archive.open_object(digest) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
