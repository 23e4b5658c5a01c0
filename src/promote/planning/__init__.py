"""Plan the package: cells → stages → functions with explicit inputs and outputs.

Pure: an ``Analysis`` (and facts about the environment gathered by the caller) in, a ``Plan`` out.
Stages come from cell tags, then markdown headings, then the cells' roles; each run of
consecutive cells of one stage becomes a function whose parameters are the names it reads from
earlier stages and whose return values are the names later stages (or the service) need.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn

from promote import diagnostics as d
from promote.analysis import Analysis, CellAnalysis, ModelFit, ModelTag, stage_tag, tables
from promote.analysis.bindings import BUILTINS
from promote.analysis.checks import movable_secret, qualified_names
from promote.analysis.readiness import readiness
from promote.analysis.rowwise import attribute_column
from promote.analysis.secrets import secret_kind, secret_literals
from promote.analysis.statements import Statement, called_name, changes_state, source_lines
from promote.errors import RefusedNotebookError
from promote.planning.inference import AfterSplit, Slice, Stage, find_slice
from promote.planning.model import Call, Function, Inference, Learnt, Module, Plan
from promote.planning.settings import (
    Setting,
    field_name,
    inline_literals,
    make_setting,
    name_inline,
    read_settings,
)
from promote.planning.state import learnt_entries, learnt_state
from promote.planning.types import Annotation, TypeTracker

__all__ = [
    "Call",
    "Function",
    "Inference",
    "Module",
    "Plan",
    "columns_read",
    "package_name",
    "plan",
]

_STOP_WORDS = frozenset(
    {"the", "a", "an", "on", "of", "our", "to", "and", "with", "for", "in", "some"}
)


@dataclass
class _Group:
    stage: str
    cells: list[CellAnalysis] = field(default_factory=list)
    result: Statement | None = None  # a predict stage's last shown expression, returned
    params: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    binds: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    name: str = ""


def package_name(project_name: str) -> str:
    """A valid, lower-case Python package name for a project name."""
    name = re.sub(r"\W+", "_", project_name.strip().lower()).strip("_")
    if not name or name[0].isdigit():
        name = f"model_{name}" if name else "model_service"
    return name


def plan(
    analysis: Analysis,
    project_name: str,
    *,
    installed: Mapping[str, str] | None = None,
    local_modules: frozenset[str] = frozenset(),
    data_paths: Mapping[str, str] | None = None,
) -> Plan:
    """Plan the project for ``analysis``; refuse (``RefusedNotebookError``) what cannot be promoted.

    ``installed`` maps distributions to the versions where promote runs, ``local_modules`` names
    modules that sit beside the notebook, and ``data_paths`` maps string literals that name data
    files beside the notebook to their path in the project.
    """
    _refuse_if_unpromotable(analysis)
    installed = installed or {}
    data_paths = data_paths or {}
    assert analysis.model is not None
    sources = {c.index: _rewrite_literals(c, data_paths) for c in analysis.cells}
    settings = _settings(analysis, sources)
    parameter = _settings_parameter(analysis)
    secrets = _secret_settings(analysis, sources, settings, parameter)
    pure = {n for n, x in analysis.definitions.items() if x.pure}
    kept = _kept_statements(analysis)
    hoisted = (set(analysis.imports) | set(analysis.constants) | pure | BUILTINS) - _rebound(kept)
    groups = _groups(analysis, kept)
    _dataflow(groups, hoisted, analysis, kept)
    _name_functions(groups, analysis)
    inline = _inline_settings(groups, kept, sources, settings, parameter)
    types = _types(groups, analysis, kept, settings)

    sliced = _inference_slice(groups, analysis, kept, hoisted)
    sliced = _split_of_a_frame(sliced, groups, analysis, kept, settings)
    features: Function | None = None
    fitting: Function | None = None  # fits what the feature steps learn, when they learn
    split = _split_records(sliced.after, _taken(analysis, groups))
    functions: list[Function] = []
    for i, g in enumerate(groups):
        if i == sliced.group:
            features, fitting = _features_function(
                g, sliced, sources, analysis, kept, settings, parameter, types[i], groups
            )
            if sliced.after is not None:  # the steps before the split, which training calls
                features = _before_split_function(features, sliced, analysis, groups)
        functions.append(
            _function(
                g,
                sources,
                analysis,
                kept,
                settings,
                parameter,
                types[i],
                (fitting or features) if i == sliced.group else None,
                sliced.statements - sliced.shared
                if i in (sliced.group, sliced.moved_group)
                else frozenset(),
                sliced.binder,
                sliced.handed,
                split.appended,
                split.returns.get(i, ()),
            )
        )
    serving: Function | None = None  # the service's steps over the split, when steps follow it
    if sliced.after is not None and (features is not None or sliced.group < 0):
        serving = _after_split_function(
            sliced, split, features, sources, analysis, kept, settings, parameter, types, groups
        )
    calls = tuple(
        Call(f, keep=g.stage != "predict" or bool(g.returns))
        for f, g in zip(functions, groups, strict=True)
    )
    modules, helpers = _modules(groups, [c.function for c in calls], analysis, sources, pure)
    inference = Inference(note=sliced.note)
    served = serving or features
    if served is not None:
        at = sliced.group if sliced.group >= 0 else sliced.after.split_group  # type: ignore[union-attr]
        columns = (features or served).body
        inference = _inference(served, sliced, functions[at], settings, parameter, columns)
        if inference.function and fitting is not None:
            steps = [
                (c.index, s.node)
                for c in analysis.cells
                for s in kept[c.index]
                if id(s) in sliced.statements
            ]
            inference = replace(
                inference,
                state=fitting.returns[-1],
                learnt=_learnt(sliced),
                entries=learnt_entries(steps, sliced.fitted, sliced.dummies, sliced.statistics),
            )
        if inference.function and sliced.after is not None:
            trained, entries = _after_split_entries(sliced.after, split, analysis, kept)
            inference = replace(
                inference,
                state=split.state,
                learnt=_learnt(sliced.after) if split.state else "",
                rows=split.rows,
                trained=trained,
                entries=entries,
            )
        if inference.function:
            moved = sliced.moved_group
            if moved >= 0 and _identity(functions[moved]):  # its steps all moved: drop it
                groups = [g for i, g in enumerate(groups) if i != moved]
                functions = [f for i, f in enumerate(functions) if i != moved]
                calls = tuple(
                    Call(f, keep=g.stage != "predict" or bool(g.returns))
                    for f, g in zip(functions, groups, strict=True)
                )
                modules, helpers = _modules(groups, functions, analysis, sources, pure)
            caller = next(f for f in functions if f.name == inference.stage_function)
            called = fitting or features  # what training calls (None: only the service calls)
            added = tuple(f for f in (fitting, features, serving) if f is not None)
            modules = _with_features(modules, added, called, caller.module)
            if called is not None and called.module != caller.module:
                helpers = {**helpers, called.name: called.module}
        else:  # the target's name cannot be written in the pipeline: no slice after all
            after = sliced.after
            changed = {sliced.group, sliced.moved_group}
            changed |= {after.group, after.split_group} if after else set()
            for i in changed - {-1}:
                functions[i] = _function(
                    groups[i], sources, analysis, kept, settings, parameter, types[i]
                )
            calls = tuple(
                Call(f, keep=g.stage != "predict" or bool(g.returns))
                for f, g in zip(functions, groups, strict=True)
            )
            modules, helpers = _modules(groups, functions, analysis, sources, pure)
    modules, builder = _with_builder(modules, calls, analysis, package_name(project_name))
    used = frozenset().union(*(m.reads for m in modules), *(c.function.type_names for c in calls))
    metric_names = _metric_names(analysis, kept)
    metrics = tuple(n for g in groups for n in g.returns if n in metric_names)
    needed_local = _local_modules_needed(analysis, used)
    beside = {x.module.split(".")[0] for x in analysis.diagnostics if isinstance(x, d.LocalModule)}
    dependencies = _dependencies(analysis, used, installed, local_modules | beside)
    unpinned = tuple(
        d.UnpinnedDependency(None, distribution=r)
        for r in dependencies
        if not re.search(r"[<>=!~]", r)
    )
    return Plan(
        project_name=project_name,
        package_name=package_name(project_name),
        notebook_name=analysis.notebook.path.name,
        modules=modules,
        settings=(*settings.values(), *secrets, *inline),
        setting_names=frozenset(analysis.constants),
        settings_parameter=parameter,
        imports={n: b.statement for n, b in analysis.imports.items()},
        helpers=helpers,
        calls=calls,
        model=analysis.model.name,
        fit_input=analysis.model.fit_input or "",
        metrics=metrics,
        dependencies=dependencies,
        data_files=tuple(sorted(data_paths.items())),
        local_modules=needed_local,
        diagnostics=(*analysis.diagnostics, *unpinned),
        exploration=_exploration(analysis, sources, kept),
        title=_title(analysis),
        intro=_intro(analysis),
        model_source=_model_source(analysis),
        model_expression=analysis.model.chosen,
        readiness=readiness(analysis),
        inference=inference,
        forecast=analysis.forecast,
        framework=analysis.model.framework,
        model_builder=builder,
    )


# -- refusal -------------------------------------------------------------------------------------
def _refuse_if_unpromotable(analysis: Analysis) -> None:
    notebook = analysis.notebook
    if notebook.language not in {"python", "python3", "python2", "ipython"}:
        raise RefusedNotebookError(
            notebook.path,
            f"its kernel language is {notebook.language!r}; promote handles Python notebooks",
        )
    if not notebook.code_cells:
        raise RefusedNotebookError(
            notebook.path, "it has no code cells", "Add the model's code first."
        )
    for diagnostic in analysis.diagnostics:
        if isinstance(diagnostic, d.SyntaxErrorInCell):
            raise RefusedNotebookError(
                notebook.path, diagnostic.message, diagnostic.hint, cell=diagnostic.cell
            )
        if isinstance(diagnostic, d.HardcodedSecret | d.ConnectionStringWithCredentials):
            raise RefusedNotebookError(
                notebook.path, diagnostic.message, diagnostic.hint, cell=diagnostic.cell
            )
    if analysis.model_tag is not None:
        _refuse_model_tag(analysis, analysis.model_tag)
    _refuse_forecast(analysis)
    if analysis.model is None:
        _refuse_without_model(analysis)
    _refuse_model_input(analysis, analysis.model)
    package_cells = {c.index for c in analysis.cells if c.kept()}
    for diagnostic in analysis.diagnostics:
        if (
            isinstance(diagnostic, d.UndefinedName | d.UseBeforeDefinition)
            and diagnostic.cell in package_cells
        ):
            raise RefusedNotebookError(
                notebook.path, diagnostic.message, diagnostic.hint, cell=diagnostic.cell
            )


def _refuse_model_input(analysis: Analysis, model: ModelFit) -> None:
    """Refuse a model whose training input promote cannot name (a PyTorch loop over batches,
    a ``.fit()`` given no input or an expression)."""
    notebook = analysis.notebook
    if model.unsupported:
        raise RefusedNotebookError(
            notebook.path,
            model.unsupported,
            "Train the module on one named tensor of shape (rows, features), e.g. "
            "`y_pred = model(X_train)` in the loop, or keep the notebook's loop and tag its "
            "cells `promote: skip` to promote another model.",
            cell=model.cell,
        )
    if model.fit_input is None and not model.first_argument:
        raise RefusedNotebookError(
            notebook.path,
            f"`{model.name}` comes from a `.fit()` given no input data (as Ray Train and "
            "forecasting APIs fit), and promote serves models that predict from input records "
            "or statsmodels forecasters fitted on their series",
            "Such models are not supported yet; a model fitted as `model.fit(X, y)` is, and so "
            "is `results = SARIMAX(train, order=...).fit()` (or `ARIMA`) from statsmodels.",
            cell=model.cell,
        )
    if model.fit_input is None:
        raise RefusedNotebookError(
            notebook.path,
            f"`{model.name}` is fitted on `{model.first_argument}`, not on a named variable, so "
            "promote cannot tell which input the service must accept",
            "Assign the training input to a variable first, e.g. `X = df[cols]` then "
            f"`{model.name}.fit(X, y)`.",
            cell=model.cell,
        )


def _refuse_forecast(analysis: Analysis) -> None:
    """Refuse a statsmodels forecaster promote cannot serve yet (``analysis/forecast.py``)."""
    forecast = analysis.forecast
    if forecast is not None and forecast.refusal:
        raise RefusedNotebookError(
            analysis.notebook.path, forecast.refusal, forecast.hint, cell=forecast.cell
        )


def _fit_inside_a_block(analysis: Analysis) -> tuple[int, str] | None:
    """The first ``x.fit(...)`` nested in a loop, function or condition: (cell, source)."""
    return _first_method_call(analysis, "fit", kept=True)


def _first_method_call(analysis: Analysis, method: str, *, kept: bool) -> tuple[int, str] | None:
    """The first ``x.<method>(...)`` of the package code (``kept``) or of all the notebook's
    code: (cell, source)."""
    for cell in analysis.cells:
        for stmt in cell.kept() if kept else cell.statements:
            for node in stmt.nodes:
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == method
                ):
                    return cell.index, ast.unparse(node)[:60]
    return None


def _refuse_model_tag(analysis: Analysis, tag: ModelTag) -> NoReturn:
    """Why a ``promote: model=`` tag chooses no model, and what to write (it always raises)."""
    loop = tag.candidates
    if tag.hint:
        hint = tag.hint
    elif loop is not None and loop.choices:
        written = ", ".join(f"`promote: model={c}`" for c, _ in loop.choices)
        hint = f"Tag the cell with one of the models its loop fits: {written}."
    else:
        hint = (
            "Name one of the models the cell's loop fits (a subscript of the literal dict or "
            'list the loop goes over, e.g. `promote: model=classifiers["SVC"]`), or fit the '
            "model you chose at the top level of its own cell and remove the tag."
        )
    raise RefusedNotebookError(
        analysis.notebook.path,
        f"its tag `promote: model={tag.expression}` chooses no model: {tag.problem}",
        hint,
        cell=tag.cell,
    )


def _refuse_without_model(analysis: Analysis) -> NoReturn:
    """Why promote cannot find the model the service would serve (it always raises)."""
    notebook = analysis.notebook
    if (loop := analysis.candidates) is not None:
        over = f" over `{loop.container}`" if loop.container else ""
        if loop.choices:
            raise RefusedNotebookError(
                notebook.path,
                f"models are fitted only inside a loop{over} (`{loop.fit}`), one per candidate "
                f"({loop.shown}), so promote cannot tell which one the service must serve",
                f"Tag the cell `promote: model={loop.choices[0][0]}` (or another candidate) to "
                "serve that one, the loop kept as written; or fit the model you chose at the top "
                f"level of its own cell (`model = {_shortened(loop.choices[0][1])}` then "
                f"`model.fit({loop.arguments})`).",
                cell=loop.cell,
            )
        raise RefusedNotebookError(
            notebook.path,
            f"models are fitted only inside a loop{over} (`{loop.fit}`), so promote cannot tell "
            "which one the service must serve",
            f"promote cannot list the candidates to choose one by a tag ({loop.unlisted}): "
            "write them as a literal dict or list before the loop, or fit the model you chose "
            "at the top level of its own cell, e.g. `model = SVC(C=1)` then "
            "`model.fit(X_train, y_train)`.",
            cell=loop.cell,
        )
    if looped := _fit_inside_a_block(analysis):
        raise RefusedNotebookError(
            notebook.path,
            "models are fitted only inside a loop, a function or a condition "
            f"(`{looped[1]}`), so promote cannot tell which one the service must serve",
            "Fit the model you chose at the top level of its own cell, e.g. "
            "`model = SVC(C=1)` then `model.fit(X_train, y_train)`.",
            cell=looped[0],
        )
    if labelled := _fit_predict_only(analysis):
        raise RefusedNotebookError(
            notebook.path,
            f"its model is used only through `fit_predict` (`{labelled[1]}`), which labels "
            "the rows it is fitted on and cannot predict new ones, so there is no model a "
            "service could ask about a new record",
            "Use an estimator that predicts new rows (e.g. `KMeans`: `model.fit(X)`, then "
            "`model.predict(X_new)`), or fit a classifier on the labels `fit_predict` gave.",
            cell=labelled[0],
        )
    raise RefusedNotebookError(
        notebook.path,
        "no cell fits a model (promote looks for a `.fit(...)` call such as "
        "`model.fit(X_train, y_train)`, or a PyTorch loop at the top level of a cell that "
        "calls `loss.backward()` and `optimizer.step()`)",
        "promote builds a service around a trained model; notebooks that only explore data, "
        "or that train with another hand-written loop (inside a function, Keras' "
        "`GradientTape`), are not supported yet.",
    )


def _shortened(source: str) -> str:
    """A candidate's source for a message: itself when short, else its call's name."""
    if len(source) <= 60:
        return source
    return source.split("(", 1)[0] + "(...)" if "(" in source else "..."


def _fit_predict_only(analysis: Analysis) -> tuple[int, str] | None:
    """The first ``x.fit_predict(...)`` of the notebook's code: (cell, source)."""
    return _first_method_call(analysis, "fit_predict", kept=False)


