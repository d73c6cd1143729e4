"""Library code never reaches outside the ``archive`` package by paths relative to its own files.

An installed wheel has nothing beside ``site-packages/archive``: the recipes, containers and test data are the
caller's (an archive root, a ``--source`` checkout, ``$HEP_ARCHIVE_TEST_DATA``). A static check over the
source: every expression derived from ``__file__`` (``Path(__file__)``, ``.parent``, ``.parents[N]``,
``os.path.dirname``, ``/ ".."``, ``os.path.join(..., "..")``, and names assigned from them) must stay at or
below the package root.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "archive"

#: files allowed to climb out for now, each with why (none: archive/recipe/_reana_schema.py was the last)
ALLOWED: set[str] = set()

_UNKNOWN = 10**6  # a climb whose height cannot be read (a computed or negative parents[] index)
_PATH_TYPES = {"Path", "PurePath", "PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"}
_SAME_LEVEL = {"resolve", "absolute", "expanduser", "with_name", "with_suffix", "with_stem", "abspath", "realpath",
               "normpath", "fspath", "str"}


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
State = tuple[int, int]


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of a module or function body, not those of the functions defined in it."""
    out: list[ast.AST] = []
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        out.append(node)
        if not isinstance(node, _FUNCTIONS):
            todo.extend(ast.iter_child_nodes(node))
    return out


class _Climb:
    """Levels above the source file (0: the file, 1: its folder, ...) of each ``__file__``-derived expression,
    and the highest level it passed through. Names are looked up in their function, then the enclosing ones,
    then the module."""

    def __init__(self, envs: list[dict[str, State]]) -> None:
        self.envs = envs

    def lookup(self, name: str) -> State | None:
        for env in self.envs:
            if name in env:
                return env[name]
        return None

    def bind(self, nodes: list[ast.AST]) -> None:
        """Record the names this scope assigns from ``__file__``-derived values."""
        local = self.envs[0]
        assigns = [n for n in nodes if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None]
        for _ in range(5):  # names assigned from names: a few rounds reach the fixpoint
            for node in assigns:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                assert node.value is not None
                st = self.state(node.value)
                for t in targets:
                    if isinstance(t, ast.Name) and st is not None:
                        old = local.get(t.id, (0, -1))
                        local[t.id] = max(old, st, key=lambda s: s[1])

    @staticmethod
    def _down(st: tuple[int, int], parts: list[ast.expr]) -> tuple[int, int]:
        pos, peak = st
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                for piece in part.value.replace("\\", "/").split("/"):
                    if piece == "..":
                        pos += 1
                        peak = max(peak, pos)
                    elif piece not in ("", "."):
                        pos -= 1
            else:
                pos -= 1  # a computed name: one level down
        return pos, peak

    def state(self, node: ast.expr) -> tuple[int, int] | None:
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return 0, 0
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            st = self.state(node.value)
            return None if st is None else (st[0] + 1, max(st[1], st[0] + 1))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            st = self.state(node.value.value)
            if st is None:
                return None
            idx = node.slice
            up = idx.value + 1 if isinstance(idx, ast.Constant) and isinstance(idx.value, int) and idx.value >= 0 \
                else _UNKNOWN
            return st[0] + up, max(st[1], st[0] + up)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            st = self.state(node.left)
            return None if st is None else self._down(st, [node.right])
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if isinstance(func, ast.Attribute) and name in (_SAME_LEVEL | {"joinpath", "parent"}):
                st = self.state(func.value)
                if st is not None:
                    return self._down(st, list(node.args)) if name == "joinpath" else st
            if not node.args:
                return None
            first = self.state(node.args[0])
            if first is None:
                return None
            if name in _PATH_TYPES or name in _SAME_LEVEL:
                return self._down(first, list(node.args[1:]))
            if name == "dirname":
                return first[0] + 1, max(first[1], first[0] + 1)
            if name == "join":
                return self._down(first, list(node.args[1:]))
        return None


def climbs(source: str, package_level: int) -> list[int]:
    """Lines where a ``__file__``-derived path rises above ``package_level`` levels over the file."""
    lines: set[int] = set()

    def scan(scope: ast.AST, outer: list[dict[str, State]]) -> None:
        climb = _Climb([{}, *outer])
        nodes = _own_nodes(scope)
        climb.bind(nodes)
        for node in nodes:
            if isinstance(node, ast.expr):
                st = climb.state(node)
                if st is not None and st[1] > package_level:
                    lines.add(node.lineno)
            if isinstance(node, _FUNCTIONS):
                scan(node, climb.envs)

    scan(ast.parse(source), [])
    return sorted(lines)


def _package_level(path: Path) -> int:
    """Levels from a module file up to the package folder: 1 for ``archive/x.py``, 2 for ``archive/a/x.py``."""
    return len(path.relative_to(PACKAGE).parts)


def test_no_module_climbs_out_of_the_package() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in ALLOWED:
            continue
        for line in climbs(path.read_text(encoding="utf-8"), _package_level(path)):
            offenders.append(f"{rel}:{line}")
    assert offenders == [], ("paths relative to the package's own files that leave archive/ (take them from the "
                             f"archive root or the caller): {offenders}")


@pytest.mark.parametrize(("source", "expected"), [
    ('P = Path(__file__).resolve().parents[3] / "shared" / "data"', [1]),
    ('P = Path(__file__).resolve().parents[2] / "recipes"', [1]),
    ('P = Path(__file__).resolve().parents[1] / "recipe" / "x.py"', []),   # archive/recipe/x.py: inside
    ("P = Path(__file__).parent.parent.parent", [1]),
    ("P = Path(__file__).parent.parent", []),
    ('P = Path(__file__).parent / ".." / ".."', [1]),
    ('P = Path(__file__).parent / "../.."', [1]),
    ('P = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data")', [1]),
    ("P = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))", [1]),
    ('P = Path(__file__).with_name("bridge.py")', []),
    ('P = Path(__file__).resolve().parent / "schemas"', []),
    ("P = Path(__file__).parents[i]", [1]),
    ("P = Path(__file__).parents[-1]", [1]),
    ("""\
     HERE = Path(__file__).resolve().parent
     UP = HERE.parent
     DATA = UP.parent / "shared"
     """, [3]),
    ("""\
     HERE = Path(__file__).parent
     def f():
         return HERE / "x"
     """, []),
    ("""\
     def f():
         card = Path(__file__).parents[2] / "cards"
     def g(card):
         return card / "x"
     """, [2]),                                                         # a local name stays in its function
    ("""\
     ROOT = Path(__file__).parents[1]
     def f():
         def g():
             return ROOT.parent
         return g
     """, [4]),
])
def test_the_check_sees_climbs(source: str, expected: list[int]) -> None:
    """For a module two levels below the package folder (``archive/recipe/x.py``)."""
    assert climbs(textwrap.dedent(source), 2) == expected
