"""The reference archive built by ``hep-archive demo`` (the README's main job).

1. Make the chain's software image without a registry: ``container snapshot`` copies the interpreter, the
   pinned distributions of ``containers/zjets-omnifold/requirements.txt`` and the analysis code into a real
   OCI image, stored byte for byte and pinned by digest (the ``Containerfile`` beside it builds the same
   software where a registry is reachable).
2. Record the reference recipe (``recipes/zjets-omnifold``), its steps pinned to that image, and run it
   through the re-execution engine in a bwrap sandbox (no network): Pythia 8 generation, the parametric
   detector simulation, FastJet reconstruction of the 24 ATLAS Z+jets observables, MultiFold unfolding in
   torch with ONNX export, and the closure test. The engine writes the run record (image digest per step, host,
   packages, devices, every input and output digest) and caches every step by content.
3. Store what the run produced: the unfolded pseudo-data as a self-describing dataset with all its weight
   families, its particle-level truth, the alternative-prior unfolding, and the step-2 networks as ONNX
   model records with reference vectors.
4. Reinterpret: a derived observable that was never binned (tau21 of the leading track jet, with a
   selection), with every weight family's uncertainty, compared with the known truth (chi2 with the full
   covariance), plotted, and kept as a ``result`` record next to the closure test.
5. Publish: a release of every record above (release checks, immutable), exported in every format, each
   checked by its validator while it is written (BagIt, RO-Crate, DataCite, Zenodo, CERN Open Data, HEPData,
   the web site), into ``exports/`` of the archive root.
6. ``validate`` and ``verify`` the whole archive.

The recipe and the image definition are read from a *source* archive root, a checkout of hep-archive:
``recipes/zjets-omnifold`` and ``containers/zjets-omnifold`` (``source=``, else ``$HEP_ARCHIVE_ROOT`` or the
nearest directory at or above the current one that holds the recipe; see
:func:`archive.reference.chain.find_source`). The installed package carries neither.

Without a usable bwrap (no user namespaces) the steps run on the ``local`` backend instead, which records the
host environment and no image, and the release is skipped: its checks require every step pinned to an image.
``hep-archive rerun RUN`` re-executes the recorded run and compares every output.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive._archive import Archive, init_archive
from archive.catalog import validate_archive
from archive.errors import ImmutableError, ObjectNotFoundError
from archive.integrity import verify_archive
from archive.reference.chain import DEFAULT_EVENTS as DEMO_EVENTS
from archive.reference.chain import RECIPE_PATH, find_source
from archive.schema import parse_record

__all__ = ["DEMO_EVENTS", "build_demo"]

OBSERVABLE = "tau21 = tau2_trackj1 / tau1_trackj1"
SELECTION = "pT_trackj1 > 10"
BINS = "0:1:10"


def _result(archive: Archive, name: str, title: str, files: list[tuple[Path, str, str]], spec: dict[str, Any],
            description: str) -> str:
    entries = [archive.file_entry(p, name=p.name, role=role, media_type=mt).model_dump(mode="json", exclude_none=True)
               for p, role, mt in files]
    record = parse_record({
        "id": f"result/{name}", "version": "1.0.0", "title": title, "description": description,
        "creators": [{"name": "hep-archive developers"}], "license": "CC0-1.0",
        "experiment": "hep-archive reference (Pythia 8 pseudo-data)", "files": entries, "result": spec,
    })
    if not archive.catalog.exists(record.id, record.version):
        archive.add_record(record)
    return record.ref


def _atlas_export(archive: Archive, dataset_ref: str, run_ref: str) -> str:
    """The unfolded result in the ATLAS release's own layout (pandas 'fixed' HDF5, key ``df``)."""
    from archive.datasets import export_dataset

    name = "zjets-omnifold-atlas-layout"
    if archive.catalog.versions(f"result/{name}"):
        return f"result/{name}@1.0.0"
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "zjets-omnifold-pseudodata.h5"
        export_dataset(archive, dataset_ref, "atlas-hdf5", h5)
        return _result(
            archive, name, "The unfolded result in the ATLAS Z+jets release layout",
            [(h5, "output", "application/x-hdf5")],
            {"type": "table", "produced_by": run_ref, "inputs": [dataset_ref]},
            "The same events and weight columns as the canonical dataset, written in the layout of the ATLAS "
            "Z+jets OmniFold release (pandas 'fixed' HDF5 under key 'df'), readable by pandas.read_hdf.",
        )


