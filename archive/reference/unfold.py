"""Step 4: MultiFold unfolding of the pseudo-data, with every weight family of the ATLAS release.

``python -m archive.reference.unfold --card cards/unfold.yaml --sim-truth sim_truth.parquet
--sim-reco sim_reco.parquet --data-reco data_reco.parquet --variation muCalScale=sim_reco_muCalScale.parquet
--seed 7 --output unfolded.parquet --models models/``

Output: one row per simulated event passing the particle-level selection, with ``event``, the 24 observables,
``weight_mc`` and ``weights_nominal`` (mean over the ensemble), ``weights_ensemble_{i}``,
``weights_bootstrap_data_{i}``, ``weights_bootstrap_mc_{i}`` and ``weights_<variation>`` (absolute, fb, MC
weight included); ``<output>.families.json`` declares the weight families (dataset contract); ``--models``
receives the last iteration's step-2 network of every ensemble member as ONNX with reference vectors.
Every training is seeded; the result does not depend on ``--jobs``.
"""

from __future__ import annotations

import argparse
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.reference._common import (
    OBSERVABLES,
    StepTimer,
    add_common_arguments,
    file_sha256,
    load_card,
    read_parquet,
    resolve_device,
    run_main,
    write_json,
    write_parquet,
    write_provenance,
)

__all__ = ["UnfoldSettings", "main", "unfold", "weight_families"]


@dataclass(frozen=True)
class UnfoldSettings:
    """What to run; ``variations`` maps a systematic name to its detector-level file of the simulation."""

    sim_truth: Path
    sim_reco: Path
    data_reco: Path
    variations: dict[str, Path] = field(default_factory=dict)
    iterations: int = 2
    ensemble: int = 4
    bootstrap_data: int = 5
    bootstrap_mc: int = 5
    seed: int = 7
    threads: int = 1
    device: str = "cpu"
    network: dict[str, Any] = field(default_factory=dict)
    onnx_opset: int = 17
    reference_events: int = 32
    data_driven: bool = True


_CACHE: dict[tuple[str, ...], Any] = {}


def _load(settings: UnfoldSettings) -> dict[str, Any]:
    def stamp(path: Path) -> str:  # a rewritten file (same path, new content) must not hit the cache
        st = path.stat() if path.is_file() else None
        return f"{path}:{st.st_mtime_ns}:{st.st_size}" if st else str(path)

    key = (stamp(settings.sim_truth), stamp(settings.sim_reco), stamp(settings.data_reco),
           *sorted(f"{k}={stamp(v)}" for k, v in settings.variations.items()))
    if key in _CACHE:
        return dict(_CACHE[key])
    cols = [*OBSERVABLES, "pass", "weight_mc", "event"]
    truth = read_parquet(settings.sim_truth, cols)
    reco = read_parquet(settings.sim_reco, cols)
    data = read_parquet(settings.data_reco, cols)
    if not np.array_equal(truth["event"], reco["event"]):
        raise ValidationError("simulation particle- and detector-level files are not row-aligned (event column "
                              "differs); run reco on the same generated sample", file=str(settings.sim_reco))
    variants = {}
    for name, path in settings.variations.items():
        v = read_parquet(path, cols)
        if not np.array_equal(v["event"], truth["event"]):
            raise ValidationError(f"variation {name} is not row-aligned with the simulation", file=str(path))
        variants[name] = v
    loaded = {"truth": truth, "reco": reco, "data": data, "variants": variants}
    _CACHE.clear()
    _CACHE[key] = loaded
    return loaded


