"""Models fitted in a loop over candidates, and the cell tag that chooses one of them.

The commonest way a notebook compares models is a loop::

    classifiers = {"Linear SVC": SVC(kernel="linear"), "KNN": KNeighborsClassifier(3)}
    for name, classifier in classifiers.items():
        classifier.fit(X_train, y_train)

The notebook never says which candidate it keeps, so promote does not guess: the loop's cell
names it with a tag, ``promote: model=classifiers["KNN"]`` (a subscript of the dict or list
the loop goes over, or the plain name of a candidate). This module finds the loop, lists its
candidates when they are written out (a literal dict or list, or a list filled by
``.append(...)`` statements), and checks a tag against them. Pure: statements in, data out.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Candidates", "Choice", "choose", "fitting_loop", "model_tag"]

_MODEL_TAG = re.compile(r"^promote:\s*model\s*=\s*(.*?)\s*$")
FIT_METHODS = frozenset({"fit", "fit_generator"})


@dataclass(frozen=True)
class Candidates:
    """A top-level ``for`` loop that fits each item of what it goes over.

    ``container`` is the name of the dict or list the loop goes over ("" when it goes over a
    literal written in the ``for`` itself). ``choices`` holds, per candidate, the expression
    that selects it (``classifiers["SVC"]``, ``models[0][1]``, or a candidate's own name) and
    the candidate's source (``SVC()``); it is empty when promote cannot list them.
    ``unlisted`` says why it cannot.
    """

    cell: int
    line: int  # the loop's first line, in the normalized cell
    fit: str  # the fit call, as written (shortened)
    fit_input: str | None  # the name the candidates are fitted on
    first_argument: str  # the source of the fit's first argument
    arguments: str  # the fit's arguments, as written: ``X_train, np.ravel(y_train)``
    container: str
    choices: tuple[tuple[str, str], ...]
    labels: tuple[str, ...]  # how the notebook names each candidate: a key, a pair's name
    unlisted: str = ""

    @property
    def shown(self) -> str:
        """The candidates as the notebook names them: ``'Linear SVC', 'KNN classifier'``."""
        return ", ".join(self.labels)


@dataclass(frozen=True)
class Choice:
    """The candidate a tag chose: the expression that selects it, as the kernel and the
    generated training code evaluate it, and the candidate's source."""

    expression: str
    source: str


def model_tag(tags: Sequence[str]) -> str | None:
    """The expression of a ``promote: model=EXPR`` tag (``promote:model=EXPR`` too), or None."""
    for tag in tags:
        match = _MODEL_TAG.match(tag.strip())
        if match:
            return match.group(1)
    return None


def fitting_loop(
    body: Sequence[ast.stmt], earlier: Sequence[ast.stmt], cell: int
) -> Candidates | None:
    """The first top-level ``for`` of ``body`` that fits what it goes over, with its
    candidates; ``earlier`` are the top-level statements run before ``body`` (the earlier
    cells'), where the container is made."""
    for index, node in enumerate(body):
        if isinstance(node, ast.For):
            found = _candidates(node, [*earlier, *body[:index]], cell)
            if found is not None:
                return found
    return None


def choose(expression: str, candidates: Candidates) -> Choice | str:
    """The candidate ``expression`` (a tag's) selects, or why it selects none (a sentence)."""
    if not expression:
        return "it names nothing after `model=`"
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        tree = None
    if tree is None or not _selector(tree):
        return (
            f"`{expression}` is not a subscript of the dict or list the loop fits over, nor a "
            "plain name"
        )
    if not candidates.choices:
        return f"promote cannot list the loop's candidates ({candidates.unlisted})"
    wanted = _normal(_from_the_start(tree, len(candidates.choices)))
    for selected, source in candidates.choices:
        if _normal(ast.parse(selected, mode="eval").body) == wanted:
            return Choice(selected, source)
        if isinstance(tree, ast.Name) and tree.id == source:  # the name the item is written as
            return Choice(tree.id, source)
    if isinstance(tree, ast.Subscript) and _root(tree) == candidates.container:
        key = tree.slice if isinstance(tree.value, ast.Name) else None
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return f"{json.dumps(key.value)} is not a key of `{candidates.container}`"
    return f"`{expression}` is not one of the models the loop fits"


def _selector(node: ast.expr) -> bool:
    """A plain name, or subscripts of a name by literal keys: ``a``, ``a["k"]``, ``a[0][1]``."""
    while isinstance(node, ast.Subscript):
        if not isinstance(node.slice, ast.Constant) and not _negative(node.slice):
            return False
        node = node.value
    return isinstance(node, ast.Name)


def _negative(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int)
    )


