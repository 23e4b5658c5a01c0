"""Static analysis of a notebook: per cell, what it defines, uses, imports and is for.

Pure: a ``Notebook`` in, an ``Analysis`` out; no user code is executed and no file is read.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from promote import diagnostics as d
from promote.analysis import tables
from promote.analysis.bindings import BUILTINS, function_free_names
from promote.analysis.candidates import Candidates, Choice, choose, fitting_loop, model_tag
from promote.analysis.checks import run_checks
from promote.analysis.dependencies import Dependency, dependencies
from promote.analysis.dependencies import distribution as _distribution
from promote.analysis.drift import Bound, DriftMatch, bounds, find_drift
from promote.analysis.evidence import Evidence, collect
from promote.analysis.forecast import ForecastFit, find_forecast
from promote.analysis.secrets import secret_literals
from promote.analysis.statements import (
    Context,
    Statement,
    called_name,
    source_lines,
    split_statements,
)
from promote.normalize import normalize
from promote.notebook import Cell, Notebook

__all__ = [
    "Analysis",
    "Bound",
    "Candidates",
    "CellAnalysis",
    "Definition",
    "Dependency",
    "DriftMatch",
    "Evidence",
    "ForecastFit",
    "ImportBinding",
    "ModelFit",
    "ModelTag",
    "analyse",
    "distribution",
]


@dataclass(frozen=True)
class ImportBinding:
    """A name bound by a top-level import, with the statement that binds it alone."""

    name: str
    statement: str
    module: str  # the top-level module, e.g. "sklearn"
    cell: int


@dataclass(frozen=True)
class Definition:
    """A top-level function or class; ``pure`` when its body reads no notebook variable."""

    name: str
    cell: int
    free: frozenset[str]
    pure: bool


@dataclass(frozen=True)
class ModelFit:
    """The model the notebook trains: the fitted object's name and what it was fitted on."""

    name: str
    fit_input: str | None
    cell: int
    first_argument: str = ""  # the source of fit's first argument, when it is not a plain name
    # When a tag chose it among the candidates a loop fits: the expression of the notebook's
    # names that holds it (``classifiers["SVC"]``), which the cell binds to ``name`` after the
    # loop, and the candidate's source (``SVC(C=10)``).
    chosen: str = ""
    source: str = ""
    # "torch" for a ``torch.nn.Module`` trained by a hand-written loop (``loss.backward()``,
    # ``optimizer.step()``): ``fit_input`` is what the loop calls it on; "" for ``.fit``
    framework: str = ""
    # why promote cannot serve this model (a loop over a data loader's batches), or ""
    unsupported: str = ""


@dataclass(frozen=True)
class ModelTag:
    """A ``promote: model=EXPR`` tag that chooses no model: its cell, its expression, why."""

    cell: int
    expression: str
    problem: str
    candidates: Candidates | None = None
    hint: str = ""  # what to do, when the candidates do not say it


@dataclass(frozen=True)
class CellAnalysis:
    """One code cell after normalization and analysis."""

    cell: Cell
    source: str
    statements: tuple[Statement, ...]
    role: str  # imports | config | load | features | train | evaluate | predict | display | empty
    heading: str
    requirements: tuple[str, ...] = ()
    syntax_error: bool = False
    lines: tuple[int, ...] = ()  # normalized line i+1 was line lines[i] of the cell as written

    @property
    def index(self) -> int:
        return self.cell.index

    def line(self, line: int) -> int:
        """The line of the cell as written for ``line`` of the normalized ``source``."""
        return self.lines[line - 1] if 0 < line <= len(self.lines) else line

    def kept(self) -> tuple[Statement, ...]:
        """Statements that stay in the package body (not imports, constants, defs or display)."""
        return tuple(s for s in self.statements if s.kind == "code")


