"""On the real ATLAS-layout fixture (ingested with archive.datasets): every family and the covariance vs numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from archive.reinterpret import histogram

OBS = "balance = pT_ll / (pT_l1 + pT_l2)"
WHERE = "abs(eta_l1) < 2.1 and pT_l2 > 10"


def _independent(ds: Any, edges: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each family by its recorded rule, written out plainly: np.histogram per column, numpy statistics."""
    cols = ds.read(ds.columns)
    x = cols["pT_ll"].astype(np.float64) / (cols["pT_l1"].astype(np.float64) + cols["pT_l2"].astype(np.float64))
    m = (np.abs(cols["eta_l1"]) < 2.1) & (cols["pT_l2"] > 10)

    def h(c: str, power: int = 1) -> np.ndarray:
        # x never hits the last edge exactly here, so np.histogram's closed last bin changes nothing
        return np.histogram(x[m], bins=edges, weights=cols[c][m].astype(np.float64) ** power)[0]

    nominal = next(f for f in ds.weight_families if f.type == "nominal").resolved_columns()[0]
    ref = h(nominal)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for f in ds.weight_families:
        c = f.combination
        names = f.resolved_columns()
        if c.rule == "none":
            var, cov = np.zeros_like(ref), np.zeros((ref.size, ref.size))
        elif c.rule == "sum_w2":
            var = h(names[0], 2)
            cov = np.diag(var)
        elif c.rule in ("std_replicas", "sem_median_ensemble"):
            reps = np.array([h(n) for n in names])
            cov = np.cov(reps, rowvar=False, ddof=c.ddof)
            var = reps.var(axis=0, ddof=c.ddof)
            if c.rule == "sem_median_ensemble":
                k = (c.factor or 1.253) ** 2 / len(names)
                cov, var = cov * k, var * k
        elif c.rule in ("quadrature_diff", "alternative_sample"):
            ds_ = [h(n) - ref for n in names]
            var = sum(d**2 for d in ds_)
            cov = sum(np.outer(d, d) for d in ds_)
        elif c.rule == "paired_closure":
            ds_ = [(h(a) - h(b)) * ref / h(b) for a, b in f.pairs]
            var = sum(d**2 for d in ds_)
            cov = sum(np.outer(d, d) for d in ds_)
        else:  # pragma: no cover
            raise AssertionError(c.rule)
        out[f.name] = (np.sqrt(var), cov)
    out["__values__"] = (ref, np.diag(h(nominal, 2)))
    return out


