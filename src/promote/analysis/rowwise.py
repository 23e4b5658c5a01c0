"""Which feature steps are row-wise: each output row depends only on the same input row.

The service applies the notebook's feature steps to one request at a time, so a step may do so
only if it gives a row the same value alone as among the training rows. This is a conservative
whitelist, read from the syntax alone (pure: no code runs):

* per-row column arithmetic, comparisons and bitwise logic (``df["a"] / df["b"]``, ``a > 3``);
* column selection by a string, a constant or a list of names (``df[["a", "b"]]``, ``df[cols]``);
* numpy element-wise functions (``np.log1p``, ``np.where``, ``np.sqrt``, ...);
* ``astype`` to a fixed type (not ``"category"``, whose categories come from the data),
  ``fillna`` / ``replace`` / ``map`` / ``isin`` / ``clip`` / ``between`` with literals,
  ``abs``, ``round``, ``isna`` / ``notna``, ``copy``;
* string accessor methods with literal arguments (``s.str.lower()``, ``s.str.len()``);
* ``pd.to_datetime`` and the ``.dt`` fields (``.dt.year``, ``.dt.dayofweek``, ...);
* ``pd.cut`` with its bin edges (and labels) written out;
* dropping columns named by literals or constants (``df.drop(columns=TARGET)``,
  ``df.drop(["id", "y"], axis=1)``): the planner makes it ignore the columns a request lacks
  (the target);
* setting a column on the rows a row-wise condition selects
  (``df.loc[df["age"] < 40, "age_group"] = "young"``);
* fitted steps (``ss = StandardScaler()``, ``ss.fit(df[cols])``, ``df[cols] = ss.transform(
  df[cols])``, ``X = ss.fit_transform(X)``): a transformer made in the steps from a class of
  scikit-learn with literal arguments, fitted on columns of the frames; what it learnt is kept
  with the model and the service applies it as training did (``Frames.fitted``);
* ``pd.get_dummies(frame, columns=...)`` assigned to a name (``drop_first`` too): the
  columns it makes from the training rows are kept with the model and the service aligns a
  request's to them (``Frames.dummies``; a request's are made without ``drop_first``, then
  aligned to the columns training kept);
* lists of column names: literals, ``+`` and ``+=`` of them, ``append`` / ``extend`` /
  ``remove`` of literals, and comprehensions over a frame's ``columns`` filtered by string
  tests (``[c for c in df.columns if c.startswith("mean ")]``): they depend on the frame's
  columns, which a request has as training had (the target aside), not on its values;
* a column read as an attribute (``df.age``, when ``age`` is no attribute of a pandas frame or
  series: ``promote/data/pandas_attributes.txt``);
* ``drop`` / ``fillna`` / ``replace`` / ``rename`` / ``clip`` with ``inplace=True`` on a frame
  of the steps itself (as ``df = df.drop(...)``; not on a column of it, which pandas'
  copy-on-write ignores), ``rename(columns={...})``;
* a statistic of a column used as a value (``fillna(df["age"].median())``,
  ``df["port"].mode()[0]``): training learns it once, requests reuse it
  (``Frames.statistics``); a frame's gaps filled with a statistic of each of its columns
  (``df.fillna(df.median(numeric_only=True))``), learnt the same way.

Anything else is refused, with the reason: other uses of statistics of a whole frame or of
another frame (``(df - df.mean()) / df.std()``), row filters and reordering
(``df[df.a > 0]``, ``dropna``, ``drop_duplicates``, ``sort_values``), ``get_dummies`` and
category types (their columns come from the data), ``fillna(method="ffill")`` and other steps
that read neighbouring rows, calls to functions the notebook defined, a frame's own attributes
(``df.shape``). ``explain`` says in words why a refused statement is not row-wise (it fits
something on the data, uses statistics of the data, keeps or drops rows, ...), for the note the
user reads.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from promote.analysis.bindings import BUILTINS

__all__ = [
    "GENERIC",
    "GENERIC_RANK",
    "NOTEBOOK_RANK",
    "SPLIT_RANK",
    "Frames",
    "Why",
    "attribute_column",
    "calls_outer_first",
    "explain",
    "is_literal",
    "refusal",
    "statistics_in",
    "within",
]

# numpy functions that act element by element (``np.where`` included).
NUMPY_ELEMENTWISE = frozenset(
    {
        "abs",
        "absolute",
        "arccos",
        "arcsin",
        "arctan",
        "arctan2",
        "cbrt",
        "ceil",
        "clip",
        "cos",
        "cosh",
        "divide",
        "exp",
        "exp2",
        "expm1",
        "fabs",
        "floor",
        "fmax",
        "fmin",
        "hypot",
        "isfinite",
        "isinf",
        "isnan",
        "log",
        "log10",
        "log1p",
        "log2",
        "logical_and",
        "logical_not",
        "logical_or",
        "maximum",
        "minimum",
        "multiply",
        "power",
        "rint",
        "round",
        "sign",
        "sin",
        "sinh",
        "sqrt",
        "square",
        "subtract",
        "add",
        "tan",
        "tanh",
        "trunc",
        "where",
    }
)
# Series / frame methods that act row by row when their arguments are literals.
ROW_METHODS = frozenset(
    {
        "abs",
        "astype",
        "between",
        "clip",
        "copy",
        "fillna",
        "isin",
        "isna",
        "isnull",
        "map",
        "notna",
        "notnull",
        "rename",
        "replace",
        "round",
    }
)
# Keywords those methods may take (with literal values); any other keyword is refused.
ROW_METHOD_KEYWORDS: Mapping[str, frozenset[str]] = {
    "astype": frozenset({"copy"}),
    "between": frozenset({"left", "right", "inclusive"}),
    "clip": frozenset({"lower", "upper"}),
    "copy": frozenset({"deep"}),
    "fillna": frozenset({"value"}),
    "rename": frozenset({"columns"}),
    "replace": frozenset({"to_replace", "value", "regex"}),
    "round": frozenset({"decimals"}),
}
# ``.str`` accessor methods: each string on its own.
STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "contains",
        "count",
        "endswith",
        "find",
        "fullmatch",
        "get",
        "isalnum",
        "isalpha",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "len",
        "lower",
        "lstrip",
        "match",
        "pad",
        "removeprefix",
        "removesuffix",
        "replace",
        "rstrip",
        "slice",
        "split",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "zfill",
    }
)
# ``.dt`` accessor fields.
DT_FIELDS = frozenset(
    {
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "dayofweek",
        "day_of_week",
        "weekday",
        "dayofyear",
        "day_of_year",
        "quarter",
        "is_month_start",
        "is_month_end",
        "is_quarter_start",
        "is_quarter_end",
        "is_year_start",
        "is_year_end",
        "is_leap_year",
        "days_in_month",
        "date",
        "time",
    }
)
# Methods a plain Python string has, used to filter column names in a comprehension.
NAME_TESTS = frozenset(
    {"startswith", "endswith", "lower", "upper", "strip", "isdigit", "isalpha", "casefold"}
)
TO_DATETIME_KEYWORDS = frozenset({"format", "errors", "utc", "dayfirst", "yearfirst", "unit"})
ARITHMETIC = (
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.BitAnd,
    ast.BitOr,
    ast.BitXor,
)
COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
LIST_METHODS = frozenset({"append", "extend", "remove"})
PLAIN_TYPES = frozenset({"int", "float", "str", "bool"})


@dataclass
class Frames:
    """What the statements seen so far bound: row-wise frames and lists of column names.

    ``constants`` are the notebook's constants (literals, read from settings), ``modules``
    maps import names to their top-level module (``np`` → ``numpy``).
    """

    frames: set[str]
    constants: frozenset[str] = frozenset()
    modules: Mapping[str, str] = field(default_factory=dict)
    lists: set[str] = field(default_factory=set)
    # transformers the steps make and fit, in order (their fitted state goes with the model)
    fitted: list[str] = field(default_factory=list)
    # names bound by ``pd.get_dummies`` in the steps, in order (their columns go with the model)
    dummies: list[str] = field(default_factory=list)
    # names bound to a transformer's array (``X = ss.transform(X)``): no columns, no row labels
    arrays: set[str] = field(default_factory=set)
    # statistics of a column the steps use as a value (``df["age"].median()``), as written
    # (``ast.unparse``), one per use in order: what they were in training goes with the model
    statistics: list[str] = field(default_factory=list)
    # steps after the split (``X_train = np.array(X_train)``): the rows' labels were taken at
    # the split, so a frame may become an array, and a transformer may take one
    after_split: bool = False
    # the training target the split made (``y_train``), which a transformer of the steps may
    # be fitted with (``SelectKBest(chi2, k=5).fit(X_train, y_train)``): requests need only
    # its ``transform``
    targets: set[str] = field(default_factory=set)


def refusal(stmt: ast.stmt, known: Frames) -> str | None:
    """None when ``stmt`` is provably row-wise (and ``known`` learns what it binds and the
    statistics it uses); else the source of the part that is not, as a short reason."""
    frames = set(known.frames)
    reason = _refusal(stmt, known)
    if reason is None:
        known.statistics += [ast.unparse(n) for n in statistics_in(stmt, frames, known.constants)]
    return reason


def _refusal(stmt: ast.stmt, known: Frames) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return _assign(stmt.targets[0], stmt.value, known)
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return _assign(stmt.target, stmt.value, known)
    if isinstance(stmt, ast.AugAssign):
        target = stmt.target
        if isinstance(target, ast.Name) and target.id in known.lists:
            return None if _is_names(stmt.value, known) else _why(stmt.value)
        if (
            isinstance(target, ast.Subscript)
            and _frame_column(target, known)
            and isinstance(stmt.op, ARITHMETIC)
        ):
            return _values(stmt.value, known)
        return _why(stmt)
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        call = stmt.value
        func = call.func
        if _fits_transformer(call, known):
            return None
        if _in_place(call, known):
            return _values(_without_in_place(call), known)
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in known.lists
            and func.attr in LIST_METHODS
            and not call.keywords
            and all(_is_names(a, known) or _is_literal(a, known) for a in call.args)
        ):
            return None
    return _why(stmt)


def _assign(target: ast.expr, value: ast.expr, known: Frames) -> str | None:
    if isinstance(target, ast.Name):
        if _makes_transformer(value, known) or _made_and_fitted(value, known):
            if target.id in known.fitted:  # a second transformer of the same name
                return _why(value)
            known.frames.discard(target.id)
            known.lists.discard(target.id)
            known.fitted.append(target.id)
            return None
        if _dummies(value, known):
            known.frames.add(target.id)
            known.lists.discard(target.id)
            known.dummies.append(target.id)
            return None
        if _is_names(value, known):
            known.lists.add(target.id)
            known.frames.discard(target.id)
            return None
        if known.after_split and _to_array(value, known):
            known.frames.discard(target.id)
            known.lists.discard(target.id)
            known.arrays.add(target.id)
            return None
        reason = _values(value, known)
        if reason is None and _transformed(value, known):
            # ``X = ss.fit_transform(X)``: an array, without the row labels that find the rows
            # requests carry (``pd.DataFrame(..., columns=X.columns, index=X.index)`` keeps them)
            known.frames.discard(target.id)
            known.lists.discard(target.id)
            known.arrays.add(target.id)
            return None
        known.arrays.discard(target.id)
        if reason is None:
            known.frames.add(target.id)
            known.lists.discard(target.id)
        return reason
    if isinstance(target, ast.Subscript) and _frame_column(target, known):
        return _values(value, known)
    if isinstance(target, ast.Subscript) and _conditional_column(target, known):
        assert isinstance(target.slice, ast.Tuple)
        return _values(target.slice.elts[0], known) or _values(value, known)
    return _why(target)


# Methods of a frame that may change it in place (``df.drop(columns=["id"], inplace=True)``):
# row-wise as ``df = df.drop(columns=["id"])`` is.
IN_PLACE_METHODS = frozenset({"drop", "fillna", "replace", "rename", "clip"})


def _in_place(call: ast.Call, known: Frames) -> bool:
    """``df.fillna(0, inplace=True)`` on a frame of the steps itself (not on a column of it:
    a chained in-place change does nothing under pandas' copy-on-write)."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in IN_PLACE_METHODS
        and isinstance(func.value, ast.Name)
        and func.value.id in known.frames
        and any(
            k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in call.keywords
        )
    )


