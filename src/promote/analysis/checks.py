"""Whole-notebook checks over analysed cells: paths, secrets, seeds, redefinitions, writes, network.

Each check reads the statements of the cells (and, for secrets, the saved outputs) and returns
diagnostics; none of them touches a file or runs code. What varies (which calls reach the
network, which estimators are random, what a token looks like) lives in ``tables``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from promote import diagnostics as d
from promote.analysis import tables
from promote.analysis.secrets import SecretLiteral, looks_secret, secret_kind, secret_literals
from promote.analysis.statements import Statement, called_name
from promote.notebook import Cell, Notebook

__all__ = ["Located", "movable_secret", "qualified_names", "run_checks"]


class Located(Protocol):
    """What the checks need of an analysed cell (``CellAnalysis`` provides it)."""

    @property
    def index(self) -> int: ...

    @property
    def statements(self) -> tuple[Statement, ...]: ...

    def line(self, line: int) -> int: ...


@dataclass(frozen=True)
class _Call:
    cell: Located
    node: ast.Call
    name: str  # qualified where the base is an import: "pandas.read_csv", else "?.get" or "?().get"
    display: bool  # inside a display statement (left out of the package)

    @property
    def line(self) -> int:
        return self.cell.line(self.node.lineno)

    @property
    def last(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def run_checks(notebook: Notebook, cells: Sequence[Located]) -> list[d.Diagnostic]:
    """Every whole-notebook check, in a stable order."""
    walks = _Walks()
    aliases = qualified_names(cells)
    calls = list(_calls(cells, aliases, walks))
    strings = _string_names(cells)
    out: list[d.Diagnostic] = []
    out.extend(_never_executed(notebook))
    out.extend(_paths(cells, walks))
    out.extend(_code_secrets(cells, walks))
    out.extend(_output_secrets(notebook))
    out.extend(_network(calls, strings))
    out.extend(_writes(calls))
    out.extend(_seeds(calls))
    out.extend(_redefinitions(cells))
    return out


class _Walks:
    """Every node under a statement, walked once and shared by the checks."""

    def __init__(self) -> None:
        self._nodes: dict[int, list[ast.AST]] = {}

    def of(self, node: ast.AST) -> list[ast.AST]:
        found = self._nodes.get(id(node))
        if found is None:
            found = self._nodes[id(node)] = list(ast.walk(node))
        return found


# -- names ---------------------------------------------------------------------------------------
def qualified_names(cells: Sequence[Located]) -> dict[str, str]:
    """Each name an import binds → what it names: ``np`` → ``numpy``."""
    aliases: dict[str, str] = {}
    for cell in cells:
        for stmt in cell.statements:
            for node in stmt.nodes:
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.asname:
                            aliases[alias.asname] = alias.name
                        else:
                            top = alias.name.split(".")[0]
                            aliases[top] = top
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    for alias in node.names:
                        if alias.name != "*":
                            aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def dotted_name(node: ast.expr, aliases: dict[str, str]) -> str:
    """``a.b.c`` with its base qualified (``np.random.seed`` → ``numpy.random.seed``); a base
    that is a call reads ``?()`` (``f().x``), any other ``?`` (``d["k"].x``)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(aliases.get(node.id, node.id))
    elif isinstance(node, ast.Call):
        parts.append("?()")
    else:
        parts.append("?")
    return ".".join(reversed(parts))


def _calls(cells: Sequence[Located], aliases: dict[str, str], walks: _Walks) -> Iterator[_Call]:
    for cell in cells:
        for stmt in cell.statements:
            if stmt.kind == "import":
                continue
            for node in walks.of(stmt.node):
                if isinstance(node, ast.Call):
                    yield _Call(cell, node, dotted_name(node.func, aliases), stmt.kind == "display")


