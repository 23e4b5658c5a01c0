"""Type annotations for the values stages hand each other, from what the code shows.

Conservative on purpose: a value gets a type only when the code that makes it says so
(``pd.read_csv(...)`` is a DataFrame, ``df[["a", "b"]]`` a DataFrame and ``df["a"]`` a Series,
``train_test_split`` keeps its inputs' types, ``model.predict(...)`` is an array, a scikit-learn
metric a float, ``LogisticRegression(...)`` an instance of that class); anything else stays
``Any``. A wrong annotation is worse than none. Pure: statements in, annotations out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Annotation", "TypeTracker"]

_PANDAS_FRAMES = re.compile(
    r"pandas\.(read_(csv|table|parquet|excel|json|feather|pickle|sql|sql_query|sql_table|"
    r"html|orc|stata|sas|spss|fwf|xml)|DataFrame|get_dummies|merge|pivot_table|crosstab)$"
)
_NUMPY_ARRAYS = re.compile(
    r"numpy\.(array|asarray|zeros|ones|empty|full|arange|linspace|concatenate|stack|vstack|"
    r"hstack|column_stack|where|log1p|expm1|log|exp|sqrt|abs|clip)$"
)
_SKLEARN_METRIC = re.compile(r"sklearn\.metrics\.\w*(_score|_error|_loss|log_loss)$")
_MODEL_MODULES = ("sklearn.", "xgboost.", "lightgbm.", "catboost.", "imblearn.")
# DataFrame methods that return a DataFrame, and Series methods that return a Series.
_FRAME_METHODS = frozenset(
    {
        "assign",
        "astype",
        "copy",
        "drop",
        "drop_duplicates",
        "dropna",
        "fillna",
        "head",
        "join",
        "merge",
        "query",
        "rename",
        "replace",
        "reset_index",
        "sample",
        "select_dtypes",
        "set_index",
        "sort_index",
        "sort_values",
        "tail",
    }
)
_SERIES_METHODS = frozenset(
    {"astype", "copy", "dropna", "fillna", "head", "map", "replace", "sample", "tail"}
)


@dataclass(frozen=True)
class Annotation:
    """A type as generated code writes it, and the notebook names it needs imported."""

    text: str
    names: frozenset[str] = frozenset()


ANY = Annotation("Any")


class TypeTracker:
    """Follows the kinds of values through statements in notebook order.

    ``aliases`` maps each imported name to what it names (``pd`` → ``pandas``).
    """

    def __init__(self, aliases: Mapping[str, str], constants: Mapping[str, str]) -> None:
        """``constants`` maps the notebook's constants to their kind: ``str`` or ``list``."""
        self._aliases = dict(aliases)
        self._kinds: dict[str, str] = dict(constants)
        self._pandas = _alias_of(aliases, "pandas")
        self._numpy = _alias_of(aliases, "numpy")

    def visit(self, statement: ast.stmt, binds: Iterable[str]) -> None:
        """Update the kinds of the names ``statement`` binds."""
        if isinstance(statement, ast.Expr) or _mutates_only(statement):
            return  # model.fit(X, y) or df["ratio"] = ...: a value changed in place keeps its kind
        bound = set(binds)
        known: dict[str, str] = {}
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            known = self._assigned(statement.targets[0], statement.value)
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            known = self._assigned(statement.target, statement.value)
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            if name in self._kinds and self._kinds[name] in {"list", "frame"}:
                known = {name: self._kinds[name]}
        for name in bound:
            if name in known:
                self._kinds[name] = known[name]
            else:
                self._kinds.pop(name, None)

    def annotation(self, name: str) -> Annotation:
        """The annotation for ``name`` as its kind stands now."""
        kind = self._kinds.get(name, "")
        if kind == "frame" and self._pandas:
            return Annotation(f"{self._pandas}.DataFrame", frozenset({self._pandas}))
        if kind == "series" and self._pandas:
            return Annotation(f"{self._pandas}.Series", frozenset({self._pandas}))
        if kind == "array" and self._numpy:
            return Annotation(f"{self._numpy}.ndarray", frozenset({self._numpy}))
        if kind == "float":
            return Annotation("float")
        if kind.startswith("class:"):
            local = kind.removeprefix("class:")
            return Annotation(local, frozenset({local}))
        return ANY

    # -- what a statement makes ------------------------------------------------------------------
    def _assigned(self, target: ast.expr, value: ast.expr) -> dict[str, str]:
        if isinstance(target, ast.Name):
            kind = self._kind(value)
            return {target.id: kind} if kind else {}
        if (
            isinstance(target, ast.Tuple | ast.List)
            and isinstance(value, ast.Call)
            and self._qualified(value.func).endswith("model_selection.train_test_split")
        ):
            return self._split(target.elts, value.args)
        return {}

    def _split(self, targets: list[ast.expr], arrays: list[ast.expr]) -> dict[str, str]:
        """``X_train, X_test, y_train, y_test = train_test_split(X, y)``: each keeps its type."""
        if len(targets) != 2 * len(arrays) or any(isinstance(a, ast.Starred) for a in arrays):
            return {}
        out = {}
        for index, target in enumerate(targets):
            kind = self._kind(arrays[index // 2])
            if isinstance(target, ast.Name) and kind:
                out[target.id] = kind
        return out

    def _kind(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return self._kinds.get(node.id, "")
        if isinstance(node, ast.List | ast.ListComp):
            return "list"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            kinds = {self._kind(node.left), self._kind(node.right)}
            return "list" if kinds == {"list"} else ""
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.Attribute):
            receiver = self._kind(node.value)
            if node.attr == "values" and receiver in {"frame", "series"}:
                return "array"
            if receiver == "bunch":  # load_iris(as_frame=True).frame
                return {"frame": "frame", "data": "frame", "target": "series"}.get(node.attr, "")
            return ""
        if isinstance(node, ast.Call):
            return self._call(node)
        return ""

    def _subscript(self, node: ast.Subscript) -> str:
        if self._kind(node.value) != "frame":
            return ""
        key = node.slice
        if (isinstance(key, ast.Constant) and isinstance(key.value, str)) or self._kind(
            key
        ) == "str":
            return "series"
        if isinstance(key, ast.List) or self._kind(key) == "list":
            return "frame"
        if isinstance(key, ast.Compare | ast.BoolOp) or (  # df[df.a > 0]: rows by a mask
            isinstance(key, ast.BinOp) and isinstance(key.op, ast.BitAnd | ast.BitOr)
        ):
            return "frame"
        return ""

    def _call(self, node: ast.Call) -> str:
        func = node.func
        if isinstance(func, ast.Attribute) and not self._is_module(func.value):
            receiver = self._kind(func.value)
            if func.attr in {"predict", "predict_proba", "decision_function"}:
                return "array"
            if func.attr == "to_numpy" and receiver in {"frame", "series"}:
                return "array"
            if receiver == "frame" and func.attr in _FRAME_METHODS:
                return "frame"
            if receiver == "series" and func.attr in _SERIES_METHODS:
                return "series"
            return ""
        qualified = self._qualified(func)
        if re.search(r"sklearn\.datasets\.(load|fetch)_\w+$", qualified) and any(
            k.arg == "as_frame" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        ):
            return "bunch"
        if _PANDAS_FRAMES.search(qualified):
            return "frame"
        if qualified.endswith("pandas.Series"):
            return "series"
        if _NUMPY_ARRAYS.search(qualified):
            return "array"
        if _SKLEARN_METRIC.search(qualified) and "report" not in qualified:
            return "float"
        if (
            isinstance(func, ast.Name)
            and func.id[:1].isupper()
            and qualified.startswith(_MODEL_MODULES)
        ):
            return f"class:{func.id}"
        return ""

    def _qualified(self, node: ast.expr) -> str:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self._aliases:
            return ""
        parts.append(self._aliases[node.id])
        return ".".join(reversed(parts))

    def _is_module(self, node: ast.expr) -> bool:
        """``pd`` or ``metrics`` (``from sklearn import metrics``), not an imported class."""
        if not isinstance(node, ast.Name) or node.id not in self._aliases:
            return False
        return not self._aliases[node.id].rsplit(".", 1)[-1][:1].isupper()


def _alias_of(aliases: Mapping[str, str], module: str) -> str:
    """The name the notebook imported ``module`` under (``pd``), if it did."""
    for name, target in sorted(aliases.items()):
        if target == module:
            return name
    return ""


def _mutates_only(statement: ast.stmt) -> bool:
    """``df["x"] = ...`` or ``df.loc[...] = ...``: assigns into a value without rebinding it."""
    if isinstance(statement, ast.Assign):
        return all(isinstance(t, ast.Subscript | ast.Attribute) for t in statement.targets)
    return isinstance(statement, ast.AugAssign) and isinstance(
        statement.target, ast.Subscript | ast.Attribute
    )
