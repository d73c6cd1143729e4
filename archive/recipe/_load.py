"""Load and check a recipe directory: ``reana.yaml`` plus the optional ``hep-archive.yaml`` side file.

Every problem names the file and the path inside it (``workflow.specification.steps[1].commands[0]``).
Nothing in the recipe is executed: commands are parsed as ``string.Template`` text only."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import Problem, UnsafeInputError, ValidationError
from archive.schema._yaml import load_yaml_file

if TYPE_CHECKING:
    from archive._archive import Archive
    from archive.schema.v1.recipe import RecipeSpec

__all__ = ["SIDE_FILE", "SPEC_FILE", "LoadedRecipe", "load_recipe", "validate_recipe_dir"]

SPEC_FILE = "reana.yaml"
SIDE_FILE = "hep-archive.yaml"
ENGINES = ("serial", "cwl", "yadage", "snakemake")
TOP_KEYS = {"version", "inputs", "workflow", "outputs", "tests", "workspace"}
DANGEROUS = ("sudo ", "cd /")  # reana-commons' list
HEP_PREFIX = "hep-archive:"
_PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_CONTAINER_REF = re.compile(r"^container/[a-z0-9][a-z0-9._-]*@\d+\.\d+\.\d+\S*$")
_K8S_MEM = re.compile(r"^[1-9]\d*(\.\d+)?(E|P|T|G|M|K|Ei|Pi|Ti|Gi|Mi|Ki)?$")
_K8S_CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
SIDE_STEP_KEYS = {"inputs", "outputs", "cache", "gpu"}
SIDE_TOP_KEYS = {"title", "description", "steps", "tolerances", "datasets", "seeds"}


@dataclass
class LoadedRecipe:
    """A checked recipe directory: its spec (``RecipeSpec``), raw reana.yaml data and its files."""

    root: Path
    spec: RecipeSpec
    raw: dict[str, Any]
    files: list[str]  # every file of the recipe, relative, sorted
    title: str | None = None
    description: str | None = None
    seeds: dict[str, Any] = field(default_factory=dict)


class _Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.schema_source: str | None = None
        self.tools: list[str] = []
        self.strict_images = True

    def err(self, fname: str, path: str, reason: str) -> None:
        self.problems.append(Problem(fname, path, reason))

    def relpath(self, fname: str, path: str, value: Any, *, must_exist: bool = False) -> str | None:
        if not isinstance(value, str) or not value:
            self.err(fname, path, f"expected a relative path string, got {value!r}")
            return None
        v = value.rstrip("/")
        parts = v.split("/")
        if v.startswith("/") or ".." in parts or "\\" in v:
            self.err(fname, path, f"{value!r} must be a relative path inside the recipe directory "
                     "(no leading '/', no '..')")
            return None
        v = "/".join(p for p in parts if p not in ("", "."))
        if must_exist and not (self.root / v).exists():
            self.err(fname, path, f"{value!r} does not exist in {self.root.name}/; add the file or fix the path")
            return None
        return v


def _files_of(root: Path) -> list[str]:
    out: list[str] = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if any(part.startswith(".git") for part in rel.split("/")) or "__pycache__" in rel:
            continue
        if p.is_symlink():
            raise UnsafeInputError(
                "recipes may not contain symbolic links; replace the link by the file it points to",
                file=str(p),
            )
        if p.is_file():
            out.append(rel)
    return out


def _params_in(cmd: str) -> list[str] | None:
    """The ``$name``/``${name}`` placeholders of a command (None when the template is invalid)."""
    names: list[str] = []
    for m in string.Template.pattern.finditer(cmd):
        if m.group("invalid") is not None:
            return None
        name = m.group("named") or m.group("braced")
        if name:
            names.append(name)
    return names


def _resolve_image(
    chk: _Checker, where: str, env: Any, archive: Archive | None
) -> tuple[str | None, str | None]:
    """``(container record ref, image digest)`` for a step's ``environment``; errors when it is not pinned."""
    if not isinstance(env, str) or not env:
        chk.err(SPEC_FILE, where, "'environment' is required: hep-archive:container/NAME@VERSION or repo@sha256:DIGEST")
        return None, None
    if env.startswith(HEP_PREFIX):
        ref = env[len(HEP_PREFIX):]
        if not _CONTAINER_REF.match(ref):
            chk.err(SPEC_FILE, where, f"{env!r} must name a container record with its exact version, "
                    "e.g. hep-archive:container/NAME@1.0.0")
            return None, None
        if archive is None:
            return ref, None
        from archive.execution._images import image_digest_of

        try:
            rec = archive.record(ref)
        except Exception as exc:  # RecordNotFoundError and invalid records alike
            # the recorded warning must depend on the recipe alone (not on what else is in the catalog),
            # so that recording the same recipe twice gives the same record
            why = "is not in the catalog" if isinstance(exc, LookupError) else "is not a valid record"
            msg = f"{ref} {why}; add it with `hep-archive container add`"
            if chk.strict_images:
                chk.err(SPEC_FILE, where, msg)
            else:
                chk.warnings.append(f"{where}: {msg}")
            return None, None
        return ref, image_digest_of(rec)
    if _PINNED.match(env):
        digest = env.rsplit("@", 1)[1]
        if archive is not None:
            from archive.execution._images import container_for_digest

            return container_for_digest(archive, digest), digest
        return None, digest
    chk.err(SPEC_FILE, where, f"image {env!r} is not pinned; use hep-archive:container/NAME@VERSION "
            "or repo@sha256:<manifest digest> so that the step runs in the same image forever")
    return None, None


