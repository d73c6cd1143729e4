"""The ``dataset`` record (schema v1). An unbinned (or dense) dataset: events, weights, arrays.

A dataset is one or more row-aligned *tables* stored as separate objects in the content-addressed store: one
event table (the observables), zero or more weight tables (added later without rewriting the events) and
optional dense N-dimensional arrays (Zarr v3). The alignment contract (row count plus a digest of the
row-order / event-id column, recorded per table) says that row ``i`` of every table is the same event.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from archive.schema.v1._common import Digest, RelPath, ShortText, StrictModel
from archive.schema.v1._kinds import KindRecord

__all__ = [
    "Alignment",
    "Binning",
    "Combination",
    "DatasetRecord",
    "DatasetSpec",
    "Distribution",
    "FiducialCut",
    "Generator",
    "Link",
    "Luminosity",
    "Measurement",
    "Normalisation",
    "TableSpec",
    "Unfolding",
    "Variable",
    "WeightFamily",
]

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Scalar = str | int | float | bool


class Combination(StrictModel):
    """How the histograms of a weight family's columns combine into one uncertainty per bin.

    ``sum_w2``: sigma^2 = sum of w^2 per bin (MC statistics of the family's one column); ``std_replicas``: std over
    the replica histograms (``ddof``); ``sem_median_ensemble``: ``factor`` * std(replicas, ddof) / sqrt(N)
    (standard error of the median, factor 1.253 by default); ``quadrature_diff``: sigma^2 = sum_k (h_k - h_ref)^2;
    ``paired_closure``: per pair |h_a - h_b| * h_ref / h_b, pairs in quadrature; ``alternative_sample``:
    |h_alt - h_ref|; ``none``: the family is not an uncertainty (a prior, the nominal)."""

    rule: Literal["sum_w2", "std_replicas", "sem_median_ensemble", "quadrature_diff", "paired_closure",
                  "alternative_sample", "none"]
    ddof: int = Field(default=1, ge=0, le=1)
    factor: float | None = Field(default=None, gt=0, le=1e6)
    reference: ColumnName | None = Field(
        default=None, description="family (or column) differences are taken against; default: the nominal family"
    )


class Normalisation(StrictModel):
    kind: Literal["absolute", "shape"]
    unit: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = Field(
        default=None, description="cross-section unit of absolute weights, e.g. fb"
    )


WeightType = Literal["nominal", "prior", "ensemble", "bootstrap_data", "bootstrap_mc", "systematic", "paired",
                     "alternative_sample"]


class WeightFamily(StrictModel):
    """A named set of weight columns with one meaning and one combination rule."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    type: WeightType
    columns: list[ColumnName] = Field(default_factory=list, max_length=100_000)
    pattern: Annotated[str, StringConstraints(min_length=4, max_length=200, pattern=r"\{i\}")] | None = Field(
        default=None, description="column name pattern with '{i}', used with index_range, e.g. weights_ensemble_{i}"
    )
    index_range: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="[start, stop) of the pattern's index"
    )
    pairs: list[tuple[ColumnName, ColumnName]] | None = Field(
        default=None, description="paired families: (a, b) column pairs, e.g. (weights_dd, target_dd)"
    )
    combination: Combination
    normalisation: Normalisation
    includes_mc_weight: bool = Field(description="true: absolute weights already multiplied by the MC weight; "
                                                 "false: reweighting factors to multiply by the prior")
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None

    def resolved_columns(self) -> list[str]:
        """Every column of the family in order: explicit columns, then the pattern's, then the pairs'."""
        out = list(self.columns)
        if self.pattern is not None and self.index_range is not None:
            out += [self.pattern.replace("{i}", str(i)) for i in range(*self.index_range)]
        for a, b in self.pairs or []:
            out += [a, b]
        return list(dict.fromkeys(out))

    @model_validator(mode="after")
    def _shape(self) -> WeightFamily:
        if (self.pattern is None) != (self.index_range is None):
            raise ValueError("'pattern' and 'index_range' go together")
        if self.index_range is not None and self.index_range[1] <= self.index_range[0]:
            raise ValueError("'index_range' must be [start, stop) with stop > start")
        if not self.resolved_columns():
            raise ValueError("a weight family needs 'columns', a 'pattern' with 'index_range', or 'pairs'")
        if self.combination.rule == "paired_closure" and not self.pairs:
            raise ValueError("rule 'paired_closure' needs 'pairs'")
        if self.combination.rule == "sum_w2" and len(self.resolved_columns()) != 1:
            raise ValueError("rule 'sum_w2' applies to a family of exactly one column")
        return self


class Variable(StrictModel):
    """One column (or dense array) of the dataset."""

    name: ColumnName
    dtype: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="numpy-style dtype of the values, e.g. float32, int32; jagged: 'var * float32'"
    )
    table: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(description="table holding it")
    shape: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="per-event shape of dense arrays, e.g. [3, 96] for layers x voxels"
    )
    unit: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    level: Literal["particle", "detector", "parton", "event", "weight"] | None = None
    expression: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        default=None, description="what it derives from, e.g. 'tau2_trackj1 / tau1_trackj1'"
    )
    digest: Digest | None = Field(default=None, description="sha256 of the values in canonical form (see docs)")
    minimum: float | None = Field(default=None, allow_inf_nan=False, description="smallest value (flat numbers)")
    maximum: float | None = Field(default=None, allow_inf_nan=False, description="largest value (flat numbers)")
    sum: float | None = Field(default=None, allow_inf_nan=False,
                              description="sum over all events (weights: the total in the family's unit)")

    @property
    def jagged(self) -> bool:
        return self.dtype.startswith("var * ")


