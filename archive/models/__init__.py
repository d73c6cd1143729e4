"""The models layer: ONNX networks kept runnable after the framework that trained them is gone.

What it is: registering an ONNX file as a ``model`` record (full checker, IR/opsets/IO facts, external data
files with digests, a model card with input features, preprocessing and output meaning), refusing pickled and
framework formats, reference vectors (stored in the safetensors layout, rerun by ``check_model`` with the
execution providers reported), exporting torch modules (``export_torch``), and streaming datasets through a
model into a new dataset version (``apply_model``). What it is not: a training framework, a model zoo, or a
loader of pickled checkpoints (those are refused, never opened). torch and onnxruntime are imported inside
functions only.
"""

from __future__ import annotations

from archive.models._apply import ApplyResult, apply_model, map_inputs, preprocess, to_weight, weight_family
from archive.models._card import render_card
from archive.models._check import CheckReport, OutputCheck, check_model, compare_outputs
from archive.models._onnxfile import OnnxFile, inspect_onnx
from archive.models._register import add_model, load_card
from archive.models._runtime import SessionInfo, make_session
from archive.models._safety import check_external_location, refuse_pickled
from archive.models._stored import load_model_record, materialise
from archive.models._tensorfile import read_tensors, write_tensors
from archive.models._torch import ExportResult, export_torch

__all__ = [
    "ApplyResult",
    "CheckReport",
    "ExportResult",
    "OnnxFile",
    "OutputCheck",
    "SessionInfo",
    "add_model",
    "apply_model",
    "check_external_location",
    "check_model",
    "compare_outputs",
    "export_torch",
    "inspect_onnx",
    "load_card",
    "load_model_record",
    "make_session",
    "map_inputs",
    "materialise",
    "preprocess",
    "read_tensors",
    "refuse_pickled",
    "render_card",
    "to_weight",
    "weight_family",
    "write_tensors",
]