def _string_names(cells: Sequence[Located]) -> dict[str, str]:
    """Names assigned a string literal at the top level (``URL = "https://..."``)."""
    found: dict[str, str] = {}
    for cell in cells:
        for stmt in cell.statements:
            node = stmt.node
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def _strings(nodes: list[ast.AST]) -> Iterator[tuple[int, str]]:
    """(line, value) of each string literal among ``nodes``."""
    for inner in nodes:
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            yield inner.lineno, inner.value


# -- never executed ------------------------------------------------------------------------------
def _never_executed(notebook: Notebook) -> list[d.Diagnostic]:
    code = [c for c in notebook.code_cells if c.source.strip()]
    if not any(c.execution_count is not None for c in code):
        return []  # saved without running: nothing to compare with
    return [d.NeverExecuted(c.index) for c in code if c.execution_count is None]


# -- paths ---------------------------------------------------------------------------------------
def _paths(cells: Sequence[Located], walks: _Walks) -> list[d.Diagnostic]:
    out: list[d.Diagnostic] = []
    for cell in cells:
        seen: set[str] = set()
        for stmt in cell.statements:
            if stmt.kind == "display":
                continue
            for lineno, value in _strings(walks.of(stmt.node)):
                if value in seen or not _is_fixed_path(value):
                    continue
                seen.add(value)
                out.append(d.HardcodedPath(cell.index, line=cell.line(lineno), path=value))
    return out


def _is_fixed_path(value: str) -> bool:
    if len(value) > 260 or "\n" in value or value.startswith(tables.SYSTEM_PATHS):
        return False
    if not tables.ABSOLUTE_PATH.match(value):
        return False
    return not (value.startswith("/") and " " in value.split("/")[1])  # "/ 2": prose


# -- secrets -------------------------------------------------------------------------------------
def _code_secrets(cells: Sequence[Located], walks: _Walks) -> list[d.Diagnostic]:
    """Credentials in the code. One the generated project can read from a required environment
    variable instead is a warning (P026); one it cannot (inside a function or class the notebook
    defines, which is moved verbatim, or part of an f-string) blocks promotion (P015, P021)."""
    out: list[d.Diagnostic] = []
    for cell in cells:
        for stmt in cell.statements:
            lines: set[int] = set()  # one finding per line
            for found in secret_literals(walks.of(stmt.node)):
                lineno = found.node.lineno
                if lineno in lines:
                    continue
                lines.add(lineno)
                line = cell.line(lineno)
                if movable_secret(stmt, found):
                    direct = stmt.kind == "constant" and found.node is getattr(
                        stmt.node, "value", None
                    )
                    name = stmt.binds[0] if direct else found.name
                    out.append(d.SecretSetting(cell.index, line=line, name=name))
                elif found.name.endswith("_url") and "connection string" in found.kind:
                    scheme = found.name.removesuffix("_url")
                    out.append(
                        d.ConnectionStringWithCredentials(
                            cell.index, line=line, name=scheme, scheme=scheme
                        )
                    )
                else:
                    out.append(d.HardcodedSecret(cell.index, line=line, name=found.name))
    return out


def movable_secret(stmt: Statement, found: SecretLiteral) -> bool:
    """Whether promote can replace the literal with a setting read from the environment: not
    inside a definition (moved verbatim) or an f-string."""
    return stmt.kind != "definition" and not found.in_fstring


_OUTPUT_SCAN_CHARS = 200_000  # detect-secrets reads this much of a cell's outputs; our patterns all


def _output_secrets(notebook: Notebook) -> list[d.Diagnostic]:
    out: list[d.Diagnostic] = []
    for cell in notebook.code_cells:
        text = "\n".join(_output_text(cell))
        if not text:
            continue
        kind = secret_kind(text[:_OUTPUT_SCAN_CHARS])
        kinds = [kind] if kind else []
        kinds += [kind for kind, pattern in tables.SECRET_PATTERNS if pattern.search(text)]
        for match in tables.SECRET_ASSIGNMENT.finditer(text):
            if looks_secret(match.group(2)):
                kinds.append(f"a {match.group(1).lower()}")
                break
        if kinds:
            out.append(d.SecretInOutput(cell.index, kind=kinds[0]))
    return out


