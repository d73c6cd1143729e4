"""Release checks: everything that must hold before a release is published, all failures at once.

Each check is a function ``(context) -> list[Problem]``; ``check_release`` runs all of them and never stops at
the first failure. The checks are read-only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.catalog import parse_ref
from archive.digest import digest_file
from archive.errors import ArchiveError, Problem
from archive.publish._common import kind_section, load_release, manifest_digest
from archive.schema import FileEntry, RecordBase
from archive.schema.v1.release import ReleaseRecord

if TYPE_CHECKING:
    from archive._archive import Archive

__all__ = ["CHECKS", "check_release", "image_reference_problem"]

DIGEST_IN_REF = re.compile(r"@sha256:[0-9a-f]{64}$")
IMAGE_KEYS = {"environment", "container_image", "docker_image", "image_ref", "pull_spec", "kubernetes_image"}


@dataclass
class _Context:
    archive: Archive
    release: ReleaseRecord
    members: list[RecordBase]
    label: str
    loaded: dict[str, str]  # member ref -> catalog file label


def image_reference_problem(value: str) -> str | None:
    """Why an image reference is not pinned by digest (None when it is)."""
    if DIGEST_IN_REF.search(value):
        return None
    if re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        return None
    return f"container image {value!r} is not pinned by digest; use name@sha256:<64 hex> (tags are mutable)"


def _walk_images(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            if k in IMAGE_KEYS and isinstance(v, str) and ("/" in v or ":" in v) and not v.startswith("tree:"):
                yield sub, v
            else:
                yield from _walk_images(v, sub)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk_images(v, f"{path}[{i}]")


def _check_records(ctx: _Context) -> list[Problem]:
    """Every member loads and validates; every reference resolves and lies inside the release."""
    problems: list[Problem] = []
    in_release = {m.ref for m in ctx.members} | {m.id for m in ctx.members}
    for m in ctx.members:
        label = ctx.loaded[m.ref]
        if m.status == "withdrawn":
            problems.append(Problem(label, "status", f"{m.ref} is withdrawn and cannot be released"))
        for field, target in m.references():
            try:
                tid, tver = parse_ref(target)
            except ArchiveError as err:
                problems.append(Problem(label, field, err.reason))
                continue
            if not ctx.archive.catalog.exists(tid, tver) if tver else not ctx.archive.catalog.versions(tid):
                problems.append(Problem(label, field, f"refers to {target}, which is not in the catalog"))
            elif target not in in_release and tid not in in_release:
                problems.append(Problem(label, field, f"refers to {target}, which is not in the release; "
                                        f"add it with --include {target if tver else tid + '@<version>'}"))
    return problems


def _check_one_file(ctx: _Context, label: str, i: int, entry: FileEntry) -> Problem | None:
    field = f"files[{i}] {entry.path}"
    tree = [loc[5:] for loc in entry.locations if loc.startswith("tree:")]
    candidates: list[Path] = []
    for store in ctx.archive.stores.values():
        local = store.local_path(entry.sha256) if store.exists(entry.sha256) else None
        if local is not None:
            candidates.append(local)
        elif store.exists(entry.sha256):
            st = store.verify(entry.sha256)
            if st.state != "ok":
                return Problem(label, field, f"object {entry.sha256} is {st.state} in a store: {st.detail}")
            if st.size != entry.size:
                return Problem(label, field, f"size {st.size} bytes, the record says {entry.size}")
            return None
    candidates += [ctx.archive.root / rel for rel in tree if (ctx.archive.root / rel).is_file()]
    if not candidates:
        return Problem(label, field, f"file missing: {entry.sha256} is in no store"
                       + (f" and {', '.join(tree)} is not in the archive tree" if tree else "")
                       + "; store it again with `hep-archive put` or fix the record")
    path = candidates[0]
    h = digest_file(path)
    if h.sha256 != entry.sha256:
        return Problem(label, field, f"corrupt: content hashes to {h.sha256}, the record says {entry.sha256}")
    if h.size != entry.size:
        return Problem(label, field, f"size {h.size} bytes, the record says {entry.size}")
    return None


def _check_files(ctx: _Context) -> list[Problem]:
    """Every member file is present, with the recorded sha256 and size; the manifest digest still holds."""
    problems: list[Problem] = []
    for m in ctx.members:
        for i, entry in enumerate(m.files):
            p = _check_one_file(ctx, ctx.loaded[m.ref], i, entry)
            if p is not None:
                problems.append(p)
    if manifest_digest(ctx.members) != ctx.release.release.manifest_digest:
        problems.append(Problem(ctx.label, "release.manifest_digest",
                                "the member files changed since the release was created; "
                                "run `hep-archive release create` again"))
    count = sum(len(m.files) for m in ctx.members)
    if ctx.release.release.file_count and ctx.release.release.file_count != count:
        problems.append(Problem(ctx.label, "release.file_count",
                                f"says {ctx.release.release.file_count} files, the members have {count}"))
    return problems


def _check_unreferenced(ctx: _Context) -> list[Problem]:
    """No unreferenced files: every file in a member's folder in the archive tree is listed by the record."""
    problems: list[Problem] = []
    for m in ctx.members:
        listed = {loc[5:] for f in m.files for loc in f.locations if loc.startswith("tree:")}
        folders = {str(Path(p).parent) for p in listed}
        for folder in sorted(folders):
            base = ctx.archive.root / folder
            if folder in (".", "") or not base.is_dir():
                continue
            for p in sorted(base.rglob("*")):
                rel = p.relative_to(ctx.archive.root).as_posix()
                if p.is_file() and rel not in listed and not p.name.startswith("."):
                    problems.append(Problem(ctx.loaded[m.ref], "files",
                                            f"unreferenced file {rel} in the record's folder; list it in the "
                                            "record or remove it"))
    return problems