def _without_in_place(call: ast.Call) -> ast.Call:
    return ast.Call(call.func, call.args, [k for k in call.keywords if k.arg != "inplace"])


# Methods whose result is a boolean mask of the rows (``.str`` ones included).
MASK_METHODS = frozenset(
    {"isin", "isna", "isnull", "notna", "notnull", "between", "contains", "startswith"}
    | {"endswith", "match", "fullmatch"}
)


def _is_condition(node: ast.expr) -> bool:
    """A boolean mask by its syntax: comparisons, ``&`` ``|`` ``~`` of them, ``isin``, ``isna``...
    (a label such as ``0`` or ``df["id"]`` would pick rows by their labels, not their values)."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr | ast.BitXor):
        return _is_condition(node.left) and _is_condition(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return _is_condition(node.operand)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in MASK_METHODS
    )


def _conditional_column(node: ast.Subscript, known: Frames) -> bool:
    """``df.loc[condition, "a"]`` on a known frame (the condition is checked by the caller)."""
    where = node.value
    return (
        isinstance(where, ast.Attribute)
        and where.attr == "loc"
        and isinstance(where.value, ast.Name)
        and where.value.id in known.frames
        and isinstance(node.slice, ast.Tuple)
        and len(node.slice.elts) == 2
        and _is_condition(node.slice.elts[0])
        and _is_column_key(node.slice.elts[1], known)
    )


def _frame_column(node: ast.Subscript, known: Frames) -> bool:
    """``df["a"]`` / ``df[NAME]`` / ``df[["a", "b"]]`` on a known frame."""
    return (
        isinstance(node.value, ast.Name)
        and node.value.id in known.frames
        and _is_column_key(node.slice, known)
    )


def _is_column_key(node: ast.expr, known: Frames) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.Name) and node.id in known.constants:
        return True
    return _is_names(node, known)


def _values(node: ast.expr, known: Frames) -> str | None:
    """None when ``node`` computes each row from the same row (or is a literal, or a
    statistic of a column, which training learns and requests reuse)."""
    if _is_literal(node, known) or _statistic(node, known.frames, known.constants, whole=False):
        return None
    if isinstance(node, ast.Name):
        return None if node.id in known.frames else _why(node)
    if isinstance(node, ast.Subscript):
        if _is_column_key(node.slice, known):
            return _values(node.value, known)
        return _why(node)
    if isinstance(node, ast.Attribute):
        accessor = node.value
        if node.attr in DT_FIELDS and isinstance(accessor, ast.Attribute) and accessor.attr == "dt":
            return _values(accessor.value, known)
        return None if attribute_column(node, known.frames) else _why(node)
    return _operation(node, known)


@functools.cache
def _pandas_attributes() -> frozenset[str]:
    """The names of pandas' frame and series attributes (``promote/data``)."""
    text = importlib.resources.files("promote").joinpath("data/pandas_attributes.txt")
    lines = text.read_text("utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def attribute_column(node: ast.AST, frames: set[str] | frozenset[str]) -> str:
    """``age`` for ``df.age`` read from a frame of ``frames`` when ``age`` is no attribute of a
    pandas frame or series (so pandas reads it as the column); else ""."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Load)
        and isinstance(node.value, ast.Name)
        and node.value.id in frames
        and node.attr not in _pandas_attributes()
    ):
        return node.attr
    return ""


def _operation(node: ast.expr, known: Frames) -> str | None:
    """Operators and calls (see ``_values``)."""
    if isinstance(node, ast.Call):
        return None if _fills_with_frame_statistic(node, known) else _call(node, known)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
        return _values(node.left, known) or _values(node.right, known)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Invert):
        return _values(node.operand, known)
    if isinstance(node, ast.Compare) and all(isinstance(op, COMPARISONS) for op in node.ops):
        return _all_values([node.left, *node.comparators], known)
    return _why(node)


def _call(node: ast.Call, known: Frames) -> str | None:
    func = node.func
    if not isinstance(func, ast.Attribute):
        return _why(node)
    receiver = func.value
    if isinstance(receiver, ast.Name) and receiver.id in known.fitted:
        return _transform(node, func.attr, known)
    if isinstance(receiver, ast.Name) and receiver.id not in known.frames:
        return _module_call(node, func.attr, known.modules.get(receiver.id, ""), known)
    if isinstance(receiver, ast.Attribute) and receiver.attr == "str":
        if func.attr not in STR_METHODS or not _literal_arguments(node, known, None):
            return _why(node)
        return _values(receiver.value, known)
    if func.attr == "drop":
        return _values(receiver, known) if _drops_columns(node, known) else _why(node)
    if func.attr not in ROW_METHODS:
        return _why(node)
    keywords = ROW_METHOD_KEYWORDS.get(func.attr, frozenset())
    if func.attr == "astype":  # its argument is a type, checked by _fixed_type
        checked = ast.Call(node.func, [], node.keywords)
        if not (_fixed_type(node, known) and _literal_arguments(checked, known, keywords)):
            return _why(node)
    elif not _literal_arguments(node, known, keywords, learnt=True):
        return _why(node)
    if not _method_shape(node, func.attr):
        return _why(node)
    return _values(receiver, known)


def _fills_with_frame_statistic(node: ast.Call, known: Frames) -> bool:
    """``df.fillna(df.mean())`` / ``df.fillna(value=df.median(numeric_only=True))``: a frame
    of the steps filled with a statistic of each of its columns, learnt in training."""
    func = node.func
    values = [*node.args, *(k.value for k in node.keywords if k.arg == "value")]
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "fillna"
        and isinstance(func.value, ast.Name)
        and func.value.id in known.frames
        and len(values) == 1
        and all(k.arg == "value" for k in node.keywords)
        and _frame_statistic(values[0], known.frames, known.constants)
    )


def _method_shape(node: ast.Call, method: str) -> bool:
    """``map`` takes one dict; ``rename`` only ``columns=`` (a mapper renames the rows)."""
    if method == "map":
        return len(node.args) == 1 and isinstance(node.args[0], ast.Dict)
    if method == "rename":
        return not node.args and bool(node.keywords)
    return True


# A fitted transformer's methods that turn rows into rows (``fit_transform`` fits it first).
TRANSFORMS = frozenset({"transform", "fit_transform"})
# Keywords of ``pd.get_dummies`` whose literal values keep its columns a function of the
# categories seen in training (``drop_first`` too: the service leaves it out and keeps the
# columns training kept, without each first category).
DUMMIES_KEYWORDS = frozenset({"columns", "prefix", "prefix_sep", "dummy_na", "dtype", "drop_first"})


def _transform(node: ast.Call, method: str, known: Frames) -> str | None:
    """``ss.transform(df[cols])`` / ``ss.fit_transform(X)`` on a transformer of the steps."""
    if method not in TRANSFORMS or node.keywords or len(node.args) != 1:
        return _why(node)
    return None if _an_array(node.args[0], known) else _values(node.args[0], known)


def _an_array(node: ast.expr, known: Frames) -> bool:
    """An array of the steps made after the split, which a transformer may take."""
    return known.after_split and isinstance(node, ast.Name) and node.id in known.arrays


# Calls that turn a frame into the array of its values, row for row, column for column.
TO_ARRAY = frozenset({"array", "asarray"})


def _to_array(node: ast.expr, known: Frames) -> bool:
    """``np.array(X)``, ``np.asarray(X)``, ``X.values``, ``X.to_numpy()`` of a frame of the
    steps (or an array of them): the same rows and columns, without names."""

    def ours(part: ast.expr) -> bool:
        return isinstance(part, ast.Name) and (part.id in known.frames or part.id in known.arrays)

    if isinstance(node, ast.Attribute):
        return node.attr == "values" and ours(node.value)
    if not isinstance(node, ast.Call) or node.keywords or len(node.args) > 1:
        return False
    func = node.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "to_numpy":
        return not node.args and ours(func.value)
    return (
        func.attr in TO_ARRAY
        and isinstance(func.value, ast.Name)
        and known.modules.get(func.value.id) == "numpy"
        and len(node.args) == 1
        and ours(node.args[0])
    )


def _transformed(node: ast.expr, known: Frames) -> bool:
    """``ss.transform(...)``: the array a transformer of the steps makes."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in known.fitted
    )


