"""Step 3: reconstruct the 24 observables and apply the fiducial selection, at particle or detector level.

``python -m archive.reference.reco --selection cards/fiducial.yaml --input sim_detector.parquet
--output sim_detector_obs.parquet``

Output columns: ``event``, ``weight_mc``, the 24 observables (ATLAS names), ``m_ll`` and ``pass`` (the
event passes every structured cut of the selection card). Rows stay aligned with the input events.
"""

from __future__ import annotations

import argparse
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
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
    run_main,
    write_parquet,
    write_provenance,
)

__all__ = ["Cut", "evaluate_cuts", "load_selection", "main", "reconstruct"]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne,
}
_VARIABLE = re.compile(r"^(?:abs\((?P<inner>[A-Za-z_][A-Za-z0-9_]*)\)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))$")


class Cut:
    """One structured cut: ``variable operator value [unit]`` (``abs(x)`` for |x|)."""

    __slots__ = ("absolute", "column", "op", "unit", "value", "variable")

    def __init__(self, variable: str, op: str, value: float, unit: str | None) -> None:
        self.variable, self.op, self.value, self.unit = variable, op, value, unit
        match = _VARIABLE.match(variable)
        if match is None:
            raise ValidationError(f"variable {variable!r} must be a column name or abs(column)", field="cuts")
        self.absolute = match.group("inner") is not None
        self.column = match.group("inner") or match.group("plain")

    def apply(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask of the events passing this cut."""
        if self.column not in columns:
            raise ValidationError(f"cut variable {self.column!r} is not a reconstructed column", field="cuts")
        x = columns[self.column]
        x = np.abs(x) if self.absolute else x
        return np.asarray(_OPERATORS[self.op](x, self.value), dtype=bool)

    def as_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "operator": self.op, "value": self.value, "unit": self.unit}


def load_selection(path: Path) -> tuple[list[Cut], dict[str, Any]]:
    """The cuts and object definitions of a selection card (every cut checked)."""
    card = load_card(path)
    raw = card.get("cuts")
    if not isinstance(raw, list) or not raw:
        raise ValidationError("the card needs a non-empty list 'cuts'", file=str(path), field="cuts")
    cuts: list[Cut] = []
    for i, item in enumerate(raw):
        where = f"cuts[{i}]"
        if not isinstance(item, dict) or set(item) - {"variable", "operator", "value", "unit"}:
            raise ValidationError("a cut is a mapping with variable, operator, value, unit", file=str(path),
                                  field=where)
        op, value = item.get("operator"), item.get("value")
        if op not in _OPERATORS:
            raise ValidationError(f"operator {op!r} not one of {sorted(_OPERATORS)}", file=str(path),
                                  field=f"{where}.operator")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValidationError("value must be a number", file=str(path), field=f"{where}.value")
        try:
            cuts.append(Cut(str(item.get("variable")), op, float(value), item.get("unit")))
        except ValidationError as err:
            raise ValidationError(err.reason, file=str(path), field=f"{where}.variable") from None
    objects = card.get("objects") or {}
    return cuts, objects if isinstance(objects, dict) else {}


def evaluate_cuts(cuts: Sequence[Cut], columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Events passing every cut."""
    n = len(next(iter(columns.values())))
    mask = np.ones(n, dtype=bool)
    for cut in cuts:
        mask &= cut.apply(columns)
    return mask


def reconstruct(events: Path, selection: Path, output: Path, *, metadata: Mapping[str, str] | None = None
                ) -> dict[str, int]:
    """Compute the observables of every event in ``events`` and write them with the ``pass`` flag."""
    import pyarrow.parquet as pq

    from archive.reference._observables import dimuon_observables, jet_observables

    cuts, objects = load_selection(selection)
    try:
        table = pq.read_table(events)
    except Exception as exc:
        raise ValidationError(f"cannot read event Parquet ({exc})", file=str(events)) from exc
    for needed in ("event", "weight_mc", "mu_pt", "ch_pt"):
        if needed not in table.column_names:
            raise ValidationError(f"missing column {needed!r}; is this a generate/detsim output?",
                                  file=str(events))

    def flat(name: str) -> tuple[np.ndarray, np.ndarray]:
        col = table.column(name).combine_chunks()
        return col.offsets.to_numpy(), col.values.to_numpy()

    mu_off, mu_pt = flat("mu_pt")
    ch_off, ch_pt = flat("ch_pt")
    lep = dimuon_observables(mu_off, mu_pt, flat("mu_eta")[1], flat("mu_phi")[1], flat("mu_charge")[1])
    jdef = objects.get("track_jets", {}) if isinstance(objects.get("track_jets"), dict) else {}
    jets = jet_observables(ch_off, ch_pt, flat("ch_eta")[1], flat("ch_phi")[1],
                           radius=float(jdef.get("radius", 0.4)), min_pt=float(jdef.get("min_pt", 10.0)),
                           max_abs_rapidity=float(jdef.get("max_abs_rapidity", 2.5)),
                           missing=float(jdef.get("missing_jet_value", 0.0)))
    columns: dict[str, np.ndarray] = {**lep, **jets}
    passed = evaluate_cuts(cuts, columns)
    out: dict[str, Any] = {"event": table.column("event").to_numpy(), "weight_mc": table.column("weight_mc").to_numpy()}
    out.update({name: columns[name] for name in OBSERVABLES})
    out["m_ll"] = columns["m_ll"]
    out["pass"] = passed
    meta = dict(metadata or {})
    meta["cuts"] = json.dumps([c.as_dict() for c in cuts], sort_keys=True)
    write_parquet(output, out, metadata=meta)
    return {"events": len(passed), "passed": int(passed.sum())}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archive.reference.reco", description=__doc__.split("\n")[0])
    parser.add_argument("--selection", type=Path, required=True, help="fiducial selection card (YAML)")
    parser.add_argument("--input", type=Path, required=True, help="particle- or detector-level Parquet")
    parser.add_argument("--output", type=Path, required=True)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    timer = StepTimer()
    meta = {"step": "reco", "selection": file_sha256(args.selection), "input": file_sha256(args.input)}
    counts = reconstruct(args.input, args.selection, args.output, metadata=meta)
    write_provenance(args.output, step="reco", inputs=[args.selection, args.input], outputs=[args.output],
                     parameters=counts, device_requested=args.device, device_used="cpu", seconds=timer.seconds())


if __name__ == "__main__":
    raise SystemExit(run_main(main, None))
