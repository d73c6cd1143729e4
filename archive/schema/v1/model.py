"""The ``model`` record (schema v1). An ONNX model with its card and reference vectors.

The ``model`` section has three parts:

* ``onnx`` — facts read from the file by ``hep-archive model add`` (never typed by hand): IR version, opsets,
  producer, graph inputs/outputs with dtypes and shapes (symbolic dimensions kept as names), ``metadata_props``,
  parameter count and the external tensor data files;
* the card — what a re-user needs and the file cannot say: input features (order, units, preprocessing), output
  meaning (logit / probability / per-event weight; OmniFold step, iteration, ensemble member), training datasets
  and configuration, intended use and limitations;
* ``reference`` — reference vectors (inputs with expected outputs and tolerances) stored as an object in a
  non-pickle format, which ``hep-archive model check`` reruns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import Field, JsonValue, StringConstraints, model_validator

from archive.schema.v1._common import LongText, RecordRef, RelPath, ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = [
    "Dim",
    "InputFeature",
    "ModelRecord",
    "ModelSpec",
    "OmniFoldRole",
    "OnnxInfo",
    "Opset",
    "OutputSpec",
    "Preprocessing",
    "ReferenceVectors",
    "TensorSpec",
    "TrainingInfo",
]

TensorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: a dimension: a fixed size, a symbolic name (``N``, ``batch``) or ``None`` when the file leaves it unnamed
Dim = int | Annotated[str, StringConstraints(min_length=1, max_length=100)] | None
OnnxDType = Literal[
    "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "bool", "string", "complex64", "complex128", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
    "float8e5m2fnuz", "uint4", "int4", "float4e2m1", "float8e8m0", "uint2", "int2", "other",
]


class Opset(StrictModel):
    domain: Annotated[str, StringConstraints(max_length=200)] = Field(description="'' is the default ai.onnx domain")
    version: int = Field(ge=1)


class TensorSpec(StrictModel):
    """A graph input or output as declared in the ONNX file."""

    name: TensorName
    dtype: OnnxDType
    shape: list[Dim] | None = Field(description="None when the rank is unknown; symbolic dimensions kept")


class OnnxInfo(StrictModel):
    """Facts read from the ONNX file at registration (``hep-archive model add``)."""

    file: RelPath = Field(description="path of the ONNX file among the record's files")
    ir_version: int = Field(ge=1)
    opsets: list[Opset] = Field(min_length=1)
    producer_name: Annotated[str, StringConstraints(max_length=500)] = ""
    producer_version: Annotated[str, StringConstraints(max_length=500)] = ""
    domain: Annotated[str, StringConstraints(max_length=500)] = ""
    model_version: int = 0
    doc_string: LongText = ""
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    metadata_props: dict[Annotated[str, StringConstraints(max_length=500)], LongText] = Field(default_factory=dict)
    parameter_count: int = Field(ge=0, description="elements in all initializers (dense and sparse)")
    external_data: list[RelPath] = Field(
        default_factory=list,
        description="external tensor data files, relative to the model's folder; each is one of the record's "
        "files (role model-external-data) with its digest",
    )


class InputFeature(StrictModel):
    """One input feature, in the order the network expects (the last axis of the first graph input).

    Preprocessing, applied by ``model apply`` before the network: ``x' = (clip(x, clip_min, clip_max) - shift) /
    scale``; missing values (NaN) become ``Preprocessing.padding_value`` first."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="column/observable")
    unit: Annotated[str, StringConstraints(max_length=50)] | None = Field(default=None, description="e.g. GeV, rad")
    description: ShortText | None = None
    shift: float = Field(default=0.0, description="subtracted (e.g. the training mean)")
    scale: float = Field(default=1.0, description="divided by after the shift (e.g. the training std)")
    clip_min: float | None = None
    clip_max: float | None = None

    @model_validator(mode="after")
    def _finite(self) -> InputFeature:
        if not (math.isfinite(self.shift) and math.isfinite(self.scale)) or self.scale == 0:
            raise ValueError(f"feature {self.name!r}: shift must be finite and scale finite and non-zero")
        if self.clip_min is not None and self.clip_max is not None and self.clip_min > self.clip_max:
            raise ValueError(f"feature {self.name!r}: clip_min > clip_max")
        return self


class Preprocessing(StrictModel):
    in_graph: bool = Field(
        default=False,
        description="true: the ONNX graph already standardises its inputs, feed raw feature values; false: "
        "apply each feature's clip/shift/scale before the network",
    )
    padding_value: float | None = Field(default=None, description="value for missing (NaN) or padded entries")
    description: LongText | None = None


