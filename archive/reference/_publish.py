"""Store the reference chain's results in an archive root with the other layers' APIs (phase 2).

The chain runs in a work folder; the unfolded events become a dataset (weight families declared), every
exported step-2 network a model record with its reference vectors, and the recipe is recorded when its
container is in the archive. ``validate`` and ``verify`` run at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ObjectNotFoundError
from archive.reference._common import OBSERVABLES

__all__ = ["store_results"]

DATASET = "zjets-omnifold-pseudodata"
_UNITS = {"pT": "GeV", "m": "GeV"}
_ENVELOPE = {
    "creators": [{"name": "hep-archive developers"}],
    "license": "CC0-1.0",
    "keywords": ["Z+jets", "muon", "OmniFold", "unfolding", "track jets", "pseudo-data"],
}


def _unit(name: str) -> str | None:
    return _UNITS.get(name.split("_", 1)[0])


def _binnings(cards: Path) -> dict[str, Any]:
    """The official binnings: the closure-test bins of the validate card, for the observables that are columns
    (derived ones such as tau21 are computed by whoever histograms them)."""
    from archive.schema._yaml import load_yaml_file

    card = cards / "validate.yaml"
    if not card.is_file():
        raise ObjectNotFoundError("the validate card (closure-test binnings) is missing; pass cards=, the "
                                  "recipe's cards folder the chain ran with", file=str(card))
    closure = (load_yaml_file(card, source=str(card)) or {}).get("closure") or {}
    return {name: {"edges": [float(e) for e in edges], "source": "closure-test bins (cards/validate.yaml)"}
            for name, edges in closure.items() if name in OBSERVABLES}


def _add_dataset(archive: Any, work: Path, events: int, binnings: dict[str, Any]) -> str:
    from archive.datasets import ingest

    fams = json.loads((work / "unfolded.parquet.families.json").read_text(encoding="utf-8"))["weight_families"]
    meta = {
        **_ENVELOPE,
        "title": "Z(->mu mu)+jets MultiFold unfolding of pseudo-data (hep-archive reference analysis)",
        "description": (f"Unfolded pseudo-data from {events} generated events per sample: one row per simulated "
                        "event passing the particle-level fiducial selection, the 24 observables of the ATLAS "
                        "Z+jets OmniFold measurement and every weight family (absolute, fb)."),
        "weights": fams,
        "binnings": binnings,
    }
    record = ingest(archive, [work / "unfolded.parquet"], name=DATASET, version="1.0.0", metadata=meta)
    return str(record.ref)


def _add_altprior(archive: Any, work: Path, events: int) -> str:
    """The same pseudo-data unfolded with the alternative prior (like the release's multifold_sherpa.h5)."""
    from archive.datasets import ingest

    fams = json.loads((work / "unfolded_altprior.parquet.families.json").read_text(encoding="utf-8"))
    meta = {
        **_ENVELOPE,
        "title": "Z(->mu mu)+jets pseudo-data unfolded with the alternative prior (hep-archive reference analysis)",
        "description": (f"The pseudo-data ({events} generated events) unfolded with Pythia 8 tune 4C as the prior: "
                        "|h - h_nominal| is the unfolding-model (hidden-variable) uncertainty."),
        "weights": fams["weight_families"],
    }
    record = ingest(archive, [work / "unfolded_altprior.parquet"], name=f"{DATASET}-altprior", version="1.0.0",
                    metadata=meta)
    return str(record.ref)


def _add_truth(archive: Any, work: Path, events: int) -> str:
    """The pseudo-data's particle level in the fiducial region (the closure truth, like the release's target.h5)."""
    from archive.datasets import ingest
    from archive.reference._common import read_parquet, write_parquet

    cols = read_parquet(work / "data_truth.parquet", ["event", *OBSERVABLES, "weight_mc", "pass"])
    sel = cols.pop("pass").astype(bool)
    path = write_parquet(work / "target.parquet", {k: v[sel] for k, v in cols.items()})
    meta = {
        **_ENVELOPE,
        "title": "Z(->mu mu)+jets pseudo-data truth (hep-archive reference analysis)",
        "description": (f"Particle level of the pseudo-data ({events} generated events) in the fiducial region: "
                        "the known truth the unfolded dataset is compared with in the closure test."),
        "weights": [{"name": "truth", "type": "nominal", "columns": ["weight_mc"],
                     "combination": {"rule": "sum_w2"}, "normalisation": {"kind": "absolute", "unit": "fb"},
                     "includes_mc_weight": True, "description": "generator weight, sigma_gen / N"}],
    }
    record = ingest(archive, [path], name=f"{DATASET}-truth", version="1.0.0", metadata=meta)
    return str(record.ref)


def _add_models(archive: Any, work: Path, dataset_ref: str) -> list[str]:
    from archive.models import add_model

    refs = []
    for path in sorted((work / "models").glob("step2_ensemble*.onnx")):
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        member = int(meta["ensemble_member"])
        card = {
            **_ENVELOPE,
            "title": f"OmniFold step-2 network, iteration {meta['iteration']}, ensemble member {member}",
            "description": (f"The particle-level (step 2) reweighting network of MultiFold iteration "
                            f"{meta['iteration']}, ensemble member {member}, trained in torch and exported to ONNX. "
                            "Input: the 24 particle-level observables of an event (standardisation inside the "
                            "graph); output 'weight' is the event weight that takes the prior (Pythia 8 Monash) "
                            "to the unfolded distribution. Reference inputs and outputs are attached, so "
                            "`hep-archive model check` proves a runtime still gives the same numbers."),
            "usage": (f"hep-archive model apply zjets-omnifold-step2-e{member} DATASET --output-column w_unfold "
                      "--output weight --family systematic  (DATASET: particle-level events with the 24 observables)"),
            "model": {
                "inputs": [{"name": n, "unit": _unit(n)} for n in OBSERVABLES],
                "preprocessing": {"in_graph": True,
                                  "description": "standardisation (training mean/std) is inside the graph"},
                "outputs": [{"name": "logit", "meaning": "logit"},
                            {"name": "weight", "meaning": "weight",
                             "description": "push weight relative to the prior: exp(clip(logit)) x class-sum ratio"}],
                "omnifold": {"step": 2, "iteration": int(meta["iteration"]), "ensemble_member": member},
                "training": {"datasets": [dataset_ref], "framework": "torch 2.13.0",
                             "configuration": {"architecture": meta["architecture"],
                                               "training_seed": meta["training_seed"]}},
                "reference": {"atol": 1e-5, "rtol": 1e-4},
            },
        }
        ref = meta["reference"]
        tensors = {"input/x": np.asarray(ref["inputs"], dtype=np.float32),
                   "output/logit": np.asarray(ref["logit"], dtype=np.float32)[:, None],
                   "output/weight": np.asarray(ref["weight"], dtype=np.float32)[:, None]}
        rec = add_model(archive, path, name=f"zjets-omnifold-step2-e{member}", version="1.0.0", card=card,
                        reference=tensors, produced_by="torch 2.13.0 (cpu)")
        refs.append(str(rec.ref))
    return refs


def store_results(archive: Any, work: Path, *, events: int, cards: Path | None = None) -> dict[str, Any]:
    """Store the outputs of a finished chain run in ``work``: the datasets and the ONNX models.

    ``cards``: the recipe's cards folder the chain ran with (its ``validate.yaml`` gives the dataset's
    binnings); default ``work/../cards``, where a run's workspace keeps the recipe's inputs. A missing card
    raises ``ObjectNotFoundError`` before anything is stored.
    (The recipe and the run are recorded by the engine: see :func:`archive.demo.build_demo`.)
    Returns ``{"records": {...}, "skipped": {what: why}}``.
    """
    cards = Path(cards) if cards is not None else work.parent / "cards"
    binnings = _binnings(cards)  # before anything is stored
    records: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    dataset_ref = _add_dataset(archive, work, events, binnings)
    records["dataset"] = dataset_ref
    records["truth"] = _add_truth(archive, work, events)
    records["altprior"] = _add_altprior(archive, work, events)
    records["models"] = _add_models(archive, work, dataset_ref)
    return {"records": records, "skipped": skipped}
