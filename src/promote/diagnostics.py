"""Findings about a notebook, as data: one class per kind, each naming its cell.

The analysis produces them, tests assert on them, and ``promote.report`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CellMagic",
    "ChangesDirectory",
    "Diagnostic",
    "ExternalNotebook",
    "FunctionReadsGlobal",
    "HardcodedSecret",
    "LocalModule",
    "NetworkAccess",
    "NoCode",
    "OutOfOrderExecution",
    "PipInstall",
    "ShellCommand",
    "StarImport",
    "SyntaxErrorInCell",
    "UndefinedName",
    "UnknownMagic",
    "UnpinnedDependency",
    "UseBeforeDefinition",
    "WritesFile",
]


@dataclass(frozen=True)
class Diagnostic:
    """Base of all findings. ``cell`` is the 1-based cell index, or None for the notebook."""

    code: ClassVar[str] = "P000"
    severity: ClassVar[str] = "warning"  # "error" blocks promotion, "warning" and "info" do not

    cell: int | None

    @property
    def message(self) -> str:
        """One sentence for the user, without the location."""
        raise NotImplementedError

    @property
    def hint(self) -> str:
        """What to do about it (may be empty)."""
        return ""

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view for ``promote check --format json``."""
        return {
            "code": self.code,
            "severity": self.severity,
            "cell": self.cell,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class SyntaxErrorInCell(Diagnostic):
    code: ClassVar[str] = "P001"
    severity: ClassVar[str] = "error"
    detail: str = ""
    line: int = 0

    @property
    def message(self) -> str:
        return f"the code is not valid Python 3 ({self.detail}, line {self.line})"

    @property
    def hint(self) -> str:
        return "Fix the cell (Python 2 `print x` becomes `print(x)`), or tag it `promote: skip`."


@dataclass(frozen=True)
class UndefinedName(Diagnostic):
    code: ClassVar[str] = "P002"
    severity: ClassVar[str] = "warning"
    name: str = ""

    @property
    def message(self) -> str:
        return f"`{self.name}` is used but no cell defines it (hidden state from a deleted cell?)"

    @property
    def hint(self) -> str:
        return "Define it in a cell, then restart the kernel and run all cells to check."


@dataclass(frozen=True)
class UseBeforeDefinition(Diagnostic):
    code: ClassVar[str] = "P003"
    severity: ClassVar[str] = "warning"
    name: str = ""
    defined_in: int = 0

    @property
    def message(self) -> str:
        return f"`{self.name}` is used before cell {self.defined_in}, which defines it"

    @property
    def hint(self) -> str:
        return "Move the defining cell up so the notebook runs top to bottom."


@dataclass(frozen=True)
class OutOfOrderExecution(Diagnostic):
    code: ClassVar[str] = "P004"
    severity: ClassVar[str] = "info"
    count: int = 0
    previous: int = 0

    @property
    def message(self) -> str:
        return (
            f"execution count {self.count} comes after {self.previous}: the saved outputs were "
            "not produced by running the cells top to bottom"
        )

    @property
    def hint(self) -> str:
        return "Restart the kernel and run all cells before promoting."


@dataclass(frozen=True)
class StarImport(Diagnostic):
    code: ClassVar[str] = "P005"
    module: str = ""

    @property
    def message(self) -> str:
        return f"`from {self.module} import *` hides which names the code uses"

    @property
    def hint(self) -> str:
        return "Import the names you use explicitly."


@dataclass(frozen=True)
class ShellCommand(Diagnostic):
    code: ClassVar[str] = "P006"
    command: str = ""

    @property
    def message(self) -> str:
        return f"shell command `!{self.command}` is left out of the package"

    @property
    def hint(self) -> str:
        return "Do it in Python, or in the project's Makefile or Dockerfile."


@dataclass(frozen=True)
class NetworkAccess(Diagnostic):
    code: ClassVar[str] = "P007"
    command: str = ""

    @property
    def message(self) -> str:
        return (
            f"`{self.command}` downloads from the network; the project will not do that at run time"
        )

    @property
    def hint(self) -> str:
        return "Download the data once and read it from a local path."


@dataclass(frozen=True)
class ExternalNotebook(Diagnostic):
    code: ClassVar[str] = "P008"
    target: str = ""

    @property
    def message(self) -> str:
        return f"`%run {self.target}` runs code outside this notebook; it is not included"

    @property
    def hint(self) -> str:
        return "Paste the code you need into this notebook, or make it an importable module."


@dataclass(frozen=True)
class PipInstall(Diagnostic):
    code: ClassVar[str] = "P009"
    severity: ClassVar[str] = "info"
    requirements: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return "installs " + ", ".join(self.requirements) + "; recorded as dependencies"


@dataclass(frozen=True)
class UnknownMagic(Diagnostic):
    code: ClassVar[str] = "P010"
    magic: str = ""

    @property
    def message(self) -> str:
        return f"IPython magic `%{self.magic}` has no meaning outside Jupyter; it is left out"


@dataclass(frozen=True)
class WritesFile(Diagnostic):
    code: ClassVar[str] = "P011"
    path: str = ""

    @property
    def message(self) -> str:
        return f"`%%writefile {self.path}` writes a file; its content is not part of the package"

    @property
    def hint(self) -> str:
        return "Keep that file in the project yourself if you need it."


@dataclass(frozen=True)
class ChangesDirectory(Diagnostic):
    code: ClassVar[str] = "P012"
    command: str = ""

    @property
    def message(self) -> str:
        return f"`{self.command}` changes the working directory; relative paths may break"


@dataclass(frozen=True)
class LocalModule(Diagnostic):
    code: ClassVar[str] = "P013"
    module: str = ""

    @property
    def message(self) -> str:
        return f"imports `{self.module}`, a module beside the notebook, not an installed package"

    @property
    def hint(self) -> str:
        return "Copy it into the generated package, or publish it as a package and depend on it."


@dataclass(frozen=True)
class FunctionReadsGlobal(Diagnostic):
    code: ClassVar[str] = "P014"
    function: str = ""
    name: str = ""

    @property
    def message(self) -> str:
        return (
            f"function `{self.function}` reads the notebook variable `{self.name}`; it is kept "
            "inside the stage that defines it"
        )

    @property
    def hint(self) -> str:
        return f"Pass `{self.name}` as a parameter so `{self.function}` can be reused."


@dataclass(frozen=True)
class HardcodedSecret(Diagnostic):
    code: ClassVar[str] = "P015"
    severity: ClassVar[str] = "error"
    name: str = ""

    @property
    def message(self) -> str:
        return f"`{self.name}` looks like a secret written into the code"

    @property
    def hint(self) -> str:
        return "Read it from an environment variable (os.environ) instead, and rotate it."


@dataclass(frozen=True)
class CellMagic(Diagnostic):
    code: ClassVar[str] = "P016"
    magic: str = ""

    @property
    def message(self) -> str:
        return f"cell magic `%%{self.magic}` is not Python; the cell is left out"


@dataclass(frozen=True)
class NoCode(Diagnostic):
    code: ClassVar[str] = "P017"
    severity: ClassVar[str] = "error"

    @property
    def message(self) -> str:
        return "the notebook has no Python code cells"


@dataclass(frozen=True)
class UnpinnedDependency(Diagnostic):
    code: ClassVar[str] = "P018"
    distribution: str = ""

    @property
    def message(self) -> str:
        return (
            f"`{self.distribution}` is not installed where promote ran, so the project "
            "requires it without a version"
        )

    @property
    def hint(self) -> str:
        return "Run promote in the environment the notebook ran in, or pin it in pyproject.toml."
