"""Model cards: a model record rendered as Markdown (Mitchell et al. sections plus what HEP re-users need)."""

from __future__ import annotations

import json

from archive.schema.v1.model import ModelRecord

__all__ = ["render_card"]


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _shape(shape: list[int | str | None] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def render_card(record: ModelRecord) -> str:
    """Render ``record`` as a Markdown model card.

    Sections: model details, inputs (order, units, preprocessing), outputs, OmniFold role, training data and
    configuration, intended use, limitations, evaluation, reference vectors, ONNX facts and files."""
    spec = record.model
    out: list[str] = [f"# {record.title}", "", f"`{record.ref}` — status **{record.status}**", ""]
    if record.description:
        out += [record.description.strip(), ""]
    out += ["## Model details", ""]
    details = [
        ("Creators", "; ".join(c.name for c in record.creators) or "not given"),
        ("Collaboration / experiment", " / ".join(x for x in (record.collaboration, record.experiment) if x) or "—"),
        ("License", record.license or "not given"),
        ("Format", spec.format.upper()),
    ]
    if record.identifiers.doi:
        details.append(("DOI", record.identifiers.doi))
    out += [f"- **{k}:** {_md(v)}" for k, v in details] + [""]

    out += ["## Inputs", ""]
    if spec.inputs:
        how = ("The ONNX graph standardises its inputs itself: feed raw values." if spec.preprocessing.in_graph
               else "Before the network each feature becomes `(clip(x, clip_min, clip_max) - shift) / scale`.")
        pad = spec.preprocessing.padding_value
        out += [how + (f" Missing values (NaN) are replaced by `{pad:g}` first." if pad is not None else ""), ""]
        out += ["| # | feature | unit | shift | scale | clip | description |", "|---|---|---|---|---|---|---|"]
        for i, f in enumerate(spec.inputs):
            clip = "" if f.clip_min is None and f.clip_max is None else f"[{_num(f.clip_min)}, {_num(f.clip_max)}]"
            out.append(f"| {i} | `{_md(f.name)}` | {_md(f.unit or '')} | {f.shift:g} | {f.scale:g} | {clip} | "
                       f"{_md(f.description or '')} |")
        if spec.preprocessing.description:
            out += ["", spec.preprocessing.description.strip()]
    else:
        out.append("*Input features are not documented: the order, units and preprocessing are unknown.*")
    out.append("")

    out += ["## Outputs", ""]
    if spec.outputs:
        hint = {"logit": "per-event weight = exp(logit)", "probability": "per-event weight = p / (1 - p)",
                "weight": "a per-event weight", "score": "a classifier score", "other": ""}
        for o in spec.outputs:
            extra = f" — {o.description}" if o.description else ""
            out.append(f"- `{o.name}`: **{o.meaning}** ({hint[o.meaning]}){extra}".replace(" ()", ""))
    else:
        out.append("*The meaning of the outputs is not documented.*")
    out.append("")
    if spec.omnifold is not None:
        of = spec.omnifold
        member = "" if of.ensemble_member is None else f", ensemble member {of.ensemble_member}"
        size = "" if of.ensemble_size is None else f" of {of.ensemble_size}"
        boot = f", bootstrap {of.bootstrap}" if of.bootstrap else ""
        out += ["## OmniFold role", "",
                f"Step {of.step} ({'detector-level pull' if of.step == 1 else 'particle-level push'}), "
                f"iteration {of.iteration}{member}{size}{boot}.", ""]

    t = spec.training
    out += ["## Training data", ""]
    out += [f"- `{d}`" for d in t.datasets] or ["*Not documented.*"]
    if t.framework or t.code:
        out += [""] + ([f"- **Framework:** {t.framework}"] if t.framework else []) + (
            [f"- **Code:** {t.code}"] if t.code else [])
    out.append("")
    if t.configuration:
        out += ["## Training configuration", "", "```json", json.dumps(t.configuration, indent=2, sort_keys=True),
                "```", ""]
    for title, text in (("Intended use", spec.intended_use or record.usage), ("Limitations", spec.limitations),
                        ("Evaluation", spec.evaluation)):
        out += [f"## {title}", "", (text or "*Not documented.*").strip(), ""]

    if spec.reference is not None:
        r = spec.reference
        out += ["## Reference vectors", "",
                f"{r.rows} row(s) in `{r.file}` ({r.format}); inputs {', '.join(f'`{n}`' for n in r.inputs)}, "
                f"outputs {', '.join(f'`{n}`' for n in r.outputs)}; expected outputs from {r.produced_by}; "
                f"tolerance atol = {r.atol:g}, rtol = {r.rtol:g}. Rerun with `hep-archive model check "
                f"{record.name}@{record.version}`.", ""]
    if spec.onnx is not None:
        ox = spec.onnx
        ops = ", ".join(f"{x.domain or 'ai.onnx'} {x.version}" for x in ox.opsets)
        prod = f"{ox.producer_name} {ox.producer_version}".strip() or "unknown"
        out += ["## ONNX", "", f"- **IR version:** {ox.ir_version}; **opsets:** {ops}", f"- **Producer:** {_md(prod)}",
                f"- **Parameters:** {ox.parameter_count:,}"]
        out += [f"- **Input** `{x.name}`: {x.dtype} {_shape(x.shape)}" for x in ox.inputs]
        out += [f"- **Output** `{x.name}`: {x.dtype} {_shape(x.shape)}" for x in ox.outputs]
        if ox.metadata_props:
            out += ["- **metadata_props:** " + "; ".join(f"`{k}` = {_md(v)[:200]}" for k, v in
                                                         sorted(ox.metadata_props.items()))]
        out.append("")
    if record.files:
        out += ["## Files", "", "| path | role | size | sha256 |", "|---|---|---|---|"]
        out += [f"| `{f.path}` | {f.role} | {f.size:,} | `{f.sha256}` |" for f in record.files]
        out.append("")
    return "\n".join(out)