def _matrix(cols: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([cols[name].astype(np.float64) for name in OBSERVABLES], axis=1)


def _run_task(args: tuple[UnfoldSettings, str, str, Path | None], dd_weights: np.ndarray | None = None
              ) -> dict[str, Any]:
    """One complete unfolding (one weight column); ``dd_weights`` (family ``dd``) reweight the simulation into
    the pseudo-data of the data-driven non-closure test."""
    from archive.reference._omnifold import NetworkConfig, Standardiser, UnfoldingInputs, multifold, set_determinism

    settings, family, member, models = args
    set_determinism(settings.threads)
    d = _load(settings)
    truth, reco, data = d["truth"], d["reco"], d["data"]
    net = settings.network
    config = NetworkConfig(hidden=tuple(int(h) for h in net.get("hidden", (64, 64))),
                           epochs=int(net.get("epochs", 12)), batch_size=int(net.get("batch_size", 256)),
                           learning_rate=float(net.get("learning_rate", 0.002)),
                           logit_clip=float(net.get("logit_clip", 8.0)))
    x_truth, x_reco = _matrix(truth), _matrix(reco)
    pass_truth, pass_reco = truth["pass"].astype(bool), reco["pass"].astype(bool)
    # preprocessing fixed by the nominal simulation, the same for every replica and variation
    reco_scaler = Standardiser.fit(x_reco[pass_reco])
    truth_scaler = Standardiser.fit(x_truth[pass_truth])
    w_sim = truth["weight_mc"].astype(np.float64)
    data_pass = data["pass"].astype(bool)
    x_data = _matrix(data)[data_pass]
    w_data = data["weight_mc"].astype(np.float64)[data_pass]
    seed = settings.seed
    if family == "ensemble":
        train_seed = seed + int(member)
    elif family == "bootstrap_data":
        k = int(member)
        train_seed = seed + 100 + k
        w_data = w_data * np.random.default_rng([seed, 1, k]).poisson(1.0, len(w_data))
    elif family == "bootstrap_mc":
        k = int(member)
        train_seed = seed + 200 + k
        w_sim = w_sim * np.random.default_rng([seed, 2, k]).poisson(1.0, len(w_sim))
    elif family == "dd":  # the simulation, reweighted by the nominal result, plays the data
        if dd_weights is None:
            raise ValidationError("the data-driven non-closure needs the nominal weights", field="dd")
        train_seed = seed + 300
        x_data, w_data = x_reco[pass_reco], (w_sim * dd_weights)[pass_reco]
    else:  # systematic: the varied detector response, same training seed as ensemble member 0
        train_seed = seed
        var = d["variants"][member]
        x_reco, pass_reco = _matrix(var), var["pass"].astype(bool)
    inputs = UnfoldingInputs(sim_reco=x_reco, sim_truth=x_truth, sim_pass_reco=pass_reco,
                             sim_pass_truth=pass_truth, sim_weight=w_sim, data_reco=x_data, data_weight=w_data,
                             reco_scaler=reco_scaler, truth_scaler=truth_scaler)
    device = resolve_device(settings.device)
    nu, net2, norm2 = multifold(inputs, iterations=settings.iterations, seed=train_seed, config=config,
                                device=device)
    result: dict[str, Any] = {"family": family, "member": member, "weights": (w_sim * nu)[pass_truth],
                              "nu": nu if family == "ensemble" else None, "device": device}
    if models is not None:
        from archive.reference._export import export_step2

        ref = x_truth[pass_truth][: settings.reference_events]
        result["model"] = export_step2(
            net2, mean=truth_scaler.mean, std=truth_scaler.std, norm=norm2, clip=config.logit_clip,
            path=models / f"step2_ensemble{member}.onnx", reference_inputs=ref, opset=settings.onnx_opset,
            info={"name": f"zjets-omnifold-step2-ensemble{member}", "iteration": settings.iterations,
                  "step": 2, "ensemble_member": int(member), "training_seed": train_seed,
                  "architecture": {"kind": "MLP", "hidden": list(config.hidden), "activation": "GELU"}},
        )
    return result


def weight_families(ensemble: int, bootstrap_data: int, bootstrap_mc: int, systematics: Sequence[str], *,
                    data_driven: bool = True) -> list[dict[str, Any]]:
    """The weight families of the output, in the dataset contract's ``WeightFamily`` shape (empty ones left out)."""
    norm = {"kind": "absolute", "unit": "fb"}
    fams: list[dict[str, Any]] = [
        {"name": "prior", "type": "prior", "columns": ["weight_mc"], "combination": {"rule": "sum_w2"},
         "normalisation": norm, "includes_mc_weight": True, "description": "simulation prior (Pythia 8 Monash)"},
        {"name": "nominal", "type": "nominal", "columns": ["weights_nominal"], "combination": {"rule": "sum_w2"},
         "normalisation": norm, "includes_mc_weight": True,
         "description": "unfolded result: mean over the ensemble of push weights times weight_mc"},
        {"name": "ensemble", "type": "ensemble", "pattern": "weights_ensemble_{i}", "index_range": [0, ensemble],
         "combination": {"rule": "sem_median_ensemble", "ddof": 1, "factor": 1.0}, "normalisation": norm,
         "includes_mc_weight": True,
         "description": "independent trainings; the nominal is their mean, so sigma = std / sqrt(N)"},
        {"name": "bootstrap_data", "type": "bootstrap_data", "pattern": "weights_bootstrap_data_{i}",
         "index_range": [0, bootstrap_data], "combination": {"rule": "std_replicas", "ddof": 1},
         "normalisation": norm, "includes_mc_weight": True, "description": "pseudo-data Poisson(1) bootstrap"},
        {"name": "bootstrap_mc", "type": "bootstrap_mc", "pattern": "weights_bootstrap_mc_{i}",
         "index_range": [0, bootstrap_mc], "combination": {"rule": "std_replicas", "ddof": 1},
         "normalisation": norm, "includes_mc_weight": True,
         "description": "simulation Poisson(1) bootstrap (the factor is included in the weight)"},
    ]
    fams = [f for f in fams if "index_range" not in f or f["index_range"][1] > 0]
    if data_driven:
        fams.append({"name": "unfolding_dd", "type": "paired", "pairs": [["weights_dd", "target_dd"]],
                     "combination": {"rule": "paired_closure"}, "normalisation": norm, "includes_mc_weight": True,
                     "description": "data-driven non-closure: the simulation reweighted by the nominal result "
                                    "(target_dd) unfolded with the original prior (weights_dd)"})
    if systematics:
        fams.append({"name": "detector", "type": "systematic", "columns": [f"weights_{s}" for s in systematics],
                     "combination": {"rule": "quadrature_diff"}, "normalisation": norm, "includes_mc_weight": True,
                     "description": "detector-card variations re-unfolded; nominal x (nu_var / nu_member0), "
                                    "same training seed, so training noise cancels in the difference"})
    return fams


def unfold(settings: UnfoldSettings, output: Path, *, models: Path | None, jobs: int = 1) -> dict[str, Any]:
    """Run every unfolding and write the weights table, the families sidecar and the ONNX models."""
    for name in settings.variations:
        if not name.isidentifier():
            raise ValidationError(f"variation name {name!r} must be an identifier", field="--variation")
    if settings.ensemble < 1 or settings.iterations < 1:
        raise ValidationError("ensemble and iterations must be at least 1", field="ensemble")
    tasks: list[tuple[UnfoldSettings, str, str, Path | None]] = []
    tasks += [(settings, "ensemble", str(e), models) for e in range(settings.ensemble)]
    tasks += [(settings, "bootstrap_data", str(k), None) for k in range(settings.bootstrap_data)]
    tasks += [(settings, "bootstrap_mc", str(k), None) for k in range(settings.bootstrap_mc)]
    tasks += [(settings, "systematic", name, None) for name in sorted(settings.variations)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_run_task, tasks))
    else:
        results = [_run_task(t) for t in tasks]
    nu_nominal = np.mean([r["nu"] for r in results if r["family"] == "ensemble"], axis=0)
    dd = _run_task((settings, "dd", "0", None), dd_weights=nu_nominal) if settings.data_driven else None
    d = _load(settings)
    truth = d["truth"]
    pass_truth = truth["pass"].astype(bool)
    columns: dict[str, Any] = {"event": truth["event"][pass_truth]}
    columns.update({name: truth[name][pass_truth] for name in OBSERVABLES})
    columns["weight_mc"] = truth["weight_mc"][pass_truth].astype(np.float32)
    ens = [r["weights"] for r in results if r["family"] == "ensemble"]
    nominal = np.mean(ens, axis=0)
    columns["weights_nominal"] = nominal.astype(np.float32)
    member0 = ens[0]
    for r in results:
        if r["family"] == "systematic":
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(member0 > 0, r["weights"] / member0, 1.0)
            columns[f"weights_{r['member']}"] = (nominal * ratio).astype(np.float32)
        else:
            columns[f"weights_{r['family']}_{r['member']}"] = r["weights"].astype(np.float32)
    # data-driven non-closure (ATLAS weights_dd / target_dd): unfold the simulation reweighted by the nominal
    # result with the original prior; its truth is the reweighted particle level
    if dd is not None:
        columns["weights_dd"] = dd["weights"].astype(np.float32)
        columns["target_dd"] = (truth["weight_mc"].astype(np.float64) * nu_nominal)[pass_truth].astype(np.float32)
    meta = {"step": "unfold", "seed": str(settings.seed), "iterations": str(settings.iterations)}
    write_parquet(output, columns, metadata=meta)
    fams = weight_families(settings.ensemble, settings.bootstrap_data, settings.bootstrap_mc,
                           sorted(settings.variations), data_driven=dd is not None)
    write_json(output.with_name(output.name + ".families.json"), {"weight_families": fams})
    return {"rows": int(pass_truth.sum()), "columns": len(columns), "unfoldings": len(results) + (dd is not None),
            "device_used": results[0]["device"], "sum_weights_nominal_fb": float(nominal.sum()),
            "models": [r["model"] for r in results if "model" in r]}


