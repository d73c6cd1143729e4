"""One lock, every environment: the locks agree with pyproject.toml, with each other, and with what is installed.

``./run setup`` installs ``.venv`` from ``locks/core.txt`` and ``.venv-reana`` from ``locks/reana.txt`` with
``--require-hashes`` and resolves nothing; the chain image's ``containers/*/requirements.txt`` is compiled from
the same core lock. ``./run lock`` is the only place versions are chosen. These tests fail when someone edits
``pyproject.toml`` (or a ``.in`` file) without re-locking, or hand-edits a derived pin list.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "locks"
# the locks are compiled for this platform (./run lock: --python-version 3.11 --python-platform x86_64-manylinux)
ENV = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.7",
       "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"}


def parse_lock(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, hashes) of a lock written by ``uv pip compile --generate-hashes``."""
    entries: dict[str, tuple[Version, list[str]]] = {}
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        spec, *options = re.split(r"\s+(?=--)", line)
        req = Requirement(spec)
        pins = [s for s in req.specifier if s.operator == "=="]
        assert len(pins) == 1 and len(req.specifier) == 1, f"{path.name}: line {n}: not an exact pin: {spec}"
        hashes = [o.split("=", 1)[1] for o in options if o.startswith("--hash=")]
        entries[canonicalize_name(req.name)] = (Version(pins[0].version), hashes)
    assert entries, f"{path} holds no pins"
    return entries


def requirement_lines(path: Path) -> list[Requirement]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(Requirement(line))
    return out


def project_requirements(*, include_reana: bool = False) -> list[Requirement]:
    """pyproject.toml's dependencies plus every extra (the self-referencing ``all`` expanded)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra, items in project["optional-dependencies"].items():
        if extra == "reana" and not include_reana:
            continue
        for item in items:
            req = Requirement(item)
            if canonicalize_name(req.name) != canonicalize_name(project["name"]):
                reqs.append(req)
    return reqs


def assert_satisfied(reqs: list[Requirement], lock: dict[str, tuple[Version, list[str]]], where: str) -> None:
    problems = []
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate({**ENV, "extra": ""}):
            continue
        pinned = lock.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pinned[0], prereleases=True):
            problems.append(f"{req} is not satisfied by the locked {pinned[0]}")
    assert not problems, f"{where} and the lock disagree (run ./run lock): " + "; ".join(problems)


@pytest.fixture(scope="module")
def core() -> dict[str, tuple[Version, list[str]]]:
    return parse_lock(LOCKS / "core.txt")


def test_every_pin_is_hash_checked(core: dict[str, tuple[Version, list[str]]]) -> None:
    for lock in sorted(LOCKS.glob("*.txt")) + sorted(REPO.glob("containers/*/requirements.txt")):
        unhashed = [name for name, (_, hashes) in parse_lock(lock).items()
                    if not hashes or not all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes)]
        assert not unhashed, f"{lock.relative_to(REPO)}: pins without a sha256: {unhashed}"


def test_core_lock_satisfies_pyproject(core: dict[str, tuple[Version, list[str]]]) -> None:
    assert_satisfied(project_requirements(), core, "pyproject.toml")
    assert_satisfied(requirement_lines(LOCKS / "core.in"), core, "locks/core.in")
    # the torch of the lock is the CPU build: a CUDA torch pulls several GB of packages
    assert str(core["torch"][0]).endswith("+cpu")
    assert not [n for n in core if n.startswith("nvidia-")]


def test_reana_lock_satisfies_its_inputs() -> None:
    reana = parse_lock(LOCKS / "reana.txt")
    project_reana = [r for r in project_requirements(include_reana=True) if canonicalize_name(r.name) == "reana-client"]
    assert project_reana, "pyproject.toml's reana extra names reana-client"
    assert_satisfied(project_reana, reana, "pyproject.toml's reana extra")
    assert_satisfied(requirement_lines(LOCKS / "reana.in"), reana, "locks/reana.in")


IMAGE_PINS = sorted(str(p.relative_to(REPO)) for p in REPO.glob("containers/*/requirements.txt"))


@pytest.mark.parametrize("derived", ["locks/bootstrap.txt", *IMAGE_PINS])
def test_derived_pins_are_the_core_lock(derived: str, core: dict[str, tuple[Version, list[str]]]) -> None:
    """The bootstrap uv and every image's requirements come from the core lock: one source of versions."""
    path = REPO / derived
    pins = parse_lock(path)
    differ = {n: (str(v), str(core[n][0]) if n in core else None) for n, (v, _) in pins.items()
              if n not in core or core[n][0] != v}
    assert not differ, f"{derived} disagrees with locks/core.txt (run ./run lock): {differ}"
    source = path.with_suffix(".in")
    assert_satisfied(requirement_lines(source), pins, str(source.relative_to(REPO)))


def test_installed_environment_is_the_lock(core: dict[str, tuple[Version, list[str]]]) -> None:
    """What ./run setup installed is exactly the lock: no other version, nothing missing, nothing extra."""
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip(f"the suite runs in {sys.prefix}, not the project's .venv made by ./run setup")
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in md.distributions()}
    installed.pop("hep-archive", None)
    wrong = {n: (str(installed.get(n)), str(v)) for n, (v, _) in core.items() if installed.get(n) != v}
    extra = sorted(set(installed) - set(core))
    assert not wrong, f"installed differs from locks/core.txt (installed, locked): {wrong}"
    assert not extra, f"installed but not locked: {extra}"
