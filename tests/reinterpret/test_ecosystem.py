"""The scikit-hep ecosystem's types: UHI PlottableHistogram, mplhep, boost-histogram/hist, pandas, in-memory data."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
import pytest
from reinterp_data import MemoryDataset, atlas_like, jagged_like

from archive.errors import ValidationError
from archive.reinterpret import Histogram, histogram

OBS = "tau21 = tau2_trackj1 / tau1_trackj1"


@pytest.fixture(scope="module")
def h(zjets: MemoryDataset) -> Histogram:
    return histogram(zjets, OBS, "0:1:12", where="pT_trackj1 > 5")


def test_uhi_plottable_protocol(h: Histogram) -> None:
    from uhi.typing.plottable import PlottableHistogram

    assert isinstance(h, PlottableHistogram)
    assert h.kind == "COUNT" and len(h.axes) == 1 and len(h.axes[0]) == 12
    assert h.axes[0][0] == (0.0, 1 / 12) and list(h.axes[0])[-1] == (11 / 12, 1.0)
    assert not h.axes[0].traits.circular and not h.axes[0].traits.discrete
    assert np.array_equal(h.values(), h.cell_values[1:-1]) and np.array_equal(h.values(flow=True), h.cell_values)
    np.testing.assert_allclose(np.sqrt(h.variances()), h.total, rtol=1e-12)  # error bars = total uncertainty
    np.testing.assert_allclose(h.counts(), h.n_eff, rtol=1e-12)


def test_values_stays_an_array(h: Histogram) -> None:
    v = h.values
    assert v.shape == (12,) and float(v.sum()) == pytest.approx(float(h.cell_values[1:-1].sum()))
    doubled = v * 2
    assert type(doubled) is np.ndarray and np.array_equal(doubled, 2 * h.cell_values[1:-1])
    assert h.to_dict()["values"] == [float(x) for x in h.cell_values[1:-1]]


def test_mplhep_histplot_takes_the_result(h: Histogram) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    fig, ax = plt.subplots()
    try:
        artists = mplhep.histplot(h, ax=ax, label="zjets")
        stairs = artists[0].stairs
        np.testing.assert_array_equal(stairs.get_data().values, h.cell_values[1:-1])
        np.testing.assert_array_equal(stairs.get_data().edges, h.edges)
    finally:
        plt.close(fig)


def test_boost_histogram_and_hist_conversion(h: Histogram) -> None:
    import boost_histogram as bh

    for b in (h.to_boost(), bh.Histogram(h)):
        assert np.array_equal(b.values(flow=True), h.cell_values)
        np.testing.assert_allclose(b.variances(flow=True), np.diag(h.cell_covariance), rtol=1e-12)
        assert np.array_equal(b.axes[0].edges, h.edges) and b.axes[0].name == "tau21"
    hist = pytest.importorskip("hist")
    for hh in (h.to_hist(), hist.Hist(h)):
        assert isinstance(hh, hist.Hist) and np.array_equal(hh.values(), h.cell_values[1:-1])


def test_to_hist_without_hist_is_a_clear_error(h: Histogram, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from archive.errors import MissingDependencyError

    real = importlib.import_module

    def fake(name: str, *a: Any) -> Any:
        if name == "hist":
            raise ImportError("No module named 'hist'")
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match="pip install hist"):
        h.to_hist()


def test_to_pandas(h: Histogram) -> None:
    df = h.to_pandas()
    assert len(df) == 12 and list(df.columns[:6]) == ["lo", "hi", "value", "total", "sumw2", "n_eff"]
    assert np.array_equal(df["value"].to_numpy(), h.cell_values[1:-1])
    np.testing.assert_allclose(df["sigma_ensemble"].to_numpy(), h.uncertainties["ensemble"])


def test_in_memory_pandas_awkward_and_dict_equal_the_dataset(zjets: MemoryDataset) -> None:
    import pandas as pd

    ds = atlas_like(n=3000, partition_rows=3000)  # one partition, as the in-memory adapter: the same bits
    want = histogram(ds, OBS, "0:1:8", where="pT_trackj1 > 5")
    families = [f.model_dump() for f in ds.weight_families]
    frame = pd.DataFrame({c: v for c, v in ds.data.items()})
    record = ak.zip({c: v for c, v in ds.data.items()}, depth_limit=1)
    for data in (frame, record, dict(ds.data)):
        got = histogram(data, OBS, "0:1:8", where="pT_trackj1 > 5", weight_families=families)
        assert np.array_equal(got.cell_values, want.cell_values)
        assert np.array_equal(got.cell_covariance, want.cell_covariance)
        assert got.dataset == "in-memory@0"
    unweighted = histogram(frame, "pT_ll", "200:800:6")
    assert [f.name for f in unweighted.families] == ["unweighted"]
    assert float(unweighted.cell_values.sum()) == 3000.0


def test_in_memory_jagged_awkward_and_pandas_lists() -> None:
    import pandas as pd

    gen = jagged_like(n=2000, partition_rows=2000)
    want = histogram(gen, "Muon_pt", "0:100:10", weight_families=None)
    fams = [f.model_dump() for f in gen.weight_families]
    record = ak.zip({c: gen.data[c] for c in gen.columns}, depth_limit=1)
    got = histogram(record, "Muon_pt", "0:100:10", weight_families=fams)
    assert np.array_equal(got.cell_values, want.cell_values) and got.per_object
    frame = pd.DataFrame({"Muon_pt": ak.to_list(gen.data["Muon_pt"]), "w": gen.data["weight_nominal"]})
    fam = {"name": "nominal", "type": "nominal", "columns": ["w"], "combination": {"rule": "sum_w2"},
           "normalisation": {"kind": "absolute", "unit": "fb"}, "includes_mc_weight": True}
    got2 = histogram(frame, "ptlead = max(Muon_pt)", "0:100:10", weight_families=[fam])
    want2 = histogram(gen, "ptlead = max(Muon_pt)", "0:100:10")
    assert np.array_equal(got2.cell_values, want2.cell_values)


def test_weight_families_only_for_in_memory_data(zjets: MemoryDataset) -> None:
    with pytest.raises(ValidationError, match="weight_families is for data in memory"):
        histogram(zjets, "pT_ll", "200:800:6", weight_families=[])
    with pytest.raises(ValidationError, match="differ in length"):
        histogram({"a": np.zeros(3), "b": np.zeros(4)}, "a", "0:1:2")
    with pytest.raises(ValidationError, match=r"weight family 'w': combination: Field required"):
        histogram({"a": np.zeros(3)}, "a", "0:1:2", weight_families=[{"name": "w", "type": "nominal"}])
    with pytest.raises(ValidationError, match="array of records"):
        histogram(ak.Array([1.0, 2.0]), "x", "0:1:2")