IMAGE = "zjets-omnifold"
#: the image definition (Containerfile, requirements) inside the source archive root
CONTAINER_PATH = Path("containers") / IMAGE
RELEASE = "zjets-omnifold-reference"
IMAGE_METADATA: dict[str, Any] = {
    "title": "Software image of the Z+jets OmniFold reference analysis",
    "creators": [{"name": "hep-archive developers"}],
    "license": "GPL-2.0-or-later",
    "description": ("The software of the hep-archive reference analysis: Pythia 8, FastJet, awkward, torch (CPU), "
                    "ONNX and onnxruntime, scipy, matplotlib and the analysis code (the archive package). The "
                    "image bundles software under its own licences (torch and numpy BSD-3-Clause, onnxruntime "
                    "MIT, ...); as a whole it is distributed under GPL-2.0-or-later, the licence of Pythia 8 and "
                    "FastJet."),
    "usage": ("hep-archive container run zjets-omnifold -- python -m archive.reference.generate --help; "
              "the recipe recipe/zjets-omnifold runs every step in it (hep-archive rerun RUN)."),
    "keywords": ["Pythia 8", "FastJet", "torch", "ONNX"],
}


def _source(source: str | os.PathLike[str] | None) -> Path:
    """The source archive root, checked to hold the recipe and the image definition."""
    root = find_source(source)
    containerfile = root / CONTAINER_PATH / "Containerfile"
    if not containerfile.is_file():
        raise ObjectNotFoundError("the chain's image definition is missing; pass the root of a hep-archive "
                                  "checkout", file=str(containerfile), field="source")
    return root


def _container_definition(archive: Archive, src: Path) -> Path:
    """Keep the chain's image definition (Containerfile, requirements.txt) from ``src`` in the archive's
    ``containers/``."""
    import shutil

    dst = archive.root / CONTAINER_PATH
    if src.resolve() != dst.resolve():
        dst.mkdir(parents=True, exist_ok=True)
        for p in sorted(src.iterdir()):
            if p.is_file() and not (dst / p.name).exists():
                shutil.copyfile(p, dst / p.name)
    return dst / "Containerfile"


def _image(archive: Archive, definition: Path, say: Callable[[str], None]) -> str:
    """The chain's image record: the one already in the archive, else a snapshot of this environment."""
    from archive.container import snapshot_image

    versions = archive.catalog.versions(f"container/{IMAGE}")
    if versions:
        return f"container/{IMAGE}@{versions[-1]}"
    say(f"building the chain's image offline: container snapshot {IMAGE} (about a minute)")
    package = Path(__file__).resolve().parent
    rec, report = snapshot_image(archive, IMAGE, version="1.0.0", packages=[package], definition=definition,
                                 metadata=IMAGE_METADATA, log=lambda line: say(f"  {line}"))
    say(f"{rec.ref}: {rec.container.manifest_digest}, {report.size / 1e9:.2f} GB, "
        f"{len(report.distributions)} distributions")
    return rec.ref


def _model_names(archive: Archive) -> list[str]:
    return sorted({f.name for f in archive.catalog.files()
                   if f.kind == "model" and f.name.startswith("zjets-omnifold-step2-")})


def _backend(requested: str) -> str:
    if requested != "auto":
        return requested
    from archive.container import get_runner

    return "bwrap" if get_runner("bwrap").available() is None else "local"