@dataclass(frozen=True)
class Analysis:
    """What promote knows about a notebook before planning the project."""

    notebook: Notebook
    cells: tuple[CellAnalysis, ...]
    imports: dict[str, ImportBinding]
    constants: dict[str, int]  # name → cell that assigns it (assigned once, to a literal)
    definitions: dict[str, Definition]
    model: ModelFit | None
    requirements: tuple[str, ...]
    diagnostics: tuple[d.Diagnostic, ...]
    string_literals: tuple[tuple[int, str], ...] = field(default=())  # (cell, value)
    dependencies: tuple[Dependency, ...] = field(default=())  # third-party, sorted by name
    evidence: Evidence = field(default=Evidence())  # versions and date the notebook shows
    drift: tuple[DriftMatch, ...] = field(default=())  # uses of APIs that changed (api_drift.toml)
    bounds: tuple[Bound, ...] = field(default=())  # per distribution, the versions they work with
    # the first loop that fits each item of what it goes over (the candidates), when any
    candidates: Candidates | None = None
    model_tag: ModelTag | None = None  # a ``promote: model=`` tag that chooses nothing
    # the statsmodels forecaster the model is, when it is one (``analysis/forecast.py``)
    forecast: ForecastFit | None = None

    @property
    def errors(self) -> tuple[d.Diagnostic, ...]:
        return tuple(x for x in self.diagnostics if x.severity == "error")


def analyse(
    notebook: Notebook,
    *,
    packages: Mapping[str, Sequence[str]] | None = None,
    installed: Mapping[str, str] | None = None,
    local_modules: frozenset[str] = frozenset(),
) -> Analysis:
    """Analyse every code cell of ``notebook`` in order, as "Restart and run all" would run them.

    ``packages`` (top-level module → distributions, as ``importlib.metadata``'s
    ``packages_distributions()`` gives it) and ``installed`` (normalized distribution name →
    version) describe the environment promote runs in, and ``local_modules`` the modules that
    sit beside the notebook (``utils.py``, ``common/``); the caller reads them, so this stays pure.
    """
    diagnostics: list[d.Diagnostic] = []
    cells: list[CellAnalysis] = []
    context = Context()
    heading = ""
    skipped = {c.index for c in notebook.cells if _tag_stage(c) == "skip"}
    earlier: list[ast.stmt] = []  # the top-level statements of the cells analysed so far
    loop: Candidates | None = None
    chosen: ModelFit | None = None
    problem: ModelTag | None = None
    for cell in notebook.cells:
        if cell.kind == "markdown":
            level, text = _heading(cell.source)
            if text and not (
                level == 1 and not cells
            ):  # a level-1 heading above all code is the title
                heading = text
            continue
        if cell.kind != "code" or cell.index in skipped:
            continue
        normal = normalize(cell.source, cell.index)
        diagnostics.extend(normal.diagnostics)
        if normal.tree is None:
            cells.append(
                CellAnalysis(
                    cell,
                    normal.source,
                    (),
                    "empty",
                    heading,
                    normal.requirements,
                    True,
                    normal.lines,
                )
            )
            continue
        source, tree, lines = normal.source, normal.tree, normal.lines
        found = fitting_loop(tree.body, earlier, cell.index)
        loop = loop or found
        expression = model_tag(cell.tags)
        if expression is not None and chosen is not None:  # one model only
            problem = problem or ModelTag(
                cell.index,
                expression,
                f"the tag of cell {chosen.cell} chose one already",
                hint="Keep one `promote: model=` tag: the service serves one model.",
            )
        elif expression is not None and problem is None:
            picked = _choose(expression, found, cell.index, _model_name(notebook))
            if isinstance(picked, ModelTag):
                problem = picked
            else:
                chosen = picked[0]
                written = source_lines(source)
                source = "\n".join([*written, *picked[1]]) + "\n"
                last = lines[-1] if lines else len(written)
                lines = (*lines, *[last] * (len(written) + 2 - len(lines)))
                tree = ast.parse(source)
        earlier.extend(tree.body)
        statements = tuple(split_statements(tree, source, context))
        role = _role(statements)
        cells.append(
            CellAnalysis(cell, source, statements, role, heading, normal.requirements, lines=lines)
        )

    if not notebook.code_cells:
        diagnostics.append(d.NoCode(None))
    diagnostics.extend(_execution_order(notebook))
    imports = _imports(cells, diagnostics)
    diagnostics.extend(_local_module_imports(cells, local_modules))
    constants = _constants(cells)
    definitions = _definitions(cells, imports, constants, diagnostics)
    diagnostics.extend(_undefined(cells, imports, definitions))
    diagnostics.extend(run_checks(notebook, cells))
    drift = find_drift(cells)
    version_bounds = bounds(drift)
    diagnostics.extend(_drift_diagnostics(drift, version_bounds))
    requirements = tuple(r for c in cells for r in c.requirements)
    model, forecast = (chosen, None) if chosen else _model_or_forecast(cells, imports)
    literals = tuple(
        (c.index, node.value)
        for c in cells
        for s in c.statements
        if s.kind != "display"
        for node in s.nodes
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 300
    )
    return Analysis(
        notebook=notebook,
        cells=tuple(cells),
        imports=imports,
        constants=constants,
        definitions=definitions,
        model=model,
        requirements=requirements,
        diagnostics=tuple(sorted(diagnostics, key=lambda x: (x.cell or 0, x.line or 0, x.code))),
        string_literals=literals,
        dependencies=dependencies(
            cells,
            notebook.cells,
            ((c.index, r) for c in cells for r in c.requirements),
            packages,
            installed,
        ),
        evidence=collect(notebook, cells, ((c.index, r) for c in cells for r in c.requirements)),
        drift=drift,
        bounds=version_bounds,
        candidates=loop,
        model_tag=problem,
        forecast=forecast,
    )