def test_every_family_and_covariance_match_numpy_on_the_fixture(atlas_archive: Any) -> None:
    from archive.datasets import open_dataset

    ds = open_dataset(atlas_archive, "zmumu", "1.0.0")
    assert len(ds.partitions()) == 5  # 2,304 rows in 500-row groups: five partitions, streamed
    h = histogram(ds, OBS, "0.2:1.0:8", where=WHERE)
    exp = _independent(ds, h.edges)
    names = {f.name for f in ds.weight_families}
    assert {"ensemble", "bootstrap_data", "bootstrap_mc", "unfolding_dd"} <= names
    assert set(h.uncertainties) == names
    total = np.zeros((h.binning.n, h.binning.n))
    for f in ds.weight_families:
        sigma, cov = exp[f.name]
        np.testing.assert_allclose(h.uncertainties[f.name], sigma, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(h.family_covariance(f.name), cov, rtol=1e-6, atol=1e-9)
        total += cov
    np.testing.assert_allclose(h.values, exp["__values__"][0], rtol=1e-6)
    np.testing.assert_allclose(h.covariance, total, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(h.n_eff, exp["__values__"][0] ** 2 / np.diag(exp["__values__"][1]), rtol=1e-6)
    assert h.dataset == "zmumu@1.0.0" and h.unit == "fb"


def test_official_binning_and_units_from_the_record(atlas_archive: Any) -> None:
    from archive.datasets import open_dataset

    h = histogram(open_dataset(atlas_archive, "zmumu"), "pT_ll", "official")
    assert h.edges.tolist() == [0.0, 10.0, 20.0, 40.0, 60.0, 100.0, 200.0]
    assert h.observable_unit == "GeV"
    assert float(np.sum(h.cell_values)) == pytest.approx(1809.46, rel=1e-5)


def test_dask_on_archive_dataset_identical(atlas_archive: Any) -> None:
    from archive.datasets import open_dataset

    ds = open_dataset(atlas_archive, "zmumu")
    a = histogram(ds, OBS, "0.2:1.0:8", where=WHERE)
    b = histogram(ds, OBS, "0.2:1.0:8", where=WHERE, scheduler="local")  # tasks re-open it from the archive
    assert np.array_equal(a.cell_values, b.cell_values)
    assert np.array_equal(a.cell_covariance, b.cell_covariance)


def test_dask_scheduler_address_string(atlas_archive: Any) -> None:
    """``dask://HOST:PORT``: a real TCP scheduler (in-process workers), reached by its address."""
    from distributed import LocalCluster

    from archive.datasets import open_dataset

    ds = open_dataset(atlas_archive, "zmumu")
    single = histogram(ds, "m_ll", "official", families=["ensemble", "unfolding_dd"])
    with LocalCluster(processes=False, n_workers=2, threads_per_worker=1, protocol="tcp", host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        remote = histogram(ds, "m_ll", "official", families=["ensemble", "unfolding_dd"],
                           scheduler="dask://" + address[len("tcp://"):])
    assert np.array_equal(single.cell_values, remote.cell_values)
    assert np.array_equal(single.cell_covariance, remote.cell_covariance)


@pytest.fixture(scope="module")
def fxfx(tmp_path_factory: pytest.TempPathFactory, shared_data: Any) -> Any:
    """The real MadGraph FxFx LHE file (10,000 events, |w| equal, 1,852 negative) ingested as a dataset."""
    from archive._archive import init_archive
    from archive.datasets import ingest, open_dataset

    archive = init_archive(tmp_path_factory.mktemp("lhe") / "arc")
    ingest(archive, [shared_data / "pylhe-testfile-madgraph-2.2.1-Z-fxfx.lhe.gz"], name="fxfx", version="1.0.0")
    return open_dataset(archive, "fxfx")


def test_negative_weights_and_neff_on_real_lhe(fxfx: Any) -> None:
    h = histogram(fxfx, "scale", "0:200:8", min_neff=0)
    cols = fxfx.read(["scale", "weight"])
    w = cols["weight"].astype(np.float64)
    assert int(np.sum(w < 0)) == 1852
    idx = np.digitize(cols["scale"], h.edges)
    sums = np.bincount(idx, weights=w, minlength=10)
    sw2 = np.bincount(idx, weights=w * w, minlength=10)
    np.testing.assert_allclose(h.cell_values, sums, rtol=1e-12)
    np.testing.assert_allclose(h.n_eff, (sums**2 / np.where(sw2 > 0, sw2, 1))[1:-1], rtol=1e-12)
    np.testing.assert_allclose(h.total, np.sqrt(sw2[1:-1]), rtol=1e-12)
    # all |w| are equal, so n_eff = (n+ - n-)^2 / (n+ + n-) per bin: far below the raw event count
    assert np.all(h.n_eff[h.values > 0] < np.bincount(idx, minlength=10)[1:-1][h.values > 0])


def test_jagged_columns_filled_per_particle(fxfx: Any) -> None:
    """Jagged particle columns were refused before issue 15; now every particle fills with its event's weight."""
    import awkward as ak

    h = histogram(fxfx, "pt = hypot(px, py)", "0:100:10", min_neff=0)
    cols = fxfx.read(["px", "py", "weight"])
    counts = np.asarray(ak.num(cols["px"]))
    pt = np.hypot(ak.to_numpy(ak.flatten(cols["px"])).astype(np.float64),
                  ak.to_numpy(ak.flatten(cols["py"])).astype(np.float64))
    w = np.repeat(cols["weight"].astype(np.float64), counts)
    ref = np.bincount(np.digitize(pt, h.edges), weights=w, minlength=12)
    np.testing.assert_allclose(h.cell_values, ref, rtol=1e-12, atol=1e-9)
    assert h.per_object and h.entries == int(counts.sum())
