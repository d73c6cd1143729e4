"""Step 1: generate pp -> Z/gamma*(-> mu mu) + jet events with Pythia 8 and write the particle level.

``python -m archive.reference.generate --card cards/generator.yaml --sample sim --events 4000 --seed 1
--output sim_particles.parquet``

Output: one row per event with ``event`` (int64), ``weight_mc`` (fb, absolute: sigma_gen / N), and jagged
``mu_pt/mu_eta/mu_phi/mu_charge`` (final-state muons) and ``ch_pt/ch_eta/ch_phi/ch_charge`` (final-state
charged particles other than muons). Events are generated in fixed-size chunks, each with its own seed
derived from ``--seed``, so the bytes do not depend on ``--jobs``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ExecutionError, ValidationError
from archive.reference._common import (
    StepTimer,
    add_common_arguments,
    file_sha256,
    load_card,
    quiet_stdout,
    run_main,
    write_parquet,
    write_provenance,
)

__all__ = ["chunk_seed", "generate", "main"]

_MAX_SEED = 900_000_000
_FB_PER_MB = 1.0e12


def chunk_seed(seed: int, chunk: int) -> int:
    """The Pythia seed of one chunk (1 .. 900,000,000, as Pythia requires)."""
    return (seed * 100_003 + chunk * 7_919) % _MAX_SEED + 1


def _settings(card: dict[str, Any], sample: str, card_path: Path) -> list[str]:
    samples = card.get("samples")
    if not isinstance(samples, dict) or sample not in samples:
        known = sorted(samples) if isinstance(samples, dict) else []
        raise ValidationError(f"no sample {sample!r} in the card; known: {known}", file=str(card_path),
                              field="samples")
    common = card.get("common", [])
    extra = samples[sample].get("settings", []) if isinstance(samples[sample], dict) else []
    settings = [*common, *extra]
    if not all(isinstance(s, str) for s in settings):
        raise ValidationError("settings must be strings like 'Beams:eCM = 13000.'", file=str(card_path),
                              field="common")
    return settings


def _generate_chunk(args: tuple[list[str], int, int, dict[str, Any]]) -> dict[str, Any]:
    settings, seed, n_events, cuts = args
    import pythia8mc

    mu_cut, ch_cut = cuts["muons"], cuts["charged"]
    with quiet_stdout():
        pythia = pythia8mc.Pythia("", False)
        for line in [*settings, "Random:setSeed = on", f"Random:seed = {seed}"]:
            if not pythia.readString(line):
                raise ValidationError(f"Pythia rejected the setting {line!r}", field="settings")
        if not pythia.init():
            raise ExecutionError("Pythia initialisation failed; check the generator card")
    mu: list[list[tuple[float, float, float, int]]] = []
    ch: list[list[tuple[float, float, float, int]]] = []
    failures = 0
    while len(mu) < n_events:
        if not pythia.next():
            failures += 1
            if failures > 100 + n_events:
                raise ExecutionError("Pythia failed to generate events repeatedly; check the generator card")
            continue
        ev_mu: list[tuple[float, float, float, int]] = []
        ev_ch: list[tuple[float, float, float, int]] = []
        for p in pythia.event:
            if not p.isFinal() or not p.isCharged():
                continue
            pt, eta = p.pT(), p.eta()
            if p.idAbs() == 13:
                if pt > mu_cut["min_pt"] and abs(eta) < mu_cut["max_abs_eta"]:
                    ev_mu.append((pt, eta, p.phi(), -1 if p.id() > 0 else 1))
            elif pt > ch_cut["min_pt"] and abs(eta) < ch_cut["max_abs_eta"]:
                ev_ch.append((pt, eta, p.phi(), round(p.charge())))
        mu.append(ev_mu)
        ch.append(ev_ch)
    sigma_fb = pythia.infoPython().sigmaGen() * _FB_PER_MB
    return {"mu": mu, "ch": ch, "sigma_fb": sigma_fb}


def _jagged(events: list[list[tuple[float, float, float, int]]], prefix: str) -> dict[str, Any]:
    import pyarrow as pa

    counts = np.fromiter((len(e) for e in events), dtype=np.int64, count=len(events))
    flat = np.array([p for e in events for p in e], dtype=np.float64).reshape(-1, 4)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    out: dict[str, Any] = {}
    for i, name in enumerate(("pt", "eta", "phi")):
        out[f"{prefix}_{name}"] = pa.ListArray.from_arrays(offsets, pa.array(flat[:, i].astype(np.float32)))
    out[f"{prefix}_charge"] = pa.ListArray.from_arrays(offsets, pa.array(flat[:, 3].astype(np.int8)))
    return out


def generate(card_path: Path, sample: str, events: int, seed: int, output: Path, *, jobs: int = 1) -> Path:
    """Generate ``events`` events of ``sample`` and write them to ``output`` (Parquet)."""
    if events <= 0:
        raise ValidationError("--events must be positive", field="--events")
    card = load_card(card_path)
    settings = _settings(card, sample, card_path)
    chunk = int(card.get("chunk_events", 250))
    cuts = card.get("particles", {"muons": {"min_pt": 5.0, "max_abs_eta": 2.7},
                                  "charged": {"min_pt": 0.4, "max_abs_eta": 2.5}})
    sizes = [min(chunk, events - start) for start in range(0, events, chunk)]
    tasks = [(settings, chunk_seed(seed, i), n, cuts) for i, n in enumerate(sizes)]
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_generate_chunk, tasks))
    else:
        results = [_generate_chunk(t) for t in tasks]
    mu = [e for r in results for e in r["mu"]]
    ch = [e for r in results for e in r["ch"]]
    # chunks are statistically independent estimates of sigma; weight them by their size
    sigma_fb = float(sum(r["sigma_fb"] * n for r, n in zip(results, sizes, strict=True)) / events)
    columns: dict[str, Any] = {
        "event": np.arange(events, dtype=np.int64),
        "weight_mc": np.full(events, sigma_fb / events, dtype=np.float64),
        **_jagged(mu, "mu"),
        **_jagged(ch, "ch"),
    }
    meta = {"step": "generate", "sample": sample, "events": str(events), "seed": str(seed),
            "sigma_fb": repr(sigma_fb), "card": file_sha256(card_path)}
    return write_parquet(output, columns, metadata=meta)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archive.reference.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="generator card (YAML)")
    parser.add_argument("--sample", required=True, help="sample name in the card (sim or data)")
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (output does not depend on it)")
    parser.add_argument("--output", type=Path, required=True)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    timer = StepTimer()
    generate(args.card, args.sample, args.events, args.seed, args.output, jobs=args.jobs)
    write_provenance(args.output, step="generate", inputs=[args.card], outputs=[args.output],
                     parameters={"sample": args.sample, "events": args.events, "seed": args.seed,
                                 "jobs": args.jobs},
                     device_requested=args.device, device_used="cpu",
                     seconds=timer.seconds())


if __name__ == "__main__":
    raise SystemExit(run_main(main, None))
