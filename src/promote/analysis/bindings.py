"""Which module-level names a statement reads and binds, with Python's scoping rules.

A function's body is not run where it is defined, so its reads of module names are kept apart
(``FunctionInfo.free``) and counted where the function is called. Lambdas, comprehensions and
class bodies are scopes of their own. ``x += 1``, ``df["c"] = ...``, ``obj.attr = ...`` and a
method call used as a statement (``df.dropna(inplace=True)``, ``model.fit(X, y)``) both read and
rebind their base name: later cells see the changed object.
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
    """Module names read by a function or class body (decorators and defaults excluded)."""
    walker = _Walker()
    if isinstance(node, ast.ClassDef):
        walker.class_body(node)
    else:
        walker.function_body(node)
    return frozenset(n for n in walker.deferred if n not in BUILTINS)


class _Walker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.out = Effects()
        self.deferred: list[str] = []  # reads inside function bodies
        self._locals: list[set[str]] = []  # stack of inner scopes (function, lambda, comprehension)
        self._in_function = 0

    # -- entry points ---------------------------------------------------------------------
    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Expr) and _is_method_call_on_name(stmt.value):
            base = _base_name(stmt.value.func)  # type: ignore[attr-defined]
            self.visit(stmt.value)
            if base:
                self._bind(base)
            return
        self.visit(stmt)

    def function_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        scope = _argument_names(node.args)
        self._locals.append(scope)
        self._in_function += 1
        body = node.body
        for inner in body:
            scope.update(_assigned_names(inner))
        for inner in body:
            self.visit(inner)
        self._in_function -= 1
        self._locals.pop()

    def class_body(self, node: ast.ClassDef) -> None:
        scope: set[str] = set()
        self._locals.append(scope)
        self._in_function += 1
        for inner in node.body:
            scope.update(_assigned_names(inner))
        for inner in node.body:
            self.visit(inner)
        self._in_function -= 1
        self._locals.pop()

    # -- bindings -------------------------------------------------------------------------
    def _read(self, name: str) -> None:
        if any(name in scope for scope in self._locals):
            return
        if self._in_function:
            if name not in self.deferred:
                self.deferred.append(name)
        else:
            self.out.read(name)

    def _bind(self, name: str) -> None:
        if self._locals:
            self._locals[-1].add(name)
        else:
            self.out.bind(name)

    # -- visitors -------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
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
            self._target(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._target(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.statement(stmt) if not self._locals else self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._target(item.optional_vars)
        for stmt in node.body:
            self.statement(stmt) if not self._locals else self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        for stmt in [*node.body, *node.orelse]:
            self.statement(stmt) if not self._locals else self.visit(stmt)

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        for stmt in [*node.body, *node.orelse]:
            self.statement(stmt) if not self._locals else self.visit(stmt)

    def visit_Try(self, node: ast.Try) -> None:
        for stmt in node.body:
            self.statement(stmt) if not self._locals else self.visit(stmt)
        for handler in node.handlers:
            if handler.type is not None:
                self.visit(handler.type)
            if handler.name:
                self._bind(handler.name)
            for stmt in handler.body:
                self.statement(stmt) if not self._locals else self.visit(stmt)
        for stmt in [*node.orelse, *node.finalbody]:
            self.statement(stmt) if not self._locals else self.visit(stmt)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self.out.bind(name)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target(target, augmented=True)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)
        inner = _Walker()
        inner._locals = [set(scope) for scope in self._locals]
        inner._in_function = self._in_function
        inner.function_body(node)
        for name in inner.deferred:
            if self._in_function:
                if name not in self.deferred:
                    self.deferred.append(name)
            else:
                self.deferred.append(name)
        self._bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        inner = _Walker()
        inner._in_function = self._in_function
        inner.class_body(node)
        self.deferred.extend(n for n in inner.deferred if n not in self.deferred)
        self._bind(node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)
        self._locals.append(_argument_names(node.args))
        self.visit(node.body)
        self._locals.pop()

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        generators = node.generators
        self.visit(generators[0].iter)  # the first iterable is evaluated in the enclosing scope
        self._locals.append(set())
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
        self._locals.pop()

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
                self._bind(base)


def _argument_names(args: ast.arguments) -> set[str]:
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def _assigned_names(stmt: ast.stmt) -> set[str]:
    """Names a function body binds anywhere (they are local for the whole body)."""
    names: set[str] = set()
    globals_: set[str] = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            globals_.update(node.names)
    return names - globals_


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
