"""Helpers shared by the execution tests (a uniquely named module: ``conftest`` names clash across folders)."""

from __future__ import annotations

import textwrap
from pathlib import Path

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
