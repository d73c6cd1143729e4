"""docs/cli.md is generated from the command tree; it must not drift from the commands."""

from __future__ import annotations

from pathlib import Path

from archive.cli._reference import render_cli_reference

REPO = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    page = REPO / "docs" / "cli.md"
    assert page.read_text(encoding="utf-8") == render_cli_reference(), (
        "docs/cli.md is stale: regenerate it with `python -m archive.cli._reference > docs/cli.md`"
    )


def test_every_command_is_documented() -> None:
    text = render_cli_reference()
    for command in ("init", "validate", "verify", "put", "search", "show", "ingest", "export", "diff", "hist",
                    "model add", "model check", "model apply", "container add", "container run", "recipe add",
                    "run", "rerun", "release create", "release export", "replicate", "repair", "push", "demo"):
        assert f"`hep-archive {command}`" in text, command
