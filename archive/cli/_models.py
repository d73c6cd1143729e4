"""``hep-archive model ...``: add, check, apply and card for ONNX models (thin wrappers over archive.models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archive.cli._common import console, emit, err_console, get_archive, progress_callback

__all__ = ["register"]

model_app = typer.Typer(name="model", help="ONNX models: register, check reference vectors, apply, model card.",
                        no_args_is_help=True)


def _device(value: str) -> Any:
    from archive.errors import ValidationError

    if value not in ("cpu", "cuda"):
        raise ValidationError(f"unknown device {value!r}; use cpu or cuda", field="--device")
    return value


@model_app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="the .onnx file (external data files beside it)")],
    name: Annotated[str, typer.Option("--name", help="record name: model/NAME")],
    version: Annotated[str, typer.Option("--version", help="record version (semver)")],
    card: Annotated[Path | None, typer.Option("--card", help="model card YAML (features, outputs, ...)")] = None,
    reference: Annotated[Path | None, typer.Option(
        "--reference", help="reference tensors input/<name>, output/<name> (.safetensors or .npz); default: "
        "generated seeded inputs, outputs computed on CPU")] = None,
    atol: Annotated[float | None, typer.Option(help="absolute tolerance of the reference check")] = None,
    rtol: Annotated[float | None, typer.Option(help="relative tolerance of the reference check")] = None,
) -> None:
    """Check an ONNX file (full checker, no pickles, safe external data) and register it with its card."""
    from archive.models import add_model

    a = get_archive()
    rec = add_model(a, file, name=name, version=version, card=card, reference=reference, atol=atol, rtol=rtol)
    spec = rec.model
    assert spec.onnx is not None and spec.reference is not None
    data = {"ref": rec.ref, "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "role": f.role}
                                      for f in rec.files],
            "ir_version": spec.onnx.ir_version, "opsets": [o.model_dump() for o in spec.onnx.opsets],
            "inputs": [t.model_dump() for t in spec.onnx.inputs],
            "outputs": [t.model_dump() for t in spec.onnx.outputs],
            "parameter_count": spec.onnx.parameter_count, "reference_rows": spec.reference.rows}

    def human() -> None:
        def shape(dims: list[Any] | None) -> str:
            return "[?]" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"

        io = ", ".join(f"{t.name}: {t.dtype}{shape(t.shape)}" for t in spec.onnx.inputs) if spec.onnx else ""
        console.print(f"registered {rec.ref} ({spec.onnx.parameter_count if spec.onnx else 0:,} parameters; {io})",
                      markup=False, highlight=False)

    emit(data, human)


@model_app.command("check")
def check(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION]")],
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads (fixed for reproducibility)")] = 1,
    require_device: Annotated[bool, typer.Option(
        "--require-device", help="fail (exit 1) when the requested device was not used")] = False,
) -> None:
    """Run the stored reference vectors with onnxruntime; report max abs/rel differences and providers."""
    from archive.models import check_model

    rep = check_model(get_archive(), ref, device=_device(device), threads=threads)

    def human() -> None:
        s = rep.session
        console.print(f"{rep.ref}: {rep.rows} reference row(s) on {', '.join(s.used)} (requested "
                      f"{', '.join(s.requested)}; onnxruntime {s.onnxruntime})", markup=False, highlight=False)
        if s.fallback:
            err_console.print(f"warning: device fallback: {s.fallback}", markup=False, highlight=False)
        for o in rep.outputs:
            state = "ok" if o.ok else "FAILED"
            bit = ", bitwise equal" if o.bitwise_equal else ""
            (console if o.ok else err_console).print(
                f"  {o.name}: {state}: max abs diff {o.max_abs:.3g}, max rel diff {o.max_rel:.3g} (atol {o.atol:g}, "
                f"rtol {o.rtol:g}{bit}) {o.digest}", markup=False, highlight=False)

    emit(rep.as_dict(), human)
    if not rep.ok:
        raise typer.Exit(3)
    if require_device and rep.fallback:
        raise typer.Exit(1)


@model_app.command("apply")
def apply(
    model: Annotated[str, typer.Argument(help="model NAME[@VERSION]")],
    dataset: Annotated[str, typer.Argument(help="dataset NAME[@VERSION]")],
    output_column: Annotated[str, typer.Option("--output-column", help="name of the new column")],
    inputs: Annotated[str | None, typer.Option(
        "--inputs", help="columns in network order, comma-separated; FEATURE=COLUMN maps a column "
        "(default: the documented features)")] = None,
    new_version: Annotated[str | None, typer.Option("--new-version", help="version of the new dataset")] = None,
    output: Annotated[str | None, typer.Option("--output", help="graph output to store (default: first)")] = None,
    as_weight: Annotated[bool, typer.Option("--as-weight", help="store exp(logit) or p/(1-p)")] = False,
    family: Annotated[str | None, typer.Option(
        "--family", help="declare the column a weight family of this type (nominal, prior, ensemble, "
        "systematic, ...): shape-normalised reweighting factors")] = None,
    batch_rows: Annotated[int, typer.Option(help="rows per batch")] = 65536,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda")] = "cpu",
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads")] = 1,
) -> None:
    """Stream a dataset through a model; write the output column as a new dataset version."""
    from archive.models import apply_model, load_model_record, weight_family

    a = get_archive()
    fam = weight_family(output_column, family, load_model_record(a, model).ref) if family else None
    cols = [c.strip() for c in inputs.split(",") if c.strip()] if inputs else None
    with progress_callback(None, f"apply {model}") as cb:
        res = apply_model(a, model, dataset, inputs=cols, output_column=output_column, output=output,
                          new_version=new_version, batch_rows=batch_rows, device=_device(device), threads=threads,
                          as_weight=as_weight, family=fam, progress=cb)
    data = {"model": res.model, "base": res.base, "dataset": res.dataset, "column": res.column, "rows": res.rows,
            "providers": res.session.used, "fallback": res.session.fallback}

    def human() -> None:
        if res.session.fallback:
            err_console.print(f"warning: device fallback: {res.session.fallback}", markup=False, highlight=False)
        console.print(f"{res.dataset}: column {res.column!r} from {res.model} over {res.rows:,} rows of {res.base} "
                      f"({', '.join(res.session.used)})", markup=False, highlight=False)

    emit(data, human)


@model_app.command("card")
def card(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION]")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the Markdown here")] = None,
) -> None:
    """Render a model's card as Markdown."""
    from archive.models import load_model_record, render_card

    rec = load_model_record(get_archive(), ref)
    text = render_card(rec)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    emit({"ref": rec.ref, "markdown": text, "output": str(output) if output else None},
         lambda: console.print(text if output is None else f"wrote {output}", markup=False, highlight=False))


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
