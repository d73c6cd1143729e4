"""Recipes: validation with paths inside reana.yaml, recording, pinned images, nothing executed on load."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from exec_helpers import BUSYBOX, write_recipe

from archive.errors import UnsafeInputError, UnsupportedOperationError, ValidationError
from archive.recipe import add_recipe, find_reana_schema, load_recipe

PINNED = "docker.io/library/busybox@sha256:" + "ab" * 32

BAD = f"""\
inputs:
  parameters: {{n: 3}}
workflow:
  type: serial
  specification:
    steps:
      - name: ok
        environment: "{PINNED}"
        commands: ["echo $n"]
      - name: broken
        environment: "busybox:latest"
        commands: ["echo $missing", "echo 5 $ dollars"]
"""


def test_valid_recipe_is_recorded_with_digests_and_pinned_images(image_archive: Any, two_step: Any) -> None:
    from archive.digest import digest_file

    d = two_step()
    rec = add_recipe(image_archive, d)
    assert rec.ref == "recipe/twostep@1.0.0"
    spec = rec.recipe
    assert spec.engine == "serial" and spec.parameters == {"greeting": "hello"}
    assert [s.name for s in spec.steps] == ["upper", "final"]
    assert spec.steps[0].image == "container/busybox@1.0.0"
    assert spec.steps[0].image_digest and spec.steps[0].image_digest.startswith("sha256:")
    assert spec.steps[1].inputs == ["results/upper.txt", "data/b.txt"]
    assert spec.output_files == ["results/final.txt"]
    by_path = {f.path: f for f in rec.files}
    assert set(by_path) == {"reana.yaml", "hep-archive.yaml", "data/a.txt", "data/b.txt"}
    for path, entry in by_path.items():
        assert entry.sha256 == digest_file(d / path).sha256
        assert image_archive.store.exists(entry.sha256)
    # unchanged content: same version again; changed content: next version
    assert add_recipe(image_archive, d).version == "1.0.0"
    (d / "data" / "b.txt").write_text("delta\n")
    assert add_recipe(image_archive, d).version == "1.1.0"


def test_invalid_recipe_errors_name_paths_inside_reana_yaml(tmp_archive: Any, tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "bad", BAD)
    with pytest.raises(ValidationError) as exc:
        add_recipe(tmp_archive, d)
    fields = {p.field: p.reason for p in exc.value.problems}
    assert "workflow.specification.steps[1].environment" in fields
    assert "not pinned" in fields["workflow.specification.steps[1].environment"]
    assert "unknown parameter $missing" in fields["workflow.specification.steps[1].commands[0]"]
    assert "$$" in fields["workflow.specification.steps[1].commands[1]"]
    assert "workflow.specification.steps[0].commands[0]" not in fields
    assert all(p.file == "reana.yaml" for p in exc.value.problems)
    # nothing was recorded or stored
    assert list(tmp_archive.catalog.files()) == []
    assert list(tmp_archive.store.iter_digests()) == []


def test_missing_environment_and_unknown_engine(tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "r1", "workflow:\n  type: serial\n  specification:\n    steps:\n"
                     "      - commands: [ls]\n")
    with pytest.raises(ValidationError) as exc:
        load_recipe(d)
    assert any(p.field == "workflow.specification.steps[0].environment" for p in exc.value.problems)
    d2 = write_recipe(tmp_path / "r2", "workflow:\n  type: nextflow\n  file: main.nf\n")
    with pytest.raises(ValidationError) as exc2:
        load_recipe(d2)
    assert any(p.field == "workflow.type" for p in exc2.value.problems)


@pytest.mark.skipif(find_reana_schema() is None, reason="reana-commons (the .venv-reana environment) is absent")
def test_reana_schema_errors_are_reported_with_their_path(tmp_path: Path) -> None:
    spec = ("workflow:\n  type: serial\n  resources: {cvmfs: ['bad name!']}\n  specification:\n    steps:\n"
            f"      - environment: '{PINNED}'\n        commands: [ls]\n        htcondor_max_runtime: forever\n")
    d = write_recipe(tmp_path / "r", spec)
    with pytest.raises(ValidationError) as exc:
        load_recipe(d)
    fields = [p.field for p in exc.value.problems]
    assert any(f and f.startswith("workflow.resources.cvmfs") for f in fields), fields
    assert any("REANA schema" in p.reason for p in exc.value.problems)
    ok = write_recipe(tmp_path / "ok", f"workflow:\n  type: serial\n  specification:\n    steps:\n"
                      f"      - environment: '{PINNED}'\n        commands: [ls]\n        kubernetes_gpu: 1\n")
    loaded = load_recipe(ok)
    assert any(v.startswith("reana-commons") for v in loaded.spec.validated_with)
    assert any("kubernetes_gpu" in w for w in loaded.spec.warnings)  # REANA warns, does not fail


def test_side_file_errors_and_cache_off(tmp_path: Path) -> None:
    spec = (f"workflow:\n  type: serial\n  specification:\n    steps:\n      - name: s\n"
            f"        environment: '{PINNED}'\n        commands: [ls]\n")
    d = write_recipe(tmp_path / "r", spec, "steps:\n  nosuch: {cache: off}\n  s: {cache: off, gpu: 1}\n")
    with pytest.raises(ValidationError) as exc:
        load_recipe(d)
    assert [(p.file, p.field) for p in exc.value.problems] == [("hep-archive.yaml", "steps.nosuch")]
    (d / "hep-archive.yaml").write_text("steps:\n  s: {cache: off, gpu: 1}\ntolerances:\n  out.npy: {atol: 0.1}\n")
    spec_ = load_recipe(d).spec
    assert spec_.steps[0].cache is False and spec_.steps[0].resources.gpu == 1 and spec_.gpu
    assert spec_.tolerances["out.npy"].atol == 0.1


def test_loading_never_executes_workflow_code(tmp_archive: Any, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    d = write_recipe(tmp_path / "smk", "workflow:\n  type: snakemake\n  file: Snakefile\n",
                     files={"Snakefile": f"open({str(marker)!r}, 'w').write('x')\nrule all:\n  input: []\n"})
    rec = add_recipe(tmp_archive, d)
    assert rec.recipe.engine == "snakemake" and rec.recipe.workflow_file == "Snakefile"
    assert {f.path: f.role for f in rec.files}["Snakefile"] == "workflow"
    assert not marker.exists()
    from archive.execution import run_recipe

    with pytest.raises(UnsupportedOperationError):
        run_recipe(tmp_archive, rec.ref)
    assert not marker.exists()


def test_symlinks_in_recipes_are_refused(tmp_archive: Any, tmp_path: Path) -> None:
    d = write_recipe(tmp_path / "r", f"workflow:\n  type: serial\n  specification:\n    steps:\n"
                     f"      - environment: '{PINNED}'\n        commands: [ls]\n")
    (d / "link").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeInputError):
        add_recipe(tmp_archive, d)


def test_container_ref_must_exist_in_the_archive(tmp_archive: Any, two_step: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        add_recipe(tmp_archive, two_step(env=BUSYBOX))
    assert any(p.field == "workflow.specification.steps[0].environment" and "not in the catalog" in p.reason
               for p in exc.value.problems)


WF_CWL = """\
cwlVersion: v1.0
class: Workflow
inputs: {msg: string}
outputs:
  out: {type: File, outputSource: echo/out}
