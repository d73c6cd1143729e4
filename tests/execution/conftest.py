"""Fixtures for the execution tests: small recipe folders written in code, and the busybox test image."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BUSYBOX = "hep-archive:container/busybox@1.0.0"

TWO_STEP = """\
version: 0.9.0
inputs:
  files: [data/a.txt, data/b.txt]
  parameters:
    greeting: hello
outputs:
  files: [results/final.txt]
workflow:
  type: serial
  specification:
    steps:
      - name: upper
        environment: "{env}"
        commands:
          - mkdir -p results && tr a-z A-Z < data/a.txt > results/upper.txt
      - name: final
        environment: "{env}"
        commands:
          - cat results/upper.txt data/b.txt > results/final.txt
          - echo "$greeting $$HOME" >> results/final.txt
"""

TWO_STEP_SIDE = """\
steps:
  upper: {inputs: [data/a.txt], outputs: [results/upper.txt]}
  final: {inputs: [results/upper.txt, data/b.txt], outputs: [results/final.txt]}
"""


def write_recipe(root: Path, spec: str, side: str | None = None, files: dict[str, str] | None = None) -> Path:
    """Write a recipe folder: reana.yaml, an optional hep-archive.yaml and data files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "reana.yaml").write_text(textwrap.dedent(spec))
    if side is not None:
        (root / "hep-archive.yaml").write_text(textwrap.dedent(side))
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def two_step(tmp_path: Path) -> Callable[..., Path]:
    """``two_step(env=...)``: the two-step recipe (upper -> final) with its declared inputs and outputs."""

    def make(env: str = BUSYBOX, name: str = "twostep") -> Path:
        return write_recipe(tmp_path / name, TWO_STEP.format(env=env), TWO_STEP_SIDE,
                            {"data/a.txt": "alpha\nbeta\n", "data/b.txt": "gamma\n"})

    return make


@pytest.fixture(scope="session")
def busybox_oci(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from archive.container.testing import build_busybox_oci
    from archive.errors import MissingDependencyError

    try:
        return build_busybox_oci(tmp_path_factory.mktemp("oci") / "busybox")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def image_archive(tmp_archive: Any, busybox_oci: Path) -> Any:
    """An archive holding the busybox test image as container/busybox@1.0.0."""
    from archive.container import add_image

    add_image(tmp_archive, busybox_oci, name="busybox", version="1.0.0")
    return tmp_archive


@pytest.fixture(scope="session")
def bwrap_ok() -> None:
    from archive.container import get_runner

    if shutil.which("bwrap") is None:
        pytest.skip("bwrap (bubblewrap) is not installed")
    reason = get_runner("bwrap").available()
    if reason:
        pytest.skip(reason)