def _choose(
    expression: str, loop: Candidates | None, cell: int, name: str
) -> ModelTag | tuple[ModelFit, tuple[str, str]]:
    """The model a cell's ``promote: model=EXPR`` tag chooses among the candidates its loop
    fits, and the lines that bind it to ``name`` after the cell's code; or why the tag
    chooses none."""
    if loop is None:
        return ModelTag(cell, expression, "the cell has no loop that fits each model it goes over")
    picked = choose(expression, loop)
    if not isinstance(picked, Choice):
        return ModelTag(cell, expression, picked, loop)
    fit = ModelFit(
        name, loop.fit_input, cell, loop.first_argument, picked.expression, picked.source
    )
    return fit, (
        f"# The model the service serves: the cell's tag `promote: model={picked.expression}`",
        f"{name} = {picked.expression}",
    )


def _model_name(notebook: Notebook) -> str:
    """A name no cell uses, for the model a tag chose: ``model``, else ``chosen_model``, ..."""
    used = set().union(*(_identifiers(c.source) for c in notebook.code_cells))
    name, n = "model", 1
    while name in used:
        name, n = ("chosen_model" if n == 1 else f"chosen_model_{n}"), n + 1
    return name


def _identifiers(source: str) -> set[str]:
    """The words of a cell's code, not of its comments or strings (all of its words when it
    does not tokenize)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return set(re.findall(r"\w+", source))
    return {token.string for token in tokens if token.type == tokenize.NAME}


def _model_or_forecast(
    cells: list[CellAnalysis], imports: Mapping[str, ImportBinding]
) -> tuple[ModelFit | None, ForecastFit | None]:
    """The model, and the forecaster it is when the notebook's model is a statsmodels
    forecaster: a fit given no input data (``results = SARIMAX(train, ...).fit()``), or no
    top-level fit at all. The model's input is then the forecaster's series."""
    model = _model(cells)
    if model is not None and model.fit_input is not None:
        return model, None
    forecast = find_forecast(cells, imports)
    if forecast is None or (model is not None and model.first_argument):
        return model, None
    return ModelFit(forecast.name, forecast.endog, forecast.cell, forecast.endog_source), forecast


def _drift_diagnostics(
    drift: Sequence[DriftMatch], version_bounds: Sequence[Bound]
) -> list[d.Diagnostic]:
    out: list[d.Diagnostic] = [
        d.ApiDrift(
            match.cell,
            line=match.line,
            api=match.api.id,
            used=match.api.shown,
            distribution=match.api.distribution,
            works=match.api.works,
            removed_in=match.api.removed_in,
            replacement=match.api.replacement,
        )
        for match in drift
    ]
    for bound in version_bounds:
        if bound.conflict:
            out.append(
                d.ConflictingVersionBounds(
                    bound.cells[0],
                    distribution=bound.distribution,
                    specifier=bound.specifier,
                    apis=bound.apis,
                )
            )
    return out


def stage_tag(cell: Cell) -> str | None:
    """The stage a cell's tags ask for: ``promote: stage=train`` (or ``promote:stage=train``)."""
    return _tag_stage(cell)


