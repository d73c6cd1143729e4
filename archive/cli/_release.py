"""``release`` commands: create, check, publish, new-version, withdraw, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive

__all__ = ["register"]

release_app = typer.Typer(help="Open data releases: create, check, publish, version, withdraw, export.",
                          no_args_is_help=True)


def _creators(values: list[str] | None) -> list[dict[str, Any]] | None:
    """``--creator "Family, Given|0000-0002-1825-0097|Affiliation"`` (ORCID and affiliation optional)."""
    if not values:
        return None
    out = []
    for v in values:
        parts = [p.strip() for p in v.split("|")]
        c: dict[str, Any] = {"name": parts[0]}
        if len(parts) > 1 and parts[1]:
            c["orcid"] = parts[1]
        if len(parts) > 2 and parts[2]:
            c["affiliation"] = [{"name": parts[2]}]
        out.append(c)
    return out


@release_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="release name")],
    version: Annotated[str, typer.Option("--version", help="semantic version, e.g. 1.0.0")],
    more: Annotated[list[str] | None, typer.Argument(help="more members after --include (kind:name@X.Y.Z ...)",
                                                     show_default=False)] = None,
    include: Annotated[list[str] | None, typer.Option("--include", help="member kind/name@X.Y.Z (repeat, or "
                                                      "list them all after one --include)")] = None,
    title: Annotated[str | None, typer.Option(help="title (default: the name)")] = None,
    description: Annotated[str | None, typer.Option(help="abstract")] = None,
    usage: Annotated[str | None, typer.Option(help="how to use the release")] = None,
    creator: Annotated[list[str] | None, typer.Option("--creator", help="'Family, Given|ORCID|Affiliation'")] = None,
    license: Annotated[str | None, typer.Option("--license", help="SPDX id (default: the members')")] = None,
    doi_prefix: Annotated[str, typer.Option(help="DOI prefix (10.5072: DataCite test prefix)")] = "10.5072",
    changes: Annotated[str | None, typer.Option(help="changelog text for this version")] = None,
    keyword: Annotated[list[str] | None, typer.Option("--keyword", help="keyword (repeat)")] = None,
) -> None:
    """Create a draft release of exact record versions."""
    from archive.publish import create_release

    members = [*(include or []), *(more or [])]
    r = create_release(get_archive(), name, version, members, title=title, description=description, usage=usage,
                       creators=_creators(creator), license=license, doi_prefix=doi_prefix, changes=changes,
                       keywords=keyword or ())
    emit({"ref": r.ref, "status": r.status, "doi": r.release.doi, "concept_doi": r.release.concept_doi,
          "members": r.release.members, "manifest_digest": r.release.manifest_digest},
         lambda: console.print(f"created {r.ref} (draft, {len(r.release.members)} member(s), DOI {r.release.doi})",
                               markup=False, highlight=False))


@release_app.command("check")
def check(release: Annotated[str, typer.Argument(help="NAME[@VERSION]")]) -> None:
    """Run every release check; list all failures (exit 1 when any)."""
    from archive.publish import check_release

    problems = check_release(get_archive(), release, skip=("status",))

    def human() -> None:
        for p in problems:
            err_console.print(str(p), markup=False, highlight=False)
        if problems:
            err_console.print(f"{len(problems)} release check(s) failed", markup=False)
        else:
            console.print("all release checks passed", markup=False)

    emit({"ok": not problems, "problems": [p.as_dict() for p in problems]}, human)
    if problems:
        raise typer.Exit(1)


@release_app.command("publish")
def publish(release: Annotated[str, typer.Argument(help="NAME@VERSION")]) -> None:
    """Check, then publish a draft release and its draft members (immutable from then on)."""
    from archive.publish import publish_release

    r = publish_release(get_archive(), release)
    emit({"ref": r.ref, "status": r.status, "doi": r.release.doi},
         lambda: console.print(f"published {r.ref} (DOI {r.release.doi})", markup=False, highlight=False))


@release_app.command("new-version")
def new_version_cmd(
    name: Annotated[str, typer.Argument(help="release name")],
    version: Annotated[str | None, typer.Option("--version", help="new version (default: next minor)")] = None,
    include: Annotated[list[str] | None, typer.Option("--include", help="add or replace a member")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="drop a member (kind/name)")] = None,
    changes: Annotated[str | None, typer.Option(help="changelog text")] = None,
) -> None:
    """Start the next version of a published release (same concept DOI)."""
    from archive.publish import new_version

    r = new_version(get_archive(), name, version=version, include=include or (), exclude=exclude or (),
                    changes=changes)
    emit({"ref": r.ref, "status": r.status, "doi": r.release.doi, "concept_doi": r.release.concept_doi},
         lambda: console.print(f"created {r.ref} (draft; concept DOI {r.release.concept_doi})", markup=False,
                               highlight=False))


@release_app.command("withdraw")
def withdraw(
    release: Annotated[str, typer.Argument(help="NAME@VERSION")],
    reason: Annotated[str, typer.Option(help="why (kept in the tombstone)")],
) -> None:
    """Withdraw a published release: a tombstone keeps metadata and reason; the payload is no longer served."""
    from archive.publish import withdraw_release

    r = withdraw_release(get_archive(), release, reason=reason)
    emit({"ref": r.ref, "status": r.status, "reason": reason},
         lambda: console.print(f"withdrawn: {r.ref}", markup=False))


@release_app.command("export")
def export(
    release: Annotated[str, typer.Argument(help="NAME[@VERSION]")],
    fmt: Annotated[str, typer.Option("--format", help="bagit|rocrate|datacite|zenodo|cernopendata|hepdata|site")],
    output: Annotated[Path, typer.Option("--output", help="folder to create (must be new or empty)")],
) -> None:
    """Export a release in one of the field's formats (deterministic; validated before it is written)."""
    from archive.publish import export_release

    res = export_release(get_archive(), release, fmt, output)
    emit(res.as_dict(), lambda: console.print(
        f"exported {res.release} as {res.format}: {len(res.files)} file(s), {res.bytes} bytes in {res.output}",
        markup=False, highlight=False))


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
