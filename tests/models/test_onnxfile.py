"""Reading ONNX files: facts recorded, broken graphs, pickles and unsafe external data refused."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from archive.errors import UnsafeInputError, ValidationError
from archive.models import add_model, inspect_onnx, refuse_pickled
from archive.models._safety import sniff_format


def test_inspect_records_facts(mlp_onnx: Callable[..., Path]) -> None:
    info = inspect_onnx(mlp_onnx()).info
    assert info["ir_version"] == 10
    assert info["opsets"] == [{"domain": "", "version": 20}]
    assert info["producer_name"] == "tests"
    assert info["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 24]}]
    assert info["outputs"] == [{"name": "weight", "dtype": "float32", "shape": ["N", 1]}]
    assert info["parameter_count"] == 24 * 64 + 64 + 64 * 128 + 128 + 128 * 64 + 64 + 64 + 1  # 18,241
    assert info["metadata_props"]["inputs"].startswith("pT_l1,pT_l2")
    assert info["external_data"] == []


def test_broken_graph_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["missing"], ["y"])], "g", [x], [y])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 10
    p = tmp_path / "broken.onnx"
    onnx.save(m, str(p))
    with pytest.raises(ValidationError, match="the ONNX graph is broken") as ei:
        inspect_onnx(p)
    assert "\n" not in str(ei.value)


def test_not_onnx_refused(tmp_path: Path) -> None:
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\xff\xfe garbage that is no protobuf \x00\x01")
    with pytest.raises(ValidationError, match=r"not .*ONNX"):
        inspect_onnx(p)


@pytest.mark.parametrize("ext", [".pt", ".pth", ".pkl", ".joblib", ".h5", ".keras", ".ckpt"])
def test_pickle_extensions_refused(tmp_path: Path, ext: str, mlp_onnx: Callable[..., Path]) -> None:
    p = tmp_path / f"model{ext}"
    p.write_bytes(mlp_onnx().read_bytes())  # even valid ONNX bytes under a pickle name
    with pytest.raises(UnsafeInputError, match="refused") as ei:
        refuse_pickled(p)
    assert "convert" in str(ei.value) or "export" in str(ei.value)
    assert ei.value.exit_code == 5


def _torch_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/version", b"3\n")
    return path


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", "pickle (protocol 4)"),
        (b"\x80\x02}q\x00.", "pickle (protocol 2)"),
        (b"(dp0\nS'a'\np1\nI1\ns.", "protocol 0/1"),
        (b"\x89HDF\r\n\x1a\n" + b"\x00" * 64, "HDF5"),
        (None, "data.pkl"),
    ],
)
def test_pickle_magic_refused_whatever_the_name(tmp_path: Path, content: bytes | None, expect: str) -> None:
    p = tmp_path / "innocent.onnx"
    if content is None:
        _torch_zip(p)
    else:
        p.write_bytes(content)
    with pytest.raises(UnsafeInputError, match="never loaded") as ei:
        inspect_onnx(p)
    assert expect in str(ei.value)


def test_onnx_is_not_sniffed_as_pickle(mlp_onnx: Callable[..., Path]) -> None:
    assert sniff_format(mlp_onnx().read_bytes()[:4096]) is None


# --- external data ---------------------------------------------------------------------------------------------

def _set_location(path: Path, location: str) -> None:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(m, str(path))


def test_external_data_listed_with_digests(tmp_archive: object, mlp_onnx: Callable[..., Path]) -> None:
    from archive._archive import Archive
    from archive.digest import digest_file

    assert isinstance(tmp_archive, Archive)
    p = mlp_onnx(external="weights.bin")
    rec = add_model(tmp_archive, p, name="ext", version="1.0.0")
    assert rec.model.onnx is not None and rec.model.onnx.external_data == ["weights.bin"]
    entry = next(f for f in rec.files if f.path == "weights.bin")
    assert entry.role == "model-external-data"
    assert entry.sha256 == digest_file(p.parent / "weights.bin").sha256
    assert tmp_archive.store.exists(entry.sha256)


@pytest.mark.parametrize(
    ("location", "match"),
    [("../outside.bin", r"contains '\.\.'"), ("sub/../../outside.bin", r"contains '\.\.'"),
     ("/etc/passwd", "absolute"), ("./weights.bin", "not normalised")],
)
def test_external_traversal_refused(tmp_path: Path, mlp_onnx: Callable[..., Path], location: str, match: str,
                                    tmp_archive: object) -> None:
    from archive._archive import Archive

    assert isinstance(tmp_archive, Archive)
    p = mlp_onnx(external="weights.bin")
    (tmp_path / "src" / "sub").mkdir()
    (tmp_path / "outside.bin").write_bytes((p.parent / "weights.bin").read_bytes())
    _set_location(p, location)
    with pytest.raises(UnsafeInputError, match=match) as ei:
        add_model(tmp_archive, p, name="bad", version="1.0.0")
    assert "\n" not in str(ei.value)
    assert not list(tmp_archive.store.iter_digests())  # nothing stored
    assert not tmp_archive.catalog.exists("model/bad", "1.0.0")


def test_external_symlink_refused(tmp_path: Path, mlp_onnx: Callable[..., Path]) -> None:
    p = mlp_onnx(external="weights.bin")
    real = tmp_path / "elsewhere.bin"
    os.replace(p.parent / "weights.bin", real)
    os.symlink(real, p.parent / "weights.bin")
    with pytest.raises(UnsafeInputError, match="symlink"):
        inspect_onnx(p)


def test_external_symlinked_folder_refused(tmp_path: Path, mlp_onnx: Callable[..., Path]) -> None:
    p = mlp_onnx(external="data/weights.bin")
    os.replace(p.parent / "data", tmp_path / "realdata")
    os.symlink(tmp_path / "realdata", p.parent / "data")
    with pytest.raises(UnsafeInputError, match="symlink"):
        inspect_onnx(p)


def test_external_hardlink_refused(tmp_path: Path, mlp_onnx: Callable[..., Path]) -> None:
    p = mlp_onnx(external="weights.bin")
    os.link(p.parent / "weights.bin", tmp_path / "other-name.bin")
    with pytest.raises(UnsafeInputError, match="hard-linked"):
        inspect_onnx(p)


def test_external_missing_and_out_of_range(tmp_path: Path, mlp_onnx: Callable[..., Path]) -> None:
    p = mlp_onnx(external="weights.bin")
    data = (p.parent / "weights.bin").read_bytes()
    (p.parent / "weights.bin").write_bytes(data[:100])
    with pytest.raises(ValidationError, match="outside"):
        inspect_onnx(p)
    (p.parent / "weights.bin").unlink()
    with pytest.raises(ValidationError, match="does not exist"):
        inspect_onnx(p)
