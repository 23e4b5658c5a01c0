"""Imports → PyPI distributions, with the version the notebook ran with when it can be known.

Pure: what the installed environment says (``importlib.metadata.packages_distributions()`` and
the installed versions) is read at the edge (``promote.api``) and passed in as plain mappings.
Order of authority for the distribution: the environment, then ``tables.DISTRIBUTIONS``, then the
module's own name. For the version: a ``!pip install x==1.2`` line, then what the notebook printed
(``pd.__version__`` in a cell and ``2.2.1`` in its output), then the environment.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from promote.analysis import tables
from promote.analysis.checks import Located
from promote.analysis.evidence import printed_versions
from promote.notebook import Cell

__all__ = ["Dependency", "dependencies", "distribution", "is_standard_library", "pinned"]

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


@dataclass(frozen=True)
class Dependency:
    """A distribution the notebook needs, and why promote thinks so."""

    distribution: str
    modules: tuple[str, ...]  # the top-level modules imported from it ("" for a pip line alone)
    cell: int  # the first cell that imports or installs it
    version: str | None = None  # the exact version, when known
    specifier: str = ""  # a constraint from a pip line that is not an exact pin (">=4")
    source: str = ""  # where the version came from: "pip" | "output" | "environment" | ""
    resolved_by: str = "name"  # how the name was found: "environment" | "table" | "name" | "pip"

    @property
    def requirement(self) -> str:
        """A requirement line: ``xgboost==2.0.3``, ``lightgbm>=4`` or ``shap``."""
        if self.version:
            return f"{self.distribution}=={self.version}"
        return f"{self.distribution}{self.specifier}"


def is_standard_library(module: str) -> bool:
    """Whether top-level ``module`` ships with Python."""
    return module in sys.stdlib_module_names or module == "__future__"


def distribution(
    module: str, packages: Mapping[str, Sequence[str]] | None = None
) -> tuple[str, str] | None:
    """(distribution, how it was found) for top-level ``module``; None for stdlib or relative."""
    if not module or module.startswith(".") or is_standard_library(module):
        return None
    found = list((packages or {}).get(module, ()))
    if found:
        return sorted(found, key=str.lower)[0], "environment"
    if module in tables.DISTRIBUTIONS:
        return tables.DISTRIBUTIONS[module], "table"
    return module, "name"


def pinned(requirement: str) -> tuple[str, str | None, str]:
    """Name, exact version and other constraint of a pip requirement.

    ``"xgboost==2.0.3"`` → ("xgboost", "2.0.3", ""); ``"lightgbm>=4"`` → ("lightgbm", None, ">=4").
    """
    match = _REQUIREMENT.match(requirement)
    if not match:
        return requirement, None, ""
    name, spec = match.group(1), match.group(2).strip().strip("'\"")
    exact = re.fullmatch(r"===?\s*([^\s,;*]+)", spec)
    return name, (exact.group(1) if exact else None), ("" if exact else spec)


def dependencies(
    cells: Sequence[Located],
    raw_cells: Iterable[Cell],
    requirements: Iterable[tuple[int, str]],
    packages: Mapping[str, Sequence[str]] | None = None,
    installed: Mapping[str, str] | None = None,
) -> tuple[Dependency, ...]:
    """The notebook's third-party distributions, sorted by name.

    ``requirements`` are (cell, requirement) from pip lines; ``packages`` maps a top-level module
    to the distributions that provide it, ``installed`` a normalized distribution name to its
    version, both for the environment promote runs in.
    """
    found: dict[str, Dependency] = {}
    printed: dict[str, str] = {}
    for _, printed_module, printed_version in printed_versions(cells, raw_cells):
        printed.setdefault(printed_module, printed_version)
    for cell, module in _imported_modules(cells):
        resolved = distribution(module, packages)
        if resolved is None:
            continue
        name, how = resolved
        key = _normal(name)
        before = found.get(key)
        if before is None:
            found[key] = Dependency(name, (module,), cell, resolved_by=how)
        elif module not in before.modules:
            found[key] = _with(before, modules=(*before.modules, module))
    for cell, requirement in requirements:
        name, version, spec = pinned(requirement)
        key = _normal(name)
        before = found.get(key) or Dependency(name, (), cell, resolved_by="pip")
        found[key] = _with(
            before,
            cell=min(before.cell, cell),
            version=version or before.version,
            specifier=spec or before.specifier,
            source="pip" if version else before.source,
        )
    out = []
    for key, dep in found.items():
        if dep.version is None:
            version = next((printed[m] for m in dep.modules if m in printed), None)
            if version:
                dep = _with(dep, version=version, source="output")
            elif installed and key in installed:
                dep = _with(dep, version=installed[key], source="environment")
        out.append(dep)
    return tuple(sorted(out, key=lambda x: _normal(x.distribution)))


def _with(dep: Dependency, **changes: object) -> Dependency:
    values = {**dep.__dict__, **changes}
    return Dependency(**values)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules(cells: Sequence[Located]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for cell in cells:
        for stmt in cell.statements:
            for node in stmt.nodes:  # imports inside functions count too
                if isinstance(node, ast.Import):
                    out.extend((cell.index, a.name.split(".")[0]) for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    out.append((cell.index, node.module.split(".")[0]))
    return out
