from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from reinterp_data import MemoryDataset, atlas_like
from scipy import stats

from archive.errors import ValidationError
from archive.reinterpret import Histogram, Prediction, compare, histogram, load_prediction


@pytest.fixture(scope="module")
def meas(zjets: MemoryDataset) -> Histogram:
    return histogram(zjets, "pT_ll", "official")


def _chi2(d: np.ndarray, cov: np.ndarray) -> float:
    return float(d @ np.linalg.inv(cov) @ d)


def test_chi2_with_full_covariance_against_another_dataset(meas: Histogram) -> None:
    other = histogram(atlas_like(seed=11), "pT_ll", meas.binning)
    c = compare(meas, other)
    d = meas.values - other.values
    cov = meas.covariance + other.covariance
    assert c.chi2 == pytest.approx(_chi2(d, cov), rel=1e-9)
    assert c.ndf == 5
    assert c.p_value == pytest.approx(stats.chi2.sf(c.chi2, 5), rel=1e-9)
    assert c.label == "zjets@1.0.0"
    assert c.chi2 > 0


def test_json_array_and_object_with_covariance(meas: Histogram, tmp_path: Path) -> None:
    vals = (meas.values * 1.05).tolist()
    arr = tmp_path / "pred.json"
    arr.write_text(json.dumps(vals))
    c1 = compare(meas, load_prediction(arr))
    assert c1.chi2 == pytest.approx(_chi2(meas.values - np.array(vals), meas.covariance), rel=1e-9)
    cov = np.diag((0.02 * np.array(vals)) ** 2) + 0.001
    obj = tmp_path / "pred_cov.json"
    obj.write_text(json.dumps({"values": vals, "covariance": cov.tolist(), "edges": meas.edges.tolist()}))
    c2 = compare(meas, obj)
    assert c2.chi2 == pytest.approx(_chi2(meas.values - np.array(vals), meas.covariance + cov), rel=1e-9)
    assert c2.chi2 < c1.chi2  # the prediction's own covariance enters


def test_saved_result_json_is_a_prediction(meas: Histogram, tmp_path: Path) -> None:
    p = tmp_path / "result.json"
    p.write_text(json.dumps(meas.to_dict()))
    c = compare(meas, p)
    assert c.chi2 == pytest.approx(0.0, abs=1e-12) and c.p_value == pytest.approx(1.0)


def test_hepdata_table_prediction(meas: Histogram, tmp_path: Path) -> None:
    table = meas.to_hepdata_table("pT_ll", "test")
    for v in table["dependent_variables"][0]["values"]:
        v["value"] *= 0.9
    p = tmp_path / "table.yaml"
    p.write_text(yaml.safe_dump(table))
    pred = load_prediction(p)
    np.testing.assert_allclose(pred.edges, meas.edges)
    np.testing.assert_allclose(pred.errors, meas.total, rtol=1e-6)  # labelled errors added in quadrature
    c = compare(meas, pred)
    assert c.chi2 > 0 and c.ndf == 5


def test_mismatched_binnings_refused(meas: Histogram, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="binning mismatch: the histogram has 5 bins, the prediction 3"):
        compare(meas, [1.0, 2.0, 3.0])
    edges = meas.edges.copy()
    edges[2] = 310
    with pytest.raises(ValidationError, match="binning mismatch: edge 2 is 300 in the histogram and 310") as exc:
        compare(meas, Prediction(meas.values, np.zeros((5, 5)), edges))
    assert "\n" not in str(exc.value)
    other = histogram(atlas_like(seed=3), "pT_ll", "200:1000:5")
    with pytest.raises(ValidationError, match="binning mismatch"):
        compare(meas, other)


@pytest.mark.parametrize(("content", "fragment"), [
    ("{not json", "not valid JSON"),
    ('{"values": [1, 2], "covariance": [[1]]}', "must be 2 x 2"),
    ('{"values": [1, 2], "covariance": [[1, 0.5], [0, 1]]}', "not symmetric"),
    ('{"vals": [1]}', "needs 'values'"),
    ('"text"', "must be a JSON array"),
])
def test_bad_prediction_files(tmp_path: Path, content: str, fragment: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ValidationError, match=fragment):
        load_prediction(p)


def test_empty_bins_without_uncertainty_are_left_out() -> None:
    ds = MemoryDataset({"x": np.array([0.5, 0.6, 2.5])}, [])
    h = histogram(ds, "x", "0:3:3")
    c = compare(h, Prediction(np.array([2.0, 0.0, 1.5]), np.diag([0.0, 0.0, 0.25])))
    assert c.ndf == 2 and c.warnings and "1 empty bin" in c.warnings[0]
    assert c.chi2 == pytest.approx(0.0 + 0.25 / 1.25)
