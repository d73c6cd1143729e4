"""Snapshot images: a real OCI image of this Python environment, built offline, deterministic, runnable.

A small requirement set (PyYAML and packaging) and a package generated here keep the image small; the full
analysis image is built and run by the reference-release test (tests/publish).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from archive.container import add_image, get_runner, run_image
from archive.container._snapshot import build_snapshot_oci, containerfile_env, read_requirements
from archive.errors import ValidationError

REQS = ["PyYAML", "packaging"]


def _package(tmp: Path) -> Path:
    pkg = tmp / "tinyana"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 42\n")
    (pkg / "main.py").write_text("import yaml\nfrom tinyana import VALUE\nprint(yaml.safe_dump({'value': VALUE}))\n")
    (pkg / "card.yaml").write_text("a: 1\n")
    return pkg


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("snap")
    report = build_snapshot_oci(tmp / "layout", REQS, packages=[_package(tmp / "src")], title="tiny",
                                env={"ANSWER": "42"})
    return tmp / "layout", report


def _manifest(layout: Path) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    return json.loads((layout / "blobs" / "sha256" / digest).read_bytes())


def test_layout_is_a_real_oci_image_with_four_layers(layout: tuple[Path, Any]) -> None:
    path, report = layout
    manifest = _manifest(path)
    assert manifest["schemaVersion"] == 2
    assert [la["mediaType"] for la in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * 4
    assert [la["name"] for la in report.layers] == ["base", "python", "site-packages", "analysis"]
    cfg = json.loads((path / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    env = dict(e.split("=", 1) for e in cfg["config"]["Env"])
    assert env["ANSWER"] == "42"
    assert "/usr/local/bin" in env["PATH"].split(":") and env["LD_LIBRARY_PATH"] == "/usr/local/lib"
    dists = json.loads(cfg["config"]["Labels"]["org.hep-archive.snapshot.distributions"])
    assert {"PyYAML", "packaging"} <= set(dists)
    assert report.packages == ["tinyana"]
    assert report.python == sys.version.split()[0]


def test_same_environment_gives_the_same_digest(layout: tuple[Path, Any], tmp_path: Path) -> None:
    _, first = layout
    again = build_snapshot_oci(tmp_path / "again", REQS, packages=[_package(tmp_path / "src")], title="tiny",
                               env={"ANSWER": "42"})
    assert again.manifest_digest == first.manifest_digest
    assert [la["digest"] for la in again.layers] == [la["digest"] for la in first.layers]


def test_bytecode_is_hash_based_and_unchecked(layout: tuple[Path, Any]) -> None:
    import tarfile

    path, report = layout
    analysis = next(la for la in report.layers if la["name"] == "analysis")
    with tarfile.open(path / "blobs" / "sha256" / analysis["digest"].split(":")[1]) as tar:
        names = tar.getnames()
        pyc = next(n for n in names if n.endswith(f"tinyana/__pycache__/main.{sys.implementation.cache_tag}.pyc"))
        member = tar.getmember(pyc)
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
        assert member.mtime == 946684800 and member.uid == 0
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, source not checked
    source = b"import yaml\nfrom tinyana import VALUE\nprint(yaml.safe_dump({'value': VALUE}))\n"
    assert data[8:16] == importlib.util.source_hash(source)
    assert any(n.endswith("tinyana/card.yaml") for n in names)  # package data travels with the code
    assert not any(".dist-info/" in n for n in names)  # tinyana is not an installed distribution


def test_image_runs_python_and_the_package_in_bwrap(layout: tuple[Path, Any], tmp_archive: Any,
                                                     tmp_path: Path) -> None:
    if (why := get_runner("bwrap").available()) is not None:
        pytest.skip(why)
    path, report = layout
    rec = add_image(tmp_archive, path, name="tiny", version="1.0.0")
    assert rec.container.manifest_digest == report.manifest_digest
    ws = tmp_path / "ws"
    ws.mkdir()
    out, err = tmp_path / "o", tmp_path / "e"
    outcome = run_image(tmp_archive, "tiny", ["sh", "-c", "python -m tinyana.main; python -c 'import sys; "
                                              "print(sys.prefix, sys.flags.dont_write_bytecode)'; echo $ANSWER"],
                        workspace=ws, stdout=out, stderr=err)
    assert outcome.exit_code == 0, err.read_text()
    lines = [line for line in out.read_text().splitlines() if line]
    assert lines[0] == "value: 42"
    assert lines[1].startswith("/usr/local ")
    assert lines[-1] == "42"


def test_installed_version_outside_a_pin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        build_snapshot_oci(tmp_path / "x", ["PyYAML==0.0.1", "no-such-distribution-hep"])
    msg = str(exc.value)
    assert "PyYAML" in msg and "the pin is PyYAML==0.0.1" in msg
    assert "no-such-distribution-hep is not installed here" in msg
    assert not (tmp_path / "x").exists()
    # a pin for another platform is not this environment's business (universal lock files)
    report = build_snapshot_oci(tmp_path / "y", ['pywin32==306; sys_platform == "win32"', *REQS])
    assert "pywin32" not in report.distributions


def test_not_a_package_and_non_empty_output_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notpkg").mkdir()
    with pytest.raises(ValidationError, match=r"no __init__\.py"):
        build_snapshot_oci(tmp_path / "x", REQS, packages=[tmp_path / "notpkg"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ValidationError, match="not empty"):
        build_snapshot_oci(tmp_path / "full", REQS)


def test_requirements_and_containerfile_env(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# pins\ntorch==2.13.0  # the CPU build\n\n--extra-index-url https://example.org\nnumpy>=2\n")
    assert read_requirements(req) == ["torch==2.13.0", "numpy>=2"]
    # a lock compiled with hashes: continuation lines joined, per-requirement options cut off
    req.write_text("# autogenerated\ntorch==2.13.0+cpu \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n"
                   "    # via -r requirements.in\nrich[jupyter]==13.9.4 ; python_version >= '3.11' \\\n"
                   "    --hash=sha256:ef\n")
    assert read_requirements(req) == ["torch==2.13.0+cpu", "rich[jupyter]==13.9.4 ; python_version >= '3.11'"]
    req.write_text("numpy >= = 2\n")
    with pytest.raises(ValidationError) as exc:
        read_requirements(req)
    assert exc.value.field == "line 1"
    cf = tmp_path / "Containerfile"
    cf.write_text('FROM python:3.11\nENV A=1 \\\n    B="two words" \\\n    C=3\nENV LEGACY value here\nRUN true\n')
    assert containerfile_env(cf) == {"A": "1", "B": "two words", "C": "3", "LEGACY": "value here"}
    # as a builder reads it: comments inside continuations, the legacy form with '=' in the value, $VAR
    cf.write_text('ENV A=1 \\\n    # note\n    B=2\nENV OPTS -Dx=1\nENV PATH=/opt/bin:$PATH C=${A}x\n')
    assert containerfile_env(cf, {"PATH": "/usr/bin"}) == {"A": "1", "B": "2", "OPTS": "-Dx=1",
                                                          "PATH": "/opt/bin:/usr/bin", "C": "1x"}


def test_cli_snapshot_records_definition_folder_and_metadata(tmp_archive: Any, cli: Any, tmp_path: Path) -> None:
    folder = tmp_archive.root / "containers" / "tiny"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text("PyYAML\npackaging\n")
    (folder / "Containerfile").write_text("FROM python:3.11-slim\nENV ANSWER=42\nCOPY tinyana /app/tinyana\n")
    (folder / "README.md").write_text("# tiny\n")
    meta = tmp_path / "meta.yaml"
    meta.write_text("creators: [{name: 'Curie, Marie'}]\nlicense: MIT\ndescription: A tiny analysis image.\n")
    pkg = _package(tmp_path / "src")
    r = cli("--root", tmp_archive.root, "--json", "container", "snapshot", "tiny", "--version", "1.0.0",
            "--package", pkg, "--metadata", meta)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["ref"] == "container/tiny@1.0.0" and data["packages"] == ["tinyana"]
    assert "ANSWER=42" in data["env"]
    rec = tmp_archive.record("container/tiny@1.0.0")
    assert rec.license == "MIT" and rec.creators[0].name == "Curie, Marie"
    assert rec.description.startswith("A tiny analysis image.") and "PyYAML" in rec.description
    roles = {f.path: f.role for f in rec.files if f.role in ("definition", "documentation")}
    assert roles == {"containers/tiny/Containerfile": "definition", "containers/tiny/requirements.txt": "definition",
                     "containers/tiny/README.md": "documentation"}
    assert not list((tmp_archive.state_dir / "containers").glob(".snapshot-*"))  # the work folder is gone
    bad = cli("--root", tmp_archive.root, "container", "snapshot", "nothing-here")
    assert bad.code != 0 and "requirements.txt" in bad.err and "Traceback" not in bad.err
