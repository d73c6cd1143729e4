"""Shared pieces of the reference chain: column names, byte-stable Parquet, cards, devices, provenance."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archive._fsutil import atomic_write_text
from archive.digest import digest_file
from archive.errors import ValidationError

__all__ = [
    "JET_COLUMNS",
    "LEPTON_COLUMNS",
    "OBSERVABLES",
    "StepTimer",
    "add_common_arguments",
    "file_sha256",
    "load_card",
    "quiet_stdout",
    "read_parquet",
    "resolve_device",
    "write_json",
    "write_parquet",
    "write_provenance",
]

LEPTON_COLUMNS = ["pT_ll", "y_ll", "pT_l1", "pT_l2", "eta_l1", "eta_l2", "phi_l1", "phi_l2"]
JET_COLUMNS = [
    f"{name}_trackj{j}"
    for j in (1, 2)
    for name in ("pT", "y", "phi", "m", "tau1", "tau2", "tau3")
]
#: the 24 observables of the ATLAS Z+jets OmniFold release (arXiv:2405.20041), same names, same order
OBSERVABLES = [*LEPTON_COLUMNS, *JET_COLUMNS, "Ntracks_trackj1", "Ntracks_trackj2"]

#: writer options that make Parquet output byte-identical for identical tables (no timestamps are written)
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": False,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 65536,
    "write_page_checksum": True,
}


def write_parquet(path: Path, columns: Mapping[str, Any], *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write columns (numpy arrays or awkward/pyarrow arrays) to ``path`` atomically with fixed options.

    Two calls with equal columns and metadata give identical bytes (checked by the tests).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, col in columns.items():
        arrays[name] = col if isinstance(col, pa.Array | pa.ChunkedArray) else pa.array(col)
    table = pa.table(arrays)
    meta = {b"hep-archive.reference": json.dumps(dict(metadata or {}), sort_keys=True).encode()}
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, **_PARQUET_OPTIONS)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read flat numeric columns of a Parquet file as numpy arrays (raises ValidationError when unusable)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ValidationError("input file does not exist; run the previous step first", file=str(path))
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise ValidationError(f"cannot read Parquet file ({exc}); regenerate it", file=str(path)) from exc
    return {name: table.column(name).to_numpy() for name in table.column_names}


def load_card(path: Path) -> dict[str, Any]:
    """Load a YAML card safely; it must be a mapping."""
    from archive.schema._yaml import load_yaml_file

    if not path.is_file():
        raise ValidationError("card does not exist; pass the path of a YAML card", file=str(path))
    data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ValidationError("card must be a YAML mapping at the top level", file=str(path))
    return data


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence banners C++ libraries print on stdout (Pythia, FastJet) at the file-descriptor level."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes (ValidationError when the file does not exist)."""
    if not path.is_file():
        raise ValidationError("input file does not exist; check the path or run the previous step first",
                              file=str(path))
    return digest_file(path).sha256


def resolve_device(requested: str) -> str:
    """The torch device actually used: ``cuda`` only when asked for and present, else ``cpu``."""
    if requested not in ("cpu", "cuda"):
        raise ValidationError(f"unknown device {requested!r}; use cpu or cuda", field="--device")
    if requested == "cpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def write_json(path: Path, data: Any) -> Path:
    """Write canonical, byte-stable JSON (sorted keys, fixed indentation, trailing newline) atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


class StepTimer:
    """Wall-clock timing of one step, for the provenance sidecar (never part of the compared outputs)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 3)


def write_provenance(
    output: Path,
    *,
    step: str,
    inputs: Sequence[Path],
    outputs: Sequence[Path],
    parameters: Mapping[str, Any],
    device_requested: str,
    device_used: str,
    seconds: float,
) -> Path:
    """Write ``<output>.provenance.json``: what ran, on what, with which inputs, and the digests it produced.

    Timings live only here, so that the step outputs themselves stay byte-reproducible.
    """
    from importlib import metadata

    versions: dict[str, str] = {"python": platform.python_version()}
    for dist in ("numpy", "pyarrow", "torch", "onnx", "onnxruntime", "fastjet", "awkward", "pythia8mc"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    data = {
        "step": step,
        "parameters": dict(parameters),
        "device": {"requested": device_requested, "used": device_used},
        "inputs": {str(p): file_sha256(p) for p in inputs if p.is_file()},
        "outputs": {str(p): file_sha256(p) for p in outputs if p.is_file()},
        "software": versions,
        "platform": platform.platform(),
        "wall_seconds": seconds,
    }
    return write_json(output.with_name(output.name + ".provenance.json"), data)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``, taken by every step."""
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda is used when asked for and present; the device used is recorded")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/BLAS threads (fixed, for bit-reproducibility; default 1)")


def run_main(func: Any, argv: Sequence[str] | None) -> int:
    """Run a step's ``main`` body, printing ArchiveErrors as one line and returning the exit code."""
    from archive.errors import ArchiveError

    try:
        func(argv)
    except ArchiveError as err:
        for line in err.lines():
            print(f"error: {line}", file=sys.stderr)
        return err.exit_code
    return 0
