"""Rerun a recorded run from its archived recipe, inputs and images, and judge the outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.errors import ValidationError

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.execution._engine import RunResult

__all__ = ["rerun"]


def rerun(archive: Archive, run_ref: str, *, backend: str | None = None, device: str | None = None) -> RunResult:
    """Re-execute ``run_ref`` (every step runs; the cache is neither read nor written) and compare.

    Args:
        archive: the archive holding the run record, its recipe and images.
        run_ref: ``run/NAME[@VERSION]`` (``run/`` may be left out).
        backend: the backend to use (default: the recorded one).
        device: ``cpu`` or ``gpu`` (default: the recorded one).

    Returns:
        The new run record, whose ``run.comparison`` holds the verdict (``reproduced``,
        ``reproduced within tolerance``, ``differs`` or ``failed``) and which is related to the first run.
    """
    from archive.execution._engine import run_recipe
    from archive.schema.v1.run import RunRecord

    ref = run_ref if run_ref.startswith("run/") else f"run/{run_ref}"
    original = archive.record(ref)
    if not isinstance(original, RunRecord):
        raise ValidationError(f"{run_ref} is not a run record")
    return run_recipe(archive, original.run.recipe, parameters=dict(original.run.parameters),
                      backend=backend or original.run.backend, device=device or original.run.device, force=True,
                      compare_with=original.ref, write_cache=False)
