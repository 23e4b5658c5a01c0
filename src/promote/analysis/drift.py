"""API drift: calls that work only with some versions of a library, matched statically.

The knowledge is data, not code: ``promote/data/api_drift.toml`` lists removed or changed APIs,
each with what to match, the versions it works with (a PEP 440 specifier), and its modern
replacement. ``find_drift`` walks the analysed cells once and reports each match; ``bounds``
intersects the ranges of the matches per distribution.

What an entry can match (``match``):

- ``import``: an import of a module path or below it (``sklearn.externals.joblib``);
- ``name``: a reference to a qualified name (``numpy.float``, ``pandas.datetime``), by attribute
  access or by import;
- ``call``: a call of a qualified name, with ``keyword`` present or its value (or the argument at
  ``position``) among ``values``; with ``grid = true`` a dict literal ``{"criterion": ["mse"]}``
  (a parameter grid) matches too;
- ``method``: a call whose dotted name ends with ``name`` (``.iteritems``,
  ``.label.set_fontsize``), with the same ``keyword``/``values``/``position`` conditions, or
  ``min_args`` positional arguments, optionally only on objects made by one of ``receivers``,
  or (``chained = true``) only on a selection such as ``df["a"]``;
- ``attribute``: an attribute read (``.grid_scores_``), optionally only on objects made by one of
  ``receivers`` (``rfecv = RFECV(...)`` then ``rfecv.grid_scores_``).

An entry matches only in a notebook that imports its ``module``, so a ``.ix`` in a notebook that
never imports pandas is not pandas' ``.ix``.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from promote.analysis.checks import Located, dotted_name, qualified_names

__all__ = [
    "AbiRule",
    "Bound",
    "DriftApi",
    "DriftMatch",
    "VerifyEnv",
    "bounds",
    "find_drift",
    "load_abi_rules",
    "load_envs",
    "load_table",
]

MATCH_KINDS = frozenset({"import", "name", "call", "method", "attribute"})


@dataclass(frozen=True)
class DriftApi:
    """One removed or changed API, as the table describes it."""

    id: str
    distribution: str
    module: str  # the top-level module a notebook imports to use it
    match: str
    name: str  # what to match (see the module docstring); several in ``names``
    works: str  # PEP 440 specifier of the versions in which the notebook's use works
    removed_in: str
    replacement: str  # the modern way, in one line
    example: str  # a tiny snippet that uses the old API
    modern: str  # the same snippet rewritten for current versions
    source: str  # where the fact was checked
    names: tuple[str, ...] = ()
    keyword: str = ""
    values: tuple[Any, ...] = ()
    position: int | None = None
    min_args: int = 0
    grid: bool = False
    receivers: tuple[str, ...] = ()
    chained: bool = False  # only on a selection: ``df["a"].fillna(0, inplace=True)``
    verify: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def specifier(self) -> SpecifierSet:
        return SpecifierSet(self.works)

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, *self.names)

    @property
    def shown(self) -> str:
        """How a finding names the old use: ``DecisionTreeRegressor(criterion="mse")``."""
        short = self.name.rsplit(".", 1)[-1] if self.match != "import" else self.name
        if self.match in {"call", "method"}:
            prefix = "." if self.match == "method" and not self.name.startswith(".") else ""
            if self.keyword and self.values:
                return f"{prefix}{short}({self.keyword}={self.values[0]!r})"
            if self.keyword:
                return f"{prefix}{short}({self.keyword}=...)"
            if self.values:
                return f"{prefix}{short}({self.values[0]!r})"
            return f"{prefix}{short}(...)"
        if self.match == "attribute":
            return f".{short.lstrip('.')}"
        if self.match == "import":
            return f"import of {short}"
        return self.name


@dataclass(frozen=True)
class DriftMatch:
    """A use of a drifted API in a cell."""

    api: DriftApi
    cell: int
    line: int


@dataclass(frozen=True)
class Bound:
    """The versions of one distribution the notebook's drifted calls work with."""

    distribution: str
    specifier: str  # the intersection, e.g. "<1.2" or ">=1.0,<1.2"
    apis: tuple[str, ...]  # ids of the entries behind it
    cells: tuple[int, ...]
    conflict: bool = False  # no version the table knows satisfies every entry


