"""Integrity commands: verify, replicate, repair, push."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive

if TYPE_CHECKING:
    from archive.integrity import RepairReport

__all__ = ["register"]


def verify(
    sample: Annotated[float | None, typer.Option(help="check only this fraction of the objects (0-1]")] = None,
    since: Annotated[str | None, typer.Option(
        help="skip copies verified ok since DATE (YYYY-MM-DD, ISO time, or an age like 30d)")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="hash this many objects at once")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="continue the last interrupted run")] = False,
    seed: Annotated[int | None, typer.Option(help="random seed for --sample")] = None,
    orphans: Annotated[bool, typer.Option(help="list stored objects nothing references")] = True,
    formats: Annotated[bool, typer.Option(help="verify Parquet/Zarr/HDF5 internal checksums")] = True,
) -> None:
    """Re-hash every object the catalog references, in every store; report missing, corrupt, unreadable and
    orphaned objects, the copies policy, format checksums and the publication ledger."""
    from archive.cli._common import STATE, progress_callback
    from archive.integrity import verify_archive

    a = get_archive()
    with progress_callback(None, "verify") as cb:
        report = verify_archive(a, sample=sample, since=since, jobs=jobs, resume=resume, seed=seed,
                                orphans=orphans, formats=formats, progress=None if STATE.json else cb)

    def human() -> None:
        for o in report.objects:
            if o.state != "ok":
                where = ", ".join(
                    f"{k}: {v}" + (f" ({o.details[k]})" if k in o.details and v != "ok" else "")
                    for k, v in o.copies.items()
                )
                extra = f", {o.ok_copies}/{o.required} verified copies" if o.state == "under-replicated" else ""
                err_console.print(f"{o.state}: {o.digest} [{where or 'no copy in any store'}{extra}] "
                                  f"referenced by {', '.join(o.referenced_by)}", markup=False, highlight=False)
        for p in report.problems:
            err_console.print(str(p), markup=False, highlight=False)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(report.counts().items())) or "no objects referenced"
        damaged = len(report.damaged_orphans)  # each one is also a problem line above
        orphaned = "orphaned" + (f", {damaged} of them damaged" if damaged else "")
        notes = [f"{n} {what}" for n, what in ((len(report.orphans), orphaned), (report.skipped, "not sampled"),
                                               (report.recent, "copies verified recently"),
                                               (report.resumed, "copies resumed"),
                                               (report.temporaries, "temporaries of interrupted writes")) if n]
        tail = f" ({'; '.join(notes)})" if notes else ""
        (console if report.ok else err_console).print(f"verify: {counts}{tail}", markup=False)

    emit(report.as_dict(), human)
    if not report.ok:
        raise typer.Exit(3)


def _render(report: RepairReport, verb: str) -> None:
    def human() -> None:
        for act in report.actions:
            src = f" from {act.source}" if act.source else ""
            console.print(f"{act.action}: {act.digest or ''} -> {act.target}{src}", markup=False, highlight=False)
        for p in report.failures:
            err_console.print(str(p), markup=False, highlight=False)
        for d in report.lost:
            err_console.print(f"lost: {d} has no verified copy in any store", markup=False, highlight=False)
        (console if report.ok else err_console).print(
            f"{verb}: {len(report.actions)} action(s), {len(report.failures)} failure(s), {len(report.lost)} lost",
            markup=False)

    emit(report.as_dict(), human)
    if not report.ok:
        raise typer.Exit(3 if report.lost else 1)


def replicate(
    copies: Annotated[int | None, typer.Option(help="verified copies each object needs (default: the policy)")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="hash this many objects at once")] = 1,
) -> None:
    """Copy objects (and published-record snapshots) between stores until each has enough verified copies."""
    from archive.integrity import replicate as run

    _render(run(get_archive(), copies=copies, jobs=jobs), "replicate")


def repair(jobs: Annotated[int, typer.Option("--jobs", "-j", help="hash this many objects at once")] = 1) -> None:
    """Replace corrupt, unreadable or missing copies and edited published records from verified copies."""
    from archive.integrity import repair as run

    _render(run(get_archive(), jobs=jobs), "repair")


def push(
    sibling: Annotated[str, typer.Argument(help="DataLad sibling name")],
    ria: Annotated[str | None, typer.Option(help="create the sibling as a RIA store at this path or ria+ URL")] = None,
) -> None:
    """Save the DataLad archive and publish it, with its annexed objects, to a sibling."""
    from archive.storage._datalad import dataset_id
    from archive.storage._datalad import push as run

    a = get_archive()
    with a.lock():
        pushed = run(a.root, sibling, ria_url=ria)
    data: dict[str, Any] = {"sibling": sibling, "pushed": pushed, "dataset_id": dataset_id(a.root)}
    if ria:
        url = ria if ria.startswith("ria+") else "ria+file://" + str(Path(ria).absolute())
        data["clone_url"] = f"{url}#{data['dataset_id']}"
    emit(data, lambda: console.print(f"pushed {len(pushed)} item(s) to {sibling}"
                                     + (f"; clone with: datalad clone {data['clone_url']}" if ria else ""),
                                     markup=False, highlight=False))


def register(app: typer.Typer) -> None:
    for fn in (verify, replicate, repair, push):
        app.command(name=fn.__name__)(fn)
