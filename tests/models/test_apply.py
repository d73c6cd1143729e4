"""``model apply``: input mapping, preprocessing, and the end-to-end OmniFold flow from the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models_testlib import FEATURES_24, omnifold_card

from archive.errors import ValidationError
from archive.models import add_model, load_model_record, map_inputs, preprocess, to_weight


def _record(tmp_archive: Any, mlp_onnx: Callable[..., Path], **card_extra: Any) -> Any:
    add_model(tmp_archive, mlp_onnx(), name="of", version="1.0.0", card=omnifold_card(**card_extra))
    return load_model_record(tmp_archive, "of")


def test_map_inputs(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    rec = _record(tmp_archive, mlp_onnx)
    cols = [*FEATURES_24, "weight_mc"]
    assert map_inputs(rec, None, cols) == FEATURES_24
    assert map_inputs(rec, FEATURES_24, cols) == FEATURES_24
    renamed = ["pT_l1=lead_pt", *FEATURES_24[1:]]
    assert map_inputs(rec, renamed, [*cols, "lead_pt"])[0] == "lead_pt"
    swapped = [FEATURES_24[1], FEATURES_24[0], *FEATURES_24[2:]]
    with pytest.raises(ValidationError, match="expects 'pT_l1' there") as ei:
        map_inputs(rec, swapped, cols)
    assert "\n" not in str(ei.value)
    with pytest.raises(ValidationError, match="takes 24"):
        map_inputs(rec, FEATURES_24[:23], cols)
    with pytest.raises(ValidationError, match="has no column"):
        map_inputs(rec, FEATURES_24, FEATURES_24[:-1])


def test_preprocess_clip_shift_scale_padding(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    rec = _record(tmp_archive, mlp_onnx)
    x = np.arange(48, dtype=np.float64).reshape(2, 24)
    x[1, 3] = np.nan
    y = preprocess(rec, x)
    shift = np.arange(24.0)
    expect = (np.where(np.isnan(x), 0.0, x) - shift) / 2.0  # card: shift i, scale 2, padding 0
    np.testing.assert_array_equal(y, expect)
    assert np.isnan(x[1, 3])  # the input is not modified in place


def test_to_weight() -> None:
    np.testing.assert_allclose(to_weight(np.array([0.0, np.log(2.0)]), "logit"), [1.0, 2.0])
    np.testing.assert_allclose(to_weight(np.array([0.5, 0.75]), "probability"), [1.0, 3.0])
    with pytest.raises(ValidationError, match="cannot be turned into a weight"):
        to_weight(np.zeros(2), "score")


# --- end to end ------------------------------------------------------------------------------------------------

def _observables(n: int, rng: np.random.Generator, shift: float) -> dict[str, np.ndarray]:
    """24 ATLAS-named observables with physical-looking ranges (pT in GeV, angles, multiplicities)."""
    cols: dict[str, np.ndarray] = {}
    for i, name in enumerate(FEATURES_24):
        if name.startswith("pT"):
            v = 30.0 + rng.exponential(60.0 + 10 * shift, n)
        elif name.startswith("Ntracks"):
            v = 1.0 + rng.poisson(8.0 + shift, n)
        elif name.startswith("phi"):
            v = rng.uniform(-np.pi, np.pi, n)
        else:
            v = rng.normal(0.3 * shift * (i % 3), 1.0, n)
        cols[name] = v.astype(np.float32)
    return cols


def _train_omnifold_net(seed: int = 7) -> tuple[Any, np.ndarray, np.ndarray]:
    """The realistic OmniFold network (24 inputs, dense 64-128-64, GELU, one logit), trained briefly."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # small batches: one thread is fastest on shared cores, and deterministic
    rng = np.random.default_rng(seed)
    sim = _observables(1500, rng, 0.0)
    data = _observables(1500, rng, 1.0)
    x = np.concatenate([np.column_stack([sim[c] for c in FEATURES_24]),
                        np.column_stack([data[c] for c in FEATURES_24])]).astype(np.float64)
    y = np.concatenate([np.zeros(1500), np.ones(1500)]).astype(np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0)
    xs = torch.tensor(((x - mean) / std).astype(np.float32))
    yt = torch.tensor(y).unsqueeze(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(24, 64), torch.nn.GELU(), torch.nn.Linear(64, 128), torch.nn.GELU(),
        torch.nn.Linear(128, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(3):  # epochs
        for _i in range(0, 3000, 256):
            idx = torch.randperm(3000)[:256]
            opt.zero_grad()
            loss = loss_fn(net(xs[idx]), yt[idx])
            loss.backward()
            opt.step()
    return net.eval(), mean, std


@pytest.mark.slow
def test_omnifold_end_to_end_from_the_cli(tmp_archive: Any, tmp_path: Path, cli: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    import yaml

    from archive.datasets import open_dataset

    net, mean, std = _train_omnifold_net()
    # export (torch -> ONNX file) with reference vectors from torch
    example = torch.tensor(np.random.default_rng(3).standard_normal((32, 24)).astype(np.float32))
    onnx_path = tmp_path / "omnifold_step2_iter3.onnx"
    torch.onnx.export(net, (example,), str(onnx_path), dynamo=False, input_names=["x"], output_names=["logit"],
                      dynamic_axes={"x": {0: "N"}, "logit": {0: "N"}})
    with torch.no_grad():
        expected = net(example).numpy()
    from archive.models import write_tensors

    ref = write_tensors(tmp_path / "ref.safetensors", {"input/x": example.numpy(), "output/logit": expected})
    card = omnifold_card()
    card["model"]["inputs"] = [{"name": n, "shift": float(m), "scale": float(s)}
                               for n, m, s in zip(FEATURES_24, mean, std, strict=True)]
    card["model"]["outputs"] = [{"name": "logit", "meaning": "logit"}]
    card["model"]["training"]["datasets"] = ["dataset/zjets-sim@1.0.0"]
    card_path = tmp_path / "card.yaml"
    card_path.write_text(yaml.safe_dump(card))

    # an ingested dataset with the 24 raw observables
    rows = 3000
    cols = _observables(rows, np.random.default_rng(11), 0.5)
    cols["weight_mc"] = np.full(rows, 0.5, np.float32)
    src = tmp_path / "zjets.parquet"
    pq.write_table(pa.table(cols), src, row_group_size=1000)
    root = str(tmp_archive.root)
    r = cli("--root", root, "ingest", src, "--name", "zjets-sim", "--version", "1.0.0")
    assert r.code == 0, r.err
    r = cli("--root", root, "model", "add", onnx_path, "--name", "omnifold-step2", "--version", "1.0.0",
            "--card", card_path, "--reference", ref)
    assert r.code == 0, r.err
    r = cli("--root", root, "--json", "model", "check", "omnifold-step2@1.0.0")
    assert r.code == 0, r.err
    report = r.json()
    assert report["ok"] and report["providers"] == ["CPUExecutionProvider"] and report["fallback"] is None
    assert report["outputs"][0]["max_abs"] <= 1e-5
    r2 = cli("--root", root, "--json", "model", "check", "omnifold-step2")
    assert r2.json()["outputs"][0]["digest"] == report["outputs"][0]["digest"]  # bitwise-stable rerun

    r = cli("--root", root, "--json", "model", "apply", "omnifold-step2", "zjets-sim", "--inputs",
            ",".join(FEATURES_24), "--output-column", "weights_omnifold", "--as-weight", "--batch-rows", "700",
            "--family", "nominal")
    assert r.code == 0, r.err
    out = r.json()
    assert out["dataset"] == "dataset/zjets-sim@1.1.0" and out["rows"] == rows

    ds = open_dataset(tmp_archive, "zjets-sim", "1.1.0")
    got = ds.read(["weights_omnifold"])["weights_omnifold"]
    x = np.column_stack([cols[c] for c in FEATURES_24]).astype(np.float64)
    with torch.no_grad():
        want = np.exp(net(torch.tensor(((x - mean) / std).astype(np.float32))).numpy()[:, 0].astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert got.std() > 0  # the trained network is not constant
    fam = ds.family("weights_omnifold")
    assert fam.type == "nominal" and not fam.includes_mc_weight and "omnifold-step2@1.0.0" in (fam.description or "")
    base = open_dataset(tmp_archive, "zjets-sim", "1.0.0")
    assert "weights_omnifold" not in base.columns and set(base.columns) <= set(ds.columns)

    # the card renders, `validate` is clean (training dataset reference resolves)
    r = cli("--root", root, "model", "card", "omnifold-step2")
    assert r.code == 0 and "| 0 | `pT_l1` |" in r.out and "## Limitations" in r.out
    r = cli("--root", root, "validate")
    assert r.code == 0, r.err + r.out

    # wrong input names at apply time: one line, exit 2-class error, nothing written
    r = cli("--root", root, "model", "apply", "omnifold-step2", "zjets-sim@1.0.0", "--inputs",
            ",".join(reversed(FEATURES_24)), "--output-column", "w2")
    assert r.code != 0 and r.err.count("\n") == 1 and "expects 'pT_l1' there" in r.err
    assert not tmp_archive.catalog.exists("dataset/zjets-sim", "1.2.0")


def _small_dataset(tmp_archive: Any, tmp_path: Path, names: list[str], rows: int = 500) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from archive.datasets import ingest

    rng = np.random.default_rng(5)
    cols = {n: rng.standard_normal(rows).astype(np.float32) for n in names}
    cols[names[-1]] = rng.integers(1, 30, rows).astype(np.int32)  # an integer feature (Ntracks)
    pq.write_table(pa.table(cols), tmp_path / "small.parquet", row_group_size=200)
    ingest(tmp_archive, [tmp_path / "small.parquet"], name="small", version="1.0.0")
    return cols


def test_apply_identity_preprocessing_default_inputs(tmp_archive: Any, tmp_path: Path,
                                                     mlp_onnx: Callable[..., Path]) -> None:
    from archive.datasets import open_dataset
    from archive.models import apply_model, make_session

    cols = _small_dataset(tmp_archive, tmp_path, FEATURES_24)
    card = {"model": {"inputs": [{"name": n} for n in FEATURES_24],
                      "outputs": [{"name": "weight", "meaning": "weight"}]}}
    p = mlp_onnx()
    add_model(tmp_archive, p, name="id", version="1.0.0", card=card)
    seen: list[int] = []
    res = apply_model(tmp_archive, "id", "small", output_column="w", batch_rows=128, session_rows=50,
                      progress=seen.append)
    assert res.rows == 500 and sum(seen) == 500 and len(seen) == 4
    assert res.dataset == "dataset/small@1.1.0" and res.session.used == ["CPUExecutionProvider"]
    got = open_dataset(tmp_archive, "small", "1.1.0").read(["w"])["w"]
    sess, _ = make_session(p)
    x = np.column_stack([cols[c] for c in FEATURES_24]).astype(np.float32)
    want = sess.run(["weight"], {"x": x})[0][:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    # applying again to the same version with the same column: refused, nothing new written
    with pytest.raises(ValidationError, match="already has a column"):
        apply_model(tmp_archive, "id", "small@1.1.0", output_column="w")
    assert not tmp_archive.catalog.exists("dataset/small", "1.2.0")


def test_point_cloud_model_registers_but_apply_refuses(tmp_archive: Any, tmp_path: Path) -> None:
    """A PET-shaped [N, P, F] model: registered and checked; `apply` (one [rows, F] input) refuses it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from archive.models import apply_model, check_model

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 1)).astype(np.float32), "W")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("ReduceSum", ["h", "axes"], ["logit"],
                                                                              keepdims=0)]
    g = helper.make_graph(nodes, "pet_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 100, 4])],
                          [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1])], [w, axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 10
    p = tmp_path / "pet.onnx"
    onnx.save(m, str(p))
    rec = add_model(tmp_archive, p, name="pet", version="1.0.0", reference_rows=3)
    assert rec.model.onnx is not None and rec.model.onnx.inputs[0].shape == ["N", 100, 4]
    assert check_model(tmp_archive, "pet").ok
    _small_dataset(tmp_archive, tmp_path, ["a", "b", "c", "d"])
    with pytest.raises(ValidationError, match=r"feeds \[rows, features\]"):
        apply_model(tmp_archive, "pet", "small", inputs=["a", "b", "c", "d"], output_column="w")
