"""The REANA backend: submit a recorded recipe to a REANA server through reana-client and record the run.

reana-client pins old libraries (jsonschema 3.2, cwltool 2021...), so it lives in its own environment:
``$HEP_ARCHIVE_REANA_PYTHON``, the archive root's ``.venv-reana/bin/python`` or the interpreter beside a
``reana-client`` on ``PATH`` runs ``_reana_bridge.py`` (JSON on stdin and stdout). When ``reana_client`` is
importable here, the bridge is called in-process."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.digest import digest_json
from archive.errors import ExecutionError, MissingDependencyError

if TYPE_CHECKING:
    from archive.execution._engine import _Ctx
    from archive.schema.v1.recipe import RecipeRecord

__all__ = ["call_bridge", "run_on_reana"]

BRIDGE = Path(__file__).with_name("_reana_bridge.py")
POLL_INTERVAL = float(os.environ.get("HEP_ARCHIVE_REANA_POLL", "2"))


def call_bridge(request: dict[str, Any], timeout: float, archive_root: Path | None = None) -> dict[str, Any]:
    """Send one request to the reana-client bridge (in-process, or in the reana environment that
    :func:`~archive.recipe._reana_schema.reana_python` finds for ``archive_root``)."""
    if importlib.util.find_spec("reana_client") is not None:
        from archive.execution import _reana_bridge

        return _reana_bridge.submit(request)
    from archive.recipe._reana_schema import reana_python

    python = reana_python(archive_root)
    if python is None:
        raise MissingDependencyError(
            "reana-client", "create its environment in the archive root: python3 -m venv .venv-reana && "
            ".venv-reana/bin/pip install reana-client==0.9.6 (or set HEP_ARCHIVE_REANA_PYTHON to its python, "
            "or put reana-client on PATH)")
    try:
        proc = subprocess.run([str(python), str(BRIDGE)], input=json.dumps(request), capture_output=True,
                              text=True, timeout=timeout + 60, check=False)
    except subprocess.TimeoutExpired:
        raise ExecutionError(f"the REANA bridge did not answer within {timeout + 60:.0f} s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExecutionError(f"the REANA bridge failed (exit {proc.returncode}): {tail}")
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def _upload_list(ctx: _Ctx, rec: RecipeRecord) -> list[str]:
    spec = rec.recipe
    paths = set(spec.input_files)
    for folder in [*spec.input_directories, *spec.datasets]:
        base = ctx.workspace / folder
        paths.update(p.relative_to(ctx.workspace).as_posix() for p in base.rglob("*") if p.is_file())
    return sorted(paths)


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()


def run_on_reana(ctx: _Ctx, rec: RecipeRecord) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Submit, wait, download the declared outputs into the workspace; returns (step data, run extras)."""
    from archive.execution._cache import path_digests
    from archive.execution._engine import ENGINE_VERSION, substitute
    from archive.schema._yaml import load_yaml_file

    spec = rec.recipe
    timeout = float(sum(s.resources.timeout_s or 3600 for s in spec.steps) or 3600)
    request = {
        "name": f"hep-archive-{rec.name}", "workspace": str(ctx.workspace),
        "spec": load_yaml_file(ctx.workspace / spec.spec_file, source=spec.spec_file),
        "inputs": _upload_list(ctx, rec), "parameters": ctx.params,
        "outputs": [*spec.output_files], "poll_interval": POLL_INTERVAL, "timeout": timeout,
    }
    answer = call_bridge(request, timeout, ctx.archive.root)
    logs = (answer.get("logs") or "").encode()
    log_path = ctx.run_dir / "logs" / "reana.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(logs)
    log_digest = ctx.archive.store.put_file(log_path).digest
    ctx.logs.append(("logs/reana.log", log_digest, len(logs)))
    status = answer.get("status")
    if answer.get("error") or status != "finished":
        ctx.failed = f"REANA workflow {answer.get('workflow_id') or '(not created)'}: " + \
                     (answer.get("error") or f"ended {status}")
    progress = answer.get("progress") or {}
    started, ended = _time(progress.get("run_started_at")), _time(progress.get("run_finished_at"))
    steps: list[dict[str, Any]] = []
    downloaded: dict[str, tuple[str, int]] = {}
    for rel in answer.get("downloaded") or []:
        downloaded.update(path_digests(ctx.workspace, rel))
    for i, step in enumerate(spec.steps):
        commands = [substitute(c, ctx.params, f"steps.{step.name}.commands[{j}]") for j, c in enumerate(step.commands)]
        last = i == len(spec.steps) - 1
        steps.append({
            "name": step.name, "image": step.image, "image_digest": step.image_digest, "commands": commands,
            "cache_key": digest_json({"engine": ENGINE_VERSION, "backend": "reana", "image": step.image_digest,
                                      "commands": commands}),
            "runner": "reana", "runner_version": answer.get("client_version") or "reana-client",
            "exit_code": 0 if status == "finished" else None, "started": started, "ended": ended,
            "stdout": log_digest,
            "outputs": [{"path": k, "sha256": v[0], "size": v[1]} for k, v in sorted(downloaded.items())]
            if last and not ctx.failed else [],
        })
    if not ctx.failed:
        for rel in downloaded:
            ctx.archive.store.put_file(ctx.workspace / rel)
    if status is not None:
        ctx.executed.extend(s.name for s in spec.steps)
    return steps, {"reana_workflow": answer.get("workflow_id")}
