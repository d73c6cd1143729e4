"""Recipe and execution commands: recipe add/validate, run, rerun, runs, run-show, run-export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive, parse_assignments

__all__ = ["register"]

recipe_app = typer.Typer(help="Validate and record REANA recipes (reana.yaml).", no_args_is_help=True)

BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="local | bwrap | podman | docker | apptainer | reana")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu | gpu")]


def _recipe_summary(rec: Any) -> dict[str, Any]:
    spec = rec.recipe
    return {"ref": rec.ref, "engine": spec.engine, "parameters": spec.parameters,
            "steps": [{"name": s.name, "image": s.image, "image_digest": s.image_digest, "cache": s.cache,
                       "inputs": s.inputs, "outputs": s.outputs} for s in spec.steps],
            "outputs": spec.output_files + spec.output_directories, "validated_with": spec.validated_with,
            "warnings": spec.warnings, "files": len(rec.files)}


def _print_warnings(warnings: list[str]) -> None:
    for w in warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False)


@recipe_app.command("add")
def recipe_add(
    directory: Annotated[Path, typer.Argument(help="recipe folder holding reana.yaml")],
    name: Annotated[str | None, typer.Option(help="record name (default: folder name)")] = None,
    version: Annotated[str | None, typer.Option(help="record version (default: next minor, or same if unchanged)")]
    = None,
) -> None:
    """Validate a recipe and record it (every file stored by digest, step images pinned)."""
    from archive.recipe import add_recipe

    rec = add_recipe(get_archive(), directory, name=name, version=version)
    data = _recipe_summary(rec)

    def human() -> None:
        _print_warnings(rec.recipe.warnings)
        console.print(f"recorded {rec.ref}: {rec.recipe.engine}, {len(rec.recipe.steps)} step(s), "
                      f"{len(rec.files)} file(s); validated with {', '.join(rec.recipe.validated_with)}",
                      markup=False, highlight=False)

    emit(data, human)


@recipe_app.command("validate")
def recipe_validate(directory: Annotated[Path, typer.Argument(help="recipe folder holding reana.yaml")]) -> None:
    """Check a recipe without recording it (errors name the path inside reana.yaml)."""
    from archive._archive import open_archive
    from archive.cli._common import STATE
    from archive.errors import ArchiveRootNotFoundError
    from archive.recipe import validate_recipe_dir

    try:
        archive = open_archive(STATE.root)
    except ArchiveRootNotFoundError:
        archive = None  # images then are only checked to be pinned, not resolved
    loaded = validate_recipe_dir(directory, archive)
    spec = loaded.spec

    def human() -> None:
        _print_warnings(spec.warnings)
        console.print(f"{directory}: valid {spec.engine} recipe, {len(spec.steps)} step(s); "
                      f"validated with {', '.join(spec.validated_with)}", markup=False, highlight=False)

    emit({"ok": True, "engine": spec.engine, "steps": [s.name for s in spec.steps], "warnings": spec.warnings,
          "validated_with": spec.validated_with}, human)


def _parse_params(items: list[str] | None) -> dict[str, str]:
    return parse_assignments(items, "-p")


def _run_data(result: Any) -> dict[str, Any]:
    run = result.record.run
    data: dict[str, Any] = {
        "run": result.record.ref, "status": run.status, "recipe": run.recipe, "backend": run.backend,
        "device": run.device, "executed": result.executed, "cached": result.cached,
        "outputs": [{"path": o.path, "sha256": o.sha256} for o in run.outputs], "workspace": str(result.workspace),
        "error": run.error,
    }
    if run.comparison is not None:
        data["verdict"] = run.comparison.verdict
        data["comparison"] = run.comparison.model_dump(mode="json", exclude_none=True)
    return data


def _render_run(result: Any) -> None:
    from archive.execution import comparison_report

    run = result.record.run
    for s in run.steps:
        how = "cached" if s.cached else (f"exit {s.exit_code}" if s.exit_code is not None else "not run")
        console.print(f"  {s.name}: {how}", markup=False, highlight=False)
    if run.comparison is not None:
        for line in comparison_report(run.comparison):
            console.print(line, markup=False, highlight=False)
    console.print(f"{result.record.ref}: {run.status} ({len(result.executed)} step(s) executed, "
                  f"{len(result.cached)} restored from cache); workspace {result.workspace}",
                  markup=False, highlight=False)
    if run.error:
        err_console.print(f"error: {run.error}", markup=False, highlight=False)


def run_cmd(
    recipe: Annotated[str, typer.Argument(help="recipe/NAME[@VERSION] or a recipe folder")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="override a parameter: name=value")]
    = None,
    backend: BackendOpt = "local",
    device: DeviceOpt = "cpu",
    force: Annotated[bool, typer.Option("--force", help="run every step even when cached")] = False,
) -> None:
    """Run a serial recipe: each step in its pinned image, cached by content, recorded as a run record."""
    from archive.execution import run_recipe

    target: str | Path = Path(recipe) if Path(recipe).is_dir() and not recipe.startswith("recipe/") else recipe
    result = run_recipe(get_archive(), target, parameters=_parse_params(param), backend=backend, device=device,
                        force=force)
    emit(_run_data(result), lambda: _render_run(result))
    if not result.ok:
        raise typer.Exit(1)


def rerun_cmd(
    run_id: Annotated[str, typer.Argument(help="run/NAME[@VERSION] (or NAME)")],
    backend: Annotated[str | None, typer.Option("--backend", "-b", help="default: the recorded backend")] = None,
    device: Annotated[str | None, typer.Option("--device", help="default: the recorded device")] = None,
) -> None:
    """Re-execute a recorded run and compare every output (exit 3 when it differs)."""
    from archive.execution import rerun

    result = rerun(get_archive(), run_id, backend=backend, device=device)
    emit(_run_data(result), lambda: _render_run(result))
    comparison = result.record.run.comparison
    if not result.ok:
        raise typer.Exit(1)
    if comparison is not None and comparison.verdict == "differs":
        raise typer.Exit(3)


def runs_cmd(recipe: Annotated[str | None, typer.Option(help="only runs of this recipe id")] = None) -> None:
    """List run records."""
    from archive.schema.v1.run import RunRecord

    rows = []
    for _f, rec in get_archive().catalog.iter_records():
        if isinstance(rec, RunRecord) and (recipe is None or rec.run.recipe.split("@")[0] == recipe.split("@")[0]):
            rows.append({"run": rec.ref, "recipe": rec.run.recipe, "status": rec.run.status,
                         "backend": rec.run.backend, "device": rec.run.device,
                         "started": rec.run.started.isoformat(),
                         "verdict": rec.run.comparison.verdict if rec.run.comparison else None})
    rows.sort(key=lambda r: str(r["started"]))

    def human() -> None:
        for r in rows:
            extra = f" [{r['verdict']}]" if r["verdict"] else ""
            console.print(f"{r['run']}  {r['status']}  {r['recipe']}  {r['backend']}/{r['device']}{extra}",
                          markup=False, highlight=False)

    emit(rows, human)


def run_show(run_id: Annotated[str, typer.Argument(help="run/NAME[@VERSION]")]) -> None:
    """Show a run record's provenance as JSON."""
    from archive.schema import record_to_data

    rec = get_archive().record(run_id if run_id.startswith("run/") else f"run/{run_id}")
    data = record_to_data(rec)
    emit(data, None)


def run_export(
    run_id: Annotated[str, typer.Argument(help="run/NAME[@VERSION]")],
    output: Annotated[Path, typer.Argument(help="new folder for the RO-Crate")],
    check: Annotated[bool, typer.Option("--validate/--no-validate", help="validate with roc-validator")] = True,
) -> None:
    """Export a run as an RO-Crate Workflow Run Crate (and validate it offline)."""
    from archive.execution import export_run_crate, validate_run_crate

    out = export_run_crate(get_archive(), run_id, output)
    issues = validate_run_crate(out) if check else []

    def human() -> None:
        for i in issues:
            err_console.print(f"invalid: {i}", markup=False, highlight=False)
        console.print(f"wrote {out}" + (" (valid Workflow Run Crate 0.5)" if check and not issues else ""),
                      markup=False, highlight=False)

    emit({"crate": str(out), "validated": check, "issues": issues}, human)
    if issues:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(recipe_app, name="recipe")
    app.command("run")(run_cmd)
    app.command("rerun")(rerun_cmd)
    app.command("runs")(runs_cmd)
    app.command("run-show")(run_show)
    app.command("run-export")(run_export)