_TAG = re.compile(r"^promote:\s*(?:stage\s*=\s*)?(\w+)$")


def _tag_stage(cell: Cell) -> str | None:
    return tags_stage(cell.tags)


def tags_stage(tags: Iterable[str]) -> str | None:
    """The stage cell tags ask for (``stage_tag``), from the tags themselves."""
    for tag in tags:
        match = _TAG.match(tag.strip())
        if match:
            return match.group(1).lower()
    return None


def _heading(source: str) -> tuple[int, str]:
    """The first markdown heading of a cell: (level, text), or (0, "")."""
    for line in source.splitlines():
        match = re.match(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            return len(match.group(1)), match.group(2)
    return 0, ""


def _role(statements: Iterable[Statement]) -> str:
    statements = list(statements)
    kinds = {s.kind for s in statements}
    if not kinds:
        return "empty"
    if not kinds & {"code", "constant", "definition"}:
        return "imports" if "import" in kinds else "display"
    called = [
        name for s in statements if s.kind in {"code", "display"} for name in _called_names(s.node)
    ]
    for role, pattern in tables.ROLE_CALLS:
        if any(pattern.search(name) for name in called):
            return role
    if "code" in kinds:
        return "features"
    return "definitions" if "definition" in kinds else "config"


def _called_names(node: ast.AST) -> list[str]:
    return [called_name(inner) for inner in ast.walk(node) if isinstance(inner, ast.Call)]


def _execution_order(notebook: Notebook) -> list[d.Diagnostic]:
    out: list[d.Diagnostic] = []
    previous = 0
    for cell in notebook.code_cells:
        count = cell.execution_count
        if count is None:
            continue
        if count <= previous:
            out.append(d.OutOfOrderExecution(cell.index, count=count, previous=previous))
        previous = count
    return out


def _local_module_imports(
    cells: list[CellAnalysis], local_modules: frozenset[str]
) -> list[d.Diagnostic]:
    """P013 for the first import of each module that sits beside the notebook."""
    found: dict[str, d.Diagnostic] = {}
    for cell in cells:
        for stmt in cell.statements:
            node = stmt.node
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in local_modules and top not in found:
                    line = cell.line(node.lineno)
                    found[top] = d.LocalModule(cell.index, line=line, module=name)
    return list(found.values())


def _imports(
    cells: list[CellAnalysis], diagnostics: list[d.Diagnostic]
) -> dict[str, ImportBinding]:
    found: dict[str, ImportBinding] = {}
    for cell in cells:
        for stmt in cell.statements:
            node = stmt.node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    text = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                    found[bound] = ImportBinding(bound, text, alias.name.split(".")[0], cell.index)
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                for alias in node.names:
                    if alias.name == "*":
                        line = cell.line(node.lineno)
                        diagnostics.append(d.StarImport(cell.index, line=line, module=module))
                        found[f"*{module}"] = ImportBinding(
                            f"*{module}",
                            f"from {module} import *",
                            module.split(".")[0],
                            cell.index,
                        )
                        continue
                    bound = alias.asname or alias.name
                    text = f"from {module} import {alias.name}" + (
                        f" as {alias.asname}" if alias.asname else ""
                    )
                    found[bound] = ImportBinding(
                        bound, text, module.lstrip(".").split(".")[0], cell.index
                    )
    return found


def _constants(cells: list[CellAnalysis]) -> dict[str, int]:
    binds: dict[str, int] = {}
    for cell in cells:
        for stmt in cell.statements:
            for name in stmt.binds:
                binds[name] = binds.get(name, 0) + 1
    # A settings constant: assigned once, to a literal, in UPPER_CASE, in a cell of settings,
    # or under a name that says it is a secret (it becomes a required environment variable).
    return {
        stmt.binds[0]: cell.index
        for cell in cells
        for stmt in cell.statements
        if stmt.kind == "constant"
        and binds.get(stmt.binds[0]) == 1
        and (
            stmt.binds[0].isupper()
            or cell.role == "config"
            or tables.SECRET_NAME.search(stmt.binds[0])
        )
        and not _holds_nested_secret(stmt)
    }


def _holds_nested_secret(stmt: Statement) -> bool:
    """``CONFIG = {"password": "..."}``: not a setting; the credential inside becomes one."""
    value = getattr(stmt.node, "value", None)
    return any(found.node is not value for found in secret_literals(list(stmt.nodes)))


def _definitions(
    cells: list[CellAnalysis],
    imports: dict[str, ImportBinding],
    constants: dict[str, int],
    diagnostics: list[d.Diagnostic],
) -> dict[str, Definition]:
    raw: dict[str, tuple[int, frozenset[str]]] = {}
    at_definition: dict[str, frozenset[str]] = {}  # decorators, defaults, annotations, class body
    lines: dict[str, int] = {}
    for analysed in cells:
        for stmt in analysed.statements:
            node = stmt.node
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                raw[node.name] = (analysed.index, function_free_names(node))
                lines[node.name] = analysed.line(node.lineno)
                at_definition[node.name] = frozenset(stmt.reads) - BUILTINS
    # A definition is pure when everything it reads is an import, a constant or a pure definition.
    pure = set(raw)
    changed = True
    while changed:
        changed = False
        for name in sorted(pure):
            needs = raw[name][1] | at_definition[name]
            outside = [
                n for n in needs if n not in imports and n not in constants and n not in pure
            ]
            if outside:
                pure.discard(name)
                changed = True
    out: dict[str, Definition] = {}
    for name, (cell, free) in raw.items():
        out[name] = Definition(name, cell, free, name in pure)
        if name not in pure:
            variables = sorted(
                n for n in free if n not in imports and n not in constants and n not in raw
            )
            if variables:
                diagnostics.append(
                    d.FunctionReadsGlobal(cell, line=lines[name], function=name, name=variables[0])
                )
    return out


def _undefined(
    cells: list[CellAnalysis], imports: dict[str, ImportBinding], definitions: dict[str, Definition]
) -> list[d.Diagnostic]:
    """Names read before any cell binds them (hidden state) or only bound further down."""
    if any(name.startswith("*") for name in imports):
        return []  # a star import can bind anything
    bound_at = _first_binds(cells)
    seen: set[str] = set(BUILTINS) | set(definitions)
    out: list[d.Diagnostic] = []
    for cell in cells:
        for stmt in cell.statements:
            for name in _reads_when_run(stmt, definitions):
                if name in seen:
                    continue
                seen.add(name)  # report each name once
                later = bound_at.get(name)
                line = cell.line(_line_of(stmt.node, name))
                if later is None:
                    out.append(d.UndefinedName(cell.index, line=line, name=name))
                elif later > cell.index:
                    out.append(
                        d.UseBeforeDefinition(cell.index, line=line, name=name, defined_in=later)
                    )
            seen.update(stmt.binds)
    return out


def _first_binds(cells: list[CellAnalysis]) -> dict[str, int]:
    """Each name → the first cell that binds it."""
    bound_at: dict[str, int] = {}
    for cell in cells:
        if cell.syntax_error:  # not Python 3, but its assignments still bind when it runs
            for name in _guessed_binds(cell.source):
                bound_at.setdefault(name, cell.index)
        for stmt in cell.statements:
            for name in stmt.binds:
                bound_at.setdefault(name, cell.index)
    return bound_at


_GUESSED_BINDS = re.compile(
    r"^\s*(?:for\s+)?([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?:=(?!=)|\bin\b)"
    r"|^\s*(?:def|class)\s+([A-Za-z_]\w*)|^\s*import\s+(\w+)",
    re.MULTILINE,
)


def _guessed_binds(source: str) -> set[str]:
    """Names a cell that does not parse seems to bind (``x = ...``, ``for a, b in``, ``def f``)."""
    names: set[str] = set()
    for match in _GUESSED_BINDS.finditer(source):
        for group in match.groups():
            if group:
                names.update(part.strip() for part in group.split(","))
    return names


def _line_of(node: ast.stmt, name: str) -> int:
    """The first line of ``node`` that reads ``name`` (the statement's line if none does)."""
    lines = [
        n.lineno
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load | ast.Del)
    ]
    return min(lines, default=node.lineno)


