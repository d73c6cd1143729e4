"""The serial engine: REANA semantics, each step in its pinned image, cached by content, fully recorded.

Each command is its own ``bash -c`` job (``sh -c`` when the image has no bash) in the workspace, after
``string.Template`` substitution of the parameters (``$$`` is a literal ``$``). A step's declared outputs are
removed before it runs, must all exist after it, and are stored content-addressed only when it succeeded."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import ExecutionError, NotFoundError, UnsupportedOperationError, ValidationError
from archive.execution._cache import CacheEntry, StepCache, path_digests, step_key

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.schema.v1.recipe import RecipeRecord, RecipeStep
    from archive.schema.v1.run import RunRecord

__all__ = ["BACKENDS", "ENGINE_NAME", "ENGINE_VERSION", "RunResult", "run_recipe", "substitute"]

ENGINE_NAME = "hep-archive-serial"
ENGINE_VERSION = "1.0.0"
BACKENDS = ("local", "bwrap", "podman", "docker", "apptainer", "reana")
BASE_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC", "PYTHONHASHSEED": "0", "HOME": "/tmp"}
#: host variables passed to steps (and into the cache key) when set
ENV_ALLOW = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG")
PROVENANCE_FILE = ".hep-archive/provenance.jsonl"
WORKSPACE = "/workspace"


@dataclass
class RunResult:
    """The outcome of :func:`run_recipe`: the run record written, where it ran, what ran and what was reused."""

    record: RunRecord
    workspace: Path
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record.run.status == "succeeded"


def substitute(command: str, parameters: Mapping[str, Any], where: str = "command") -> str:
    """REANA's substitution: ``string.Template(command).substitute(parameters)``."""
    try:
        return string.Template(command).substitute({k: str(v) for k, v in parameters.items()})
    except KeyError as exc:
        raise ValidationError(f"unknown parameter ${exc.args[0]}; pass -p {exc.args[0]}=VALUE", field=where) from None
    except ValueError as exc:
        raise ValidationError(f"{exc}; write '$$' for a literal '$'", field=where) from None


