"""Turn a cell's IPython syntax into plain Python with IPython's own transformer.

``TransformerManager`` rewrites magics, ``!cmd`` and ``?`` help into ``get_ipython()`` calls; this
module then decides, from the tables below, what each call becomes: dropped, unwrapped,
a dependency, or a diagnostic. Comments and the user's own lines are kept as written.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from IPython.core.inputtransformer2 import TransformerManager

from promote import diagnostics as d

__all__ = ["NormalizedCell", "normalize"]

# Line magics that only tune the interactive session: dropped silently.
SESSION_MAGICS = frozenset(
    {
        "matplotlib",
        "load_ext",
        "reload_ext",
        "unload_ext",
        "autoreload",
        "aimport",
        "config",
        "pinfo",
        "pinfo2",
        "psearch",
        "who",
        "whos",
        "who_ls",
        "pwd",
        "ls",
        "lsmagic",
        "magic",
        "precision",
        "pylab",
        "xmode",
        "history",
        "pdb",
        "debug",
        "reset",
        "clear",
        "notebook",
        "colors",
        "automagic",
        "autocall",
        "page",
        "pprint",
        "alias_magic",
        "timeit",
        "prun",
        "memit",
        "mprun",
        "watermark",
        "qtconsole",
        "connect_info",
        "sx",
        "sc",
        "tensorboard",
    }
)
# Cell magics whose body is ordinary Python: the body is kept, the magic dropped.
UNWRAPPED_CELL_MAGICS = frozenset({"time", "capture", "prun", "memit", "markdown_if"})
INSTALLERS = frozenset({"pip", "conda", "mamba"})
NETWORK_COMMANDS = frozenset({"wget", "curl", "kaggle", "gsutil", "aws", "gdown", "git"})
_AUTOMAGIC_INSTALL = re.compile(r"^(\s*)(pip|conda|mamba)(\s+install\b)", re.MULTILINE)


@dataclass(frozen=True)
class NormalizedCell:
    """Plain Python for one cell, what its magics asked for, and why anything was left out."""

    source: str
    requirements: tuple[str, ...] = ()
    diagnostics: tuple[d.Diagnostic, ...] = ()
    syntax_error: d.SyntaxErrorInCell | None = None
    tree: ast.Module | None = field(default=None, compare=False, repr=False)
    lines: tuple[int, ...] = ()  # line i+1 of ``source`` was line lines[i] of the cell as written

    def original_line(self, line: int) -> int:
        """The cell's own line number for line ``line`` (1-based) of the normalized source."""
        return _original(self.lines, line)


def _original(lines: tuple[int, ...], line: int) -> int:
    if 0 < line <= len(lines):
        return lines[line - 1]
    return line


@dataclass
class _Edits:
    cell: int
    requirements: list[str] = field(default_factory=list)
    diagnostics: list[d.Diagnostic] = field(default_factory=list)
    body_lines: list[int] | None = None  # set when a cell magic's body is kept: its line map


