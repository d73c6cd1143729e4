"""``hep-archive demo``: build, verify and reinterpret the reference archive on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archive.cli._common import STATE, console, emit, err_console

__all__ = ["register"]


def demo(
    output: Annotated[Path, typer.Option(help="where to build the reference archive")] = Path("demo-archive"),
    events: Annotated[int, typer.Option(help="events per generated sample (default: the reference size, 3000)")] = 0,
    device: Annotated[str, typer.Option(help="cpu or gpu (torch training and onnxruntime)")] = "cpu",
    jobs: Annotated[int, typer.Option(help="parallel generator processes")] = 2,
    backend: Annotated[str, typer.Option(
        help="auto (bwrap when it can run here, else local), bwrap, podman or local")] = "auto",
    source: Annotated[Path | None, typer.Option(
        help="archive root holding recipes/zjets-omnifold and containers/zjets-omnifold, a hep-archive checkout "
             "(default: HEP_ARCHIVE_ROOT if it holds them, else the nearest one at or above cwd)")] = None,
) -> None:
    """Build the reference archive: snapshot the chain's image, run the chain in it (generate, simulate,
    reconstruct, unfold), store and reinterpret the results, publish and export a release, validate, verify."""
    from archive.demo import build_demo

    def log(line: str) -> None:
        if not STATE.json:
            err_console.print(f"[demo] {line}", markup=False, highlight=False)

    summary = build_demo(output, device=device, jobs=jobs, backend=backend, log=log, source=source,
                         **({"events": events} if events else {}))
    def human() -> None:
        for k, v in summary.items():
            console.print(f"{k}: {v}", markup=False, highlight=False)

    emit(summary, human)
    if not summary.get("ok", False):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
