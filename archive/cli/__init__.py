"""The ``hep-archive`` command line: thin commands over the library, one exit-code table.

Exit codes: 0 ok; 1 operation failed; 2 usage error; 3 integrity or reproducibility failure; 4 not found;
5 refused (immutable record, unsafe input); 130 interrupted. ``--debug`` shows tracebacks.
``--root``, ``--json`` and ``--debug`` may be given before or after the command name.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from archive.cli._common import STATE, err_console

__all__ = ["app", "main"]

app = typer.Typer(
    name="hep-archive",
    help="Keep particle-physics results alive: catalog, store, reinterpret, re-execute and publish.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: command modules; each defines ``register(app)``. Heavy libraries are imported inside commands only.
COMMAND_MODULES = [
    "archive.cli._core",
    "archive.cli._demo",
    "archive.cli._integrity",
    "archive.cli._containers",
    "archive.cli._release",
    "archive.cli._models",
    "archive.cli._run",
    "archive.cli._reinterpret",
    "archive.cli._datasets",
]


@app.callback()
def _global(
    root: Annotated[
        Path | None, typer.Option("--root", help="archive root (default: nearest above cwd, or HEP_ARCHIVE_ROOT)")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable JSON output")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
) -> None:
    STATE.root = root
    STATE.json = json_
    STATE.debug = debug


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)

_GLOBAL_FLAGS = {"--json", "--debug"}
_GLOBAL_OPTS = {"--root"}


def _hoist_globals(argv: list[str]) -> list[str]:
    """Move global options given after the command name to the front (never past a ``--``)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a in _GLOBAL_FLAGS:
            front.append(a)
        elif a in _GLOBAL_OPTS and i + 1 < len(argv):
            front.extend([a, argv[i + 1]])
            i += 1
        elif any(a.startswith(o + "=") for o in _GLOBAL_OPTS):
            front.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    from archive.errors import ArchiveError

    args = _hoist_globals(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    try:
        rv = app(args=args, prog_name="hep-archive", standalone_mode=False)
    except ArchiveError as err:
        if debug:
            raise
        for line in err.lines():
            err_console.print(f"error: {line}", markup=False, highlight=False)
        return err.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:  # usage errors from click (typer >= 0.29 vendors it) and genuine bugs
        exit_code = getattr(exc, "exit_code", None)
        if hasattr(exc, "show") and isinstance(exit_code, int):
            exc.show()
            return exit_code
        if type(exc).__name__ == "Abort":
            return 1
        if debug:
            raise
        err_console.print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
                          markup=False)
        return 1
    return rv if isinstance(rv, int) else 0


def run() -> None:  # pragma: no cover - console-script entry
    sys.exit(main())
