"""Hostile input: each case is refused with a one-line error and nothing is written outside the archive.

Foundation and storage cases are tested directly; the other layers' cases call their public functions
(containers: ``unpack_layers``; models: ``refuse_pickled``/``inspect_onnx``; recipes: ``validate_recipe_dir``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from integrity_helpers import make_archive, publish

from archive._archive import Archive
from archive.digest import canonical_json, digest_bytes
from archive.errors import StorageError, UnsafeInputError, ValidationError
from archive.integrity import repair, verify_archive
from archive.schema import parse_record
from archive.schema._yaml import load_yaml_text

RECORD = """\
id: dataset/hostile
version: 1.0.0
schema_version: 1.0.0
title: Hostile
license: CC0-1.0
"""


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A directory outside the archive whose content must never change."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "canary.txt").write_text("untouched")
    before = sorted(p.name for p in d.iterdir())
    yield d
    assert sorted(p.name for p in d.iterdir()) == before, "something was written outside the archive"
    assert (d / "canary.txt").read_text() == "untouched"


def _refused_by_cli(cli: Any, a: Archive, yaml_text: str, tmp_path: Path, code: int, needle: str) -> None:
    p = tmp_path / "hostile.yaml"
    p.write_text(yaml_text)
    before = sorted(str(x) for x in (a.root / "catalog").rglob("*"))
    res = cli("--root", a.root, "add", p)
    assert res.code == code, res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("error: ") for ln in lines) and "Traceback" not in res.err
    assert needle in res.err
    assert sorted(str(x) for x in (a.root / "catalog").rglob("*")) == before, "a partial record was left"


# --- YAML ------------------------------------------------------------------------------------------------
def test_yaml_python_tags(tmp_archive: Archive, cli: Any, tmp_path: Path, outside: Path) -> None:
    evil = RECORD + f"description: !!python/object/apply:os.system ['touch {outside}/pwned']\n"
    with pytest.raises(UnsafeInputError, match="unsafe or unknown YAML tag"):
        load_yaml_text(evil)
    _refused_by_cli(cli, tmp_archive, evil, tmp_path, 5, "YAML tag")
    assert not (outside / "pwned").exists()
    with pytest.raises(UnsafeInputError):
        load_yaml_text("a: !!python/name:os.system\n")


def test_yaml_aliases_and_bombs(tmp_archive: Archive, cli: Any, tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(ValidationError, match="aliases are not allowed"):
        load_yaml_text(bomb)
    _refused_by_cli(cli, tmp_archive, RECORD + "keywords: &k [a]\nsubjects: *k\n", tmp_path, 1, "aliases")


def test_huge_and_deep_records(tmp_archive: Archive, cli: Any, tmp_path: Path) -> None:
    huge = RECORD + "description: '" + "x" * (16 * 1024 * 1024 + 10) + "'\n"
    _refused_by_cli(cli, tmp_archive, huge, tmp_path, 5, "larger than")
    deep = RECORD + "extra: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(UnsafeInputError, match="nested deeper"):
        load_yaml_text(deep)
    _refused_by_cli(cli, tmp_archive, deep, tmp_path, 5, "nested deeper")


def test_unknown_fields(tmp_archive: Archive, cli: Any, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        parse_record(load_yaml_text(RECORD + "sneaky_field: 1\n"))
    assert any(p.field and "sneaky_field" in p.field for p in err.value.problems)
    _refused_by_cli(cli, tmp_archive, RECORD + "sneaky_field: 1\n", tmp_path, 1, "sneaky_field")


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "a/../../b", "data/../../x"])
def test_dotdot_and_absolute_paths_in_records(path: str) -> None:
    base = load_yaml_text(RECORD)
    entry = {"path": "ok.bin", "size": 1, "sha256": digest_bytes(b"x")}
    with pytest.raises(ValidationError):
        parse_record({**base, "files": [{**entry, "path": path}]})
    with pytest.raises(ValidationError):
        parse_record({**base, "files": [{**entry, "locations": [f"tree:{path}"]}]})


# --- storage ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("digest", ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "../objects", ""])
def test_object_names_cannot_traverse(tmp_archive: Archive, digest: str) -> None:
    for op in (tmp_archive.store.verify, tmp_archive.store.read_bytes, tmp_archive.store.open):
        with pytest.raises(ValidationError):
            op(digest)
    assert not tmp_archive.store.exists(digest)


def test_store_options_never_hold_credentials() -> None:
    from archive.storage import open_store

    with pytest.raises(StorageError, match="environment"):
        open_store("s3://bucket/x", {"secret": "hunter2"})


def test_tree_symlink_escape_is_not_trusted(tmp_archive: Archive, outside: Path) -> None:
    p = tmp_archive.root / "recipes" / "run.sh"
    p.write_text("echo\n")
    publish(tmp_archive, [p], "treelink", tree=True)
    p.unlink()
    p.symlink_to(outside / "canary.txt")  # the tree file now points outside the archive
    rep = verify_archive(tmp_archive)
    assert rep.objects[0].copies["tree:recipes/run.sh"] == "unreadable"
    assert "outside the archive" in rep.objects[0].details["tree:recipes/run.sh"]
    repair(tmp_archive)  # may restore the file, never through the link
    assert (outside / "canary.txt").read_text() == "untouched"


def test_hostile_snapshot_is_not_restored(tmp_path: Path, write_file: Any) -> None:
    a = make_archive(tmp_path / "arc")
    publish(a, [write_file("x.bin", b"x")], "snap")
    path = a.catalog.path_for("dataset/snap", "1.0.0")
    digest = a.catalog.ledger.latest()["dataset/snap@1.0.0"].digest
    # plant a "snapshot" object under the ledger digest's name whose bytes do not match (as an attacker could)
    target = a.store.base / a.store.object_key(digest)  # type: ignore[attr-defined]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(canonical_json({"id": "dataset/snap", "evil": True}))
    path.write_text(path.read_text().replace("Test record snap", "Edited"))
    res = repair(a)
    assert not res.ok and "Edited" in path.read_text(), "an unverified snapshot must never be written back"


def test_fixity_log_garbage_is_ignored(tmp_archive: Archive, write_file: Any) -> None:
    publish(tmp_archive, [write_file("y.bin", b"y")], "logged")
    from archive.integrity import fixity_log

    log = fixity_log(tmp_archive)
    log.path.parent.mkdir(parents=True, exist_ok=True)
    log.path.write_text('not json\n["list"]\n{"event": "check"}\n{"event":"check","run":"r","time":"bad"}\n')
    assert verify_archive(tmp_archive, since="1d").ok
    assert verify_archive(tmp_archive, resume=True).ok


# --- containers: tar members and links in layers ---------------------------------------------------------
def _layer(tmp_path: Path, entries: list[Any]) -> Path:
    testing = pytest.importorskip("archive.container.testing")
    p = tmp_path / f"layer{len(list(tmp_path.glob('layer*')))}.tar"
    p.write_bytes(testing.layer_tar(entries))
    return p


@pytest.mark.parametrize("entries", [
    [("../escape.txt", "file", b"x", 0o644)],
    [("/abs.txt", "file", b"x", 0o644)],
    [("link", "symlink", "../../outside", 0o777), ("link/pwned", "file", b"x", 0o644)],
    [("hard", "hardlink", "/etc/passwd", 0o644)],
    [("hard", "hardlink", "../outside/canary.txt", 0o644)],
], ids=["dotdot", "absolute", "symlink-escape", "hardlink-absolute", "hardlink-dotdot"])
def test_container_layer_escapes(tmp_path: Path, outside: Path, entries: list[Any]) -> None:
    unpack = pytest.importorskip("archive.container")
    target = tmp_path / "rootfs"
    target.mkdir()
    with pytest.raises(UnsafeInputError, match="refused"):
        unpack.unpack_layers([_layer(tmp_path, entries)], target)


def test_container_absolute_symlinks_stay_in_the_image(tmp_path: Path) -> None:
    """``etc -> /`` then ``etc/x``: an absolute link means the image root (chroot semantics), never the host's."""
    unpack = pytest.importorskip("archive.container")
    target = tmp_path / "rootfs"
    target.mkdir()
    name = f"hep-archive-pwned-{os.getpid()}"
    unpack.unpack_layers([_layer(tmp_path, [("etc", "symlink", "/", 0o777), (f"etc/{name}", "file", b"x", 0o644)])],
                         target)
    assert not (Path("/") / name).exists()
    assert (target / name).read_bytes() == b"x"


