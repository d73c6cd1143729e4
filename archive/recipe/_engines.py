"""Validate CWL and Yadage workflow files with their own tools, in a sandbox.

The tools come from the reana-client environment (reana-commons installs ``cwltool`` and ``yadage``). They
run under bubblewrap with the host root read-only, a private ``/tmp``, the recipe bound read-only, no network
(``--unshare-all``) and a cleared environment, as REANA's own server-side validator does. Snakefiles are never
loaded: building a Snakemake DAG executes the Snakefile's Python, so they are recorded unchecked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["validate_workflow_file"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOOLS = {"cwl": ("cwltool", ["--validate"]), "yadage": ("yadage-validate", ["-t", "."])}
TIMEOUT_S = 120


def validate_workflow_file(root: Path, engine: str, workflow_file: str) -> tuple[bool | None, str]:
    """``(True, tool)`` valid, ``(False, message)`` invalid, ``(None, why not checked)``."""
    from archive.recipe._reana_schema import reana_python

    if engine == "snakemake":
        return None, "Snakefile not loaded (building its DAG would execute it); recorded unchecked"
    if engine not in TOOLS:
        return None, f"no validator for {engine}"
    tool, args = TOOLS[engine]
    python = reana_python()
    exe = python.parent / tool if python is not None else None
    bwrap = shutil.which("bwrap")
    if exe is None or not exe.exists() or bwrap is None:
        return None, f"{tool} (reana environment) or bwrap not available; {workflow_file} not validated"
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
           "--ro-bind", str(root.absolute()), "/tmp/recipe", "--unshare-all", "--die-with-parent", "--new-session",
           "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin", "--chdir", "/tmp/recipe",
           "--", str(exe), *args, workflow_file]
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