# scikit-learn's functions that make a transformer of others.
SKLEARN_MAKERS = frozenset({"make_pipeline", "make_union", "make_column_transformer"})


def _makes_transformer(node: ast.expr, known: Frames) -> bool:
    """``StandardScaler()`` / ``preprocessing.OneHotEncoder(handle_unknown="ignore")``: a class
    of scikit-learn called with literal arguments, or with such transformers among them
    (``Pipeline([("scale", StandardScaler())])``, ``make_pipeline(SimpleImputer(), ...)``)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    root = func
    while isinstance(root, ast.Attribute):
        root = root.value
    if not isinstance(root, ast.Name) or known.modules.get(root.id) != "sklearn":
        return False
    name = func.attr if isinstance(func, ast.Attribute) else root.id
    if not (name[:1].isupper() or name in SKLEARN_MAKERS):
        return False
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        k.arg is None for k in node.keywords
    ):
        return False
    return all(
        _transformer_argument(a, known) for a in (*node.args, *(k.value for k in node.keywords))
    )


def _transformer_argument(node: ast.expr, known: Frames) -> bool:
    """A literal, a transformer made as ``_makes_transformer`` allows, a function of
    scikit-learn (``chi2``), or a list, tuple or dict of those (a pipeline's named steps)."""
    if _is_literal(node, known):
        return True
    if isinstance(node, ast.Name) and known.modules.get(node.id) == "sklearn":
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return all(_transformer_argument(e, known) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(
            k is not None and _is_literal(k, known) and _transformer_argument(v, known)
            for k, v in zip(node.keys, node.values, strict=True)
        )
    return _makes_transformer(node, known)


def _fits_transformer(node: ast.Call, known: Frames) -> bool:
    """``ss.fit(df[cols])``: a transformer of the steps fitted on row-wise values (and, after
    the split, the training target: ``selector.fit(X_train, y_train)``)."""
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in known.fitted
        and _fit_of_rows(node, known)
    )


def _made_and_fitted(node: ast.expr, known: Frames) -> bool:
    """``SelectKBest(chi2, k=5).fit(X_train, y_train)``: a transformer made and fitted at once."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _makes_transformer(node.func.value, known)
        and _fit_of_rows(node, known)
    )


def _fit_of_rows(node: ast.Call, known: Frames) -> bool:
    """``.fit(rows)``, or ``.fit(rows, y_train)`` with the training target after the split."""
    if not (isinstance(node.func, ast.Attribute) and node.func.attr == "fit") or node.keywords:
        return False
    if len(node.args) == 2:
        target = node.args[1]
        if not (isinstance(target, ast.Name) and target.id in known.targets):
            return False
    elif len(node.args) != 1:
        return False
    rows = node.args[0]
    return _an_array(rows, known) or _values(rows, known) is None


def _dummies(node: ast.expr, known: Frames) -> bool:
    """``pd.get_dummies(frame, columns=[...])`` on a frame of the steps, literal keywords among
    ``DUMMIES_KEYWORDS``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_dummies"
        and isinstance(node.func.value, ast.Name)
        and known.modules.get(node.func.value.id) == "pandas"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id in known.frames
        and all(_dummies_keyword(k, known) for k in node.keywords)
    )