def _reads_when_run(stmt: Statement, definitions: dict[str, Definition]) -> list[str]:
    """What a statement reads, including what the notebook functions it calls read."""
    reads = list(stmt.reads)
    for name in stmt.reads:
        definition = definitions.get(name)
        if definition is not None and not definition.pure:
            reads.extend(sorted(definition.free))
    return reads


def _model(cells: list[CellAnalysis]) -> ModelFit | None:
    """The fitted model: the last ``x.fit(X, ...)`` whose result is later asked to predict;
    else the last fitted on a target (``fit(X, y)``: a predictor, not a ``PCA().fit(X)``);
    else the last fit."""
    fits: list[tuple[ModelFit, str | None, bool]] = []  # the fit, its receiver, with a target
    predicted: set[str] = set()
    for cell in cells:
        for stmt in cell.kept():
            for node in stmt.nodes:
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr in {"predict", "predict_proba"} and isinstance(
                    node.func.value, ast.Name
                ):
                    predicted.add(node.func.value.id)
            fit = _fit_in(stmt.node)
            if fit is not None:
                name, fit_input, source, receiver, target = fit
                fits.append((ModelFit(name, fit_input, cell.index, source), receiver, target))
    loops = _torch_loops(cells)
    if not fits:
        return loops[-1] if loops else None
    # ``clr = clf.fit(X, y)`` then ``clf.predict(...)``: fit returns the estimator, so the
    # receiver is the same model under the name the notebook predicts with.
    preferred = [
        fit if fit.name in predicted else dataclasses.replace(fit, name=receiver or fit.name)
        for fit, receiver, _ in fits
        if fit.name in predicted or receiver in predicted
    ]
    if loops:  # a module trained by a loop is asked to predict in the loop itself
        preferred = sorted([*preferred, *loops], key=lambda fit: fit.cell)
    supervised = [fit for fit, _, target in fits if target]
    return (preferred or supervised or [fit for fit, _, _ in fits])[-1]