# -- stages and groups ---------------------------------------------------------------------------
def _stage(cell: CellAnalysis) -> str | None:
    tagged = stage_tag(cell.cell)
    if tagged in tables.STAGES:
        return tagged
    if len(cell.heading.split()) <= tables.MAX_HEADING_WORDS:  # a section name, not a sentence
        for stage, pattern in tables.HEADING_STAGES:
            if pattern.search(cell.heading):
                return stage
    return cell.role if cell.role in tables.STAGES else "features"


def _kept_statements(analysis: Analysis) -> dict[int, list[Statement]]:
    """Per cell, the statements that stay in a function body, dead assignments removed.

    An assignment is dead when nothing after it (nor the model, its input or a metric) reads what
    it binds and it changes nothing else: it only fed a plot or a printout.
    """
    kept: dict[int, list[Statement]] = {}
    for cell in analysis.cells:
        kept[cell.index] = [
            stmt
            for stmt in cell.statements
            if stmt.kind == "code"
            or (stmt.kind == "constant" and stmt.binds[0] not in analysis.constants)
            or (stmt.kind == "definition" and not analysis.definitions[stmt.binds[0]].pure)
        ]
    model = analysis.model
    assert model is not None
    live = {model.name, model.fit_input or ""}
    live |= _metric_names(analysis, kept)
    for cell in analysis.cells:
        if _stage(cell) == "predict" and cell.statements:
            live |= set(cell.statements[-1].reads)
    for cell in reversed(analysis.cells):
        survivors = []
        for stmt in reversed(kept[cell.index]):
            node = stmt.node
            plain = isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign)
            # an assignment that binds nothing sets a library's option (``pd.options.x = 1``):
            # it stays if the package uses that library after it
            changed = set(stmt.binds) or set(stmt.reads)
            if plain and not changed & live and not changes_state(node):
                continue
            if plain:
                live -= set(stmt.binds)
            live |= set(stmt.reads)
            if stmt.kind == "definition":
                live |= analysis.definitions[stmt.binds[0]].free
            survivors.append(stmt)
        kept[cell.index] = survivors[::-1]
    return kept


