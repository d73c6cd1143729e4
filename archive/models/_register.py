"""``model add``: check an ONNX file, read its card, prepare and verify reference vectors, then store it all.

Everything is checked before anything is written: a refused file, a bad card or reference vectors that the
model does not reproduce leave no object and no record behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.digest import digest_file
from archive.errors import ImmutableError, ReproducibilityError, ValidationError
from archive.models._check import compare_outputs, run_session
from archive.models._onnxfile import OnnxFile, inspect_onnx, numpy_dtype
from archive.models._runtime import make_session
from archive.models._tensorfile import read_tensors, write_tensors
from archive.schema import parse_record
from archive.schema._yaml import load_yaml_file
from archive.schema.v1.model import ModelRecord

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "REFERENCE_FILE", "add_model", "load_card", "load_reference"]

REFERENCE_FILE = "reference-vectors.safetensors"
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
_COMPUTED = ("id", "version", "files", "schema_version", "status", "tombstone")
_COMPUTED_MODEL = ("onnx", "format")


def load_card(card: str | os.PathLike[str] | Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model card (YAML file or mapping) -> (record fields, reference settings ``{atol, rtol}``).

    The card holds envelope fields (title, description, creators, license, ...) and a ``model`` section
    (inputs, preprocessing, outputs, omnifold, training, intended_use, limitations, evaluation, and
    ``reference: {atol, rtol}``). Fields computed from the file (``id``, ``version``, ``files``, ``model.onnx``)
    are refused."""
    label = "card"
    if card is None:
        return {}, {}
    if isinstance(card, Mapping):
        data: Any = dict(card)
    else:
        label = str(card)
        data = load_yaml_file(Path(card), source=label)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ValidationError("a model card is a mapping (envelope fields and a 'model' section)", file=label)
    for key in _COMPUTED:
        if key in data:
            raise ValidationError(f"'{key}' is set by `model add`, not by the card; remove it", file=label, field=key)
    model = data.get("model") or {}
    if not isinstance(model, dict):
        raise ValidationError("'model' must be a mapping", file=label, field="model")
    model = dict(model)
    for key in _COMPUTED_MODEL:
        if key in model:
            raise ValidationError(f"'model.{key}' is read from the ONNX file; remove it", file=label,
                                  field=f"model.{key}")
    ref = model.pop("reference", None) or {}
    if not isinstance(ref, dict) or set(ref) - {"atol", "rtol"}:
        raise ValidationError("'model.reference' in a card may only set atol and rtol", file=label,
                              field="model.reference")
    return {**data, "model": model}, ref


