"""Hostile notebooks and interrupted runs: promote refuses in one paragraph or promotes, never
crashes, never leaves a partial project, and never loses what was in the target."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import EXAMPLES, code, notebook_json

from promote.cli import main

CLASSIFIER = EXAMPLES / "breast_cancer_classifier.ipynb"

# A tiny notebook promote accepts; cases add cells to it or break it.
BASE = (
    "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression",
    "X, y = load_iris(return_X_y=True, as_frame=True)",
    "model = LogisticRegression(max_iter=500)\nmodel.fit(X, y)",
    "model.predict(X)",
)


def base(*extra: str | dict[str, object], language: str = "python") -> str:
    """The accepted notebook with ``extra`` cells after it (cells 5, 6, ...)."""
    return notebook_json(*BASE, *extra, language=language)


def edited(change: Callable[[dict[str, object]], None]) -> bytes:
    """The accepted notebook, its JSON changed in place by ``change``."""
    data = json.loads(base())
    change(data)
    return json.dumps(data).encode()


def kernel(name: str, language: str) -> bytes:
    def change(data: dict[str, object]) -> None:
        data["metadata"] = {
            "kernelspec": {"name": name, "display_name": language, "language": language}
        }

    return edited(change)


def cell_field(index: int, key: str, value: object) -> bytes:
    def change(data: dict[str, object]) -> None:
        data["cells"][index][key] = value  # type: ignore[index]

    return edited(change)


def version_3() -> bytes:
    inputs = [{"cell_type": "code", "input": s, "language": "python", "outputs": []} for s in BASE]
    return json.dumps(
        {
            "metadata": {"name": ""},
            "nbformat": 3,
            "nbformat_minor": 0,
            "worksheets": [{"cells": inputs}],
        }
    ).encode()


def with_outputs(megabytes: int) -> bytes:
    """A plotting cell that saved ``megabytes`` MB of base64 PNG outputs, in 10 MB images."""
    image = base64.b64encode(os.urandom(10 * 1024 * 1024 * 3 // 4)).decode()
    cell = code("import matplotlib.pyplot as plt\nplt.plot([1, 2])", count=5)
    cell["outputs"] = [
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": image}}
        for _ in range(megabytes // 10)
    ]
    return base(cell).encode()


def with_attachment() -> bytes:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(2000)).decode()
    markdown = {
        "cell_type": "markdown",
        "metadata": {},
        "source": "![diagram](attachment:diagram.png)",
        "attachments": {"diagram.png": {"image/png": png}},
    }
    return base(markdown).encode()


def many_cells(count: int) -> bytes:
    cells = [f"# md: ## Step {i}" if i % 3 == 0 else f"v{i} = {i} * 2" for i in range(count)]
    return base(*cells).encode()


def non_utf8() -> bytes:
    return base("city = 'Zurich'").encode().replace(b"Zurich", b"Z\xfcrich")


SHADOWING = notebook_json(
    BASE[0],
    "import json\nlist = [1, 2]\njson = {'a': 1}\n\n\ndef print(*args):\n    return None",
    BASE[1],
    "model = LogisticRegression(max_iter=500)\nmodel.fit(X, y)\nlist.append(json['a'])",
    BASE[3],
)


@dataclass(frozen=True)
class Case:
    """A notebook, and what promote must say (``None``: promote it)."""

    content: bytes
    message: str | None = None
    cell: int | None = None


CASES: dict[str, Case] = {
    "invalid-json": Case(b"{not json", "it is not valid JSON"),
    "truncated": Case(CLASSIFIER.read_bytes()[:20_000], "it is not valid JSON"),
    "empty": Case(b"", "the file is empty"),
    "blank": Case(b" \n\t\n", "the file is empty"),
    "a-json-list": Case(b"[1, 2]", "holds no notebook cells"),
    "nesting-too-deep": Case(
        b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "cannot be loaded"
    ),
    "5000-digit-number": Case(b'{"cells": [], "n": ' + b"7" * 5000 + b"}", "cannot be loaded"),
    "nbformat-3-upgraded": Case(version_3()),
    "nbformat-5": Case(edited(lambda d: d.update(nbformat=5)), "format version (nbformat 5.5)"),
    "nbformat-minor-text": Case(
        edited(lambda d: d.update(nbformat_minor="x")), "format version (nbformat 4.'x')"
    ),
    "schema-outputs-not-a-list": Case(
        cell_field(2, "outputs", "none"), "`outputs` should be of type array", cell=3
    ),
    "schema-unknown-cell-type": Case(
        cell_field(1, "cell_type", "weird"), "does not follow the notebook format", cell=2
    ),
    "schema-source-a-number": Case(cell_field(0, "source", 3), "`source` is not valid", cell=1),
    "schema-tags-not-a-list": Case(
        cell_field(3, "metadata", {"tags": "train"}), "`metadata.tags` should be", cell=4
    ),
    "r-kernel": Case(kernel("ir", "R"), "its kernel language is 'r'"),
    "julia-kernel": Case(kernel("julia-1.10", "julia"), "its kernel language is 'julia'"),
    "no-code-cells": Case(
        notebook_json("# md: # Notes", "# md: nothing to run").encode(), "no code cells"
    ),
    "no-cells": Case(notebook_json().encode(), "no code cells"),
    "syntax-error": Case(base("def f(:\n    pass").encode(), "not valid Python 3", cell=5),
    "python-2-print": Case(base("print 'done'").encode(), "not valid Python 3", cell=5),
    "mixed-tabs-and-spaces": Case(
        base("if True:\n\tx = 1\n        y = 2").encode(), "inconsistent use of tabs", cell=5
    ),
    "null-byte-in-code": Case(base("a = 1\x00").encode(), "not valid Python 3", cell=5),
    "return-outside-function": Case(base("return 5").encode(), "'return' outside function", cell=5),
    "top-level-await": Case(
        base("import asyncio\nawait asyncio.sleep(0)").encode(), "'await' outside", cell=5
    ),
    "non-utf8-bytes": Case(non_utf8(), "not UTF-8 text", cell=5),
    "utf8-bom": Case(b"\xef\xbb\xbf" + base().encode()),
    "tabs-only-indentation": Case(base("for i in range(2):\n\tz = i").encode()),
    "crlf-and-form-feed": Case(base("a = 1\r\nb = 2\r\n\x0cc = 3").encode()),
    "large-outputs-20mb": Case(with_outputs(20)),
    "attachments": Case(with_attachment()),
    "very-long-line-1mb": Case(base("BLOB = '" + "x" * 1_000_000 + "'").encode()),
    "shadows-builtins-and-stdlib": Case(SHADOWING.encode()),
    "unicode-identifiers": Case(base("données = [1]\nπ = 3.14").encode()),
    "only-magics-and-shell": Case(base("%%bash\necho hi", "!ls", "%timeit 1", "model?").encode()),
}


def run_promote(notebook: Path, target: Path, *extra: str) -> int:
    return main([str(notebook), "-o", str(target), "--no-lock", *extra])


def assert_refused_cleanly(err: str, notebook: Path, case: Case, workdir: Path) -> None:
    assert case.message is not None
    assert "Traceback" not in err
    message = err.strip()
    assert message.startswith("error: "), message
    assert "\n" not in message, f"not one paragraph:\n{message}"
    assert str(notebook) in message and case.message in message, message
    if case.cell is not None:
        assert f"cell {case.cell}:" in message, message
    assert sorted(p.name for p in workdir.iterdir()) == [notebook.name], "something was written"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_notebook_is_promoted_or_refused_in_one_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Each hostile notebook is promoted, or refused with exit 1, its file and cell named."""
    case = CASES[name]
    notebook = tmp_path / f"{name}.ipynb"
    notebook.write_bytes(case.content)
    target = tmp_path / "out"
    code_ = run_promote(notebook, target)
    err = capsys.readouterr().err
    if case.message is None:
        assert code_ == 0, err
        assert "Traceback" not in err
        assert (target / "Makefile").is_file() and (target / "src").is_dir()
        assert not list(tmp_path.glob(".out.promote-*")), "a scratch directory was left"
    else:
        assert code_ == 1, err
        assert_refused_cleanly(err, notebook, case, tmp_path)


