"""What a run record says about the machine: host, package versions, accelerators."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

from archive.digest import digest_bytes

__all__ = ["PACKAGES", "gpu_names", "host_info", "package_versions"]

PACKAGES = ("hep-archive", "numpy", "pyarrow", "onnxruntime", "onnxruntime-gpu", "torch", "scipy", "uproot",
            "awkward", "pydantic", "reana-client")


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()[:500] or None
    except OSError:
        return None
    return None


def gpu_names() -> list[str]:
    """NVIDIA GPUs seen by the driver (``/proc/driver/nvidia/gpus``), without running any tool."""
    root = Path("/proc/driver/nvidia/gpus")
    out: list[str] = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            info = d / "information"
            try:
                for line in info.read_text().splitlines():
                    if line.startswith("Model:"):
                        out.append(line.split(":", 1)[1].strip()[:500])
            except OSError:
                continue
    return out


def has_gpu() -> bool:
    return bool(gpu_names()) or Path("/dev/nvidia0").exists()


def host_info() -> dict[str, Any]:
    u = platform.uname()
    return {
        "hostname_digest": digest_bytes(socket.gethostname().encode()),
        "system": u.system or "unknown", "kernel": u.release or "unknown", "machine": u.machine or "unknown",
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "gpus": gpu_names(),
        "python": platform.python_version(),
    }


def package_versions() -> dict[str, str]:
    """Versions of the packages a run record lists (looked up once per process)."""
    return dict(_package_versions())


@lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def report_device(framework: str, device: str, *, providers: list[str] | None = None, version: str | None = None,
                  options: dict[str, Any] | None = None) -> bool:
    """From inside a step: record the accelerator a framework actually used (one JSON line appended to
    ``$HEP_ARCHIVE_PROVENANCE``; the engine puts it into the step's ``devices``). False outside a run."""
    import json

    target = os.environ.get("HEP_ARCHIVE_PROVENANCE")
    if not target:
        return False
    line = {"framework": framework, "device": device, "providers": list(providers or []), "version": version,
            "options": dict(options or {})}
    p = Path(target)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as f:
        f.write(json.dumps({k: v for k, v in line.items() if v is not None}) + "\n")
    return True


def report_onnxruntime(session: Any) -> bool:
    """Record the providers an onnxruntime ``InferenceSession`` really uses (ORT falls back to CPU silently)."""
    import onnxruntime

    providers = list(session.get_providers())
    device = "cuda" if "CUDAExecutionProvider" in providers else "cpu"
    opts = session.get_provider_options()
    return report_device("onnxruntime", device, providers=providers, version=onnxruntime.__version__,
                         options={k: dict(v) for k, v in opts.items()})
