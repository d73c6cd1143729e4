"""The serial engine on the host (``local`` backend): cache keys, declared outputs, failures, records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from exec_helpers import write_recipe

from archive.errors import ValidationError
from archive.execution import run_recipe, substitute
from archive.recipe import add_recipe

HOST = "docker.io/library/busybox@sha256:" + "cd" * 32


def _steps(res: Any) -> dict[str, Any]:
    return {s.name: s for s in res.record.run.steps}


def test_substitution_follows_reana() -> None:
    assert substitute("echo $a ${b} $$HOME", {"a": 1, "b": "x"}) == "echo 1 x $HOME"
    with pytest.raises(ValidationError):
        substitute("echo $nope", {})


def test_run_cache_and_partial_rerun(tmp_archive: Any, two_step: Any) -> None:
    d = two_step(env=HOST)
    first = run_recipe(tmp_archive, d)
    assert first.ok, first.record.run.error
    assert first.executed == ["upper", "final"] and first.cached == []
    text = (first.workspace / "results" / "final.txt").read_text()
    assert text.startswith("ALPHA\nBETA\ngamma\nhello ")  # $$HOME stayed a literal $HOME for the shell
    assert "$HOME" not in text

    second = run_recipe(tmp_archive, d)
    assert second.executed == [] and second.cached == ["upper", "final"]
    assert (second.workspace / "results" / "final.txt").read_text() == text
    assert _steps(second)["final"].cache_key == _steps(first)["final"].cache_key

    (d / "data" / "b.txt").write_text("changed\n")  # only 'final' reads b.txt
    third = run_recipe(tmp_archive, d)
    assert third.record.run.recipe == "recipe/twostep@1.1.0"
    assert third.cached == ["upper"] and third.executed == ["final"]

    fourth = run_recipe(tmp_archive, third.record.run.recipe, parameters={"greeting": "bye"})
    assert fourth.cached == ["upper"] and fourth.executed == ["final"]
    assert (fourth.workspace / "results" / "final.txt").read_text().splitlines()[-1].startswith("bye ")

    forced = run_recipe(tmp_archive, third.record.run.recipe, force=True)
    assert forced.executed == ["upper", "final"]


def test_run_record_content_and_validation(tmp_archive: Any, two_step: Any) -> None:
    from archive.catalog import validate_archive

    res = run_recipe(tmp_archive, two_step(env=HOST))
    run = res.record.run
    assert run.status == "succeeded" and run.backend == "local" and run.device == "cpu"
    assert run.recipe == "recipe/twostep@1.0.0" and run.parameters == {"greeting": "hello"}
    assert run.host.kernel and run.host.python and "numpy" in run.packages
    up = _steps(res)["upper"]
    assert up.exit_code == 0 and up.started and up.ended and up.stdout and up.stderr
    assert [f.path for f in up.inputs] == ["data/a.txt"] and [f.path for f in up.outputs] == ["results/upper.txt"]
    assert up.commands == ["mkdir -p results && tr a-z A-Z < data/a.txt > results/upper.txt"]
    assert [o.path for o in run.outputs] == ["results/final.txt"]
    for o in run.outputs:
        assert tmp_archive.store.exists(o.sha256)
    assert {f.role for f in res.record.files} == {"log", "output"}
    assert res.record.status == "published"
    assert validate_archive(tmp_archive) == []
    assert ("run.recipe", "recipe/twostep@1.0.0") in list(res.record.references())
    # a run says what it was in its description, and carries the recipe's creators and licence
    desc = res.record.description
    assert "recipe/twostep@1.0.0" in desc and "local backend" in desc and "succeeded" in desc


def test_run_record_inherits_citation_metadata(tmp_archive: Any, two_step: Any) -> None:
    d = two_step(env=HOST)
    (d / "CITATION.cff").write_text("cff-version: 1.2.0\nmessage: cite\nauthors: [{name: Z team}]\n"
                                    "license: CC0-1.0\nkeywords: [muons]\n")
    res = run_recipe(tmp_archive, d)
    assert [c.name for c in res.record.creators] == ["Z team"]
    assert res.record.license == "CC0-1.0" and res.record.keywords == ["muons"]


def test_missing_output_fails_and_promotes_nothing(tmp_archive: Any, tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "miss", f"""\
        outputs: {{files: [out/b.txt]}}
        workflow:
          type: serial
          specification:
            steps:
              - name: make
                environment: "{HOST}"
                commands: ["mkdir -p out && echo unique-promoted-bytes-7 > out/a.txt"]
        """, "steps:\n  make: {outputs: [out/a.txt, out/b.txt]}\n")
    res = run_recipe(tmp_archive, d)
    assert not res.ok
    assert "out/b.txt" in (res.record.run.error or "")
    from archive.digest import digest_bytes

    assert not tmp_archive.store.exists(digest_bytes(b"unique-promoted-bytes-7\n"))
    assert res.record.run.outputs == [] and not any(f.role == "output" for f in res.record.files)
    assert not (tmp_archive.state_dir / "cache" / "steps").exists() or \
        list((tmp_archive.state_dir / "cache" / "steps").iterdir()) == []


def test_failed_command_stops_the_run(tmp_archive: Any, tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "fail", f"""\
        workflow:
          type: serial
          specification:
            steps:
              - name: boom
                environment: "{HOST}"
                commands: ["echo to-stderr >&2; exit 3", "echo never > never.txt"]
              - name: after
                environment: "{HOST}"
                commands: ["echo after > after.txt"]
        """)
    res = run_recipe(tmp_archive, d)
    assert not res.ok and res.record.run.status == "failed"
    steps = _steps(res)
    assert steps["boom"].exit_code == 3 and "after" not in steps
    assert not (res.workspace / "never.txt").exists()
    assert tmp_archive.store.read_bytes(steps["boom"].stderr) == b"to-stderr\n"


def test_stale_outputs_are_removed_and_cache_off_always_runs(tmp_archive: Any, tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "stale", f"""\
        outputs: {{files: [n.txt]}}
        workflow:
          type: serial
          specification:
            steps:
              - name: count
                environment: "{HOST}"
                commands: ["test ! -e n.txt && date +%N > n.txt"]
        """, "steps:\n  count: {outputs: [n.txt], cache: off}\n", files={"n.txt": "stale\n"})
    first = run_recipe(tmp_archive, d)
    assert first.ok, first.record.run.error  # 'test ! -e' proves the stale n.txt was removed first
    second = run_recipe(tmp_archive, d)
    assert second.executed == ["count"] and second.cached == []


def test_unknown_parameter_and_backend_are_refused(tmp_archive: Any, two_step: Any) -> None:
    rec = add_recipe(tmp_archive, two_step(env=HOST))
    with pytest.raises(ValidationError, match="no parameter"):
        run_recipe(tmp_archive, rec.ref, parameters={"nope": "1"})
    with pytest.raises(ValidationError, match="unknown backend"):
        run_recipe(tmp_archive, rec.ref, backend="kubernetes")
    from archive.errors import ExecutionError
    from archive.execution._host import has_gpu

    if not has_gpu():
        with pytest.raises(ExecutionError, match="no NVIDIA GPU"):
            run_recipe(tmp_archive, rec.ref, device="gpu")


def test_devices_actually_used_are_recorded(tmp_archive: Any, tmp_path: Path) -> None:
    """A step builds a real onnxruntime session and reports its providers into the run record."""
    import sys

    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    d = write_recipe(tmp_path / "ort", f"""\
        inputs:
          files: [model.onnx, infer.py]
          parameters: {{python: python3}}
        workflow:
          type: serial
          specification:
            steps:
              - name: infer
                environment: "{HOST}"
                commands: ['"$python" infer.py > out.txt']  # quoted: the checkout's path may hold a space
        """, "steps:\n  infer: {outputs: [out.txt]}\n", files={"infer.py": (
        "import onnxruntime as ort\nimport numpy as np\nfrom archive.execution import report_onnxruntime\n"
        "s = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])\n"
        "print(s.run(None, {'x': np.ones(1, np.float32)})[0])\nreport_onnxruntime(s)\n")})
    onnx.save(model, str(d / "model.onnx"))
    res = run_recipe(tmp_archive, d, parameters={"python": sys.executable})
    assert res.ok, res.record.run.error
    (dev,) = res.record.run.steps[0].devices
    assert dev.framework == "onnxruntime" and dev.device == "cpu"
    assert dev.providers == ["CPUExecutionProvider"]
    assert not (res.workspace / ".hep-archive" / "provenance.jsonl").exists()


def test_symlink_output_is_refused_and_timeout_fails(tmp_archive: Any, tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "link", f"""\
        workflow:
          type: serial
          specification:
            steps:
              - name: link
                environment: "{HOST}"
                commands: ["ln -s /etc/passwd out.txt"]
        """, "steps:\n  link: {outputs: [out.txt]}\n")
    res = run_recipe(tmp_archive, d)
    assert not res.ok and "symbolic link" in (res.record.run.error or "")
    assert res.record.run.steps[0].outputs == []
    slow = write_recipe(tmp_path / "slow", f"""\
        workflow:
          type: serial
          specification:
            steps:
              - name: slow
                environment: "{HOST}"
                kubernetes_job_timeout: 1
                commands: ["sleep 20"]
        """)
    res = run_recipe(tmp_archive, slow)
    assert not res.ok and "timed out" in (res.record.run.error or "")
    assert res.record.run.steps[0].exit_code == 124


def test_recipe_inside_the_archive_tree_names_its_location(tmp_archive: Any, two_step: Any) -> None:
    import shutil

    from archive.integrity import verify_archive

    target = tmp_archive.root / "recipes" / "twostep"
    shutil.copytree(two_step(env=HOST), target)
    rec = add_recipe(tmp_archive, target)
    assert {f.path: f.locations for f in rec.files}["reana.yaml"] == ["tree:recipes/twostep/reana.yaml"]
    assert verify_archive(tmp_archive).ok


def test_dataset_records_are_staged_as_inputs(tmp_archive: Any, tmp_path: Path, shared_data: Path) -> None:
    from archive.datasets import ingest
    from archive.datasets.testing import ATLAS_FIXTURE_METADATA, build_atlas_fixture

    h5 = build_atlas_fixture(tmp_path / "zjets.h5", n_bootstrap=2, n_bootstrap_mc=2, n_ensemble=2)
    ds = ingest(tmp_archive, [h5], name="zjets", version="1.0.0", metadata=ATLAS_FIXTURE_METADATA)
    d = write_recipe(tmp_path / "useds", f"""\
        outputs: {{files: [size.txt]}}
        workflow:
          type: serial
          specification:
            steps:
              - name: size
                environment: "{HOST}"
                commands: ["find data/zjets -type f | sort > files.txt && cat $$(cat files.txt) | wc -c > size.txt"]
        """, f"datasets:\n  data/zjets: {ds.ref}\nsteps:\n  size: {{inputs: [data/zjets], outputs: [size.txt]}}\n")
    res = run_recipe(tmp_archive, d)
    assert res.ok, res.record.run.error
    assert res.record.run.datasets == [ds.ref]
    assert int((res.workspace / "size.txt").read_text()) == sum(f.size for f in ds.files)
    assert {f.path for f in res.record.run.steps[0].inputs} == {f"data/zjets/{f.path}" for f in ds.files}
    assert ("recipe.datasets[data/zjets]", ds.ref) in list(tmp_archive.record(res.record.run.recipe).references())
