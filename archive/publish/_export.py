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


#: format -> (module, function); the module is imported only when its format is asked for
_EXPORTERS = {
    "bagit": ("archive.publish._bagit", "export_bagit"),
    "rocrate": ("archive.publish._rocrate", "export_rocrate"),
    "datacite": ("archive.publish._datacite", "export_datacite"),
    "zenodo": ("archive.publish._zenodo", "export_zenodo"),
    "cernopendata": ("archive.publish._cernopendata", "export_cernopendata"),
    "hepdata": ("archive.publish._hepdata", "export_hepdata"),
    "site": ("archive.publish._site", "export_site"),
}
FORMATS = tuple(_EXPORTERS)


def _exporter(fmt: str) -> Callable[[ReleaseView, Path], None]:
    if fmt not in _EXPORTERS:
        raise ValidationError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}", field="format")
    import importlib

    module, name = _EXPORTERS[fmt]
    fn: Callable[[ReleaseView, Path], None] = getattr(importlib.import_module(module), name)
    return fn


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