def _check_identifiers(ctx: _Context) -> list[Problem]:
    """No DOI is used twice (release, members, the rest of the catalog); no duplicate file paths per record."""
    from archive.publish._common import member_doi

    problems: list[Problem] = []
    owners: dict[str, set[str]] = defaultdict(set)
    spec = ctx.release.release
    owners[spec.doi.lower()].add(ctx.release.ref)
    if ctx.release.identifiers.doi:
        owners[ctx.release.identifiers.doi.lower()].add(ctx.release.ref)
    for m in ctx.members:
        owners[member_doi(ctx.release, m).lower()].add(m.ref)
    wanted = set(owners)
    for _, r in ctx.archive.catalog.iter_records():
        if r.id == ctx.release.id:
            if r.version != ctx.release.version and r.release.version_id == spec.version_id:  # type: ignore[attr-defined]
                problems.append(Problem(ctx.label, "release.version_id", f"{spec.version_id} is also used by {r.ref}"))
            continue
        if r.identifiers.doi and r.identifiers.doi.lower() in wanted:
            owners[r.identifiers.doi.lower()].add(r.ref)
    for doi, refs in sorted(owners.items()):
        if len(refs) > 1:
            problems.append(Problem(ctx.label, "identifiers", f"duplicate identifier: DOI {doi} is used by "
                                    f"{', '.join(sorted(refs))}"))
    if ctx.release.identifiers.concept_doi and ctx.release.identifiers.concept_doi.lower() != spec.concept_doi.lower():
        problems.append(Problem(ctx.label, "identifiers.concept_doi",
                                f"{ctx.release.identifiers.concept_doi} differs from {spec.concept_doi}"))
    return problems