def _rebound(kept: dict[int, list[Statement]]) -> set[str]:
    """Names the package code assigns (``list = [...]``, ``json = {...}``).

    They shadow a builtin or an import of the same name, so they travel between stages as
    variables. A method call used as a statement (``np.random.seed(0)``) rebinds nothing here.
    """
    return {
        name
        for statements in kept.values()
        for stmt in statements
        if not isinstance(stmt.node, ast.Expr)
        for name in stmt.binds
    }


def _groups(analysis: Analysis, kept: dict[int, list[Statement]]) -> list[_Group]:
    groups: list[_Group] = []
    for cell in analysis.cells:
        if not kept[cell.index]:
            continue
        stage = _stage(cell) or "features"
        if groups and groups[-1].stage == stage:
            groups[-1].cells.append(cell)
        else:
            groups.append(_Group(stage, [cell]))
    for group in groups:
        if group.stage == "predict":
            group.result = _shown_result(analysis, group.cells[-1])
    return groups


def _shown_result(analysis: Analysis, last: CellAnalysis) -> Statement | None:
    """The expression a predict stage ends by showing (``model.predict(new_rows)``), if any.

    It may sit in the cell itself or in display-only cells right after it.
    """
    cells = [c for c in analysis.cells if c.index >= last.index]
    candidates = [cells[0]] + [c for c in cells[1:2] if c.role == "display"]
    found = None
    for cell in candidates:
        if cell.statements and cell.statements[-1].kind == "display":
            stmt = cell.statements[-1]
            if isinstance(stmt.node, ast.Expr) and any(isinstance(n, ast.Call) for n in stmt.nodes):
                found = stmt
                break
    return found


def _dataflow(
    groups: list[_Group],
    hoisted: set[str],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
) -> None:
    """Parameters: names read before bound in the group; returns: names later groups read."""
    supplier: dict[str, int] = {}
    for number, group in enumerate(groups):
        statements = [s for cell in group.cells for s in kept[cell.index]]
        statements += [group.result] if group.result else []
        for stmt in statements:
            reads = list(stmt.reads)
            if stmt.kind == "definition":  # kept in the body: its closure needs what it reads
                reads += sorted(analysis.definitions[stmt.binds[0]].free - set(reads))
            for name in reads:
                group.reads.add(name)
                if name in group.binds or name in hoisted or name in group.params:
                    continue
                if name in supplier:
                    group.params.append(name)
                    source = groups[supplier[name]]
                    if name not in source.returns:
                        source.returns.append(name)
            group.binds.update(stmt.binds)
        for name in group.binds:
            supplier[name] = number
    _force_returns(groups, analysis, _metric_names(analysis, kept))


def _force_returns(groups: list[_Group], analysis: Analysis, metrics: set[str]) -> None:
    """The service needs the model and its input; the metrics file needs the metrics."""
    model = analysis.model
    assert model is not None
    for group in groups:
        if any(c.index == model.cell for c in group.cells):
            for name in (model.name, model.fit_input):
                if name and name in group.binds and name not in group.returns:
                    group.returns.append(name)
        group.returns.extend(n for n in sorted(group.binds & metrics) if n not in group.returns)


def _metric_names(analysis: Analysis, kept: dict[int, list[Statement]]) -> set[str]:
    """Names given the value of a metric call (``mae = mean_absolute_error(...)``), any stage."""
    evaluate = dict(tables.ROLE_CALLS)["evaluate"]
    names: set[str] = set()
    for cell in analysis.cells:
        for stmt in kept[cell.index]:
            if not isinstance(stmt.node, ast.Assign | ast.AnnAssign) or not stmt.binds:
                continue
            called = [called_name(n) for n in stmt.nodes if isinstance(n, ast.Call)]
            if any(evaluate.search(c) for c in called):
                names.update(n for n in stmt.binds if _is_metric(n) or cell.role == "evaluate")
    return names


def _is_metric(name: str) -> bool:
    return bool(tables.METRIC_NAME.search(name)) and not name.startswith(("y_", "X_"))


def _name_functions(groups: list[_Group], analysis: Analysis) -> None:
    taken = set(analysis.imports) | set(analysis.definitions) | set(analysis.constants) | BUILTINS
    taken |= {n for c in analysis.cells for s in c.statements for n in (*s.binds, *s.reads)}
    taken |= {"run", "settings", "TrainingResult"}
    for group in groups:
        heading = _stage_heading(group)
        candidate = tables.STAGE_MODULES[group.stage][1]
        if heading and _slug(heading) and _slug(heading) not in taken:
            candidate = _slug(heading)  # a heading that names a variable would shadow it
        name, n = candidate, 2
        while name in taken:
            name, n = f"{candidate}_{n}", n + 1
        taken.add(name)
        group.name = name


def _stage_heading(group: _Group) -> str:
    """The first heading over the group's cells that names its stage (``## Features``)."""
    for cell in group.cells:
        heading = cell.heading
        if len(heading.split()) <= tables.MAX_HEADING_WORDS and any(
            p.search(heading) for s, p in tables.HEADING_STAGES if s == group.stage
        ):
            return heading
    return ""


def _slug(heading: str) -> str:
    words = [w for w in re.findall(r"[a-z0-9]+", heading.lower()) if w not in _STOP_WORDS][:4]
    slug = "_".join(words)
    return slug if slug and slug.isidentifier() and not slug[0].isdigit() else ""


# -- bodies --------------------------------------------------------------------------------------
def _function(
    group: _Group,
    sources: dict[int, list[str]],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
    settings: Mapping[str, Setting],
    parameter: str,
    types: tuple[tuple[Annotation, ...], tuple[Annotation, ...]],
    features: Function | None = None,
    sliced: frozenset[int] = frozenset(),
    binder: int = 0,
    handed: tuple[str, ...] = (),
    appended: Mapping[int, str] | None = None,
    extra: tuple[str, ...] = (),
) -> Function:
    """The stage function of ``group``; with ``features``, it calls that function (made of the
    ``sliced`` statements, left out here) where the ``binder`` statement was, and takes the
    ``handed`` transformers later stages read from what the steps learnt. The ``appended``
    lines follow the statements whose ids they map, and the function also returns ``extra``
    (what the steps after the split record for the pipeline: ``_split_records``)."""
    calls: dict[int, str] = {}
    returns = (*group.returns, *extra)
    if features is not None:
        arguments = ", ".join(features.params)
        call = f"{', '.join(features.returns)} = {features.name}({arguments})"
        if len(features.returns) > 1:
            state = features.returns[1]
            call += "".join(f'\n{name} = {state}["{name}"]' for name in handed)
            returns += (state,)  # what the steps learnt, for the pipeline to save
        calls[binder] = call
    body = _body(group, sources, kept, lambda s: id(s) not in sliced, calls, appended)
    returns_result = False
    if group.result is not None and not group.returns:
        cell = next(c for c in analysis.cells if any(s is group.result for s in c.statements))
        body += (
            "\n\nreturn "
            + "\n".join(
                sources[cell.index][group.result.node.lineno - 1 : group.result.end]
            ).strip()
        )
        returns_result = True
    params = tuple(group.params)
    read = {n: x for n, x in settings.items() if not x.module_level and _reads_name(body, n)}
    if read:
        body = read_settings(body, read, parameter)
    if read or _reads_name(body, parameter):  # an inline setting was written in
        params += (parameter,)
    heading = _stage_heading(group) or group.cells[0].heading
    cells = tuple(c.index for c in group.cells)
    where = _where(cells)
    docstring = f"{heading.rstrip('.')}." if heading else f"{group.stage.capitalize()} stage."
    docstring += f"\n\nFrom {where} of {analysis.notebook.path.name}."
    return Function(
        name=group.name,
        stage=group.stage,
        module=tables.STAGE_MODULES[group.stage][0],
        cells=cells,
        params=params,
        returns=returns,
        param_types=tuple(a.text for a in types[0]),
        return_types=tuple(a.text for a in types[1]),
        type_names=frozenset(n for a in (*types[0], *types[1]) for n in a.names),
        body=body,
        docstring=docstring,
        returns_result=returns_result,
    )