def _output_text(cell: Cell) -> Iterator[str]:
    for output in cell.outputs:
        yield _text(output.get("text"))
        data: Any = output.get("data") or {}
        if isinstance(data, dict):
            yield _text(data.get("text/plain"))
        yield _text(output.get("traceback"))


def _text(value: object) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


# -- network -------------------------------------------------------------------------------------
def _network(calls: list[_Call], strings: dict[str, str]) -> list[d.Diagnostic]:
    out: list[d.Diagnostic] = []
    for call in calls:  # a URL shown in a display statement is not read; an API call is made
        if _reaches_network(call) or (not call.display and _reads_url(call, strings)):
            out.append(d.NetworkAccess(call.cell.index, line=call.line, command=_short(call)))
    return out


def _reaches_network(call: _Call) -> bool:
    name = call.name
    if name.startswith(tuple(tables.NETWORK_EXCLUDED)):
        return False
    if name in tables.NETWORK_CALLS or name.startswith(tables.NETWORK_PREFIXES):
        return True
    if call.last in tables.NETWORK_METHODS:
        return True
    return name.startswith("torchvision.datasets.") and any(
        k.arg == "download" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.node.keywords
    )


def _reads_url(call: _Call, strings: dict[str, str]) -> bool:
    for arg in [*call.node.args[:1], *(k.value for k in call.node.keywords)]:
        value = arg.value if isinstance(arg, ast.Constant) else None
        if isinstance(arg, ast.Name):
            value = strings.get(arg.id)
        if isinstance(value, str) and value.startswith(tables.URL_PREFIXES):
            return True
    return False


def _short(call: _Call) -> str:
    text = ast.unparse(call.node)
    return text if len(text) <= 80 else text[:77] + "..."


# -- file writes ---------------------------------------------------------------------------------
def _writes(calls: list[_Call]) -> list[d.Diagnostic]:
    out: list[d.Diagnostic] = []
    lines: set[tuple[int, int]] = set()  # `pickle.dump(m, open(p, "wb"))` is one write
    for call in calls:
        if call.display or (call.cell.index, call.line) in lines or not _writes_file(call):
            continue
        lines.add((call.cell.index, call.line))
        out.append(d.WritesFileAtRunTime(call.cell.index, line=call.line, call=_short(call)))
    return out


def _writes_file(call: _Call) -> bool:
    node = call.node
    if call.name in tables.FILE_WRITE_FUNCTIONS:
        return True
    if call.name in {"open", "io.open", "codecs.open"}:
        mode = node.args[1] if len(node.args) > 1 else None
        mode = next((k.value for k in node.keywords if k.arg == "mode"), mode)
        return (
            isinstance(mode, ast.Constant)
            and isinstance(mode.value, str)
            and bool(tables.OPEN_WRITE_MODES.search(mode.value))
        )
    if not isinstance(node.func, ast.Attribute):
        return False
    method = node.func.attr
    if method in tables.FILE_WRITE_METHODS:
        position, keyword = tables.FILE_WRITE_METHODS[method]
        return (
            position < 0
            or len(node.args) > position
            or any(k.arg == keyword for k in node.keywords)
        )
    if method in {"save", "dump"}:  # model.save("m.h5"), img.save(path), pickler.dump(obj, fh)
        return bool(node.args) and not call.name.startswith(("numpy.random", "?.", "?()."))
    return False


