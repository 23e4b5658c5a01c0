"""Findings about a notebook, as data: one class per kind, each naming its cell.

The analysis produces them, tests assert on them, and ``promote.report`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "ApiDrift",
    "CellMagic",
    "ChangesDirectory",
    "ConflictingVersionBounds",
    "ConnectionStringWithCredentials",
    "Diagnostic",
    "ExternalNotebook",
    "FunctionReadsGlobal",
    "HardcodedPath",
    "HardcodedSecret",
    "LocalModule",
    "MissingSeed",
    "NetworkAccess",
    "NeverExecuted",
    "NoCode",
    "OutOfOrderExecution",
    "PipInstall",
    "Redefinition",
    "SecretInOutput",
    "SecretSetting",
    "ShellCommand",
    "StarImport",
    "SyntaxErrorInCell",
    "UndefinedName",
    "UnknownMagic",
    "UnpinnedDependency",
    "UseBeforeDefinition",
    "WritesFile",
    "WritesFileAtRunTime",
]


@dataclass(frozen=True)
class Diagnostic:
    """Base of all findings. ``cell`` is the 1-based cell index, or None for the notebook.

    ``line`` is the 1-based line inside the cell as the user wrote it, when it is known.
    """

    code: ClassVar[str] = "P000"
    severity: ClassVar[str] = "warning"  # "error" blocks promotion, "warning" and "info" do not

    # A notebook that produces this finding and the same notebook fixed, for the reference page
    # (docs/reference/diagnostics.md is generated from them; tests/test_docs.py checks that
    # `example` really produces the finding and `fixed` does not). Cells are written in the
    # percent format: a line `# %%` starts a code cell, `# %% [markdown]` a markdown cell;
    # `# %% count=N` gives the cell an execution count, `# %% output=TEXT` a saved output, and
    # `# %% file=PATH` puts the text in a file beside the notebook instead of a cell.
    example: ClassVar[str] = """\
"""
    fixed: ClassVar[str] = """\
"""

    cell: int | None
    line: int | None = field(default=None, kw_only=True)

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
            "name": type(self).__name__,
            "severity": self.severity,
            "cell": self.cell,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class SyntaxErrorInCell(Diagnostic):
    code: ClassVar[str] = "P001"
    severity: ClassVar[str] = "error"
    example: ClassVar[str] = """\
# %%
x = 1
print x
"""
    fixed: ClassVar[str] = """\
# %%
x = 1
print(x)
"""
    detail: str = ""

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
    example: ClassVar[str] = """\
# %%
total = eps_diff * 2
"""
    fixed: ClassVar[str] = """\
# %%
eps_diff = 0.5
# %%
total = eps_diff * 2
"""
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
    example: ClassVar[str] = """\
# %%
b = a + 1
# %%
a = 1
"""
    fixed: ClassVar[str] = """\
# %%
a = 1
# %%
b = a + 1
"""
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
    example: ClassVar[str] = """\
# %% count=1
a = 1
# %% count=3
b = a + 1
# %% count=2
c = b + 1
"""
    fixed: ClassVar[str] = """\
# %% count=1
a = 1
# %% count=2
b = a + 1
# %% count=3
c = b + 1
"""
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
    example: ClassVar[str] = """\
# %%
from math import *
r = sqrt(2)
"""
    fixed: ClassVar[str] = """\
# %%
from math import sqrt
r = sqrt(2)
"""
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
    example: ClassVar[str] = """\
# %%
!ls -la
"""
    fixed: ClassVar[str] = """\
# %%
from pathlib import Path
files = sorted(Path('.').iterdir())
"""
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
    example: ClassVar[str] = """\
# %%
import requests
URL = 'https://example.com/data.csv'
text = requests.get(URL).text
"""
    fixed: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.read_csv('data/data.csv')
"""
    command: str = ""

    @property
    def message(self) -> str:
        return f"`{self.command}` reaches the network at run time"

    @property
    def hint(self) -> str:
        return (
            "Download the data once and read it from a local path (or make the URL a setting "
            "the service can be given)."
        )


