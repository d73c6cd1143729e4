"""Helpers for the models tests: real ONNX files built with onnx.helper (seeded, deterministic)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FEATURES_24 = [
    "pT_l1", "pT_l2", "eta_l1", "eta_l2", "phi_l1", "phi_l2", "pT_ll", "y_ll",
    "pT_trackj1", "y_trackj1", "phi_trackj1", "m_trackj1", "tau1_trackj1", "tau2_trackj1", "tau3_trackj1",
    "pT_trackj2", "y_trackj2", "phi_trackj2", "m_trackj2", "tau1_trackj2", "tau2_trackj2", "tau3_trackj2",
    "Ntracks_trackj1", "Ntracks_trackj2",
]


def make_mlp_onnx(
    path: Path, *, features: int = 24, hidden: Sequence[int] = (64, 128, 64), seed: int = 0,
    output: str = "weight", exp: bool = True, ir_version: int = 10, external: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """The realistic OmniFold-shaped test model: Gemm -> Gelu (opset 20) x3 -> Gemm [-> Exp]; x: float32[N,F]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [features, *hidden, 1]
    nodes, inits = [], []
    prev = "x"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (0.1 * rng.standard_normal(b)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(bias, f"B{i}")]
        last = i == len(sizes) - 2
        gemm_out = ("logit" if exp else output) if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [gemm_out]))
        prev = gemm_out
        if not last:
            nodes.append(helper.make_node("Gelu", [prev], [f"g{i}"]))
            prev = f"g{i}"
    if exp:
        nodes.append(helper.make_node("Exp", [prev], [output]))
    graph = helper.make_graph(
        nodes, "omnifold_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="tests",
                              producer_version="1")
    model.ir_version = ir_version
    helper.set_model_props(model, metadata or {"inputs": ",".join(FEATURES_24[:features])})
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        (path.parent / external).parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external, size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


@functools.lru_cache(maxsize=1)
def ir_version_onnxruntime_rejects(known_good: int = 10) -> int:
    """The lowest ONNX IR version the installed onnxruntime refuses to load, found by trying it (no version
    number written in a test: onnxruntime 1.31 stops at IR 13, 1.32 reads IR 14, later ones more)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])

    def loads(ir_version: int) -> bool:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = ir_version
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own pybind exception types
            if "IR version" not in str(err):
                raise
            return False
        return True

    if not loads(known_good):
        raise AssertionError(f"onnxruntime {ort.__version__} refuses IR version {known_good}; the probe needs "
                             "one it reads")
    lo, hi = known_good, known_good + 1
    while loads(hi):  # doubling, then bisection: lo loads, hi does not
        lo, hi = hi, hi * 2
        if hi > 2**62:
            raise AssertionError(f"onnxruntime {ort.__version__} loads every IR version tried")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if loads(mid) else (lo, mid)
    return hi


def omnifold_card(features: int = 24, **extra: Any) -> dict[str, Any]:
    names = FEATURES_24[:features]
    return {
        "title": "OmniFold step-2 network, iteration 3, ensemble member 0",
        "creators": [{"name": "Doe, Jane"}],
        "license": "CC-BY-4.0",
        "model": {
            "inputs": [{"name": n, "unit": "GeV" if n.startswith(("pT", "m_")) else None, "shift": 1.0 * i,
                        "scale": 2.0} for i, n in enumerate(names)],
            "preprocessing": {"padding_value": 0.0},
            "outputs": [{"name": "weight", "meaning": "weight", "description": "per-event reweighting factor"}],
            "omnifold": {"step": 2, "iteration": 3, "ensemble_member": 0, "ensemble_size": 100},
            "training": {"configuration": {"epochs": 2, "batch_size": 128, "lr": 1e-4, "seed": 1},
                         "framework": "torch 2.13.0"},
            "intended_use": "Reweight the particle-level MC prior to the unfolded data.",
            "limitations": "Valid only inside the fiducial phase space (pT_ll > 200 GeV).",
            **extra,
        },
    }
