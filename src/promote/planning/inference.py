"""The inference slice: the feature steps the service applies to a request before the model.

Pure. From the name the model is fitted on, trace back through the split
(``X_train, X_test, ... = train_test_split(X, ...)``) to the stage that made ``X``, then slice
that stage backwards: the statements ``X`` depends on, down to the frame the stage received
(the loaded data). The slice is accepted only when

* it starts from one frame the stage receives, and nothing else from earlier stages;
* each of its statements is row-wise (``analysis/rowwise.py``);
* the rest of the stage (the target, ``y = df["target"]``) reads that frame only to take
  columns from it, writes none of the columns the slice writes, and uses nothing else the
  slice binds, so the slice can run first, as its own function, with the same result.

Then the stage calls ``make_features(df)`` (the slice) and keeps the rest; the pipeline keeps
the rows of the loaded frame (the target's columns dropped) as what requests carry, and the
service applies the same ``make_features`` to each request. Otherwise the service takes the
model's input as it was fitted, and the plan says why (``Slice.note``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from promote.analysis import ModelFit
from promote.analysis.rowwise import Frames, refusal
from promote.analysis.statements import Statement, called_name

__all__ = ["SPLITS", "Slice", "Stage", "find_slice"]

# Calls that split rows into training and test sets, keeping each row as it is.
SPLITS = frozenset({"train_test_split"})


@dataclass(frozen=True)
class Stage:
    """What the slicer needs of one stage function: its statements in order, its parameters
    and what it returns to later stages."""

    stage: str
    statements: Sequence[Statement]
    params: Sequence[str]
    returns: Sequence[str]
    cells: Mapping[int, int]  # id(statement) → cell index, for the notes


@dataclass(frozen=True)
class Slice:
    """The outcome: ``group`` and ``statements`` (ids) when accepted, else a ``note``."""

    group: int = -1  # index of the stage whose statements make the model's input
    statements: frozenset[int] = frozenset()  # ids of the sliced statements
    frame: str = ""  # the stage parameter the slice starts from: the raw input
    output: str = ""  # the name the slice makes: the model's input (``X``)
    targets: tuple[ast.expr, ...] = ()  # column keys the rest of the stage takes (the target)
    note: str = ""  # why the service takes the model's input as fitted ("" when accepted)

    @property
    def accepted(self) -> bool:
        return self.group >= 0


def find_slice(
    stages: Sequence[Stage],
    model: ModelFit,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
) -> Slice:
    """Find the inference slice (see the module docstring); never raises."""
    fit = _fit_position(stages, model)
    if fit is None or not model.fit_input:
        return Slice(note="promote could not find where the model is fitted")
    fit_group, fit_index = fit
    name = model.fit_input
    flat = [(g, i) for g, stage in enumerate(stages) for i in range(len(stage.statements))]
    position = flat.index((fit_group, fit_index))
    binder = None
    for g, i in reversed(flat[:position]):
        stmt = stages[g].statements[i]
        if name not in stmt.binds:
            continue
        source = _split_source(stmt, name)
        if source is None:
            binder = (g, i)
            break
        name = source  # the rows of the split are the rows of its input: trace that
    if binder is None or stages[binder[0]].stage == "load":
        return Slice()  # the model takes the data as loaded: there are no feature steps
    group, index = binder
    if group == fit_group:
        stmt = stages[group].statements[index]
        return Slice(
            note=f"the model's input is made in the {stages[group].stage} stage by "
            f"`{_short(stmt.node)}` (cell {stages[group].cells[id(stmt)]}), not by feature "
            "steps before it"
        )
    return _slice_stage(group, stages[group], index, name, hoisted, constants, modules)


def _slice_stage(
    index: int,
    stage: Stage,
    last: int,
    output: str,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
) -> Slice:
    needed = {output}
    chosen: list[Statement] = []
    for stmt in reversed(stage.statements[: last + 1]):
        if not set(stmt.binds) & needed:
            continue
        chosen.append(stmt)
        if _rebinds(stmt.node):
            needed -= set(stmt.binds)
        needed |= set(stmt.reads)
    chosen.reverse()
    outside = sorted(n for n in needed - hoisted if n in stage.params)
    unknown = sorted(n for n in needed - hoisted if n not in stage.params)
    if unknown or len(outside) != 1:
        made_from = ", ".join(f"`{n}`" for n in outside + unknown) or "no frame"
        return Slice(
            note=f"the model's input `{output}` is made from {made_from}, not from one frame "
            "of loaded data"
        )
    frame = outside[0]
    known = Frames({frame}, constants, modules)
    for stmt in chosen:
        reason = refusal(stmt.node, known)
        if reason is not None:
            return Slice(
                note=f"`{reason}` (cell {stage.cells[id(stmt)]}) is not a step promote can "
                "prove row-wise (see docs/explanation/split.md)"
            )
    if output not in known.frames:
        return Slice(note=f"the model's input `{output}` is not a table of columns")
    ids = {id(s) for s in chosen}
    slice_binds = {n for s in chosen for n in s.binds} - {frame, output}
    written = {ast.dump(k) for s in chosen for k in _written_columns(s.node, frame)}
    targets: list[ast.expr] = []
    for stmt in (s for s in stage.statements if id(s) not in ids):
        note = _rest_refusal(stmt, stage.cells[id(stmt)], frame, output, slice_binds, written)
        if note:
            return Slice(note=note)
        key = _column_taken(stmt.node, frame) if frame in stmt.reads else None
        if key is not None:
            targets.append(key)
    leaked = sorted(set(stage.returns) & slice_binds)
    if leaked:
        return Slice(note=f"later stages use `{leaked[0]}`, which the feature steps make")
    return Slice(index, frozenset(ids), frame, output, tuple(targets))


def _rest_refusal(
    stmt: Statement,
    cell: int,
    frame: str,
    output: str,
    slice_binds: set[str],
    written: set[str],
) -> str:
    """Why ``stmt``, a statement of the stage left out of the slice, cannot run after it."""
    shared = sorted(set(stmt.reads) & slice_binds) or sorted({frame, output} & set(stmt.binds))
    if shared:
        what = ", ".join(f"`{n}`" for n in shared)
        return f"`{_short(stmt.node)}` (cell {cell}) also uses {what}, which the feature steps make"
    if frame not in stmt.reads:
        return ""
    key = _column_taken(stmt.node, frame)
    if key is None:
        return (
            f"`{_short(stmt.node)}` (cell {cell}) uses `{frame}` other than by taking a column "
            "from it"
        )
    if ast.dump(key) in written:
        return f"`{_short(stmt.node)}` (cell {cell}) reads a column the feature steps write"
    return ""


def _fit_position(stages: Sequence[Stage], model: ModelFit) -> tuple[int, int] | None:
    found = None
    for number, stage in enumerate(stages):
        for index, stmt in enumerate(stage.statements):
            for node in stmt.nodes:
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"fit", "fit_generator"}
                    and node.args
                    and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == model.fit_input
                ):
                    found = (number, index)
    return found


def _split_source(stmt: Statement, name: str) -> str | None:
    """``X`` for ``X_train, X_test, ... = train_test_split(X, ...)`` and ``name`` X_train."""
    node = stmt.node
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
        return None
    target, value = node.targets[0], node.value
    if not (isinstance(target, ast.Tuple) and isinstance(value, ast.Call)):
        return None
    if called_name(value) not in SPLITS or not value.args:
        return None
    first = target.elts[0] if target.elts else None
    if not (isinstance(first, ast.Name) and first.id == name):
        return None
    source = value.args[0]
    return source.id if isinstance(source, ast.Name) else None


def _rebinds(node: ast.stmt) -> bool:
    """An assignment to plain names: what it binds before it is not needed any more."""
    if isinstance(node, ast.Assign):
        return all(_plain_target(t) for t in node.targets)
    return isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)


def _plain_target(node: ast.expr) -> bool:
    if isinstance(node, ast.Tuple | ast.List):
        return all(_plain_target(e) for e in node.elts)
    return isinstance(node, ast.Name)


def _written_columns(node: ast.stmt, frame: str) -> list[ast.expr]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    return [
        t.slice
        for t in targets
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == frame
    ]


def _column_taken(node: ast.stmt, frame: str) -> ast.expr | None:
    """``key`` for ``y = frame[key]``, else None."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
        return None
    value = node.value
    if (
        isinstance(node.targets[0], ast.Name)
        and isinstance(value, ast.Subscript)
        and isinstance(value.value, ast.Name)
        and value.value.id == frame
        and frame not in {n.id for n in ast.walk(value.slice) if isinstance(n, ast.Name)}
    ):
        return value.slice
    return None


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."