@dataclass(frozen=True)
class ExternalNotebook(Diagnostic):
    code: ClassVar[str] = "P008"
    example: ClassVar[str] = """\
# %%
%run helpers.ipynb
"""
    fixed: ClassVar[str] = """\
# %%
from helpers import clean
"""
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
    example: ClassVar[str] = """\
# %%
%pip install xgboost==2.0.3
"""
    fixed: ClassVar[str] = """\
# %%
import xgboost
"""
    requirements: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return "installs " + ", ".join(self.requirements) + "; recorded as dependencies"


@dataclass(frozen=True)
class UnknownMagic(Diagnostic):
    code: ClassVar[str] = "P010"
    example: ClassVar[str] = """\
# %%
result = 1
%store result
"""
    fixed: ClassVar[str] = """\
# %%
result = 1
"""
    magic: str = ""

    @property
    def message(self) -> str:
        return f"IPython magic `%{self.magic}` has no meaning outside Jupyter; it is left out"


@dataclass(frozen=True)
class WritesFile(Diagnostic):
    code: ClassVar[str] = "P011"
    example: ClassVar[str] = """\
# %%
%%writefile app.py
print('hello')
"""
    fixed: ClassVar[str] = """\
# %%
print('hello')
"""
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
    example: ClassVar[str] = """\
# %%
%cd data
"""
    fixed: ClassVar[str] = """\
# %%
from pathlib import Path
DATA = Path('data')
"""
    command: str = ""

    @property
    def message(self) -> str:
        return f"`{self.command}` changes the working directory; relative paths may break"


@dataclass(frozen=True)
class LocalModule(Diagnostic):
    code: ClassVar[str] = "P013"
    example: ClassVar[str] = """\
# %% file=common/utils.py
def load(path):
    return path
# %%
from common.utils import load
"""
    fixed: ClassVar[str] = """\
# %%
def load(path):
    return path
"""
    module: str = ""

    @property
    def message(self) -> str:
        return f"imports `{self.module}`, a module beside the notebook, not an installed package"

    @property
    def hint(self) -> str:
        return (
            "When the package needs it, promote copies it as it is into the project's src/ (a "
            "module of its own, not linted); better: move what the notebook uses from it into a "
            "cell, or publish it as a package and depend on it."
        )


@dataclass(frozen=True)
class FunctionReadsGlobal(Diagnostic):
    code: ClassVar[str] = "P014"
    example: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.DataFrame({'a': [1, 2]})
# %%
def mean_a():
    return df['a'].mean()
"""
    fixed: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.DataFrame({'a': [1, 2]})
# %%
def mean_a(df):
    return df['a'].mean()
"""
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
    example: ClassVar[str] = """\
# %%
from openai import OpenAI


def make_client():
    return OpenAI(api_key='sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c')
"""
    fixed: ClassVar[str] = """\
# %%
import os

from openai import OpenAI


def make_client():
    return OpenAI(api_key=os.environ['OPENAI_API_KEY'])
"""
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
    example: ClassVar[str] = """\
# %%
%%html
<b>hello</b>
"""
    fixed: ClassVar[str] = """\
# %%
from IPython.display import HTML
HTML('<b>hello</b>')
"""
    magic: str = ""

    @property
    def message(self) -> str:
        return f"cell magic `%%{self.magic}` is not Python; the cell is left out"


@dataclass(frozen=True)
class NoCode(Diagnostic):
    code: ClassVar[str] = "P017"
    severity: ClassVar[str] = "error"
    example: ClassVar[str] = """\
# %% [markdown]
# Notes only
"""
    fixed: ClassVar[str] = """\
# %% [markdown]
# Notes
# %%
x = 1
"""

    @property
    def message(self) -> str:
        return "the notebook has no Python code cells"


@dataclass(frozen=True)
class UnpinnedDependency(Diagnostic):
    code: ClassVar[str] = "P018"
    example: ClassVar[str] = """\
# %%
import xgboost
X, y = [[0], [1]], [0, 1]
model = xgboost.XGBRegressor().fit(X, y)
"""
    fixed: ClassVar[str] = """\
# %%
%pip install xgboost==2.0.3
import xgboost
X, y = [[0], [1]], [0, 1]
model = xgboost.XGBRegressor().fit(X, y)
"""
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