def _body(
    group: _Group,
    sources: dict[int, list[str]],
    kept: dict[int, list[Statement]],
    include: Callable[[Statement], bool],
    instead: Mapping[int, str] | None = None,
    appended: Mapping[int, str] | None = None,
    selected: bool = False,
) -> str:
    """The source of the group's kept statements that ``include`` selects, with comments;
    a statement whose id ``instead`` maps is replaced by that line, and one whose id
    ``appended`` maps is followed by those lines. With ``selected`` (steps taken out of the
    stage), only the selected statements are kept, with the comments above and in them: not
    the comments of the cells' other code."""
    parts: list[str] = []
    instead = instead or {}
    appended = appended or {}
    for cell in group.cells:
        lines = list(sources[cell.index])
        keep = {id(s) for s in kept[cell.index] if include(s)}
        if selected:  # the statements alone, with the comments above and in them
            parts.append(_selected(cell.statements, keep, lines))
            continue
        drop = [(s.start, s.end) for s in cell.statements if id(s) not in keep]
        for stmt in cell.statements:
            if id(stmt) in appended and id(stmt) in keep:
                lines[stmt.end - 1] += "\n" + appended[id(stmt)]
            if id(stmt) in instead:
                lines[stmt.start] = instead[id(stmt)]
                drop = [(a, b) for a, b in drop if (a, b) != (stmt.start, stmt.end)]
                drop.append((stmt.start + 1, stmt.end))
        parts.append(_without(lines, drop))
    return "\n\n".join(p.strip("\n") for p in parts if p.strip())


def _selected(statements: Sequence[Statement], keep: set[int], lines: list[str]) -> str:
    """The lines of the ``keep`` statements of a cell, with the comments above and in them,
    and the lines between two of them that follow each other in the cell."""
    out: list[str] = []
    previous = -1
    for position, stmt in enumerate(statements):
        if id(stmt) not in keep:
            continue
        start = statements[previous].end if previous == position - 1 >= 0 else stmt.start
        out += lines[start : stmt.end]
        previous = position
    return "\n".join(out).strip("\n")


# -- the inference slice -------------------------------------------------------------------------
def _inference_slice(
    groups: list[_Group], analysis: Analysis, kept: dict[int, list[Statement]], hoisted: set[str]
) -> Slice:
    assert analysis.model is not None
    stages = [
        Stage(
            g.stage,
            [s for c in g.cells for s in kept[c.index]],
            g.params,
            g.returns,
            {id(s): c.index for c in g.cells for s in kept[c.index]},
        )
        for g in groups
    ]
    modules = {n: b.module for n, b in analysis.imports.items()}
    return find_slice(stages, analysis.model, hoisted, frozenset(analysis.constants), modules)


def _features_function(
    group: _Group,
    sliced: Slice,
    sources: dict[int, list[str]],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
    settings: Mapping[str, Setting],
    parameter: str,
    types: tuple[tuple[Annotation, ...], tuple[Annotation, ...]],
    groups: list[_Group],
) -> tuple[Function, Function | None]:
    """``make_features(df)``: the sliced statements, which training and the service call
    (those of the stage before too, when the slice joins it: ``Slice.moved_group``).

    When the steps learn from the training rows (``Slice.fitted``, ``Slice.dummies``), also
    ``fit_features(df)``, which training calls instead: the same steps, returning with the
    model's input what they learnt (``feature_state``), which ``make_features(df,
    feature_state)`` applies to requests without learning anything."""
    parts = [groups[sliced.moved_group]] if sliced.moved_group >= 0 else []
    parts.append(group)
    body = "\n\n".join(
        _body(part, sources, kept, lambda s: id(s) in sliced.statements, selected=True)
        for part in parts
    )
    body, tolerant = _drops_ignore_missing(body)
    read = {n: x for n, x in settings.items() if not x.module_level and _reads_name(body, n)}
    if read:
        body = read_settings(body, read, parameter)
    params: tuple[str, ...] = (sliced.frame,)
    if read or _reads_name(body, parameter):
        params += (parameter,)
    frame_type = types[0][group.params.index(sliced.frame)]
    output_types = [_type_at(groups, analysis, kept, settings, sliced.binder, sliced.output)]
    taken = _taken(analysis, groups)
    name = _free("make_features", taken)
    cells = _cells_of(parts, kept, sliced.statements)
    where = _where(cells)
    drops = (
        '``drop`` ignores the columns it does not find (``errors="ignore"``): requests\n'
        "carry no target column.\n\n"
        if tolerant
        else ""
    )
    docstring = (
        "The notebook's row-wise feature steps: the loaded columns in, the model's input out.\n\n"
        "Training calls this, and so does the service for each request (``inference.py``),\n"
        "so that a request gets the features its training rows got.\n\n"
        + drops
        + f"From {where} of {analysis.notebook.path.name}."
    )
    annotations = (frame_type, *output_types[:1])
    serving = Function(
        name=name,
        stage=group.stage,
        module=tables.STAGE_MODULES["features"][0],
        cells=tuple(cells),
        params=params,
        returns=(sliced.output,),
        body=body,
        docstring=docstring,
        param_types=(frame_type.text,),
        return_types=tuple(a.text for a in output_types[:1]),
        type_names=frozenset(n for a in annotations for n in a.names),
        settings_default=parameter in params,
    )
    if not (sliced.fitted or sliced.dummies or sliced.statistics):
        return serving, None
    state = _free("feature_state", taken)
    fitting_body, serving_body = learnt_state(
        body, sliced.fitted, sliced.dummies, state, sliced.statistics
    )
    learnt = _learnt(sliced)
    fitting_name = _free("fit_features", taken)
    fitting = replace(
        serving,
        name=fitting_name,
        returns=(sliced.output, state),
        body=fitting_body,
        docstring=(
            "The notebook's feature steps on the training rows: the model's input, and what\n"
            "the steps learnt from those rows.\n\n"
            + textwrap.fill(f"What they learnt: {learnt}.", 88)
            + f"\n\nTraining calls this; the service calls ``{name}`` with what it learnt.\n\n"
            f"From {where} of {analysis.notebook.path.name}."
        ),
        return_types=(*serving.return_types, "dict[str, Any]"),
        settings_default=False,
    )
    serving = replace(
        serving,
        params=(params[0], state, *params[1:]),
        param_types=(frame_type.text, "dict[str, Any]"),
        body=serving_body,
        docstring=(
            "The notebook's feature steps on new rows: the loaded columns in, the model's\n"
            f"input out, with what ``{fitting_name}`` learnt from the training rows.\n\n"
            "The service calls this for each request (``inference.py``), so that a request\n"
            "gets the features its training rows got; nothing is fitted here.\n\n"
            + drops
            + f"From {where} of {analysis.notebook.path.name}."
        ),
    )
    return serving, fitting


def _taken(analysis: Analysis, groups: list[_Group]) -> set[str]:
    """The names the package may not give a new function or variable: the notebook's and the
    stage functions' names, and what the pipeline uses."""
    taken = set(analysis.imports) | set(analysis.definitions) | set(analysis.constants) | BUILTINS
    taken |= {n for c in analysis.cells for s in c.statements for n in (*s.binds, *s.reads)}
    return taken | {g.name for g in groups} | {"run", "settings", "TrainingResult"}


@dataclass(frozen=True)
class _SplitRecords:
    """What the stages record for the pipeline when feature steps follow the split: the
    training rows' labels (``rows``, taken right after the split, before a step makes them an
    array) and what the steps learnt (``state``: the transformers they fitted, after the last
    of them); ``appended`` maps the statements those lines follow, ``returns`` each stage to
    what it also returns."""

    appended: Mapping[int, str]
    returns: Mapping[int, tuple[str, ...]]
    rows: str = ""
    state: str = ""