@dataclass(frozen=True)
class VerifyEnv:
    """An environment the table's facts were checked in: a Python and exact requirements."""

    name: str
    python: str
    requirements: tuple[str, ...]

    def pinned(self, distribution: str) -> str | None:
        """The exact version of ``distribution`` in this environment, if it pins one."""
        for requirement in self.requirements:
            name, _, version = requirement.partition("==")
            if _normal(name) == _normal(distribution) and version:
                return version.strip()
        return None


@dataclass(frozen=True)
class AbiRule:
    """Versions of a compiled distribution that need another pinned too (``numpy<2``)."""

    distribution: str
    versions: str
    requires: str
    source: str


@functools.cache
def load_abi_rules() -> tuple[AbiRule, ...]:
    """The table's ``[[abi]]`` rules."""
    return tuple(
        AbiRule(r["distribution"], r["versions"], r["requires"], r["source"])
        for r in tomllib.loads(_text()).get("abi", [])
    )


@functools.cache
def _text() -> str:
    return importlib.resources.files("promote").joinpath("data/api_drift.toml").read_text("utf-8")


@functools.cache
def load_table() -> tuple[DriftApi, ...]:
    """The entries of ``promote/data/api_drift.toml``, validated."""
    return parse_table(_text())


@functools.cache
def load_envs() -> dict[str, VerifyEnv]:
    """The table's verification environments, by name."""
    return parse_envs(_text())


def parse_envs(text: str) -> dict[str, VerifyEnv]:
    """``[env.NAME]`` tables of the table's TOML text."""
    return {
        name: VerifyEnv(name, str(raw["python"]), tuple(raw["requirements"]))
        for name, raw in tomllib.loads(text).get("env", {}).items()
    }


def parse_table(text: str) -> tuple[DriftApi, ...]:
    """Entries from the table's TOML text; a malformed entry is a ``ValueError`` naming it."""
    entries = []
    seen: set[str] = set()
    for raw in tomllib.loads(text).get("api", []):
        ident = str(raw.get("id", "?"))
        try:
            entry = DriftApi(
                id=ident,
                distribution=raw["distribution"],
                module=raw["module"],
                match=raw["match"],
                name=raw["name"],
                works=raw["works"],
                removed_in=str(raw["removed_in"]),
                replacement=raw["replacement"],
                example=raw["example"],
                modern=raw["modern"],
                source=raw["source"],
                names=tuple(raw.get("names", ())),
                keyword=raw.get("keyword", ""),
                values=tuple(raw.get("values", ())),
                position=raw.get("position"),
                min_args=int(raw.get("min_args", 0)),
                grid=bool(raw.get("grid", False)),
                receivers=tuple(raw.get("receivers", ())),
                chained=bool(raw.get("chained", False)),
                verify=dict(raw.get("verify", {})),
            )
            SpecifierSet(entry.works)
            Version(entry.removed_in)
        except (KeyError, TypeError, InvalidSpecifier, InvalidVersion) as error:
            raise ValueError(f"api_drift.toml entry {ident!r}: {error!r}") from error
        if entry.match not in MATCH_KINDS or ident in seen:
            raise ValueError(f"api_drift.toml entry {ident!r}: bad match kind or duplicate id")
        seen.add(ident)
        entries.append(entry)
    return tuple(entries)


def find_drift(
    cells: Sequence[Located], table: Sequence[DriftApi] | None = None
) -> tuple[DriftMatch, ...]:
    """Every use of a drifted API in ``cells``, once per entry and cell (its first line)."""
    table = load_table() if table is None else table
    aliases = qualified_names(cells)
    imported = {value.split(".")[0] for value in aliases.values()}
    entries = [e for e in table if e.module in imported]
    if not entries:
        return ()
    made_by = _constructors(cells, aliases)
    index = _Index(entries)
    found: dict[tuple[str, int], DriftMatch] = {}
    for cell in cells:
        for stmt in cell.statements:
            for node in stmt.nodes:
                for entry in index.candidates(node, aliases):
                    if _matches(entry, node, aliases, made_by):
                        line = cell.line(getattr(node, "lineno", 1))
                        match = DriftMatch(entry, cell.index, line)
                        before = found.get((entry.id, cell.index))
                        if before is None or line < before.line:
                            found[(entry.id, cell.index)] = match
    return tuple(sorted(found.values(), key=lambda m: (m.cell, m.line, m.api.id)))


