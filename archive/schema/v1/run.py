"""The ``run`` record (schema v1). The provenance of one execution of a recipe."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from archive.schema.v1._common import Digest, RecordRef, RelPath, ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = [
    "Comparison",
    "DeviceUse",
    "HostInfo",
    "OutputComparison",
    "RunFile",
    "RunRecord",
    "RunSpec",
    "StepRun",
]

Text = Annotated[str, StringConstraints(max_length=100_000)]
ParamValue = str | int | float | bool


class RunFile(StrictModel):
    """A file a step read or wrote, by workspace-relative path and content digest."""

    path: RelPath
    sha256: Digest
    size: int = Field(ge=0)


class DeviceUse(StrictModel):
    """An accelerator framework a step reported using (``$HEP_ARCHIVE_PROVENANCE`` lines)."""

    framework: ShortText = Field(description="onnxruntime | torch | ...")
    version: ShortText | None = None
    device: ShortText = Field(description="e.g. cpu, cuda:0")
    providers: list[ShortText] = Field(default_factory=list, description="onnxruntime providers actually used")
    options: dict[str, Any] = Field(default_factory=dict)


class StepRun(StrictModel):
    """What happened in one step."""

    name: ShortText
    image: RecordRef | None = None
    image_digest: Digest | None = None
    commands: list[Text] = Field(default_factory=list, description="after parameter substitution")
    cache_key: Digest
    cached: bool = Field(default=False, description="outputs restored from the step cache, nothing executed")
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    exit_code: int | None = None
    runner: ShortText | None = None
    runner_version: ShortText | None = None
    stdout: Digest | None = None
    stderr: Digest | None = None
    inputs: list[RunFile] = Field(default_factory=list)
    outputs: list[RunFile] = Field(default_factory=list)
    devices: list[DeviceUse] = Field(default_factory=list)
    error: Text | None = None


class HostInfo(StrictModel):
    hostname_digest: Digest | None = Field(default=None, description="sha256 of the hostname (not the name)")
    system: ShortText
    kernel: ShortText
    machine: ShortText
    cpu: ShortText | None = None
    cpu_count: int | None = None
    gpus: list[ShortText] = Field(default_factory=list)
    python: ShortText


class OutputComparison(StrictModel):
    path: RelPath
    verdict: Literal["identical", "within-tolerance", "differs", "missing"]
    method: Literal["digest", "array", "chi2", "none"] = "digest"
    archived: Digest | None = None
    rerun: Digest | None = None
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    chi2: float | None = None
    ndf: int | None = None
    p_value: float | None = None
    detail: Text | None = None


class Comparison(StrictModel):
    """The verdict of a rerun against the archived run."""

    reference_run: RecordRef
    verdict: Literal["reproduced", "reproduced within tolerance", "differs", "failed"]
    outputs: list[OutputComparison] = Field(default_factory=list)


class RunSpec(StrictModel):
    """Kind-specific section of a run record: recipe, parameters, host, per-step provenance, verdict."""

    recipe: RecordRef
    engine: ShortText = Field(description="workflow engine, e.g. hep-archive-serial/1.0.0")
    engine_version: ShortText
    backend: Literal["local", "bwrap", "podman", "docker", "apptainer", "reana"]
    device: Literal["cpu", "gpu"] = "cpu"
    status: Literal["succeeded", "failed"]
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    started: dt.datetime
    ended: dt.datetime
    host: HostInfo
    packages: dict[str, str] = Field(default_factory=dict)
    seeds: dict[str, ParamValue] = Field(default_factory=dict)
    datasets: list[RecordRef] = Field(default_factory=list)
    steps: list[StepRun] = Field(default_factory=list)
    outputs: list[RunFile] = Field(default_factory=list, description="the recipe's declared outputs")
    error: Text | None = Field(default=None, description="why the run failed, when it did")
    reana_workflow: ShortText | None = Field(default=None, description="REANA workflow id for --backend reana")
    comparison: Comparison | None = None


class RunRecord(KindRecord):
    KIND: ClassVar[str] = "run"
    schema_version: Literal["1.0.0"] = "1.0.0"
    run: RunSpec

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        yield "run.recipe", self.run.recipe
        for i, step in enumerate(self.run.steps):
            if step.image is not None:
                yield f"run.steps[{i}].image", step.image
        for i, ref in enumerate(self.run.datasets):
            yield f"run.datasets[{i}]", ref
        if self.run.comparison is not None:
            yield "run.comparison.reference_run", self.run.comparison.reference_run
