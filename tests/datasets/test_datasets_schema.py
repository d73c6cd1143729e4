"""The dataset record schema: weight families per the pinned contract, and the record's consistency rules."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from archive.schema import parse_record
from archive.schema.v1.dataset import Combination, DatasetSpec, WeightFamily

NORM = {"kind": "absolute", "unit": "fb"}


def fam(**kw: Any) -> WeightFamily:
    base = {"name": "f", "type": "systematic", "combination": {"rule": "quadrature_diff"}, "normalisation": NORM,
            "includes_mc_weight": True}
    return WeightFamily.model_validate({**base, **kw})


def test_resolved_columns_pattern_and_pairs() -> None:
    f = fam(type="ensemble", pattern="weights_ensemble_{i}", index_range=[0, 3],
            combination={"rule": "sem_median_ensemble", "factor": 1.253})
    assert f.resolved_columns() == ["weights_ensemble_0", "weights_ensemble_1", "weights_ensemble_2"]
    p = fam(type="paired", pairs=[["weights_dd", "target_dd"]], combination={"rule": "paired_closure"})
    assert p.resolved_columns() == ["weights_dd", "target_dd"]
    assert fam(columns=["a", "b", "a"]).resolved_columns() == ["a", "b"]
    assert Combination(rule="std_replicas").ddof == 1 and Combination(rule="none").reference is None


@pytest.mark.parametrize("kw, msg", [
    ({"pattern": "w_{i}"}, "go together"),
    ({"pattern": "w_{i}", "index_range": [3, 3]}, "stop > start"),
    ({}, "needs 'columns'"),
    ({"columns": ["a"], "combination": {"rule": "paired_closure"}}, "needs 'pairs'"),
    ({"columns": ["a", "b"], "combination": {"rule": "sum_w2"}}, "exactly one column"),
    ({"columns": ["a"], "type": "replica"}, "type"),
    ({"columns": ["a"], "normalisation": {"kind": "relative"}}, "kind"),
])
def test_family_rules(kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=msg):
        fam(**kw)


def _record(**spec: Any) -> dict[str, Any]:
    digest = "sha256:" + "0" * 64
    table = {"name": "events", "role": "events", "path": "events.parquet", "format": "parquet", "columns": ["x", "w"],
             "alignment": {"num_rows": 3, "key": "_row", "key_digest": digest}, "row_groups": [3]}
    return {"id": "dataset/d", "version": "1.0.0", "title": "d",
            "files": [{"path": "events.parquet", "size": 1, "sha256": digest}],
            "dataset": {"num_rows": 3, "tables": [table],
                        "variables": [{"name": "x", "dtype": "float32", "table": "events"},
                                      {"name": "w", "dtype": "float64", "table": "events"}], **spec}}


def test_record_consistency() -> None:
    good = parse_record(_record(weights=[{"name": "nominal", "type": "nominal", "columns": ["w"],
                                          "combination": {"rule": "sum_w2"}, "normalisation": NORM,
                                          "includes_mc_weight": True}]))
    assert good.dataset.weights[0].name == "nominal"  # type: ignore[attr-defined]
    from archive.errors import ValidationError

    with pytest.raises(ValidationError) as e:
        parse_record(_record(weights=[{"name": "n", "type": "nominal", "columns": ["nope"],
                                       "combination": {"rule": "sum_w2"}, "normalisation": NORM,
                                       "includes_mc_weight": True}]))
    assert "do not exist: nope" in str(e.value.problems[0])
    bad = _record()
    bad["dataset"]["variables"].append({"name": "x", "dtype": "int32", "table": "events"})
    with pytest.raises(ValidationError) as e:
        parse_record(bad)
    assert "duplicate column names: x" in str(e.value.problems[0])
    bad = _record()
    bad["dataset"]["num_rows"] = 4
    with pytest.raises(ValidationError):
        parse_record(bad)
    bad = _record()
    bad["files"] = []
    with pytest.raises(ValidationError):
        parse_record(bad)
    assert DatasetSpec().num_rows == 0