def _split_of_a_frame(
    sliced: Slice,
    groups: list[_Group],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
    settings: Mapping[str, Setting],
) -> Slice:
    """``sliced``, unless steps follow the split of something not known to be a pandas frame:
    the training rows' labels (``X_train.index``) match what requests carry to the rows the
    model is fitted on, and an array has none."""
    after = sliced.after
    if after is None:
        return sliced
    kind = _type_at(groups, analysis, kept, settings, after.split, after.source)
    if "DataFrame" in kind.text:
        return sliced
    return Slice(
        note=f"the split's input `{after.source}` is not known to be a pandas DataFrame, whose "
        "row labels match what requests carry to the rows the model is fitted on after the "
        "split (`pd.read_csv`, `load_...(as_frame=True).frame` and the steps made from them "
        "are)"
    )


def _split_records(after: AfterSplit | None, taken: set[str]) -> _SplitRecords:
    if after is None:
        return _SplitRecords({}, {})
    rows = _free("fitted_rows", taken)
    appended = {
        after.split: "# the training rows' labels, to match them to what requests carry\n"
        f"{rows} = {after.trained}.index"
    }
    returns = {after.split_group: (rows,)}
    if not after.fitted:
        return _SplitRecords(appended, returns, rows)
    state = _free("feature_state", taken)
    entries = ", ".join(f'"{n}": {n}' for n in after.fitted)
    appended[after.last] = (
        "# what the feature steps learnt from the training rows, which the service reuses\n"
        f"{state}: dict[str, Any] = {{{entries}}}"
    )
    returns[after.group] = (*returns.get(after.group, ()), state)
    return _SplitRecords(appended, returns, rows, state)


def _after_split_entries(
    after: AfterSplit, split: _SplitRecords, analysis: Analysis, kept: dict[int, list[Statement]]
) -> tuple[Learnt, tuple[Learnt, ...]]:
    """Where the notebook holds what ``promote --execute`` takes of the steps after the split
    (``Inference.trained`` and ``Inference.entries``): the training rows right after the split
    statement, each transformer the steps fitted right after the last of them that names it."""
    at = {id(s): (c.index, s.node) for c in analysis.cells for s in kept[c.index]}
    cell, node = at[after.split]
    steps = [at[id(s)] for c in analysis.cells for s in kept[c.index] if id(s) in after.statements]
    trained = Learnt(split.rows, after.trained, cell, statement=ast.unparse(node))
    return trained, learnt_entries(steps, after.fitted, (), inside=True)


def _before_split_function(
    features: Function, sliced: Slice, analysis: Analysis, groups: list[_Group]
) -> Function:
    """The row-wise steps before the split (``make_features`` when nothing follows the split)
    as ``prepare_features``: training calls it before the split, the service's
    ``make_features`` before the steps that follow it."""
    name = _free("prepare_features", _taken(analysis, groups))
    rest = features.docstring.partition("the features its training rows got.\n\n")[2]
    return replace(
        features,
        name=name,
        docstring=(
            "The notebook's row-wise feature steps before the split: the loaded columns in,\n"
            f"the frame it splits (`{sliced.output}`) out.\n\n"
            "Training calls this, and so does ``make_features`` for each request.\n\n" + rest
        ),
    )


def _after_split_function(
    sliced: Slice,
    split: _SplitRecords,
    before: Function | None,
    sources: dict[int, list[str]],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
    settings: Mapping[str, Setting],
    parameter: str,
    types: list[tuple[tuple[Annotation, ...], tuple[Annotation, ...]]],
    groups: list[_Group],
) -> Function:
    """``make_features``, which the service calls on each request: the steps before the split
    (``before``, if any) and those after it, written for the request's frame instead of the
    training rows (``X_train`` → ``X``), with what they learnt (``split.state``) instead of
    learning: transformers taken from it, ``fit`` left out, ``fit_transform`` as
    ``transform``."""
    after = sliced.after
    assert after is not None
    group = groups[after.group]
    taken = [groups[g] for g in after.groups]
    body = _renamed(
        "\n\n".join(
            _body(part, sources, kept, lambda s: id(s) in after.statements, selected=True)
            for part in taken
        ),
        after.trained,
        after.source,
    )
    read = {n: x for n, x in settings.items() if not x.module_level and _reads_name(body, n)}
    if read:
        body = read_settings(body, read, parameter)
    if split.state:
        _, body = learnt_state(body, after.fitted, (), split.state)
    output = after.source if after.output == after.trained else after.output
    frame = sliced.frame if before is not None else after.source
    params: tuple[str, ...] = (frame, *((split.state,) if split.state else ()))
    if before is not None:
        call = f"{after.source} = {before.name}({', '.join(before.params)})"
        body = f"{call}\n{body}"
        frame_type = before.param_types[0]
    else:
        stage = groups[after.split_group]
        frame_type = types[after.split_group][0][stage.params.index(after.source)].text
    if read or _reads_name(body, parameter) or (before is not None and parameter in before.params):
        params += (parameter,)
    output_type = _type_at(groups, analysis, kept, settings, after.last, after.output)
    cells = tuple(
        sorted({*(before.cells if before else ()), *_cells_of(taken, kept, after.statements)})
    )
    where = _where(cells)
    learnt = f", with what training learnt from its rows ({_learnt(after)})" if split.state else ""
    before_text = f"``{before.name}``, then " if before is not None else ""
    docstring = (
        textwrap.fill(
            "The notebook's feature steps on new rows: the loaded columns in, the model's "
            f"input out: {before_text}the steps that follow the split{learnt}.",
            88,
        )
        + "\n\nThe service calls this for each request (``inference.py``), so that a request gets\n"
        "the features its training rows got; nothing is fitted here.\n\n"
        f"From {where} of {analysis.notebook.path.name}."
    )
    types_text = (frame_type, *(("dict[str, Any]",) if split.state else ()))
    return Function(
        name=_free("make_features", _taken(analysis, groups) | {before.name if before else ""}),
        stage=group.stage,
        module=tables.STAGE_MODULES["features"][0],
        cells=cells,
        params=params,
        returns=(output,),
        body=body,
        docstring=docstring,
        param_types=types_text,
        return_types=(output_type.text,),
        type_names=frozenset(output_type.names) | (before.type_names if before else frozenset()),
        settings_default=parameter in params,
    )


def _cells_of(
    parts: Sequence[_Group], kept: dict[int, list[Statement]], ids: frozenset[int]
) -> tuple[int, ...]:
    """The cells of ``parts`` that hold the statements whose ids are ``ids``, in order."""
    return tuple(
        sorted(
            {c.index for part in parts for c in part.cells for s in kept[c.index] if id(s) in ids}
        )
    )


def _where(cells: Sequence[int]) -> str:
    return f"cell {cells[0]}" if len(cells) == 1 else f"cells {cells[0]}-{cells[-1]}"


def _renamed(body: str, old: str, new: str) -> str:
    """``body`` with the variable ``old`` written ``new`` (its names only, not attributes or
    strings of the same spelling)."""
    tree = ast.parse(body)
    lines = body.splitlines(keepends=True)
    spots = sorted(
        (
            (node.lineno - 1, node.col_offset)
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id == old
        ),
        reverse=True,
    )
    for row, column in spots:  # from the last, so earlier offsets stay right
        raw = lines[row].encode()
        lines[row] = (raw[:column] + new.encode() + raw[column + len(old.encode()) :]).decode()
    return "".join(lines)


def _learnt(sliced: Slice | AfterSplit) -> str:
    """What the sliced steps learn from the training rows, in words."""
    return ", ".join(
        [f"`{n}`" for n in sliced.fitted]
        + [f"the columns `pd.get_dummies` made of `{n}`" for n in sliced.dummies]
        + [f"`{n}`" for n in dict.fromkeys(sliced.statistics)]
    )