def _dummies_keyword(keyword: ast.keyword, known: Frames) -> bool:
    value = keyword.value
    if keyword.arg == "columns":
        return _is_column_key(value, known)
    if keyword.arg == "dtype":  # a type: ``int``, ``np.uint8``, ``"float"``
        return _fixed_type(ast.Call(ast.Name("astype"), [value], []), known)
    return keyword.arg in DUMMIES_KEYWORDS and _is_literal(value, known)


def _drops_columns(node: ast.Call, known: Frames) -> bool:
    """``frame.drop(columns=KEYS)`` or ``frame.drop(KEYS, axis=1 | "columns")`` (``labels=``
    too), with ``errors`` at most besides: columns go, every row stays."""
    keywords = {k.arg: k.value for k in node.keywords}
    if None in keywords or set(keywords) - {"columns", "labels", "axis", "errors"}:
        return False
    errors = keywords.get("errors")
    if errors is not None and not _is_literal(errors, known):
        return False
    if "columns" in keywords:
        return (
            not node.args
            and "labels" not in keywords
            and "axis" not in keywords
            and (_is_column_key(keywords["columns"], known))
        )
    axis = keywords.get("axis")
    labels = node.args[0] if len(node.args) == 1 else keywords.get("labels")
    return (
        labels is not None
        and len(node.args) + ("labels" in keywords) == 1
        and isinstance(axis, ast.Constant)
        and axis.value in (1, "columns")
        and _is_column_key(labels, known)
    )


