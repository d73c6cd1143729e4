"""Reading an ONNX file safely: refuse pickles, check external data locations, run the full checker, and
describe the model (IR version, opsets, producer, inputs/outputs with symbolic dimensions, parameters)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive.errors import UnsafeInputError, ValidationError
from archive.models._safety import check_external_location, refuse_pickled

__all__ = ["OnnxFile", "inspect_onnx", "numpy_dtype", "onnx_dtype_name"]

_DTYPE_NAMES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
    10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
    23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
}


def onnx_dtype_name(elem_type: int) -> str:
    return _DTYPE_NAMES.get(elem_type, "other")


def numpy_dtype(name: str) -> Any:
    """The NumPy dtype for a schema dtype name (only those NumPy has)."""
    import numpy as np

    try:
        return np.dtype(name)
    except TypeError:
        raise ValidationError(f"dtype {name} has no NumPy equivalent; the model cannot be fed from NumPy",
                              field="model.onnx.inputs") from None


@dataclass(frozen=True)
class OnnxFile:
    """A checked ONNX file: the ``model.onnx`` section and the external data files to store with it."""

    path: Path
    info: dict[str, Any]
    external: dict[str, Path]   # location (relative to the model's folder) -> file


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for g in attr.graphs:
            yield from _graph_tensors(g)


def _all_tensors(model: Any) -> Iterator[Any]:
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            yield from _node_tensors(node)


def _external_entries(model: Any, model_dir: Path, label: str) -> dict[str, Path]:
    from onnx import TensorProto

    found: dict[str, Path] = {}
    for t in _all_tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        kv = {e.key: e.value for e in t.external_data}
        unknown = set(kv) - {"location", "offset", "length", "checksum", "basepath"}
        if unknown or "basepath" in kv:
            bad = sorted(unknown | ({"basepath"} & set(kv)))
            raise UnsafeInputError(f"tensor {t.name!r}: unexpected external_data keys {bad}; only location, offset, "
                                   "length and checksum are accepted", file=label, field="external_data")
        loc = kv.get("location", "")
        target = found.get(loc) or check_external_location(model_dir, loc, label=label)
        found[loc] = target
        try:
            offset = int(kv.get("offset", "0"))
            length = int(kv["length"]) if "length" in kv else None
        except ValueError:
            raise ValidationError(f"tensor {t.name!r}: external data offset/length are not integers", file=label,
                                  field="external_data") from None
        size = target.stat().st_size
        if offset < 0 or offset > size or (length is not None and (length < 0 or offset + length > size)):
            raise ValidationError(f"tensor {t.name!r}: external data range [{offset}, +{length}) lies outside "
                                  f"{loc!r} ({size} bytes)", file=label, field="external_data")
    return found


def _shape(type_proto: Any) -> tuple[str, list[int | str | None] | None]:
    which = type_proto.WhichOneof("value")
    if which != "tensor_type":
        return "other", None
    tt = type_proto.tensor_type
    dtype = onnx_dtype_name(tt.elem_type)
    if not tt.HasField("shape"):
        return dtype, None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        kind = d.WhichOneof("value")
        dims.append(int(d.dim_value) if kind == "dim_value" else str(d.dim_param) if kind == "dim_param" else None)
    return dtype, dims


def _count(t: Any) -> int:
    return math.prod(int(d) for d in t.dims)


def inspect_onnx(path: str | os.PathLike[str], *, name_in_record: str | None = None) -> OnnxFile:
    """Check an ONNX file thoroughly and describe it.

    Refuses pickled and Keras files (by extension and magic bytes), external data outside the model's folder
    (``..``, absolute, symlinks, hard links), and models that fail ``onnx.checker.check_model(full_check=True)``.

    Args:
        path: the ``.onnx`` file (its external data files, if any, beside it).
        name_in_record: the path the file gets among the record's files (default: its file name).

    Returns:
        An :class:`OnnxFile` with the ``model.onnx`` record section and the external files to store.
    """
    p = Path(path)
    label = str(p)
    if not p.is_file():
        raise ValidationError("no such model file", file=label)
    refuse_pickled(p)
    import onnx

    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and onnx's own errors
        raise ValidationError(f"not a readable ONNX model ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                              "export it with torch.onnx.export, tf2onnx or skl2onnx", file=label) from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ValidationError("not an ONNX model (no graph or IR version); export it with torch.onnx.export, "
                              "tf2onnx or skl2onnx", file=label)
    external = _external_entries(model, p.parent, label)
    try:
        onnx.checker.check_model(str(p), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise ValidationError(f"the ONNX graph is broken: {first}", file=label, field="graph") from None
    init_names = {t.name for t in model.graph.initializer}
    inputs = []
    for vi in model.graph.input:
        if vi.name in init_names:  # IR < 4: initializers may be listed as inputs
            continue
        dtype, shape = _shape(vi.type)
        inputs.append({"name": vi.name, "dtype": dtype, "shape": shape})
    outputs = []
    for vi in model.graph.output:
        dtype, shape = _shape(vi.type)
        outputs.append({"name": vi.name, "dtype": dtype, "shape": shape})
    params = sum(_count(t) for t in model.graph.initializer)
    params += sum(_count(sp.values) for sp in model.graph.sparse_initializer)
    info = {
        "file": name_in_record or p.name,
        "ir_version": int(model.ir_version),
        "opsets": [{"domain": o.domain, "version": int(o.version)} for o in model.opset_import],
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "domain": model.domain,
        "model_version": int(model.model_version),
        "doc_string": model.doc_string,
        "inputs": inputs,
        "outputs": outputs,
        "metadata_props": {m.key: m.value for m in model.metadata_props},
        "parameter_count": int(params),
        "external_data": sorted(external),
    }
    return OnnxFile(p, info, external)
