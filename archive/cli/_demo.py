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
) -> None:
    """Build the reference archive (generate, simulate, reconstruct, unfold, store), reinterpret it, then
    validate and verify it."""
    from archive.demo import build_demo

    def log(line: str) -> None:
        if not STATE.json:
            err_console.print(f"[demo] {line}", markup=False, highlight=False)

    summary = build_demo(output, device=device, jobs=jobs, log=log, **({"events": events} if events else {}))
    def human() -> None:
        for k, v in summary.items():
            console.print(f"{k}: {v}", markup=False, highlight=False)

    emit(summary, human)
    if not summary.get("ok", False):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
