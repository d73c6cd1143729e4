"""The steps one by one: physics helpers on hand-made events, cards, CLI behaviour, ONNX, the REANA recipe."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.errors import ValidationError
from archive.reference import OBSERVABLES
from archive.reference._common import load_card, read_parquet
from archive.reference.chain import chain_steps

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "zjets-omnifold"
CARDS = RECIPE / "cards"


def test_dimuon_picks_leading_opposite_charge_pair() -> None:
    from archive.reference._observables import dimuon_observables

    # event 0: mu- 120, mu- 80 (same sign), mu+ 60 -> pair (120, 60); event 1: one muon; event 2: none
    offsets = np.array([0, 3, 4, 4])
    pt = np.array([80.0, 120.0, 60.0, 50.0], dtype=np.float32)
    eta = np.array([0.5, 0.0, -0.3, 1.0], dtype=np.float32)
    phi = np.array([1.0, 0.0, 3.0, 0.0], dtype=np.float32)
    charge = np.array([-1, -1, 1, 1], dtype=np.int8)
    out = dimuon_observables(offsets, pt, eta, phi, charge)
    assert out["n_muons_os"].tolist() == [2, 1, 0]
    assert out["pT_l1"][0] == 120.0 and out["pT_l2"][0] == 60.0 and out["eta_l2"][0] == pytest.approx(-0.3)
    px = 120 * np.cos(0.0) + 60 * np.cos(3.0)
    py = 120 * np.sin(0.0) + 60 * np.sin(3.0)
    assert out["pT_ll"][0] == pytest.approx(np.hypot(px, py), rel=1e-5)
    assert out["pT_ll"][1] == 0.0 and out["m_ll"][2] == 0.0


def test_track_jets_and_n_subjettiness() -> None:
    from archive.reference._observables import jet_observables

    # event 0: a 3-prong jet near (0, 0) of 60 GeV and a single-particle jet of 20 GeV at phi = 2.5
    # event 1: only soft particles (no jet above 10 GeV)
    pt = np.array([30.0, 20.0, 10.0, 20.0, 1.0, 2.0], dtype=np.float32)
    eta = np.array([0.0, 0.1, -0.1, 0.5, 1.0, -1.0], dtype=np.float32)
    phi = np.array([0.0, 0.1, -0.1, 2.5, 0.0, 1.0], dtype=np.float32)
    offsets = np.array([0, 4, 6])
    out = jet_observables(offsets, pt, eta, phi)
    assert out["Ntracks_trackj1"].tolist() == [3, 0] and out["Ntracks_trackj2"].tolist() == [1, 0]
    assert out["pT_trackj1"][0] == pytest.approx(59.9, rel=0.01)
    assert out["pT_trackj2"][0] == pytest.approx(20.0, rel=1e-4)
    assert out["tau1_trackj1"][0] > out["tau2_trackj1"][0] > 0 and out["tau3_trackj1"][0] == pytest.approx(0, abs=1e-6)
    assert out["tau1_trackj2"][0] == pytest.approx(0, abs=1e-6) and out["tau2_trackj2"][0] == 0  # one constituent
    assert out["pT_trackj1"][1] == 0 and out["m_trackj1"][1] == 0


def test_detector_variations_are_coherent(small_chain: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from archive.reference.detsim import apply_variation, simulate

    work, _ = small_chain
    card = load_card(CARDS / "detector.yaml")
    simulate(apply_variation(card, "muCalScale"), work / "sim_particles.parquet", 11, tmp_path / "scale.parquet")
    simulate(apply_variation(card, "trackEffMain"), work / "sim_particles.parquet", 11, tmp_path / "eff.parquet")
    import pyarrow.parquet as pq

    nom = pq.read_table(work / "sim_detector.parquet")
    scale = pq.read_table(tmp_path / "scale.parquet")
    eff = pq.read_table(tmp_path / "eff.parquet")
    a = nom.column("mu_pt").combine_chunks().values.to_numpy()
    b = scale.column("mu_pt").combine_chunks().values.to_numpy()
    assert len(a) == len(b) and np.allclose(b / a, 1.01, rtol=1e-5), "same draws, scaled by the card's 1.01"
    n_nom = nom.column("ch_pt").combine_chunks().value_lengths().to_numpy()
    n_eff = eff.column("ch_pt").combine_chunks().value_lengths().to_numpy()
    assert np.all(n_eff <= n_nom) and n_eff.sum() < n_nom.sum()
    with pytest.raises(ValidationError, match="unknown variation"):
        apply_variation(card, "muScaleTypo", card_file="detector.yaml")


def test_selection_card_errors_name_the_field(tmp_path: Path) -> None:
    from archive.reference.reco import load_selection

    bad = tmp_path / "sel.yaml"
    bad.write_text("cuts:\n  - {variable: pT_ll, operator: '=>', value: 200, unit: GeV}\n")
    with pytest.raises(ValidationError) as err:
        load_selection(bad)
    assert err.value.field == "cuts[0].operator" and err.value.file == str(bad)
    bad.write_text("cuts:\n  - {variable: 'pT_ll; rm', operator: '>', value: 200, unit: GeV}\n")
    with pytest.raises(ValidationError, match="column name or abs"):
        load_selection(bad)
    cuts, objects = load_selection(CARDS / "fiducial.yaml")
    assert {c.column for c in cuts} >= {"pT_ll", "m_ll", "eta_l1"} and objects["track_jets"]["radius"] == 0.4


def test_generate_does_not_depend_on_jobs(small_chain: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from archive.reference.generate import generate

    from .conftest import SMALL_EVENTS

    work, _ = small_chain
    out = generate(CARDS / "generator.yaml", "sim", SMALL_EVENTS, 1, tmp_path / "sim.parquet", jobs=2)
    assert out.read_bytes() == (work / "sim_particles.parquet").read_bytes()


def test_step_cli_reproduces_bytes_and_reports_errors(small_chain: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    work, _ = small_chain
    out = tmp_path / "det.parquet"
    cmd = [sys.executable, "-m", "archive.reference.detsim", "--card", str(CARDS / "detector.yaml"),
           "--input", str(work / "data_particles.parquet"), "--seed", "12", "--output", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (work / "data_detector.parquet").read_bytes()
    prov = json.loads((tmp_path / "det.parquet.provenance.json").read_text())
    assert prov["step"] == "detsim" and prov["parameters"] == {"seed": 12, "variation": "nominal"}
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "x.parquet"), "--variation", "nope"], capture_output=True,
                         text=True, check=False, cwd=REPO)
    assert bad.returncode == ValidationError.exit_code != 0
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert not (tmp_path / "x.parquet").exists(), "no partial output on bad input"


def test_onnx_models_reproduce_their_reference_vectors(small_chain: tuple[Path, dict[str, Any]]) -> None:
    ort = pytest.importorskip("onnxruntime")
    work, _ = small_chain
    for model in sorted((work / "models").glob("*.onnx")):
        meta = json.loads(model.with_suffix(".json").read_text())
        assert meta["inputs"]["features"] == OBSERVABLES and meta["step"] == 2
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        x = np.asarray(meta["reference"]["inputs"], dtype=np.float32)
        logit, weight = sess.run(None, {"x": x})
        assert np.allclose(weight[:, 0], meta["reference"]["weight"], rtol=1e-5)
        assert np.allclose(logit[:, 0], meta["reference"]["logit"], atol=1e-5)
        assert np.all(weight > 0) and meta["onnxruntime_check"]["passed"]
        props = {p.key: p.value for p in __import__("onnx").load(str(model)).metadata_props}
        assert props["features"].split(",") == OBSERVABLES


def test_onnx_push_weights_match_the_unfolded_ensemble_member(small_chain: tuple[Path, dict[str, Any]]) -> None:
    ort = pytest.importorskip("onnxruntime")
    work, _ = small_chain
    cols = read_parquet(work / "unfolded.parquet")
    x = np.stack([cols[o].astype(np.float32) for o in OBSERVABLES], axis=1)
    sess = ort.InferenceSession(str(work / "models" / "step2_ensemble0.onnx"), providers=["CPUExecutionProvider"])
    (weight,) = sess.run(["weight"], {"x": x})
    expected = cols["weights_ensemble_0"] / cols["weight_mc"]
    assert np.allclose(weight[:, 0], expected, rtol=1e-4)


def _reana_commands(params: dict[str, Any]) -> list[str]:
    import string

    from archive.schema._yaml import load_yaml_file

    spec = load_yaml_file(RECIPE / "reana.yaml")
    out = []
    for step in spec["workflow"]["specification"]["steps"]:
        out += [string.Template(c).substitute({k: str(v) for k, v in params.items()})
                for c in step["commands"] if c.startswith("python ")]
    return out


def test_reana_workflow_runs_the_same_commands_as_the_chain() -> None:
    from archive.schema._yaml import load_yaml_file

    params = load_yaml_file(RECIPE / "reana.yaml")["inputs"]["parameters"]
    assert params["events"] == 3000 and params["device"] == "cpu"
    variations = list(load_card(CARDS / "detector.yaml")["variations"])
    steps = chain_steps(Path("work"), cards=Path("cards"), variations=variations)
    expected = [shlex.join(["python", "-m", f"archive.reference.{m}", *argv]) for _, m, argv in steps]
    assert _reana_commands(params) == expected


def test_reana_workflow_validates() -> None:
    recipe = pytest.importorskip("archive.recipe._load")
    loaded = recipe.validate_recipe_dir(RECIPE)
    assert [s.name for s in loaded.spec.steps] == ["generate", "detsim", "reco", "unfold", "validate"]
    assert loaded.spec.engine == "serial" and not loaded.spec.warnings


def test_unfold_does_not_depend_on_jobs(small_chain: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from archive.reference.unfold import main

    work, _ = small_chain
    outputs = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        main(["--card", str(CARDS / "unfold.yaml"), "--sim-truth", str(work / "sim_truth.parquet"),
              "--sim-reco", str(work / "sim_reco.parquet"), "--data-reco", str(work / "data_reco.parquet"),
              "--variation", f"trackEffMain={work / 'sim_reco_trackEffMain.parquet'}", "--ensemble", "1",
              "--bootstrap-data", "1", "--bootstrap-mc", "1", "--seed", "7", "--jobs", str(jobs),
              "--output", str(out / "unfolded.parquet"), "--models", str(out / "models")])
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                        if p.is_file() and "provenance" not in p.name})
    assert sorted(outputs[0]) == ["models/step2_ensemble0.json", "models/step2_ensemble0.onnx",
                                  "unfolded.parquet", "unfolded.parquet.families.json"]
    assert outputs[0] == outputs[1]
    cols = read_parquet(tmp_path / "jobs1" / "unfolded.parquet")
    expected = {"weights_ensemble_0", "weights_bootstrap_data_0", "weights_bootstrap_mc_0", "weights_trackEffMain",
                "weights_dd", "target_dd"}
    assert expected <= set(cols)


@pytest.mark.parametrize(("module", "argv", "needle"), [
    ("generate", ["--card", "{cards}/generator.yaml", "--sample", "nope", "--events", "10", "--seed", "1",
                  "--output", "{tmp}/g.parquet"], "no sample 'nope'"),
    ("reco", ["--selection", "{tmp}/missing.yaml", "--input", "{tmp}/x.parquet", "--output", "{tmp}/r.parquet"],
     "does not exist"),
    ("unfold", ["--card", "{cards}/unfold.yaml", "--sim-truth", "{tmp}/none.parquet", "--sim-reco", "{tmp}/a",
                "--data-reco", "{tmp}/b", "--seed", "1", "--output", "{tmp}/u.parquet"], "does not exist"),
    ("validate", ["--card", "{cards}/validate.yaml", "--unfolded", "{tmp}/none.parquet", "--truth", "{tmp}/t",
                  "--output", "{tmp}/c.json", "--figure", "{tmp}/c.png"], "families sidecar"),
])
def test_bad_inputs_give_one_error_line_and_no_output(module: str, argv: list[str], needle: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from archive.reference._common import run_main

    args = [a.format(cards=CARDS, tmp=tmp_path) for a in argv]
    code = run_main(importlib.import_module(f"archive.reference.{module}").main, args)
    err = capsys.readouterr().err
    assert code == ValidationError.exit_code and err.startswith("error: ") and needle in err
    assert len(err.strip().splitlines()) == 1
    assert not any(p.suffix in (".parquet", ".json", ".png") for p in tmp_path.iterdir())