def test_container_device_nodes_are_not_created(tmp_path: Path) -> None:
    unpack = pytest.importorskip("archive.container")
    target = tmp_path / "rootfs"
    target.mkdir()
    try:
        report = unpack.unpack_layers([_layer(tmp_path, [("dev/null", "chr", b"", 0o666),
                                                         ("fifo", "fifo", b"", 0o644)])], target)
    except UnsafeInputError:
        return  # refused outright: fine
    import stat

    for p in target.rglob("*"):
        assert not stat.S_ISCHR(p.lstat().st_mode) and not stat.S_ISBLK(p.lstat().st_mode)
    assert report is not None


# --- models: pickles and ONNX external data ----------------------------------------------------------------
# protocol-4 pickle bytes of os.system("true"), written literally (nothing here ever unpickles)
_PICKLE = (b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94"
           b"\x8c\x04true\x94\x85\x94R\x94.")


@pytest.mark.parametrize("name", ["model.pkl", "model.pt", "weights.bin", "model.onnx"])
def test_pickled_models_are_refused(tmp_path: Path, name: str) -> None:
    models = pytest.importorskip("archive.models")
    p = tmp_path / name
    p.write_bytes(_PICKLE)
    with pytest.raises(UnsafeInputError, match="refused"):
        models.refuse_pickled(p)


