"""Bad input gets one clear error and leaves the archive unchanged; versions, add_columns and diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive.datasets import add_columns, diff, ingest, open_dataset
from archive.errors import ImmutableError, ValidationError


def _parquet(path: Path, **cols: Any) -> Path:
    pq.write_table(pa.table({k: np.asarray(v) for k, v in cols.items()}), path)
    return path


def _fam(name: str, cols: list[str], **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": kw.pop("type", "systematic"), "columns": cols,
            "combination": kw.pop("combination", {"rule": "quadrature_diff"}),
            "normalisation": {"kind": "absolute", "unit": "fb"}, "includes_mc_weight": True, **kw}


@pytest.fixture
def small(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    return _parquet(tmp_path / "small.parquet", x=rng.normal(size=500).astype(np.float32),
                    weight=np.full(500, 0.5), w_up=np.full(500, 0.55), w_down=np.full(500, 0.45))


def _expect_refused(archive: Any, snapshot: Any, match: str, exc: type[Exception] = ValidationError,
                    **kw: Any) -> str:
    before = snapshot(archive)
    with pytest.raises(exc, match=match) as info:
        ingest(archive, **kw)
    assert snapshot(archive) == before, "a refused ingest must leave the archive unchanged"
    assert "\n" not in str(info.value)
    return str(info.value)


def test_family_with_missing_columns(tmp_archive: Any, small: Path, snapshot: Any) -> None:
    meta = {"weights": [_fam("nominal", ["weight"], type="nominal", combination={"rule": "sum_w2"}),
                        _fam("np", ["w_up", "w_sideways"])]}
    msg = _expect_refused(tmp_archive, snapshot, "do not exist", paths=[small], name="d", version="1.0.0",
                          metadata=meta)
    assert "w_sideways" in msg and "'np'" in msg


def test_row_count_mismatch_between_tables(tmp_archive: Any, tmp_path: Path, snapshot: Any) -> None:
    ev = _parquet(tmp_path / "events.parquet", x=np.arange(10.0))
    wt = _parquet(tmp_path / "weights.parquet", weight=np.ones(9))
    _expect_refused(tmp_archive, snapshot, "row-count mismatch", paths=[ev, wt], name="d", version="1.0.0")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_archive: Any, tmp_path: Path, snapshot: Any, bad: float) -> None:
    w = np.ones(300)
    w[217] = bad
    p = _parquet(tmp_path / "w.parquet", x=np.arange(300.0), weight=w)
    msg = _expect_refused(tmp_archive, snapshot, "NaN/infinite", paths=[p], name="d", version="1.0.0")
    assert "row 217" in msg and "'weight'" in msg


def test_nan_in_a_late_row_group_leaves_nothing(tmp_archive: Any, tmp_path: Path, snapshot: Any) -> None:
    w = np.ones(5000)
    w[4999] = np.nan
    p = _parquet(tmp_path / "w.parquet", x=np.arange(5000.0), weight=w)
    before = snapshot(tmp_archive)
    with pytest.raises(ValidationError, match="row 4999"):
        ingest(tmp_archive, [p], name="d", version="1.0.0", row_group_rows=1000)
    assert snapshot(tmp_archive) == before


def test_duplicate_column_names(tmp_archive: Any, tmp_path: Path, snapshot: Any) -> None:
    a = _parquet(tmp_path / "a.parquet", x=np.arange(5.0), y=np.arange(5.0))
    b = _parquet(tmp_path / "b.parquet", y=np.arange(5.0), z=np.arange(5.0))
    _expect_refused(tmp_archive, snapshot, "duplicate column name 'y'", paths=[a, b], name="d", version="1.0.0")
    # and inside one file (an HDF5 frame whose axis0 repeats a name)
    import h5py

    from archive.datasets.testing import build_atlas_fixture

    h = build_atlas_fixture(tmp_path / "dup.h5", n_bootstrap=2, writer="h5py")
    with h5py.File(h, "r+") as f:
        names = f["df/axis0"][()]
        names[1] = names[0]
        del f["df/axis0"]
        f["df"].create_dataset("axis0", data=names)
    _expect_refused(tmp_archive, snapshot, "duplicate column names", paths=[h], name="d", version="1.0.0")


def test_version_reuse_is_refused(tmp_archive: Any, small: Path, snapshot: Any) -> None:
    ingest(tmp_archive, [small], name="d", version="1.0.0")
    _expect_refused(tmp_archive, snapshot, "already exists", exc=ImmutableError, paths=[small], name="d",
                    version="1.0.0")
    tmp_archive.catalog.publish("dataset/d@1.0.0")
    _expect_refused(tmp_archive, snapshot, "never reused", exc=ImmutableError, paths=[small], name="d",
                    version="1.0.0")


def test_cli_errors_are_one_line(cli: Any, tmp_archive: Any, tmp_path: Path) -> None:
    w = np.ones(10)
    w[3] = np.nan
    p = _parquet(tmp_path / "w.parquet", x=np.arange(10.0), weight=w)
    r = cli("--root", tmp_archive.root, "ingest", p, "--name", "d", "--version", "1.0.0")
    assert r.code == 1
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "NaN" in lines[0]
    assert "Traceback" not in r.err


def test_add_columns_reuses_event_table_and_diff(tmp_archive: Any, small: Path) -> None:
    ingest(tmp_archive, [small], name="d", version="1.0.0", row_group_rows=128)
    base = open_dataset(tmp_archive, "d@1.0.0")
    x = base.read(["x"])["x"]
    rec = add_columns(tmp_archive, "d@1.0.0", {"w_pdf": np.full(500, 0.52)}, new_version="1.1.0",
                      family=_fam("pdf", ["w_pdf"]))
    old = {f.path: f.sha256 for f in base.record.files}
    new = {f.path: f.sha256 for f in rec.files}
    assert new["events.parquet"] == old["events.parquet"]  # the event table object is reused, not rewritten
    assert len(new) == len(old) + 1
    ds = open_dataset(tmp_archive, "d", "1.1.0")
    assert ds.family("pdf").columns == ["w_pdf"]
    # rows stay aligned across the old and the new table, batch by batch
    for batch in ds.iter_batches(["x", "w_pdf"], batch_rows=77):
        assert len(batch["x"]) == len(batch["w_pdf"])
    assert np.array_equal(ds.read(["x"])["x"], x)
    assert ds.verify() == []
    d = diff(tmp_archive, "d@1.0.0", "d@1.1.0")
    assert d["columns_added"] == ["w_pdf"] and d["families_added"] == ["pdf"]
    assert d["columns_removed"] == [] and d["columns_changed"] == [] and not d["rows"]["changed"]
    assert "events" in d["tables_reused"]
    # the old version stays readable
    assert open_dataset(tmp_archive, "d@1.0.0").columns == ["x", "weight", "w_up", "w_down"]
    from archive.catalog import validate_archive

    assert validate_archive(tmp_archive) == []


def test_add_columns_errors(tmp_archive: Any, small: Path, snapshot: Any) -> None:
    ingest(tmp_archive, [small], name="d", version="1.0.0")
    before = snapshot(tmp_archive)
    with pytest.raises(ValidationError, match="row-count mismatch"):
        add_columns(tmp_archive, "d", {"w2": np.ones(499)}, new_version="1.1.0")
    with pytest.raises(ValidationError, match="duplicate column name 'x'"):
        add_columns(tmp_archive, "d", {"x": np.ones(500)}, new_version="1.1.0")
    bad = np.ones(500)
    bad[10] = np.inf
    with pytest.raises(ValidationError, match="NaN/infinite"):
        add_columns(tmp_archive, "d", {"w2": bad}, new_version="1.1.0", family=_fam("f", ["w2"]))
    with pytest.raises(ValidationError, match="do not exist"):
        add_columns(tmp_archive, "d", {"w2": np.ones(500)}, new_version="1.1.0", family=_fam("f", ["w3"]))
    with pytest.raises(ImmutableError):
        add_columns(tmp_archive, "d", {"w2": np.ones(500)}, new_version="1.0.0")
    assert snapshot(tmp_archive) == before


def test_reingest_changed_content_diff(tmp_archive: Any, tmp_path: Path, cli: Any) -> None:
    a = _parquet(tmp_path / "a.parquet", x=np.arange(10.0), y=np.arange(10.0), weight=np.ones(10))
    b = _parquet(tmp_path / "b.parquet", x=np.arange(12.0), y=np.arange(12, dtype=np.float32), z=np.ones(12),
                 weight=np.ones(12))
    ingest(tmp_archive, [a], name="d", version="1.0.0")
    ingest(tmp_archive, [b], name="d", version="2.0.0")
    d = diff(tmp_archive, "d@1.0.0", "d@2.0.0")
    assert d["rows"] == {"a": 10, "b": 12, "changed": True}
    assert d["columns_added"] == ["z"]
    changed = {c["name"]: c["reason"] for c in d["columns_changed"]}
    assert "float64" in changed["y"] and "float32" in changed["y"]
    assert changed["x"] == "values differ"
    r = cli("--root", tmp_archive.root, "--json", "diff", "d@1.0.0", "d@2.0.0")
    assert r.code == 0 and r.json()["columns_added"] == ["z"]
    r = cli("--root", tmp_archive.root, "diff", "d@1.0.0", "d@2.0.0")
    assert "+ z" in r.out and "rows: 10 -> 12" in r.out
    assert np.array_equal(open_dataset(tmp_archive, "d@1.0.0").read(["x"])["x"], np.arange(10.0))


def test_progress_callback_counts_every_row(tmp_archive: Any, tmp_path: Path) -> None:
    p = _parquet(tmp_path / "p.parquet", x=np.arange(2500.0))
    seen: list[int] = []
    rec = ingest(tmp_archive, [p], name="p", version="1.0.0", progress=seen.append, row_group_rows=1000)
    assert seen == [1000, 1000, 500] and rec.dataset.table("events").row_groups == [1000, 1000, 500]