@dataclass(frozen=True)
class HardcodedPath(Diagnostic):
    code: ClassVar[str] = "P019"
    example: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.read_csv('/Users/ann/data.csv')
"""
    fixed: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.read_csv('data.csv')
"""
    path: str = ""

    @property
    def message(self) -> str:
        where = "a home-directory path" if self.path.startswith("~") else "an absolute path"
        return f"`{self.path}` is {where}; it will not exist where the project runs"

    @property
    def hint(self) -> str:
        return (
            "Put the file beside the notebook and read it by a relative path (promote copies it "
            "into data/), or make the path a setting."
        )


@dataclass(frozen=True)
class SecretInOutput(Diagnostic):
    code: ClassVar[str] = "P020"
    example: ClassVar[str] = """\
# %% output=token: sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c
import os
print('token:', os.environ['OPENAI_API_KEY'])
"""
    fixed: ClassVar[str] = """\
# %%
import os
print('token set:', 'OPENAI_API_KEY' in os.environ)
"""
    kind: str = ""

    @property
    def message(self) -> str:
        return f"a saved output shows what looks like {self.kind}"

    @property
    def hint(self) -> str:
        return "Clear the outputs (and rotate the secret: it is in the file's history)."


@dataclass(frozen=True)
class ConnectionStringWithCredentials(HardcodedSecret):
    code: ClassVar[str] = "P021"
    severity: ClassVar[str] = "error"
    example: ClassVar[str] = """\
# %%
from sqlalchemy import create_engine


def make_engine():
    return create_engine('postgresql://ann:s3cret@db/prod')
"""
    fixed: ClassVar[str] = """\
# %%
import os

from sqlalchemy import create_engine


def make_engine():
    return create_engine(os.environ['DATABASE_URL'])
"""
    scheme: str = ""

    @property
    def message(self) -> str:
        return f"a `{self.scheme}://` connection string in the code holds a user name and password"

    @property
    def hint(self) -> str:
        return (
            "Read the URL (or its password) from an environment variable, and rotate the password."
        )


@dataclass(frozen=True)
class MissingSeed(Diagnostic):
    code: ClassVar[str] = "P022"
    example: ClassVar[str] = """\
# %%
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LinearRegression
X, y = [[0], [1], [2], [3]], [0, 1, 2, 3]
X_train, X_test, y_train, y_test = train_test_split(X, y)
model = LinearRegression().fit(X_train, y_train)
"""
    fixed: ClassVar[str] = """\
# %%
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LinearRegression
X, y = [[0], [1], [2], [3]], [0, 1, 2, 3]
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = LinearRegression().fit(X_train, y_train)
"""
    call: str = ""
    fix: str = ""

    @property
    def message(self) -> str:
        return f"`{self.call}` draws random numbers without a seed, so training is not reproducible"

    @property
    def hint(self) -> str:
        return f"{self.fix}." if self.fix else ""


@dataclass(frozen=True)
class Redefinition(Diagnostic):
    code: ClassVar[str] = "P023"
    example: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.read_csv('data.csv')
# %%
df = 3
"""
    fixed: ClassVar[str] = """\
# %%
import pandas as pd
df = pd.read_csv('data.csv')
# %%
n_folds = 3
"""
    name: str = ""
    was: str = ""
    now: str = ""
    first: int = 0

    @property
    def message(self) -> str:
        if self.was == self.now:
            return f"{self.now} `{self.name}` is defined again (first in cell {self.first})"
        return (
            f"`{self.name}` was {self.was} (cell {self.first}) and becomes {self.now}; "
            "cells in between and after read different things under one name"
        )

    @property
    def hint(self) -> str:
        return "Give the new meaning its own name, or keep one definition."


@dataclass(frozen=True)
class WritesFileAtRunTime(Diagnostic):
    code: ClassVar[str] = "P024"
    severity: ClassVar[str] = "info"
    example: ClassVar[str] = """\