def bounds(
    matches: Sequence[DriftMatch],
    table: Sequence[DriftApi] | None = None,
    envs: dict[str, VerifyEnv] | None = None,
) -> tuple[Bound, ...]:
    """Per distribution, the intersection of the ranges of its matched entries."""
    table = load_table() if table is None else table
    envs = load_envs() if envs is None else envs
    by_distribution: dict[str, list[DriftMatch]] = {}
    for match in matches:
        by_distribution.setdefault(match.api.distribution, []).append(match)
    out = []
    for distribution, found in sorted(by_distribution.items()):
        specifier = SpecifierSet()
        for match in found:
            specifier &= match.api.specifier
        out.append(
            Bound(
                distribution,
                str(_simplified(specifier)),
                tuple(sorted({m.api.id for m in found})),
                tuple(sorted({m.cell for m in found})),
                conflict=not _satisfiable(specifier, distribution, table, envs),
            )
        )
    return tuple(out)


def _simplified(specifier: SpecifierSet) -> SpecifierSet:
    """Keep the tightest upper (``<``) and lower (``>=``) bound; other clauses as they are."""
    uppers = [s for s in specifier if s.operator == "<"]
    lowers = [s for s in specifier if s.operator == ">="]
    rest = [s for s in specifier if s.operator not in {"<", ">="}]
    kept = list(rest)
    if uppers:
        kept.append(min(uppers, key=lambda s: Version(s.version)))
    if lowers:
        kept.append(max(lowers, key=lambda s: Version(s.version)))
    return SpecifierSet(",".join(str(s) for s in kept))


def _satisfiable(
    specifier: SpecifierSet,
    distribution: str,
    table: Sequence[DriftApi],
    envs: dict[str, VerifyEnv],
) -> bool:
    """Whether a version the table knows for ``distribution`` satisfies every clause.

    The candidates are the versions of its verification environments and the lower bounds of
    its entries; a specifier without upper bounds is always satisfiable.
    """
    if not any(s.operator in {"<", "<=", "=="} for s in specifier):
        return True
    candidates: set[str] = {s.version for s in specifier if s.operator in {">=", "=="}}
    for env in envs.values():
        pinned = env.pinned(distribution)
        if pinned:
            candidates.add(pinned)
    for entry in table:
        if entry.distribution == distribution:
            candidates.update(s.version for s in entry.specifier if s.operator == ">=")
    return any(specifier.contains(c, prereleases=True) for c in candidates)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


