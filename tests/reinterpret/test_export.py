from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from reinterp_data import MemoryDataset, atlas_like

from archive.errors import ValidationError
from archive.reinterpret import Histogram, histogram, validate_hepdata, write_hepdata


@pytest.fixture(scope="module")
def h(zjets: MemoryDataset) -> Histogram:
    return histogram(zjets, "tau21 = tau2_trackj1 / tau1_trackj1", "0:1:10", where="pT_trackj1 > 5")


def test_hepdata_submission_validates_offline(h: Histogram, tmp_path: Path) -> None:
    files = write_hepdata(h, tmp_path / "hepdata")
    assert [f.name for f in files] == ["submission.yaml", "tau21.yaml", "tau21_covariance.yaml"]
    table = yaml.safe_load(files[1].read_text())
    dep = table["dependent_variables"][0]
    assert dep["header"] == {"name": "sigma per bin of tau21", "units": "fb"}
    assert [v["value"] for v in dep["values"]] == pytest.approx(h.values.tolist(), rel=1e-7)
    labels = {e["label"] for e in dep["values"][3]["errors"]}
    assert labels == {"nominal", "ensemble", "bootstrap_data", "bootstrap_mc", "detector", "closure", "alternative",
                      "reweighted"}
    quals = {q["name"]: q["value"] for q in dep["qualifiers"]}
    assert quals["Selection"] == "pT_trackj1 > 5" and quals["Dataset"] == "zjets@1.0.0"
    cov = yaml.safe_load(files[2].read_text())
    assert len(cov["dependent_variables"][0]["values"]) == 100
    docs = list(yaml.safe_load_all(files[0].read_text()))
    assert [d.get("data_file") for d in docs[1:]] == ["tau21.yaml", "tau21_covariance.yaml"]
    validate_hepdata(tmp_path / "hepdata")  # and again explicitly: the real validator accepts it


def test_validator_rejects_broken_table(h: Histogram, tmp_path: Path) -> None:
    out = tmp_path / "hd"
    write_hepdata(h, out)
    table = yaml.safe_load((out / "tau21.yaml").read_text())
    table["independent_variables"][0]["values"].pop()  # lengths now disagree
    (out / "tau21.yaml").write_text(yaml.safe_dump(table))
    with pytest.raises(ValidationError) as exc:
        validate_hepdata(out)
    assert any("Inconsistent length" in line for line in exc.value.lines())


def test_zero_error_bins_omit_errors(tmp_path: Path) -> None:
    ds = MemoryDataset({"x": np.array([0.5, 0.6, 2.5])}, [])
    hh = histogram(ds, "x", "0:3:3")
    table = hh.to_hepdata_table("x", "counts")
    assert "errors" not in table["dependent_variables"][0]["values"][1]
    write_hepdata(hh, tmp_path / "z")  # all-zero errors would fail validation


def _png_pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    return np.asarray(matplotlib.image.imread(path))


def test_plot_png_and_pdf_with_prediction(h: Histogram, zjets: MemoryDataset, tmp_path: Path) -> None:
    other = histogram(atlas_like(seed=5), h.observable + " = " + h.expression, h.binning, where=h.where)
    png = h.plot(tmp_path / "out.png", other)
    pdf = h.plot(tmp_path / "sub" / "out.pdf", other)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    px = _png_pixels(png)
    assert px.shape[0] > 500 and px.shape[1] > 500
    rgb = px[..., :3].reshape(-1, 3)
    reddish = np.sum((rgb[:, 0] > 0.7) & (rgb[:, 1] < 0.4) & (rgb[:, 2] < 0.4))
    bluish = np.sum((rgb[:, 2] > 0.6) & (rgb[:, 0] < 0.4))
    assert reddish > 200 and bluish > 200  # the prediction line and the measured line/band are drawn
    plain = h.plot(tmp_path / "plain.png")
    assert plain.stat().st_size > 10_000


def test_plot_refuses_unknown_suffix(h: Histogram, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="must end in"):
        h.plot(tmp_path / "x.gif")