def _release(archive: Archive, members: list[str], run_ref: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Create, check and publish the release of the reference chain, then export it in every format."""
    import datetime as dt

    from archive.publish import FORMATS, create_release, export_release, publish_release

    ref = f"release/{RELEASE}@1.0.0"
    rec = archive.record(run_ref)
    created = rec.dates.created or dt.datetime.now(dt.UTC).date()
    if not archive.catalog.exists(f"release/{RELEASE}", "1.0.0"):
        create_release(
            archive, RELEASE, "1.0.0", members,
            title="Z(->mu mu)+jets OmniFold reference analysis: unfolded pseudo-data, networks, software and run",
            description=("A complete, re-executable unbinned measurement: Pythia 8 Z(->mu mu)+jet pseudo-data "
                         "unfolded with MultiFold to the 24 observables of the ATLAS Z+jets OmniFold release, with "
                         "every weight family (ensemble, data and MC bootstraps, detector systematics), the "
                         "particle-level truth, the alternative-prior unfolding, the step-2 networks in ONNX, the "
                         "REANA recipe, the container image it ran in (pinned by digest), the run record with "
                         "every input and output digest, the closure test and a reinterpretation."),
            usage=("Histogram any observable, or a new derived one, with every weight family's uncertainty: "
                   "`hep-archive hist zjets-omnifold-pseudodata --observable 'tau21 = tau2_trackj1 / tau1_trackj1' "
                   "--bins 0:1:10`. Re-execute the analysis: `hep-archive rerun " + run_ref + "`."),
            license="CC0-1.0", keywords=["Z+jets", "OmniFold", "unbinned", "reinterpretation", "REANA"],
            created=created, changes="First release of the reference analysis.",
        )
    release = archive.record(ref)
    if release.status == "draft":
        publish_release(archive, ref, date=created)
        say(f"published {ref} ({len(members)} members; release checks passed)")
    out = archive.root / "exports" / f"{RELEASE}-1.0.0"
    written: dict[str, Any] = {}
    for fmt in FORMATS:
        target = out / fmt
        if target.exists() and any(target.iterdir()):
            written[fmt] = "exists"
            continue
        res = export_release(archive, ref, fmt, target)
        written[fmt] = len(res.files)
    say(f"exported {ref} as {', '.join(FORMATS)} into {out} (each validated while written)")
    return {"release": ref, "exports": str(out), "files": written}


def build_demo(
    output: str | Path, *, events: int = DEMO_EVENTS, device: str = "cpu", jobs: int = 2,
    backend: str = "auto", log: Callable[[str], None] | None = None, source: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build (or complete) the reference archive at ``output`` and return a summary.

    ``backend``: ``auto`` (bwrap when it can run here, else local), ``bwrap``, ``podman`` or ``local``.
    ``source``: the archive root holding ``recipes/zjets-omnifold`` and ``containers/zjets-omnifold`` (a
    hep-archive checkout); default :func:`archive.reference.chain.find_source`. Checked before anything is
    written."""
    from archive.datasets import open_dataset
    from archive.execution import run_recipe
    from archive.recipe import add_recipe
    from archive.reference._publish import DATASET, store_results
    from archive.reinterpret import compare, histogram

    say = log or (lambda line: None)
    started = time.perf_counter()
    src = _source(source)
    recipe_dir = src / RECIPE_PATH
    out = Path(output)
    archive = Archive(out) if (out / "archive.yaml").exists() else init_archive(out, name="hep-archive-reference")
    say(f"archive root: {archive.root}; reference recipe from {recipe_dir}")
    backend = _backend(backend)
    definition = _container_definition(archive, src / CONTAINER_PATH)
    image = _image(archive, definition, say) if backend != "local" else None
    if image is None:
        say("bwrap cannot run here: the steps run on the local backend (host environment, no image)")
    recipe = add_recipe(archive, recipe_dir, name="zjets-omnifold", strict_images=image is not None)
    say(f"recorded {recipe.ref}; running the chain on {backend} ({events} events per sample, device {device})")
    run = run_recipe(archive, recipe.ref, parameters={"events": events, "jobs": jobs,
                                                      "device": "cuda" if device == "gpu" else "cpu"},
                     backend=backend, device=device)
    if not run.ok:
        return {"archive": str(archive.root), "run": run.record.ref, "ok": False,
                "error": f"the run failed; see `hep-archive run-show {run.record.ref}`"}
    say(f"{run.record.ref}: executed {run.executed or 'nothing'}, restored from cache {run.cached or 'nothing'}")
    work = run.workspace / "work"
    if archive.catalog.versions(f"dataset/{DATASET}"):
        if run.executed:
            raise ImmutableError(
                f"{archive.root} already holds the results of a run with other inputs or parameters; "
                "build the new results in a fresh archive (--output DIR)", field="--output")
        # every step came from the cache: the outputs are the very objects stored before
        stored = {"records": {"dataset": f"dataset/{DATASET}@1.0.0"}, "skipped": {"store": "already stored"}}
    else:
        stored = store_results(archive, work, events=events, cards=recipe_dir / "cards")
    closure = json.loads((work / "closure.json").read_text(encoding="utf-8"))
    closure_ref = _result(
        archive, "zjets-omnifold-closure", "Closure test of the reference unfolding",
        [(work / "closure.json", "output", "application/json"), (work / "closure.png", "plot", "image/png")],
        {"type": "closure-test", "produced_by": run.record.ref, "passed": bool(closure["passed"]),
         "statistics": {f"p_value:{k}": float(v["p_value"]) for k, v in closure["observables"].items()}},
        "Unfolded pseudo-data compared with its known particle-level truth; chi2 with the full covariance from "
        "the bootstrap replicas.",
    )
    say(f"closure test: {'passed' if closure['passed'] else 'FAILED'} ({closure_ref})")

    unfolded = open_dataset(archive, DATASET)
    truth = open_dataset(archive, f"{DATASET}-truth")
    h = histogram(unfolded, OBSERVABLE, BINS, where=SELECTION)
    h_truth = histogram(truth, OBSERVABLE, BINS, where=SELECTION)
    cmp = compare(h, h_truth)
    with tempfile.TemporaryDirectory() as tmp:
        png = h.plot(Path(tmp) / "tau21_trackj1.png", prediction=h_truth)
        js = Path(tmp) / "tau21_trackj1.json"
        js.write_text(json.dumps(h.to_dict(), indent=1, sort_keys=True), encoding="utf-8")
        reinterpretation = _result(
            archive, "zjets-omnifold-tau21", "Reinterpretation: tau21 of the leading track jet",
            [(png, "plot", "image/png"), (js, "table", "application/json")],
            {"type": "comparison", "produced_by": run.record.ref,
             "inputs": [unfolded.record.ref, truth.record.ref], "observable": OBSERVABLE, "selection": SELECTION,
             "statistics": {"chi2": float(cmp.chi2), "ndf": float(cmp.ndf), "p_value": float(cmp.p_value)},
             "passed": bool(cmp.p_value > 0.01)},
            "A derived observable the measurement never binned, histogrammed from the archived unbinned data "
            "with every weight family's uncertainty and compared with the particle-level truth.",
        )
    say(f"reinterpretation {OBSERVABLE} with {SELECTION}: chi2/ndf = {cmp.chi2:.2f}/{cmp.ndf}, "
        f"p = {cmp.p_value:.3f} ({reinterpretation})")
    atlas_ref = _atlas_export(archive, f"dataset/{DATASET}@1.0.0", run.record.ref)
    published: dict[str, Any] = {"skipped": "no image: the steps ran on the local backend"}
    if image is not None:
        members = [f"dataset/{DATASET}@1.0.0", f"dataset/{DATASET}-truth@1.0.0",
                   f"dataset/{DATASET}-altprior@1.0.0",
                   *[f"model/{n}@1.0.0" for n in _model_names(archive)],
                   recipe.ref, image, run.record.ref, closure_ref, reinterpretation, atlas_ref]
        published = _release(archive, members, run.record.ref, say)
    problems = validate_archive(archive)
    report = verify_archive(archive)
    ok = not problems and report.ok and bool(closure["passed"])
    return {
        "archive": str(archive.root),
        "source": str(src),
        "run": run.record.ref,
        "steps_executed": run.executed, "steps_cached": run.cached,
        "records": {**stored["records"], "recipe": recipe.ref, "closure": closure_ref,
                    "reinterpretation": reinterpretation},
        "skipped": stored["skipped"],
        "closure": {"passed": closure["passed"],
                    "p_values": {k: round(float(v["p_value"]), 4) for k, v in closure["observables"].items()}},
        "reinterpretation": {"observable": OBSERVABLE, "selection": SELECTION, "chi2": round(float(cmp.chi2), 3),
                             "ndf": cmp.ndf, "p_value": round(float(cmp.p_value), 4)},
        "atlas_layout": atlas_ref, "image": image, "container_definition": str(definition.relative_to(archive.root)),
        "publish": published,
        "validate": "ok" if not problems else [str(p) for p in problems],
        "verify": report.counts(),
        "rerun": f"hep-archive --root {archive.root} rerun {run.record.ref}",
        "seconds": round(time.perf_counter() - started, 1),
        "ok": ok,
    }
