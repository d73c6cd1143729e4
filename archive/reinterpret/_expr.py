"""A safe expression language over stored columns, parsed with :mod:`ast` into a whitelisted tree.

Never calls ``eval``/``exec``: the text is parsed by :func:`ast.parse`, every node is checked against a short
whitelist (arithmetic, comparisons, ``and``/``or``/``not``, ``&``/``|``/``~``, a fixed set of functions and
the constants ``pi`` and ``e``), and the checked tree is evaluated by a small recursive interpreter on numpy
arrays. ``name = expr`` defines a derived observable called ``name``.

Jagged columns (a list per event, e.g. ``Muon_pt``) follow awkward's semantics; the checker knows which columns
are jagged and gives every node a kind: a number per event (``event``), a list per event (``list``), a
collection of 4-vectors (``coll``: ``Muon`` names the columns ``Muon_pt``, ``Muon_eta``, ``Muon_phi`` and
``Muon_mass``, or ``Muon_px/py/pz/E``) or one 4-vector per event (``vec``, e.g. ``Muon[0] + Muon[1]``):

* ``x[i]`` (a constant, ``-1`` the last) takes one object per event; events without it have no value (they are
  excluded from a histogram and counted); ``x[a:b]`` slices and ``x[mask]`` filters every list;
* ``max min sum count any all mean`` of one list reduce it per event (``count(Muon_pt > 20)`` counts the true
  ones; ``max``, ``min`` and ``mean`` of an empty list have no value); ``min``/``max`` of several arguments
  stay element-wise;
* ``sort(x)`` orders every list by decreasing value and a collection by decreasing pt (``sort(Muon_pt)[1]``
  is the subleading pT when the file's lists are not ordered);
* ``mass pt eta phi energy px py pz rapidity`` of a 4-vector or collection, ``delta_r delta_phi delta_eta``
  of two, computed by the ``vector`` package; ``charge(Muon[0])`` when the collection has a charge column;
* arithmetic between a list and a per-event number broadcasts the number over the list.

Errors are one line and name the position (1-based) in the text.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archive.errors import ExpressionError

__all__ = ["FUNCTIONS", "REDUCTIONS", "VECTOR_FUNCTIONS", "Expression", "find_collection", "parse_expression"]

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
#: reductions of one list per event (``min``/``max`` of several arguments stay element-wise)
REDUCTIONS = ("max", "min", "sum", "count", "any", "all", "mean")
#: list -> list: ``sort`` orders each event's list by decreasing value (a collection by decreasing pt)
LIST_FUNCTIONS = ("sort",)
#: 4-vector quantities (function -> attribute of a ``vector`` awkward array) and pair functions
VECTOR_FUNCTIONS: dict[str, str] = {
    "mass": "mass", "pt": "pt", "eta": "eta", "phi": "phi", "energy": "E", "px": "px", "py": "py", "pz": "pz",
    "rapidity": "rapidity",
}
PAIR_FUNCTIONS: dict[str, str] = {"delta_r": "deltaR", "delta_phi": "deltaphi", "delta_eta": "deltaeta"}
#: a collection's other columns (``Muon_charge``) ride along with its 4-vectors: ``charge(Muon[0])``
EXTRA_FIELDS = ("charge",)
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
ALL_FUNCTIONS = sorted({*FUNCTIONS, *REDUCTIONS, *LIST_FUNCTIONS, *VECTOR_FUNCTIONS, *PAIR_FUNCTIONS,
                        *EXTRA_FIELDS})

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.Pow: np.power, ast.Mod: np.mod, ast.FloorDiv: np.floor_divide,
}
_LOGIC_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
_OP_WORDS = {ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitXor: "^"}
#: kinds of values, see the module docstring; "num" is a constant
_RANK = {"num": 0, "event": 1, "list": 2}
_KIND_WORDS = {"num": "a number", "event": "one number per event", "list": "a list per event",
               "coll": "a collection of 4-vectors", "vec": "a 4-vector per event"}
#: the columns of a collection: (vector field, accepted column suffixes, lower-case)
_VECTOR_LAYOUTS: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] = (
    (("pt", ("pt",)), ("eta", ("eta",)), ("phi", ("phi",)), ("mass", ("mass", "m"))),
    (("px", ("px",)), ("py", ("py",)), ("pz", ("pz",)), ("E", ("e", "energy"))),
)


def _reduce(fn: Callable[[Any, Any], Any], args: tuple[Any, ...]) -> Any:
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


def find_collection(name: str, available: Collection[str]) -> tuple[tuple[str, str], ...] | None:
    """The 4-vector columns of collection ``name`` (``((field, column), ...)``), or None if it has none."""
    by_suffix: dict[str, str] = {}
    prefix = name + "_"
    for c in available:
        if c.startswith(prefix):
            by_suffix.setdefault(c[len(prefix):].lower(), c)
    for layout in _VECTOR_LAYOUTS:
        found = []
        for fld, suffixes in layout:
            col = next((by_suffix[s] for s in suffixes if s in by_suffix), None)
            if col is None:
                break
            found.append((fld, col))
        else:
            found.extend((extra, by_suffix[extra]) for extra in EXTRA_FIELDS if extra in by_suffix)
            return tuple(found)
    return None


@dataclass(frozen=True)
class Expression:
    """A checked expression: its ``name``, source ``text``, body text and the ``columns`` it reads.

    ``kind`` is ``event`` (a number per event), ``list`` (a list per event: filled per object) or ``num`` (a
    constant); ``collections`` maps collection names to their 4-vector columns.
    """

    name: str
    text: str
    body: str
    columns: tuple[str, ...]
    is_boolean: bool
    _tree: ast.expr = field(repr=False, compare=False)
    kind: str = "event"
    collections: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    _base: int = field(default=0, repr=False, compare=False)

    def evaluate(self, columns: Mapping[str, Any], n: int | None = None) -> np.ndarray:
        """Evaluate on a batch of columns; returns a float64 (or bool) array of the batch length.

        Events without a value (``Muon_pt[1]`` of an event with one muon) are NaN (false for booleans); a list
        per event comes back as an awkward array (see :meth:`evaluate_any`).

        Args:
            columns: the batch, by column name (at least :attr:`columns`).
            n: the batch length, needed only when the expression reads no column.
        """
        out = self.evaluate_any(columns, n)
        if isinstance(out, np.ndarray):
            return out
        if self.kind == "list":
            return out  # type: ignore[no-any-return]
        values, valid = event_values(out)
        if valid is not None:
            values = np.where(valid, values, False if values.dtype == np.bool_ else np.nan)
        return values

    def evaluate_any(self, columns: Mapping[str, Any], n: int | None = None) -> Any:
        """Evaluate to a numpy array (one value per event) or an awkward array (lists, or missing values)."""
        if n is None:
            n = len(next(iter(columns.values()))) if columns else 1
        with np.errstate(all="ignore"):
            out = _Evaluator(self, columns).run(self._tree)
        if isinstance(out, np.generic | bool | float | int):
            out = np.asarray(out)
        if isinstance(out, np.ndarray) and out.ndim == 0:
            out = np.full(n, out[()])
        return out

    def mask(self, columns: Mapping[str, Any], n: int | None = None) -> np.ndarray:
        """Evaluate a selection to a boolean mask (NaN comparisons and missing values are false)."""
        return np.asarray(self.evaluate(columns, n), dtype=bool)


def event_values(v: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-event values as numpy and the mask of events that have one (None: all of them)."""
    if isinstance(v, np.ndarray):
        return v, None
    import awkward as ak

    missing = np.asarray(ak.to_numpy(ak.is_none(v, axis=0)), dtype=bool)
    is_bool = _ak_is_bool(v)
    filled = ak.fill_none(v, False if is_bool else 0.0, axis=0)
    values = np.asarray(ak.to_numpy(filled), dtype=bool if is_bool else np.float64)
    return values, (~missing if missing.any() else None)


