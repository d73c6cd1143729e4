"""Turn a finished run into a ``run`` record: outputs, host, packages, seeds, logs, and a rerun verdict."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archive.errors import ExecutionError
from archive.execution._cache import path_digests

if TYPE_CHECKING:
    from archive.execution._engine import _Ctx
    from archive.schema.v1.recipe import RecipeRecord
    from archive.schema.v1.run import RunRecord

__all__ = ["finish_run"]


def _seeds(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"PYTHONHASHSEED": 0}
    for k, v in params.items():
        if "seed" in k.lower():
            out[k] = v
    return out


def finish_run(ctx: _Ctx, rec: RecipeRecord, name: str, steps: list[dict[str, Any]], started: dt.datetime,
               datasets: list[str], compare_with: str | None, extra: dict[str, Any]) -> RunRecord:
    """Collect the declared workflow outputs, compare them when asked, write the record (published)."""
    from archive.execution._compare import compare_outputs
    from archive.execution._engine import ENGINE_NAME, ENGINE_VERSION, _now
    from archive.execution._host import host_info, package_versions
    from archive.schema import parse_record
    from archive.schema.v1.run import RunRecord

    spec = rec.recipe
    outputs: dict[str, tuple[str, int]] = {}
    if not ctx.failed:
        absent = []
        for rel in [*spec.output_files, *spec.output_directories]:
            try:
                got = path_digests(ctx.workspace, rel)
            except ExecutionError:
                got = {}
            if not got:
                absent.append(rel)
            outputs.update(got)
        if absent:
            ctx.failed = f"declared workflow output(s) {', '.join(absent)} were not produced by any step"
        else:
            for rel, (digest, _) in outputs.items():
                if not ctx.archive.store.exists(digest):  # usually the last step stored it already
                    ctx.archive.store.put_file(ctx.workspace / rel)
    files = [{"path": path, "sha256": digest, "size": size, "role": "log", "media_type": "text/plain"}
             for path, digest, size in ctx.logs]
    if not ctx.failed:
        files += [{"path": f"outputs/{rel}", "sha256": d, "size": s, "role": "output"}
                  for rel, (d, s) in sorted(outputs.items())]
    run: dict[str, Any] = {
        "recipe": rec.ref, "engine": f"{ENGINE_NAME}/{ENGINE_VERSION}", "engine_version": ENGINE_VERSION,
        "backend": ctx.backend, "device": ctx.device, "status": "failed" if ctx.failed else "succeeded",
        "parameters": ctx.params, "started": started, "ended": _now(), "host": host_info(),
        "packages": package_versions(), "seeds": _seeds(ctx.params), "datasets": datasets, "steps": steps,
        "outputs": [{"path": k, "sha256": v[0], "size": v[1]} for k, v in sorted(outputs.items())]
        if not ctx.failed else [],
        "error": ctx.failed, **extra,
    }
    relations: list[dict[str, Any]] = [{"type": "IsDerivedFrom", "target": rec.ref}]
    title = f"Run of {rec.ref}"
    if compare_with is not None:
        original = ctx.archive.record(compare_with)
        assert isinstance(original, RunRecord)
        comparison = compare_outputs(ctx.archive, original, ctx.workspace, spec.tolerances,
                                     failed=ctx.failed is not None)
        run["comparison"] = comparison.model_dump(mode="json")
        relations.append({"type": "IsVariantFormOf", "target": original.ref})
        title = f"Rerun of {original.ref}: {comparison.verdict}"
    images = sorted({f"{s.get('image') or s.get('image_digest')}" for s in steps
                     if s.get("image") or s.get("image_digest")})
    what = (f"Execution of {rec.ref} ({rec.title}) by {ENGINE_NAME} {ENGINE_VERSION} on the {ctx.backend} backend"
            + (f" in {', '.join(images)}" if images else " on the host") + f", device {ctx.device}: "
            + (f"failed: {ctx.failed}" if ctx.failed else
               f"succeeded; {len(steps)} step(s), {len(outputs)} output file(s) kept by digest")
            + (f"; compared with {compare_with}" if compare_with else "") + ".")
    envelope = {k: v for k, v in (("creators", [c.model_dump(mode="json", exclude_none=True) for c in rec.creators]),
                                  ("license", rec.license), ("keywords", list(rec.keywords)),
                                  ("experiment", rec.experiment), ("collaboration", rec.collaboration)) if v}
    data = {"id": f"run/{name}", "version": "1.0.0", "status": "published", "title": title, **envelope,
            "description": what, "files": files, "relations": relations,
            "dates": {"created": started.date().isoformat(), "published": started.date().isoformat()},
            "run": _jsonable(run)}
    record = parse_record(data, source=f"run/{name}")
    ctx.archive.add_record(record)
    return record  # type: ignore[return-value]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if v is not None or k in ("error",)}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    return obj