def _root(node: ast.expr) -> str:
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _normal(node: ast.expr) -> str:
    """``node`` written canonically: the same for ``a['k']`` and ``a["k"]``."""
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def _from_the_start(node: ast.expr, count: int) -> ast.expr:
    """``models[-1]`` as ``models[count - 1]``: a negative index into the container counted
    from its start (deeper indexes, into a pair, are left as written)."""
    if not isinstance(node, ast.Subscript):
        return node
    if isinstance(node.value, ast.Subscript):
        return ast.Subscript(_from_the_start(node.value, count), node.slice, ast.Load())
    if _negative(node.slice):
        index = count - node.slice.operand.value  # type: ignore[attr-defined]
        return ast.Subscript(node.value, ast.Constant(index), ast.Load())
    return node


# -- the loop ------------------------------------------------------------------------------------
def _candidates(loop: ast.For, earlier: Sequence[ast.stmt], cell: int) -> Candidates | None:
    """``loop``'s candidates, when it fits each item of what it goes over; else None."""
    target, iterable = loop.target, loop.iter
    if _call_of(iterable, "enumerate") and isinstance(target, ast.Tuple) and len(target.elts) == 2:
        target, iterable = target.elts[1], iterable.args[0]  # type: ignore[attr-defined]
    shape = "items"  # what the loop goes over: a dict's items, its values, its keys, a list
    source: ast.expr = iterable
    if _method_of(iterable, "items"):
        source = iterable.func.value  # type: ignore[attr-defined]
    elif _method_of(iterable, "values"):
        source, shape = iterable.func.value, "values"  # type: ignore[attr-defined]
    else:
        shape = "iterated"
    container = source.id if isinstance(source, ast.Name) else ""
    literal = _literal(source, earlier) if isinstance(source, ast.Name) else source
    fitted = _fitted(loop)
    if not fitted:
        return None
    position = _position(target, fitted, shape, container)
    if position is None:
        return None
    call = fitted[position[1]]
    first = call.args[0] if call.args else None
    choices, labels, unlisted = _choices(literal, container, position[0], shape)
    return Candidates(
        cell=cell,
        line=loop.lineno,
        fit=ast.unparse(call)[:60],
        fit_input=first.id if isinstance(first, ast.Name) else None,
        first_argument=ast.unparse(first) if first is not None else "",
        arguments=", ".join([*map(ast.unparse, call.args), *map(ast.unparse, call.keywords)]),
        container=container,
        choices=choices,
        labels=labels,
        unlisted=unlisted,
    )


def _fitted(loop: ast.For) -> list[ast.Call]:
    """The ``x.fit(...)`` calls of the loop's body (not of functions defined in it)."""
    calls: list[ast.Call] = []
    stack: list[ast.AST] = list(loop.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FIT_METHODS
        ):
            calls.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return calls


def _position(
    target: ast.expr, fitted: list[ast.Call], shape: str, container: str
) -> tuple[int | None, int] | None:
    """Where the fitted candidate sits in each item, and which fit call fits it: (None when the
    item, or the dict's value, is the candidate, else its index in a pair; the call's index),
    or None when the loop fits something else than what it goes over."""
    if shape == "items":  # `for name, model in d.items()`: the value
        if not (isinstance(target, ast.Tuple) and len(target.elts) == 2):
            return None
        target = target.elts[1]
    for index, call in enumerate(fitted):
        receiver = call.func.value  # type: ignore[attr-defined]
        if isinstance(target, ast.Name):
            if _is_name(receiver, target):
                return None, index
            if (  # `for key in d: d[key].fit(...)`
                shape == "iterated"
                and isinstance(receiver, ast.Subscript)
                and isinstance(receiver.value, ast.Name)
                and receiver.value.id == container
                and _is_name(receiver.slice, target)
            ):
                return None, index
        elif isinstance(target, ast.Tuple) and shape == "iterated":  # a list of pairs
            for place, element in enumerate(target.elts):
                if _is_name(receiver, element):
                    return place, index
    return None