# ``torch.no_grad()``, ``torch.inference_mode()``: a call of the model inside one predicts.
_NO_GRAD = frozenset({"no_grad", "inference_mode"})


def _torch_loops(cells: Sequence[CellAnalysis]) -> list[ModelFit]:
    """Each module trained by a hand-written loop at the top level of a cell, in order.

    A loop trains when it calls ``x.backward()`` and ``optimizer.step()``; the model is the
    module whose ``parameters()`` that optimizer was made with (``torch.optim.SGD(params=
    model.parameters(), lr=0.01)``), else the one name the loop calls outside ``no_grad``
    on a name (``y_pred = model(X_train)``), and its input is what the loop calls it on.
    """
    optimizers: dict[str, str] = {}  # optimizer name → model whose parameters it steps
    found: list[ModelFit] = []
    for cell in cells:
        for stmt in cell.kept():
            node = stmt.node
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                owner = _parameters_owner(node.value)
                if isinstance(target, ast.Name) and owner:
                    optimizers[target.id] = owner
            if not isinstance(node, ast.For | ast.While):
                continue
            fit = _trained_in_loop(node, optimizers, cell.index)
            if fit is not None:
                found.append(fit)
    return found


def _parameters_owner(value: ast.expr) -> str:
    """``torch.optim.SGD(params=model.parameters(), lr=0.01)`` → "model"; else ""."""
    if not isinstance(value, ast.Call):
        return ""
    for argument in [*value.args[:1], *(k.value for k in value.keywords if k.arg == "params")]:
        if (
            isinstance(argument, ast.Call)
            and isinstance(argument.func, ast.Attribute)
            and argument.func.attr == "parameters"
            and isinstance(argument.func.value, ast.Name)
        ):
            return argument.func.value.id
    return ""


