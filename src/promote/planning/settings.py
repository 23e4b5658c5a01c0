"""The notebook's constants as fields of one typed settings object, and the code that reads them.

A constant such as ``TEST_SIZE = 0.2`` becomes the field ``test_size: float = 0.2`` of the
generated ``Settings`` (pydantic-settings: overridable by environment variables and a
``settings.toml``), and stage code reads ``settings.test_size`` from a ``settings`` parameter
instead of a global. A secret becomes a required ``SecretStr`` field with no default, so its value
never reaches the generated project. A constant that a function defined in the notebook reads
stays a plain module-level constant: that function is moved verbatim and keeps reading it.

Pure: source text in, source text out.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from promote.analysis.statements import source_lines

__all__ = [
    "InlineLiteral",
    "Setting",
    "inline_literals",
    "make_setting",
    "name_inline",
    "read_settings",
]

# Attributes of pydantic's BaseSettings that a field must not shadow.
_RESERVED = frozenset(
    {
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "settings_customise_sources",
        "update_forward_refs",
        "validate",
    }
)


@dataclass(frozen=True)
class Setting:
    """One constant of the notebook and the settings field it becomes."""

    name: str  # as the notebook wrote it, e.g. TEST_SIZE
    field: str  # the attribute of Settings, e.g. test_size
    annotation: str  # e.g. float, list[str], SecretStr
    default: str  # the value's source text (comments kept); empty for a required secret
    comments: tuple[str, ...]  # comment lines written above the constant
    trailing: str  # a comment after the value on its last line, with its "#"
    secret: bool = False
    module_level: bool = False  # read by a notebook-defined function: stays a plain constant
    source: str = ""  # the statement as the notebook wrote it (for module-level constants)

    @property
    def expression(self) -> str:
        """What stage code writes where the notebook wrote the constant's name."""
        value = f"settings.{self.field}"
        return f"{value}.get_secret_value()" if self.secret else value


def make_setting(
    name: str, lines: list[str], start: int, node: ast.stmt, *, secret: bool, taken: set[str]
) -> Setting:
    """The setting for the constant ``name`` assigned by ``node``.

    ``lines`` are the cell's source lines and ``start`` the 0-based first line of the statement,
    comments above it included. ``taken`` holds the field names given so far (updated).
    """
    assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
    first = node.lineno - 1
    comments = tuple(line.rstrip() for line in lines[start:first] if line.strip())
    value = node.value
    default = _segment(lines, value)
    trailing = _trailing_comment(lines[(node.end_lineno or node.lineno) - 1], value)
    if isinstance(node, ast.AnnAssign):
        annotation = _segment(lines, node.annotation)
    else:
        annotation = literal_type(ast.literal_eval(value))
    source = "\n".join(lines[start : node.end_lineno or node.lineno])
    field = field_name(name, taken)
    if secret:
        return Setting(name, field, "SecretStr", "", comments, "", secret=True, source="")
    return Setting(name, field, annotation, default, comments, trailing, source=source)


def literal_type(value: object) -> str:
    """A type annotation for a Python literal: ``0.2`` → ``float``, ``["a"]`` → ``list[str]``."""
    if value is None:
        return "Any"
    if isinstance(value, bool | int | float | complex | str | bytes):
        return type(value).__name__
    if isinstance(value, list | set | frozenset):
        return f"{type(value).__name__}[{_common(value)}]"
    if isinstance(value, tuple):
        return f"tuple[{_common(value)}, ...]"
    if isinstance(value, dict):
        return f"dict[{_common(value.keys())}, {_common(value.values())}]"
    return "Any"


def read_settings(body: str, settings: Mapping[str, Setting], parameter: str) -> str:
    """``body`` with each read of a setting's constant replaced by ``<parameter>.<field>``.

    A name the body also binds (or that sits where positions cannot be trusted, as inside an
    f-string on Python 3.11) is read once at the top instead: ``TEST_SIZE = settings.test_size``.
    """
    try:
        tree = ast.parse(body)
    except SyntaxError:  # not expected: bodies are made of parsed statements
        return _aliases(sorted(settings), settings, parameter) + body
    lines = source_lines(body)
    edits: list[tuple[int, int, int, str]] = []
    aliased: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in settings:
            if not isinstance(node.ctx, ast.Load):
                aliased.add(node.id)
                continue
            raw = lines[node.lineno - 1].encode()
            if raw[node.col_offset : node.end_col_offset] != node.id.encode():
                aliased.add(node.id)
                continue
            expression = settings[node.id].expression.replace("settings.", f"{parameter}.", 1)
            edits.append((node.lineno - 1, node.col_offset, node.end_col_offset or 0, expression))
        elif isinstance(node, ast.arg) and node.arg in settings:
            aliased.add(node.arg)
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name in settings
        ):
            aliased.add(node.name)
    edits = [e for e in edits if _name_at(lines, e) not in aliased]
    for line_no, start, end, new in sorted(edits, reverse=True):
        raw = lines[line_no].encode()
        lines[line_no] = (raw[:start] + new.encode() + raw[end:]).decode()
    return _aliases(sorted(aliased), settings, parameter) + "\n".join(lines)


def _name_at(lines: list[str], edit: tuple[int, int, int, str]) -> str:
    line_no, start, end, _ = edit
    return lines[line_no].encode()[start:end].decode()


