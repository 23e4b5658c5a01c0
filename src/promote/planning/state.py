"""What feature steps learn from the training rows, written out so that requests reuse it.

Pure. The inference slice (``planning/inference.py``) accepts two kinds of steps that learn
from the rows they are given: a scikit-learn transformer the steps make and fit
(``ss = StandardScaler()``, ``ss.fit(df[cols])``, ``ss.fit_transform(X)``) and
``pd.get_dummies``, whose columns are the categories the rows hold. A request is one row: it
must get what training learnt, not learn again. From the steps' source this module writes two
versions of it:

* the fitting one, which training runs: the steps as the notebook wrote them, recording in a
  dict (``state``) each fitted transformer and, after each ``get_dummies``, the columns it
  made with their dtypes;
* the serving one, which the service runs on each request with that dict: each transformer is
  taken from it instead of being made (``ss = state["ss"]``), its ``fit`` is left out and its
  ``fit_transform`` becomes ``transform``; after each ``get_dummies`` the frame is aligned to
  the training columns (``reindex``: a category the request lacks becomes a column of zeros, one
  training never saw is dropped, as ``OneHotEncoder(handle_unknown="ignore")`` does) with their
  dtypes.

Comments stay where the notebook wrote them, except those just above a ``fit`` the serving
version leaves out.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Sequence

from promote.analysis.rowwise import calls_outer_first, frame_statistic_call, within
from promote.analysis.statements import source_lines
from promote.planning.model import Learnt

__all__ = ["learnt_entries", "learnt_state"]


def learnt_state(
    body: str,
    fitted: Sequence[str],
    dummies: Sequence[str],
    state: str,
    statistics: Sequence[str] = (),
) -> tuple[str, str]:
    """The fitting and the serving versions of the feature steps ``body`` (module docstring):
    ``fitted`` are the transformers it makes and fits, ``dummies`` the names it binds from
    ``pd.get_dummies``, ``statistics`` the statistics of columns it uses as values
    (``df["age"].median()``, as ``ast.unparse`` writes them, one per use), each in order;
    ``state`` names the dict of what was learnt."""
    tree = ast.parse(body)
    lines = source_lines(body)
    fitting: list[str] = [f"{state}: dict[str, Any] = {{}}"]
    serving: list[str] = []
    keys = _dummy_keys(dummies)
    learnt = _statistic_keys(statistics)
    position = 0
    made: set[str] = set()
    previous = 0
    occurrence = 0
    for node in tree.body:
        start, end = node.lineno - 1, node.end_lineno or node.lineno
        between = lines[previous:start]
        text = lines[start:end]
        previous = end
        fitting += between
        used = _statistics_used(node, statistics, learnt, position)
        position += len(used)
        fitting += [
            f"{state}[{key!r}] = {_recorded(expression, part)}" for expression, key, part in used
        ]
        fitting += text
        edits = _with_learnt(node, used, state) + _as_transform(node, fitted)
        edits += _without_drop_first(node, dummies)
        maker = _made(node, fitted)
        if maker and maker not in made:
            made.add(maker)
            serving += between
            serving.append(f'{maker} = {state}["{maker}"]')
            continue
        if _fit_call(node, fitted):
            serving += _without_trailing_comments(between)
            continue
        serving += between
        serving += _apply(text, edits)
        bound = _dummies_bound(node, dummies)
        if bound:
            key = keys[occurrence]
            occurrence += 1
            fitting.append(f'{state}["{key}"] = dict({bound}.dtypes.astype(str))')
            if _without_drop_first(node, dummies):
                serving.append("# the columns training kept: without each first category")
            serving.append(
                f'{bound} = {bound}.reindex(columns=list({state}["{key}"]), fill_value=0).astype(\n'
                f'    {state}["{key}"]\n)'
            )
    fitting += lines[previous:]
    serving += lines[previous:]
    fitting.append("")
    fitting += [f'{state}["{name}"] = {name}' for name in fitted]
    return "\n".join(fitting).strip("\n"), "\n".join(serving).strip("\n")


def _statistic_keys(statistics: Sequence[str]) -> list[str]:
    """The key of each use of a statistic: its source, then ``source (2)``... when the same
    source is used again (the frame may have changed in between)."""
    keys: list[str] = []
    for expression in statistics:
        key, number = expression, 2
        while key in keys:
            key, number = f"{expression} ({number})", number + 1
        keys.append(key)
    return keys


def _statistics_used(
    node: ast.stmt, statistics: Sequence[str], keys: Sequence[str], position: int
) -> list[tuple[str, str, ast.expr]]:
    """The statistics from ``position`` on that ``node`` uses, in the order of its source (as
    ``rowwise.statistics_in`` finds them): (source, key, node) each."""
    used: list[tuple[str, str, ast.expr]] = []
    for part in calls_outer_first(node):
        at = position + len(used)
        if at >= len(statistics):
            break
        if any(within(part, outer) for _, _, outer in used):
            continue
        if ast.unparse(part) == statistics[at]:
            used.append((statistics[at], keys[at], part))
    return used


def _recorded(expression: str, part: ast.expr) -> str:
    """What training records for a statistic: itself, or for one of each column of a frame
    (``df.median()``, ``df.mode().iloc[0]``: a pandas series) a dict of column to value, which
    skops saves as data and ``fillna`` uses alike."""
    return f"dict({expression})" if frame_statistic_call(part) else expression


def _with_learnt(node: ast.stmt, used: list[tuple[str, str, ast.expr]], state: str) -> list[Edit]:
    """Each statistic the statement uses written as what training learnt
    (``state["df['age'].median()"]``)."""
    return [
        (
            part.lineno - node.lineno,
            part.col_offset,
            (part.end_lineno or part.lineno) - node.lineno,
            part.end_col_offset or 0,
            f"{state}[{key!r}]",
        )
        for _, key, part in used
    ]


def learnt_entries(
    steps: Sequence[tuple[int, ast.stmt]],
    fitted: Sequence[str],
    dummies: Sequence[str],
    statistics: Sequence[str] = (),
    *,
    inside: bool = False,
) -> tuple[Learnt, ...]:
    """Each entry of what the feature steps learn, under the key ``learnt_state`` gives it, with
    the notebook cell after which the notebook holds it: a fitted transformer after the last
    step that names it (with ``inside``, right after that step, in its cell: as training records
    what the steps after the split fitted), the columns ``pd.get_dummies`` made after the step
    that binds them, a statistic right before the statement that uses it (as ``fit_features``
    records it). ``steps`` are the steps' statements in order, each with its cell."""
    entries = [
        Learnt(name, name, cell, statement=ast.unparse(node) if inside else "")
        for name in fitted
        if (naming := [(cell, node) for cell, node in steps if name in _names(node)])
        for cell, node in naming[-1:]
    ]
    keys = iter(_dummy_keys(dummies))
    statistic_keys = _statistic_keys(statistics)
    position = 0
    for cell, node in steps:
        bound = _dummies_bound(node, dummies)
        key = next(keys, "") if bound else ""
        if key:
            entries.append(Learnt(key, bound, cell, columns=True))
        used = _statistics_used(node, statistics, statistic_keys, position)
        position += len(used)
        statement = ast.unparse(node)
        entries += [
            Learnt(key, _recorded(expression, part), cell, statement=statement, before=True)
            for expression, key, part in used
        ]
    return tuple(entries)


