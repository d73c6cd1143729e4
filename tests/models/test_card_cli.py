"""Model cards (schema, rendering) and the ``hep-archive model`` commands, errors included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from models_testlib import FEATURES_24, omnifold_card

from archive.errors import ImmutableError, ValidationError
from archive.models import add_model, load_model_record, render_card
from archive.schema import parse_record, record_to_data


def test_card_fields_are_stored_and_rendered(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    card = omnifold_card()
    card["model"]["inputs"][0]["clip_max"] = 3000.0
    rec = add_model(tmp_archive, mlp_onnx(), name="of", version="1.0.0", card=card)
    spec = rec.model
    assert [f.name for f in spec.inputs] == FEATURES_24 and spec.inputs[0].unit == "GeV"
    assert spec.omnifold is not None and spec.omnifold.step == 2 and spec.omnifold.ensemble_member == 0
    assert spec.training.configuration["batch_size"] == 128
    md = render_card(rec)
    for piece in ("# OmniFold step-2 network", "| 0 | `pT_l1` | GeV | 0 | 2 | [, 3000] |",
                  "Step 2 (particle-level push)", "iteration 3, ensemble member 0 of 100", "## Intended use",
                  "Reweight the particle-level",
                  "## Limitations", "**IR version:** 10; **opsets:** ai.onnx 20", "**Parameters:** 18,241",
                  "`x`: float32 [N, 24]", "`reference-vectors.safetensors` | reference"):
        assert piece in md, piece
    # the stored record round-trips through the schema
    again = parse_record(record_to_data(rec))
    assert again == rec


def test_card_without_documentation_says_so(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    rec = add_model(tmp_archive, mlp_onnx(), name="bare", version="1.0.0")
    md = render_card(rec)
    assert "Input features are not documented" in md and "meaning of the outputs is not documented" in md


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda c: c.update(id="model/other"), "'id' is set by `model add`"),
        (lambda c: c["model"].update(onnx={}), "read from the ONNX file"),
        (lambda c: c["model"]["inputs"].pop(), "lists 23 input features but the graph input 'x' takes 24"),
        (lambda c: c["model"]["inputs"][1].update(name="pT_l1"), "duplicate input feature names"),
        (lambda c: c["model"]["inputs"][0].update(scale=0.0), "scale finite and non-zero"),
        (lambda c: c["model"]["outputs"][0].update(name="nope"), "not a graph output"),
        (lambda c: c["model"]["training"].update(datasets=["model/x"]), "must be a dataset record"),
        (lambda c: c["model"].update(reference={"rows": 3}), "may only set atol and rtol"),
    ],
)
def test_bad_cards_refused_and_nothing_stored(tmp_archive: Any, mlp_onnx: Callable[..., Path],
                                              mutate: Callable[[dict[str, Any]], Any], match: str) -> None:
    card = omnifold_card()
    mutate(card)
    with pytest.raises(ValidationError) as ei:
        add_model(tmp_archive, mlp_onnx(), name="of", version="1.0.0", card=card)
    assert match in " | ".join(ei.value.lines())
    assert not list(tmp_archive.store.iter_digests())
    assert not tmp_archive.catalog.exists("model/of", "1.0.0")


def test_card_tolerances_used(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    card = omnifold_card()
    card["model"]["reference"] = {"atol": 1e-3, "rtol": 0.0}
    rec = add_model(tmp_archive, mlp_onnx(), name="of", version="1.0.0", card=card)
    assert rec.model.reference is not None
    assert (rec.model.reference.atol, rec.model.reference.rtol) == (1e-3, 0.0)


def test_published_version_is_immutable(tmp_archive: Any, mlp_onnx: Callable[..., Path]) -> None:
    add_model(tmp_archive, mlp_onnx(), name="of", version="1.0.0")
    tmp_archive.catalog.publish("model/of@1.0.0")
    before = set(tmp_archive.store.iter_digests())
    with pytest.raises(ImmutableError):
        add_model(tmp_archive, mlp_onnx(seed=5), name="of", version="1.0.0")
    assert set(tmp_archive.store.iter_digests()) == before
    assert load_model_record(tmp_archive, "of@1.0.0").status == "published"


# --- CLI -------------------------------------------------------------------------------------------------------

def test_cli_add_check_card(tmp_archive: Any, mlp_onnx: Callable[..., Path], cli: Any, tmp_path: Path) -> None:
    root = str(tmp_archive.root)
    card = tmp_path / "card.yaml"
    card.write_text(yaml.safe_dump(omnifold_card()))
    r = cli("--root", root, "model", "add", mlp_onnx(), "--name", "of", "--version", "1.0.0", "--card", card)
    assert r.code == 0, r.err
    assert "registered model/of@1.0.0 (18,241 parameters; x: float32[N, 24])" in r.out
    r = cli("--root", root, "model", "check", "of@1.0.0")
    assert r.code == 0 and "on CPUExecutionProvider" in r.out and "bitwise equal" in r.out
    r = cli("--root", root, "--json", "model", "check", "model/of", "--device", "cuda")
    assert r.code == 0
    data = r.json()
    assert data["session"]["requested"][0] == "CUDAExecutionProvider"
    if data["fallback"]:
        assert data["providers"] == ["CPUExecutionProvider"]
        r = cli("--root", root, "model", "check", "of", "--device", "cuda")
        assert "warning: device fallback: CUDA requested" in r.err
        assert cli("--root", root, "model", "check", "of", "--device", "cuda", "--require-device").code == 1
    out = tmp_path / "card.md"
    r = cli("--root", root, "model", "card", "of", "-o", out)
    assert r.code == 0 and out.read_text().startswith("# OmniFold step-2 network")
    assert cli("--root", root, "validate").code == 0


def _one_line_error(r: Any) -> str:
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err
    return str(lines[0])


def test_cli_refusals_are_one_line(tmp_archive: Any, mlp_onnx: Callable[..., Path], cli: Any,
                                   tmp_path: Path) -> None:
    import onnx

    root = str(tmp_archive.root)
    # pickle by extension and by content
    pt = tmp_path / "net.pt"
    pt.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.")
    r = cli("--root", root, "model", "add", pt, "--name", "a", "--version", "1.0.0")
    assert r.code == 5 and "export_torch" in _one_line_error(r)
    disguised = tmp_path / "net.onnx"
    disguised.write_bytes(pt.read_bytes())
    r = cli("--root", root, "model", "add", disguised, "--name", "a", "--version", "1.0.0")
    assert r.code == 5 and "pickle (protocol 4)" in _one_line_error(r)
    # traversal in external data
    p = mlp_onnx(external="weights.bin")
    m = onnx.load(str(p), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../weights.bin"
    onnx.save(m, str(p))
    r = cli("--root", root, "model", "add", p, "--name", "a", "--version", "1.0.0")
    assert r.code == 5 and "contains '..'" in _one_line_error(r)
    # broken graph
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Gemm", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    bm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    bm.ir_version = 10
    broken = tmp_path / "broken.onnx"
    onnx.save(bm, str(broken))
    r = cli("--root", root, "model", "add", broken, "--name", "a", "--version", "1.0.0")
    assert r.code == 2 or r.code == 1
    assert "the ONNX graph is broken" in _one_line_error(r)
    # unknown model, bad device
    r = cli("--root", root, "model", "check", "nope")
    assert r.code == 4 and "no record model/nope" in _one_line_error(r)
    assert not list(tmp_archive.store.iter_digests())
    assert not list((Path(root) / "catalog").rglob("*.yaml"))


def test_training_dataset_references_are_validated(tmp_archive: Any, mlp_onnx: Callable[..., Path], cli: Any) -> None:
    card = omnifold_card()
    card["model"]["training"]["datasets"] = ["dataset/never-ingested@1.0.0"]
    rec = add_model(tmp_archive, mlp_onnx(), name="of", version="1.0.0", card=card)
    assert ("model.training.datasets[0]", "dataset/never-ingested@1.0.0") in list(rec.references())
    r = cli("--root", str(tmp_archive.root), "validate")
    assert r.code == 1
    assert "model.training.datasets[0]: refers to dataset/never-ingested@1.0.0, which is not in the catalog" in r.err
