"""onnxruntime sessions with deterministic settings and honest provider reporting.

CPU sessions use a fixed number of intra-op threads, one inter-op thread, sequential execution and
``use_deterministic_compute``, so the same inputs give bitwise-identical outputs on every rerun. A CUDA request
lists ``CUDAExecutionProvider`` then ``CPUExecutionProvider``; when onnxruntime cannot use CUDA (a CPU-only build,
no driver, a failed provider start) it falls back to CPU, and :class:`SessionInfo` says so instead of hiding it."""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from archive.errors import ExecutionError, MissingDependencyError, ValidationError

__all__ = ["Device", "SessionInfo", "make_session", "runtime_versions"]

Device = Literal["cpu", "cuda"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class SessionInfo:
    """Which execution providers were asked for, which onnxruntime has and which it actually uses."""

    device: str
    requested: list[str]
    available: list[str]
    used: list[str]
    fallback: str | None = None            # why the requested device was not used, or None
    warnings: list[str] = field(default_factory=list)
    onnxruntime: str = ""
    threads: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def runtime_versions() -> dict[str, str]:
    """Versions of the runtimes that matter for reproducing a model's outputs."""
    import numpy as np
    import onnxruntime as ort

    return {"onnxruntime": ort.__version__, "numpy": np.__version__}


def _import_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a core dependency
        raise MissingDependencyError("onnxruntime", "pip install onnxruntime (or onnxruntime-gpu for CUDA)") from None
    return ort


def make_session(model: Path, *, device: Device = "cpu", threads: int = 1, label: str | None = None
                 ) -> tuple[Any, SessionInfo]:
    """An ``onnxruntime.InferenceSession`` for ``model`` on ``device``, with deterministic CPU settings.

    Args:
        model: the ONNX file (external data files beside it).
        device: ``cpu`` or ``cuda`` (CUDA, falling back to CPU — reported in ``SessionInfo.fallback``).
        threads: intra-op threads; fixed so that CPU results are bitwise stable across reruns.
        label: how to name the model in errors.

    Returns:
        ``(session, SessionInfo)``.
    """
    ort = _import_ort()
    if device not in ("cpu", "cuda"):
        raise ValidationError(f"unknown device {device!r}; use cpu or cuda", field="device")
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.use_deterministic_compute = True
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = list(ort.get_available_providers())
    if device == "cuda":
        requested: list[Any] = [(CUDA, {"cudnn_conv_algo_search": "DEFAULT", "use_tf32": "0"}), CPU]
    else:
        requested = [CPU]
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            sess = ort.InferenceSession(str(model), so, providers=requested)
        except Exception as err:  # onnxruntime raises its own pybind exception types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            first = re.sub(r"/onnxruntime_src/\S+:\d+ [^)]*\)+ ", "", first).replace("[ONNXRuntimeError] : ", "")
            if "IR version" in first:
                first += f"; re-save the model with an IR version onnxruntime {ort.__version__} supports"
            raise ExecutionError(f"onnxruntime cannot load the model: {first[:400]}",
                                 file=label or str(model)) from None
        caught = [str(w.message).replace("\n", " ") for w in ws]
    used = list(sess.get_providers())
    names = [r[0] if isinstance(r, tuple) else r for r in requested]
    fallback = None
    if device == "cuda" and CUDA not in used:
        if CUDA not in available:
            fallback = (f"CUDA requested but this onnxruntime build has no {CUDA} (available: {', '.join(available)}); "
                        f"ran on {', '.join(used)} instead — install onnxruntime-gpu on a machine with a GPU")
        else:
            fallback = (f"CUDA requested and {CUDA} is built in, but it could not start (driver, CUDA or cuDNN "
                        f"missing?); onnxruntime fell back to {', '.join(used)}")
    info = SessionInfo(device=device, requested=names, available=available, used=used, fallback=fallback,
                       warnings=caught, onnxruntime=ort.__version__, threads=so.intra_op_num_threads)
    return sess, info