class Alignment(StrictModel):
    """The row-alignment contract of a table: its row count and the digest of its row-order column."""

    num_rows: int = Field(ge=0)
    key: ColumnName = Field(description="the event-id / row-order column every table carries")
    key_digest: Digest = Field(description="sha256 of the key column's little-endian int64 values")
    synthetic: bool = Field(default=True, description="true: the key is the original row order 0..N-1")


class TableSpec(StrictModel):
    """One stored, row-aligned table (a file in ``files`` with the same ``path``)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    role: Literal["events", "weights", "array"]
    path: RelPath
    format: Literal["parquet", "zarr-zip"]
    columns: list[ColumnName] = Field(max_length=100_000)
    alignment: Alignment
    row_groups: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, description="rows per row group (Parquet) or per chunk (Zarr), in order"
    )
    compression: Annotated[str, StringConstraints(max_length=200)] | None = None


class FiducialCut(StrictModel):
    variable: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    operator: Literal["<", "<=", ">", ">=", "==", "!=", "abs<", "abs<=", "abs>", "abs>="]
    value: float
    unit: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    description: ShortText | None = None


class Generator(StrictModel):
    name: ShortText
    version: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    role: Literal["prior", "alternative", "background", "pseudo-data", "other"] = "prior"
    description: ShortText | None = None


class Unfolding(StrictModel):
    method: ShortText = Field(description="e.g. OmniFold, IBU, MultiFold")
    parameters: dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], Scalar] = Field(
        default_factory=dict, description="iterations, ensemble size, network, ..."
    )
    unfolded_observables: list[ColumnName] = Field(default_factory=list)


class Luminosity(StrictModel):
    value: float = Field(gt=0)
    unit: Literal["pb-1", "fb-1", "nb-1", "ab-1"] = "fb-1"
    uncertainty: float | None = Field(default=None, ge=0, description="relative, e.g. 0.0083")


class Link(StrictModel):
    type: Literal["paper", "arxiv", "hepdata", "code", "zenodo", "inspire", "doi", "documentation", "other"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    description: ShortText | None = None


class Measurement(StrictModel):
    """What was measured; experiment and sqrt(s) live in the envelope (``experiment``, ``collision``)."""

    process: ShortText | None = None
    channel: ShortText | None = None
    luminosity: Luminosity | None = None
    fiducial_cuts: list[FiducialCut] = Field(default_factory=list, max_length=1000)
    generators: list[Generator] = Field(default_factory=list, max_length=100)
    unfolding: Unfolding | None = None
    links: list[Link] = Field(default_factory=list, max_length=100)


class Binning(StrictModel):
    """An official binning of one observable (``edges`` ascending), with where it comes from."""

    edges: list[float] = Field(min_length=2, max_length=100_000)
    source: ShortText | None = Field(default=None, description="e.g. 'IBU bins of the paper', 'HEPData table 3'")
    selection: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _ascending(self) -> Binning:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("bin edges must be strictly ascending")
        return self


class Distribution(StrictModel):
    events: int = Field(ge=0)
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)
    formats: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(default_factory=list)
    source_formats: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=list, description="formats of the ingested files"
    )


class DatasetSpec(StrictModel):
    """Kind-specific section of a dataset record: tables, variables, weight families, measurement."""

    num_rows: int = Field(default=0, ge=0)
    tables: list[TableSpec] = Field(default_factory=list, max_length=1000)
    variables: list[Variable] = Field(default_factory=list, max_length=100_000)
    weights: list[WeightFamily] = Field(default_factory=list, max_length=10_000)
    measurement: Measurement = Field(default_factory=Measurement)
    binnings: dict[ColumnName, Binning] = Field(default_factory=dict, description="official binning per observable")
    distribution: Distribution | None = None

    def table(self, name: str) -> TableSpec:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = [v.name for v in self.variables]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"duplicate column names: {', '.join(dups[:5])}")
        tnames = [t.name for t in self.tables]
        if len(tnames) != len(set(tnames)):
            raise ValueError("duplicate table names")
        known = set(names)
        for t in self.tables:
            if t.alignment.num_rows != self.num_rows:
                raise ValueError(f"table {t.name!r} has {t.alignment.num_rows} rows, the dataset {self.num_rows}")
            missing = [c for c in t.columns if c not in known]
            if missing:
                raise ValueError(f"table {t.name!r} lists columns without a variable: {', '.join(missing[:5])}")
        keys = {(t.alignment.key, t.alignment.key_digest) for t in self.tables if t.role != "array"}
        if len(keys) > 1:
            raise ValueError("tables disagree on the alignment key or its digest (rows are not aligned)")
        fam = [f.name for f in self.weights]
        if len(fam) != len(set(fam)):
            raise ValueError("duplicate weight family names")
        for f in self.weights:
            missing = [c for c in f.resolved_columns() if c not in known]
            if missing:
                raise ValueError(f"weight family {f.name!r} names columns that do not exist: {', '.join(missing[:5])}")
        return self


class DatasetRecord(KindRecord):
    KIND: ClassVar[str] = "dataset"
    schema_version: Literal["1.0.0"] = "1.0.0"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)

    @model_validator(mode="after")
    def _tables_are_files(self) -> DatasetRecord:
        paths = {f.path: f for f in self.files}
        for i, t in enumerate(self.dataset.tables):
            if t.path not in paths:
                raise ValueError(f"dataset.tables[{i}] ({t.name}): path {t.path!r} is not in 'files'")
        return self