def _free(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... the first not in ``taken``."""
    chosen, number = name, 2
    while chosen in taken:
        chosen, number = f"{name}_{number}", number + 1
    return chosen


def _identity(function: Function) -> bool:
    """A stage function left with no statement, that hands on what it received."""
    return not function.body.strip() and set(function.returns) <= set(function.params)


def _with_features(
    modules: tuple[Module, ...], added: tuple[Function, ...], called: Function | None, caller: str
) -> tuple[Module, ...]:
    """``modules`` with the ``added`` functions first in their module (made if the plan has
    none, in the stage order), and the ``caller`` module reading the name of the ``called``
    one (to import it; None when no stage calls them)."""
    features = added[0]
    calls = {called.name} if called is not None else set()
    reads = frozenset(
        n.id for f in added for n in ast.walk(ast.parse(f.body)) if isinstance(n, ast.Name)
    )
    if features.module not in [m.name for m in modules]:
        modules = (*modules, Module(features.module, (), (), reads))
        order = ["helpers", *(m for m, _ in tables.STAGE_MODULES.values())]
        modules = tuple(sorted(modules, key=lambda m: order.index(m.name)))
    return tuple(
        replace(m, functions=(*added, *m.functions), reads=m.reads | reads)
        if m.name == features.module
        else replace(m, reads=m.reads | calls)
        if m.name == caller
        else m
        for m in modules
    )


def _drops_ignore_missing(body: str) -> tuple[str, bool]:
    """``body`` with ``errors="ignore"`` added to its ``.drop(...)`` calls that have no
    ``errors``: the service's requests have no target column to drop. True if any changed."""
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return body, False
    lines = body.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    ends = sorted(
        (
            offsets[node.end_lineno - 1]
            + len(lines[node.end_lineno - 1].encode()[: node.end_col_offset].decode())
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "drop"
            and node.end_lineno is not None
            and node.end_col_offset is not None
            and not any(k.arg == "errors" for k in node.keywords)
        ),
        reverse=True,
    )
    for end in ends:  # from the last, so earlier offsets stay right
        closing = end - 1
        assert body[closing] == ")"
        before = body[:closing].rstrip()
        comma = "" if before.endswith(",") else ", "
        body = before + comma + 'errors="ignore")' + body[end:]
    return body, bool(ends)


def _inference(
    features: Function,
    sliced: Slice,
    stage: Function,
    settings: Mapping[str, Setting],
    parameter: str,
    steps: str,
) -> Inference:
    """The plan's ``Inference`` for an accepted slice: the target's columns, as the pipeline
    writes them (``settings.target``), are left out of requests; the loaded columns the row-wise
    ``steps`` read (their source) are those requests carry, when the code names them all."""
    drop: list[str] = []
    for key in sliced.targets:
        for part in key.elts if isinstance(key, ast.List | ast.Tuple) else [key]:
            text = ast.unparse(part)
            read = {n: x for n, x in settings.items() if _reads_name(text, n)}
            if any(x.module_level for x in read.values()):
                return Inference(
                    note=f"the target column is named by `{text}`, a constant that stays in "
                    "its module, so the pipeline cannot leave it out of requests"
                )
            if read:
                text = read_settings(text, read, parameter).strip()
            names = {
                n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)
            }
            written = _written_out(stage.body, text) if names - {parameter} else ""
            if written:  # ``outcome = ["label"]`` in the stage: the pipeline writes the list
                text, names = written, set()
            if names - {parameter}:
                return Inference(
                    note=f"the target column is named by `{text}`, which the pipeline cannot "
                    "read, so it cannot leave the target out of requests"
                )
            drop.append(text)
    return Inference(
        function=features.name,
        module=features.module,
        stage_function=stage.name,
        frame=sliced.frame,
        drop=tuple(drop),
        unread=tuple(c for c in dropped_unread(steps) if repr(c) not in drop),
        output=sliced.output,
        columns=columns_read(steps, sliced.frame),
    )


def dropped_unread(body: str) -> list[str]:
    """The columns the steps ``body`` drop by a written-out name (``df.drop(columns=["id"])``,
    ``x.drop(drop_list, axis=1)`` with ``drop_list = [...]``) and never name otherwise: a
    request need not carry them (``make_features`` drops them with ``errors="ignore"``, and
    ``make train`` checks it gives the features without them). None when the steps list a
    frame's columns (``df.columns``, ``select_dtypes``...), which would see them missing."""
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return []
    dropped: dict[str, None] = {}
    naming: set[int] = set()  # the string constants that only say what to drop
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _COLUMN_LISTING:
            return []
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "drop" or not (key := _dropped_key(node)):
            continue
        if isinstance(key, ast.Name):
            written = _written_out_node(tree, key.id)
            if written is None:
                continue
            key = written
        parts = key.elts if isinstance(key, ast.List | ast.Tuple) else [key]
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                dropped[part.value] = None
                naming.add(id(part))
    named = {
        n.value if isinstance(n, ast.Constant) else n.attr
        for n in ast.walk(tree)
        if (isinstance(n, ast.Constant) and id(n) not in naming) or isinstance(n, ast.Attribute)
    }
    return [column for column in dropped if column not in named]


# What lists a frame's columns: code using it sees a column a request does not carry missing.
_COLUMN_LISTING = frozenset(
    {"columns", "select_dtypes", "filter", "iloc", "keys", "items", "iteritems", "dtypes"}
)


def _dropped_key(call: ast.Call) -> ast.expr | None:
    """What ``x.drop(...)`` drops when it drops columns: ``columns=`` or the first argument
    with ``axis=1`` / ``axis="columns"``; None when it drops rows or is written otherwise."""
    keywords = {k.arg: k.value for k in call.keywords}
    if "columns" in keywords and not call.args:
        return keywords["columns"]
    axis = keywords.get("axis", call.args[1] if len(call.args) > 1 else None)
    by_column = isinstance(axis, ast.Constant) and axis.value in (1, "columns")
    return call.args[0] if call.args and by_column else None


def columns_read(body: str, frame: str) -> tuple[str, ...]:
    """The columns of ``frame`` that the steps ``body`` read before writing them, when every
    use of ``frame`` there takes or sets columns named by strings (a string, a list of them,
    or a name bound once in ``body`` to such a list); () otherwise."""
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return ()
    read: dict[str, None] = {}
    written: set[str] = set()
    for stmt in tree.body:
        parts = (
            [stmt.value, *stmt.targets] if isinstance(stmt, ast.Assign) else [stmt]
        )  # the value is read before the targets are written
        for part in parts:
            for node in ast.walk(part):
                if not (isinstance(node, ast.Name) and node.id == frame):
                    continue
                key = _subscript_key(part, node, body)
                if key is None:
                    return ()
                names, stored = key
                if stored and isinstance(stmt, ast.Assign):  # ``+=`` reads it too
                    written.update(names)
                else:
                    read.update((n, None) for n in names if n not in written)
    return tuple(read)


def _subscript_key(within: ast.AST, name: ast.Name, body: str) -> tuple[list[str], bool] | None:
    """The column names of the subscript ``name[...]`` in ``within`` and whether it is set;
    None when ``name`` is used otherwise or the names are not written out."""
    for node in ast.walk(within):
        if isinstance(node, ast.Attribute) and node.value is name:
            column = attribute_column(node, {name.id})
            return ([column], False) if column else None
        if isinstance(node, ast.Subscript) and node.value is name:
            key = node.slice
            if isinstance(key, ast.Name):
                written = _written_out(body, key.id)
                if not written:
                    return None
                key = ast.parse(written, mode="eval").body
            parts = key.elts if isinstance(key, ast.List | ast.Tuple) else [key]
            names = [
                p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)
            ]
            if len(names) != len(parts):
                return None
            return names, isinstance(node.ctx, ast.Store)
    return None


def _written_out(body: str, name: str) -> str:
    """The literal ``name`` is bound to in ``body`` (``outcome = ["label"]``), when that is its
    only binding there and the literal holds strings only; else ""."""
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return ""
    value = _written_out_node(tree, name)
    return ast.unparse(value) if value is not None else ""


def _written_out_node(tree: ast.AST, name: str) -> ast.expr | None:
    """``_written_out``'s literal as a node of ``tree``, or None."""
    values = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
        and any(
            isinstance(t, ast.Name) and t.id == name
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    if len(values) != 1 or values[0] is None:
        return None
    value = values[0]
    parts = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
    if not all(isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts):
        return None
    return value


def _without(lines: list[str], ranges: list[tuple[int, int]]) -> str:
    dropped: set[int] = set()
    for start, end in ranges:
        dropped.update(range(start, end))
    return "\n".join(line for i, line in enumerate(lines) if i not in dropped)


def _rewrite_literals(cell: CellAnalysis, data_paths: Mapping[str, str]) -> list[str]:
    """The cell's lines with string literals that name data files pointed at the project copy."""
    lines = source_lines(cell.source)
    if not data_paths:
        return lines
    edits: list[tuple[int, int, int, str]] = []
    for stmt in cell.statements:
        for node in stmt.nodes:
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in data_paths
                and node.lineno == node.end_lineno
                and node.end_col_offset is not None
            ):
                edits.append(
                    (node.lineno - 1, node.col_offset, node.end_col_offset, data_paths[node.value])
                )
    for line_no, start, end, new in sorted(edits, reverse=True):
        raw = lines[line_no].encode()
        lines[line_no] = (raw[:start] + repr(new).encode() + raw[end:]).decode()
    return lines


