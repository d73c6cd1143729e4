"""Container images: capture by digest, keep byte for byte, unpack safely, run in a sandbox.

What this layer is: reading OCI image layouts, OCI archives and docker-archives (``add_image``), storing their
manifest, config and layer blobs unchanged in the object store with a ``container`` record, snapshot images of
the running Python environment built offline (``snapshot_image``: no registry needed), writing them back
as an OCI archive (``export_image``), a safe pure-Python layer unpacker with a digest-keyed cache
(``unpacked_root``), and runners (bwrap, podman, docker, apptainer, local) behind one interface
(``get_runner``, ``SandboxSpec``, ``RunOutcome``).

What it is not: a registry client (nothing is ever pulled or pushed), a general image builder (no ``RUN``),
or the workflow engine, which decides what to run and records provenance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archive.container._images import (
    add_image,
    container_record,
    export_image,
    image_env,
    list_images,
    run_image,
    unpacked_root,
)
from archive.container._runners import (
    DEFAULT_PATH,
    Mount,
    Runner,
    RunnerInfo,
    RunOutcome,
    SandboxSpec,
    available_runners,
    get_runner,
)
from archive.container._unpack import UnpackReport, unpack_layers

__all__ = [
    "DEFAULT_PATH",
    "Mount",
    "RunOutcome",
    "Runner",
    "RunnerInfo",
    "SandboxSpec",
    "SnapshotReport",
    "UnpackReport",
    "add_image",
    "available_runners",
    "build_snapshot_oci",
    "container_record",
    "export_image",
    "get_runner",
    "image_env",
    "list_images",
    "run_image",
    "snapshot_image",
    "unpack_layers",
    "unpacked_root",
]

if TYPE_CHECKING:
    from archive.container._snapshot import SnapshotReport, build_snapshot_oci, snapshot_image

_LAZY = {"SnapshotReport", "build_snapshot_oci", "snapshot_image"}  # multiprocessing, importlib.metadata


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from archive.container import _snapshot

        return getattr(_snapshot, name)
    raise AttributeError(f"module 'archive.container' has no attribute {name!r}")