def load_reference(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Reference tensors ``input/<name>``, ``output/<name>`` from a mapping, a ``.safetensors`` file, or an
    ``.npz`` archive read with ``allow_pickle=False`` (object arrays are refused, nothing is unpickled)."""
    import numpy as np

    if isinstance(source, Mapping):
        return {str(k): np.asarray(v) for k, v in source.items()}
    p = Path(source)
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as err:
            raise ValidationError(f"cannot read reference vectors: {err}", file=str(p)) from None
    return read_tensors(p)[0]


def _feature_count(onnx_file: OnnxFile) -> int | None:
    shape = onnx_file.info["inputs"][0]["shape"]
    return shape[-1] if shape and isinstance(shape[-1], int) else None


def _generated_inputs(onnx_file: OnnxFile, rows: int, seed: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for t in onnx_file.info["inputs"]:
        if t["shape"] is None:
            raise ValidationError(f"input {t['name']!r} has no declared shape; give reference vectors with "
                                  "--reference", field="model.reference")
        shape = [d if isinstance(d, int) else (rows if i == 0 else 1) for i, d in enumerate(t["shape"])]
        dt = numpy_dtype(t["dtype"])
        if dt.kind == "f":
            out[t["name"]] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            out[t["name"]] = rng.integers(0, 2, shape).astype(dt)
        else:
            out[t["name"]] = rng.integers(0, 10, shape).astype(dt)
    return out


def _prepare_reference(onnx_file: OnnxFile, reference: Any, *, rows: int, seed: int, atol: float, rtol: float,
                       produced_by: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the reference inputs on CPU, compare with given expected outputs (or adopt the computed ones)."""
    in_names = [t["name"] for t in onnx_file.info["inputs"]]
    out_names = [t["name"] for t in onnx_file.info["outputs"]]
    session, info = make_session(onnx_file.path, device="cpu", label=str(onnx_file.path))
    if reference is None:
        feeds = _generated_inputs(onnx_file, rows, seed)
        expected: dict[str, Any] = {}
    else:
        tensors = load_reference(reference)
        unknown = [k for k in tensors if not (k.startswith("input/") and k[6:] in in_names)
                   and not (k.startswith("output/") and k[7:] in out_names)]
        if unknown:
            raise ValidationError(f"reference tensors {unknown[:5]} are neither input/<graph input> nor "
                                  f"output/<graph output> (inputs {in_names}, outputs {out_names})",
                                  field="model.reference")
        feeds = {n: tensors[f"input/{n}"] for n in in_names if f"input/{n}" in tensors}
        missing = [n for n in in_names if n not in feeds]
        if missing:
            raise ValidationError(f"reference vectors lack inputs {missing}", field="model.reference")
        expected = {n: tensors[f"output/{n}"] for n in out_names if f"output/{n}" in tensors}
    try:
        actual = run_session(session, feeds, out_names)
    except Exception as err:  # onnxruntime's own exception types
        raise ValidationError(f"the model does not run on the reference inputs: {str(err).splitlines()[0][:300]}",
                              field="model.reference") from None
    for n, e in expected.items():
        c = compare_outputs(n, actual[n], e, atol=atol, rtol=rtol)
        if not c.ok:
            raise ReproducibilityError(
                f"onnxruntime does not reproduce the expected output {n!r} (max abs diff {c.max_abs:.3g}, max rel "
                f"{c.max_rel:.3g}; tolerance atol={atol:g}, rtol={rtol:g}); fix the export or the tolerances",
                field="model.reference")
    outputs = {n: expected.get(n, actual[n]) for n in out_names}
    tensors_out = {**{f"input/{n}": v for n, v in feeds.items()}, **{f"output/{n}": v for n, v in outputs.items()}}
    first = next(iter(feeds.values()))
    rows_seen = int(first.shape[0]) if first.ndim else 1
    spec = {
        "file": REFERENCE_FILE, "format": "safetensors", "inputs": list(feeds), "outputs": out_names,
        "rows": max(1, rows_seen), "atol": atol, "rtol": rtol,
        "produced_by": produced_by or (f"onnxruntime {info.onnxruntime} ({', '.join(info.used)})"
                                       + (" at registration" if not expected else "")),
    }
    return tensors_out, spec


def _entry_data(path: Path, rel: str, role: str, media_type: str, description: str | None = None) -> dict[str, Any]:
    h = digest_file(path, adler32=True)
    return {"path": rel, "size": h.size, "sha256": h.sha256, "adler32": h.adler32, "role": role,
            "media_type": media_type, **({"description": description} if description else {})}


def add_model(
    archive: Archive, path: str | os.PathLike[str], *, name: str, version: str,
    card: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    reference: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    atol: float | None = None, rtol: float | None = None, reference_rows: int = 16, seed: int = 0,
    produced_by: str | None = None,
) -> ModelRecord:
    """Register an ONNX model: check it, describe it, verify reference vectors and store everything.

    Args:
        archive: the archive to write to.
        path: the ``.onnx`` file; external data files lie beside it, inside its folder.
        name: record name (``model/<name>``).
        version: semantic version of this record.
        card: model card (YAML file or mapping): envelope fields and the ``model`` section.
        reference: reference tensors ``input/<graph input>`` and ``output/<graph output>`` (mapping,
            ``.safetensors`` or ``.npz``); missing outputs are computed with onnxruntime on CPU. ``None``:
            ``reference_rows`` seeded random rows are generated and their outputs computed.
        atol: absolute tolerance of the reference check (default: the card's, else 1e-5).
        rtol: relative tolerance (default: the card's, else 1e-4).
        reference_rows: rows of generated reference inputs.
        seed: seed of the generated reference inputs.
        produced_by: what computed the expected outputs (e.g. ``torch 2.13.0 (cpu)``).

    Returns:
        The stored draft :class:`ModelRecord`.
    """
    onnx_file = inspect_onnx(path)
    fields, ref_settings = load_card(card)
    card_label = str(card) if card is not None and not isinstance(card, Mapping) else "card"
    tol_a = float(atol if atol is not None else ref_settings.get("atol", DEFAULT_ATOL))
    tol_r = float(rtol if rtol is not None else ref_settings.get("rtol", DEFAULT_RTOL))
    model_fields = fields.get("model", {})
    n_feat = _feature_count(onnx_file)
    feats = model_fields.get("inputs") or []
    if feats and n_feat is not None and len(feats) != n_feat:
        raise ValidationError(f"the card lists {len(feats)} input features but the graph input "
                              f"{onnx_file.info['inputs'][0]['name']!r} takes {n_feat}", file=card_label,
                              field="model.inputs")
    tensors, ref_spec = _prepare_reference(onnx_file, reference, rows=reference_rows, seed=seed, atol=tol_a,
                                           rtol=tol_r, produced_by=produced_by)
    if REFERENCE_FILE in (onnx_file.info["file"], *onnx_file.external):
        raise ValidationError(f"the model's files may not be named {REFERENCE_FILE}", file=str(path))
    with tempfile.TemporaryDirectory(prefix="hep-archive-model-") as td:
        ref_path = write_tensors(Path(td) / REFERENCE_FILE, tensors, {"model": f"model/{name}@{version}"})
        files = [_entry_data(onnx_file.path, onnx_file.info["file"], "model", "application/onnx")]
        files += [_entry_data(p, loc, "model-external-data", "application/octet-stream", "ONNX external tensor data")
                  for loc, p in sorted(onnx_file.external.items())]
        files.append(_entry_data(ref_path, REFERENCE_FILE, "reference", "application/octet-stream",
                                 "reference vectors (safetensors layout)"))
        data = {"title": f"ONNX model {name}", **fields, "id": f"model/{name}", "version": version,
                "files": files, "model": {**model_fields, "onnx": onnx_file.info, "reference": ref_spec}}
        record = parse_record(data, source=card_label)
        assert isinstance(record, ModelRecord)
        sources = {onnx_file.info["file"]: onnx_file.path, **onnx_file.external, REFERENCE_FILE: ref_path}
        with archive.lock():
            cat = archive.catalog
            if cat.exists(record.id, record.version):
                existing = cat.get(record.id, record.version)
                if existing.status != "draft":
                    raise ImmutableError(f"{record.ref} is {existing.status} and cannot be changed; register the "
                                         "model as a new version", field="version")
            for entry in record.files:
                info = archive.store.put_file(sources[entry.path])
                if info.digest != entry.sha256:
                    raise ReproducibilityError(f"{entry.path} changed while it was being stored; try again",
                                               file=str(sources[entry.path]))
            cat.add(record)
    return record
