"""Hostile notebooks and interrupted runs: promote refuses in one paragraph or promotes, never
crashes, never leaves a partial project, and never loses what was in the target."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import EXAMPLES, code, notebook_json, tree_digest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from promote import api
from promote.cli import main
from promote.errors import PromoteError
from promote.render import remove_stale_scratch

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
    "record-separator-after-a-magic": Case(
        base("%matplotlib inline", "\x1e").encode(), "invalid non-printable character", cell=6
    ),
    "line-separators-in-strings": Case(base("%matplotlib inline", "s = 'a\u2028b\x85c'").encode()),
    "compiler-warnings": Case(base("assert (X, 'always true')\nsame = X is 1").encode()),
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


KNOWN_BUGS: dict[str, str] = {}  # case name → why it fails today (strict xfail)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_BUGS[n], strict=True))
        if n in KNOWN_BUGS
        else n
        for n in CASES
    ],
)
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
    assert re.search(r"def train_model\(X: [\w.]+, y: [\w.]+, list: Any, json: Any\b", train)
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
from promote import api
from promote.cli import main
from promote.errors import PromoteError
from promote.render import remove_stale_scratch
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


# -- no data lost ----------------------------------------------------------------------------------
PROMOTE = (sys.executable, "-c", "from promote.entry import run; run()")


def promote_process(notebook: Path, target: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`promote NOTEBOOK -o TARGET` in its own process group, as a user starts it."""
    return subprocess.Popen(
        [*PROMOTE, str(notebook), "-o", str(target), "--no-lock", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # A shell starts background jobs with SIGINT ignored, and Python keeps it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@dataclass(frozen=True)
class Reference:
    digest: dict[str, str]
    seconds: float


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """A complete run: what the target holds when a run finishes, and how long a run takes."""
    target = tmp_path_factory.mktemp("reference") / "proj"
    promote_process(CLASSIFIER, target).communicate()  # warms the template store
    shutil.rmtree(target)
    start = time.perf_counter()
    process = promote_process(CLASSIFIER, target)
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()
    return Reference(tree_digest(target), time.perf_counter() - start)


def interrupt(
    notebook: Path, target: Path, how: signal.Signals, after: float | None, *extra: str
) -> int:
    """Signal a promote run ``after`` seconds, or (``None``) once it is rendering in scratch."""
    process = promote_process(notebook, target, *extra)
    if after is None:
        deadline = time.monotonic() + 120
        pattern = f".{target.name}.promote-*/project"
        while not list(target.parent.glob(pattern)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it was caught rendering"
    else:
        time.sleep(after)
    if how == signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # promote and its git/ruff children
    else:
        process.send_signal(how)  # promote only, as Ctrl-C to a foreground job would reach it
    _, err = process.communicate()
    assert "Traceback" not in err.decode(), err.decode()
    return process.returncode


def assert_target_as_before_or_complete(
    target: Path, old: dict[str, str] | None, reference: Reference
) -> str:
    """The target is as it was, or the whole project with the old content at DIR.backup-1."""
    backup = target.with_name(f"{target.name}.backup-1")
    if target.exists() and tree_digest(target) == reference.digest:
        if old is not None:
            assert tree_digest(backup) == old, "the old content was not kept"
        return "complete"
    if old is None:
        assert not target.exists(), f"partial output: {sorted(tree_digest(target))[:10]}"
    else:
        assert tree_digest(target) == old, "the old content changed"
        assert not backup.exists()
    return "untouched"


def old_content(target: Path) -> dict[str, str]:
    target.mkdir()
    (target / "notes.txt").write_text("my work")
    (target / "data").mkdir()
    (target / "data" / "rows.csv").write_text("a,b\n1,2\n")
    return tree_digest(target)


def check_interrupts(
    tmp_path: Path, reference: Reference, how: signal.Signals, fractions: list[float | None]
) -> list[str]:
    outcomes = []
    for number, fraction in enumerate(fractions):
        for existing in (False, True):
            target = tmp_path / f"run{number}-{int(existing)}" / "proj"
            target.parent.mkdir()
            old = old_content(target) if existing else None
            extra = ("--force",) if existing else ()
            after = None if fraction is None else fraction * reference.seconds
            interrupt(CLASSIFIER, target, how, after, *extra)
            outcomes.append(assert_target_as_before_or_complete(target, old, reference))
            # The next run cleans what a SIGKILL left and succeeds.
            assert main([str(CLASSIFIER), "-o", str(target), "--no-lock", "--force"]) == 0
            assert tree_digest(target) == reference.digest
            assert not list(target.parent.glob(".proj.promote-*")), "a stale scratch remains"
    return outcomes


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_run_leaves_the_target_as_it_was(
    tmp_path: Path, reference: Reference, how: signal.Signals
) -> None:
    """Interrupted while rendering, promote leaves an absent target absent and old content in
    place; the next run removes the scratch directory a SIGKILL left and succeeds."""
    assert check_interrupts(tmp_path, reference, how, [None]) == ["untouched", "untouched"]


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_at_many_moments(
    tmp_path: Path, reference: Reference, how: signal.Signals
) -> None:
    """The same, from interpreter start-up to the final rename.

    Four moments by default (start-up, analysis, rendering, the final moves); set
    ``PROMOTE_INTERRUPT_MOMENTS=all`` for the full sweep of nine (about four minutes more).
    """
    fractions: list[float | None] = (
        [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1]
        if os.environ.get("PROMOTE_INTERRUPT_MOMENTS") == "all"
        else [0.1, 0.5, 0.9, 1.0]
    )
    check_interrupts(tmp_path, reference, how, fractions)


def test_stale_scratch_is_removed_but_a_live_one_is_kept(tmp_path: Path) -> None:
    """A scratch directory whose run died is removed; one whose run holds its lock is kept."""
    target = tmp_path / "proj"
    dead = tmp_path / ".proj.promote-dead1234"
    (dead / "project").mkdir(parents=True)
    (dead / ".lock").write_text("4242\n")
    live = tmp_path / ".proj.promote-live1234"
    live.mkdir()
    (live / ".lock").write_text("4243\n")
    other = tmp_path / ".other.promote-dead5678"
    other.mkdir()
    (other / ".lock").write_text("4244\n")
    with (live / ".lock").open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert remove_stale_scratch(target) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


def test_a_scratch_being_set_up_is_kept(tmp_path: Path) -> None:
    """A fresh scratch directory without its lock file yet, or with an empty one, is kept."""
    starting = tmp_path / ".proj.promote-new1"
    starting.mkdir()
    opened = tmp_path / ".proj.promote-new2"
    opened.mkdir()
    (opened / ".lock").touch()
    assert remove_stale_scratch(tmp_path / "proj") == []


def git_repository(path: Path) -> None:
    for command in (
        ["init", "--quiet"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "mine"],
    ):
        subprocess.run(["git", *command], cwd=path, check=True)


def test_force_refuses_a_git_repository_with_uncommitted_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--force on a repository with uncommitted changes exits 1, names them and touches nothing."""
    target = tmp_path / "mine"
    old_content(target)
    git_repository(target)
    (target / "notes.txt").write_text("my work, edited")
    (target / "new.py").write_text("x = 1\n")
    before = tree_digest(target)
    assert main([str(CLASSIFIER), "-o", str(target), "--no-lock", "--force"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"Target directory {target} is not replaced" in err
    assert "uncommitted work (2 path(s): notes.txt, new.py)" in err
    assert tree_digest(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_force_replaces_a_clean_git_repository_and_keeps_it_as_backup(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    old = old_content(target)
    git_repository(target)
    assert main([str(CLASSIFIER), "-o", str(target), "--no-lock", "--force"]) == 0
    backup = tmp_path / "mine.backup-1"
    assert tree_digest(backup) == old and (backup / ".git").is_dir()
    assert (target / "Makefile").is_file()


def test_force_refuses_a_target_holding_the_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = tmp_path / "work" / "model.ipynb"
    notebook.parent.mkdir()
    notebook.write_bytes(CLASSIFIER.read_bytes())
    assert main([str(notebook), "-o", str(tmp_path / "work"), "--no-lock", "--force"]) == 1
    assert "it holds the notebook" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["model.ipynb"]


def test_an_unwritable_parent_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main([str(CLASSIFIER), "-o", str(blocker / "proj"), "--no-lock"]) == 1
    err = capsys.readouterr().err
    assert "Could not generate the project" in err and "Traceback" not in err


# -- generated and mutated notebooks (hypothesis) -------------------------------------------------
NAMES = ("df", "X", "y", "X_train", "y_train", "model", "data", "list", "json", "print", "_tmp")
MODULES = ("pandas as pd", "numpy as np", "json", "os", "sklearn.linear_model", "matplotlib")
name_ = st.sampled_from(NAMES)
literal = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.text(max_size=20).map(repr),
    st.sampled_from(["None", "[1, 2]", "{'a': 1}", "'data.csv'", "0.2", "True"]),
)
expression = st.one_of(
    literal,
    name_,
    st.builds(
        "{}.{}({})".format, name_, st.sampled_from(["copy", "head", "fit", "predict"]), name_
    ),
    st.builds("pd.read_csv({})".format, literal),
    st.builds("LogisticRegression(max_iter={})".format, st.integers(1, 500)),
    st.builds("{} + {}".format, name_, literal),
)
statement = st.one_of(
    st.builds("{} = {}".format, name_, expression),
    st.builds("{}.fit({}, {})".format, name_, name_, name_),
    st.builds("{}[{}] = {}".format, name_, literal, expression),
    st.builds("{} += {}".format, name_, literal),
    st.builds("import {}".format, st.sampled_from(MODULES)),
    st.builds(
        "from sklearn.linear_model import {}".format,
        st.sampled_from(["LogisticRegression", "Ridge"]),
    ),
    st.builds("def {}({}):\n    return {}".format, name_, name_, expression),
    st.builds("for {} in range({}):\n    {} = {}".format, name_, literal, name_, expression),
    st.builds(
        "if {}:\n    {}\nelse:\n    pass".format,
        name_,
        st.builds("{} = {}".format, name_, expression),
    ),
    st.builds("with open({}) as {}:\n    {} = {}.read()".format, literal, name_, name_, name_),
    st.builds("print({})".format, expression),
    st.builds("{}.head()".format, name_),
    st.builds(
        "class {}:\n    size = {}".format, st.sampled_from(["Model", "list", "Config"]), literal
    ),
    st.builds("{} = [{} for {} in {}]".format, name_, name_, name_, name_),
)
magic = st.sampled_from(
    [
        "%matplotlib inline",
        "!pip install pandas==2.2.0",
        "%pip install scikit-learn",
        "%%time\nx = 1",
        "%timeit sum([1])",
        "%load_ext autoreload\n%autoreload 2",
        "%%bash\necho hi",
        "df?",
        "??model",
        "%run other.ipynb",
        "%env SEED=1",
        "%%capture out\nprint(1)",
        "%%writefile helper.py\nx = 1",
        "!ls -la",
        "files = !ls",
        "%who",
        "%%html\n<b>x</b>",
    ]
)
cell_source = st.one_of(
    st.lists(statement, min_size=1, max_size=4).map("\n".join),
    magic,
    st.text(max_size=60),  # anything at all, null bytes and all
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)
cell = st.one_of(
    st.builds(
        lambda source, tags, count: code(source, tuple(tags), count),
        cell_source,
        st.lists(
            st.sampled_from(["promote: skip", "promote: stage=train", "promote: stage=load", "x"]),
            max_size=2,
            unique=True,
        ),
        st.none() | st.integers(1, 50),
    ),
    st.builds(
        lambda heading: {"cell_type": "markdown", "metadata": {}, "source": heading},
        st.sampled_from(["## Load the data", "## Train", "## Evaluate", "## Predict", "# Notes"])
        | st.text(max_size=30),
    ),
)
EXAMPLES_PER_PROPERTY = int(os.environ.get("PROMOTE_HYPOTHESIS_EXAMPLES", "25"))  # more: a hunt
PROPERTY = settings(
    max_examples=EXAMPLES_PER_PROPERTY,
    deadline=timedelta(seconds=20),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def promote_or_refuse(content: bytes, *, pretend: bool = True) -> str:
    """promote the notebook in a fresh directory: "promoted" or "refused", never anything else,
    and nothing but the complete project (or nothing at all) beside the notebook."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        notebook = root / "generated.ipynb"
        notebook.write_bytes(content)
        target = root / "out"
        try:
            api.promote(notebook, target, pretend=pretend, lock=False)
        except PromoteError as error:
            assert error.message.strip() and "\n" not in error.message.strip()
            assert sorted(p.name for p in root.iterdir()) == ["generated.ipynb"]
            event(f"refused: {type(error).__name__}")
            return "refused"
        written = sorted(p.name for p in root.iterdir())
        assert written == (["generated.ipynb"] if pretend else ["generated.ipynb", "out"])
        if not pretend:
            assert (target / "Makefile").is_file()
        event("promoted")
        return "promoted"


@PROPERTY
@given(
    cells=st.lists(cell, max_size=8),
    with_model=st.booleans(),
    language=st.sampled_from(["python", "python3", "R"]),
)
def test_generated_notebooks_are_promoted_or_refused(
    cells: list[dict[str, object]], with_model: bool, language: str
) -> None:
    """Notebooks from a grammar of realistic statements, magics and random text."""
    head: tuple[str, ...] = BASE if with_model else ()
    content = notebook_json(*head, *cells, language=language).encode()
    promote_or_refuse(content)


def example_notebooks() -> list[bytes]:
    return [path.read_bytes() for path in sorted(EXAMPLES.glob("*.ipynb"))]


@st.composite
def mutated_cells(draw: st.DrawFn) -> bytes:
    """An example notebook with cells dropped, duplicated or swapped."""
    data = json.loads(draw(st.sampled_from(example_notebooks())))
    cells = data["cells"]
    for _ in range(draw(st.integers(1, 4))):
        if not cells:
            break
        i, j = draw(st.integers(0, len(cells) - 1)), draw(st.integers(0, len(cells) - 1))
        operation = draw(st.sampled_from(["drop", "duplicate", "swap"]))
        if operation == "drop":
            del cells[i]
        elif operation == "duplicate":
            cells.insert(j, json.loads(json.dumps(cells[i])))
        else:
            cells[i], cells[j] = cells[j], cells[i]
    for index, node in enumerate(cells):  # duplicated ids are a schema error, not the point
        node["id"] = f"cell-{index}"
    return json.dumps(data).encode()


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """An example notebook truncated, or with bytes flipped."""
    content = bytearray(draw(st.sampled_from(example_notebooks())))
    if draw(st.booleans()):
        return bytes(content[: draw(st.integers(0, len(content)))])
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(content) - 1))
        content[position] ^= draw(st.integers(1, 255))
    return bytes(content)


@PROPERTY
@given(content=mutated_cells())
def test_examples_with_cells_dropped_duplicated_or_swapped(content: bytes) -> None:
    promote_or_refuse(content)


@PROPERTY
@given(content=mutated_bytes())
def test_examples_truncated_or_with_bytes_flipped(content: bytes) -> None:
    promote_or_refuse(content)


@pytest.mark.slow
@settings(PROPERTY, max_examples=6, deadline=timedelta(seconds=120))
@given(content=st.one_of(mutated_cells(), mutated_bytes()))
def test_mutated_examples_render_completely_or_not_at_all(content: bytes) -> None:
    """A few real renders: the whole project, or a refusal and nothing written."""
    promote_or_refuse(content, pretend=False)


def test_ctrl_c_during_start_up_is_quiet(tmp_path: Path) -> None:
    """A SIGINT while promote is still importing its libraries ends with "aborted", exit 130.

    The delays count from the moment promote's own code runs: a SIGINT inside the interpreter's
    start-up, before any of it, is Python's to report. That moment is measured now, since a
    loaded machine starts Python several times slower.
    """
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import promote.entry"], check=True, timeout=60)
    start_up = time.perf_counter() - start
    for after in (0.0, 0.1, 0.25):
        process = promote_process(CLASSIFIER, tmp_path / f"p{after}")
        time.sleep(start_up + after)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate()
        assert "Traceback" not in err.decode(), err.decode()
        assert not (tmp_path / f"p{after}").exists()


def test_ctrl_c_python_cannot_raise_still_aborts() -> None:
    """A Ctrl-C that lands in a callback (Python prints "Exception ignored" and carries on) aborts.

    The import machinery runs weakref callbacks; a SIGINT delivered inside one cannot propagate.
    """
    script = (
        "import sys, weakref\n"
        "from promote import entry\n"
        "sys.unraisablehook = entry._abort_on_ignored_interrupt\n"
        "class Lock: pass\n"
        "lock = Lock()\n"
        "def callback(_):\n"
        "    raise KeyboardInterrupt\n"
        "ref = weakref.ref(lock, callback)\n"
        "del lock\n"
        "print('carried on')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 130
    assert done.stderr == "aborted\n"
    assert "carried on" not in done.stdout
