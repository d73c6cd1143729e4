"""Export a step-2 network to ONNX with its preprocessing built in, and check it with onnxruntime."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from archive.reference._common import OBSERVABLES, write_json

__all__ = ["export_step2"]


def export_step2(net: Any, *, mean: np.ndarray, std: np.ndarray, norm: float, clip: float, path: Path,
                 reference_inputs: np.ndarray, opset: int, info: dict[str, Any]) -> dict[str, Any]:
    """Write ``path`` (ONNX: raw 24 observables -> logit, weight) and ``path.with_suffix('.json')``.

    The JSON sidecar holds the feature order, the preprocessing, the output semantics and reference
    input/output vectors; onnxruntime is run on the reference inputs and the largest deviation from torch is
    recorded (``max_abs_diff_weight``).
    """
    import onnxruntime as ort
    import torch

    class Step2(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net.cpu()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
            self.norm = float(norm)
            self.clip = float(clip)

        def forward(self, x: Any) -> tuple[Any, Any]:
            logit = self.net((x - self.mean) / self.std)
            weight = torch.exp(torch.clamp(logit, -self.clip, self.clip)) * self.norm
            return logit, weight

    module = Step2().eval()
    example = torch.from_numpy(reference_inputs.astype(np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter (dynamo=False) is deprecated but gives stable bytes without onnxscript rewrites
        warnings.simplefilter("ignore", DeprecationWarning)
        ref_logit, ref_weight = (t.numpy() for t in module(example))
        torch.onnx.export(module, (example,), str(path), input_names=["x"], output_names=["logit", "weight"],
                          dynamic_axes={"x": {0: "N"}, "logit": {0: "N"}, "weight": {0: "N"}},
                          opset_version=opset, dynamo=False)
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    del model.metadata_props[:]
    for key, value in (("features", ",".join(OBSERVABLES)), ("output", "weight = push weight nu(x)"),
                       ("producer", "archive.reference.unfold")):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, ort_weight = sess.run(None, {"x": reference_inputs.astype(np.float32)})
    diff = float(np.max(np.abs(np.asarray(ort_weight) - ref_weight) / np.maximum(np.abs(ref_weight), 1e-12)))
    meta = {
        **info,
        "format": "onnx",
        "opset": opset,
        "inputs": {"name": "x", "shape": ["N", len(OBSERVABLES)], "dtype": "float32", "features": OBSERVABLES},
        "outputs": {"logit": "classifier logit, shape [N, 1]",
                    "weight": "push weight relative to the prior: exp(clip(logit)) * class_sum_ratio, [N, 1]"},
        "preprocessing": {"kind": "standardise (built into the graph)",
                          "mean": [float(v) for v in mean], "std": [float(v) for v in std]},
        "class_sum_ratio": float(norm),
        "logit_clip": float(clip),
        "reference": {"inputs": reference_inputs.astype(np.float32).tolist(),
                      "logit": ref_logit[:, 0].tolist(), "weight": ref_weight[:, 0].tolist()},
        "onnxruntime_check": {"max_rel_diff_weight": diff, "tolerance": 1e-5, "passed": diff <= 1e-5},
    }
    write_json(path.with_suffix(".json"), meta)
    return {"path": path.name, "onnxruntime_max_rel_diff": diff}