def _names(node: ast.AST) -> set[str]:
    return {part.id for part in ast.walk(node) if isinstance(part, ast.Name)}


def _dummy_keys(dummies: Sequence[str]) -> list[str]:
    """``X_columns`` for each name ``pd.get_dummies`` binds (``X_columns_2`` the second time)."""
    keys: list[str] = []
    for name in dummies:
        key, number = f"{name}_columns", 2
        while key in keys:
            key, number = f"{name}_columns_{number}", number + 1
        keys.append(key)
    return keys


def _made(node: ast.stmt, fitted: Sequence[str]) -> str:
    """The transformer ``node`` makes (``ss = StandardScaler()``), else ""."""
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in fitted
        and isinstance(node.value, ast.Call)
    ):
        return node.targets[0].id
    return ""


def _fit_call(node: ast.stmt, fitted: Sequence[str]) -> bool:
    """``ss.fit(...)`` as a statement of its own."""
    call = node.value if isinstance(node, ast.Expr) else None
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "fit"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id in fitted
    )


Edit = tuple[int, int, int, int, str]  # first row, its byte column, last row, end column, text


def _apply(text: list[str], edits: list[Edit]) -> list[str]:
    """The statement's lines with each edit's span (rows from the statement's first) written
    as its text, from the last, so that earlier offsets stay right."""
    out = list(text)
    for first, start, last, end, new in sorted(edits, reverse=True):
        head = out[first].encode()[:start]
        tail = out[last].encode()[end:]
        out[first : last + 1] = [(head + new.encode() + tail).decode()]
    return out


def _without_drop_first(node: ast.stmt, dummies: Sequence[str]) -> list[Edit]:
    """``pd.get_dummies(X, columns=[...], drop_first=True)`` without its ``drop_first``: one
    request has one category, which it would drop; aligned to training's columns afterwards,
    its columns are the ones training kept."""
    if not _dummies_bound(node, dummies):
        return []
    assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
    call = node.value
    parts: list[ast.expr | ast.keyword] = sorted(
        [*call.args, *call.keywords], key=lambda p: (p.lineno, p.col_offset)
    )
    return [
        (
            before.end_lineno - node.lineno,
            before.end_col_offset,
            part.end_lineno - node.lineno,
            part.end_col_offset,
            "",
        )
        for before, part in itertools.pairwise(parts)
        if isinstance(part, ast.keyword)
        and part.arg == "drop_first"
        and before.end_lineno is not None
        and before.end_col_offset is not None
        and part.end_lineno is not None
        and part.end_col_offset is not None
    ]


def _as_transform(node: ast.stmt, fitted: Sequence[str]) -> list[Edit]:
    """``ss.fit_transform(`` written ``ss.transform(``."""
    return [
        (row, column - len("fit_transform"), row, column, "transform")
        for part in ast.walk(node)
        if isinstance(part, ast.Call)
        and isinstance(part.func, ast.Attribute)
        and part.func.attr == "fit_transform"
        and isinstance(part.func.value, ast.Name)
        and part.func.value.id in fitted
        and part.func.end_lineno is not None
        and part.func.end_col_offset is not None
        for row, column in [(part.func.end_lineno - node.lineno, part.func.end_col_offset)]
    ]


def _dummies_bound(node: ast.stmt, dummies: Sequence[str]) -> str:
    """The name ``node`` binds from ``pd.get_dummies(...)``, if it is one of ``dummies``."""
    if not (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in dummies
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "get_dummies"
    ):
        return ""
    return node.targets[0].id


def _without_trailing_comments(lines: list[str]) -> list[str]:
    """``lines`` without the comment lines at their end (those above a statement left out)."""
    out = list(lines)
    while out and out[-1].lstrip().startswith("#"):
        out.pop()
    return out