def _module_call(node: ast.Call, name: str, module: str, known: Frames) -> str | None:
    """``np.log1p(x)``, ``np.where(c, a, b)``, ``pd.to_datetime(s)``."""
    if module == "numpy" and name in NUMPY_ELEMENTWISE and not node.keywords:
        return _all_values(node.args, known)
    if module == "pandas" and name == "DataFrame" and _framed(node, known):
        return _values(node.args[0], known)
    if (
        module == "pandas"
        and name == "to_datetime"
        and len(node.args) == 1
        and all(
            k.arg in TO_DATETIME_KEYWORDS and _is_literal(k.value, known) for k in node.keywords
        )
    ):
        return _values(node.args[0], known)
    if module == "pandas" and name == "cut" and _fixed_bins(node, known):
        return _values(node.args[0], known)
    return _why(node)


# Keywords of ``pd.cut`` that keep each value's bin a function of the value alone, when the
# bins are edges written out (a number of bins would be spread over the data's range).
CUT_KEYWORDS = frozenset({"bins", "labels", "right", "include_lowest", "precision", "ordered"})


def _fixed_bins(node: ast.Call, known: Frames) -> bool:
    """``pd.cut(s, bins=[0, 1.5, np.inf], labels=[1, 2])``: edges and labels written out."""
    keywords = {k.arg: k.value for k in node.keywords}
    if None in keywords or set(keywords) - CUT_KEYWORDS or not 1 <= len(node.args) <= 2:
        return False
    bins = node.args[1] if len(node.args) == 2 else keywords.get("bins")
    if not (isinstance(bins, ast.List | ast.Tuple) and all(_edge(e, known) for e in bins.elts)):
        return False
    return all(_is_literal(v, known) for k, v in keywords.items() if k != "bins")


