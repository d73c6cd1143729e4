"""The dataset commands end to end: ingest with --metadata, show, list, verify, export, diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml


def test_cli_ingest_show_export(cli: Any, tmp_archive: Any, atlas_h5: Path, atlas_meta: dict[str, Any],
                                tmp_path: Path) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text(yaml.safe_dump(atlas_meta))
    root = tmp_archive.root
    r = cli("--root", root, "--json", "ingest", atlas_h5, "--name", "zjets", "--version", "1.0.0",
            "--metadata", meta)
    assert r.code == 0, r.err
    out = r.json()
    assert out["ref"] == "dataset/zjets@1.0.0" and out["rows"] == 2304 and "ensemble" in out["families"]
    r = cli("--root", root, "dataset", "show", "zjets")
    assert r.code == 0 and "family ensemble (ensemble, sem_median_ensemble, absolute [fb])" in r.out
    assert "pT_ll: float32 [GeV]" in r.out
    r = cli("--root", root, "--json", "dataset", "list")
    assert r.json() == [{"id": "dataset/zjets", "versions": ["1.0.0"]}]
    r = cli("--root", root, "dataset", "verify", "zjets@1.0.0")
    assert r.code == 0 and "match the record" in r.out
    for fmt, name in (("atlas-hdf5", "x.h5"), ("root", "x.root"), ("parquet", "x.parquet"), ("csv", "x.csv")):
        r = cli("--root", root, "export", "zjets@1.0.0", "--format", fmt, "--output", tmp_path / name,
                "--columns", "pT_ll,weights_nominal")
        assert r.code == 0, (fmt, r.err)
        assert (tmp_path / name).stat().st_size > 0
    import uproot

    t = uproot.open(tmp_path / "x.root")["events"]
    assert t.keys() == ["pT_ll", "weights_nominal"]
    assert np.array_equal(t["pT_ll"].array(library="np"),
                          tmp_archive.dataset("zjets").read(["pT_ll"])["pT_ll"])
    r = cli("--root", root, "validate")
    assert r.code == 0, r.err


def test_cli_error_paths(cli: Any, tmp_archive: Any, tmp_path: Path) -> None:
    root = tmp_archive.root
    r = cli("--root", root, "export", "nothing", "--format", "parquet", "--output", tmp_path / "o.parquet")
    assert r.code == 4 and r.err.startswith("error: ") and len(r.err.strip().splitlines()) == 1
    bad = tmp_path / "meta.yaml"
    bad.write_text("titel: typo\n")
    (tmp_path / "f.npy").write_bytes(b"")
    np.save(tmp_path / "f.npy", np.arange(5.0))
    r = cli("--root", root, "ingest", tmp_path / "f.npy", "--name", "f", "--version", "1.0.0", "--metadata", bad)
    assert r.code == 1 and "unknown metadata keys: titel" in r.err
    r = cli("--root", root, "ingest", tmp_path / "f.npy", "--name", "f", "--version", "1.0.0", "--format", "xyz")
    assert r.code == 1 and "unknown format 'xyz'" in r.err
    assert not (tmp_path / "o.parquet").exists()


def test_cli_ingest_selected_columns(cli: Any, tmp_archive: Any, atlas_h5: Path, shared_data: Path) -> None:
    root = tmp_archive.root
    r = cli("--root", root, "--json", "ingest", atlas_h5, "--name", "sub", "--version", "1.0.0",
            "--columns", "pT_ll,m_ll,weights_nominal", "--key", "df")
    assert r.code == 0, r.err
    ds = tmp_archive.dataset("sub")
    assert ds.columns == ["pT_ll", "m_ll", "weights_nominal"]
    assert [f.name for f in ds.weight_families] == ["nominal"]
    r = cli("--root", root, "ingest", shared_data / "uproot-HZZ.root", "--name", "hzz", "--version", "1.0.0",
            "--tree", "events", "--columns", "NJet,Jet_Px,EventWeight")
    assert r.code == 0, r.err
    assert tmp_archive.dataset("hzz").columns == ["NJet", "Jet_Px", "EventWeight"]
    r = cli("--root", root, "ingest", shared_data / "uproot-HZZ.root", "--name", "hzz2", "--version", "1.0.0",
            "--tree", "nope")
    assert r.code == 1 and "no tree 'nope'" in r.err


def test_cli_add_columns_new_family(cli: Any, tmp_archive: Any, atlas_h5: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_archive.root
    assert cli("--root", root, "ingest", atlas_h5, "--name", "zjets", "--version", "1.0.0").code == 0
    nominal = tmp_archive.dataset("zjets").read(["weights_nominal"])["weights_nominal"]
    pq.write_table(pa.table({"weights_muSagitta": nominal * np.float32(1.02)}), tmp_path / "new.parquet")
    fam = tmp_path / "family.yaml"
    fam.write_text(yaml.safe_dump({"name": "sagitta_np", "type": "systematic", "columns": ["weights_muSagitta"],
                                   "combination": {"rule": "quadrature_diff"},
                                   "normalisation": {"kind": "absolute", "unit": "fb"}, "includes_mc_weight": True}))
    r = cli("--root", root, "--json", "dataset", "add-columns", "zjets@1.0.0", tmp_path / "new.parquet",
            "--version", "1.1.0", "--family", fam)
    assert r.code == 0, r.err
    assert r.json()["ref"] == "dataset/zjets@1.1.0"
    r = cli("--root", root, "--json", "diff", "zjets@1.0.0", "zjets@1.1.0")
    d = r.json()
    assert d["columns_added"] == ["weights_muSagitta"] and d["families_added"] == ["sagitta_np"]
    assert set(d["tables_reused"]) == {"events", "weights"}
    short = tmp_path / "short.parquet"
    pq.write_table(pa.table({"w_short": np.ones(10)}), short)
    r = cli("--root", root, "dataset", "add-columns", "zjets", short, "--version", "1.2.0")
    assert r.code == 1 and "row-count mismatch" in r.err