def _onnx_with_external(tmp_path: Path, location: str) -> Path:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones(4, dtype="float32"), name="W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])], [w])
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    p = d / "model.onnx"
    p.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return p


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_onnx_external_data_escapes(tmp_path: Path, outside: Path, kind: str) -> None:
    models = pytest.importorskip("archive.models")
    (outside / "w.bin").write_bytes(np.ones(4, dtype="float32").tobytes())
    if kind == "dotdot":
        p = _onnx_with_external(tmp_path, "../outside/w.bin")
    elif kind == "absolute":
        p = _onnx_with_external(tmp_path, str(outside / "w.bin"))
    else:
        p = _onnx_with_external(tmp_path, "w.bin")
        (p.parent / "w.bin").symlink_to(outside / "w.bin")
    with pytest.raises(UnsafeInputError, match="external data"):
        models.inspect_onnx(p)
    (outside / "w.bin").unlink()


# --- recipes that try to reach host paths ------------------------------------------------------------------
_RECIPE = """\
version: 0.9.0
inputs:
  files: [{files}]
workflow:
  type: serial
  specification:
    steps:
      - name: s
        environment: "docker.io/library/busybox@sha256:{digest}"
        commands: ["cat data.txt"]
"""


@pytest.mark.parametrize("files", ["/etc/passwd", "../outside/canary.txt", "data/../../../etc/shadow"])
def test_recipes_cannot_name_host_paths(tmp_path: Path, outside: Path, files: str) -> None:
    recipe = pytest.importorskip("archive.recipe")
    d = tmp_path / "recipe"
    d.mkdir()
    (d / "data.txt").write_text("x")
    (d / "reana.yaml").write_text(_RECIPE.format(files=files, digest="0" * 64))
    with pytest.raises(ValidationError) as err:
        recipe.validate_recipe_dir(d)
    assert "relative path inside the recipe directory" in str(err.value.problems or err.value)


def test_recipes_cannot_smuggle_host_files_by_symlink(tmp_path: Path, outside: Path) -> None:
    recipe = pytest.importorskip("archive.recipe")
    d = tmp_path / "recipe"
    d.mkdir()
    (d / "data.txt").symlink_to(outside / "canary.txt")
    (d / "reana.yaml").write_text(_RECIPE.format(files="data.txt", digest="0" * 64))
    with pytest.raises(UnsafeInputError, match="symbolic links"):
        recipe.validate_recipe_dir(d)


# --- event files: XML entity bombs in LHE input (datasets/formats layer) -------------------------------------
_LHE_BOMB = """<?xml version="1.0"?>
<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<LesHouchesEvents version="3.0"><header>&d;</header></LesHouchesEvents>
"""


def test_lhe_entity_bomb_is_refused(tmp_archive: Archive, cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("archive.datasets")
    p = tmp_path / "bomb.lhe"
    p.write_text(_LHE_BOMB)
    res = cli("--root", tmp_archive.root, "ingest", p, "--name", "bomb", "--version", "1.0.0")
    assert res.code == 5, res.err
    assert "refused" in res.err and "Traceback" not in res.err
    assert not (tmp_archive.root / "catalog" / "dataset").exists() or not any(
        (tmp_archive.root / "catalog" / "dataset").rglob("*.yaml"))
