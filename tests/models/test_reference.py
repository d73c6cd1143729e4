"""Reference vectors: the tensor file, registration checks, bitwise-stable reruns and honest provider reports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models_testlib import ir_version_onnxruntime_rejects

from archive.errors import IntegrityError, ReproducibilityError, ValidationError
from archive.models import add_model, check_model, compare_outputs, read_tensors, write_tensors
from archive.models._tensorfile import read_tensors_bytes, tensors_bytes


def test_tensor_file_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t = {"input/x": rng.standard_normal((5, 24)).astype(np.float32), "output/y": np.arange(5, dtype=np.int64),
         "flags": np.array([True, False])}
    p = write_tensors(tmp_path / "r.safetensors", t, {"note": "hello"})
    back, meta = read_tensors(p)
    assert meta == {"note": "hello"}
    assert set(back) == set(t)
    for k, v in t.items():
        assert back[k].dtype == v.dtype and back[k].tobytes() == v.tobytes()
    assert tensors_bytes(t, {"note": "hello"}) == p.read_bytes()  # deterministic bytes


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:4],                                             # truncated length
        lambda b: (10**9).to_bytes(8, "little") + b[8:],             # header length out of range
        lambda b: b + b"\x00",                                       # trailing bytes
        lambda b: b[:8] + b[8:].replace(b'"F32"', b'"OBJ"', 1),      # unknown dtype (no pickled objects)
        lambda b: b[:8] + b[8:].replace(b"[0,8]", b"[0,9]", 1),      # offsets do not match the shape
    ],
)
def test_tensor_file_malformed_refused(mutate: Callable[[bytes], bytes]) -> None:
    good = tensors_bytes({"a": np.zeros(2, np.float32), "b": np.ones(3, np.float64)})
    with pytest.raises(ValidationError, match="not a valid reference-vector file"):
        read_tensors_bytes(mutate(good))


def test_compare_outputs_reports_max_differences() -> None:
    e = np.array([1.0, 2.0, 4.0], np.float32)
    c = compare_outputs("y", e + np.array([0.0, 1e-6, 0.5], np.float32), e, atol=1e-5, rtol=1e-4)
    assert not c.ok and c.max_abs == pytest.approx(0.5) and c.max_rel == pytest.approx(0.125)
    c2 = compare_outputs("y", e.copy(), e, atol=0.0, rtol=0.0)
    assert c2.ok and c2.bitwise_equal and c2.max_abs == 0.0
    nan = np.array([np.nan, 1.0])
    assert compare_outputs("y", nan, nan.copy(), atol=0, rtol=0).ok
    assert not compare_outputs("y", np.array([np.nan, 1.0]), np.array([0.0, 1.0]), atol=1, rtol=1).ok
    assert not compare_outputs("y", np.zeros((2, 1)), np.zeros(2), atol=1, rtol=1).ok  # shape mismatch


def test_check_passes_and_is_bitwise_stable(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    add_model(tmp_archive, mlp_onnx(), name="mlp", version="1.0.0", reference_rows=64)
    first = check_model(tmp_archive, "mlp")
    second = check_model(tmp_archive, "mlp@1.0.0")
    assert first.ok and first.rows == 64
    assert first.session.used == ["CPUExecutionProvider"] and first.fallback is None
    assert [o.digest for o in first.outputs] == [o.digest for o in second.outputs]
    assert all(o.bitwise_equal and o.max_abs == 0.0 for o in first.outputs + second.outputs)


def test_check_is_bitwise_stable_across_processes(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    add_model(tmp_archive, mlp_onnx(), name="mlp", version="1.0.0")
    digests = []
    for threads in ("1", "2"):
        out = subprocess.run(
            [str(Path(sys.executable).parent / "hep-archive"), "--root", str(tmp_archive.root), "--json", "model",
             "check", "mlp", "--threads", threads], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        digests.append(json.loads(out.stdout)["outputs"][0]["digest"])
    direct = check_model(tmp_archive, "mlp").outputs[0].digest
    assert digests[0] == direct  # same threads, another process: bitwise identical


def test_cuda_request_on_cpu_build_reports_fallback(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the fallback path is for CPU-only builds")
    add_model(tmp_archive, mlp_onnx(), name="mlp", version="1.0.0")
    rep = check_model(tmp_archive, "mlp", device="cuda")
    assert rep.ok
    assert rep.session.requested == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert rep.session.used == ["CPUExecutionProvider"]
    assert rep.fallback is not None and "CUDA requested" in rep.fallback and "CPUExecutionProvider" in rep.fallback
    assert rep.as_dict()["fallback"] == rep.fallback


@pytest.mark.gpu
def test_cuda_check_on_gpu(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA-enabled onnxruntime")
    add_model(tmp_archive, mlp_onnx(), name="mlp", version="1.0.0")
    rep = check_model(tmp_archive, "mlp", device="cuda")
    assert rep.session.used[0] == "CUDAExecutionProvider" and rep.fallback is None
    assert rep.ok  # GPU outputs within the stored tolerance of the CPU reference


def test_given_reference_outputs_must_be_reproduced(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    p = mlp_onnx()
    x = np.random.default_rng(0).standard_normal((4, 24)).astype(np.float32)
    wrong = {"input/x": x, "output/weight": np.ones((4, 1), np.float32) * 123.0}
    with pytest.raises(ReproducibilityError, match="does not reproduce"):
        add_model(tmp_archive, p, name="mlp", version="1.0.0", reference=wrong)
    assert not tmp_archive.catalog.exists("model/mlp", "1.0.0")
    assert not list(tmp_archive.store.iter_digests())
    # given inputs only: outputs computed and stored; given as an .npz (read without pickle)
    np.savez(Path(tmp_archive.root) / "ref.npz", **{"input/x": x})
    rec = add_model(tmp_archive, p, name="mlp", version="1.0.0", reference=Path(tmp_archive.root) / "ref.npz")
    assert rec.model.reference is not None and rec.model.reference.rows == 4
    assert check_model(tmp_archive, "mlp").ok


def test_unknown_reference_tensor_names_refused(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    with pytest.raises(ValidationError, match="neither input"):
        add_model(tmp_archive, mlp_onnx(), name="mlp", version="1.0.0",
                  reference={"input/features": np.zeros((2, 24), np.float32)})


def test_corrupted_stored_model_is_detected(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    rec = add_model(tmp_archive, mlp_onnx(), name="mlp", version="1.0.0")
    entry = next(f for f in rec.files if f.role == "reference")
    obj = tmp_archive.object_path(entry.sha256)
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[-1] ^= 0xFF
    obj.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        check_model(tmp_archive, "mlp")


def test_ir_version_too_new_for_onnxruntime(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    """The boundary is the installed onnxruntime's, found by trying it: the first IR version it refuses is
    refused with a one-line error naming it; the one below is recorded."""
    import onnx

    from archive.errors import ExecutionError

    too_new = ir_version_onnxruntime_rejects()
    with pytest.raises(ExecutionError, match="IR version") as ei:
        add_model(tmp_archive, mlp_onnx("too-new.onnx", ir_version=too_new), name="mlp", version="1.0.0")
    assert "\n" not in str(ei.value)
    newest = min(too_new - 1, onnx.IR_VERSION)
    rec = add_model(tmp_archive, mlp_onnx("newest.onnx", ir_version=newest), name="mlp", version="1.0.0")
    assert rec.model.onnx is not None and rec.model.onnx.ir_version == newest
