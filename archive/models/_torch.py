"""``export_torch``: a torch module to ONNX, with a parity check against torch and registration."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import MissingDependencyError, ReproducibilityError, ValidationError
from archive.models._check import compare_outputs, run_session
from archive.models._register import DEFAULT_ATOL, DEFAULT_RTOL, add_model
from archive.models._runtime import Device, make_session
from archive.schema.v1.model import ModelRecord

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["ExportResult", "export_torch"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_torch` produced: the ONNX file, the parity figures and the record (if registered)."""

    path: Path | None
    max_abs: float
    max_rel: float
    torch_version: str
    torch_device: str
    torch_fallback: str | None = None
    record: ModelRecord | None = None
    cuda_max_abs: float | None = None
    notes: list[str] = field(default_factory=list)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - installed in .venv
        raise MissingDependencyError("torch", "pip install torch (the CPU build is enough)") from None
    return torch


def export_torch(
    module: Any, example_input: Any, *, archive: Archive | None = None, name: str | None = None,
    version: str | None = None, path: str | os.PathLike[str] | None = None, input_name: str = "x",
    output_name: str = "y", opset: int | None = None, dynamic_batch: bool = True,
    card: str | os.PathLike[str] | Mapping[str, Any] | None = None, atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL, device: Device = "cpu", metadata: Mapping[str, str] | None = None,
) -> ExportResult:
    """Export ``module`` to ONNX, check parity with torch on ``example_input`` and optionally register it.

    The module is exported on CPU with the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``), the
    batch axis named ``N`` when ``dynamic_batch``. torch's CPU outputs on the example input become the reference
    vectors; onnxruntime (CPU) must match them within ``atol``/``rtol``, else :class:`ReproducibilityError`.
    With ``device="cuda"`` torch also runs on the GPU when one is present and its difference from the CPU
    reference is reported (``cuda_max_abs``); without one the fallback is reported in ``torch_fallback``.

    Args:
        module: a ``torch.nn.Module`` with one tensor input and one tensor output.
        example_input: a ``torch.Tensor`` batch (rows on the first axis); also the reference input.
        archive: register into this archive (needs ``name`` and ``version``); ``None``: only export.
        name: record name.
        version: record version.
        path: where to write the ``.onnx`` file (default: a temporary file, removed after registration).
        input_name: graph input name.
        output_name: graph output name.
        opset: ONNX opset (default: torch's, 20 for torch 2.13).
        dynamic_batch: make the first axis symbolic (``N``).
        card: model card for registration (see :func:`archive.models.add_model`).
        atol: absolute tolerance of parity and reference checks.
        rtol: relative tolerance.
        device: ``cpu`` or ``cuda`` (for the extra torch-on-GPU comparison).
        metadata: extra ``metadata_props`` written into the ONNX file.

    Returns:
        An :class:`ExportResult`.
    """
    torch = _import_torch()
    import numpy as np
    import onnx

    if archive is not None and (not name or not version):
        raise ValidationError("registering an exported model needs name and version", field="name")
    if not isinstance(example_input, torch.Tensor):
        raise ValidationError("example_input must be a torch.Tensor", field="example_input")
    module = module.to("cpu").eval()
    x = example_input.detach().to("cpu")
    with torch.no_grad():
        expected = module(x)
    if not isinstance(expected, torch.Tensor):
        raise ValidationError("the module must return one tensor", field="module")
    expected_np = expected.detach().numpy().copy()
    x_np = x.numpy().copy()
    cuda_max_abs = None
    fallback = None
    used_device = "cpu"
    if device == "cuda":
        if torch.cuda.is_available():
            with torch.no_grad():
                gpu = module.to("cuda")(x.to("cuda")).cpu().numpy()
            module.to("cpu")
            cuda_max_abs = float(np.max(np.abs(gpu.astype(np.float64) - expected_np))) if gpu.size else 0.0
            used_device = "cuda"
        else:
            fallback = "CUDA requested but torch.cuda.is_available() is false; torch ran on CPU only"
    with contextlib.ExitStack() as stack:
        if path is None:
            td = stack.enter_context(tempfile.TemporaryDirectory(prefix="hep-archive-export-"))
            out = Path(td) / f"{name or 'model'}.onnx"
        else:
            out = Path(path)
        dyn = {input_name: {0: "N"}, output_name: {0: "N"}} if dynamic_batch else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (x,), str(out), dynamo=False, input_names=[input_name],
                              output_names=[output_name], dynamic_axes=dyn, opset_version=opset,
                              do_constant_folding=True)
        props = {"exported_by": "archive.models.export_torch", "torch_version": torch.__version__,
                 **(dict(metadata) if metadata else {})}
        if props:
            m = onnx.load(str(out))
            onnx.helper.set_model_props(m, {**{p.key: p.value for p in m.metadata_props}, **props})
            onnx.save(m, str(out))
        session, _info = make_session(out, device="cpu")
        got = run_session(session, {input_name: x_np}, [output_name])[output_name]
        parity = compare_outputs(output_name, got, expected_np, atol=atol, rtol=rtol)
        if not parity.ok:
            raise ReproducibilityError(
                f"the exported model differs from torch on the example input (max abs {parity.max_abs:.3g}, max rel "
                f"{parity.max_rel:.3g}; tolerance atol={atol:g}, rtol={rtol:g})", file=str(out))
        record = None
        if archive is not None:
            assert name is not None and version is not None
            record = add_model(archive, out, name=name, version=version, card=card,
                               reference={f"input/{input_name}": x_np, f"output/{output_name}": expected_np},
                               atol=atol, rtol=rtol, produced_by=f"torch {torch.__version__} (cpu)")
        return ExportResult(path if path is None else out, parity.max_abs, parity.max_rel, torch.__version__,
                            used_device, fallback, record, cuda_max_abs)