def _edge(node: ast.expr, known: Frames) -> bool:
    """A number written out, or numpy's infinity (``np.inf``, ``-np.inf``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr == "inf" and known.modules.get(node.value.id) == "numpy"
    return _is_literal(node, known)


def _framed(node: ast.Call, known: Frames) -> bool:
    """``pd.DataFrame(ss.transform(X), columns=X.columns, index=X.index)``: the rows of a
    transformer's array named again, each row the one it was (``index`` of a frame of the
    steps, or none: ``make train`` checks that the rows still line up)."""
    keywords = {k.arg: k.value for k in node.keywords}
    if len(node.args) != 1 or not _transformed(node.args[0], known):
        return False
    if None in keywords or set(keywords) - {"columns", "index"} or "columns" not in keywords:
        return False
    columns = keywords["columns"]
    named = _is_names(columns, known) or _frame_attribute(columns, "columns", known)
    index = keywords.get("index")
    return named and (index is None or _frame_attribute(index, "index", known))


def _frame_attribute(node: ast.expr, attribute: str, known: Frames) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attribute
        and isinstance(node.value, ast.Name)
        and node.value.id in known.frames
    )


def _all_values(nodes: list[ast.expr], known: Frames) -> str | None:
    for part in nodes:
        if reason := _values(part, known):
            return reason
    return None


def _literal_arguments(
    node: ast.Call, known: Frames, keywords: frozenset[str] | None, learnt: bool = False
) -> bool:
    """All arguments literals (or constants; with ``learnt``, statistics of a column too);
    keywords among ``keywords`` (None: any)."""
    if any(isinstance(a, ast.Starred) for a in node.args):
        return False
    for keyword in node.keywords:
        if keyword.arg is None or (keywords is not None and keyword.arg not in keywords):
            return False
    return all(
        _is_literal(a, known)
        or (learnt and _statistic(a, known.frames, known.constants, whole=False))
        for a in (*node.args, *(k.value for k in node.keywords))
    )


# Methods of a column that summarise its values into one (learnt in training, reused).
COLUMN_STATISTICS = frozenset(
    {"mean", "median", "std", "var", "min", "max", "sum", "quantile", "nunique"}
)


def _statistic(
    node: ast.AST, frames: set[str], constants: frozenset[str], *, whole: bool = True
) -> bool:
    """``df["age"].median()``, ``df[COL].quantile(0.9)``, ``df["port"].mode()[0]``: one value
    computed from a column of a frame of the steps, with literal arguments; with ``whole``,
    also one per column of a whole frame (``_frame_statistic``)."""
    if whole and _frame_statistic(node, frames, constants):
        return True
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and node.slice.value == 0
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "mode"
    ):
        call, methods = node.value, frozenset({"mode"})
    elif isinstance(node, ast.Call):
        call, methods = node, COLUMN_STATISTICS
    else:
        return False
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in methods):
        return False
    column = func.value
    known = Frames(set(frames), constants)
    named = bool(attribute_column(column, frames)) or (
        isinstance(column, ast.Subscript)
        and isinstance(column.value, ast.Name)
        and column.value.id in frames
        and isinstance(column.slice, ast.Constant | ast.Name)
        and _is_column_key(column.slice, known)
    )
    return named and _literal_arguments(call, known, None)


# Methods of a whole frame that summarise each column into one value (a series by column).
FRAME_STATISTICS = frozenset({"mean", "median", "min", "max"})


def _frame_statistic(node: ast.AST, frames: set[str], constants: frozenset[str]) -> bool:
    """``df.mean(numeric_only=True)``, ``df.median()``, ``df.mode().iloc[0]``: a value per
    column of a frame of the steps, with literal arguments. Row-wise only as what a frame's
    gaps are filled with (``df.fillna(df.mean())``: by column label, the frame's columns
    kept), which ``_call`` checks; arithmetic with it would align the columns of a request
    with those of training and could reorder them."""
    found = frame_statistic_call(node)
    return (
        found is not None
        and found[1] in frames
        and _literal_arguments(found[0], Frames(set(frames), constants), None)
    )


def frame_statistic_call(node: ast.AST) -> tuple[ast.Call, str] | None:
    """A statistic of each column of a frame by its form: its call (``df.median()``, the
    ``df.mode()`` of ``df.mode().iloc[0]``) and the frame's name, whatever the frame; None for
    any other node."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and node.slice.value == 0
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "iloc"
        and isinstance(node.value.value, ast.Call)
    ):
        call, methods = node.value.value, frozenset({"mode"})
    elif isinstance(node, ast.Call):
        call, methods = node, FRAME_STATISTICS
    else:
        return None
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in methods):
        return None
    return (call, func.value.id) if isinstance(func.value, ast.Name) else None


