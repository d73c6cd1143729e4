"""The reference archive built by ``hep-archive demo`` (the README's main job).

1. Record the reference recipe (``recipes/zjets-omnifold``) and run it through the re-execution engine:
   Pythia 8 generation, the parametric detector simulation, FastJet reconstruction of the 24 ATLAS Z+jets
   observables, MultiFold unfolding in torch with ONNX export, and the closure test. The engine writes the
   run record (host, packages, devices, every input and output digest) and caches every step by content.
2. Store what the run produced: the unfolded pseudo-data as a self-describing dataset with all its weight
   families, its particle-level truth, the alternative-prior unfolding, and the step-2 networks as ONNX
   model records with reference vectors.
3. Reinterpret: a derived observable that was never binned (tau21 of the leading track jet, with a
   selection), with every weight family's uncertainty, compared with the known truth (chi2 with the full
   covariance), plotted, and kept as a ``result`` record next to the closure test.
4. ``validate`` and ``verify`` the whole archive.

The steps run on the engine's ``local`` backend, which records the host environment instead of an image:
the chain's image (``containers/zjets-omnifold/Containerfile``) needs a registry to build, which these
machines cannot reach. ``hep-archive rerun RUN`` re-executes the recorded run and compares every output.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive._archive import Archive, init_archive
from archive.catalog import validate_archive
from archive.errors import ImmutableError
from archive.integrity import verify_archive
from archive.reference.chain import DEFAULT_EVENTS as DEMO_EVENTS
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
        "creators": [{"name": "hep-archive reference analysis"}], "license": "CC0-1.0",
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


def _container_definition(archive: Archive) -> str:
    """Keep the chain's image definition in the archive's ``containers/`` folder (the image itself needs a
    registry to build)."""
    import shutil

    from archive.reference._publish import RECIPE

    src = RECIPE.parents[1] / "containers" / "zjets-omnifold" / "Containerfile"
    dst = archive.root / "containers" / "zjets-omnifold" / "Containerfile"
    if src.resolve() != dst.resolve():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return str(dst.relative_to(archive.root))


def build_demo(
    output: str | Path, *, events: int = DEMO_EVENTS, device: str = "cpu", jobs: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build (or complete) the reference archive at ``output`` and return a summary."""
    from archive.datasets import open_dataset
    from archive.execution import run_recipe
    from archive.recipe import add_recipe
    from archive.reference._publish import DATASET, RECIPE, store_results
    from archive.reinterpret import compare, histogram

    say = log or (lambda line: None)
    started = time.perf_counter()
    out = Path(output)
    archive = Archive(out) if (out / "archive.yaml").exists() else init_archive(out, name="hep-archive-reference")
    say(f"archive root: {archive.root}")
    recipe = add_recipe(archive, RECIPE, name="zjets-omnifold", strict_images=False)
    say(f"recorded {recipe.ref}; running the chain ({events} events per sample, device {device})")
    run = run_recipe(archive, recipe.ref, parameters={"events": events, "jobs": jobs,
                                                      "device": "cuda" if device == "gpu" else "cpu"},
                     backend="local", device=device)
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
        stored = store_results(archive, work, events=events)
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
    definition = _container_definition(archive)
    problems = validate_archive(archive)
    report = verify_archive(archive)
    ok = not problems and report.ok and bool(closure["passed"])
    return {
        "archive": str(archive.root),
        "run": run.record.ref,
        "steps_executed": run.executed, "steps_cached": run.cached,
        "records": {**stored["records"], "recipe": recipe.ref, "closure": closure_ref,
                    "reinterpretation": reinterpretation},
        "skipped": stored["skipped"],
        "closure": {"passed": closure["passed"],
                    "p_values": {k: round(float(v["p_value"]), 4) for k, v in closure["observables"].items()}},
        "reinterpretation": {"observable": OBSERVABLE, "selection": SELECTION, "chi2": round(float(cmp.chi2), 3),
                             "ndf": cmp.ndf, "p_value": round(float(cmp.p_value), 4)},
        "atlas_layout": atlas_ref, "container_definition": definition,
        "validate": "ok" if not problems else [str(p) for p in problems],
        "verify": report.counts(),
        "rerun": f"hep-archive --root {archive.root} rerun {run.record.ref}",
        "seconds": round(time.perf_counter() - started, 1),
        "ok": ok,
    }