def _check_images(ctx: _Context) -> list[Problem]:
    """Container images are pinned by digest: container records, recipe step environments (a tag is
    accepted only when the step was resolved to an image digest), run steps, reana.yaml environments of
    recipes without parsed steps, and image references anywhere else."""
    problems: list[Problem] = []
    for m in ctx.members:
        label = ctx.loaded[m.ref]
        spec = kind_section(m)
        steps = [s for s in spec.get("steps") or [] if isinstance(s, dict)]
        if m.kind == "container":
            digest = spec.get("manifest_digest") or spec.get("digest")
            if not (isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)):
                problems.append(Problem(label, "container.manifest_digest", "container image is not pinned by "
                                        f"digest (tag {spec.get('tag') or '?'} only); record its manifest digest"))
        elif m.kind == "recipe":
            for i, step in enumerate(steps):
                env = str(step.get("environment") or "")
                why = image_reference_problem(env)
                if why and not step.get("image_digest"):
                    problems.append(Problem(label, f"recipe.steps[{i}].environment", why))
            if not steps:
                for i, entry in enumerate(m.files):
                    if entry.path.endswith(("reana.yaml", "reana.yml")):
                        problems.extend(_reana_images(ctx, label, i, entry))
        elif m.kind == "run":
            for i, step in enumerate(steps):
                if step.get("image") and not step.get("image_digest"):
                    problems.append(Problem(label, f"run.steps[{i}].image_digest",
                                            f"step ran in {step['image']} without a recorded image digest"))
        else:
            for field, value in _walk_images(spec, m.kind):
                why = image_reference_problem(value)
                if why:
                    problems.append(Problem(label, field, why))
    return problems


def _reana_images(ctx: _Context, label: str, i: int, entry: FileEntry) -> list[Problem]:
    from archive.schema._yaml import load_yaml_file

    try:
        path = ctx.archive.file_path(entry)
        data = load_yaml_file(path, source=entry.path)
    except ArchiveError:
        return []  # missing/invalid files are reported by the file and record checks
    out: list[Problem] = []
    for field, value in _walk_images(data, f"files[{i}] {entry.path}"):
        why = image_reference_problem(value)
        if why:
            out.append(Problem(label, field, why))
    return out


def _check_metadata(ctx: _Context) -> list[Problem]:
    """Creators, licence, description and usage on the release; creators, licence, description on members."""
    problems: list[Problem] = []

    def need(r: RecordBase, label: str, fields: tuple[str, ...]) -> None:
        hints = {"creators": "add creators (name, ORCID)", "license": "add an SPDX licence, e.g. CC0-1.0",
                 "description": "add a description (the abstract)", "usage": "say how to use the data"}
        for f in fields:
            if not getattr(r, f):
                problems.append(Problem(label, f, f"missing required metadata '{f}': {hints[f]}"))

    need(ctx.release, ctx.label, ("creators", "license", "description", "usage"))
    for m in ctx.members:
        need(m, ctx.loaded[m.ref], ("creators", "license", "description"))
    return problems


def _check_status(ctx: _Context) -> list[Problem]:
    if ctx.release.status != "draft":
        return [Problem(ctx.label, "status", f"{ctx.release.ref} is {ctx.release.status}; only a draft is published")]
    return []


CHECKS: dict[str, Callable[[_Context], list[Problem]]] = {
    "status": _check_status,
    "records": _check_records,
    "files": _check_files,
    "unreferenced": _check_unreferenced,
    "identifiers": _check_identifiers,
    "images": _check_images,
    "metadata": _check_metadata,
}


def check_release(archive: Archive, ref: str, *, skip: tuple[str, ...] = ()) -> list[Problem]:
    """Run every release check and return every failure (empty: ready to publish).

    Args:
        archive: the archive.
        ref: the release (``NAME``, ``NAME@V`` or ``release/NAME@V``).
        skip: names of checks (keys of ``CHECKS``) not to run; ``status`` is skipped to check a published release.

    Returns:
        One ``Problem(file, field, reason)`` per failure, every check run.
    """
    release = load_release(archive, ref)
    label = archive.catalog.label(archive.catalog.path_for(release.id, release.version))
    problems: list[Problem] = []
    members: list[RecordBase] = []
    loaded: dict[str, str] = {}
    for i, m in enumerate(release.release.members):
        rid, version = parse_ref(m)
        try:
            rec = archive.catalog.get(rid, version)
        except ArchiveError as err:
            problems.extend(err.problems or [Problem(label, f"release.members[{i}]", err.reason)])
            continue
        members.append(rec)
        loaded[rec.ref] = archive.catalog.label(archive.catalog.path_for(rid, rec.version))
    ctx = _Context(archive, release, members, label, loaded)
    for name, fn in CHECKS.items():
        if name in skip:
            continue
        if name == "files" and len(members) != len(release.release.members):
            problems.extend(p for p in fn(ctx) if p.field != "release.manifest_digest")
            continue
        problems.extend(fn(ctx))
    return problems
