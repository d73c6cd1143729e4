"""``export_release``: one entry point for every export format, written atomically into an empty folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import ImmutableError, ValidationError
from archive.publish._common import ReleaseView, staged_output

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["FORMATS", "ExportResult", "export_release"]

#: formats whose output is still produced for a withdrawn release (the tombstone metadata, no payload)
TOMBSTONE_FORMATS = {"datacite", "site"}


def _exporter(fmt: str) -> Callable[[ReleaseView, Path], None]:
    if fmt == "bagit":
        from archive.publish._bagit import export_bagit

        return export_bagit
    if fmt == "rocrate":
        from archive.publish._rocrate import export_rocrate

        return export_rocrate
    if fmt == "datacite":
        from archive.publish._datacite import export_datacite

        return export_datacite
    if fmt == "zenodo":
        from archive.publish._zenodo import export_zenodo

        return export_zenodo
    if fmt == "cernopendata":
        from archive.publish._cernopendata import export_cernopendata

        return export_cernopendata
    if fmt == "hepdata":
        from archive.publish._hepdata import export_hepdata

        return export_hepdata
    if fmt == "site":
        from archive.publish._site import export_site

        return export_site
    raise ValidationError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}", field="format")


FORMATS = ("bagit", "rocrate", "datacite", "zenodo", "cernopendata", "hepdata", "site")


@dataclass(frozen=True)
class ExportResult:
    release: str
    format: str
    output: Path
    files: list[str]
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"release": self.release, "format": self.format, "output": str(self.output),
                "files": len(self.files), "bytes": self.bytes}


def export_release(archive: Archive, ref: str, fmt: str, output: Path) -> ExportResult:
    """Export a release in one format into ``output`` (created; must not exist or be empty).

    Args:
        archive: the archive.
        ref: the release, ``NAME``, ``NAME@V`` or ``release/NAME@V``.
        fmt: one of ``FORMATS``.
        output: the folder to create.

    Returns:
        ``ExportResult`` with the list of files written (relative to ``output``).

    Raises:
        ImmutableError: the release is withdrawn and the format would serve its payload.
        ValidationError: the export does not validate (nothing is left behind).
    """
    exporter = _exporter(fmt)
    view = ReleaseView.load(archive, ref)
    if view.release.status == "withdrawn" and fmt not in TOMBSTONE_FORMATS:
        why = view.release.tombstone.reason if view.release.tombstone else ""
        raise ImmutableError(f"{view.release.ref} is withdrawn ({why}); its payload is no longer served, only "
                             f"its tombstone ({', '.join(sorted(TOMBSTONE_FORMATS))})")
    with staged_output(output) as stage:
        exporter(view, stage)
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        size = sum((stage / f).stat().st_size for f in files)
    return ExportResult(view.release.ref, fmt, Path(output).absolute(), files, size)
