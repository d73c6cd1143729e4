"""``hep-archive container``: add, snapshot, export, unpack, run, show, list images; list runners."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive, parse_assignments

__all__ = ["register"]

container_app = typer.Typer(
    help="OCI container images: capture by digest, keep byte for byte, run in a sandbox.",
    no_args_is_help=True,
)


def _summary(record: Any) -> dict[str, Any]:
    c = record.container
    return {
        "ref": record.ref, "status": record.status, "manifest_digest": c.manifest_digest,
        "config_digest": c.config_digest, "platform": "/".join(
            p for p in (c.platform.os, c.platform.architecture, c.platform.variant) if p),
        "tag": c.tag, "registry": c.registry, "layers": [la.model_dump(mode="json") for la in c.layers],
        "size": sum(la.size for la in c.layers), "entrypoint": c.entrypoint, "cmd": c.cmd, "env": c.env,
        "workdir": c.workdir, "source_format": c.source_format, "conversion": c.conversion,
        "definition": c.definition,
    }


@container_app.command("add")
def add(
    image: Annotated[Path, typer.Argument(help="OCI archive tar, OCI layout directory or docker-archive tar")],
    name: Annotated[str, typer.Option(help="record name (container/NAME)")],
    version: Annotated[str | None, typer.Option(help="record version (default: next minor)")] = None,
    tag: Annotated[str | None, typer.Option(help="which tagged image of the source to take")] = None,
    definition: Annotated[Path | None, typer.Option(help="the Containerfile it was built from")] = None,
    platform: Annotated[str | None, typer.Option(help="os/arch[/variant] for multi-platform indexes")] = None,
    registry: Annotated[str | None, typer.Option(help="reference of origin, e.g. docker.io/library/x")] = None,
) -> None:
    """Verify an image's blobs and store them byte for byte, with a draft container record."""
    from archive.container import add_image

    rec = add_image(get_archive(), image, name=name, version=version, tag=tag, definition=definition,
                    platform=platform, registry=registry)
    data = _summary(rec)
    emit(data, lambda: console.print(f"added {rec.ref}: {rec.container.manifest_digest} "
                                     f"({len(rec.container.layers)} layers, {data['size']} bytes)",
                                     markup=False, highlight=False))


@container_app.command("snapshot")
def snapshot(
    name: Annotated[str, typer.Argument(help="record name (container/NAME); defaults come from containers/NAME/")],
    version: Annotated[str | None, typer.Option(help="record version (default: reuse when identical)")] = None,
    requirements: Annotated[Path | None, typer.Option(
        help="pinned pip requirements the image holds (default containers/NAME/requirements.txt)")] = None,
    package: Annotated[list[Path] | None, typer.Option(
        "--package", help="a local package directory to install into the image (repeatable)")] = None,
    definition: Annotated[Path | None, typer.Option(
        help="the Containerfile whose ENV lines the image takes (default containers/NAME/Containerfile)")] = None,
    metadata: Annotated[Path | None, typer.Option(
        help="YAML with record fields: creators, license, description, usage, keywords")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="processes compiling bytecode")] = 2,
) -> None:
    """Build an OCI image of this Python environment offline (no registry) and add it to the archive.

    Layers: busybox base, the interpreter with the host libraries it needs, the pinned distributions with
    their dependencies, and the --package directories; every .py has a hash-based .pyc. An installed version
    outside a pin is refused."""
    from archive.container import snapshot_image
    from archive.datasets._families import SPEC_KEYS, load_metadata
    from archive.errors import ValidationError

    meta = load_metadata(metadata) if metadata is not None else {}
    meta.pop("_label", None)
    dataset_only = sorted(SPEC_KEYS & set(meta))
    if dataset_only:
        raise ValidationError(f"{', '.join(dataset_only)}: dataset fields, not container fields", file=str(metadata),
                              field=dataset_only[0])
    rec, report = snapshot_image(get_archive(), name, version=version, requirements=requirements,
                                 packages=package or [], definition=definition, metadata=meta, jobs=jobs,
                                 log=lambda line: err_console.print(line, markup=False, highlight=False))
    data = {**_summary(rec), "python": report.python, "distributions": report.distributions,
            "packages": report.packages, "host_libraries": report.libraries, "unresolved": report.unresolved}
    emit(data, lambda: console.print(f"added {rec.ref}: {rec.container.manifest_digest} "
                                     f"({len(rec.container.layers)} layers, {data['size']} bytes, "
                                     f"{len(report.distributions)} distributions)", markup=False, highlight=False))


