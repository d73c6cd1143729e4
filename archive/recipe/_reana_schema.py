"""REANA's own JSON schema for reana.yaml, found in an installed reana-commons (never copied here)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["ReanaSchema", "find_reana_schema", "reana_python", "schema_errors"]

_SCHEMA_REL = Path("reana_commons") / "validation" / "schemas" / "reana_analysis_schema.json"
REANA_PYTHON_ENV = "HEP_ARCHIVE_REANA_PYTHON"
REANA_VENV = ".venv-reana"


@dataclass(frozen=True)
class ReanaSchema:
    schema: dict[str, Any]
    source: str  # e.g. "reana-commons 0.9.11"
    path: Path


def reana_python(archive_root: str | os.PathLike[str] | None = None) -> Path | None:
    """The interpreter of the separate reana-client environment, from explicit settings only:

    1. ``$HEP_ARCHIVE_REANA_PYTHON`` (when set it decides: a path that does not exist means none);
    2. ``ARCHIVE_ROOT/.venv-reana/bin/python`` when an archive root is given;
    3. the interpreter beside a ``reana-client`` found on ``PATH`` (a venv's or pipx's ``bin``).

    Never a path derived from where this package is installed: an installed wheel has no checkout around it."""
    env = os.environ.get(REANA_PYTHON_ENV)
    if env:
        given = Path(env).expanduser().absolute()
        return given if given.exists() else None
    if archive_root is not None:
        cand = Path(archive_root).absolute() / REANA_VENV / "bin" / "python"
        if cand.exists():
            return cand
    client = shutil.which("reana-client")
    if client:
        for bindir in dict.fromkeys([Path(client).absolute().parent, Path(client).resolve().parent]):
            for name in ("python", "python3"):
                if (bindir / name).exists():
                    return bindir / name
    return None


def _candidates(python: Path | None) -> list[Path]:
    out: list[Path] = []
    spec = importlib.util.find_spec("reana_commons")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            out.append(Path(loc).parent / _SCHEMA_REL)
    if python is not None:
        venv = python.parent.parent
        out.extend(sorted(venv.glob(f"lib/python3*/site-packages/{_SCHEMA_REL.as_posix()}")))
    return out


def find_reana_schema(archive_root: str | os.PathLike[str] | None = None) -> ReanaSchema | None:
    """REANA's reana.yaml JSON schema from reana-commons (in-process or in the reana environment that
    :func:`reana_python` finds for ``archive_root``), or None."""
    return _schema_for(reana_python(archive_root))


@lru_cache(maxsize=8)
def _schema_for(python: Path | None) -> ReanaSchema | None:
    for path in _candidates(python):
        if path.is_file():
            version = "unknown"
            site = path.parents[3]
            for dist in sorted(site.glob("reana_commons-*.dist-info")):
                version = dist.name[: -len(".dist-info")].split("-")[1]
            return ReanaSchema(json.loads(path.read_text()), f"reana-commons {version}", path)
    return None


def _json_path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def schema_errors(spec: Any, schema: ReanaSchema) -> tuple[list[tuple[str, str]], list[str]]:
    """Validate ``spec`` with REANA's schema: ``([(path, message)] errors, [warnings])``.

    As in reana-commons, unexpected properties are warnings, not errors."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema.schema)
    errors: list[tuple[str, str]] = []
    warnings: list[str] = []
    for err in sorted(validator.iter_errors(spec), key=lambda e: [str(p) for p in e.absolute_path]):
        path = _json_path(list(err.absolute_path)) or "(top level)"
        if err.validator == "additionalProperties":
            warnings.append(f"{path}: {err.message} (REANA ignores unexpected properties)")
        elif err.validator in ("if", "then", "anyOf") and err.context:
            for sub in err.context:
                sub_path = _json_path(list(err.absolute_path) + list(sub.relative_path)) or "(top level)"
                if sub.validator == "additionalProperties":
                    warnings.append(f"{sub_path}: {sub.message}")
                else:
                    errors.append((sub_path, sub.message))
        else:
            errors.append((path, err.message))
    return errors, warnings