steps:
  echo: {run: echo.cwl, in: {msg: msg}, out: [out]}
"""
ECHO_CWL = f"""\
cwlVersion: v1.0
class: CommandLineTool
hints:
  DockerRequirement: {{dockerPull: "{PINNED}"}}
baseCommand: echo
inputs:
  msg: {{type: string, inputBinding: {{position: 1}}}}
stdout: out.txt
outputs:
  out: {{type: stdout}}
"""


def test_cwl_workflow_is_validated_by_cwltool_in_a_sandbox(tmp_archive: Any, tmp_path: Path, bwrap_ok: None) -> None:
    from archive.recipe._reana_schema import reana_python

    py = reana_python()
    if py is None or not (py.parent / "cwltool").exists():
        pytest.skip("cwltool (from the .venv-reana environment) is absent")
    spec = "inputs:\n  parameters: {input: inputs.yaml}\nworkflow:\n  type: cwl\n  file: wf.cwl\n"
    d = write_recipe(tmp_path / "cwl", spec, files={"wf.cwl": WF_CWL, "echo.cwl": ECHO_CWL,
                                                     "inputs.yaml": "msg: hi\n"})
    rec = add_recipe(tmp_archive, d)
    assert rec.recipe.engine == "cwl"
    assert any(v.startswith("cwltool") for v in rec.recipe.validated_with), rec.recipe.validated_with
    (d / "wf.cwl").write_text(WF_CWL.replace("echo/out", "echo/nope"))
    with pytest.raises(ValidationError) as exc:
        add_recipe(tmp_archive, d)
    (problem,) = exc.value.problems
    assert problem.file == "wf.cwl" and "echo/nope" in problem.reason


def test_cwltool_sandbox_sees_a_tool_environment_and_recipe_under_tmp_with_spaces(
        bwrap_ok: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's private /tmp must not hide the tool: a checkout (here its .venv-reana, linked) and a recipe
    that live under /tmp, in folders whose names hold spaces, still validate."""
    import tempfile

    from archive.recipe._engines import validate_workflow_file
    from archive.recipe._reana_schema import reana_python

    py = reana_python()
    if py is None or not (py.parent / "cwltool").exists():
        pytest.skip("cwltool (from the .venv-reana environment) is absent")
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="hep archive ") as tmp:
        checkout = Path(tmp) / "a checkout"
        checkout.mkdir()
        (checkout / ".venv-reana").symlink_to(py.parent.parent, target_is_directory=True)
        monkeypatch.setenv("HEP_ARCHIVE_REANA_PYTHON", str(checkout / ".venv-reana" / "bin" / "python"))
        d = write_recipe(checkout / "my recipe", "workflow:\n  type: cwl\n  file: wf.cwl\n",
                         files={"wf.cwl": WF_CWL, "echo.cwl": ECHO_CWL})
        ok, message = validate_workflow_file(d, "cwl", "wf.cwl")
        assert ok is True and message.startswith("cwltool"), message
        (d / "wf.cwl").write_text(WF_CWL.replace("echo/out", "echo/nope"))
        ok, message = validate_workflow_file(d, "cwl", "wf.cwl")
        assert ok is False and "echo/nope" in message, message


