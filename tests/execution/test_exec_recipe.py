"""Recipes: validation with paths inside reana.yaml, recording, pinned images, nothing executed on load."""

from __future__ import annotations

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
