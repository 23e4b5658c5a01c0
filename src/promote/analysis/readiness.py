"""A short "production readiness" view of an analysed notebook: what is in place, what is missing.

Pure: it reads an ``Analysis`` (its diagnostics, calls and dependencies) and returns data; the
report prints it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from promote import diagnostics as d
from promote.analysis.statements import called_name

if TYPE_CHECKING:
    from promote.analysis import Analysis

__all__ = ["ReadinessItem", "readiness"]

# Calls and keywords that hold data out of training: a split, cross-validation, a validation set.
HELD_OUT_CALLS = frozenset(
    {
        "train_test_split",
        "cross_val_score",
        "cross_validate",
        "cross_val_predict",
        "KFold",
        "StratifiedKFold",
        "GroupKFold",
        "TimeSeriesSplit",
        "ShuffleSplit",
        "StratifiedShuffleSplit",
        "GridSearchCV",
        "RandomizedSearchCV",
        "HalvingGridSearchCV",
        "random_split",
        "temporal_train_test_split",
    }
)
# Names of held-out data made by hand (`X_test = X[800:]`, `valid_df = ...`, `test = df[-12:]`).
HELD_OUT_NAME = re.compile(r"(?i)(?:^|_)(?:test|val|valid|validation|holdout|eval)(?:_|$|\d)")
HELD_OUT_KEYWORDS = frozenset({"validation_split", "validation_data", "eval_set", "valid_sets"})


@dataclass(frozen=True)
class ReadinessItem:
    """One line of the summary: ``key`` is stable (for JSON), ``ok`` says whether it is in place."""

    key: str  # data | evaluation | seed | installs | secrets | model | order
    ok: bool
    detail: str


def readiness(analysis: Analysis) -> tuple[ReadinessItem, ...]:
    """The summary, in a fixed order of keys."""
    return (
        _model(analysis),
        _data(analysis),
        _evaluation(analysis),
        _seed(analysis),
        _installs(analysis),
        _secrets(analysis),
        _order(analysis),
    )


def _of(analysis: Analysis, *kinds: type[d.Diagnostic]) -> list[d.Diagnostic]:
    return [x for x in analysis.diagnostics if isinstance(x, kinds)]


def _cells(found: list[d.Diagnostic]) -> str:
    cells = sorted({x.cell for x in found if x.cell is not None})
    shown = ", ".join(map(str, cells[:5])) + (", ..." if len(cells) > 5 else "")
    return f"cell{'s' if len(cells) > 1 else ''} {shown}" if cells else "the notebook"


def _model(analysis: Analysis) -> ReadinessItem:
    model = analysis.model
    if model is None and analysis.candidates is not None:
        loop = analysis.candidates
        return ReadinessItem(
            "model",
            False,
            f"no model chosen: cell {loop.cell} fits one per candidate in a loop "
            "(tag it `promote: model=...`)",
        )
    if model is None:
        return ReadinessItem("model", False, "no model: no `.fit(...)` call found")
    on = f" on `{model.fit_input}`" if model.fit_input else ""
    verb = "trained by a PyTorch loop" if model.framework == "torch" else "fitted"
    return ReadinessItem("model", True, f"`{model.name}` {verb}{on} in cell {model.cell}")


def _data(analysis: Analysis) -> ReadinessItem:
    fixed = _of(analysis, d.HardcodedPath)
    if fixed:
        paths = sorted({getattr(x, "path", "") for x in fixed})
        return ReadinessItem(
            "data", False, f"reads a fixed absolute path ({paths[0]}) in {_cells(fixed)}"
        )
    network = _of(analysis, d.NetworkAccess)
    if network:
        return ReadinessItem("data", False, f"downloads at run time in {_cells(network)}")
    loads = [c.index for c in analysis.cells if c.role == "load"]
    if loads:
        return ReadinessItem("data", True, f"loaded by relative path or API (cell {loads[0]})")
    return ReadinessItem("data", True, "no data loading found")


def _evaluation(analysis: Analysis) -> ReadinessItem:
    for cell in analysis.cells:
        for stmt in cell.statements:
            if stmt.kind in {"import", "display"}:
                continue
            found = _held_out_call(stmt.node) or next(
                (f"`{n}`" for n in stmt.binds if HELD_OUT_NAME.search(n)), None
            )
            if found:
                return ReadinessItem(
                    "evaluation", True, f"held-out data: {found} in cell {cell.index}"
                )
    return ReadinessItem(
        "evaluation", False, "no held-out evaluation (no train/test split or cross-validation)"
    )


def _held_out_call(node: ast.AST) -> str | None:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            name = called_name(inner)
            if name in HELD_OUT_CALLS or any(k.arg in HELD_OUT_KEYWORDS for k in inner.keywords):
                return str(name)
    return None


def _seed(analysis: Analysis) -> ReadinessItem:
    missing = _of(analysis, d.MissingSeed)
    if missing:
        calls = sorted({getattr(x, "call", "") for x in missing})
        return ReadinessItem("seed", False, f"no seed for {', '.join(calls)} ({_cells(missing)})")
    return ReadinessItem("seed", True, "no unseeded randomness found")


def _installs(analysis: Analysis) -> ReadinessItem:
    from_pip = [x for x in analysis.dependencies if x.resolved_by == "pip" or x.source == "pip"]
    unpinned = sorted(r for c in analysis.cells for r in c.requirements if "==" not in r)
    if unpinned:
        return ReadinessItem("installs", False, f"unpinned installs: {', '.join(unpinned)}")
    if any(c.requirements for c in analysis.cells) or from_pip:
        return ReadinessItem("installs", True, "every `pip install` pins a version")
    return ReadinessItem("installs", True, "no installs in the notebook")


def _secrets(analysis: Analysis) -> ReadinessItem:
    found = _of(analysis, d.HardcodedSecret, d.SecretSetting, d.SecretInOutput)
    if found:
        return ReadinessItem("secrets", False, f"secrets in {_cells(found)}")
    return ReadinessItem("secrets", True, "no secrets found in code or outputs")


def _order(analysis: Analysis) -> ReadinessItem:
    found = _of(
        analysis, d.UndefinedName, d.UseBeforeDefinition, d.OutOfOrderExecution, d.NeverExecuted
    )
    if found:
        return ReadinessItem(
            "order", False, f"hidden state or out-of-order runs in {_cells(found)}"
        )
    return ReadinessItem("order", True, "runs top to bottom")