class _Index:
    """The entries a node could match, looked up by the last part of the name it uses.

    Every kind of match needs that last part to be equal (``_same_name``, ``endswith(".x")``,
    ``node.attr == name``), so a node is only tried against a handful of entries instead of
    the whole table (which made the analysis of long notebooks slow).
    """

    def __init__(self, entries: Sequence[DriftApi]) -> None:
        self.on_import = [e for e in entries if e.match in {"import", "name"}]
        self.grid = [e for e in entries if e.match == "call" and e.grid]
        self.by_name: dict[str, list[DriftApi]] = {}
        self.by_attribute: dict[str, list[DriftApi]] = {}
        self.by_call: dict[str, list[DriftApi]] = {}
        for entry in entries:
            table = {"name": self.by_name, "attribute": self.by_attribute}.get(
                entry.match, self.by_call if entry.match in {"call", "method"} else None
            )
            if table is None:
                continue
            for name in dict.fromkeys(_last(n) for n in entry.all_names):
                table.setdefault(name, []).append(entry)

    def candidates(self, node: ast.AST, aliases: dict[str, str]) -> list[DriftApi]:
        if isinstance(node, ast.Import | ast.ImportFrom):
            return self.on_import
        if isinstance(node, ast.Dict):
            return self.grid
        if isinstance(node, ast.Call):
            return self.by_call.get(_last_of(node.func, aliases), [])
        if isinstance(node, ast.Attribute):
            return self.by_name.get(node.attr, []) + self.by_attribute.get(node.attr, [])
        if isinstance(node, ast.Name):
            return self.by_name.get(_last_of(node, aliases), [])
        return []


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _last_of(node: ast.expr, aliases: dict[str, str]) -> str:
    """The last part of the name ``node`` stands for (``np`` → ``numpy``; ``a.b.c`` → ``c``)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return _last(aliases.get(node.id, node.id))
    return ""


# -- matching ------------------------------------------------------------------------------------
def _same_name(qualified: str, wanted: str) -> bool:
    """``sklearn.tree._classes.DecisionTreeRegressor`` is ``sklearn.tree.DecisionTreeRegressor``.

    Names of three parts or more match on their package and last part (classes are re-exported
    from many modules); shorter names (``numpy.float``) match exactly.
    """
    if qualified == wanted:
        return True
    want = wanted.split(".")
    have = qualified.split(".")
    return len(want) >= 3 and len(have) >= 2 and have[0] == want[0] and have[-1] == want[-1]


def _matches(
    entry: DriftApi, node: ast.AST, aliases: dict[str, str], made_by: dict[str, str]
) -> bool:
    kind = entry.match
    if kind == "import":
        return any(
            path == name or path.startswith(name + ".")
            for path in _imported_paths(node)
            for name in entry.all_names
        )
    if kind == "name":
        return _name_matches(entry, node, aliases)
    if kind == "attribute":
        return (
            isinstance(node, ast.Attribute)
            and node.attr == entry.name.lstrip(".")
            and _made_by_receiver(entry, node.value, aliases, made_by)
        )
    if kind == "call" and isinstance(node, ast.Dict) and entry.grid:
        return _grid_matches(entry, node)
    if not isinstance(node, ast.Call):
        return False
    dotted = dotted_name(node.func, aliases)
    if kind == "call":
        named = any(_same_name(dotted, name) for name in entry.all_names)
    else:
        named = any(dotted.endswith(name) for name in entry.all_names) and (
            not isinstance(node.func, ast.Attribute)
            or _made_by_receiver(entry, node.func.value, aliases, made_by)
        )
        if entry.chained:
            func = node.func
            named = (
                named and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Subscript)
            )
    return named and _arguments_match(entry, node)


def _name_matches(entry: DriftApi, node: ast.AST, aliases: dict[str, str]) -> bool:
    if isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
        return dotted_name(node, aliases) in entry.all_names
    return any(path in entry.all_names for path in _imported_paths(node))


def _made_by_receiver(
    entry: DriftApi, receiver: ast.expr, aliases: dict[str, str], made_by: dict[str, str]
) -> bool:
    """Whether the object is one the entry is about (always, for entries without receivers)."""
    if not entry.receivers:
        return True
    made = made_by.get(dotted_name(receiver, aliases), "")
    return any(_same_name(made, r) for r in entry.receivers)


def _arguments_match(entry: DriftApi, call: ast.Call) -> bool:
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    if entry.min_args and len(positional) < entry.min_args:
        return False
    if entry.keyword:
        given = next((k.value for k in call.keywords if k.arg == entry.keyword), None)
        if given is None and entry.position is not None and len(positional) > entry.position:
            given = positional[entry.position]
        if given is None:
            return False
        return not entry.values or _constant_in(given, entry.values)
    if entry.position is not None:
        if len(positional) <= entry.position:
            return False
        return _constant_in(positional[entry.position], entry.values)
    return True


def _grid_matches(entry: DriftApi, node: ast.Dict) -> bool:
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == entry.keyword:
            items = value.elts if isinstance(value, ast.List | ast.Tuple | ast.Set) else [value]
            return any(_constant_in(item, entry.values) for item in items)
    return False


def _constant_in(node: ast.expr, values: tuple[Any, ...]) -> bool:
    return isinstance(node, ast.Constant) and any(
        node.value == v and type(node.value) is type(v) for v in values
    )


def _imported_paths(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _constructors(cells: Sequence[Located], aliases: dict[str, str]) -> dict[str, str]:
    """Each name assigned a call → the qualified name called (``rfecv`` → ``...RFECV``).

    ``x = x.fit(...)`` keeps what ``x`` was: ``fit`` returns the estimator itself.
    """
    made: dict[str, str] = {}
    for cell in cells:
        for stmt in cell.statements:
            for node in stmt.nodes:
                if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                    continue
                func = node.value.func
                called = dotted_name(func, aliases)
                if isinstance(func, ast.Attribute) and func.attr in _RETURNS_SELF:
                    called = made.get(dotted_name(func.value, aliases), called)
                for target in node.targets:
                    if isinstance(target, ast.Name | ast.Attribute):
                        made[dotted_name(target, aliases)] = called
    return made


_RETURNS_SELF = frozenset({"fit", "set_params", "partial_fit"})
