"""Phase 2: the chain's outputs stored with the datasets and models layers, then validated and verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.reference import OBSERVABLES
from archive.reference._common import read_parquet

from .conftest import CARDS, SMALL_EVENTS, SMALL_UNFOLD


def test_results_become_dataset_and_model_records(small_chain: tuple[Path, dict[str, Any]], tmp_archive: Any,
                                                  tmp_path: Path) -> None:
    pytest.importorskip("archive.datasets")
    pytest.importorskip("archive.models")
    import shutil

    from archive.catalog import validate_archive
    from archive.datasets import open_dataset
    from archive.integrity import verify_archive
    from archive.reference._publish import store_results

    # a copy: storing writes target.parquet beside the outputs, which the shared run must not gain (the
    # byte-identity test in test_chain.py compares every file of it)
    work = Path(shutil.copytree(small_chain[0], tmp_path / "work"))
    stored = store_results(tmp_archive, work, events=SMALL_EVENTS, cards=CARDS)
    records = stored["records"]
    assert records["dataset"] == "dataset/zjets-omnifold-pseudodata@1.0.0"
    assert records["truth"] == "dataset/zjets-omnifold-pseudodata-truth@1.0.0"
    assert records["altprior"] == "dataset/zjets-omnifold-pseudodata-altprior@1.0.0"
    truth = open_dataset(tmp_archive, "zjets-omnifold-pseudodata-truth")
    source = read_parquet(work / "data_truth.parquet", ["pass"])["pass"]
    assert truth.num_rows == int(source.sum()) and "Ntracks_trackj1" in truth.columns
    assert len(records["models"]) == SMALL_UNFOLD["ensemble"]
    # the recipe and the run are recorded by the engine (archive.demo), not here
    assert "recipe" not in records and stored["skipped"] == {}
    ds = open_dataset(tmp_archive, "zjets-omnifold-pseudodata")
    assert {f.name for f in ds.weight_families} >= {"nominal", "ensemble", "bootstrap_data", "bootstrap_mc",
                                                    "detector", "unfolding_dd"}
    got = ds.read(["pT_ll", "weights_nominal", "weights_muCalScale"])
    src = read_parquet(work / "unfolded.parquet", ["pT_ll", "weights_nominal", "weights_muCalScale"])
    for name, values in src.items():
        assert np.array_equal(got[name], values)
    assert all(o in ds.columns for o in OBSERVABLES)
    model = tmp_archive.record(records["models"][0])
    assert [f.name for f in model.model.inputs] == OBSERVABLES and model.model.omnifold.step == 2
    assert model.model.training.datasets == [records["dataset"]]
    assert validate_archive(tmp_archive) == []
    assert verify_archive(tmp_archive).ok
