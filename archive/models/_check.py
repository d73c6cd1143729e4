"""Reference vectors: run the stored inputs through onnxruntime and compare with the expected outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.digest import digest_bytes
from archive.errors import ValidationError
from archive.models._runtime import Device, SessionInfo, make_session
from archive.models._stored import load_model_record, materialise, read_file_bytes
from archive.models._tensorfile import read_tensors_bytes

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["CheckReport", "OutputCheck", "check_model", "compare_outputs", "run_session"]


@dataclass(frozen=True)
class OutputCheck:
    """One output compared with its expected values: ``|a - e| <= atol + rtol * |e|`` everywhere."""

    name: str
    shape: list[int]
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    ok: bool
    bitwise_equal: bool
    digest: str     # sha256 of the computed output's bytes: equal digests across reruns = bitwise stable


@dataclass(frozen=True)
class CheckReport:
    ref: str
    ok: bool
    rows: int
    session: SessionInfo
    outputs: list[OutputCheck] = field(default_factory=list)
    produced_by: str = ""

    @property
    def fallback(self) -> str | None:
        return self.session.fallback

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["providers"] = self.session.used
        d["fallback"] = self.session.fallback
        return d


def compare_outputs(name: str, actual: Any, expected: Any, *, atol: float, rtol: float) -> OutputCheck:
    """Compare one output (NaN equals NaN; shapes must match)."""
    import numpy as np

    a = np.asarray(actual)
    e = np.asarray(expected)
    digest = digest_bytes(np.ascontiguousarray(a).tobytes())
    if a.shape != e.shape:
        return OutputCheck(name, list(a.shape), float("inf"), float("inf"), atol, rtol, False, False, digest)
    if a.dtype.kind in "fc" or e.dtype.kind in "fc":
        af, ef = a.astype(np.float64), e.astype(np.float64)
        both_nan = np.isnan(af) & np.isnan(ef)
        diff = np.where(both_nan, 0.0, np.abs(af - ef))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(diff == 0, 0.0, diff / np.abs(ef))
        ok = bool(np.all(diff <= atol + rtol * np.abs(np.where(both_nan, 0.0, ef))))
        max_abs = float(np.nanmax(diff)) if diff.size else 0.0
        max_rel = float(np.nanmax(rel)) if rel.size else 0.0
        if diff.size and np.isnan(diff).any():
            ok, max_abs = False, float("nan")
    else:
        diff = a != e
        ok = not bool(np.any(diff))
        max_abs = max_rel = 0.0 if ok else float("inf")
    bitwise = a.dtype == e.dtype and a.tobytes() == e.tobytes()
    return OutputCheck(name, list(a.shape), max_abs, max_rel, atol, rtol, ok, bitwise, digest)


def run_session(session: Any, inputs: Mapping[str, Any], outputs: list[str] | None = None) -> dict[str, Any]:
    """Run a session and return ``{output name: array}``."""
    names = outputs or [o.name for o in session.get_outputs()]
    values = session.run(names, dict(inputs))
    return dict(zip(names, values, strict=True))


def check_model(archive: Archive, ref: str, *, device: Device = "cpu", threads: int = 1) -> CheckReport:
    """Run a model's reference vectors with onnxruntime on ``device`` and compare with the stored outputs.

    The report names the execution providers onnxruntime actually used; a CUDA request that ran on CPU is
    reported in ``report.fallback`` (never hidden). CPU runs use fixed threads and deterministic compute, so
    ``OutputCheck.digest`` is the same on every rerun.

    Args:
        archive: the archive.
        ref: ``NAME[@VERSION]`` or ``model/NAME[@VERSION]``.
        device: ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads.
    """
    record = load_model_record(archive, ref)
    spec = record.model
    if spec.reference is None:
        raise ValidationError(f"{record.ref} has no reference vectors; register it again with --reference or let "
                              "`model add` generate them", field="model.reference")
    rv = spec.reference
    tensors, _meta = read_tensors_bytes(read_file_bytes(archive, record, rv.file), label=f"{record.ref}:{rv.file}")
    feeds = {}
    for n in rv.inputs:
        if f"input/{n}" not in tensors:
            raise ValidationError(f"reference file lacks tensor input/{n}", file=rv.file, field="model.reference")
        feeds[n] = tensors[f"input/{n}"]
    path = materialise(archive, record)
    session, info = make_session(Path(path), device=device, threads=threads, label=record.ref)
    actual = run_session(session, feeds, list(rv.outputs))
    checks = []
    for n in rv.outputs:
        if f"output/{n}" not in tensors:
            raise ValidationError(f"reference file lacks tensor output/{n}", file=rv.file, field="model.reference")
        checks.append(compare_outputs(n, actual[n], tensors[f"output/{n}"], atol=rv.atol, rtol=rv.rtol))
    return CheckReport(record.ref, all(c.ok for c in checks), rv.rows, info, checks, rv.produced_by)
