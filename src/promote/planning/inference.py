"""The inference slice: the feature steps the service applies to a request before the model.

Pure. From the name the model is fitted on, trace back through the split
(``X_train, X_test, ... = train_test_split(X, ...)``) to the stage that made ``X``, then slice
that stage backwards: the statements ``X`` depends on, down to the frame the stage received
(the loaded data). The slice is accepted only when

* it starts from one frame the stage receives, and nothing else from earlier stages, and
  that frame is the data as the load stage made it (what a client can send);
* each of its statements is row-wise (``analysis/rowwise.py``);
* the rest of the stage (the target, ``y = df["target"]``, the split, the fit when the model's
  input is made in the train stage) keeps its place around the call that replaces the slice:
  statements before the first sliced one run before it as they did; the later ones read the
  frame only to take columns from it (the target: a label encoder on ``df["target"]`` too),
  write none of the columns the slice writes, and use nothing else the slice binds.

Then the stage calls ``make_features(df)`` (the slice, in ``features.py``) where the slice made
the model's input, and keeps the rest; the pipeline keeps the rows of the loaded frame (the
target's columns dropped) as what requests carry, and the service applies the same
``make_features`` to each request. Otherwise the service takes the model's input as it was
fitted, and the plan says why (``Slice.note``): the first step that is not row-wise, in words
(it fits on the data outside the model, uses statistics of the data, keeps or drops rows...),
looked for in the stage that makes the model's input and then in the stages that made the frame
it starts from.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeGuard

from promote.analysis import ModelFit
from promote.analysis.rowwise import (
    GENERIC_RANK,
    NOTEBOOK_RANK,
    Frames,
    attribute_column,
    explain,
    is_literal,
    refusal,
)
from promote.analysis.statements import Statement, called_name

__all__ = ["SPLITS", "AfterSplit", "Slice", "Stage", "find_slice"]

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
    binder: int = 0  # id of the sliced statement that makes ``output``: the call goes there
    sources: tuple[str, ...] = ()  # when refused, the earlier stages' names the steps read
    moved_group: int = -1  # the stage before ``group`` whose steps the slice also takes, if any
    # What the steps learn from the training rows, which requests reuse: the transformers
    # they fit (``ss`` of ``ss.fit(df[cols])``) and the names ``pd.get_dummies`` binds (its
    # columns), each in order (``rowwise.Frames``).
    fitted: tuple[str, ...] = ()
    dummies: tuple[str, ...] = ()
    # The statistics of columns the steps use as values (``df["age"].median()``), as written,
    # one per use in order: what they were in training, requests reuse.
    statistics: tuple[str, ...] = ()
    # Ids of sliced statements the stage keeps too: lists of column names written out
    # (``cols = ["a", "b"]``) that later stages read as well.
    shared: frozenset[int] = frozenset()
    # Fitted transformers later stages read: the stage takes them from what the steps learnt.
    handed: tuple[str, ...] = ()
    note: str = ""  # why the service takes the model's input as fitted ("" when accepted)
    # The steps after the split that make the model's input from the training rows
    # (``X_train = ss.fit_transform(X_train)``), when there are any.
    after: AfterSplit | None = None

    @property
    def accepted(self) -> bool:
        return self.group >= 0


@dataclass(frozen=True)
class AfterSplit:
    """The steps after the split (``X_train, X_test, ... = train_test_split(X, ...)``) that
    make the model's input from the training rows: ``ss = StandardScaler()``,
    ``X_train = ss.fit_transform(X_train)``, ``X_train = np.array(X_train)``. They stay in
    their stage as the notebook wrote them (they make the test rows' features too); the
    service applies them to a request made as ``source`` (``X``), with what they learnt."""

    group: int  # the stage that fits what they learn (the last one, when they learn nothing)
    groups: tuple[int, ...]  # the stages that hold them, in order
    statements: frozenset[int]  # their ids
    last: int  # id of the last one that makes or fits a transformer: what they learnt is known
    split_group: int  # the stage that splits
    split: int  # id of the split: the rows the model is fitted on are known after it
    source: str  # the split's input, as requests are made (``X``)
    trained: str  # what the split makes of it for training (``X_train``)
    output: str  # the model's input (``X_train``, or ``X_train_scaled``)
    fitted: tuple[str, ...] = ()  # the transformers they make and fit, in order
    dummies: tuple[str, ...] = ()  # always (): ``pd.get_dummies`` after the split is refused
    statistics: tuple[str, ...] = ()  # always (): statistics after the split are refused


def find_slice(
    stages: Sequence[Stage],
    model: ModelFit,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
) -> Slice:
    """Find the inference slice (see the module docstring); never raises."""
    if model.framework == "torch":
        return Slice(
            note=f"`{model.name}` is a PyTorch module: a request is one row of that tensor, "
            "one number per column, named x0, x1, ..."
        )
    fit = _fit_position(stages, model)
    if fit is None or not model.fit_input:
        return Slice(note="promote could not find where the model is fitted")
    fit_group, fit_index = fit
    after = _after_split(stages, fit, model.fit_input, hoisted, constants, modules)
    if isinstance(after, str):
        return Slice(note=after)
    start, source = (_position(stages, after.split), after.source) if after else (fit, "")
    traced = _trace(stages, start, source or model.fit_input)
    if traced is None or stages[traced[0]].stage == "load":
        # the model takes the data as loaded (or the steps after the split start from it)
        return Slice(frame=after.source, output=after.source, after=after) if after else Slice()
    group, index, name = traced
    label = _trace(stages, fit, _label_name(stages[fit_group].statements[fit_index], model))
    target = id(stages[label[0]].statements[label[1]]) if label and label[0] == group else 0
    found = _slice_stage(group, stages[group], index, name, hoisted, constants, modules, target)
    if not found.accepted:
        for frame in found.sources:  # made from several frames: is one made by steps that
            note, refused = _loaded(stages, group, frame, hoisted, constants, modules)
            if refused:  # are not row-wise? That tells more
                return Slice(note=note)
        return found
    note, refused = _loaded(stages, group, found.frame, hoisted, constants, modules)
    if note and not refused:  # row-wise steps in the stage before too: join them if they can
        joined = _join(stages, group, found, hoisted, constants, modules, target)
        found = joined or replace(found, group=-1, note=note)
    elif note:
        found = replace(found, group=-1, note=note)
    if after is None or not found.accepted:
        return found
    if found.fitted or found.dummies or found.statistics:
        return Slice(
            note="the feature steps learn from the rows both before the split "
            f"({_learnt_names(found)}) and after it ({_learnt_names(after)}), and promote "
            "keeps what one of them learns"
        )
    return replace(found, after=after)


def _learnt_names(steps: Slice | AfterSplit) -> str:
    return ", ".join(f"`{n}`" for n in (*steps.fitted, *steps.dummies, *steps.statistics))


def _position(stages: Sequence[Stage], statement: int) -> tuple[int, int]:
    """The stage and index of the statement whose id is ``statement``."""
    return next(
        (g, i)
        for g, stage in enumerate(stages)
        for i, stmt in enumerate(stage.statements)
        if id(stmt) == statement
    )


def _after_split(
    stages: Sequence[Stage],
    fit: tuple[int, int],
    name: str,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
) -> AfterSplit | str | None:
    """The steps between the split and the fit at ``fit`` that make the model's input ``name``
    from the training rows (``AfterSplit``); None when there are none (the model is fitted on
    what the split made, or nothing was split); else why they cannot be applied to a request.

    They are the statements ``name`` depends on back to the split (in one stage or several;
    the transformers made and fitted in one of them): row-wise
    (``analysis/rowwise.py``, arrays allowed: the rows' labels are taken at the split), a
    transformer they make and fit on the training rows, ``pd.get_dummies``."""
    walked = _back_to_split(stages, fit, name)
    if walked is None:
        return None
    chosen, (split_group, split_index), source, trained, needed, targets = walked
    groups = tuple(sorted({g for g, _ in chosen}))
    steps = [stages[g].statements[i] for g, i in chosen]
    cells = {k: v for g in groups for k, v in stages[g].cells.items()}
    stage = replace(stages[groups[-1]], cells=cells)  # the steps' cells, for the notes
    known = Frames({trained}, constants, modules, after_split=True, targets=targets)
    note, telling = _not_row_wise(steps, stage, known)
    outside = sorted(needed - hoisted - {trained})
    if outside and not telling:
        return (
            f"the model's input `{name}` is made after the split from "
            + ", ".join(f"`{n}`" for n in outside)
            + f" besides the training rows `{trained}`"
        )
    if note:
        return note
    if name not in known.frames and name not in known.arrays:
        return f"the model's input `{name}` is not a table or an array of its rows"
    if known.statistics:
        return (
            f"`{known.statistics[0]}` is a statistic of the training rows used after the split; "
            "promote keeps such statistics when the steps compute them before the split"
        )
    if known.dummies:
        return (
            f"`pd.get_dummies` makes the columns of `{known.dummies[0]}` after the split, from "
            "the training rows alone (the test rows may get other columns); make them before "
            "the split, where promote keeps the columns training saw"
        )
    fitting = [
        (g, s)
        for (g, _), s in zip(chosen, steps, strict=True)
        if set(known.fitted) & {*s.binds, *s.reads}
    ]
    if len({g for g, _ in fitting}) > 1:
        named = " and ".join(dict.fromkeys(stages[g].stage for g, _ in fitting))
        return (
            f"the feature steps after the split make and fit their transformers in the {named} "
            "stages; promote keeps what they learn when one stage fits them"
        )
    group, last = fitting[-1] if fitting else (groups[-1], steps[-1])
    return AfterSplit(
        group=group,
        groups=groups,
        statements=frozenset(id(s) for s in steps),
        last=id(last),
        split_group=split_group,
        split=id(stages[split_group].statements[split_index]),
        source=source,
        trained=trained,
        output=name,
        fitted=tuple(known.fitted),
    )


def _back_to_split(
    stages: Sequence[Stage], fit: tuple[int, int], name: str
) -> tuple[list[tuple[int, int]], tuple[int, int], str, str, set[str], set[str]] | None:
    """Walk back from the fit at ``fit`` through the statements ``name`` depends on, to the
    split that made the training rows: those statements (positions, in order), the split's
    position, its input (``X``), the name it binds for training (``X_train``), the names the
    statements need from before, and the training target they use (``y_train``). None if
    there is no split, or nothing after it."""
    flat = [(g, i) for g, stage in enumerate(stages) for i in range(len(stage.statements))]
    needed = {name}
    chosen: list[tuple[int, int]] = []
    split: tuple[int, int, str, str] | None = None
    targets: set[str] = set()
    for g, i in reversed(flat[: flat.index(fit)]):
        stmt = stages[g].statements[i]
        made = set(stmt.binds) & needed
        if not made:
            continue
        sources = {n: s for n in made if (s := _split_source(stmt, n))}
        if sources and split is None:
            trained = next((n for n in sources if _split_part(stmt, n) == 0), "")
            if not chosen or not trained:
                return None  # the model is fitted on what the split made
            split = (g, i, sources[trained], trained)
            needed -= set(sources)  # the training rows, and the target a step may be fitted with
            targets = {n for n in sources if _split_part(stmt, n) == 1}
            continue
        if split is not None and g != chosen[-1][0]:
            continue  # made by an earlier stage before the split: not a step of theirs
        chosen.append((g, i))
        if _rebinds(stmt.node):
            needed -= set(stmt.binds)
        needed |= set(stmt.reads)
    if split is None:
        return None
    chosen.reverse()
    return chosen, split[:2], split[2], split[3], needed, targets


def _join(
    stages: Sequence[Stage],
    group: int,
    found: Slice,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
    label: int,
) -> Slice | None:
    """``found`` (in stage ``group``) joined with the row-wise steps of the one stage before it
    that makes its frame (``df["bmi"] = ...`` in a features stage, ``X = df.drop(...)`` in the
    train stage): when that stage makes the frame from the frame of the same name the load
    stage made, no other stage reads the frame in between or after, and the rest of both
    stages can run without those steps (they move into ``make_features``). None if not."""
    frame = found.frame
    maker = next((g for g in range(group - 1, -1, -1) if frame in stages[g].returns), None)
    if maker is None or stages[maker].stage == "load":
        return None
    before = next((g for g in range(maker - 1, -1, -1) if frame in stages[g].returns), None)
    if before is None or stages[before].stage != "load":
        return None
    if any(frame in stages[g].params for g in range(maker + 1, len(stages)) if g != group):
        return None  # another stage reads the frame the moved steps would no longer make
    stage = stages[maker]
    last = max(i for i, s in enumerate(stage.statements) if frame in s.binds)
    chosen, start, note, _ = _chain(stage, last, frame, hoisted, constants, modules)
    if note or start != frame:
        return None
    ids = {id(s) for s in chosen}
    binds = {n for s in chosen for n in s.binds} - {frame}
    if set(stage.returns) & binds:
        return None
    note, taken = _rest(stage, last, ids, frame, binds, Frames({frame}, constants, modules), 0)
    if note:
        return None
    written = {k for s in chosen for k in _flat(_written_columns(s.node, frame))}
    later = stages[group]
    for stmt in later.statements:  # the later stage's rest now sees the frame as loaded
        if id(stmt) in found.statements:
            continue
        keys = _columns_taken(stmt.node, frame)
        if set(stmt.reads) & binds or (frame in stmt.reads and keys is None):
            return None
        if set(_flat(keys or [])) & written:
            return None
    label_here = label in {id(s) for s in later.statements} - found.statements
    targets = found.targets if label_here else (*found.targets, *taken)
    fitted, dummies, statistics = _learnt(chosen, frame, constants, modules)
    if set(fitted) & set(found.fitted):
        return None  # a transformer of the same name in both stages: one state per name
    return replace(
        found,
        statements=found.statements | ids,
        targets=tuple(targets),
        moved_group=maker,
        fitted=(*fitted, *found.fitted),
        dummies=(*dummies, *found.dummies),
        statistics=(*statistics, *found.statistics),
    )


def _learnt(
    chosen: Sequence[Statement], frame: str, constants: frozenset[str], modules: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The transformers the row-wise steps ``chosen`` fit, the names they bind from
    ``pd.get_dummies`` and the statistics of columns they use, in order."""
    known = Frames({frame}, constants, modules)
    for stmt in chosen:
        refusal(stmt.node, known)
    return tuple(known.fitted), tuple(known.dummies), tuple(known.statistics)


def _loaded(
    stages: Sequence[Stage],
    group: int,
    frame: str,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
) -> tuple[str, bool]:
    """ "" when ``frame``, which the slice in stage ``group`` starts from, is the data as the
    load stage made it (what a client can send); else why requests cannot carry it: the first
    step of the stages between that is not row-wise (then True), or that the steps span
    several stages."""
    spread = [stages[group].stage]
    while True:
        maker = next((g for g in range(group - 1, -1, -1) if frame in stages[g].returns), None)
        if maker is None:
            return f"promote could not find the stage that makes `{frame}`", False
        if stages[maker].stage == "load":
            break
        stage = stages[maker]
        binders = [i for i, s in enumerate(stage.statements) if frame in s.binds]
        if not binders:
            return f"promote could not find where the {stage.stage} stage makes `{frame}`", False
        _, made_from, note, telling = _chain(stage, binders[-1], frame, hoisted, constants, modules)
        if note:
            return f"`{frame}` comes from the {stage.stage} stage, where {note}", telling
        spread.append(stage.stage)
        group, frame = maker, made_from
    if len(spread) > 1:
        named = ", ".join(reversed(spread))
        return (
            f"the feature steps are spread over {len(spread)} stages ({named}), and promote "
            "slices the steps of one stage",
            False,
        )
    return "", False


def _slice_stage(
    index: int,
    stage: Stage,
    last: int,
    output: str,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
    label: int = 0,
) -> Slice:
    """The slice of ``stage`` that makes ``output`` at its statement ``last``; ``label`` is the
    id of the stage's statement that makes the model's target, if it has it (0 if not)."""
    chosen, frame, note, telling = _chain(stage, last, output, hoisted, constants, modules)
    if note:
        params = {n for s in chosen for n in s.reads} & set(stage.params) - hoisted
        return Slice(note=note, sources=() if telling else tuple(sorted(params)))
    known = Frames({frame}, constants, modules)
    for stmt in chosen:
        refusal(stmt.node, known)
    if output in known.arrays:
        return Slice(
            note=f"the model's input `{output}` is the array a fitted transformer makes, without "
            "the column names and row labels requests are matched by (name them again: "
            f"`pd.DataFrame(ss.transform({output}), columns={output}.columns, "
            f"index={output}.index)`)"
        )
    if output not in known.frames:
        return Slice(note=f"the model's input `{output}` is not a table of columns")
    ids = {id(s) for s in chosen}
    rest_reads = {n for s in stage.statements if id(s) not in ids for n in s.reads}
    shared = {
        i: name
        for i, name in _written_lists(chosen, known).items()
        if name in rest_reads or name in stage.returns
    }
    slice_binds = {n for s in chosen for n in s.binds} - {frame, output} - set(shared.values())
    start = Frames({frame}, constants, modules)
    note, targets = _rest(stage, last, ids, output, slice_binds, start, label)
    if note:
        return Slice(note=note)
    handed = tuple(n for n in known.fitted if n in stage.returns)
    leaked = sorted(set(stage.returns) & slice_binds - set(handed))
    if leaked:
        return Slice(note=f"later stages use `{leaked[0]}`, which the feature steps make")
    binder = id(stage.statements[last])
    return Slice(
        index,
        frozenset(ids),
        frame,
        output,
        tuple(targets),
        binder=binder,
        fitted=tuple(known.fitted),
        dummies=tuple(known.dummies),
        statistics=tuple(known.statistics),
        shared=frozenset(shared),
        handed=handed,
    )


def _written_lists(chosen: Sequence[Statement], known: Frames) -> dict[int, str]:
    """The statements of ``chosen`` that bind a list of column names written out
    (``cols = ["a", "b"]``), the only binding of that name in them: id → name. The stage can
    keep them too, for what else reads the names."""
    bound: dict[str, int] = {}
    for stmt in chosen:
        for name in stmt.binds:
            bound[name] = bound.get(name, 0) + 1
    return {
        id(stmt): stmt.node.targets[0].id
        for stmt in chosen
        if isinstance(stmt.node, ast.Assign)
        and len(stmt.node.targets) == 1
        and isinstance(stmt.node.targets[0], ast.Name)
        and bound[stmt.node.targets[0].id] == 1
        and isinstance(stmt.node.value, ast.List | ast.Tuple)
        and is_literal(stmt.node.value, known)
    }


def _chain(
    stage: Stage,
    last: int,
    output: str,
    hoisted: set[str],
    constants: frozenset[str],
    modules: Mapping[str, str],
) -> tuple[list[Statement], str, str, bool]:
    """The statements of ``stage`` up to ``last`` that ``output`` depends on, the one frame
    parameter they start from, and "" (else why they are not row-wise steps from one frame,
    and whether that reason says what a step does to the data)."""
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
    note, telling = _not_row_wise(chosen, stage, Frames(set(outside), constants, modules))
    if telling:
        return chosen, "", note, True
    if unknown or len(outside) != 1:
        made_from = ", ".join(f"`{n}`" for n in outside + unknown) or "no frame"
        return (
            chosen,
            "",
            f"the model's input `{output}` is made from {made_from}, not from one frame of "
            "loaded data",
            False,
        )
    return chosen, outside[0], note, False


def _not_row_wise(chosen: Sequence[Statement], stage: Stage, known: Frames) -> tuple[str, bool]:
    """Why the statements ``chosen`` are not all row-wise ("" when they are), and whether that
    reason tells more than ``GENERIC``: the first statement whose reason
    (``rowwise.explain``) says what the step does to the data, else the first that calls the
    notebook's own function, else the first split, else the first refused."""
    notes: list[tuple[int, str]] = []
    for stmt in chosen:
        reason = refusal(stmt.node, known)
        if reason is None:
            continue
        # go on as if it were row-wise, so that the next reasons are the statements' own
        known.frames.update(n for n in stmt.binds if n not in known.lists)
        why = explain(stmt.node, known)
        # what promote knows a step does, then the notebook's own functions, a split, the rest
        bucket = 0 if why.rank < NOTEBOOK_RANK else why.rank
        shown = reason if why.rank == GENERIC_RANK else _short(stmt.node)
        notes.append((bucket, f"`{shown}` (cell {stage.cells[id(stmt)]}) {why.text}"))
    if not notes:
        return "", False
    bucket, note = min(notes, key=lambda n: n[0])  # the first of the most telling
    return note, bucket < GENERIC_RANK


def _rest(
    stage: Stage,
    last: int,
    ids: set[int],
    output: str,
    slice_binds: set[str],
    known: Frames,
    label: int,
) -> tuple[str, list[ast.expr]]:
    """Why the statements of ``stage`` outside the slice cannot keep their places around the
    call that replaces it (at the ``last`` statement, which makes ``output``); "" if they can.
    And the columns they take from ``frame`` for the target: requests leave them out. Those
    of the ``label`` statement (the one that makes the model's target) if it is one of them,
    else all the columns they take.

    Statements before the first sliced one run before it as they did; the others must not see
    what the slice makes or changes."""
    (frame,) = known.frames
    chosen = [s for s in stage.statements if id(s) in ids]
    written = {k for s in chosen for k in _flat(_written_columns(s.node, frame))}
    read = {k for s in chosen for k in _flat(_columns_read(s.node, frame))}
    first = min(i for i, s in enumerate(stage.statements) if id(s) in ids)
    if label in ids or label not in {id(s) for s in stage.statements}:
        label = 0  # the target is not made by the rest of this stage: any column taken may be
    targets: list[ast.expr] = []
    for position, stmt in enumerate(stage.statements):
        if id(stmt) in ids:
            continue
        cell = stage.cells[id(stmt)]
        keys = _columns_taken(stmt.node, frame) or []
        if label and id(stmt) != label:
            keys = []
        if set(_flat(keys)) & read:
            return (
                f"`{_short(stmt.node)}` (cell {cell}) takes a column from `{frame}` that the "
                "feature steps read too, so requests could not leave it out",
                [],
            )
        targets.extend(keys)
        if position < first:
            # it runs before the call as it did; but a statement the analysis cannot see
            # change the frame (``foo(df)``, ``df.a.fillna(0, inplace=True)``) would make
            # training's frame differ from what requests carry
            if _may_change(stmt, known):
                return (
                    f"`{_short(stmt.node)}` (cell {cell}) uses `{frame}` in a way that may "
                    "change it, before the feature steps",
                    [],
                )
            continue
        if position < last and output in (*stmt.reads, *stmt.binds):
            return (
                f"`{_short(stmt.node)}` (cell {cell}) uses `{output}` while the feature steps "
                "make it",
                [],
            )
        note = _rest_refusal(stmt, cell, frame, output, slice_binds, written)
        if note:
            return note, []
    return "", targets


def _may_change(stmt: Statement, known: Frames) -> bool:
    """Whether ``stmt`` reads the frame of ``known`` other than by taking columns or by a
    row-wise step (both leave it as it is)."""
    (frame,) = known.frames
    if frame not in stmt.reads or _columns_taken(stmt.node, frame) is not None:
        return False
    return refusal(stmt.node, Frames({frame}, known.constants, known.modules)) is not None


def _flat(keys: Sequence[ast.expr]) -> list[str]:
    """Each column name of ``keys`` (names and lists of names), as comparable text."""
    return [
        ast.dump(part)
        for key in keys
        for part in (key.elts if isinstance(key, ast.List | ast.Tuple) else [key])
    ]


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
    keys = _columns_taken(stmt.node, frame)
    if keys is None:
        return (
            f"`{_short(stmt.node)}` (cell {cell}) uses `{frame}` other than by taking a column "
            "from it"
        )
    if set(_flat(keys)) & written:
        return f"`{_short(stmt.node)}` (cell {cell}) reads a column the feature steps write"
    return ""


def _trace(stages: Sequence[Stage], fit: tuple[int, int], name: str) -> tuple[int, int, str] | None:
    """The stage and statement that last made ``name`` before the fit at ``fit``, through the
    split (its rows are the rows of its input: the input is traced), and the name it makes."""
    flat = [(g, i) for g, stage in enumerate(stages) for i in range(len(stage.statements))]
    for g, i in reversed(flat[: flat.index(fit)]):
        stmt = stages[g].statements[i]
        if not name or name not in stmt.binds:
            continue
        source = _split_source(stmt, name)
        if source is None:
            return g, i, name
        name = source
    return None


def _label_name(stmt: Statement, model: ModelFit) -> str:
    """The name the model's ``.fit`` takes as the target (its second argument, or ``y=``)."""
    for node in stmt.nodes:
        if _fits(node, model):
            label = node.args[1] if len(node.args) > 1 else None
            label = label or next((k.value for k in node.keywords if k.arg == "y"), None)
            return label.id if isinstance(label, ast.Name) else ""
    return ""


def _fit_position(stages: Sequence[Stage], model: ModelFit) -> tuple[int, int] | None:
    found = None
    for number, stage in enumerate(stages):
        for index, stmt in enumerate(stage.statements):
            if any(_fits(node, model) for node in stmt.nodes):
                found = (number, index)
    return found


def _fits(node: ast.AST, model: ModelFit) -> TypeGuard[ast.Call]:
    """Whether ``node`` is the ``.fit(X, ...)`` call on the model's input."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"fit", "fit_generator"}
        and bool(node.args)
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == model.fit_input
    )


def _split_part(stmt: Statement, name: str) -> int:
    """0 for the rows a split binds (``X_train``, ``X_test``), 1 for the target's."""
    node = stmt.node
    assert isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)
    made = [e.id if isinstance(e, ast.Name) else "" for e in node.targets[0].elts]
    return made.index(name) // 2


def _split_source(stmt: Statement, name: str) -> str | None:
    """``X`` for ``X_train, X_test, ... = train_test_split(X, y, ...)`` and ``name``
    X_train (``y`` for y_train)."""
    node = stmt.node
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
        return None
    target, value = node.targets[0], node.value
    if not (isinstance(target, ast.Tuple) and isinstance(value, ast.Call)):
        return None
    if called_name(value) not in SPLITS or not value.args:
        return None
    made = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
    if name not in made or made.index(name) // 2 >= len(value.args):
        return None
    source = value.args[made.index(name) // 2]  # X_train, X_test, y_train, y_test: X, y
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


def _columns_taken(node: ast.stmt, frame: str) -> list[ast.expr] | None:
    """The column keys of ``frame`` that ``node`` reads, when it reads ``frame`` only by taking
    columns from it (``y = frame[key]``, ``y = encoder.fit_transform(frame[key])``); else None.

    None too when the statement may change what it takes (``inplace=``, ``update``, an
    assignment into it such as ``frame[key][0] = 1``): the frame would change with it."""
    if isinstance(node, ast.Delete) or _may_write(node):
        return None
    keys: list[ast.expr] = []
    parents = {
        id(child): parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)
    }
    for name in ast.walk(node):
        if not (isinstance(name, ast.Name) and name.id == frame):
            continue
        parent = parents.get(id(name))
        if column := attribute_column(parent, {frame}) if parent else "":
            keys.append(ast.Constant(column))  # ``df.label``: the column ``label``
            continue
        if not (
            isinstance(parent, ast.Subscript)
            and parent.value is name
            and isinstance(parent.ctx, ast.Load)
            and _column_key(parent.slice)
            and frame not in {n.id for n in ast.walk(parent.slice) if isinstance(n, ast.Name)}
        ):
            return None
        keys.append(parent.slice)
    return keys


# Methods that change their receiver without ``inplace=``.
IN_PLACE = frozenset({"update", "pop", "insert", "popitem", "setdefault", "clear", "sort"})


def _may_write(node: ast.stmt) -> bool:
    """Whether ``node`` may change a value it reads: an ``inplace=`` keyword, an in-place method,
    an assignment into a subscript or an attribute of something."""
    for part in ast.walk(node):
        if isinstance(part, ast.Call):
            if any(k.arg == "inplace" or k.arg is None for k in part.keywords):
                return True
            if isinstance(part.func, ast.Attribute) and part.func.attr in IN_PLACE:
                return True
        if isinstance(part, ast.Subscript | ast.Attribute) and not isinstance(part.ctx, ast.Load):
            return True
    return False


def _columns_read(node: ast.stmt, frame: str) -> list[ast.expr]:
    """The column keys ``node`` reads from ``frame`` by name (``frame[key]``, ``frame.key``)."""
    return [
        part.slice
        for part in ast.walk(node)
        if isinstance(part, ast.Subscript)
        and isinstance(part.value, ast.Name)
        and part.value.id == frame
        and isinstance(part.ctx, ast.Load)
    ] + [
        ast.Constant(column)
        for part in ast.walk(node)
        if (column := attribute_column(part, {frame}))
    ]


def _column_key(node: ast.expr) -> bool:
    """A column name or a list of them: a string, a name (a constant), a list of those."""
    if isinstance(node, ast.List | ast.Tuple):
        return all(_column_key(e) for e in node.elts)
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(
        node, ast.Name
    )


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."
