"""``export_torch``: parity with torch, registration with torch-made reference vectors, CUDA reporting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.errors import ReproducibilityError, ValidationError
from archive.models import check_model, export_torch, inspect_onnx


def _net(seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(24, 64), torch.nn.GELU(), torch.nn.Linear(64, 128), torch.nn.GELU(),
                               torch.nn.Linear(128, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))


def _x(rows: int = 16) -> Any:
    import torch

    return torch.tensor(np.random.default_rng(2).standard_normal((rows, 24)).astype(np.float32))


def test_export_register_check(tmp_archive: Any) -> None:
    import torch

    res = export_torch(_net(), _x(), archive=tmp_archive, name="torch-mlp", version="1.0.0", output_name="logit",
                       card={"model": {"outputs": [{"name": "logit", "meaning": "logit"}]}},
                       metadata={"record": "model/torch-mlp@1.0.0"})
    assert res.record is not None and res.max_abs <= 1e-5 and res.torch_device == "cpu"
    spec = res.record.model
    assert spec.onnx is not None and spec.reference is not None
    assert spec.onnx.inputs[0].shape == ["N", 24] and spec.onnx.outputs[0].name == "logit"
    assert spec.onnx.producer_name == "pytorch" and spec.onnx.metadata_props["torch_version"] == torch.__version__
    assert spec.onnx.metadata_props["record"] == "model/torch-mlp@1.0.0"
    assert spec.reference.produced_by == f"torch {torch.__version__} (cpu)" and spec.reference.rows == 16
    rep = check_model(tmp_archive, "torch-mlp")
    assert rep.ok and rep.outputs[0].max_abs <= 1e-5


def test_export_to_file_only(tmp_path: Path) -> None:
    out = tmp_path / "net.onnx"
    res = export_torch(_net(), _x(4), path=out, dynamic_batch=False)
    assert res.path == out and res.record is None
    assert inspect_onnx(out).info["inputs"][0]["shape"] == [4, 24]


class _Drifting:
    """A module whose traced graph differs from its eager output (a Python counter baked in at export)."""

    def __new__(cls) -> Any:
        import torch

        class Drift(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.calls = 0

            def forward(self, x: Any) -> Any:
                self.calls += 1
                return x * float(self.calls)

        return Drift()


def test_export_parity_failure_is_refused(tmp_archive: Any) -> None:
    with pytest.raises(ReproducibilityError, match="differs from torch"):
        export_torch(_Drifting(), _x(4), archive=tmp_archive, name="drift", version="1.0.0")
    assert not tmp_archive.catalog.exists("model/drift", "1.0.0")
    assert not list(tmp_archive.store.iter_digests())


def test_export_needs_name_and_tensor(tmp_archive: Any) -> None:
    with pytest.raises(ValidationError, match="needs name and version"):
        export_torch(_net(), _x(), archive=tmp_archive)
    with pytest.raises(ValidationError, match=r"torch\.Tensor"):
        export_torch(_net(), np.zeros((2, 24), np.float32))


def test_torch_cuda_request_without_gpu_reports_fallback(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the fallback path is for CPU-only machines")
    res = export_torch(_net(), _x(4), path=tmp_path / "n.onnx", device="cuda")
    assert res.torch_device == "cpu" and res.cuda_max_abs is None
    assert res.torch_fallback is not None and "torch.cuda.is_available() is false" in res.torch_fallback


@pytest.mark.gpu
def test_torch_cuda_parity_on_gpu(tmp_archive: Any) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    res = export_torch(_net(), _x(256), archive=tmp_archive, name="gpu-mlp", version="1.0.0", device="cuda")
    assert res.torch_device == "cuda" and res.torch_fallback is None
    assert res.cuda_max_abs is not None and res.cuda_max_abs <= 1e-4