OutputMeaning = Literal["logit", "probability", "weight", "score", "other"]


class OutputSpec(StrictModel):
    name: TensorName = Field(description="graph output name")
    meaning: OutputMeaning = Field(
        description="logit (weight = exp(logit)), probability (weight = p/(1-p)), weight (per-event), ..."
    )
    unit: Annotated[str, StringConstraints(max_length=50)] | None = None
    description: ShortText | None = None


class OmniFoldRole(StrictModel):
    """Where this network sits in an OmniFold unfolding."""

    step: Literal[1, 2] = Field(description="1: detector-level pull, 2: particle-level push")
    iteration: int = Field(ge=0)
    ensemble_member: int | None = Field(default=None, ge=0)
    ensemble_size: int | None = Field(default=None, ge=1)
    bootstrap: ShortText | None = Field(default=None, description="e.g. 'mc 3' for an MC-stat bootstrap replica")


class TrainingInfo(StrictModel):
    datasets: list[RecordRef] = Field(default_factory=list, description="dataset records it was trained on")
    configuration: dict[Annotated[str, StringConstraints(max_length=200)], JsonValue] = Field(
        default_factory=dict, description="training configuration (optimiser, epochs, batch size, seed, ...)"
    )
    framework: ShortText | None = Field(default=None, description="e.g. torch 2.13.0")
    code: ShortText | None = Field(default=None, description="repository and commit of the training code")

    @model_validator(mode="after")
    def _datasets_are_datasets(self) -> TrainingInfo:
        for ref in self.datasets:
            if not ref.startswith("dataset/"):
                raise ValueError(f"training dataset {ref!r} must be a dataset record (dataset/NAME[@VERSION])")
        return self


class ReferenceVectors(StrictModel):
    """Inputs with expected outputs: tensors ``input/<name>`` and ``output/<name>`` in one file."""

    file: RelPath = Field(description="path of the reference file among the record's files (role reference)")
    format: Literal["safetensors"] = "safetensors"
    inputs: list[TensorName] = Field(min_length=1)
    outputs: list[TensorName] = Field(min_length=1)
    rows: int = Field(ge=1)
    atol: float = Field(ge=0)
    rtol: float = Field(ge=0)
    produced_by: ShortText = Field(description="what computed the expected outputs, e.g. torch 2.13.0 (cpu)")


class ModelSpec(StrictModel):
    """Kind-specific section of a model record."""

    format: Literal["onnx"] = "onnx"
    onnx: OnnxInfo | None = None
    inputs: list[InputFeature] = Field(default_factory=list, description="features in network order")
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    outputs: list[OutputSpec] = Field(default_factory=list)
    omnifold: OmniFoldRole | None = None
    training: TrainingInfo = Field(default_factory=TrainingInfo)
    intended_use: LongText | None = None
    limitations: LongText | None = None
    evaluation: LongText | None = None
    reference: ReferenceVectors | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        names = [f.name for f in self.inputs]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate input feature names: {sorted({n for n in names if names.count(n) > 1})}")
        if self.onnx is not None:
            graph_out = {t.name for t in self.onnx.outputs}
            for o in self.outputs:
                if o.name not in graph_out:
                    raise ValueError(f"output {o.name!r} is not a graph output (graph has {sorted(graph_out)})")
            if self.reference is not None:
                missing = set(self.reference.inputs) - {t.name for t in self.onnx.inputs}
                if missing:
                    raise ValueError(f"reference inputs {sorted(missing)} are not graph inputs")
        return self


class ModelRecord(KindRecord):
    KIND: ClassVar[str] = "model"
    schema_version: Literal["1.0.0"] = "1.0.0"
    model: ModelSpec = Field(default_factory=ModelSpec)

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        for i, ref in enumerate(self.model.training.datasets):
            yield f"model.training.datasets[{i}]", ref

    @model_validator(mode="after")
    def _files_listed(self) -> ModelRecord:
        paths = {f.path: f for f in self.files}
        spec = self.model
        if spec.onnx is not None:
            needed = [(spec.onnx.file, "model"), *((p, "model-external-data") for p in spec.onnx.external_data)]
            for path, role in needed:
                if path not in paths:
                    raise ValueError(f"model file {path!r} is not among the record's files")
                if paths[path].role != role:
                    raise ValueError(f"file {path!r} must have role {role!r}")
        if spec.reference is not None and spec.reference.file not in paths:
            raise ValueError(f"reference file {spec.reference.file!r} is not among the record's files")
        return self