_Choices = tuple[tuple[tuple[str, str], ...], tuple[str, ...], str]


def _choices(literal: ast.expr | None, container: str, place: int | None, shape: str) -> _Choices:
    """Each candidate's selecting expression and source, their labels, or why none."""
    if isinstance(literal, ast.Dict):
        return _dict_choices(literal, container)
    if isinstance(literal, ast.List | ast.Tuple) and shape == "iterated":
        return _list_choices(literal, container, place)
    return (), (), f"`{container}` is not a literal dict or list written before the loop"


def _dict_choices(literal: ast.Dict, container: str) -> _Choices:
    choices: list[tuple[str, str]] = []
    labels: list[str] = []
    for key, value in zip(literal.keys, literal.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str | int)):
            return (), (), f"a key of `{container}` is not a literal string or number"
        shown = _literal_text(key.value)
        selected = f"{container}[{shown}]" if container else _name_of(value)
        if not selected:
            return (), (), "the dict is written in the `for` itself and holds unnamed models"
        choices.append((selected, ast.unparse(value)))
        labels.append(shown)
    return tuple(choices), tuple(labels), ""


def _list_choices(literal: ast.List | ast.Tuple, container: str, place: int | None) -> _Choices:
    choices: list[tuple[str, str]] = []
    labels: list[str] = []
    for index, item in enumerate(literal.elts):
        value, label = item, ast.unparse(item)
        selected = f"{container}[{index}]" if container else _name_of(item)
        if place is not None:  # a (name, model) pair: the model, labelled by the name
            if not (isinstance(item, ast.Tuple) and len(item.elts) > place):
                return (), (), f"an item of `{container or 'the list'}` is not a pair"
            value = item.elts[place]
            others = [e for i, e in enumerate(item.elts) if i != place]
            named = [e.value for e in others if isinstance(e, ast.Constant)]
            label = (
                _literal_text(named[0])
                if named and isinstance(named[0], str | int)
                else ast.unparse(value)
            )
            selected = f"{container}[{index}][{place}]" if container else _name_of(value)
        if not selected:
            return (), (), "the list is written in the `for` itself and holds unnamed models"
        choices.append((selected, ast.unparse(value)))
        labels.append(label)
    return tuple(choices), tuple(labels), ""


def _literal(name: ast.Name, earlier: Sequence[ast.stmt]) -> ast.expr | None:
    """The literal dict or list ``name`` holds after ``earlier``: its last assignment, with the
    ``name.append(item)`` statements that follow it; None when something else binds it."""
    value: ast.expr | None = None
    for node in earlier:
        if isinstance(node, ast.Assign) and any(_binds(t, name.id) for t in node.targets):
            single = len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            literal = isinstance(node.value, ast.Dict | ast.List | ast.Tuple)
            value = node.value if single and literal else None
            if isinstance(value, ast.List):
                value = ast.List(elts=list(value.elts), ctx=ast.Load())
        elif (
            isinstance(node, ast.Expr)
            and _method_of(node.value, "append")
            and _is_name(node.value.func.value, name)  # type: ignore[attr-defined]
            and len(node.value.args) == 1  # type: ignore[attr-defined]
        ):
            if isinstance(value, ast.List):
                value.elts.append(node.value.args[0])  # type: ignore[attr-defined]
            else:
                value = None
        elif any(_binds(target, name.id) for target in _targets(node)):
            value = None
    return value


def _targets(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.AugAssign | ast.AnnAssign | ast.For):
        return [node.target]
    return []


def _binds(target: ast.expr, name: str) -> bool:
    return any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
        for n in ast.walk(target)
    )


def _is_name(node: ast.expr, name: ast.expr) -> bool:
    return isinstance(node, ast.Name) and isinstance(name, ast.Name) and node.id == name.id


def _name_of(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else ""


def _call_of(node: ast.expr, function: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == function
        and len(node.args) == 1
    )


def _method_of(node: ast.expr, method: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
        and (method == "append" or not node.args)
    )


def _literal_text(value: str | int) -> str:
    """A key as Python writes it, in double quotes: ``"Linear SVC"``, ``3``."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