@container_app.command("export")
def export(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest digest")],
    output: Annotated[Path, typer.Option("--output", "-o", help="img.tar (OCI archive) or a directory")],
) -> None:
    """Write a stored image as an OCI archive (or layout directory) with the recorded manifest digest."""
    from archive.container import export_image

    digest = export_image(get_archive(), ref, output)
    emit({"output": str(output), "manifest_digest": digest},
         lambda: console.print(f"{digest}  {output}", markup=False, highlight=False))


@container_app.command("unpack")
def unpack(ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest digest")]) -> None:
    """Safely unpack an image (cached by manifest digest) and print its root directory."""
    import json

    from archive.container import unpacked_root

    root = unpacked_root(get_archive(), ref)
    meta_file = root.parent / "unpack.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    notes = [str(n) for n in meta.get("notes", [])]

    def human() -> None:
        console.print(str(root), markup=False, highlight=False)
        for n in notes:
            err_console.print(f"note: {n}", markup=False, highlight=False)

    emit({"rootfs": str(root), "notes": notes, "files": meta.get("files"), "whiteouts": meta.get("whiteouts")},
         human)


@container_app.command("run")
def run(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest digest")],
    command: Annotated[list[str] | None, typer.Argument(help="command after --; default: entrypoint + cmd")] = None,
    runner: Annotated[str, typer.Option(help="bwrap | podman | docker | apptainer | local")] = "bwrap",
    workspace: Annotated[Path | None, typer.Option(help="bound read-write at /workspace (default: cwd)")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE (repeatable)")] = None,
    network: Annotated[bool, typer.Option("--network", help="allow network access")] = False,
    timeout: Annotated[float | None, typer.Option(help="seconds before the command is killed")] = None,
) -> None:
    """Run a command in a stored image (default: bwrap, no network, cleared environment)."""
    from archive.container import run_image

    extra = parse_assignments(env, "--env")
    with tempfile.TemporaryDirectory(prefix="hep-archive-run-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        outcome = run_image(get_archive(), ref, command or [], runner=runner, workspace=workspace or Path.cwd(),
                            env=extra, network=network, timeout=timeout, stdout=out, stderr=err)
        stdout, stderr = out.read_bytes(), err.read_bytes()
    data: dict[str, Any] = {
            "exit_code": outcome.exit_code, "runner": outcome.runner, "runner_version": outcome.runner_version,
            "started": outcome.started.isoformat(), "ended": outcome.ended.isoformat(),
            "timed_out": outcome.timed_out, "stdout": stdout.decode(errors="replace"),
            "stderr": stderr.decode(errors="replace")}

    def human() -> None:
        sys.stdout.write(data["stdout"])
        sys.stdout.flush()
        if data["stderr"]:
            err_console.print(data["stderr"], end="", markup=False, highlight=False)
        if outcome.timed_out:
            err_console.print(f"timed out after {timeout} s", markup=False)

    emit(data, human)
    if outcome.exit_code != 0:
        raise typer.Exit(outcome.exit_code)


@container_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME[@VERSION] or a manifest digest")]) -> None:
    """Show an image record: digests, platform, layers, entrypoint, env, origin."""
    from archive.container import container_record

    data = _summary(container_record(get_archive(), ref))

    def human() -> None:
        for k in ("ref", "status", "manifest_digest", "config_digest", "platform", "tag", "registry",
                  "source_format", "conversion", "definition", "workdir", "entrypoint", "cmd"):
            if data[k] is not None:
                console.print(f"{k:16} {data[k]}", markup=False, highlight=False)
        for la in data["layers"]:
            console.print(f"{'layer':16} {la['digest']}  {la['size']:>12}  {la['media_type']}", markup=False,
                          highlight=False)

    emit(data, human)


@container_app.command("list")
def list_() -> None:
    """List container records."""
    from archive.container import list_images

    rows = [{"ref": r.ref, "status": r.status, "manifest_digest": r.container.manifest_digest,
             "tag": r.container.tag, "size": sum(la.size for la in r.container.layers)}
            for r in list_images(get_archive())]
    def human() -> None:
        for r in rows:
            console.print(f"{r['ref']:40} {r['status']:10} {r['manifest_digest']}", markup=False, highlight=False)

    emit(rows, human)


@container_app.command("runners")
def runners() -> None:
    """Which runners work on this machine (and why the others do not)."""
    from archive.container import available_runners

    rows = [{"name": i.name, "available": i.available, "reason": i.reason, "version": i.version}
            for i in available_runners()]
    def human() -> None:
        for r in rows:
            console.print(f"{r['name']:10} {'yes' if r['available'] else 'no ':4} {r['version'] or r['reason']}",
                          markup=False, highlight=False)

    emit(rows, human)


def register(app: typer.Typer) -> None:
    app.add_typer(container_app, name="container")