def _coerce(name: str, value: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a {type(default).__name__}", field=f"-p {name}") from None
    return value


def merge_parameters(declared: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(declared)
    for k, v in (given or {}).items():
        if k not in declared:
            raise ValidationError(f"the recipe has no parameter {k!r} (parameters: {', '.join(declared) or 'none'})",
                                  field=f"-p {k}")
        out[k] = _coerce(k, v, declared[k]) if isinstance(v, str) else v
    return out


def _resolve_recipe(archive: Archive, recipe: str | Path) -> RecipeRecord:
    from archive.schema.v1.recipe import RecipeRecord

    if isinstance(recipe, Path) or (not str(recipe).startswith("recipe/") and Path(recipe).is_dir()):
        from archive.recipe import add_recipe

        return add_recipe(archive, Path(recipe))
    rec = archive.record(str(recipe))
    if not isinstance(rec, RecipeRecord):
        raise ValidationError(f"{recipe} is a {rec.kind} record, not a recipe")
    return rec


def _stage(archive: Archive, rec: RecipeRecord, workspace: Path) -> list[str]:
    from archive.recipe import recipe_files

    recipe_files(archive, rec, workspace)
    staged = []
    for folder, ref in rec.recipe.datasets.items():
        ds = archive.record(ref)
        for entry in ds.files:
            target = workspace / folder / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open_object(entry.sha256) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        staged.append(ds.ref)
    return staged


class _Executor:
    """Runs one command through a container runner (or the host), one process per command."""

    def __init__(self, archive: Archive, backend: str, device: str) -> None:
        from archive.container import get_runner

        self.archive = archive
        self.backend = backend
        self.device = device
        self.runner = get_runner(backend)
        reason = self.runner.available()
        if reason:
            raise ExecutionError(f"backend {backend!r} is not usable here: {reason}", field="--backend")
        self.version = self.runner.version()

    def prepare(self, step: RecipeStep) -> tuple[Path | None, str, str, dict[str, str]]:
        """``(rootfs, shell, image digest for the key, image environment)`` of a step."""
        if self.backend == "local":
            return None, ("bash" if shutil.which("bash") else "sh"), "host:local", {}
        from archive.execution._images import step_rootfs

        rootfs, image_env = step_rootfs(self.archive, step.image, step.image_digest)
        shell = "bash" if any((rootfs / p).exists() for p in ("bin/bash", "usr/bin/bash")) else "sh"
        return rootfs, shell, step.image_digest or "unknown", image_env

    def run(self, rootfs: Path | None, shell: str, command: str, workspace: Path, env: dict[str, str],
            timeout: float | None, stdout: Path, stderr: Path) -> int:
        from archive.container import Mount, SandboxSpec

        spec = SandboxSpec(argv=[shell, "-c", command], rootfs=rootfs,
                           mounts=[Mount(workspace, WORKSPACE, read_only=False)],
                           env={**env, "REANA_WORKSPACE": WORKSPACE if rootfs else str(workspace)},
                           cwd=WORKSPACE, gpu=self.device == "gpu" and rootfs is not None, timeout=timeout)
        return self.runner.run(spec, stdout=stdout, stderr=stderr).exit_code


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read_devices(workspace: Path) -> list[dict[str, Any]]:
    import json

    p = workspace / PROVENANCE_FILE
    out: list[dict[str, Any]] = []
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines()[:100]:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and "framework" in d and "device" in d:
                out.append({k: d[k] for k in ("framework", "version", "device", "providers", "options") if k in d})
        p.unlink()
    return out


def _remove_outputs(workspace: Path, outputs: list[str]) -> None:
    for rel in outputs:
        p = workspace / rel
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)


def _files(d: Mapping[str, tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"path": k, "sha256": v[0], "size": v[1]} for k, v in sorted(d.items())]


def _run_step(ctx: _Ctx, step: RecipeStep) -> dict[str, Any]:
    """Run (or restore) one step; returns the StepRun data. Sets ``ctx.failed`` on failure."""
    commands = [substitute(c, ctx.params, f"steps.{step.name}.commands[{i}]") for i, c in enumerate(step.commands)]
    data: dict[str, Any] = {"name": step.name, "image": step.image, "image_digest": step.image_digest,
                            "commands": commands}
    ws = ctx.workspace
    inputs: dict[str, tuple[str, int]] = {}
    missing = []
    for rel in step.inputs:
        try:
            got = path_digests(ws, rel)
        except ExecutionError:  # a symbolic link written by an earlier step: not a valid input
            got = {}
        if not got:
            missing.append(rel)
        inputs.update(got)
    rootfs, shell, image_key, image_env = ctx.executor.prepare(step) if ctx.executor else (None, "sh", "remote", {})
    key = step_key(engine_version=ENGINE_VERSION, image_digest=image_key, shell=shell, commands=commands,
                   env=ctx.env, inputs={k: v[0] for k, v in inputs.items()}, outputs=step.outputs,
                   device=ctx.device)
    data.update(cache_key=key, inputs=_files(inputs), runner=ctx.backend, runner_version=ctx.runner_version)
    if missing:
        ctx.failed = f"step {step.name}: declared input(s) {', '.join(missing)} do not exist as regular files " \
                     "(not in the recipe and not produced by an earlier step)"
        data["error"] = ctx.failed
        return data
    cacheable = step.cache and bool(step.outputs)
    if cacheable and not ctx.force:
        hit = ctx.cache.get(key)
        if hit is not None:
            _remove_outputs(ws, step.outputs)
            ctx.cache.restore(hit, ws)
            ctx.cached.append(step.name)
            data.update(cached=True, exit_code=0, stdout=hit.stdout, stderr=hit.stderr, outputs=_files(hit.outputs),
                        devices=hit.devices)
            return data
    _remove_outputs(ws, step.outputs)  # stale outputs never survive into a rerun
    (ws / PROVENANCE_FILE).unlink(missing_ok=True)
    logdir = ctx.run_dir / "logs" / step.name
    logdir.mkdir(parents=True, exist_ok=True)
    data["started"] = _now()
    code = 0
    assert ctx.executor is not None
    for j, cmd in enumerate(commands):
        code = ctx.executor.run(rootfs, shell, cmd, ws, {**image_env, **ctx.env}, step.resources.timeout_s,
                                logdir / f"{j}.stdout", logdir / f"{j}.stderr")
        if code != 0:
            data["error"] = f"command {j} exited with {code}" + (" (timed out)" if code == 124 else "")
            break
    data.update(ended=_now(), exit_code=code, devices=_read_devices(ws))
    ctx.executed.append(step.name)
    for stream in ("stdout", "stderr"):
        joined = ctx.run_dir / "logs" / f"{step.name}.{stream}"
        with open(joined, "wb") as out:
            for j in range(len(commands)):
                part = logdir / f"{j}.{stream}"
                if part.is_file():
                    out.write(part.read_bytes())
        data[stream] = ctx.archive.store.put_file(joined).digest
        ctx.logs.append((f"logs/{step.name}.{stream}", data[stream], joined.stat().st_size))
    if code != 0:
        ctx.failed = f"step {step.name}: {data['error']}; see its stderr log {data['stderr']}"
        return data
    outputs: dict[str, tuple[str, int]] = {}
    absent = []
    try:
        for rel in step.outputs:
            got = path_digests(ws, rel)
            if not got:
                absent.append(rel)
            outputs.update(got)
    except ExecutionError as exc:  # e.g. an output that is a symbolic link: refused, nothing promoted
        ctx.failed = f"step {step.name}: {exc.reason}"
        data["error"] = ctx.failed
        return data
    if absent:
        ctx.failed = f"step {step.name}: declared output(s) {', '.join(absent)} were not produced"
        data["error"] = ctx.failed
        data["exit_code"] = code
        return data
    for rel in outputs:  # promote only now: the step succeeded and produced everything it declared
        ctx.archive.store.put_file(ws / rel)
    data["outputs"] = _files(outputs)
    if cacheable and ctx.write_cache:
        ctx.cache.put(CacheEntry(key, outputs, data["stdout"], data["stderr"], data["devices"]))
    return data


@dataclass
class _Ctx:
    archive: Archive
    run_dir: Path
    workspace: Path
    params: dict[str, Any]
    env: dict[str, str]
    device: str
    backend: str
    force: bool
    write_cache: bool
    cache: StepCache
    executor: _Executor | None
    runner_version: str | None
    failed: str | None = None
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    logs: list[tuple[str, str, int]] = field(default_factory=list)


def run_recipe(
    archive: Archive, recipe: str | Path, *, parameters: Mapping[str, Any] | None = None, backend: str = "local",
    device: str = "cpu", force: bool = False, compare_with: str | None = None, write_cache: bool = True,
) -> RunResult:
    """Run a recorded recipe (``recipe/NAME@VERSION``) or a recipe directory (recorded first).

    Args:
        archive: the archive holding the recipe, its images and the step cache.
        recipe: a recipe reference or a directory with a reana.yaml.
        parameters: ``name -> value`` overrides of ``inputs.parameters`` (strings are converted to the
            declared parameter's type).
        backend: ``local`` (host, no image), ``bwrap``, ``podman``, ``docker``, ``apptainer`` or ``reana``.
        device: ``cpu`` or ``gpu`` (part of every cache key; ``gpu`` binds the host's NVIDIA devices).
        force: run every step even when the cache holds its outputs.
        compare_with: a run reference: compare the outputs with that run's and store the verdict.
        write_cache: store cache entries for steps that ran.

    Returns:
        The run record (written to the catalog whether the run succeeded or failed) and what ran.
    """
    from archive.execution._host import has_gpu

    if backend not in BACKENDS:
        raise ValidationError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}", field="--backend")
    if device not in ("cpu", "gpu"):
        raise ValidationError(f"unknown device {device!r}; use cpu or gpu", field="--device")
    if device == "gpu" and backend != "reana" and not has_gpu():
        raise ExecutionError("--device gpu: this host has no NVIDIA GPU (/dev/nvidia0 missing); use --device cpu",
                             field="--device")
    rec = _resolve_recipe(archive, recipe)
    spec = rec.recipe
    if spec.engine != "serial" and backend != "reana":
        raise UnsupportedOperationError(f"{rec.ref} is a {spec.engine} workflow: it is validated and recorded, "
                                        "run it with --backend reana or with its own engine", field="--backend")
    params = merge_parameters(spec.parameters, parameters)
    if backend not in ("local", "reana"):  # every image must be in the archive before anything runs
        from archive.execution._images import container_for_digest

        for i, step in enumerate(spec.steps):
            if step.image is None and (step.image_digest is None
                                       or container_for_digest(archive, step.image_digest) is None):
                raise NotFoundError(
                    f"image {step.environment} is not in this archive; import it with `hep-archive container add` "
                    "(or use --backend local to run on the host)", file=rec.ref,
                    field=f"workflow.specification.steps[{i}].environment")
    name = f"{rec.name[:60]}-{_now().strftime('%Y%m%dt%H%M%S')}-{secrets.token_hex(3)}"
    run_dir = archive.state_dir / "runs" / name
    workspace = run_dir / "workspace"
    workspace.mkdir(parents=True)
    started = _now()
    datasets = _stage(archive, rec, workspace)
    env = dict(BASE_ENV)
    env.update({k: os.environ[k] for k in ENV_ALLOW if k in os.environ})
    env["HEP_ARCHIVE_DEVICE"] = device
    env["HEP_ARCHIVE_PROVENANCE"] = PROVENANCE_FILE
    for k in spec.parameters:
        if k.lower() in ("seed", "random_seed") or k.lower().endswith("_seed"):
            env.setdefault("HEP_ARCHIVE_SEED", str(params[k]))
    executor = _Executor(archive, backend, device) if backend != "reana" else None
    ctx = _Ctx(archive, run_dir, workspace, params, env, device, backend, force, write_cache, StepCache(archive),
               executor, executor.version if executor else None)
    steps: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    if backend == "reana":
        from archive.execution._reana import run_on_reana

        steps, extra = run_on_reana(ctx, rec)
    else:
        for step in spec.steps:
            steps.append(_run_step(ctx, step))
            if ctx.failed:
                break
    from archive.execution._record import finish_run

    record = finish_run(ctx, rec, name, steps, started, datasets, compare_with, extra)
    return RunResult(record, workspace, ctx.executed, ctx.cached)