def _aliases(names: Iterable[str], settings: Mapping[str, Setting], parameter: str) -> str:
    return "".join(
        f"{name} = {settings[name].expression.replace('settings.', f'{parameter}.', 1)}\n"
        for name in names
    )


def _common(values: Iterable[object]) -> str:
    kinds = {literal_type(v) for v in values}
    if kinds == {"int", "float"}:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    return "Any"


def field_name(name: str, taken: set[str]) -> str:
    """A valid, unused settings field name for ``name`` (``TEST_SIZE`` → ``test_size``)."""
    field = name.lower() if name.isupper() else name
    field = field.lstrip("_") or "value"
    if not field.isidentifier():
        field = f"setting_{field}"
    if keyword.iskeyword(field) or field in _RESERVED or field.startswith("model_"):
        field += "_"
    base, number = field, 2
    while field in taken:
        field, number = f"{base}_{number}", number + 1
    taken.add(field)
    return field


def _segment(lines: list[str], node: ast.expr) -> str:
    """The exact source of ``node`` (UTF-8 column offsets), over one or several lines."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    end = node.end_col_offset or 0
    if first == last:
        return lines[first].encode()[node.col_offset : end].decode()
    parts = [lines[first].encode()[node.col_offset :].decode()]
    parts.extend(lines[first + 1 : last])
    parts.append(lines[last].encode()[:end].decode())
    return "\n".join(parts)


def _trailing_comment(line: str, value: ast.expr) -> str:
    rest = line.encode()[value.end_col_offset or 0 :].decode().strip()
    return rest if rest.startswith("#") else ""


@dataclass(frozen=True)
class InlineLiteral:
    """A literal keyword argument that is a setting: ``LogisticRegression(max_iter=5000)``."""

    cell: int
    line: int  # 0-based line in the cell's source
    start: int  # UTF-8 column offsets of the value
    end: int
    keyword: str
    callee: str  # the called name's last part, e.g. LogisticRegression
    value: str  # the value's source text


def inline_literals(
    cell: int, lines: list[str], statements: Iterable[ast.stmt]
) -> list[InlineLiteral]:
    """Literal values of setting keywords (``tables.SETTING_KEYWORDS``) in calls of ``statements``.

    Only one-line numbers, strings, booleans and tuples of them: values a user would tune.
    """
    from promote.analysis.tables import SETTING_KEYWORDS

    found = []
    for statement in statements:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            callee = _callee(node.func)
            for keyword_node in node.keywords:
                value = keyword_node.value
                if (
                    keyword_node.arg not in SETTING_KEYWORDS
                    or value.lineno != value.end_lineno
                    or not _is_tunable(value)
                ):
                    continue
                text = _segment(lines, value)
                found.append(
                    InlineLiteral(
                        cell,
                        value.lineno - 1,
                        value.col_offset,
                        value.end_col_offset or 0,
                        str(keyword_node.arg),
                        callee,
                        text,
                    )
                )
    return found


def name_inline(
    literals: list[InlineLiteral], taken: set[str]
) -> list[tuple[InlineLiteral, Setting]]:
    """A setting for each literal; equal values share one.

    A keyword's most frequent value is one field named after the keyword (``random_state``, for
    every ``random_state=42``); its other values, and cryptic keywords (``C``) or names already
    taken, are named after the call too (``decision_tree_classifier_max_depth``), one field per
    call and value. ``taken`` is updated.
    """
    counts: dict[str, dict[str, int]] = {}
    for literal in literals:
        by_value = counts.setdefault(literal.keyword, {})
        value = _value_key(literal)
        by_value[value] = by_value.get(value, 0) + 1
    shared: dict[tuple[str, ...], Setting] = {}
    out = []
    for literal in literals:
        keyword, plain, value = literal.keyword, literal.keyword.lower(), _value_key(literal)
        frequent = max(counts[keyword].items(), key=lambda item: (item[1], item[0] == value))[0]
        plain_ok = len(plain) > 2 and plain not in _RESERVED
        if value == frequent and plain_ok and ((keyword, value) in shared or plain not in taken):
            key: tuple[str, ...] = (keyword, value)
            name = plain
        else:
            key = (literal.callee, keyword, value)
            name = f"{_snake(literal.callee)}_{plain}".strip("_")
        if key not in shared:
            shared[key] = Setting(
                name="",
                field=field_name(name, taken),
                annotation=literal_type(ast.literal_eval(literal.value)),
                default=literal.value,
                comments=(),
                trailing=f"# {literal.callee}({keyword}=...), cell {literal.cell}",
            )
        out.append((literal, shared[key]))
    return out


def _value_key(literal: InlineLiteral) -> str:
    return repr(ast.literal_eval(literal.value))


def _callee(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _snake(name: str) -> str:
    """``LogisticRegression`` → ``logistic_regression``; ``XGBClassifier`` → ``xgb_classifier``."""
    out = []
    for index, char in enumerate(name):
        previous = name[index - 1] if index else ""
        following = name[index + 1] if index + 1 < len(name) else ""
        if char.isupper() and index and (previous.islower() or following.islower()):
            out.append("_")
        out.append(char.lower())
    return "".join(out).replace("__", "_")


def _is_tunable(node: ast.expr) -> bool:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    if isinstance(value, tuple):
        return bool(value) and all(isinstance(v, int | float) for v in value)
    return value is not None and isinstance(value, bool | int | float | str)
