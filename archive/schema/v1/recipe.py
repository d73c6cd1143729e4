"""The ``recipe`` record (schema v1). A REANA workflow recipe (reana.yaml and its files)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from archive.schema.v1._common import RecordRef, RelPath, ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = ["OutputTolerance", "RecipeRecord", "RecipeSpec", "RecipeStep", "StepResources"]

ParamValue = str | int | float | bool
StepName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
Command = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class StepResources(StrictModel):
    """Declared resources of a step (REANA's kubernetes_* fields plus our own ``gpu``)."""

    cpu: ShortText | None = Field(default=None, description="kubernetes_cpu_limit, e.g. '2' or '500m'")
    memory: ShortText | None = Field(default=None, description="kubernetes_memory_limit, e.g. '2Gi'")
    gpu: int = Field(default=0, ge=0, le=64, description="GPUs the step needs (REANA has no field for this)")
    timeout_s: int | None = Field(default=None, ge=1, description="kubernetes_job_timeout in seconds")
    cvmfs: list[ShortText] = Field(default_factory=list, max_length=60)


class OutputTolerance(StrictModel):
    """How a rerun output may differ from the archived one and still count as reproduced.

    ``atol``/``rtol``: element-wise ``|a-b| <= atol + rtol*|b|`` on numeric arrays. ``chi2_p_min``: a
    chi-squared test of two histograms (values with variances) passes when its p-value is at least this."""

    atol: float = Field(default=0.0, ge=0)
    rtol: float = Field(default=0.0, ge=0)
    chi2_p_min: float | None = Field(default=None, gt=0, lt=1)


class RecipeStep(StrictModel):
    """One serial step: its image (pinned), its commands (unsubstituted), its declared files."""

    name: StepName
    environment: ImageRef = Field(description="as written in reana.yaml")
    image: RecordRef | None = Field(default=None, description="the container record the environment resolves to")
    image_digest: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    commands: list[Command] = Field(min_length=1, max_length=1000)
    inputs: list[RelPath] = Field(default_factory=list, max_length=10_000)
    outputs: list[RelPath] = Field(default_factory=list, max_length=10_000)
    cache: bool = True
    resources: StepResources = Field(default_factory=StepResources)


class RecipeSpec(StrictModel):
    """Kind-specific section of a recipe record: what the reana.yaml (and its side file) declare."""

    engine: Literal["serial", "cwl", "yadage", "snakemake"] = "serial"
    spec_file: RelPath = "reana.yaml"
    side_file: RelPath | None = Field(default=None, description="hep-archive.yaml step annotations, if any")
    workflow_file: RelPath | None = Field(default=None, description="workflow.file for cwl/yadage/snakemake")
    reana_version: ShortText | None = None
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    input_files: list[RelPath] = Field(default_factory=list, max_length=100_000)
    input_directories: list[RelPath] = Field(default_factory=list, max_length=10_000)
    output_files: list[RelPath] = Field(default_factory=list, max_length=100_000)
    output_directories: list[RelPath] = Field(default_factory=list, max_length=10_000)
    datasets: dict[RelPath, RecordRef] = Field(
        default_factory=dict, description="workspace folder -> dataset record staged there as an input"
    )
    steps: list[RecipeStep] = Field(default_factory=list, max_length=1000)
    tolerances: dict[RelPath, OutputTolerance] = Field(default_factory=dict)
    gpu: bool = Field(default=False, description="some step declares a GPU")
    validated_with: list[ShortText] = Field(
        default_factory=list, description="validators that passed, e.g. 'hep-archive', 'reana-commons 0.9.11'"
    )
    warnings: list[Annotated[str, StringConstraints(max_length=2000)]] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _unique_steps(self) -> RecipeSpec:
        names = [s.name for s in self.steps]
        if len(names) != len(set(names)):
            raise ValueError("step names must be unique")
        return self


class RecipeRecord(KindRecord):
    KIND: ClassVar[str] = "recipe"
    schema_version: Literal["1.0.0"] = "1.0.0"
    recipe: RecipeSpec = Field(default_factory=RecipeSpec)

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        for i, step in enumerate(self.recipe.steps):
            if step.image is not None:
                yield f"recipe.steps[{i}].image", step.image
        for path, ref in self.recipe.datasets.items():
            yield f"recipe.datasets[{path}]", ref
