"""Validate CWL and Yadage workflow files with their own tools, in a sandbox.

The tools come from the reana-client environment (reana-commons installs ``cwltool`` and ``yadage``). They
run under bubblewrap with the host root read-only, a private ``/tmp``, the recipe bound read-only, no network
(``--unshare-all``) and a cleared environment, as REANA's own server-side validator does. Snakefiles are never
loaded: building a Snakemake DAG executes the Snakefile's Python, so they are recorded unchecked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

__all__ = ["sandbox_command", "validate_workflow_file"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOOLS = {"cwl": ("cwltool", ["--validate"]), "yadage": ("yadage-validate", ["-t", "."])}
TIMEOUT_S = 120
RECIPE_MOUNT = "/tmp/recipe"
_REPLACED = (Path("/tmp"), Path("/dev"))  # host folders the sandbox replaces


def _tool_paths(python: Path, exe: Path) -> list[Path]:
    """What the tool reads from the host: its environment (``sys.prefix``, the base interpreter's prefix and
    every ``sys.path`` entry, as the interpreter itself reports them, isolated as in the sandbox) and the
    script. Outermost paths only, absolute and unresolved (a symlinked venv must keep its own name)."""
    probe = ("import sys, json; print(json.dumps([sys.prefix, sys.exec_prefix, sys.base_prefix, "
             "sys.base_exec_prefix, *sys.path]))")
    paths = [python.parent.parent, exe.parent, exe.resolve().parent]
    try:
        out = subprocess.run([str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=60,
                             check=False, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
        if out.returncode == 0:
            paths += [Path(p) for p in json.loads(out.stdout.strip().splitlines()[-1]) if p]
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        pass
    return _outermost(Path(os.path.abspath(p)) for p in paths if p.exists())


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths not inside another of them, parents first."""
    outer: list[Path] = []
    for p in sorted(set(paths), key=lambda p: (len(p.parts), str(p))):
        if not any(p.is_relative_to(o) for o in outer):
            outer.append(p)
    return outer


def _hidden_binds(paths: Iterable[Path]) -> list[Path]:
    """Of ``paths`` (and where their symlinks lead), those inside a host folder the sandbox replaces (never that
    folder itself: the sandbox's /tmp stays private)."""
    out: list[Path] = []
    for path in paths:
        for p in (path, Path(os.path.realpath(path))):
            if any(p != h and p.is_relative_to(h) for h in _REPLACED):
                out.append(p)
    return _outermost(out)


def sandbox_command(bwrap: str, root: Path, python: Path, exe: Path, args: list[str]) -> list[str]:
    """The bwrap command line that runs ``python exe ARGS`` on the recipe at ``root`` (bound at
    ``/tmp/recipe``): the host root read-only, then a private ``/tmp`` and fresh ``/dev``, then the tool's own
    environment bound back read-only at its host path when one of those replaced it (a checkout, a venv or an
    archive under ``/tmp``): binds placed after the tmpfs, or the tmpfs would hide them."""
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in _hidden_binds(_tool_paths(python, exe)):
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--ro-bind", str(root.absolute()), RECIPE_MOUNT, "--unshare-all", "--die-with-parent", "--new-session",
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin", "--chdir", RECIPE_MOUNT,
            "--", str(python), str(exe), *args]
    return cmd


def validate_workflow_file(root: Path, engine: str, workflow_file: str,
                           archive_root: Path | None = None) -> tuple[bool | None, str]:
    """``(True, tool)`` valid, ``(False, message)`` invalid, ``(None, why not checked)``.

    The tool comes from the reana environment that :func:`~archive.recipe._reana_schema.reana_python` finds
    (``$HEP_ARCHIVE_REANA_PYTHON``, ``archive_root/.venv-reana``, or ``reana-client`` on ``PATH``)."""
    from archive.recipe._reana_schema import reana_python

    if engine == "snakemake":
        return None, "Snakefile not loaded (building its DAG would execute it); recorded unchecked"
    if engine not in TOOLS:
        return None, f"no validator for {engine}"
    tool, args = TOOLS[engine]
    python = reana_python(archive_root)
    exe = python.parent / tool if python is not None else None
    bwrap = shutil.which("bwrap")
    if python is None or exe is None or not exe.exists() or bwrap is None:
        return None, f"{tool} (reana environment) or bwrap not available; {workflow_file} not validated"
    # the script is run by the environment's interpreter: its #! line may name another path (a moved or
    # symlinked venv) or be a /bin/sh trampoline (an install path with a space)
    cmd = sandbox_command(bwrap, root, python, exe, [*args, workflow_file])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"{tool} did not finish within {TIMEOUT_S} s"
    text = _ANSI.sub("", proc.stdout + proc.stderr)
    version = tool
    m = re.search(rf"{tool} (\d[\w.]*)", text)
    if m:
        version = f"{tool} {m.group(1)}"
    if proc.returncode == 0 and "ERROR" not in text:
        return True, version
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "pkg_resources" not in ln and not ln.startswith(("INFO", "import "))]
    return False, "; ".join(lines[-6:])[:2000] or f"{tool} exited {proc.returncode}"
