"""Weight families inferred from column names (the ATLAS OmniFold conventions), and the metadata file.

With no ``weights:`` in the metadata, families are inferred: ATLAS-style names (``weights_nominal``,
``weights_ensemble_{i}``, ``weights_bootstrap_{data,mc}_{i}``, named ``weights_*`` nuisance parameters,
``weights_dd``/``target_dd``, ``weight_mc``) give the release's families with the recipes of its notebooks
(§1.4–1.6 of the unbinned-releases reference); otherwise a single column called ``weight``, ``EventWeight``,
``weight_mc`` or ``xwgtup`` is the nominal weight with ``sum_w2``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archive.errors import ValidationError

__all__ = ["ENVELOPE_KEYS", "SPEC_KEYS", "infer_families", "load_metadata"]

ENVELOPE_KEYS = {
    "title", "description", "creators", "collaboration", "experiment", "collision", "keywords", "license",
    "identifiers", "relations", "usage", "methodology", "validation", "preservation_level", "dates",
}
SPEC_KEYS = {"variables", "weights", "measurement", "binnings"}

#: ATLAS Z+jets nuisance-parameter groups (the release's uncertainty breakdown)
NP_GROUPS: dict[str, tuple[str, ...]] = {
    "event_np": ("weights_pileup", "weights_muEffReco", "weights_muEffIso", "weights_muEffTrack", "weights_muEffTrig"),
    "muon_calibration_np": ("weights_muCalID", "weights_muCalMS", "weights_muCalResBias", "weights_muCalScale"),
    "tracking_np": ("weights_trackEffMain", "weights_trackEffJet", "weights_trackFake", "weights_trackPtScale"),
    "theory_np": ("weights_theoryPSjet", "weights_theoryPSsoft", "weights_theoryMPI", "weights_theoryPSscale",
                  "weights_theoryAlphaS", "weights_theoryQCD", "weights_theoryPDF"),
    "background_lumi_np": ("weights_topBackground", "weights_lumi"),
}
REPLICAS: dict[str, tuple[str, dict[str, Any], str]] = {
    "weights_ensemble_": ("ensemble", {"rule": "sem_median_ensemble", "ddof": 1, "factor": 1.253},
                          "NN-initialisation ensemble: standard error of the median, 1.253*std/sqrt(N)"),
    "weights_bootstrap_data_": ("bootstrap_data", {"rule": "std_replicas", "ddof": 1},
                                "data-statistics bootstrap replicas (data Poisson-resampled, unfolding rerun)"),
    "weights_bootstrap_mc_": ("bootstrap_mc", {"rule": "std_replicas", "ddof": 1},
                              "MC-statistics bootstrap replicas (MC Poisson-resampled, unfolding rerun)"),
}
NOMINAL_NAMES = ("weight", "weights", "eventweight", "weight_mc", "xwgtup", "mcweight")


def _indexed(columns: Sequence[str], prefix: str) -> tuple[int, int] | None:
    idx = sorted(int(m.group(1)) for c in columns if (m := re.fullmatch(re.escape(prefix) + r"(\d+)", c)))
    if not idx:
        return None
    if idx != list(range(idx[0], idx[-1] + 1)):
        return None
    return idx[0], idx[-1] + 1


def infer_families(columns: Sequence[str], *, unit: str | None = None) -> list[dict[str, Any]]:
    """Weight families (plain data for ``WeightFamily``) for well-known column names; ``[]`` if none."""
    cols = list(columns)
    have = set(cols)
    if "weights_nominal" not in have:
        for c in cols:
            if c.lower() in NOMINAL_NAMES:
                return [{"name": "nominal", "type": "nominal", "columns": [c],
                         "combination": {"rule": "sum_w2"},
                         "normalisation": {"kind": "absolute", "unit": unit} if unit else {"kind": "absolute"},
                         "includes_mc_weight": True,
                         "description": f"per-event weight {c!r}; MC statistical uncertainty sqrt(sum w^2)"}]
        return []
    norm = {"kind": "absolute", "unit": unit or "fb"}
    fams: list[dict[str, Any]] = []
    if "weight_mc" in have:
        fams.append({"name": "prior", "type": "prior", "columns": ["weight_mc"], "combination": {"rule": "none"},
                     "normalisation": norm, "includes_mc_weight": True,
                     "description": "MC generator weight of the prior (particle level, before unfolding)"})
    fams.append({"name": "nominal", "type": "nominal", "columns": ["weights_nominal"],
                 "combination": {"rule": "sum_w2"}, "normalisation": norm, "includes_mc_weight": True,
                 "description": "unfolded nominal weight (step-2 weight x MC weight); sqrt(sum w^2) is the "
                                "MC/sample statistical term"})
    used = {"weight_mc", "weights_nominal"}
    for prefix, (ftype, comb, desc) in REPLICAS.items():
        rng = _indexed(cols, prefix)
        if rng is not None:
            fams.append({"name": ftype, "type": ftype, "pattern": prefix + "{i}", "index_range": list(rng),
                         "combination": comb, "normalisation": norm, "includes_mc_weight": True,
                         "description": desc})
            used.update(f"{prefix}{i}" for i in range(*rng))
    for group, names in NP_GROUPS.items():
        members = [n for n in names if n in have]
        if members:
            fams.append({"name": group, "type": "systematic", "columns": members,
                         "combination": {"rule": "quadrature_diff"}, "normalisation": norm,
                         "includes_mc_weight": True, "description": "nuisance-parameter variations, "
                                                                    "(h_k - h_nominal) in quadrature"})
            used.update(members)
    if "weights_dd" in have and "target_dd" in have:
        fams.append({"name": "unfolding_dd", "type": "paired", "pairs": [["weights_dd", "target_dd"]],
                     "combination": {"rule": "paired_closure"}, "normalisation": norm, "includes_mc_weight": True,
                     "description": "data-driven non-closure: |h_dd - h_target| * h / h_target"})
        used.update({"weights_dd", "target_dd"})
    other = [c for c in cols if c.startswith("weights_") and c not in used]
    if other:
        fams.append({"name": "other_np", "type": "systematic", "columns": other,
                     "combination": {"rule": "quadrature_diff"}, "normalisation": norm, "includes_mc_weight": True,
                     "description": "other weight variations, (h_k - h_nominal) in quadrature"})
    return fams


def load_metadata(metadata: Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's metadata as a dict, with unknown top-level keys refused."""
    if metadata is None:
        return {}
    label = "metadata"
    if isinstance(metadata, Mapping):
        data: Any = dict(metadata)
    else:
        from archive.schema._yaml import load_yaml_file

        label = str(metadata)
        if not Path(metadata).is_file():
            raise ValidationError("metadata file does not exist", file=label)
        data = load_yaml_file(Path(metadata), source=label) or {}
    if not isinstance(data, dict):
        raise ValidationError("metadata must be a mapping of record fields", file=label)
    unknown = sorted(set(data) - ENVELOPE_KEYS - SPEC_KEYS)
    if unknown:
        raise ValidationError(f"unknown metadata keys: {', '.join(unknown)} (allowed: "
                              f"{', '.join(sorted(ENVELOPE_KEYS | SPEC_KEYS))})", file=label, field=unknown[0])
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or any(not isinstance(v, dict) for v in variables.values()):
        raise ValidationError("'variables' must map column names to {unit, description, level, expression}",
                              file=label, field="variables")
    data["_label"] = label
    return data