def normalize(source: str, cell: int) -> NormalizedCell:
    """Normalize the IPython source of code cell number ``cell`` (1-based, for messages)."""
    edits = _Edits(cell)
    text, origin = _normalize_text(source, edits)
    lines = tuple(origin)
    try:
        tree = ast.parse(text)
        # The compiler's own checks: `return`, `await` or `yield` outside a function, `break`
        # outside a loop, a late `from __future__`; the parser lets them through.
        with warnings.catch_warnings():  # `x is 1` and the like are the notebook's business
            warnings.simplefilter("ignore")
            compile(tree, f"<cell {cell}>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes, on early 3.11
        lineno = getattr(exc, "lineno", None)
        line = _original(lines, lineno) if lineno else 0
        detail = getattr(exc, "msg", None) or str(exc) or "syntax error"
        error = d.SyntaxErrorInCell(cell, detail=detail, line=line)
        return NormalizedCell(
            source=text,
            requirements=tuple(edits.requirements),
            diagnostics=(*edits.diagnostics, error),
            syntax_error=error,
            lines=lines,
        )
    return NormalizedCell(
        source=text,
        requirements=tuple(edits.requirements),
        diagnostics=tuple(edits.diagnostics),
        tree=tree,
        lines=lines,
    )


def _normalize_text(source: str, edits: _Edits) -> tuple[str, list[int]]:
    """Plain Python for ``source``, and for each of its lines the line of ``source`` it was."""
    source = _AUTOMAGIC_INSTALL.sub(r"\1%\2\3", source)
    try:
        with warnings.catch_warnings():  # IPython warns on "\x1e" and other odd line breaks
            warnings.simplefilter("ignore")
            text: str = TransformerManager().transform_cell(source)
    except (SyntaxError, ValueError, IndexError):
        return source, _identity(source)
    lines = text.splitlines(keepends=True)
    written = len(source.splitlines())
    origin = [min(i, max(written, 1)) for i in range(1, len(lines) + 1)]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text, origin
    replacements: list[tuple[int, int, str, list[int]]] = []
    _collect(tree.body, lines, origin, edits, replacements, depth=0)
    for start, end, new, new_origin in sorted(replacements, reverse=True):
        lines[start:end] = [new] if new else []
        origin[start:end] = new_origin
    return "".join(lines), origin


def _identity(source: str) -> list[int]:
    return list(range(1, len(source.splitlines()) + 1))


def _collect(
    body: list[ast.stmt],
    lines: list[str],
    origin: list[int],
    edits: _Edits,
    out: list[tuple[int, int, str, list[int]]],
    depth: int,
) -> None:
    for stmt in body:
        call = _ipython_call(stmt)
        if call is not None:
            method, args = call
            indent = re.match(r"\s*", lines[stmt.lineno - 1])
            pad = indent.group(0) if indent else ""
            edits.body_lines = None
            before = len(edits.diagnostics)
            new = _ACTIONS.get(method, _unknown_call)(args, edits, stmt)
            here = origin[stmt.lineno - 1]
            nested = edits.body_lines is not None  # lines counted from the body's first line
            edits.diagnostics[before:] = [
                replace(x, line=here if x.line is None else here + x.line if nested else x.line)
                for x in edits.diagnostics[before:]
            ]
            if new is None:
                new = f"{pad}pass\n" if depth else ""
            elif new:
                new = "".join(
                    f"{pad}{line}\n" if line.strip() else "\n" for line in new.splitlines()
                )
            count = new.count("\n")
            if edits.body_lines is not None:  # a cell magic's body starts on the next line
                new_origin = [here + line for line in edits.body_lines[:count]]
                new_origin += [here] * (count - len(new_origin))
            else:
                new_origin = [here] * count
            out.append((stmt.lineno - 1, stmt.end_lineno or stmt.lineno, new, new_origin))
            continue
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, name, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                _collect(inner, lines, origin, edits, out, depth + 1)
        for handler in getattr(stmt, "handlers", []) or []:
            _collect(handler.body, lines, origin, edits, out, depth + 1)


def _ipython_call(stmt: ast.stmt) -> tuple[str, list[str]] | None:
    """``get_ipython().method('a', 'b')`` as a statement (or assigned) → (method, args)."""
    value = stmt.value if isinstance(stmt, ast.Expr | ast.Assign) else None
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute):
        return None
    owner = value.func.value
    if not (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "get_ipython"
    ):
        return None
    args = [a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return value.func.attr, args


def _line_magic(args: list[str], edits: _Edits, stmt: ast.stmt) -> str | None:
    name, rest = ([*args, "", ""])[:2]
    if name in INSTALLERS:
        _install(rest, edits)
        return None
    if name == "time" and isinstance(stmt, ast.Expr):
        return rest  # `%time expr`: keep the expression
    if name == "run":
        edits.diagnostics.append(d.ExternalNotebook(edits.cell, target=rest.strip()))
        return None
    if name in {"cd", "chdir"}:
        edits.diagnostics.append(d.ChangesDirectory(edits.cell, command=f"%cd {rest}".strip()))
        return None
    if name in {"sx", "system"}:
        _shell(rest, edits)
        return None
    if name not in SESSION_MAGICS:
        edits.diagnostics.append(d.UnknownMagic(edits.cell, magic=name))
    return None


def _cell_magic(args: list[str], edits: _Edits, stmt: ast.stmt) -> str | None:
    del stmt
    name, line, body = ([*args, "", "", ""])[:3]
    if name in UNWRAPPED_CELL_MAGICS:
        text, origin = _normalize_text(body, edits)
        edits.body_lines = origin
        return text.rstrip("\n") or None
    if name == "writefile":
        edits.diagnostics.append(d.WritesFile(edits.cell, path=line.split()[-1] if line else ""))
    elif name in {"bash", "sh", "script", "system"}:
        for command in body.splitlines():
            if command.strip():
                _shell(command.strip(), edits)
    else:
        edits.diagnostics.append(d.CellMagic(edits.cell, magic=name))
    return None


def _system(args: list[str], edits: _Edits, stmt: ast.stmt) -> str | None:
    del stmt
    _shell(args[0] if args else "", edits)
    return None


def _unknown_call(args: list[str], edits: _Edits, stmt: ast.stmt) -> str | None:
    del args, stmt
    edits.diagnostics.append(d.UnknownMagic(edits.cell, magic="get_ipython"))
    return None


def _shell(command: str, edits: _Edits) -> None:
    words = _split(command)
    program = words[0] if words else ""
    if program in INSTALLERS or words[:3] == ["python", "-m", "pip"]:
        _install(command.split("install", 1)[1] if "install" in command else "", edits)
    elif program in NETWORK_COMMANDS:
        edits.diagnostics.append(d.NetworkAccess(edits.cell, command=f"!{command}"))
    elif program == "cd":
        edits.diagnostics.append(d.ChangesDirectory(edits.cell, command=f"!{command}"))
    else:
        edits.diagnostics.append(d.ShellCommand(edits.cell, command=command))


def _install(arguments: str, edits: _Edits) -> None:
    words = _split(arguments)
    if words and words[0] == "install":
        words = words[1:]
    requirements: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word.startswith("-"):
            skip_next = word in {"-r", "-c", "-e", "--index-url", "-i", "--extra-index-url", "-f"}
            continue
        if word.startswith(("{", "$")):  # {sys.executable} and friends
            continue
        requirements.append(word)
    if requirements:
        edits.requirements.extend(requirements)
        edits.diagnostics.append(d.PipInstall(edits.cell, requirements=tuple(requirements)))


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


_ACTIONS: dict[str, Callable[[list[str], _Edits, ast.stmt], str | None]] = {
    "run_line_magic": _line_magic,
    "run_cell_magic": _cell_magic,
    "system": _system,
    "getoutput": _system,
}