# -- seeds ---------------------------------------------------------------------------------------
def _seeds(calls: list[_Call]) -> list[d.Diagnostic]:
    if not any(call.last in tables.TRAINING_CALLS for call in calls):
        return []
    seeded: set[str] = set()
    for call in calls:
        families = tables.SEED_CALLS.get(call.name) or tables.SEED_CALLS.get(f"*.{call.last}")
        if families:
            seeded |= families
        elif call.name in {"numpy.random.default_rng", "numpy.random.RandomState"} and (
            call.node.args or call.node.keywords
        ):
            seeded.add("numpy")
    out: list[d.Diagnostic] = []
    first_use: dict[str, _Call] = {}
    for call in calls:
        if call.display:
            continue
        family = _draws(call)
        if family and family not in seeded:
            first_use.setdefault(family, call)
        if "sklearn" not in seeded and _unseeded_estimator(call):
            out.append(
                d.MissingSeed(
                    call.cell.index,
                    line=call.line,
                    call=call.last,
                    fix=f"Pass random_state=SEED to {call.last}",
                )
            )
    for family, call in first_use.items():
        out.append(
            d.MissingSeed(
                call.cell.index, line=call.line, call=family, fix=tables.SEED_FIXES[family]
            )
        )
    return out


def _draws(call: _Call) -> str | None:
    name = call.name
    if name in tables.NOT_DRAWS:
        if name == "numpy.random.default_rng" and not (call.node.args or call.node.keywords):
            return "numpy"
        return None
    for prefix, family in tables.RANDOM_USES:
        if name.startswith(prefix):
            return family
    return None


def _unseeded_estimator(call: _Call) -> bool:
    node = call.node
    keywords = {k.arg for k in node.keywords}
    if "random_state" in keywords or None in keywords:  # None: **kwargs may carry it
        return False
    if call.last in tables.STOCHASTIC_ESTIMATORS:
        return not any(
            k.arg == "shuffle" and isinstance(k.value, ast.Constant) and k.value.value is False
            for k in node.keywords
        )
    if call.last in tables.SHUFFLING_SPLITTERS:
        return any(
            k.arg == "shuffle" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
    return False


# -- redefinitions -------------------------------------------------------------------------------
def _redefinitions(cells: Sequence[Located]) -> list[d.Diagnostic]:
    """A later cell binds a name to a different kind of thing (or redefines a function)."""
    known: dict[str, tuple[str, int, str]] = {}  # name → (kind, cell, dump of a definition)
    reported: set[str] = set()
    out: list[d.Diagnostic] = []
    for cell in cells:
        for stmt in cell.statements:
            for name, kind, body in _bound_kinds(stmt.node):
                before = known.get(name)
                known[name] = (kind, cell.index, body)
                if before is None or name in reported or before[1] == cell.index:
                    continue
                was, first, old_body = before
                changed = was != kind and "" not in (was, kind)
                redefined = was == kind and kind in {"a function", "a class"} and old_body != body
                if changed or redefined:
                    reported.add(name)
                    out.append(
                        d.Redefinition(
                            cell.index,
                            line=cell.line(stmt.node.lineno),
                            name=name,
                            was=was,
                            now=kind,
                            first=first,
                        )
                    )
    return out


def _bound_kinds(node: ast.stmt) -> Iterator[tuple[str, str, str]]:
    """(name, kind, body) for what a top-level statement binds; kind "" when unknown."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        yield node.name, "a function", ast.dump(node)
    elif isinstance(node, ast.ClassDef):
        yield node.name, "a class", ast.dump(node)
    elif isinstance(node, ast.Import | ast.ImportFrom):
        for alias in node.names:
            if alias.name != "*":
                yield (alias.asname or alias.name).split(".")[0], "an import", ""
    elif isinstance(node, ast.Assign):
        kind = _value_kind(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id != "_":
                yield target.id, kind, ""


def _value_kind(value: ast.expr) -> str:
    if isinstance(value, ast.Constant):
        if isinstance(value.value, bool) or value.value is None:
            return ""  # flags and "not yet" markers are routinely rebound
        if isinstance(value.value, int | float):
            return "a number"
        if isinstance(value.value, str):
            return "a string"
        return ""
    if isinstance(value, ast.Lambda):
        return "a function"
    if isinstance(value, ast.Call):
        return tables.RESULT_KINDS.get(called_name(value), "")
    return ""