# -- modules, settings, dependencies -------------------------------------------------------------
def _modules(
    groups: list[_Group],
    functions: list[Function],
    analysis: Analysis,
    sources: dict[int, list[str]],
    pure: set[str],
) -> tuple[tuple[Module, ...], dict[str, str]]:
    """The stage modules, each with its functions (``functions[i]`` is made from ``groups[i]``)
    and the notebook's pure definitions that move there."""
    by_module: dict[str, list[_Group]] = {}
    made: dict[str, list[Function]] = {}
    for group, function in zip(groups, functions, strict=True):
        by_module.setdefault(function.module, []).append(group)
        made.setdefault(function.module, []).append(function)
    home = _homes(by_module, analysis, pure)
    definitions: dict[str, list[str]] = {}
    reads: dict[str, set[str]] = {}
    latest = {  # a notebook that redefines a function to improve it means the last version
        stmt.binds[0]: id(stmt)
        for cell in analysis.cells
        for stmt in cell.statements
        if stmt.kind == "definition"
    }
    for cell in analysis.cells:
        for stmt in cell.statements:
            if (
                stmt.kind == "definition"
                and stmt.binds[0] in home
                and latest[stmt.binds[0]] == id(stmt)
            ):
                module = home[stmt.binds[0]]
                definitions.setdefault(module, []).append(
                    "\n".join(sources[cell.index][stmt.start : stmt.end])
                )
                reads.setdefault(module, set()).update(
                    analysis.definitions[stmt.binds[0]].free, stmt.reads
                )
    for module, members in by_module.items():
        for group in members:
            reads.setdefault(module, set()).update(group.reads)
    modules = tuple(
        Module(
            module,
            tuple(made.get(module, [])),
            tuple(definitions.get(module, [])),
            frozenset(reads[module]),
        )
        for module in ["helpers", *(m for m, _ in tables.STAGE_MODULES.values())]
        if module in made or module in definitions
    )
    return modules, home


def _homes(
    by_module: dict[str, list[_Group]], analysis: Analysis, pure: set[str]
) -> dict[str, str]:
    """The module each used pure definition moves to: its only user, else ``helpers``."""
    users: dict[str, set[str]] = {name: set() for name in pure}
    for module, members in by_module.items():
        for group in members:
            for name in group.reads & pure:
                users[name].add(module)

    def needs(name: str) -> set[str]:
        return set(analysis.definitions[name].free & pure)

    # A definition is needed wherever the definitions that call it are.
    _fixpoint(lambda: _spread(users, needs))
    home = {name: (next(iter(u)) if len(u) == 1 else "helpers") for name, u in users.items() if u}

    def helpers_need_helpers() -> bool:  # or the stage modules and helpers would import each other
        changed = False
        for name in [n for n, m in home.items() if m == "helpers"]:
            for other in needs(name):
                if home.get(other) not in (None, "helpers"):
                    home[other] = "helpers"
                    changed = True
        return changed

    _fixpoint(helpers_need_helpers)
    return home


def _spread(users: dict[str, set[str]], needs: Callable[[str], set[str]]) -> bool:
    changed = False
    for name in users:
        for other in needs(name):
            if not users[name] <= users[other]:
                users[other] |= users[name]
                changed = True
    return changed


def _fixpoint(step: Callable[[], bool]) -> None:
    while step():
        pass


def _title(analysis: Analysis) -> str:
    for cell in analysis.notebook.cells:
        if cell.kind == "markdown":
            match = re.search(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", redact(cell.source), re.MULTILINE)
            if match:
                return match.group(1)
    return ""


def _intro(analysis: Analysis, limit: int = 1200) -> str:
    """The prose of the markdown cells above the first code cell (headings left out)."""
    paragraphs: list[str] = []
    for cell in analysis.notebook.cells:
        if cell.kind == "code":
            break
        if cell.kind == "markdown":
            text = "\n".join(
                line
                for line in redact(cell.source).splitlines()
                if not line.lstrip().startswith("#")
            ).strip()
            if text:
                paragraphs.append(text)
    return "\n\n".join(paragraphs)[:limit]


def _torch_construction(analysis: Analysis) -> tuple[int, ast.expr] | None:
    """The last ``model = Module(...)`` before the loop that trains ``model``: (cell, call)."""
    model = analysis.model
    assert model is not None
    found = None
    for cell in analysis.cells:
        if cell.index > model.cell:
            break
        for stmt in cell.statements:
            node = stmt.node
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == model.name
            ):
                found = (cell.index, node.value)
    return found


def _with_builder(
    modules: tuple[Module, ...], calls: tuple[Call, ...], analysis: Analysis, package: str
) -> tuple[tuple[Module, ...], str]:
    """The modules with ``build_model()``, which builds the PyTorch module the notebook trains,
    untrained (the saved weights are loaded into it), beside the stage that trains it; and its
    reference, ``package.module:build_model``. Refused when the notebook builds it from its
    own variables, which a fresh process does not have. Unchanged, and "", for a model
    fitted with ``.fit``."""
    model = analysis.model
    assert model is not None
    if model.framework != "torch":
        return modules, ""
    found = _torch_construction(analysis)
    notebook = analysis.notebook
    if found is None or not isinstance(found[1], ast.Call):
        raise RefusedNotebookError(
            notebook.path,
            f"`{model.name}` is trained by a PyTorch loop, but promote cannot find where it is "
            f"built (`{model.name} = SomeModule(...)` at the top level of a cell before the "
            "loop), and the service must build a fresh module to load the trained weights into",
            f"Build the module as `{model.name} = YourModule()` (or `nn.Sequential(...)`) in a "
            "cell before the training loop.",
            cell=model.cell,
        )
    cell, call = found
    while (  # ``Net().to(device)``: the service builds it on the CPU, where the weights load
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "to"
        and isinstance(call.func.value, ast.Call)
    ):
        call = call.func.value
    pure = {n for n, x in analysis.definitions.items() if x.pure}
    names = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
    outside = sorted(names - set(analysis.imports) - pure - BUILTINS)
    if outside:
        raise RefusedNotebookError(
            notebook.path,
            f"`{model.name}` is built from the notebook's variables ({', '.join(outside)}), "
            "and the service must build a fresh module to load the trained weights into, "
            "without running the notebook",
            f"Write the values into the call (`{model.name} = YourModule(in_features=1)`), or "
            "make them arguments' defaults of the module's class.",
            cell=cell,
        )
    trainer = next(  # the stage of the loop, beside which the module is trained
        (c.function for c in calls if model.cell in c.function.cells),
        next(c.function for c in calls if model.name in c.function.returns),
    )
    taken = {f.name for m in modules for f in m.functions} | set(analysis.definitions)
    name, number = "build_model", 2
    while name in taken:
        name, number = f"build_model_{number}", number + 1
    builder = Function(
        name=name,
        stage="train",
        module=trainer.module,
        cells=(cell,),
        params=(),
        returns=(),
        body=f"return {ast.unparse(call)}",
        docstring=(
            f"A fresh, untrained `{model.name}`, built as the notebook builds it: the trained "
            "weights\nare loaded into it (`modelfile.py`)."
        ),
        returns_result=True,
    )
    out = tuple(
        replace(m, functions=(*m.functions, builder), reads=m.reads | names)
        if m.name == trainer.module
        else m
        for m in modules
    )
    return out, f"{package}.{trainer.module}:{name}"


def _model_source(analysis: Analysis) -> str:
    """The last assignment to the model's name before it is fitted (``model = Pipeline(...)``),
    as the notebook wrote it; for a candidate a tag chose, the candidate's source
    (``classifiers["SVC"]`` is ``SVC(C=10)``)."""
    model = analysis.model
    assert model is not None
    if model.source:
        return f"{model.name} = {model.source}"
    found = ""
    for cell in analysis.cells:
        if cell.index > model.cell:
            break
        for stmt in cell.statements:
            if isinstance(stmt.node, ast.Assign) and model.name in stmt.binds:
                lines = source_lines(cell.source)
                found = "\n".join(lines[stmt.node.lineno - 1 : stmt.end])
    return found


def _exploration(
    analysis: Analysis, sources: dict[int, list[str]], kept: dict[int, list[Statement]]
) -> tuple[tuple[str, str], ...]:
    """What the package leaves out, in notebook order: markdown, plots, tables, experiments.

    Cells that are wholly left out keep their original text (magics included); from mixed
    cells, the statements left out are kept with their comments.
    """
    analysed = {c.index: c for c in analysis.cells}
    settings = set(analysis.constants)
    out: list[tuple[str, str]] = []
    for cell in analysis.notebook.cells:
        if cell.kind == "markdown":
            out.append(("markdown", redact(cell.source)))
            continue
        if cell.kind != "code" or not cell.source.strip():
            continue
        info = analysed.get(cell.index)
        if info is None or info.syntax_error:  # skipped or not Python: kept as written
            out.append(("code", redact(cell.source, comment="# ")))
            continue
        package = {id(s) for s in kept[cell.index]}
        left = [  # what was shown, and what was computed only to be shown
            s
            for s in info.statements
            if s.kind == "display"
            or (s.kind == "code" and id(s) not in package)
            or (s.kind == "constant" and id(s) not in package and s.binds[0] not in settings)
        ]
        if left:
            lines = sources[cell.index]
            out.append(("code", "\n".join("\n".join(lines[s.start : s.end]) for s in left)))
    return tuple(out)


