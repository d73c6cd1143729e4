"""Shared CLI state and rendering: the only place (with the command modules) that imports rich."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["STATE", "console", "emit", "err_console", "get_archive", "parse_assignments", "progress_callback"]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    root: Path | None = None
    json: bool = False
    debug: bool = False


STATE = State()


def get_archive() -> Any:
    from archive._archive import open_archive

    return open_archive(STATE.root)


def emit(data: Any, human: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``human`` (or pretty-print the data)."""
    if STATE.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif human is not None:
        human()
    else:
        console.print_json(json.dumps(data, default=str))


@contextlib.contextmanager
def progress_callback(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr, as a ``callback(n_bytes_or_items)`` for library code."""
    if STATE.json or not err_console.is_terminal:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err_console, transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)


def parse_assignments(items: list[str] | None, option: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; anything else is a one-line usage error."""
    from archive.errors import ValidationError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"{item!r}: write {option} NAME=VALUE", field=option)
        out[key] = value
    return out
