"""A safe expression language over stored columns, parsed with :mod:`ast` into a whitelisted tree.

Never calls ``eval``/``exec``: the text is parsed by :func:`ast.parse`, every node is checked against a short
whitelist (arithmetic, comparisons, ``and``/``or``/``not``, ``&``/``|``/``~``, a fixed set of functions and
the constants ``pi`` and ``e``), and the checked tree is evaluated by a small recursive interpreter on numpy
arrays. ``name = expr`` defines a derived observable called ``name``.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from archive.errors import ExpressionError

__all__ = ["FUNCTIONS", "Expression", "parse_expression"]

MAX_LENGTH = 4000
MAX_NODES = 500

#: function name -> (numpy implementation, minimum arity, maximum arity or None for "any")
FUNCTIONS: dict[str, tuple[Callable[..., np.ndarray], int, int | None]] = {
    "sqrt": (np.sqrt, 1, 1),
    "log": (np.log, 1, 1),
    "log10": (np.log10, 1, 1),
    "exp": (np.exp, 1, 1),
    "abs": (np.abs, 1, 1),
    "sin": (np.sin, 1, 1),
    "cos": (np.cos, 1, 1),
    "tan": (np.tan, 1, 1),
    "asin": (np.arcsin, 1, 1),
    "acos": (np.arccos, 1, 1),
    "atan": (np.arctan, 1, 1),
    "sinh": (np.sinh, 1, 1),
    "cosh": (np.cosh, 1, 1),
    "tanh": (np.tanh, 1, 1),
    "atan2": (np.arctan2, 2, 2),
    "hypot": (np.hypot, 2, 2),
    "min": (lambda *a: _reduce(np.minimum, a), 2, None),
    "max": (lambda *a: _reduce(np.maximum, a), 2, None),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINOPS: dict[type[ast.operator], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.Pow: np.power, ast.Mod: np.mod, ast.FloorDiv: np.floor_divide,
}
_LOGIC_BINOPS: dict[type[ast.operator], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
_OP_WORDS = {ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitXor: "^"}


def _reduce(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], args: tuple[np.ndarray, ...]) -> np.ndarray:
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


@dataclass(frozen=True)
class Expression:
    """A checked expression: its ``name``, source ``text``, body text and the ``columns`` it reads."""

    name: str
    text: str
    body: str
    columns: tuple[str, ...]
    is_boolean: bool
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, columns: Mapping[str, np.ndarray], n: int | None = None) -> np.ndarray:
        """Evaluate on a batch of columns; returns a float64 (or bool) array of the batch length.

        Args:
            columns: the batch, by column name (at least :attr:`columns`).
            n: the batch length, needed only when the expression reads no column.
        """
        if n is None:
            n = len(next(iter(columns.values()))) if columns else 1
        with np.errstate(all="ignore"):
            out = np.asarray(_eval(self._tree, columns))
        if out.ndim == 0:
            out = np.full(n, out[()])
        return out

    def mask(self, columns: Mapping[str, np.ndarray], n: int | None = None) -> np.ndarray:
        """Evaluate a selection to a boolean mask (NaN comparisons are false)."""
        return np.asarray(self.evaluate(columns, n), dtype=bool)


def _eval(node: ast.expr, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    if isinstance(node, ast.Constant):
        return np.asarray(node.value, dtype=bool if isinstance(node.value, bool) else np.float64)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS and node.id not in cols:
            return np.asarray(CONSTANTS[node.id])
        col = np.asarray(cols[node.id])
        return col if col.dtype == np.bool_ else np.asarray(col, dtype=np.float64)
    if isinstance(node, ast.BinOp):
        op = type(node.op)
        if op in _LOGIC_BINOPS:
            return _LOGIC_BINOPS[op](_as_bool(_eval(node.left, cols)), _as_bool(_eval(node.right, cols)))
        return _BINOPS[op](_eval(node.left, cols), _eval(node.right, cols))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, cols)
        if isinstance(node.op, ast.USub):
            return np.asarray(np.negative(v))
        if isinstance(node.op, ast.UAdd):
            return v
        return np.asarray(np.logical_not(_as_bool(v)))  # Not, Invert
    if isinstance(node, ast.BoolOp):
        logic = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = _as_bool(_eval(node.values[0], cols))
        for item in node.values[1:]:
            out = np.asarray(logic(out, _as_bool(_eval(item, cols))))
        return out
    if isinstance(node, ast.Compare):
        left = _eval(node.left, cols)
        result: np.ndarray | None = None
        for cmp, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, cols)
            part = _CMPOPS[type(cmp)](left, right)
            result = part if result is None else np.asarray(np.logical_and(result, part))
            left = right
        assert result is not None
        return result
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        func = FUNCTIONS[node.func.id][0]
        return np.asarray(func(*(_eval(a, cols) for a in node.args)))
    raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover - _check rejects it


def _as_bool(v: np.ndarray) -> np.ndarray:
    return v if v.dtype == np.bool_ else v != 0


def _split_assignment(text: str) -> tuple[str | None, str, int]:
    """``name = body`` -> (name, body, offset of body in text); a plain expression -> (None, text, 0)."""
    for i, ch in enumerate(text):
        if ch == "=":
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < len(text) else ""
            if before in "<>!=" or after == "=":
                continue
            lhs = text[:i].strip()
            if lhs.isidentifier():
                return lhs, text[i + 1:], i + 1
            break
    return None, text, 0


def parse_expression(
    text: str, available: Collection[str] | None = None, *, what: str = "observable", boolean: bool = False,
) -> Expression:
    """Parse and check an observable (``[name =] expr``) or a selection.

    Args:
        text: the expression, e.g. ``"tau21 = tau2_trackj1 / tau1_trackj1"`` or ``"pT_trackj1 > 5"``.
        available: the column names that exist; unknown names are refused with a "did you mean" hint.
        what: what the text is, for messages and the error's ``field`` (``observable``, ``where``).
        boolean: require a true/false result (selections).

    Raises:
        ExpressionError: syntax errors (with the position), forbidden constructs, unknown columns or
            functions, wrong arity, or a non-boolean selection.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"the {what} is empty; give an expression such as 'pT_ll > 200'", field=what)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the {what} is longer than {MAX_LENGTH} characters", field=what)
    name, body, offset = _split_assignment(text)
    if name is not None and boolean:
        raise ExpressionError(f"a {what} cannot define a name ('{name} = ...'); write only the condition",
                              field=what)
    try:
        tree = ast.parse(body.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise ExpressionError(f"the {what} is nested too deeply to parse", field=what) from None
    except SyntaxError as err:
        pos = offset + (len(body) - len(body.lstrip())) + (err.offset or 1)
        raise ExpressionError(
            f"syntax error at position {pos} of {text!r}: {err.msg}; "
            "see docs/tutorial-reinterpret.md for the expression language", field=what,
        ) from None
    base = offset + (len(body) - len(body.lstrip()))
    checker = _Checker(text, what, available, base)
    checker.visit(tree.body)
    if boolean and not checker.is_boolean(tree.body):
        raise ExpressionError(
            f"the {what} {text.strip()!r} gives numbers, not true/false; write a condition such as 'x > 0'",
            field=what,
        )
    body_text = body.strip()
    if name is None:
        name = body_text if not isinstance(tree.body, ast.Name) else tree.body.id
    return Expression(name, text.strip(), body_text, tuple(sorted(checker.columns)),
                      checker.is_boolean(tree.body), tree.body)


class _Checker:
    def __init__(self, text: str, what: str, available: Collection[str] | None, base: int) -> None:
        self.text, self.what, self.available, self.base = text, what, available, base
        self.columns: set[str] = set()
        self.count = 0

    def fail(self, node: ast.AST, reason: str, hint: str = "") -> ExpressionError:
        col = getattr(node, "col_offset", None)
        where = f" at position {self.base + col + 1}" if col is not None else ""
        return ExpressionError(f"{reason}{where} of {self.text!r}{hint}", field=self.what)

    def visit(self, node: ast.expr) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"the {self.what} is too complex (more than {MAX_NODES} terms)")
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, complex):
                raise self.fail(node, f"only numbers are allowed as constants, not {node.value!r}")
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS and type(node.op) not in _LOGIC_BINOPS:
                sym = _OP_WORDS.get(type(node.op), type(node.op).__name__)
                raise self.fail(node, f"operator '{sym}' is not supported")
            self.visit(node.left)
            self.visit(node.right)
        elif isinstance(node, ast.UnaryOp):
            self.visit(node.operand)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                self.visit(v)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMPOPS:
                    raise self.fail(node, f"comparison '{type(op).__name__}' is not supported")
            self.visit(node.left)
            for c in node.comparators:
                self.visit(c)
        elif isinstance(node, ast.Call):
            self._call(node)
        else:
            raise self.fail(node, f"'{ast.unparse(node)}' ({type(node).__name__}) is not allowed; use columns, "
                                  "numbers, arithmetic, comparisons, and/or/not and the documented functions")

    def _name(self, node: ast.Name) -> None:
        if self.available is not None and node.id in self.available:
            self.columns.add(node.id)
            return
        if node.id in CONSTANTS:
            return
        if self.available is None:
            self.columns.add(node.id)
            return
        close = difflib.get_close_matches(node.id, list(self.available), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            "; `hep-archive show` lists the dataset's columns"
        raise self.fail(node, f"unknown column {node.id!r}", hint)

    def _call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            fname = ast.unparse(node.func)
            close = difflib.get_close_matches(fname, list(FUNCTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(sorted(FUNCTIONS))}"
            raise self.fail(node, f"unknown function {fname!r}", hint)
        if node.keywords:
            raise self.fail(node, f"{node.func.id}() takes no keyword arguments")
        _, lo, hi = FUNCTIONS[node.func.id]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            want = str(lo) if lo == hi else f"at least {lo}"
            raise self.fail(node, f"{node.func.id}() takes {want} argument(s), got {n}")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail(a, "'*' arguments are not allowed")
            self.visit(a)

    def is_boolean(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Compare | ast.BoolOp):
            return True
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, ast.Not | ast.Invert)
        if isinstance(node, ast.BinOp):
            return type(node.op) in _LOGIC_BINOPS
        if isinstance(node, ast.Constant):
            return isinstance(node.value, bool)
        return False
