"""Classify each top-level statement of a cell: import, constant, definition, display or code."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field

from promote.analysis import tables
from promote.analysis.bindings import effects

__all__ = [
    "Context",
    "Statement",
    "called_name",
    "changes_state",
    "source_lines",
    "split_statements",
]


def source_lines(source: str) -> list[str]:
    """Lines as Python numbers them: split at \\n, \\r\\n and \\r only.

    ``str.splitlines`` also splits at characters such as U+2028 or \\x1e, which may sit inside a
    string literal; the line numbers of ``ast`` would then point at the wrong lines.
    """
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


@dataclass(frozen=True)
class Statement:
    """One top-level statement with the lines it spans (``start`` includes its leading comments)."""

    node: ast.stmt
    kind: str  # "import" | "constant" | "definition" | "display" | "code"
    reads: tuple[str, ...]
    binds: tuple[str, ...]
    start: int  # 0-based first line, leading comment block included
    end: int  # 0-based, exclusive

    @functools.cached_property
    def nodes(self) -> tuple[ast.AST, ...]:
        """Every node of the statement, as ``ast.walk`` gives them: walked once, read by the
        many checks that each look at every node."""
        return tuple(ast.walk(self.node))


@dataclass
class Context:
    """What earlier cells told us: names bound to plotting objects and to imported modules."""

    plot_names: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)


def split_statements(tree: ast.Module, source: str, context: Context) -> list[Statement]:
    """Classify the statements of one cell; ``context`` grows as we go."""
    plot_names = context.plot_names
    lines = source_lines(source)
    out: list[Statement] = []
    previous_end = 0
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        start = first
        while start > previous_end and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        end = node.end_lineno or node.lineno
        found = effects(node)
        own_reads = [n for n in found.reads if n not in found.binds or _reads_before_bind(node, n)]
        binds = [
            n
            for n in found.binds
            if not (
                n in context.modules
                and (isinstance(node, ast.Expr) or _sets_module_option(node, n))
            )
        ]
        kind = _kind(node, own_reads, context)
        if kind == "import":
            context.modules.update(found.binds)
            if _imports_plotting(node):
                plot_names.update(found.binds)
        elif kind == "display":
            if isinstance(node, ast.Assign):
                plot_names.update(binds)
            elif isinstance(node, ast.Expr):
                binds = []  # `df.head()` shows df; it does not change it
        out.append(Statement(node, kind, tuple(found.reads), tuple(binds), start, end))
        previous_end = end
    return out


def _sets_module_option(node: ast.stmt, module: str) -> bool:
    """``pd.options.mode.chained_assignment = None`` / ``plt.rcParams["figure.dpi"] = 100``:
    an assignment into the imported ``module`` (a library's global option), which leaves the
    name bound to the module: it does not rebind it."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    else:
        return False
    rooted = []
    for target in targets:
        for part in target.elts if isinstance(target, ast.Tuple | ast.List) else [target]:
            root = part
            while isinstance(root, ast.Attribute | ast.Subscript):
                root = root.value
            if isinstance(root, ast.Name) and root.id == module:
                rooted.append(part)
    return bool(rooted) and all(isinstance(part, ast.Attribute | ast.Subscript) for part in rooted)


def _imports_plotting(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] in tables.PLOTTING_MODULES for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] in tables.PLOTTING_MODULES
    return False


def _reads_before_bind(node: ast.stmt, name: str) -> bool:
    """Whether a name the statement binds is also read from outside (``x = x + 1``).

    Only a loop's own target is bound before the body reads it; a name the body rebinds by
    mutation (``ax.plot(...)``) is still read from outside the loop.
    """
    if isinstance(node, ast.For | ast.AsyncFor):
        targets = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        if name in targets:
            return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.iter))
    return True


def _kind(node: ast.stmt, reads: list[str], context: Context) -> str:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return "import"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return "definition"
    if _is_literal_assignment(node):
        return "constant"
    if _is_display(node, reads, context):
        return "display"
    return "code"


def _is_literal_assignment(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return False
    if not isinstance(target, ast.Name):
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_display(node: ast.stmt, reads: list[str], context: Context) -> bool:
    """A statement that only shows something: bare expressions, prints, plots, `df.head()`."""
    if any(name in context.plot_names for name in reads):
        return True
    if isinstance(node, ast.Expr):
        value = node.value
        if any(isinstance(n, ast.Await | ast.Yield | ast.YieldFrom) for n in ast.walk(value)):
            return False
        calls = [n for n in ast.walk(value) if isinstance(n, ast.Call)]
        if isinstance(value, ast.Call) and (_shows(value) or _constructs(value, context)):
            return True  # `print(...)`, `pd.DataFrame(...)` shown and thrown away
        # `df`, `df.shape`, `len(x), len(y)`, `df.corr()[t].drop(t)`: nothing in it changes state
        return not any(_changes_state(c) for c in calls)
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
        return _draws(node.value)  # `ax = df.plot.scatter(...)`
    if isinstance(node, ast.For | ast.With | ast.If):
        inner = [s for s in node.body if not isinstance(s, ast.Pass)]
        return bool(inner) and all(
            _is_display(s, [n.id for n in ast.walk(s) if isinstance(n, ast.Name)], context)
            for s in inner
        )
    return False


def changes_state(node: ast.AST) -> bool:
    """Whether evaluating ``node`` may change an object or the world (a call not known pure)."""
    return any(_changes_state(c) for c in ast.walk(node) if isinstance(c, ast.Call))


def called_name(call: ast.Call) -> str:
    """The name a call calls: ``f`` for ``f(x)``, ``fit`` for ``model.fit(X)``, else ""."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _changes_state(call: ast.Call) -> bool:
    if any(k.arg == "inplace" for k in call.keywords):
        return True
    func = call.func
    name = called_name(call)
    if isinstance(func, ast.Name) and (
        name in tables.PURE_BUILTINS or name in tables.DISPLAY_FUNCTIONS
    ):
        return False
    if isinstance(func, ast.Name) and name[:1].isupper():
        return False  # a constructor whose result is thrown away
    return isinstance(func, ast.Name) or bool(tables.STATE_CHANGING_CALL.match(name))


def _draws(call: ast.Call) -> bool:
    """A call into a DataFrame's or Series' plotting API: ``df.plot(...)``, ``s.plot.bar()``."""
    node: ast.expr = call.func
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Attribute) and node.attr in {"plot", "hist", "boxplot"}:
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def _shows(call: ast.Call) -> bool:
    return called_name(call) in tables.DISPLAY_FUNCTIONS


def _constructs(call: ast.Call, context: Context) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr[:1].isupper()
        and isinstance(func.value, ast.Name)
        and func.value.id in context.modules
    )
