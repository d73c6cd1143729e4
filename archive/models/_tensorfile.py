"""Reference vectors on disk: the safetensors layout, written and read without any third-party code.

Layout: 8 bytes little-endian header length ``n``, ``n`` bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the raw little-endian C-order bytes. No
pickle, no code: a reader needs only a JSON parser, which is why reference vectors are kept this way."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archive.errors import ValidationError

__all__ = ["read_tensors", "read_tensors_bytes", "tensors_bytes", "write_tensors"]

_CODES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32", "int16": "I16",
    "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
}
_NAMES = {v: k for k, v in _CODES.items()}
MAX_HEADER = 100 * 2**20


def tensors_bytes(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise named NumPy arrays (names sorted, C order, little-endian)."""
    import numpy as np

    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        code = _CODES.get(arr.dtype.name)
        if code is None:
            raise ValidationError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored in a reference file",
                                  field="reference")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def write_tensors(path: Path, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> Path:
    """Write named arrays to ``path`` in the safetensors layout; returns ``path``."""
    path.write_bytes(tensors_bytes(tensors, metadata))
    return path


def read_tensors_bytes(buf: bytes, *, label: str = "<tensors>") -> tuple[dict[str, Any], dict[str, str]]:
    """Parse the safetensors layout strictly: every offset, dtype and size is checked; arrays are copies."""
    import numpy as np

    def bad(reason: str) -> ValidationError:
        return ValidationError(f"not a valid reference-vector file: {reason}", file=label)

    if len(buf) < 8:
        raise bad("shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER or 8 + n > len(buf):
        raise bad(f"header length {n} is out of range")
    try:
        header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad(f"header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("__metadata__ must map strings to strings")
    data = memoryview(buf)[8 + n :]
    out: dict[str, Any] = {}
    spans = []
    for name, desc in header.items():
        if not isinstance(desc, dict) or set(desc) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name!r}: needs exactly dtype, shape and data_offsets")
        dtype = _NAMES.get(desc["dtype"]) if isinstance(desc["dtype"], str) else None
        shape, offs = desc["shape"], desc["data_offsets"]
        if dtype is None:
            raise bad(f"tensor {name!r}: unsupported dtype {desc['dtype']!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise bad(f"tensor {name!r}: shape must be a list of non-negative integers")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)
                and 0 <= offs[0] <= offs[1] <= len(data)):
            raise bad(f"tensor {name!r}: data_offsets out of range")
        dt = np.dtype(dtype).newbyteorder("<")
        if offs[1] - offs[0] != math.prod(shape) * dt.itemsize:
            raise bad(f"tensor {name!r}: {offs[1] - offs[0]} bytes for shape {shape} of {dtype}")
        out[name] = np.frombuffer(data[offs[0] : offs[1]], dtype=dt).reshape(shape).astype(dtype)
        spans.append((offs[0], offs[1]))
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            raise bad("tensor data overlaps or leaves gaps")
        pos = e
    if pos != len(data):
        raise bad("trailing bytes after the last tensor")
    return out, {str(k): str(v) for k, v in meta.items()}


def read_tensors(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a reference-vector file (see :func:`read_tensors_bytes`)."""
    return read_tensors_bytes(path.read_bytes(), label=str(path))