def _check_serial(chk: _Checker, raw: dict[str, Any], params: dict[str, Any], side: dict[str, Any],
                  archive: Archive | None) -> list[dict[str, Any]]:
    wf = raw.get("workflow") or {}
    spec = wf.get("specification")
    base = "workflow.specification"
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list) or not spec["steps"]:
        chk.err(SPEC_FILE, f"{base}.steps", "a serial workflow needs a non-empty list of steps")
        return []
    side_steps = side.get("steps") or {}
    steps: list[dict[str, Any]] = []
    used: set[str] = set()
    for i, step in enumerate(spec["steps"]):
        where = f"{base}.steps[{i}]"
        if not isinstance(step, dict):
            chk.err(SPEC_FILE, where, "each step must be a mapping with 'environment' and 'commands'")
            continue
        name = step.get("name") or f"step{i + 1}"
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", name):
            chk.err(SPEC_FILE, f"{where}.name", f"{name!r}: use letters, digits, '.', '_' or '-'")
            continue
        image, digest = _resolve_image(chk, f"{where}.environment", step.get("environment"), archive)
        cmds = step.get("commands")
        if not isinstance(cmds, list) or not cmds:
            chk.err(SPEC_FILE, f"{where}.commands", "'commands' must be a non-empty list of shell commands")
            cmds = []
        for j, cmd in enumerate(cmds):
            cw = f"{where}.commands[{j}]"
            if not isinstance(cmd, str) or not cmd.strip():
                chk.err(SPEC_FILE, cw, "a command must be a non-empty string")
                continue
            names = _params_in(cmd)
            if names is None:
                chk.err(SPEC_FILE, cw, "a lone '$' is not a parameter; write '$$' for a literal '$'")
                continue
            for n in names:
                used.add(n)
                if n not in params:
                    chk.err(SPEC_FILE, cw, f"unknown parameter ${n}; declare it under inputs.parameters "
                            "or write '$$' for a literal '$'")
            chk.warnings.extend(f"{cw}: '{d.strip()}' might be dangerous" for d in DANGEROUS if d in cmd)
        timeout = step.get("kubernetes_job_timeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            chk.err(SPEC_FILE, f"{where}.kubernetes_job_timeout", f"{timeout!r}: give whole seconds > 0")
        for key, rx in (("kubernetes_memory_limit", _K8S_MEM), ("kubernetes_cpu_limit", _K8S_CPU)):
            val = step.get(key)
            if val is not None and not (isinstance(val, str) and rx.match(val)):
                chk.err(SPEC_FILE, f"{where}.{key}", f"{val!r} is not a Kubernetes quantity (e.g. '2Gi', '500m')")
        ann = side_steps.get(name) or {}
        sw = f"steps.{name}"
        for key in ann:
            if key not in SIDE_STEP_KEYS:
                chk.err(SIDE_FILE, f"{sw}.{key}", f"unknown key; allowed: {', '.join(sorted(SIDE_STEP_KEYS))}")
        cache = ann.get("cache", True)
        if not isinstance(cache, bool):
            chk.err(SIDE_FILE, f"{sw}.cache", "use 'on' or 'off'")
            cache = True
        gpu = ann.get("gpu", 0)
        if isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0:
            chk.err(SIDE_FILE, f"{sw}.gpu", f"{gpu!r}: give the number of GPUs (0 or more)")
            gpu = 0
        ins = [chk.relpath(SIDE_FILE, f"{sw}.inputs[{k}]", v) for k, v in enumerate(ann.get("inputs") or [])]
        outs = [chk.relpath(SIDE_FILE, f"{sw}.outputs[{k}]", v) for k, v in enumerate(ann.get("outputs") or [])]
        steps.append({
            "name": name, "environment": step.get("environment") or "", "image": image, "image_digest": digest,
            "commands": [c for c in cmds if isinstance(c, str)], "cache": cache,
            "inputs": [p for p in ins if p], "outputs": [p for p in outs if p],
            "declared_inputs": "inputs" in ann,
            "resources": {"cpu": step.get("kubernetes_cpu_limit"), "memory": step.get("kubernetes_memory_limit"),
                          "gpu": gpu, "timeout_s": timeout if isinstance(timeout, int) and timeout > 0 else None},
        })
    for name in side_steps:
        if name not in {s["name"] for s in steps}:
            chk.err(SIDE_FILE, f"steps.{name}", f"no step named {name!r} in {SPEC_FILE} "
                    f"(steps: {', '.join(s['name'] for s in steps)})")
    for p in params:
        if p not in used:
            chk.warnings.append(f"inputs.parameters.{p}: parameter is not used by any command")
    return steps


def load_recipe(directory: str | Path, archive: Archive | None = None, *, native: bool = True,
                strict_images: bool = True) -> LoadedRecipe:
    """Load and check a recipe directory. Raises ValidationError listing every problem.

    Args:
        directory: the folder holding ``reana.yaml`` (and optionally ``hep-archive.yaml``).
        archive: when given, step images are resolved to container records of this archive.
        native: also validate CWL/Yadage workflow files with their own tools, sandboxed (never Snakefiles).
        strict_images: a container record missing from ``archive`` is an error (else a warning).
    """
    from archive.schema.v1.recipe import RecipeSpec

    root = Path(directory)
    spec_path = root / SPEC_FILE
    if not spec_path.is_file():
        raise ValidationError(f"no {SPEC_FILE} in this directory; a recipe is a folder with a {SPEC_FILE}",
                              file=str(root))
    files = _files_of(root)
    raw = load_yaml_file(spec_path, source=str(spec_path))
    chk = _Checker(root)
    chk.strict_images = strict_images
    if not isinstance(raw, dict):
        raise ValidationError("the top level must be a mapping (version, inputs, workflow, outputs)",
                              file=str(spec_path))
    side: dict[str, Any] = {}
    side_path = root / SIDE_FILE
    if side_path.is_file():
        side = load_yaml_file(side_path, source=str(side_path)) or {}
        if not isinstance(side, dict):
            raise ValidationError("the side file must be a mapping", file=str(side_path))
        for key in side:
            if key not in SIDE_TOP_KEYS:
                chk.err(SIDE_FILE, str(key), f"unknown key; allowed: {', '.join(sorted(SIDE_TOP_KEYS))}")
    for key in raw:
        if key not in TOP_KEYS:
            chk.warnings.append(f"{key}: unexpected property (REANA ignores it)")
    inputs = raw.get("inputs") or {}
    if not isinstance(inputs, dict):
        chk.err(SPEC_FILE, "inputs", "must be a mapping with files, directories, parameters, options")
        inputs = {}
    params = inputs.get("parameters") or {}
    if not isinstance(params, dict):
        chk.err(SPEC_FILE, "inputs.parameters", "must be a mapping of name: value")
        params = {}
    for k, v in params.items():
        if not isinstance(v, str | int | float | bool):
            chk.err(SPEC_FILE, f"inputs.parameters.{k}", f"{v!r}: parameter values must be scalars")
    in_files = [chk.relpath(SPEC_FILE, f"inputs.files[{i}]", v, must_exist=True)
                for i, v in enumerate(inputs.get("files") or [])]
    in_dirs = [chk.relpath(SPEC_FILE, f"inputs.directories[{i}]", v, must_exist=True)
               for i, v in enumerate(inputs.get("directories") or [])]
    outputs = raw.get("outputs") or {}
    out_files = [chk.relpath(SPEC_FILE, f"outputs.files[{i}]", v) for i, v in enumerate(outputs.get("files") or [])]
    out_dirs = [chk.relpath(SPEC_FILE, f"outputs.directories[{i}]", v)
                for i, v in enumerate(outputs.get("directories") or [])]
    wf = raw.get("workflow")
    engine = wf.get("type") if isinstance(wf, dict) else None
    steps: list[dict[str, Any]] = []
    workflow_file = None
    if not isinstance(wf, dict):
        chk.err(SPEC_FILE, "workflow", "required: a mapping with 'type' and 'specification' or 'file'")
    elif engine not in ENGINES:
        chk.err(SPEC_FILE, "workflow.type", f"{engine!r} is not one of {', '.join(ENGINES)}")
    elif engine == "serial":
        steps = _check_serial(chk, raw, params, side, archive)
    else:
        if wf.get("file") is None and wf.get("specification") is None:
            chk.err(SPEC_FILE, "workflow.file", f"a {engine} workflow needs 'file' (or 'specification')")
        if wf.get("file") is not None:
            workflow_file = chk.relpath(SPEC_FILE, "workflow.file", wf["file"], must_exist=True)
        if workflow_file is not None and native:
            from archive.recipe._engines import validate_workflow_file

            ok, message = validate_workflow_file(root, engine, workflow_file,
                                                 archive.root if archive is not None else None)
            if ok is False:
                chk.err(workflow_file, "", message)
            elif ok:
                chk.tools.append(message)
            else:
                chk.warnings.append(f"workflow.file: {message}")
        if side.get("steps"):
            chk.err(SIDE_FILE, "steps", f"step annotations apply to serial workflows only, not {engine}")
    _check_schema(chk, raw, archive.root if archive is not None else None)
    tolerances: dict[str, Any] = {}
    for path, tol in (side.get("tolerances") or {}).items():
        p = chk.relpath(SIDE_FILE, f"tolerances.{path}", path)
        if p and not isinstance(tol, dict):
            chk.err(SIDE_FILE, f"tolerances.{path}", "give a mapping with atol, rtol or chi2_p_min")
        elif p:
            tolerances[p] = tol
    datasets = dict(side.get("datasets") or {})
    if chk.problems:
        raise ValidationError(f"{len(chk.problems)} problem(s) in recipe {root.name}", file=str(spec_path),
                              problems=chk.problems)
    validated_with = ["hep-archive"] + ([chk.schema_source] if chk.schema_source else []) + chk.tools
    data: dict[str, Any] = {
        "engine": engine, "side_file": SIDE_FILE if side_path.is_file() else None, "workflow_file": workflow_file,
        "reana_version": str(raw["version"]) if raw.get("version") is not None else None,
        "parameters": params, "input_files": [p for p in in_files if p],
        "input_directories": [p for p in in_dirs if p], "output_files": [p for p in out_files if p],
        "output_directories": [p for p in out_dirs if p], "datasets": datasets, "tolerances": tolerances,
        "steps": [_finish_step(s, i, steps, [p for p in in_files if p], [p for p in in_dirs if p], files,
                               [p for p in out_files if p]) for i, s in enumerate(steps)],
        "gpu": any(s["resources"]["gpu"] for s in steps),
        "validated_with": validated_with, "warnings": chk.warnings[:200],
    }
    spec = _model(RecipeSpec, data, str(spec_path))
    return LoadedRecipe(root, spec, raw, files, side.get("title"), side.get("description"),
                        dict(side.get("seeds") or {}))


def _finish_step(s: dict[str, Any], i: int, steps: list[dict[str, Any]], in_files: list[str],
                 in_dirs: list[str], files: list[str], out_files: list[str]) -> dict[str, Any]:
    """Default declarations: inputs = every recipe input and earlier output; the last step's outputs =
    the workflow outputs."""
    s = dict(s)
    if not s.pop("declared_inputs"):
        dir_files = [f for f in files if any(f.startswith(d + "/") for d in in_dirs)]
        earlier = [o for prev in steps[:i] for o in prev["outputs"]]
        s["inputs"] = sorted(set(in_files) | set(dir_files) | set(earlier))
    if not s["outputs"] and i == len(steps) - 1:
        s["outputs"] = list(out_files)
    return s


def _model(cls: Any, data: dict[str, Any], label: str) -> Any:
    import pydantic

    from archive.schema import problems_from_pydantic

    try:
        return cls.model_validate(data)
    except pydantic.ValidationError as err:
        raise ValidationError("invalid recipe declarations", file=label,
                              problems=problems_from_pydantic(err, label)) from None


def _check_schema(chk: _Checker, raw: dict[str, Any], archive_root: Path | None) -> None:
    from archive.recipe._reana_schema import find_reana_schema, schema_errors

    schema = find_reana_schema(archive_root)
    if schema is None:
        chk.warnings.append("REANA's JSON schema (reana-commons) not found; only hep-archive checks ran")
        return
    errors, warnings = schema_errors(raw, schema)
    seen = {(p.file, p.field) for p in chk.problems}
    for path, msg in errors:
        if (SPEC_FILE, path) not in seen:
            chk.err(SPEC_FILE, path, f"{msg} (REANA schema)")
    chk.warnings.extend(warnings)
    chk.schema_source = schema.source


def validate_recipe_dir(directory: str | Path, archive: Archive | None = None) -> LoadedRecipe:
    """Check a recipe without recording it: the checks of :func:`load_recipe`, except that a container record
    not (yet) in the archive is a warning."""
    return load_recipe(directory, archive, strict_images=False)
