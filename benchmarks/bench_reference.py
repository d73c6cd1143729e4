"""Reference chain: whole-file FastJet clustering (awkward interface) vs a per-event loop (classic interface).

Both cluster the same charged particles of a generated particle-level file with anti-kT R = 0.4 and keep jets
above 10 GeV; the baseline loops over events in Python with ``fastjet._swig`` (one ClusterSequence per event),
the measured path is the one ``archive.reference.reco`` uses (one call for the file). Reports the ratio and
checks that both find the same jets. Writes ``benchmarks/results/bench_reference.json``.

    .venv/bin/python benchmarks/bench_reference.py [--events 600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _particles(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["ch_pt", "ch_eta", "ch_phi"])
    col = t.column("ch_pt").combine_chunks()
    return (col.offsets.to_numpy(), col.values.to_numpy().astype(np.float64),
            t.column("ch_eta").combine_chunks().values.to_numpy().astype(np.float64),
            t.column("ch_phi").combine_chunks().values.to_numpy().astype(np.float64))


def per_event(offsets: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> list[float]:
    import fastjet._swig as fj

    from archive.reference._observables import PION_MASS

    jdef = fj.JetDefinition(fj.antikt_algorithm, 0.4)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + PION_MASS**2)
    out: list[float] = []
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        parts = [fj.PseudoJet(float(px[k]), float(py[k]), float(pz[k]), float(e[k])) for k in range(a, b)]
        cs = fj.ClusterSequence(parts, jdef)
        out.extend(sorted((j.pt() for j in cs.inclusive_jets(10.0)), reverse=True))
    return out


def whole_file(offsets: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> list[float]:
    import awkward as ak
    import fastjet

    from archive.reference._observables import PION_MASS

    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + PION_MASS**2)
    arr = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D"), np.diff(offsets))
    cs = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4))
    jets = cs.inclusive_jets(min_pt=10.0)
    jpt = np.hypot(jets.px, jets.py)
    return [float(v) for ev in ak.to_list(ak.sort(jpt, ascending=False)) for v in ev]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from archive.reference._common import quiet_stdout
    from archive.reference.chain import reference_cards
    from archive.reference.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = generate(reference_cards(ROOT) / "generator.yaml", "sim", args.events, 1, Path(tmp) / "p.parquet")
        gen_s = time.perf_counter() - t0
        offsets, pt, eta, phi = _particles(path)
    with quiet_stdout():
        ref, new = per_event(offsets, pt, eta, phi), whole_file(offsets, pt, eta, phi)  # warm-up + equality
    assert len(ref) == len(new) and np.allclose(ref, new, rtol=1e-9), "both paths must find the same jets"
    base, fast = [], []
    for _ in range(args.repeat):  # interleaved, so load changes affect both
        with quiet_stdout():
            t = time.perf_counter()
            per_event(offsets, pt, eta, phi)
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            whole_file(offsets, pt, eta, phi)
            fast.append(time.perf_counter() - t)
    result = {
        "benchmark": "bench_reference", "events": args.events, "particles": len(pt), "jets": len(new),
        "baseline": "per-event fastjet._swig ClusterSequence loop", "measured": "whole-file awkward ClusterSequence",
        "baseline_s_median": float(np.median(base)), "measured_s_median": float(np.median(fast)),
        "speedup_ratio": float(np.median(base) / np.median(fast)),
        "pythia_events_per_s": args.events / gen_s,
    }
    out = ROOT / "benchmarks" / "results" / "bench_reference.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
