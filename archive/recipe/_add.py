"""Record a checked recipe: every file stored content-addressed, a ``recipe`` record in the catalog."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from archive.errors import ValidationError
from archive.recipe._citation import CITATION_FILE, read_citation

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.schema.v1.recipe import RecipeRecord

__all__ = ["add_recipe", "recipe_files"]


def _role(rel: str, spec_file: str, side_file: str | None, workflow_file: str | None) -> str:
    if rel in (spec_file, side_file):
        return "recipe"
    if rel == workflow_file:
        return "workflow"
    if rel == CITATION_FILE:
        return "documentation"
    return "other"


def add_recipe(archive: Archive, directory: str | Path, *, name: str | None = None,
               version: str | None = None, strict_images: bool = True) -> RecipeRecord:
    """Validate a recipe directory and record it as ``recipe/NAME@VERSION``.

    Args:
        archive: the archive to record into.
        directory: the recipe folder (``reana.yaml`` and its files).
        name: record name (default: the folder name, lower-cased).
        version: record version (default: reuse the latest version when the content is identical, else the
            next minor version).
        strict_images: a step image whose container record is not in the archive is an error; with
            ``False`` it is a warning and the recipe can run only on the ``local`` (or ``reana``) backend.

    A ``CITATION.cff`` in the folder gives the record's creators, licence and keywords (and the description when
    the side file has none).

    Returns:
        The recipe record written to the catalog. Invalid recipes raise before anything is stored.
    """
    from archive.catalog import record_digest
    from archive.recipe._load import load_recipe
    from archive.schema import parse_record

    root = Path(directory)
    loaded = load_recipe(root, archive, strict_images=strict_images)
    rname = (name or root.resolve().name).lower()
    if not re.match(r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$", rname):
        raise ValidationError(f"{rname!r} is not a valid record name; pass --name with lower-case letters, "
                              "digits, '.', '_' or '-'", file=str(root))
    rid = f"recipe/{rname}"
    spec = loaded.spec
    cite = read_citation(root / CITATION_FILE) if (root / CITATION_FILE).is_file() else {}  # before storing
    with archive.lock():
        try:  # a recipe kept in the archive tree (recipes/NAME/) also names its tree location
            tree: str | None = root.absolute().relative_to(archive.root).as_posix()
        except ValueError:
            tree = None
        entries = [archive.file_entry(root / rel, name=rel,
                                      role=_role(rel, spec.spec_file, spec.side_file, spec.workflow_file))
                   for rel in loaded.files]
        if tree is not None:
            entries = [e.model_copy(update={"locations": [f"tree:{tree}/{e.path}"]}) for e in entries]
        data = {
            "id": rid, "version": version or "0.0.0", "title": loaded.title or f"Recipe {rname}",
            "description": loaded.description or cite.pop("abstract", None) or "",
            **{k: v for k, v in cite.items() if k != "abstract"},
            "files": [e.model_dump(mode="json", exclude_none=True) for e in entries],
            "recipe": spec.model_dump(mode="json"),
        }
        if version is None:
            versions = archive.catalog.versions(rid)
            if versions:
                latest = archive.catalog.get(rid, versions[-1])
                candidate = parse_record({**data, "version": latest.version, "status": latest.status},
                                         source=str(root))
                if record_digest(candidate) == record_digest(latest):
                    return latest  # type: ignore[return-value]
            data["version"] = archive.catalog.next_version(rid)
        record = parse_record(data, source=str(root))
        archive.catalog.add(record)
    return record  # type: ignore[return-value]


def recipe_files(archive: Archive, record: RecipeRecord, dest: Path) -> list[str]:
    """Materialise a recorded recipe's files under ``dest`` (verified copies from the object store)."""
    import shutil

    out = []
    for entry in record.files:
        target = dest / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open_object(entry.sha256) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out.append(entry.path)
    return out
