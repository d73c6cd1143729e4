"""The CLI: init/validate/verify, one line per problem with no traceback, exit codes, fast --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from archive.schema._yaml import dump_yaml

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


def test_init_validate_verify(tmp_path: Path, cli: Any) -> None:
    root = tmp_path / "scratch"
    assert cli("init", root).code == 0
    for d in ("catalog", "schemas", "recipes", "containers"):
        assert (root / d).is_dir()
    assert (root / "schemas" / "dataset" / "1.0.0.json").is_file()
    assert (root / "archive.yaml").is_file()
    assert cli("--root", root, "validate").code == 0
    assert cli("--root", root, "verify").code == 0
    assert cli("validate", "--root", root, "--json").json()["ok"] is True
    again = cli("init", root)
    assert again.code == 1 and "already an archive root" in again.err


def test_malformed_records_one_line_each_no_traceback(tmp_archive: Any, cli: Any) -> None:
    bad = {
        "id": "dataset/bad", "version": "1.0", "title": "Bad", "colour": "blue",
        "files": [{"path": "../../etc/passwd", "size": 1, "sha256": "sha256:nothex"}],
    }
    d = tmp_archive.root / "catalog" / "dataset" / "bad"
    d.mkdir(parents=True)
    (d / "1.0.yaml").write_text(dump_yaml(bad))
    (tmp_archive.root / "catalog" / "dataset" / "worse").mkdir()
    (tmp_archive.root / "catalog" / "dataset" / "worse" / "1.0.0.yaml").write_text("id: [unclosed\n")
    r = cli("--root", tmp_archive.root, "validate")
    assert r.code == 1
    assert "Traceback" not in r.err + r.out
    lines = [ln for ln in r.err.splitlines() if ln.startswith("catalog/")]
    fields = {ln.split(": ")[1] for ln in lines}
    assert {"version", "colour", "files[0].path", "files[0].sha256"} <= fields
    assert any(ln.startswith("catalog/dataset/worse/1.0.0.yaml: line") and "not valid YAML" in ln for ln in lines)
    assert all(ln.startswith("catalog/dataset/") for ln in lines)


def test_edit_of_published_record_refused_new_version_accepted(tmp_archive: Any, cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(dump_yaml({"id": "dataset/z", "version": "1.0.0", "title": "Z"}))
    root = tmp_archive.root
    assert cli("--root", root, "add", f).code == 0
    assert cli("--root", root, "publish", "dataset/z@1.0.0").code == 0
    f.write_text(dump_yaml({"id": "dataset/z", "version": "1.0.0", "title": "Z edited"}))
    r = cli("--root", root, "add", f)
    assert r.code == 5 and "published and cannot be changed" in r.err and "Traceback" not in r.err
    f.write_text(dump_yaml({"id": "dataset/z", "version": "1.1.0", "title": "Z edited"}))
    assert cli("--root", root, "add", f).code == 0
    shown = cli("--root", root, "--json", "show", "dataset/z")
    assert shown.json()["version"] == "1.0.0"  # latest *published*
    assert cli("--root", root, "show", "dataset/z@1.1.0").out.count("Z edited") == 1


def test_put_and_verify_detects_one_corrupt_byte(tmp_archive: Any, cli: Any, tmp_path: Path) -> None:
    root = tmp_archive.root
    payload = tmp_path / "events.bin"
    payload.write_bytes(os.urandom(100_000))
    put = cli("--root", root, "--json", "put", payload)
    digest = put.json()[0]["sha256"]
    entry = tmp_archive.file_entry(payload, role="events")
    assert entry.sha256 == digest
    from archive.schema import parse_record

    tmp_archive.add_record(parse_record({"id": "dataset/p", "version": "1.0.0", "title": "P",
                                         "files": [entry.model_dump(mode="json", exclude_none=True)]}))
    assert cli("--root", root, "verify").code == 0
    obj = tmp_archive.object_path(digest)
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[54_321] ^= 0x01
    obj.write_bytes(bytes(data))
    r = cli("--root", root, "verify")
    assert r.code == 3
    assert f"corrupt: {digest}" in r.err and "dataset/p@1.0.0:events.bin" in r.err
    obj.unlink()
    r = cli("--root", root, "--json", "verify")
    assert r.code == 3 and r.json()["counts"] == {"missing": 1}


def test_user_errors_exit_codes(tmp_path: Path, cli: Any) -> None:
    r = cli("--root", tmp_path, "validate")
    assert r.code == 4 and "not an archive root" in r.err and "Traceback" not in r.err
    r = cli("--root", tmp_path / "nope", "show", "dataset/x")
    assert r.code == 4
    assert cli("no-such-command").code == 2


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys; from archive.cli import main; rc = main(['--help']); "
        "heavy = [m for m in ('torch','onnxruntime','datalad','uproot','reana_client','numba','pyarrow',"
        "'matplotlib','dask','awkward','zarr') if m in sys.modules]; print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert "HEAVY []" in out.stdout
    assert "validate" in out.stdout and "verify" in out.stdout


def test_json_output_of_search(tmp_archive: Any, cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(dump_yaml({"id": "dataset/zmm", "version": "1.0.0", "title": "Z to mu mu", "experiment": "CMS"}))
    cli("--root", tmp_archive.root, "add", f)
    hits = json.loads(cli("--root", tmp_archive.root, "--json", "search", "mu", "--experiment", "cms").out)
    assert [h["id"] for h in hits] == ["dataset/zmm"]