# %%
import joblib
joblib.dump({'a': 1}, 'm.pkl')
"""
    fixed: ClassVar[str] = """\
# %%
params = {'a': 1}
"""
    call: str = ""

    @property
    def message(self) -> str:
        return f"`{self.call}` writes a file"

    @property
    def hint(self) -> str:
        return (
            "The project saves the model and metrics in artifacts/; drop writes that were only "
            "for exploration, or write under artifacts/."
        )


@dataclass(frozen=True)
class NeverExecuted(Diagnostic):
    code: ClassVar[str] = "P025"
    severity: ClassVar[str] = "info"
    example: ClassVar[str] = """\
# %% count=1
a = 1
# %%
b = a + 1
"""
    fixed: ClassVar[str] = """\
# %% count=1
a = 1
# %% count=2
b = a + 1
"""

    @property
    def message(self) -> str:
        return "this code cell was never run, while others were: the outputs do not reflect it"

    @property
    def hint(self) -> str:
        return "Restart the kernel and run all cells before promoting."


@dataclass(frozen=True)
class SecretSetting(Diagnostic):
    code: ClassVar[str] = "P026"
    example: ClassVar[str] = """\
# %%
API_KEY = 'sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c'
"""
    fixed: ClassVar[str] = """\
# %%
import os
API_KEY = os.environ['API_KEY']
"""
    name: str = ""

    @property
    def message(self) -> str:
        return (
            f"`{self.name}` looks like a secret: the generated project reads it from a required "
            "environment variable and its value is not copied"
        )

    @property
    def hint(self) -> str:
        return (
            "Set the variable where the project runs (see its settings.py); remove the value "
            "from the notebook and rotate it, since it is in the file's history."
        )


@dataclass(frozen=True)
class ApiDrift(Diagnostic):
    """A call of an API that works only with some versions of its library (api_drift.toml)."""

    code: ClassVar[str] = "P040"
    severity: ClassVar[str] = "warning"
    example: ClassVar[str] = """\
# %%
from sklearn.tree import DecisionTreeRegressor
X, y = [[0.0], [1.0]], [0.0, 1.0]
model = DecisionTreeRegressor(criterion='mse').fit(X, y)
"""
    fixed: ClassVar[str] = """\
# %%
from sklearn.tree import DecisionTreeRegressor
X, y = [[0.0], [1.0]], [0.0, 1.0]
model = DecisionTreeRegressor(criterion='squared_error').fit(X, y)
"""
    api: str = ""  # the entry's id
    used: str = ""  # how the old use looks: ``DecisionTreeRegressor(criterion='mse')``
    distribution: str = ""
    works: str = ""  # the specifier in which it works
    removed_in: str = ""
    replacement: str = ""

    @property
    def message(self) -> str:
        return (
            f"`{self.used}` works only with {self.distribution}{self.works} "
            f"(changed in {self.removed_in}); the project's pins keep to that range when wheels "
            "for its Python exist"
        )

    @property
    def hint(self) -> str:
        return f"To run on current {self.distribution}: {self.replacement}"


@dataclass(frozen=True)
class ConflictingVersionBounds(Diagnostic):
    """Drifted APIs of one library that no single version supports together."""

    code: ClassVar[str] = "P041"
    severity: ClassVar[str] = "warning"
    example: ClassVar[str] = """\
# %%
import numpy as np
flags = np.zeros(2, dtype=np.bool)
values = np.zeros(2, dtype=np.float)
"""
    fixed: ClassVar[str] = """\
# %%
import numpy as np
flags = np.zeros(2, dtype=bool)
values = np.zeros(2, dtype=float)
"""
    distribution: str = ""
    specifier: str = ""
    apis: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return (
            f"no version of {self.distribution} supports all of {', '.join(self.apis)} "
            f"(they need {self.specifier}); promote pins the newest version instead"
        )

    @property
    def hint(self) -> str:
        return "Modernize the older calls (`promote check --modernize` lists the changes)."