def test_10000_cells(tmp_path: Path) -> None:
    """A notebook of 10,000 cells is promoted."""
    notebook = tmp_path / "big.ipynb"
    notebook.write_bytes(many_cells(10_000))
    assert run_promote(notebook, tmp_path / "out") == 0


def test_names_that_shadow_builtins_travel_between_stages(tmp_path: Path) -> None:
    """`list = [...]` and `json = {...}` (after `import json`) are the notebook's variables: the
    stage that reads them receives them, and the generated pipeline runs."""
    notebook = tmp_path / "shadow.ipynb"
    notebook.write_text(SHADOWING)
    target = tmp_path / "out"
    assert run_promote(notebook, target) == 0
    train = (target / "src" / "shadow" / "train.py").read_text()
    assert "def train_model(X: Any, y: Any, list: Any, json: Any)" in train
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shadow.pipeline import run; print(type(run().model).__name__)",
        ],
        cwd=target,
        env={**os.environ, "PYTHONPATH": str(target / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "LogisticRegression"


MEASURE = """
import resource, sys, time
from promote.cli import main
start = time.perf_counter()
code = main([sys.argv[1], "-o", sys.argv[2], "--no-lock"])
seconds = time.perf_counter() - start
print(code, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(notebook: Path, target: Path) -> tuple[float, int]:
    """Run promote in a fresh interpreter: its seconds and peak resident memory in bytes."""
    ran = subprocess.run(
        [sys.executable, "-c", MEASURE, str(notebook), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    code_, seconds, max_rss_kb = ran.stdout.split()[-3:]
    assert code_ == "0", ran.stderr
    return float(seconds), int(max_rss_kb) * 1024


@pytest.mark.slow
def test_100_mb_of_outputs_stays_within_time_and_memory(tmp_path: Path) -> None:
    """100 MB of saved base64 images: promoted in under 60 s, with less than 2.5 bytes of memory
    per byte of notebook above what a tiny notebook needs (the text and its parsed JSON)."""
    small = tmp_path / "small.ipynb"
    small.write_text(base())
    _, baseline = measure(small, tmp_path / "small")
    notebook = tmp_path / "plots.ipynb"
    notebook.write_bytes(with_outputs(100))
    seconds, peak = measure(notebook, tmp_path / "out")
    size = notebook.stat().st_size
    assert seconds < 60
    assert peak - baseline < 2.5 * size, f"{(peak - baseline) // 2**20} MB above the baseline"
