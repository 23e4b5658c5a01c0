"""Which module-level names a statement reads and binds, with Python's scoping rules.

A function's body is not run where it is defined, so its reads of module names are kept apart
(``FunctionInfo.free``) and counted where the function is called; its decorators, defaults and
annotations are read where it is defined. A class body runs where it is defined, in a scope of its
own that its methods and comprehensions do not see. Lambdas and comprehensions are scopes of their
own, except that a walrus inside a comprehension binds in the enclosing scope. ``global`` names
are module names inside the function; ``del x`` reads ``x``; ``match`` patterns bind their
captures; ``from __future__`` imports bind nothing.

``x += 1``, ``df["c"] = ...``, ``obj.attr = ...`` and a method call used as a statement
(``df.dropna(inplace=True)``, ``model.fit(X, y)``) both read and rebind their base name: later
cells see the changed object.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

__all__ = ["BUILTINS", "Effects", "FunctionInfo", "effects", "function_free_names"]

BUILTINS = frozenset(dir(builtins)) | {"display", "get_ipython", "In", "Out", "__file__"}


@dataclass
class Effects:
    """Module-level names one statement reads (in order of first read) and binds."""

    reads: list[str] = field(default_factory=list)
    binds: list[str] = field(default_factory=list)

    def read(self, name: str) -> None:
        if name not in self.reads and name not in self.binds:  # bound earlier in the statement
            self.reads.append(name)

    def bind(self, name: str) -> None:
        if name not in self.binds:
            self.binds.append(name)


@dataclass(frozen=True)
class FunctionInfo:
    """A top-level ``def`` or ``class`` and the module names its body reads when it runs."""

    name: str
    free: frozenset[str]


def effects(stmt: ast.stmt) -> Effects:
    """The module-level reads and binds of one top-level statement."""
    walker = _Walker()
    walker.statement(stmt)
    return walker.out


def function_free_names(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
) -> frozenset[str]:
    """Module names read when a function body (or a class's methods) run.

    Decorators, defaults, annotations and a class body's own statements are read where the
    definition runs: they are the defining statement's reads (see ``effects``), not these.
    """
    walker = _Walker()
    walker.statement(node)
    return frozenset(n for n in walker.deferred if n not in BUILTINS)


class _Scope:
    """An inner scope: its kind and the names bound in it."""

    __slots__ = ("kind", "names")

    def __init__(self, kind: str, names: set[str]) -> None:
        self.kind = kind  # "function" | "lambda" | "comprehension" | "class"
        self.names = names


class _Walker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.out = Effects()
        self.deferred: list[str] = []  # module names read inside function bodies
        self._scopes: list[_Scope] = []
        self._in_function = 0

    # -- entry points ---------------------------------------------------------------------
    def statement(self, stmt: ast.stmt) -> None:
        if not self._scopes and isinstance(stmt, ast.Expr) and _is_method_call_on_name(stmt.value):
            base = _base_name(stmt.value.func)  # type: ignore[attr-defined]
            self.visit(stmt.value)
            if base:
                self._bind(base)
            return
        self.visit(stmt)

    def _body(self, statements: list[ast.stmt]) -> None:
        for stmt in statements:
            self.statement(stmt)

    # -- names ----------------------------------------------------------------------------
    def _read(self, name: str) -> None:
        last = len(self._scopes) - 1
        for index, scope in enumerate(self._scopes):
            if name in scope.names and (scope.kind != "class" or index == last):
                return
        if self._in_function:
            if name not in self.deferred:
                self.deferred.append(name)
        else:
            self.out.read(name)

    def _bind(self, name: str, walrus: bool = False) -> None:
        scopes = self._scopes
        if walrus:  # `[y := f(x) for x in xs]` binds y where the comprehension is
            scopes = list(scopes)
            while scopes and scopes[-1].kind == "comprehension":
                scopes.pop()
        if scopes:
            scopes[-1].names.add(name)
        else:
            self.out.bind(name)

    # -- visitors -------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
        elif isinstance(node.ctx, ast.Del):
            self._read(node.id)  # `del x` needs x; later reads find nothing bound here
        else:
            self._bind(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self._target(node.target, augmented=True)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._target(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        if not self._in_function or (self._scopes and self._scopes[-1].kind == "class"):
            self.visit(node.annotation)  # evaluated in module and class bodies only
        if node.value is not None or not isinstance(node.target, ast.Name):
            self._target(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id, walrus=True)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._target(node.target)
        self._body([*node.body, *node.orelse])

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._target(item.optional_vars)
        self._body(node.body)

    visit_AsyncWith = visit_With

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self._body([*node.body, *node.orelse])

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self._body([*node.body, *node.orelse])

    def visit_Try(self, node: ast.Try) -> None:
        self._body(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                self.visit(handler.type)
            if handler.name:
                self._bind(handler.name)
            self._body(handler.body)
        self._body([*node.orelse, *node.finalbody])

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        for case in node.cases:
            self.visit(case.pattern)
            if case.guard is not None:
                self.visit(case.guard)
            self._body(case.body)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._bind(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        for key in node.keys:
            self.visit(key)
        for pattern in node.patterns:
            self.visit(pattern)
        if node.rest:
            self._bind(node.rest)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "__future__":
            return
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name)

    def visit_Global(self, node: ast.Global) -> None:
        del node  # the function body's scope already leaves these names out

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self._read(target.id)
            else:
                self._target(target, augmented=True)  # `del df["c"]` changes df

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        annotations = [a.annotation for a in _all_arguments(args)]
        for expr in [
            *node.decorator_list,
            *args.defaults,
            *args.kw_defaults,
            *annotations,
            node.returns,
        ]:
            if expr is not None:
                self.visit(expr)
        self._deferred_scope(node.body, _argument_names(args), "function")
        self._bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._scopes.append(_Scope("class", set()))
        self._body(node.body)  # a class body runs where it is defined
        self._scopes.pop()
        self._bind(node.name)

    def _deferred_scope(self, body: list[ast.stmt], names: set[str], kind: str) -> None:
        self._scopes.append(_Scope(kind, names | _local_names(body)))
        self._in_function += 1
        self._body(body)
        self._in_function -= 1
        self._scopes.pop()

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)
        self._scopes.append(_Scope("lambda", _argument_names(node.args)))
        self.visit(node.body)
        self._scopes.pop()

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        generators = node.generators
        self.visit(generators[0].iter)  # the first iterable is evaluated in the enclosing scope
        self._scopes.append(_Scope("comprehension", set()))
        for index, gen in enumerate(generators):
            if index:
                self.visit(gen.iter)
            self._target(gen.target)
            for cond in gen.ifs:
                self.visit(cond)
        if isinstance(node, ast.DictComp):
            self.visit(node.key)
            self.visit(node.value)
        else:
            self.visit(node.elt)
        self._scopes.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def _target(self, target: ast.expr, augmented: bool = False) -> None:
        if isinstance(target, ast.Name):
            if augmented:
                self._read(target.id)
            self._bind(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._target(element, augmented)
        elif isinstance(target, ast.Starred):
            self._target(target.value, augmented)
        elif isinstance(target, ast.Subscript | ast.Attribute):
            self.visit(target.value)
            if isinstance(target, ast.Subscript):
                self.visit(target.slice)
            base = _base_name(target)
            if base:
                self._read(base)
                self._bind(base)


def _all_arguments(args: ast.arguments) -> list[ast.arg]:
    found = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    return found + [a for a in (args.vararg, args.kwarg) if a is not None]


def _argument_names(args: ast.arguments) -> set[str]:
    return {a.arg for a in _all_arguments(args)}


class _LocalNames(ast.NodeVisitor):
    """Names a function body binds (local for the whole body), not looking into inner scopes."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.declared: set[str] = set()  # global and nonlocal

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.names.add(node.id)

    def visit_FunctionDef(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> None:
        self.names.add(node.name)
        for expr in getattr(node, "decorator_list", []):
            self.visit(expr)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        del node

    def _comprehension(self, node: ast.AST) -> None:
        for inner in ast.walk(node):  # only a walrus escapes a comprehension
            if isinstance(inner, ast.NamedExpr):
                self.names.add(inner.target.id)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.names.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.names.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.names.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.names.add(node.rest)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        self.declared.update(node.names)

    visit_Nonlocal = visit_Global


def _local_names(body: list[ast.stmt]) -> set[str]:
    finder = _LocalNames()
    for stmt in body:
        finder.visit(stmt)
    return finder.names - finder.declared


def _base_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_method_call_on_name(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    )
