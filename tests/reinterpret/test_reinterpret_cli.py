"""``hep-archive hist`` end to end on a real archive: derived observable, selection, chi2, plot, HEPData, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

OBS = "ratio = pT_l2 / pT_l1"
WHERE = "abs(eta_l1) < 2.1"


def test_hist_derived_observable_with_everything(cli: Any, atlas_archive: Any, tmp_path: Path) -> None:
    root = atlas_archive.root
    r = cli("--root", root, "hist", "zmumu@1.0.0", "--observable", OBS, "--bins", "0:1:10", "--where", WHERE,
            "--plot", tmp_path / "ratio.png", "--output", tmp_path / "ratio.json", "--hepdata", tmp_path / "hd",
            "--compare", "zmumu_alt", "--alternative", "hidden_variable=zmumu_alt@1.0.0")
    assert r.code == 0, r.err
    assert "chi2/ndf = " in r.out and "/10, p-value = " in r.out
    assert "ratio = pT_l2 / pT_l1" in r.out
    data = json.loads((tmp_path / "ratio.json").read_text())
    assert data["observable"]["name"] == "ratio" and data["where"] == WHERE
    assert data["comparison"]["ndf"] == 10 and data["comparison"]["prediction"] == "zmumu_alt@1.0.0"
    assert 0.0 <= data["comparison"]["p_value"] <= 1.0
    alt = data["uncertainties"]["hidden_variable"]
    assert alt["rule"] == "alternative_sample" and alt["source"] == "zmumu_alt@1.0.0" and max(alt["sigma"]) > 0
    assert (tmp_path / "ratio.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "hd" / "submission.yaml").is_file()
    table = yaml.safe_load((tmp_path / "hd" / "ratio.yaml").read_text())
    assert len(table["dependent_variables"][0]["values"]) == 10


def test_hist_json_and_compare_with_saved_result(cli: Any, atlas_archive: Any, tmp_path: Path) -> None:
    root = atlas_archive.root
    first = cli("--root", root, "--json", "hist", "zmumu", "--observable", "pT_ll", "--bins", "official",
                "--output", tmp_path / "r.json")
    assert first.code == 0, first.err
    d = first.json()
    assert d["binning"]["source"] == "official" and len(d["values"]) == 6
    assert np.allclose(np.sum(d["values"]) + d["underflow"] + d["overflow"], 1809.46, rtol=1e-5)
    again = cli("--root", root, "--json", "hist", "zmumu", "--observable", "pT_ll", "--bins", "official",
                "--compare", tmp_path / "r.json", "--scheduler", "local")
    assert again.code == 0, again.err
    assert again.json()["comparison"]["chi2"] == 0.0  # Dask run identical to the saved single-process one


def test_hist_hepdata_table_as_prediction(cli: Any, atlas_archive: Any, tmp_path: Path) -> None:
    root = atlas_archive.root
    args = ["--root", root, "hist", "zmumu", "--observable", "m_ll", "--bins", "official"]
    assert cli(*args, "--hepdata", tmp_path / "hd").code == 0
    r = cli("--json", *args, "--compare", tmp_path / "hd" / "m_ll.yaml", "--families", "nominal,ensemble")
    assert r.code == 0, r.err
    assert r.json()["comparison"]["ndf"] == 6


def _one_line_error(r: Any, fragment: str) -> None:
    assert r.code != 0
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in r.err


def test_cli_errors_are_one_line(cli: Any, atlas_archive: Any, tmp_path: Path) -> None:
    root = atlas_archive.root
    base = ["--root", root, "hist", "zmumu"]
    _one_line_error(cli(*base, "--observable", "pT_l2 / pT_ll1", "--bins", "0:1:5"),
                    "unknown column 'pT_ll1' at position 9 of 'pT_l2 / pT_ll1'; did you mean 'pT_ll'")
    _one_line_error(cli(*base, "--observable", "pT_l2 / (pT_l1", "--bins", "0:1:5"), "syntax error at position")
    _one_line_error(cli(*base, "--observable", "pT_ll", "--bins", "0:1:5", "--where", "pT_ll > 1e6"),
                    "keeps none of the 2304 events")
    _one_line_error(cli(*base, "--observable", "pT_ll", "--bins", "1:0:5"), "finite lo < hi")
    pred = tmp_path / "pred.json"
    pred.write_text("[1, 2, 3]")
    _one_line_error(cli(*base, "--observable", "pT_ll", "--bins", "official", "--compare", pred),
                    "binning mismatch: the histogram has 6 bins, the prediction 3")
    _one_line_error(cli(*base, "--observable", "pT_ll", "--bins", "0:100:5", "--compare", "zmumu_nope"),
                    "zmumu_nope")
    _one_line_error(cli(*base, "--observable", "pT_ll", "--bins", "0:100:5", "--alternative", "zmumu_alt"),
                    "--alternative must be NAME=DATASET[@VERSION]")


def test_bad_plot_suffix_refused_before_any_file(cli: Any, atlas_archive: Any, tmp_path: Path) -> None:
    r = cli("--root", atlas_archive.root, "hist", "zmumu", "--observable", "pT_ll", "--bins", "official",
            "--output", tmp_path / "r.json", "--hepdata", tmp_path / "hd", "--plot", tmp_path / "p.gif")
    _one_line_error(r, "plot file must end in .png, .pdf, .svg")
    assert list(tmp_path.iterdir()) == []
