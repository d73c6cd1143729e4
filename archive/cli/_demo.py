"""``hep-archive demo``: build, verify and reinterpret the reference archive on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archive.cli._common import console, emit

__all__ = ["register"]


def demo(
    output: Annotated[Path, typer.Option(help="where to build the reference archive")] = Path("demo-archive"),
    events: Annotated[int, typer.Option(help="number of events to generate")] = 2000,
    device: Annotated[str, typer.Option(help="cpu or gpu")] = "cpu",
) -> None:
    """Build the reference archive, then validate and verify it."""
    from archive.demo import build_demo

    summary = build_demo(output, events=events, device=device)
    def human() -> None:
        for k, v in summary.items():
            console.print(f"{k}: {v}", markup=False, highlight=False)

    emit(summary, human)
    if not summary.get("ok", False):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