def settings_from_card(card_path: Path, args: argparse.Namespace) -> UnfoldSettings:
    card = load_card(card_path)
    variations: dict[str, Path] = {}
    for item in args.variation or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise ValidationError(f"--variation {item!r} must be NAME=PATH", field="--variation")
        variations[name] = Path(path)

    def pick(name: str, default: int) -> int:
        value = getattr(args, name)
        chosen = card.get(name, default) if value is None else value
        if not isinstance(chosen, int) or chosen < 0:
            raise ValidationError(f"{name} must be a non-negative integer", file=str(card_path), field=name)
        return chosen

    net = card.get("network") or {}
    allowed = {"hidden", "epochs", "batch_size", "learning_rate", "logit_clip"}
    if not isinstance(net, dict) or set(net) - allowed:
        raise ValidationError(f"network keys must be among {sorted(allowed)}", file=str(card_path), field="network")
    onnx_cfg = card.get("onnx") or {}
    return UnfoldSettings(
        sim_truth=args.sim_truth, sim_reco=args.sim_reco, data_reco=args.data_reco, variations=variations,
        iterations=pick("iterations", 2), ensemble=pick("ensemble", 4), bootstrap_data=pick("bootstrap_data", 5),
        bootstrap_mc=pick("bootstrap_mc", 5), seed=args.seed, threads=args.threads, device=args.device,
        network=dict(net), onnx_opset=int(onnx_cfg.get("opset", 17)),
        reference_events=int(onnx_cfg.get("reference_events", 32)), data_driven=not args.no_data_driven,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archive.reference.unfold", description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="unfolding card (YAML)")
    parser.add_argument("--sim-truth", type=Path, required=True, help="reco output of the simulation, particle level")
    parser.add_argument("--sim-reco", type=Path, required=True, help="reco output of the simulation, detector level")
    parser.add_argument("--data-reco", type=Path, required=True, help="reco output of the pseudo-data, detector level")
    parser.add_argument("--variation", action="append", help="NAME=PATH detector-level variant of the simulation")
    parser.add_argument("--seed", type=int, required=True)
    for name in ("iterations", "ensemble", "bootstrap_data", "bootstrap_mc"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None,
                            help="override the card")
    parser.add_argument("--no-data-driven", action="store_true",
                        help="skip the data-driven non-closure unfolding (weights_dd / target_dd)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (output does not depend on it)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=None, help="directory for the ONNX step-2 networks")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    timer = StepTimer()
    settings = settings_from_card(args.card, args)
    summary = unfold(settings, args.output, models=args.models, jobs=args.jobs)
    outs = [args.output, args.output.with_name(args.output.name + ".families.json")]
    if args.models is not None:
        outs += sorted(args.models.glob("step2_ensemble*"))
    ins = [args.card, args.sim_truth, args.sim_reco, args.data_reco, *settings.variations.values()]
    write_provenance(args.output, step="unfold", inputs=ins, outputs=outs,
                     parameters={"seed": args.seed, "iterations": settings.iterations, "ensemble": settings.ensemble,
                                 "bootstrap_data": settings.bootstrap_data, "bootstrap_mc": settings.bootstrap_mc,
                                 "variations": sorted(settings.variations), "threads": args.threads,
                                 "jobs": args.jobs, "summary": summary, "card": file_sha256(args.card)},
                     device_requested=args.device, device_used=summary["device_used"], seconds=timer.seconds())


if __name__ == "__main__":
    raise SystemExit(run_main(main, None))
