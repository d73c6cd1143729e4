"""Done-when: a two-step recipe in the busybox OCI image under bwrap runs, is cached, and reruns reproduced."""

from __future__ import annotations

from typing import Any

import pytest

from archive.execution import rerun, run_recipe
from archive.recipe import add_recipe

pytestmark = pytest.mark.sandbox


def test_two_step_recipe_in_bwrap_cached_and_reproduced(image_archive: Any, two_step: Any, bwrap_ok: None) -> None:
    from archive.catalog import validate_archive

    rec = add_recipe(image_archive, two_step())
    first = run_recipe(image_archive, rec.ref, backend="bwrap")
    assert first.ok, first.record.run.error
    assert first.executed == ["upper", "final"]
    text = (first.workspace / "results" / "final.txt").read_text()
    # HOME is /tmp inside the sandbox: the command really ran in the image, not on the host
    assert text == "ALPHA\nBETA\ngamma\nhello /tmp\n"
    step = first.record.run.steps[0]
    assert step.runner == "bwrap" and step.image == "container/busybox@1.0.0"
    assert step.image_digest == image_archive.record("container/busybox@1.0.0").container.manifest_digest

    second = run_recipe(image_archive, rec.ref, backend="bwrap")
    assert second.ok and second.executed == [] and second.cached == ["upper", "final"]
    assert all(s.cached for s in second.record.run.steps)

    again = rerun(image_archive, first.record.ref)
    assert again.executed == ["upper", "final"]  # a rerun re-executes every step
    comparison = again.record.run.comparison
    assert comparison is not None and comparison.verdict == "reproduced"
    assert {o.verdict for o in comparison.outputs} == {"identical"}
    assert comparison.reference_run == first.record.ref
    assert any(r.type == "IsVariantFormOf" and r.target == first.record.ref for r in again.record.relations)
    assert validate_archive(image_archive) == []


def test_bwrap_changing_one_input_reruns_only_its_steps(image_archive: Any, two_step: Any, bwrap_ok: None) -> None:
    d = two_step()
    assert run_recipe(image_archive, d, backend="bwrap").ok
    (d / "data" / "a.txt").write_text("other\n")  # both steps depend on a.txt (final through upper.txt)
    res = run_recipe(image_archive, d, backend="bwrap")
    assert res.executed == ["upper", "final"]
    (d / "data" / "b.txt").write_text("only-final\n")
    res = run_recipe(image_archive, d, backend="bwrap")
    assert res.cached == ["upper"] and res.executed == ["final"]
    assert (res.workspace / "results" / "final.txt").read_text().startswith("OTHER\nonly-final\n")


def test_local_and_bwrap_keys_differ(image_archive: Any, two_step: Any, bwrap_ok: None) -> None:
    rec = add_recipe(image_archive, two_step())
    a = run_recipe(image_archive, rec.ref, backend="bwrap")
    b = run_recipe(image_archive, rec.ref, backend="local")
    assert b.cached == []  # the host is not the image: never reuse across them
    assert a.record.run.steps[0].cache_key != b.record.run.steps[0].cache_key


def test_podman_backend_runs_the_same_image(image_archive: Any, two_step: Any) -> None:
    from archive.container import get_runner

    reason = get_runner("podman").available()
    if reason:
        pytest.skip(reason)
    rec = add_recipe(image_archive, two_step())
    res = run_recipe(image_archive, rec.ref, backend="podman")
    assert res.ok, res.record.run.error
    assert (res.workspace / "results" / "final.txt").read_text() == "ALPHA\nBETA\ngamma\nhello /tmp\n"
    assert res.record.run.steps[0].runner == "podman"


def test_image_missing_from_the_archive_is_refused_before_running(tmp_archive: Any, two_step: Any) -> None:
    from archive.errors import NotFoundError

    rec = add_recipe(tmp_archive, two_step(env="docker.io/library/busybox@sha256:" + "9" * 64))
    with pytest.raises(NotFoundError, match="container add") as exc:
        run_recipe(tmp_archive, rec.ref, backend="bwrap")
    assert exc.value.field == "workflow.specification.steps[0].environment"
    assert not (tmp_archive.state_dir / "runs").exists()