def statistics_in(
    stmt: ast.AST, frames: set[str], constants: frozenset[str] = frozenset()
) -> list[ast.expr]:
    """The statistics of a column (``_statistic``) that ``stmt`` uses, in the order of the
    source, each once (not those inside another)."""
    found: list[ast.expr] = []
    for node in calls_outer_first(stmt):
        inside = any(within(node, outer) for outer in found)
        if not inside and _statistic(node, frames, constants):
            found.append(node)
    return found


def calls_outer_first(stmt: ast.AST) -> list[ast.expr]:
    """The calls and subscripts of ``stmt`` in the order of its source, each before those
    inside it: where a statistic may be (``statistics_in``, ``planning/state.py``)."""
    return sorted(
        (n for n in ast.walk(stmt) if isinstance(n, ast.Call | ast.Subscript)),
        key=lambda n: (n.lineno, n.col_offset, -(n.end_lineno or 0), -(n.end_col_offset or 0)),
    )


def within(node: ast.expr, outer: ast.expr) -> bool:
    """Whether ``node``'s source lies inside ``outer``'s."""
    return (outer.lineno, outer.col_offset) <= (node.lineno, node.col_offset) and (
        node.end_lineno or 0,
        node.end_col_offset or 0,
    ) <= (outer.end_lineno or 0, outer.end_col_offset or 0)


def _fixed_type(node: ast.Call, known: Frames) -> bool:
    """``astype`` to a type fixed in the code, not ``"category"`` (categories from the data)."""
    if len(node.args) != 1:
        return False
    kind = node.args[0]
    if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
        return kind.value != "category"
    if isinstance(kind, ast.Name):
        return kind.id in PLAIN_TYPES
    if isinstance(kind, ast.Attribute) and isinstance(kind.value, ast.Name):
        return known.modules.get(kind.value.id) == "numpy"
    return False


def is_literal(node: ast.expr, known: Frames) -> bool:
    """A literal, possibly nested in containers, or a constant of the notebook."""
    return _is_literal(node, known)


def _is_literal(node: ast.expr, known: Frames) -> bool:
    """A literal, possibly nested in containers, or a constant of the notebook."""
    if isinstance(node, ast.Name):
        return node.id in known.constants
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _is_literal(node.operand, known)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_is_literal(e, known) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(
            k is not None and _is_literal(k, known) and _is_literal(v, known)
            for k, v in zip(node.keys, node.values, strict=True)
        )
    return False


def _is_names(node: ast.expr, known: Frames) -> bool:
    """A list of column names (see the module docstring)."""
    if isinstance(node, ast.List | ast.Tuple):
        return bool(node.elts) and all(
            (isinstance(e, ast.Constant) and isinstance(e.value, str))
            or (isinstance(e, ast.Name) and e.id in known.constants)
            for e in node.elts
        )
    if isinstance(node, ast.Name):
        return node.id in known.lists
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_names(node.left, known) and _is_names(node.right, known)
    if isinstance(node, ast.ListComp) and len(node.generators) == 1:
        loop = node.generators[0]
        if not isinstance(loop.target, ast.Name) or loop.is_async:
            return False
        variable = loop.target.id
        source = loop.iter
        over_columns = (
            isinstance(source, ast.Attribute)
            and source.attr == "columns"
            and isinstance(source.value, ast.Name)
            and source.value.id in known.frames
        )
        if not (over_columns or _is_names(source, known)):
            return False
        return _name_test(node.elt, variable, known) and all(
            _name_test(test, variable, known) for test in loop.ifs
        )
    return False


def _name_test(node: ast.expr, variable: str, known: Frames) -> bool:
    """An expression of one column name ``variable`` and literals: string tests, comparisons."""
    if isinstance(node, ast.Name):
        return node.id == variable or node.id in known.constants
    if _is_literal(node, known):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_name_test(v, variable, known) for v in node.values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _name_test(node.operand, variable, known)
    if isinstance(node, ast.Compare):
        return all(_name_test(p, variable, known) for p in (node.left, *node.comparators))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return (
            node.func.attr in NAME_TESTS
            and _name_test(node.func.value, variable, known)
            and not node.keywords
            and all(_is_literal(a, known) for a in node.args)
        )
    return False