def _settings(analysis: Analysis, sources: dict[int, list[str]]) -> dict[str, Setting]:
    """The notebook's constants as settings fields, in notebook order.

    A constant that a function defined in the notebook reads stays module level (that function is
    moved verbatim); a secret that one reads cannot, and is refused.
    """
    secrets = {x.name for x in analysis.diagnostics if isinstance(x, d.SecretSetting)}
    read_by_definitions = {n for x in analysis.definitions.values() for n in x.free}
    taken: set[str] = set()
    out: dict[str, Setting] = {}
    for cell in analysis.cells:
        for stmt in cell.statements:
            name = stmt.binds[0] if stmt.kind == "constant" else ""
            if name not in analysis.constants:
                continue
            if name in secrets and name in read_by_definitions:
                raise RefusedNotebookError(
                    analysis.notebook.path,
                    f"`{name}` looks like a secret and a function defined in the notebook reads it",
                    "Pass the secret to that function as an argument, read from an environment "
                    "variable; then rotate it, since it is in the file's history.",
                    cell=cell.index,
                )
            setting = make_setting(
                name,
                sources[cell.index],
                stmt.start,
                stmt.node,
                secret=name in secrets,
                taken=taken,
            )
            if name in read_by_definitions:
                setting = replace(setting, module_level=True)
            out[name] = setting
    return out


def _types(
    groups: list[_Group],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
    settings: Mapping[str, Setting],
) -> list[tuple[tuple[Annotation, ...], tuple[Annotation, ...]]]:
    """For each group, the annotations of its parameters and of its returns."""
    tracker = _tracker(analysis, settings)
    out = []
    for group in groups:
        params = tuple(tracker.annotation(name) for name in group.params)
        for cell in group.cells:
            for stmt in kept[cell.index]:
                tracker.visit(stmt.node, stmt.binds)
        out.append((params, tuple(tracker.annotation(name) for name in group.returns)))
    return out


def _type_at(
    groups: list[_Group],
    analysis: Analysis,
    kept: dict[int, list[Statement]],
    settings: Mapping[str, Setting],
    statement: int,
    name: str,
) -> Annotation:
    """The annotation of ``name`` right after the statement whose id is ``statement``."""
    tracker = _tracker(analysis, settings)
    for group in groups:
        for cell in group.cells:
            for stmt in kept[cell.index]:
                tracker.visit(stmt.node, stmt.binds)
                if id(stmt) == statement:
                    return tracker.annotation(name)
    return tracker.annotation(name)


def _tracker(analysis: Analysis, settings: Mapping[str, Setting]) -> TypeTracker:
    constants = {
        name: "str" if x.annotation == "str" else "list"
        for name, x in settings.items()
        if x.annotation == "str" or x.annotation.startswith("list[")
    }
    return TypeTracker(qualified_names(analysis.cells), constants)


def _inline_settings(
    groups: list[_Group],
    kept: dict[int, list[Statement]],
    sources: dict[int, list[str]],
    settings: Mapping[str, Setting],
    parameter: str,
) -> tuple[Setting, ...]:
    """Literal hyper-parameters in the package's calls become settings, read from ``parameter``.

    ``sources`` is rewritten in place: ``max_iter=5000`` becomes ``max_iter=settings.max_iter``.
    """
    literals = [
        literal
        for group in groups
        for cell in group.cells
        for literal in inline_literals(
            cell.index, source_lines(cell.source), [s.node for s in kept[cell.index]]
        )
    ]
    named = name_inline(literals, {x.field for x in settings.values()})
    used: dict[str, Setting] = {}
    for literal, setting in sorted(
        named, key=lambda pair: (pair[0].cell, pair[0].line, pair[0].start), reverse=True
    ):
        lines = sources[literal.cell]
        raw = lines[literal.line].encode()
        if raw[literal.start : literal.end].decode(errors="replace") != literal.value:
            continue  # the line was rewritten (a data path): leave this value as written
        new = f"{parameter}.{setting.field}".encode()
        lines[literal.line] = (raw[: literal.start] + new + raw[literal.end :]).decode()
        used[setting.field] = setting
    ordered = [s for _, s in named if s.field in used]
    unique = list({s.field: s for s in ordered}.values())
    if unique:
        unique[0] = replace(unique[0], comments=("# written inline in the notebook's calls",))
    return tuple(unique)


def _secret_settings(
    analysis: Analysis,
    sources: dict[int, list[str]],
    settings: Mapping[str, Setting],
    parameter: str,
) -> tuple[Setting, ...]:
    """Credentials written into the code become required ``SecretStr`` settings.

    ``sources`` is rewritten in place, in the package's statements and in those left for the
    exploration notebook alike: ``connect(token="ghp_...")`` becomes
    ``connect(token=settings.token.get_secret_value())``; the same value is one setting.
    """
    taken = {x.field for x in settings.values()}
    by_value: dict[str, Setting] = {}
    for cell in analysis.cells:
        edits: list[tuple[ast.Constant, str]] = []
        for stmt in cell.statements:
            if stmt.kind == "constant" and stmt.binds[0] in settings:
                continue  # the constant itself is a setting (a secret one if it holds one)
            for found in secret_literals(list(stmt.nodes)):
                if not movable_secret(stmt, found):
                    continue  # refused with P015 / P021
                value = str(found.node.value)
                if value not in by_value:
                    field = re.sub(r"\W+", "_", found.name).strip("_").lower() or "secret"
                    by_value[value] = Setting(
                        name="",
                        field=field_name(field, taken),
                        annotation="SecretStr",
                        default="",
                        comments=(),
                        trailing="",
                        secret=True,
                    )
                expression = by_value[value].expression.replace("settings.", f"{parameter}.", 1)
                edits.append((found.node, expression))
        for node, expression in sorted(
            edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True
        ):
            _replace_node(analysis, cell, sources[cell.index], node, expression)
    return tuple(by_value.values())


def _replace_node(
    analysis: Analysis, cell: CellAnalysis, lines: list[str], node: ast.expr, new: str
) -> None:
    """Replace ``node``'s source in ``lines`` by ``new``, keeping the number of lines."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    start, end = node.col_offset, node.end_col_offset or 0
    head, tail = lines[first].encode()[:start], lines[last].encode()[end:]
    if first == last:
        old = lines[first].encode()[start:end]
    else:
        middle = [line.encode() for line in lines[first + 1 : last]]
        old = b"\n".join([lines[first].encode()[start:], *middle, lines[last].encode()[:end]])
    try:
        same = ast.literal_eval(old.decode()) == getattr(node, "value", None)
    except (ValueError, SyntaxError, UnicodeDecodeError):
        same = False
    if not same:
        raise RefusedNotebookError(
            analysis.notebook.path,
            "a credential shares a line with a data file path promote rewrites, so promote "
            "cannot move it out of the code safely",
            "Read the credential from an environment variable (os.environ) on its own line.",
            cell=cell.index,
        )
    lines[first] = (head + new.encode() + tail).decode()
    for index in range(first + 1, last + 1):
        lines[index] = ""


def redact(text: str, comment: str = "") -> str:
    """``text`` with each line that holds a credential replaced by a note saying so."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        kind = secret_kind(line)
        if kind:
            indent = line[: len(line) - len(line.lstrip())]
            lines[index] = f"{indent}{comment}(promote removed a line holding {kind})"
    return "\n".join(lines) if lines != text.splitlines() else text


def _settings_parameter(analysis: Analysis) -> str:
    """The parameter stage functions receive the settings in: ``settings``, unless taken."""
    bound = {n for c in analysis.cells for s in c.statements for n in (*s.binds, *s.reads)}
    name, number = "settings", 2
    while name in bound or name in analysis.imports or name in analysis.definitions:
        name, number = f"settings_{number}", number + 1
    return name


def _reads_name(body: str, name: str) -> bool:
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return name in body
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree))


def _local_modules_needed(analysis: Analysis, used: frozenset[str]) -> tuple[str, ...]:
    """The modules beside the notebook (P013) that the package imports: copied into src/."""
    needed: list[str] = []
    for diagnostic in analysis.diagnostics:
        if not isinstance(diagnostic, d.LocalModule):
            continue
        top = diagnostic.module.split(".")[0]
        if top not in needed and any(
            b.module == top and (n in used or n[0] == "*") for n, b in analysis.imports.items()
        ):
            needed.append(top)
    return tuple(needed)


def _dependencies(
    analysis: Analysis,
    used: frozenset[str],
    installed: Mapping[str, str],
    local_modules: frozenset[str],
) -> tuple[str, ...]:
    """Requirements for the modules the package imports.

    The version is the notebook's own `pip install x==1.2` pin, else the version installed where
    promote runs, else one the notebook printed; a pip constraint (`>=4`) is kept when nothing
    pins it exactly.
    """
    modules = {b.module for name, b in analysis.imports.items() if name in used or name[0] == "*"}
    wanted = []
    for dep in analysis.dependencies:
        if not set(dep.modules) & modules or set(dep.modules) & local_modules:
            continue  # installed or imported, but not used by the package; or a local module
        version = dep.version if dep.source == "pip" else None
        version = version or installed.get(re.sub(r"[-_.]+", "-", dep.distribution).lower())
        version = version or dep.version
        wanted.append(f"{dep.distribution}=={version}" if version else dep.requirement)
    return tuple(wanted)