def _trained_in_loop(
    loop: ast.For | ast.While, optimizers: Mapping[str, str], cell: int
) -> ModelFit | None:
    """The module a training loop trains, and on what (``_torch_loops``); None if it is not
    one."""
    methods = {
        (node.func.value.id, node.func.attr)
        for node in ast.walk(loop)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }
    stepped = [name for name, method in methods if method == "step" and name in optimizers]
    if not any(method == "backward" for _, method in methods) or not any(
        method == "step" for _, method in methods
    ):
        return None
    calls = _calls_with_grad(loop.body)
    owners = {optimizers[name] for name in stepped}
    called = [(name, argument) for name, argument in calls if not owners or name in owners]
    if not called:
        return None
    name, argument = called[0]
    if isinstance(argument, ast.Name) and argument.id not in _loop_binds(loop):
        return ModelFit(name, argument.id, cell, framework="torch")
    if isinstance(argument, ast.Name):
        what = f"`{ast.unparse(loop.iter)}`" if isinstance(loop, ast.For) else "its loop"
        why = (
            f"`{name}` is trained on batches that the loop takes from {what} (a data "
            "loader, or a tensor computed inside the loop), and promote serves a module "
            "trained on one named 2-D float tensor"
        )
    else:
        why = (
            f"`{name}` is called on `{ast.unparse(argument)}` in its training loop, not on a "
            "named tensor, so promote cannot tell which input the service must accept"
        )
    return ModelFit(name, None, cell, framework="torch", unsupported=why)


def _calls_with_grad(body: Sequence[ast.stmt]) -> list[tuple[str, ast.expr]]:
    """``name(argument)`` calls of plain names, outside ``with torch.no_grad()`` blocks:
    (name, argument), in order."""
    out: list[tuple[str, ast.expr]] = []
    for stmt in body:
        if isinstance(stmt, ast.With) and any(
            isinstance(item.context_expr, ast.Call) and called_name(item.context_expr) in _NO_GRAD
            for item in stmt.items
        ):
            continue
        if isinstance(stmt, ast.For | ast.While | ast.If | ast.With | ast.Try):
            for inner in (stmt.body, getattr(stmt, "orelse", [])):
                out.extend(_calls_with_grad(inner))
            continue
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and len(node.args) == 1
                and not node.keywords
                and node.func.id not in BUILTINS
            ):
                out.append((node.func.id, node.args[0]))
    return out


def _loop_binds(loop: ast.For | ast.While) -> set[str]:
    """Names the loop binds: its targets, and every name assigned inside it."""
    return {
        n.id for n in ast.walk(loop) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def _fit_in(node: ast.stmt) -> tuple[str, str | None, str, str | None, bool] | None:
    """``model.fit(X, y)`` → ("model", "X", "X", "model", True); ``m = Est().fit(X)`` → ("m",
    "X", "X", None, False): the model's name, its input's name and source, the receiver's
    name, whether it is fitted on a target too."""
    value = node.value if isinstance(node, ast.Expr | ast.Assign) else None
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return None
    if value.func.attr not in {"fit", "fit_generator"}:
        return None
    first = value.args[0] if value.args else None
    fit_input = first.id if isinstance(first, ast.Name) else None
    first_source = ast.unparse(first) if first is not None else ""
    target = len(value.args) >= 2 or any(k.arg == "y" for k in value.keywords)
    receiver = value.func.value
    receiver_name = receiver.id if isinstance(receiver, ast.Name) else None
    if isinstance(node, ast.Assign):
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            return node.targets[0].id, fit_input, first_source, receiver_name, target
        return None
    if receiver_name is not None:
        return receiver_name, fit_input, first_source, receiver_name, target
    return None


def distribution(module: str, packages: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """The PyPI distribution that provides top-level ``module``; None for the standard library."""
    resolved = _distribution(module, packages)
    return resolved[0] if resolved else None