def _ak_is_bool(v: Any) -> bool:
    return str(v.type).endswith("bool")


class _Evaluator:
    """The interpreter: numpy arrays while every value is one number per event, awkward arrays otherwise."""

    def __init__(self, expr: Expression, cols: Mapping[str, Any]) -> None:
        self.expr, self.cols = expr, cols
        self.collections = dict(expr.collections)

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        where = f" at position {self.expr._base + col + 1}" if col is not None else ""
        return ExpressionError(f"cannot evaluate {ast.unparse(node)!r}{where} of {self.expr.text!r}: {reason}",
                               field="observable")

    def run(self, node: ast.expr) -> Any:
        try:
            return self.ev(node)
        except ExpressionError:
            raise
        except (ValueError, TypeError, IndexError, AttributeError) as exc:  # awkward's broadcasting, type errors
            reason = " ".join(str(exc).split())[:200]
            raise self.fail(node, f"{type(exc).__name__}: {reason}") from None

    def ev(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return np.asarray(node.value, dtype=bool if isinstance(node.value, bool) else np.float64)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op in _LOGIC_BINOPS:
                return _LOGIC_BINOPS[op](_as_bool(self.ev(node.left)), _as_bool(self.ev(node.right)))
            return _BINOPS[op](self.ev(node.left), self.ev(node.right))
        if isinstance(node, ast.UnaryOp):
            v = self.ev(node.operand)
            if isinstance(node.op, ast.USub):
                return np.negative(v)
            if isinstance(node.op, ast.UAdd):
                return v
            return np.logical_not(_as_bool(v))  # Not, Invert
        if isinstance(node, ast.BoolOp):
            logic = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = _as_bool(self.ev(node.values[0]))
            for item in node.values[1:]:
                out = logic(out, _as_bool(self.ev(item)))
            return out
        if isinstance(node, ast.Compare):
            left = self.ev(node.left)
            result: Any = None
            for cmp, comp in zip(node.ops, node.comparators, strict=True):
                right = self.ev(comp)
                part = _CMPOPS[type(cmp)](left, right)
                result = part if result is None else np.logical_and(result, part)
                left = right
            return result
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover - _check rejects it

    def _name(self, name: str) -> Any:
        if name in self.collections:
            import vector

            vector.register_awkward()
            return vector.zip({fld: _as_float(self.cols[c]) for fld, c in self.collections[name]})
        if name in CONSTANTS and name not in self.cols:
            return np.asarray(CONSTANTS[name])
        col = self.cols[name]
        if isinstance(col, np.ndarray):
            return col if col.dtype == np.bool_ else np.asarray(col, dtype=np.float64)
        import awkward as ak

        arr = ak.Array(col) if not isinstance(col, ak.Array) else col
        if arr.ndim == 1 and not str(arr.type.content).startswith("?"):
            flat = np.asarray(ak.to_numpy(arr))
            return flat if flat.dtype == np.bool_ else np.asarray(flat, dtype=np.float64)
        return _as_float(arr)

    def _subscript(self, node: ast.Subscript) -> Any:
        import awkward as ak

        value = self.ev(node.value)
        sl = node.slice
        index = _constant_int(sl)
        if index is not None:
            stop = index + 1 if index != -1 else None
            return ak.firsts(value[:, index:stop], axis=1)
        if isinstance(sl, ast.Slice):
            lo, hi, step = (_constant_int(p) if p is not None else None for p in (sl.lower, sl.upper, sl.step))
            return value[:, lo:hi:step]
        mask = _as_bool(self.ev(sl))
        return value[ak.fill_none(mask, False)]

    def _call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        fname = node.func.id
        args = [self.ev(a) for a in node.args]
        if fname in REDUCTIONS and len(args) == 1:
            return _reduction(fname, args[0])
        if fname == "sort":
            import awkward as ak

            v = args[0]
            if v.fields:  # a collection: by decreasing pt
                return v[ak.argsort(v.pt, axis=1, ascending=False, stable=True)]
            return ak.sort(v, axis=1, ascending=False)
        if fname in EXTRA_FIELDS:
            if fname not in args[0].fields:
                raise self.fail(node, f"the collection has no {fname} column")
            return args[0][fname]
        if fname in VECTOR_FUNCTIONS:
            return getattr(args[0], VECTOR_FUNCTIONS[fname])
        if fname in PAIR_FUNCTIONS:
            a, b = args
            if isinstance(b, np.ndarray) or isinstance(a, np.ndarray):  # pragma: no cover - the checker refuses
                raise self.fail(node, "needs 4-vectors")
            return getattr(a, PAIR_FUNCTIONS[fname])(b)
        return FUNCTIONS[fname][0](*args)


def _as_float(v: Any) -> Any:
    """A numeric awkward array as float64 (booleans stay booleans), so that every evaluation runs in float64."""
    import awkward as ak

    arr = v if isinstance(v, ak.Array) else ak.Array(v)
    return arr if _ak_is_bool(arr) else ak.values_astype(arr, np.float64)


def _reduction(fname: str, v: Any) -> Any:
    import awkward as ak

    if fname == "count":
        if _ak_is_bool(v):
            return ak.count_nonzero(v, axis=1)
        return ak.num(v, axis=1)
    if fname in ("any", "all"):
        return getattr(ak, fname)(_as_bool(v), axis=1)
    if fname == "sum":
        return ak.sum(ak.values_astype(v, np.int64) if _ak_is_bool(v) else v, axis=1)
    return getattr(ak, fname)(v, axis=1, mask_identity=True)  # max, min, mean: no value for an empty list


def _constant_int(node: ast.expr) -> int | None:
    """The integer constant ``node`` denotes (``3``, ``-1``), or None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return sign * node.value
    return None


def _as_bool(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v if v.dtype == np.bool_ else v != 0
    return v if _ak_is_bool(v) else v != 0


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
    jagged: Collection[str] = (),
) -> Expression:
    """Parse and check an observable (``[name =] expr``) or a selection.

    Args:
        text: the expression, e.g. ``"tau21 = tau2_trackj1 / tau1_trackj1"``, ``"pT_trackj1 > 5"``,
            ``"ptlead = max(Muon_pt)"`` or ``"mass(Muon[0] + Muon[1])"``.
        available: the column names that exist; unknown names are refused with a "did you mean" hint.
        what: what the text is, for messages and the error's ``field`` (``observable``, ``where``).
        boolean: require a true/false result (selections).
        jagged: the columns that hold a list per event (the others hold one number per event).

    Raises:
        ExpressionError: syntax errors (with the position), forbidden constructs, unknown columns or
            functions, wrong arity, a list where a number is needed (or the reverse), or a non-boolean
            selection.
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
    checker = _Checker(text, what, available, base, frozenset(jagged))
    try:
        kind, is_bool = checker.visit(tree.body)
    except RecursionError:
        raise ExpressionError(f"the {what} is nested too deeply to check", field=what) from None
    if kind in ("coll", "vec"):
        raise checker.fail(tree.body, f"the {what} is {_KIND_WORDS[kind]}, not numbers",
                           "; take a quantity of it such as mass(...), pt(...), eta(...) or delta_r(...)")
    if boolean and not is_bool:
        raise ExpressionError(
            f"the {what} {text.strip()!r} gives numbers, not true/false; write a condition such as 'x > 0'",
            field=what,
        )
    body_text = body.strip()
    if name is None:
        name = body_text if not isinstance(tree.body, ast.Name) else tree.body.id
    return Expression(name, text.strip(), body_text, tuple(sorted(checker.columns)), is_bool, tree.body,
                      kind if kind != "num" else "event", tuple(sorted(checker.collections.items())), base)


class _Checker:
    """Walks the tree once: the whitelist, the columns read, and every node's kind and boolean-ness."""

    def __init__(self, text: str, what: str, available: Collection[str] | None, base: int,
                 jagged: frozenset[str]) -> None:
        self.text, self.what, self.available, self.base, self.jagged = text, what, available, base, jagged
        self.columns: set[str] = set()
        self.collections: dict[str, tuple[tuple[str, str], ...]] = {}
        self.count = 0

    def fail(self, node: ast.AST, reason: str, hint: str = "") -> ExpressionError:
        col = getattr(node, "col_offset", None)
        where = f" at position {self.base + col + 1}" if col is not None else ""
        return ExpressionError(f"{reason}{where} of {self.text!r}{hint}", field=self.what)

    def numbers(self, node: ast.expr, kind: str, role: str) -> None:
        if kind in ("coll", "vec"):
            raise self.fail(node, f"{role} needs numbers, but {ast.unparse(node)!r} is {_KIND_WORDS[kind]}",
                            "; take mass(...), pt(...), eta(...) or phi(...) of it")

    def merge(self, node: ast.expr, parts: list[tuple[ast.expr, str]], role: str) -> str:
        for sub, kind in parts:
            self.numbers(sub, kind, role)
        return max((k for _, k in parts), key=lambda k: _RANK[k], default="num")

    def visit(self, node: ast.expr) -> tuple[str, bool]:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"the {self.what} is too complex (more than {MAX_NODES} terms)")
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, complex):
                raise self.fail(node, f"only numbers are allowed as constants, not {node.value!r}")
            return "num", isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            return self._name(node), False
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS and type(node.op) not in _LOGIC_BINOPS:
                sym = _OP_WORDS.get(type(node.op), type(node.op).__name__)
                raise self.fail(node, f"operator '{sym}' is not supported")
            lk, rk = self.visit(node.left)[0], self.visit(node.right)[0]
            if isinstance(node.op, ast.Add | ast.Sub) and lk == "vec" and rk == "vec":
                return "vec", False  # the sum (difference) of two 4-vectors
            if "vec" in (lk, rk) or "coll" in (lk, rk):
                raise self.fail(node, "4-vectors can only be added or subtracted one per event "
                                      "(e.g. Muon[0] + Muon[1])")
            kind = self.merge(node, [(node.left, lk), (node.right, rk)], "arithmetic")
            return kind, type(node.op) in _LOGIC_BINOPS
        if isinstance(node, ast.UnaryOp):
            kind, b = self.visit(node.operand)
            self.numbers(node.operand, kind, "this operator")
            return kind, isinstance(node.op, ast.Not | ast.Invert) or (isinstance(node.op, ast.UAdd) and b)
        if isinstance(node, ast.BoolOp):
            return self.merge(node, [(v, self.visit(v)[0]) for v in node.values], "and/or"), True
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMPOPS:
                    raise self.fail(node, f"comparison '{type(op).__name__}' is not supported")
            parts = [(node.left, self.visit(node.left)[0])] + [(c, self.visit(c)[0]) for c in node.comparators]
            return self.merge(node, parts, "a comparison"), True
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self.fail(node, f"'{ast.unparse(node)}' ({type(node).__name__}) is not allowed; use columns, "
                              "numbers, arithmetic, comparisons, and/or/not, [index] on lists and the "
                              "documented functions")

    def _name(self, node: ast.Name) -> str:
        name = node.id
        if (self.available is None and name not in CONSTANTS) or (self.available is not None and
                                                                  name in self.available):
            self.columns.add(name)
            return "list" if name in self.jagged else "event"
        if name in CONSTANTS or self.available is None:
            return "num"
        coll = find_collection(name, self.available)
        if coll is not None:
            self.collections[name] = coll
            self.columns.update(c for _, c in coll)
            if not all(c in self.jagged for _, c in coll):
                flat = next(c for _, c in coll if c not in self.jagged)
                raise self.fail(node, f"{name!r} is not a collection: its column {flat!r} holds one number per "
                                      "event")
            return "coll"
        close = difflib.get_close_matches(name, list(self.available), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            "; `hep-archive show` lists the dataset's columns"
        raise self.fail(node, f"unknown column {name!r}", hint)

    def _subscript(self, node: ast.Subscript) -> tuple[str, bool]:
        kind, b = self.visit(node.value)
        if kind not in ("list", "coll"):
            raise self.fail(node, f"'{ast.unparse(node)}' (Subscript) is not allowed here: "
                                  f"{ast.unparse(node.value)!r} is {_KIND_WORDS[kind]}",
                            "; [index] picks an object from a list per event, such as Muon_pt[0]")
        sl = node.slice
        if _constant_int(sl) is not None:
            return ("event" if kind == "list" else "vec"), b
        if isinstance(sl, ast.Slice):
            for part in (sl.lower, sl.upper, sl.step):
                if part is not None and _constant_int(part) is None:
                    raise self.fail(part, "slice bounds must be whole numbers, such as Muon_pt[:2]")
            if sl.step is not None and _constant_int(sl.step) == 0:
                raise self.fail(sl.step, "a slice step cannot be zero")
            return kind, b
        mk, mb = self.visit(sl)
        if mk != "list" or not mb:
            raise self.fail(sl, f"an index must be a whole number, a slice or a true/false list per event "
                                f"(such as Muon_pt > 20), not {_KIND_WORDS[mk]}"
                                + ("" if mb or mk != "list" else " of numbers"))
        return kind, b

    def _call(self, node: ast.Call) -> tuple[str, bool]:
        if not isinstance(node.func, ast.Name) or node.func.id not in ALL_FUNCTIONS:
            fname = ast.unparse(node.func)
            close = difflib.get_close_matches(fname, ALL_FUNCTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(ALL_FUNCTIONS)}"
            raise self.fail(node, f"unknown function {fname!r}", hint)
        fname = node.func.id
        if node.keywords:
            raise self.fail(node, f"{fname}() takes no keyword arguments")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail(a, "'*' arguments are not allowed")
        n = len(node.args)
        args = [self.visit(a) for a in node.args]
        if fname in REDUCTIONS and n == 1:
            kind = args[0][0]
            if kind == "coll" and fname == "count":
                return "event", False
            if kind != "list":
                extra = "" if fname not in FUNCTIONS else f" ({fname}() of several arguments compares them)"
                lead = f"{fname}() takes at least 2 argument(s), got 1, or one" if fname in FUNCTIONS else \
                    f"{fname}() takes one"
                raise self.fail(node, f"{lead} list per event, but {ast.unparse(node.args[0])!r} is "
                                      f"{_KIND_WORDS[kind]}{extra}")
            return "event", fname in ("any", "all")
        if fname == "sort":
            if n != 1 or args[0][0] not in ("list", "coll"):
                got = f"got {n} argument(s)" if n != 1 else f"{ast.unparse(node.args[0])!r} is " \
                    f"{_KIND_WORDS[args[0][0]]}"
                raise self.fail(node, f"sort() takes one list per event or collection, {got}")
            return args[0]
        if fname in VECTOR_FUNCTIONS or fname in EXTRA_FIELDS:
            if n != 1 or args[0][0] not in ("vec", "coll"):
                got = f"got {n} argument(s)" if n != 1 else f"{ast.unparse(node.args[0])!r} is " \
                    f"{_KIND_WORDS[args[0][0]]}"
                raise self.fail(node, f"{fname}() takes one 4-vector or collection (such as Muon[0] + Muon[1] or "
                                      f"Muon), {got}")
            return ("event" if args[0][0] == "vec" else "list"), False
        if fname in PAIR_FUNCTIONS:
            if n != 2 or any(k not in ("vec", "coll") for k, _ in args):
                raise self.fail(node, f"{fname}() takes two 4-vectors or collections (such as Muon[0], Muon[1])")
            return ("event" if all(k == "vec" for k, _ in args) else "list"), False
        _, lo, hi = FUNCTIONS[fname]
        if n < lo or (hi is not None and n > hi):
            want = str(lo) if lo == hi else f"at least {lo}"
            raise self.fail(node, f"{fname}() takes {want} argument(s), got {n}")
        return self.merge(node, list(zip(node.args, (k for k, _ in args), strict=True)), f"{fname}()"), False
