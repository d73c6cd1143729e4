"""An in-memory dataset with the DatasetLike shape and real WeightFamily records, for unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from archive.schema.v1.dataset import WeightFamily


class MemoryDataset:
    def __init__(self, data: dict[str, Any], families: list[WeightFamily], *, name: str = "mem",
                 version: str = "1.0.0", partition_rows: int = 1000, binnings: dict[str, Any] | None = None) -> None:
        self.data = data
        self.weight_families = families
        self.name = name
        self.version = version
        self.num_rows = len(next(iter(data.values())))
        self.columns = list(data)
        self.partition_rows = partition_rows
        self.reads: list[tuple[tuple[str, ...], int, int]] = []
        self.record = SimpleNamespace(dataset=SimpleNamespace(binnings=binnings or {}, variables=[]))
        self.jagged_columns: list[str] | None = None

    def partitions(self) -> list[tuple[int, int]]:
        n, step = self.num_rows, self.partition_rows
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    def read_rows(self, columns: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray]:
        self.reads.append((tuple(columns), start, stop))
        return {c: self.data[c][start:stop] for c in columns}

    def read(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        return {c: self.data[c] for c in columns}


def fam(name: str, type_: str, rule: str, *, columns: list[str] | None = None, pattern: str | None = None,
        index_range: tuple[int, int] | None = None, pairs: list[tuple[str, str]] | None = None,
        includes_mc_weight: bool = True, **comb: Any) -> WeightFamily:
    return WeightFamily.model_validate({
        "name": name, "type": type_, "columns": columns or [], "pattern": pattern, "index_range": index_range,
        "pairs": pairs, "combination": {"rule": rule, **comb},
        "normalisation": {"kind": "absolute", "unit": "fb"}, "includes_mc_weight": includes_mc_weight,
    })


N_ENS, N_BOOT, NPS = 20, 10, ("weights_pileup", "weights_muEffReco", "weights_trackEffJet", "weights_lumi")


def atlas_like(n: int = 6000, seed: int = 7, partition_rows: int = 1000) -> MemoryDataset:
    """A small dataset with the ATLAS Z+jets OmniFold layout: observables, nominal, ensemble, bootstraps, NPs."""
    rng = np.random.default_rng(seed)
    d: dict[str, np.ndarray] = {}
    d["pT_ll"] = (200 + rng.exponential(80, n)).astype(np.float32)
    d["pT_trackj1"] = rng.exponential(30, n).astype(np.float32)
    tau1 = rng.uniform(0.05, 0.6, n).astype(np.float32)
    d["tau1_trackj1"] = tau1
    d["tau2_trackj1"] = (tau1 * rng.beta(2, 3, n)).astype(np.float32)
    d["Ntracks_trackj1"] = rng.integers(1, 40, n).astype(np.int32)
    mc = rng.uniform(0.002, 0.006, n).astype(np.float32)
    d["weight_mc"] = mc
    nom = (mc * rng.normal(1.0, 0.1, n)).astype(np.float32)
    d["weights_nominal"] = nom
    for i in range(N_ENS):
        d[f"weights_ensemble_{i}"] = (nom * (1 + 0.05 * rng.normal(size=n))).astype(np.float32)
    for i in range(N_BOOT):
        d[f"weights_bootstrap_data_{i}"] = (nom * rng.poisson(1.0, n)).astype(np.float32)
        d[f"weights_bootstrap_mc_{i}"] = (nom * rng.poisson(1.0, n)).astype(np.float32)
    for j, c in enumerate(NPS):
        d[c] = (nom * (1 + 0.02 * (j + 1) * np.tanh(d["pT_ll"] / 300 - 1))).astype(np.float32)
    d["weights_dd"] = (nom * (1 + 0.03 * rng.normal(size=n))).astype(np.float32)
    d["target_dd"] = (nom * (1 + 0.03 * rng.normal(size=n))).astype(np.float32)
    d["weights_alt"] = (nom * (1.1 - 0.2 * tau1)).astype(np.float32)
    d["reweight_factor"] = rng.normal(1.0, 0.05, n).astype(np.float32)
    families = [
        fam("prior", "prior", "none", columns=["weight_mc"]),
        fam("nominal", "nominal", "sum_w2", columns=["weights_nominal"]),
        fam("ensemble", "ensemble", "sem_median_ensemble", pattern="weights_ensemble_{i}", index_range=(0, N_ENS)),
        fam("bootstrap_data", "bootstrap_data", "std_replicas", pattern="weights_bootstrap_data_{i}",
            index_range=(0, N_BOOT)),
        fam("bootstrap_mc", "bootstrap_mc", "std_replicas", pattern="weights_bootstrap_mc_{i}",
            index_range=(0, N_BOOT), ddof=0),
        fam("detector", "systematic", "quadrature_diff", columns=list(NPS)),
        fam("closure", "paired", "paired_closure", pairs=[("weights_dd", "target_dd")]),
        fam("alternative", "alternative_sample", "alternative_sample", columns=["weights_alt"]),
        fam("reweighted", "systematic", "quadrature_diff", columns=["reweight_factor"], includes_mc_weight=False),
    ]
    return MemoryDataset(d, families, name="zjets", partition_rows=partition_rows,
                         binnings={"pT_ll": SimpleNamespace(edges=[200, 230, 300, 450, 600, 1000])})


N_JAG_BOOT = 8


def jagged_like(n: int = 100_000, seed: int = 11, partition_rows: int = 25_000) -> MemoryDataset:
    """A generated jagged dataset: NanoAOD-like ``Muon_*`` lists (pT sorted, descending), a ``Jet_pt`` list of
    other lengths, and per-event weights (nominal + bootstrap replicas) that are multiples of 2**-10, so every
    sum of weights is exact in float64 whatever the order of additions."""
    import awkward as ak

    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.poisson(2.2, n), 6)
    m = int(counts.sum())

    def jag(values: np.ndarray) -> Any:
        return ak.unflatten(values, counts)

    pt = ak.sort(jag((3.0 + rng.exponential(25.0, m)).astype(np.float32)), axis=1, ascending=False)
    d: dict[str, Any] = {
        "Muon_pt": pt,
        "Muon_eta": jag(rng.uniform(-2.8, 2.8, m).astype(np.float32)),
        "Muon_phi": jag(rng.uniform(-np.pi, np.pi, m).astype(np.float32)),
        "Muon_mass": jag(np.full(m, 0.10566, np.float32)),
        "Muon_charge": jag(rng.choice(np.array([-1, 1], np.int32), m)),
        "nMuon": counts.astype(np.int32),
        "Jet_pt": ak.unflatten(rng.exponential(40.0, int((counts + 1).sum())).astype(np.float32), counts + 1),
    }
    nom = (rng.integers(1, 2048, n) / 1024.0).astype(np.float32)
    d["weight_nominal"] = nom
    for i in range(N_JAG_BOOT):
        d[f"weight_boot_{i}"] = (nom * rng.poisson(1.0, n)).astype(np.float32)
    families = [
        fam("nominal", "nominal", "sum_w2", columns=["weight_nominal"]),
        fam("bootstrap", "bootstrap_data", "std_replicas", pattern="weight_boot_{i}", index_range=(0, N_JAG_BOOT)),
    ]
    ds = MemoryDataset(d, families, name="jagged", partition_rows=partition_rows)
    ds.jagged_columns = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Jet_pt"]
    return ds
