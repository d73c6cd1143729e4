"""Step 2: a parametric fast detector simulation of muons and tracks, driven by a YAML card.

``python -m archive.reference.detsim --card cards/detector.yaml --input sim_particles.parquet --seed 11
--variation nominal --output sim_detector.parquet``

Reads the particle level written by :mod:`~archive.reference.generate` and writes the same layout (``event``,
``weight_mc``, ``mu_*``, ``ch_*``) for the reconstructed muons and tracks. ``--variation NAME`` applies one of
the card's ``variations`` (dotted-path overrides). Random numbers depend only on the seed and the particle's
position in the file, so all variations see the same draws (coherent systematic shifts).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archive.errors import ValidationError
from archive.reference._common import (
    StepTimer,
    add_common_arguments,
    file_sha256,
    load_card,
    run_main,
    write_parquet,
    write_provenance,
)

__all__ = ["apply_variation", "main", "simulate", "variations"]


def variations(card: dict[str, Any]) -> list[str]:
    """Names of the systematic variations a card declares."""
    var = card.get("variations") or {}
    return list(var) if isinstance(var, dict) else []


def apply_variation(card: dict[str, Any], name: str, *, card_file: str | None = None) -> dict[str, Any]:
    """The card with variation ``name`` applied (``nominal`` returns a copy of the card)."""
    out = copy.deepcopy(card)
    if name == "nominal":
        return out
    declared = card.get("variations") or {}
    if name not in declared:
        raise ValidationError(f"unknown variation {name!r}; the card declares {sorted(declared)} and nominal",
                              file=card_file, field="variations")
    for dotted, value in declared[name].items():
        node = out
        keys = str(dotted).split(".")
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise ValidationError(f"override path {dotted!r} does not exist in the card", file=card_file,
                                      field=f"variations.{name}")
            node = node[key]
        if keys[-1] not in node:
            raise ValidationError(f"override path {dotted!r} does not exist in the card", file=card_file,
                                  field=f"variations.{name}")
        node[keys[-1]] = value
    return out


def _number(section: dict[str, Any], path: str, card_file: str) -> float:
    node: Any = section
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ValidationError("missing parameter in the detector card", file=card_file, field=path)
        node = node[key]
    if not isinstance(node, int | float) or isinstance(node, bool) or not np.isfinite(node):
        raise ValidationError(f"must be a finite number, got {node!r}", file=card_file, field=path)
    return float(node)


def _smear(pt: np.ndarray, z: np.ndarray, scale: float, constant: float, slope: float) -> np.ndarray:
    sigma = np.sqrt(constant**2 + (slope * pt) ** 2)
    return np.asarray(pt * scale * np.maximum(1.0 + sigma * z, 0.05))


def _collection(table: Any, prefix: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    col = table.column(f"{prefix}_pt").combine_chunks()
    offsets = col.offsets.to_numpy()
    values = {name: table.column(f"{prefix}_{name}").combine_chunks().values.to_numpy()
              for name in ("pt", "eta", "phi", "charge")}
    return offsets, values


def _rebuild(offsets: np.ndarray, keep: np.ndarray, values: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    import pyarrow as pa

    n_events = len(offsets) - 1
    event_of = np.repeat(np.arange(n_events), np.diff(offsets))
    counts = np.bincount(event_of[keep], minlength=n_events)
    new_offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    out: dict[str, Any] = {}
    for name, arr in values.items():
        out[f"{prefix}_{name}"] = pa.ListArray.from_arrays(new_offsets, pa.array(arr[keep]))
    return out


def simulate(card: dict[str, Any], particles: Path, seed: int, output: Path, *, card_file: str = "card",
             metadata: dict[str, str] | None = None) -> Path:
    """Apply the (already varied) detector ``card`` to a particle-level file and write the detector level."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(particles)
    except Exception as exc:
        raise ValidationError(f"cannot read particle-level Parquet ({exc})", file=str(particles)) from exc
    for needed in ("event", "weight_mc", "mu_pt", "ch_pt"):
        if needed not in table.column_names:
            raise ValidationError(f"missing column {needed!r}; is this a generate output?", file=str(particles))
    mu_off, mu = _collection(table, "mu")
    ch_off, ch = _collection(table, "ch")
    # independent streams for muons and tracks: adding a track never changes the muon draws
    rng_mu = np.random.default_rng([seed, 1])
    rng_ch = np.random.default_rng([seed, 2])
    mu_u, mu_z = rng_mu.random(len(mu["pt"])), rng_mu.standard_normal(len(mu["pt"]))
    ch_u, ch_z = rng_ch.random(len(ch["pt"])), rng_ch.standard_normal(len(ch["pt"]))

    m = card.get("muon") or {}
    mu_pt = _smear(mu["pt"].astype(np.float64), mu_z, _number(m, "scale", card_file),
                   _number(m, "resolution.constant", card_file), _number(m, "resolution.slope", card_file))
    mu_keep = ((mu_u < _number(m, "efficiency", card_file))
               & (mu_pt > _number(m, "acceptance.min_pt", card_file))
               & (np.abs(mu["eta"]) < _number(m, "acceptance.max_abs_eta", card_file)))
    t = card.get("tracks") or {}
    ch_pt = _smear(ch["pt"].astype(np.float64), ch_z, _number(t, "scale", card_file),
                   _number(t, "resolution.constant", card_file), _number(t, "resolution.slope", card_file))
    central = np.abs(ch["eta"]) < _number(t, "efficiency.eta_boundary", card_file)
    eff = np.where(central, _number(t, "efficiency.central", card_file), _number(t, "efficiency.forward", card_file))
    eff = eff * _number(t, "efficiency_scale", card_file)
    ch_keep = ((ch_u < eff) & (ch_pt > _number(t, "acceptance.min_pt", card_file))
               & (np.abs(ch["eta"]) < _number(t, "acceptance.max_abs_eta", card_file)))

    mu_out = dict(mu, pt=mu_pt.astype(np.float32))
    ch_out = dict(ch, pt=ch_pt.astype(np.float32))
    columns: dict[str, Any] = {
        "event": table.column("event").to_numpy(),
        "weight_mc": table.column("weight_mc").to_numpy(),
        **_rebuild(mu_off, mu_keep, mu_out, "mu"),
        **_rebuild(ch_off, ch_keep, ch_out, "ch"),
    }
    return write_parquet(output, columns, metadata=metadata)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archive.reference.detsim", description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="detector card (YAML)")
    parser.add_argument("--input", type=Path, required=True, help="particle-level Parquet from generate")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--variation", default="nominal", help="nominal or a variation declared in the card")
    parser.add_argument("--output", type=Path, required=True)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    timer = StepTimer()
    card = load_card(args.card)
    varied = apply_variation(card, args.variation, card_file=str(args.card))
    meta = {"step": "detsim", "variation": args.variation, "seed": str(args.seed),
            "card": file_sha256(args.card), "input": file_sha256(args.input)}
    simulate(varied, args.input, args.seed, args.output, card_file=str(args.card), metadata=meta)
    write_provenance(args.output, step="detsim", inputs=[args.card, args.input], outputs=[args.output],
                     parameters={"seed": args.seed, "variation": args.variation},
                     device_requested=args.device, device_used="cpu", seconds=timer.seconds())


if __name__ == "__main__":
    raise SystemExit(run_main(main, None))
