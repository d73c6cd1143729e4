"""RO-Crate export validated by roc-validator; the CLI commands end to end; the run record's schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archive.execution import export_run_crate, run_recipe, validate_run_crate

HOST = "docker.io/library/busybox@sha256:" + "12" * 32


def test_run_crate_validates_and_broken_crate_does_not(tmp_archive: Any, two_step: Any, tmp_path: Path) -> None:
    res = run_recipe(tmp_archive, two_step(env=HOST))
    crate = export_run_crate(tmp_archive, res.record.ref, tmp_path / "crate")
    meta = json.loads((crate / "ro-crate-metadata.json").read_text())
    ids = {e["@id"]: e for e in meta["@graph"]}
    assert ids["./"]["mainEntity"] == {"@id": "recipe/reana.yaml"}
    assert ids["#run"]["instrument"] == {"@id": "recipe/reana.yaml"}
    assert ids["#step-upper"]["@type"] == "CreateAction"
    assert (crate / "outputs" / "results" / "final.txt").read_text().startswith("ALPHA")
    assert validate_run_crate(crate) == []
    # the validator really checks: remove the workflow action's instrument
    for e in meta["@graph"]:
        if e["@id"] == "#run":
            del e["instrument"]
    (crate / "ro-crate-metadata.json").write_text(json.dumps(meta))
    issues = validate_run_crate(crate)
    assert any("instrument" in i for i in issues)


def test_run_record_validates_against_json_schema(tmp_archive: Any, two_step: Any) -> None:
    import jsonschema

    from archive.schema import json_schema, record_to_data

    res = run_recipe(tmp_archive, two_step(env=HOST))
    schema = json_schema("run")
    jsonschema.validate(record_to_data(res.record), schema)
    bad = record_to_data(res.record)
    bad["run"]["steps"][0]["cache_key"] = "md5:nope"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_cli_round_trip(tmp_archive: Any, two_step: Any, tmp_path: Path, cli: Any) -> None:
    root = tmp_archive.root
    d = two_step(env=HOST)
    r = cli("--root", root, "--json", "recipe", "validate", d)
    assert r.code == 0, r.err
    assert r.json()["steps"] == ["upper", "final"]
    r = cli("--root", root, "--json", "recipe", "add", d)
    assert r.code == 0 and r.json()["ref"] == "recipe/twostep@1.0.0"
    r = cli("--root", root, "--json", "run", "recipe/twostep@1.0.0", "-p", "greeting=hey")
    assert r.code == 0, r.err
    run_id = r.json()["run"]
    assert r.json()["executed"] == ["upper", "final"]
    r = cli("--root", root, "--json", "run", "recipe/twostep@1.0.0", "-p", "greeting=hey")
    assert r.json()["cached"] == ["upper", "final"]
    r = cli("--root", root, "--json", "runs")
    assert r.json()[0]["run"] == run_id
    r = cli("--root", root, "--json", "run-show", run_id)
    assert r.json()["run"]["parameters"] == {"greeting": "hey"}
    r = cli("--root", root, "rerun", run_id)
    assert r.code == 0 and "verdict: reproduced" in r.out
    r = cli("--root", root, "--json", "run-export", run_id, tmp_path / "crate")
    assert r.code == 0 and r.json()["issues"] == []
    r = cli("--root", root, "run", "recipe/twostep@1.0.0", "-p", "nope=1")
    assert r.code == 1 and "no parameter 'nope'" in r.err and "Traceback" not in r.err


def test_cli_invalid_recipe_one_line_per_problem(tmp_archive: Any, tmp_path: Path, cli: Any) -> None:
    from exec_helpers import write_recipe

    d = write_recipe(tmp_path / "bad", "workflow:\n  type: serial\n  specification:\n    steps:\n"
                     "      - environment: busybox\n        commands: [ls]\n")
    r = cli("--root", tmp_archive.root, "recipe", "add", d)
    assert r.code == 1
    assert "reana.yaml: workflow.specification.steps[0].environment: image 'busybox' is not pinned" in r.err