def _why(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


# -- why a step is not row-wise, in words ---------------------------------------------------------
GENERIC = "is not a step promote can prove row-wise (see docs/explanation/split.md)"
# Calls that learn something from the rows they are given (``scaler.fit(X)``).
FITS = frozenset({"fit", "fit_transform", "partial_fit", "fit_resample"})
# Methods and numpy functions that summarise many rows into one value.
STATISTICS = frozenset(
    {"mean", "median", "std", "var", "min", "max", "sum", "prod", "quantile", "mode"}
    | {"value_counts", "idxmax", "idxmin", "nunique", "describe", "corr", "cov", "skew"}
    | {"kurt", "agg", "aggregate", "groupby", "qcut", "percentile", "nanmean", "nanmedian"}
    | {"nanstd", "average", "amax", "amin", "ptp"}
)
# Calls whose new columns come from the values found in the data.
DATA_COLUMNS = frozenset({"get_dummies", "unique", "factorize", "Categorical", "crosstab"})
# Calls that keep, drop or reorder rows.
ROWS = frozenset(
    {"dropna", "drop_duplicates", "sort_values", "sort_index", "query", "head", "tail"}
    | {"sample", "nlargest", "nsmallest", "reset_index", "set_index"}
)
# Calls that read other rows than the one they compute.
NEIGHBOURS = frozenset(
    {"shift", "diff", "rolling", "expanding", "ewm", "cumsum", "cumprod", "cummax", "cummin"}
    | {"pct_change", "ffill", "bfill", "interpolate", "rank", "resample"}
)
# What turns a table into an array without column names.
ARRAYS = frozenset({"values", "to_numpy", "array", "asarray", "reshape", "newaxis"})


class Why(NamedTuple):
    """Why a step is not row-wise: ``text`` for the user, ``rank`` the lower the more telling."""

    rank: int
    text: str


NOTEBOOK_RANK = 6  # a call of the notebook's own function: promote does not know what it does
SPLIT_RANK = 7  # a split inside the steps: less telling than any other reason
GENERIC_RANK = 8


def explain(stmt: ast.stmt, known: Frames) -> Why:
    """Why ``stmt`` (refused by ``refusal``) is not row-wise, the most telling reason: it fits
    on the data, uses statistics of it, makes columns from its values, keeps or drops rows,
    reads neighbouring rows, turns the table into an array, calls the notebook's own function,
    splits the rows; else ``GENERIC``."""
    found = [why for node in ast.walk(stmt) if (why := _node_reason(node, known))]
    return min(found, key=lambda why: why.rank) if found else Why(GENERIC_RANK, GENERIC)


def _node_reason(node: ast.AST, known: Frames) -> Why | None:
    name = _called(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        fit = _fit_reason(node, name, known)
        if fit is not None:
            return fit
    if name in STATISTICS:
        return Why(1, _statistics(name))
    if name in DATA_COLUMNS or (name == "astype" and _category(node)):
        return Why(
            2,
            f"makes columns from the values found in the data (`{name}`), which one request "
            "does not show",
        )
    if name == "train_test_split":
        return Why(
            SPLIT_RANK,
            "splits the rows into training and test sets; promote slices the steps made before "
            "the split",
        )
    if name in ROWS or _row_mask(node):
        return Why(
            3,
            f"keeps, drops or reorders rows (`{name or _why(node)}`), which the service cannot "
            "do to the one request it must answer",
        )
    if name in NEIGHBOURS or (name == "fillna" and _by_neighbours(node)):
        return Why(4, f"reads other rows (`{name}`) than the one it computes")
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in known.frames
        and isinstance(node.slice, ast.Name)
        and not _is_column_key(node.slice, known)
    ):
        return Why(
            5,
            f"selects the columns `{node.slice.id}` lists, which the notebook computes rather "
            "than writes out, so promote cannot tell which columns a request needs",
        )
    if name in ARRAYS:
        return Why(
            5,
            f"turns the table into an array without column names (`{name}`), which requests, "
            "made of named fields, cannot start from",
        )
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id not in known.modules
        and node.func.id not in BUILTINS
    ):
        return Why(
            NOTEBOOK_RANK,
            f"calls `{node.func.id}`, a function the notebook defines, which promote does not "
            "look into",
        )
    return None


def _fit_reason(node: ast.Call, name: str, known: Frames) -> Why | None:
    """Why a ``fit`` / ``transform`` call is not row-wise, None if it is not one or is the
    call of a transformer of the steps that is (what it learns goes with the model)."""
    assert isinstance(node.func, ast.Attribute)
    receiver = node.func.value
    if (
        isinstance(receiver, ast.Name)
        and receiver.id in known.fitted
        and (_fits_transformer(node, known) or _call(node, known) is None)
    ):
        return None
    if name in FITS:
        return Why(0, _fitted(receiver, "fits"))
    if name == "transform":
        if node.args and isinstance(node.args[0], ast.Constant):  # df["a"].transform("mean")
            return Why(1, _statistics(str(node.args[0].value)))
        return Why(0, _fitted(receiver, "applies"))
    return None


def _fitted(node: ast.expr, verb: str) -> str:
    where = " on the training data" if verb == "fits" else ", fitted on the training data,"
    return (
        f"{verb} `{_why(node)}`{where} outside the model, so the service cannot apply it to "
        "a request (in a scikit-learn Pipeline with the model, it would be part of the model)"
    )


def _called(node: ast.AST) -> str:
    """The name a call (or an attribute such as ``.values``) uses, else ""."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            return func.attr
        return func.id if isinstance(func, ast.Name) else ""
    if isinstance(node, ast.Attribute) and node.attr in {"values", "newaxis"}:
        return node.attr
    return ""


def _statistics(name: str) -> str:
    return (
        f"uses statistics of the training data (`{name}`), which the service cannot compute "
        "from one request"
    )


def _category(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and any(
        isinstance(a, ast.Constant) and a.value == "category" for a in node.args
    )


def _by_neighbours(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and any(k.arg == "method" for k in node.keywords)


def _row_mask(node: ast.AST) -> bool:
    """``df[df["a"] > 0]`` / ``df.loc[mask]``: rows picked by a condition."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.ctx, ast.Load):
        return False  # ``df.loc[mask, "a"] = 1`` sets values, it keeps every row
    key = node.slice
    if isinstance(key, ast.Tuple) and key.elts:
        key = key.elts[0]
    return _is_condition(key)
