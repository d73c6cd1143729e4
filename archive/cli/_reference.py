"""The CLI reference page (``docs/cli.md``), generated from the command tree so it cannot drift."""

from __future__ import annotations

from typing import Any

__all__ = ["render_cli_reference"]


def _walk(cmd: Any, path: list[str], out: list[str]) -> None:
    name = " ".join(path)
    if path:
        out.append(f"{'#' * min(len(path) + 1, 4)} `{name}`\n")
        help_text = (cmd.help or "").strip()
        if help_text:
            out.append(help_text + "\n")
        rows = []
        for p in cmd.params:
            kind = getattr(p, "param_type_name", "")
            if kind == "argument":
                rows.append((str(p.name).upper(), "argument", (getattr(p, "help", None) or "").replace("|", "\\|")))
            elif kind == "option" and not getattr(p, "hidden", False):
                rows.append((", ".join(p.opts), "option", (p.help or "").replace("|", "\\|")))
        if rows:
            out.append("| parameter | kind | help |\n|---|---|---|")
            out.extend(f"| `{a}` | {k} | {h} |" for a, k, h in rows)
            out.append("")
    commands = getattr(cmd, "commands", None)  # a group (typer >= 0.29 vendors its own click)
    if isinstance(commands, dict):
        for sub in sorted(commands):
            _walk(cmd.commands[sub], [*path, sub], out)


def render_cli_reference() -> str:
    import typer

    from archive.cli import __doc__ as cli_doc
    from archive.cli import app

    root = typer.main.get_command(app)
    out = [
        "# CLI reference",
        "",
        "Generated from the command tree by `archive.cli._reference` (a test fails when this page is stale;",
        "regenerate with `python -m archive.cli._reference > docs/cli.md`).",
        "",
        (cli_doc or "").strip(),
        "",
        "Global options (before or after the command name): `--root PATH`, `--json`, `--debug`.",
        "",
    ]
    _walk(root, ["hep-archive"], out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render_cli_reference())