def test_sandbox_binds_hidden_tool_paths_after_the_private_tmp() -> None:
    """bwrap applies its options in order: a bind under /tmp placed before ``--tmpfs /tmp`` would be hidden."""
    import tempfile

    from archive.recipe._engines import sandbox_command

    with tempfile.TemporaryDirectory(dir="/tmp", prefix="hep archive ") as tmp:
        env = Path(tmp) / "tool env"
        (env / "bin").mkdir(parents=True)
        (env / "bin" / "tool").write_text("")
        venv_python = env / "bin" / "python"
        venv_python.symlink_to(os.path.realpath(sys.executable))
        cmd = sandbox_command("bwrap", Path(tmp), venv_python, env / "bin" / "tool", ["x"])
    binds = [(i, cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert (str(env), str(env)) in [(src, dest) for _, src, dest in binds]
    assert all(i > cmd.index("--tmpfs") for i, src, _ in binds if src == str(env))
    assert "/tmp" not in [src for _, src, _ in binds]  # the private /tmp is never the host's
    assert cmd[cmd.index("--") + 1:] == [str(venv_python), str(env / "bin" / "tool"), "x"]


def test_reana_environment_comes_from_explicit_settings_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never from beside the package (a wheel install has no checkout around it): the variable, the archive
    root's .venv-reana, or reana-client on PATH, in that order."""
    from archive.recipe._reana_schema import REANA_PYTHON_ENV, reana_python

    def touch(p: Path) -> Path:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
        p.chmod(0o755)
        return p

    monkeypatch.delenv(REANA_PYTHON_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert reana_python() is None  # even though this checkout has a .venv-reana
    root = tmp_path / "arc"
    in_root = touch(root / ".venv-reana" / "bin" / "python")
    assert reana_python(root) == in_root
    tools = tmp_path / "tools" / "bin"
    touch(tools / "reana-client")
    on_path = touch(tools / "python")
    monkeypatch.setenv("PATH", str(tools))
    assert reana_python() == on_path
    assert reana_python(root) == in_root
    explicit = touch(tmp_path / "elsewhere" / "python")
    monkeypatch.setenv(REANA_PYTHON_ENV, str(explicit))
    assert reana_python(root) == explicit
    monkeypatch.setenv(REANA_PYTHON_ENV, str(tmp_path / "nonexistent" / "python"))
    assert reana_python(root) is None


def test_archive_roots_reana_environment_validates_recipes(tmp_archive: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from archive.recipe._reana_schema import REANA_PYTHON_ENV, reana_python

    py = reana_python()
    if py is None or find_reana_schema() is None:
        pytest.skip("reana-commons (the .venv-reana environment) is absent")
    if importlib.util.find_spec("reana_commons") is not None:
        pytest.skip("reana-commons is importable in-process: no separate environment to find")
    monkeypatch.delenv(REANA_PYTHON_ENV)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    spec = f"workflow:\n  type: serial\n  specification:\n    steps:\n      - environment: '{PINNED}'\n" \
           "        commands: [ls]\n"
    assert not any(v.startswith("reana-commons") for v in load_recipe(write_recipe(tmp_path / "a", spec))
                   .spec.validated_with)
    (tmp_archive.root / ".venv-reana").symlink_to(py.parent.parent, target_is_directory=True)
    loaded = load_recipe(write_recipe(tmp_path / "b", spec), tmp_archive)
    assert any(v.startswith("reana-commons") for v in loaded.spec.validated_with), loaded.spec.validated_with


CFF = """\
cff-version: 1.2.0
message: Please cite this analysis.
authors:
  - family-names: Curie
    given-names: Marie
    orcid: https://orcid.org/0000-0002-1825-0097
    affiliation: CERN
  - name: ATLAS Collaboration
license: CC-BY-4.0
keywords: [Z+jets, unfolding]
abstract: An analysis described only by its citation file.
"""


def test_citation_file_gives_creators_licence_and_keywords(tmp_archive: Any, two_step: Any) -> None:
    d = two_step(env=f"docker.io/library/busybox@sha256:{'ab' * 32}")
    (d / "CITATION.cff").write_text(CFF)
    rec = add_recipe(tmp_archive, d)
    assert [c.name for c in rec.creators] == ["Curie, Marie", "ATLAS Collaboration"]
    assert rec.creators[0].orcid == "0000-0002-1825-0097" and rec.creators[0].affiliation[0].name == "CERN"
    assert rec.license == "CC-BY-4.0" and rec.keywords == ["Z+jets", "unfolding"]
    assert {f.path: f.role for f in rec.files}["CITATION.cff"] == "documentation"
    # no description in the side file: the abstract is the description; a side-file description wins
    assert rec.description == "An analysis described only by its citation file."
    side = d / "hep-archive.yaml"
    side.write_text(side.read_text() + "description: Told by the side file.\n")
    assert add_recipe(tmp_archive, d).description == "Told by the side file."


def test_bad_citation_file_names_the_file_and_field(tmp_archive: Any, two_step: Any) -> None:
    d = two_step(env=f"docker.io/library/busybox@sha256:{'ab' * 32}")
    (d / "CITATION.cff").write_text(CFF.replace("https://orcid.org/0000-0002-1825-0097", "not-an-orcid"))
    with pytest.raises(ValidationError) as exc:
        add_recipe(tmp_archive, d)
    assert exc.value.field == "authors[0].orcid" and "CITATION.cff" in str(exc.value.file)
    (d / "CITATION.cff").write_text("cff-version: 1.2.0\nmessage: hi\n")
    with pytest.raises(ValidationError) as exc:
        add_recipe(tmp_archive, d)
    assert exc.value.field == "authors"
    assert tmp_archive.catalog.versions("recipe/twostep") == []  # nothing recorded
    assert list(tmp_archive.store.iter_digests()) == []  # and nothing stored
