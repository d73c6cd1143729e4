"""The ATLAS OmniFold layout: pandas-free reading, inferred families, exact exports readable by pandas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from archive.datasets import export_dataset, ingest, open_dataset
from archive.formats import detect_format, open_source


def _pandas_frame(path: Path) -> Any:
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.read_hdf(path, "df")


def test_fixture_has_the_release_layout(atlas_h5: Path) -> None:
    with h5py.File(atlas_h5, "r") as f:
        g = f["df"]
        assert g.attrs["pandas_type"] in (b"frame", "frame")
        assert {"axis0", "axis1", "block0_items", "block0_values", "block1_values"} <= set(g)
        assert g["block0_values"].shape == (2304, len(g["block0_items"]))
        assert g["block1_values"].dtype == np.int32
    assert detect_format(atlas_h5) == "atlas-hdf5"


def test_reader_without_pandas_matches_pandas(atlas_h5: Path) -> None:
    df = _pandas_frame(atlas_h5)
    with open_source(atlas_h5) as src:
        assert [c.name for c in src.columns] == list(df.columns)
        got: dict[str, list[np.ndarray]] = {}
        for batch in src.iter_batches(1000):
            for k, v in batch.items():
                got.setdefault(k, []).append(v)
    for col in df.columns:
        a = np.concatenate(got[col])
        assert a.dtype == df[col].dtype
        assert np.array_equal(a, df[col].to_numpy())


def test_ingest_infers_the_release_families(tmp_archive: Any, atlas_h5: Path, atlas_meta: dict[str, Any]) -> None:
    rec = ingest(tmp_archive, [atlas_h5], name="zjets", version="1.0.0", metadata=atlas_meta)
    spec = rec.dataset
    fams = {f.name: f for f in spec.weights}
    assert fams["nominal"].columns == ["weights_nominal"] and fams["nominal"].combination.rule == "sum_w2"
    assert fams["ensemble"].combination.rule == "sem_median_ensemble"
    assert fams["ensemble"].combination.factor == pytest.approx(1.253)
    assert fams["ensemble"].resolved_columns() == [f"weights_ensemble_{i}" for i in range(10)]
    assert fams["bootstrap_data"].type == "bootstrap_data" and len(fams["bootstrap_data"].resolved_columns()) == 10
    assert fams["unfolding_dd"].pairs == [("weights_dd", "target_dd")]
    assert fams["prior"].normalisation.unit == "fb"
    assert {t.role for t in spec.tables} == {"events", "weights"}
    events = spec.table("events")
    assert "weights_nominal" not in events.columns and "pT_ll" in events.columns
    assert spec.variable("pT_ll").unit == "GeV" and spec.variable("weights_nominal").level == "weight"
    # the record states each column's range and each weight column's total (normalisation quirks are visible)
    assert spec.variable("weights_nominal").sum == pytest.approx(1809.46, rel=1e-5)
    m = spec.variable("m_ll")
    assert m.minimum is not None and m.maximum is not None and 0 < m.minimum < 81 < 101 < m.maximum
    assert spec.variable("Ntracks_trackj1").minimum is not None and spec.variable("Ntracks_trackj1").minimum >= 1
    assert spec.measurement.fiducial_cuts[1].operator == "abs<"
    assert spec.binnings["pT_ll"].edges[0] == 0.0
    assert spec.distribution is not None and spec.distribution.events == 2304
    assert spec.distribution.source_formats == ["atlas-hdf5"]
    # every table file is in the content-addressed store with its sha256 in the record
    for f in rec.files:
        assert tmp_archive.store.exists(f.sha256)
    # the record passes the archive-wide validation
    from archive.catalog import validate_archive

    assert validate_archive(tmp_archive) == []


def test_ingested_values_identical_and_export_readable_by_pandas(tmp_archive: Any, atlas_h5: Path,
                                                                 tmp_path: Path) -> None:
    ingest(tmp_archive, [atlas_h5], name="zjets", version="1.0.0")
    df = _pandas_frame(atlas_h5)
    ds = open_dataset(tmp_archive, "zjets")
    data = ds.read(list(df.columns))
    for col in df.columns:
        assert data[col].dtype == df[col].dtype
        assert np.array_equal(data[col], df[col].to_numpy())
    out = export_dataset(tmp_archive, "zjets@1.0.0", "atlas-hdf5", tmp_path / "out.h5")
    back = _pandas_frame(out)
    assert list(back.columns) == list(df.columns)
    assert (back.dtypes == df.dtypes).all()
    assert back.equals(df)
    # and the export reads back through the pandas-free importer too
    with open_source(out) as src:
        assert src.format == "atlas-hdf5" and src.num_rows == len(df)


def test_h5py_writer_fixture_reads_identically(tmp_path: Path, shared_data: Path) -> None:
    from archive.datasets.testing import build_atlas_fixture

    a = build_atlas_fixture(tmp_path / "pd.h5", n_bootstrap=3, zmumu=shared_data / "uproot-Zmumu.root",
                            writer="pandas")
    b = build_atlas_fixture(tmp_path / "h5.h5", n_bootstrap=3, zmumu=shared_data / "uproot-Zmumu.root",
                            writer="h5py")
    assert _pandas_frame(a).equals(_pandas_frame(b))


def test_export_columns_subset(tmp_archive: Any, atlas_h5: Path, tmp_path: Path) -> None:
    ingest(tmp_archive, [atlas_h5], name="zjets", version="1.0.0")
    out = export_dataset(tmp_archive, "zjets", "atlas-hdf5", tmp_path / "sub.h5",
                         columns=["pT_ll", "Ntracks_trackj1", "weights_nominal"])
    back = _pandas_frame(out)
    assert list(back.columns) == ["pT_ll", "Ntracks_trackj1", "weights_nominal"]
    assert back["Ntracks_trackj1"].dtype == np.int32


def test_pickled_object_block_is_refused(tmp_path: Path) -> None:
    import warnings

    import pandas as pd

    from archive.errors import UnsafeInputError

    p = tmp_path / "obj.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.DataFrame({"x": np.arange(3.0), "s": ["a", "b", "c"]}).to_hdf(p, key="df", format="fixed")
    with pytest.raises(UnsafeInputError, match="pickle"):
        open_source(p)
