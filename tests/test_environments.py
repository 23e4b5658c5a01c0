"""`promote --execute` retries a notebook that a library version broke, in fresh environments."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import analyse_cells, notebook_json
from project_harness import find_uv, install_project, run, venv_command
from test_resolve import FakeIndex

from promote import api, environments, report
from promote import resolve as r
from promote.analysis.drift import Bound
from promote.analysis.failure import Implication, implicated, strip_ansi
from promote.capture import Capture, ExecutionFailure
from promote.cli import EXECUTION_FAILED, main
from promote.planning import plan
from promote.resolve import Resolution, step_back

PACKAGES = {"pandas": ["pandas"], "sklearn": ["scikit-learn"], "numpy": ["numpy"]}
PANDAS_FRAME = (
    "\x1b[0;31mAttributeError\x1b[0m Traceback (most recent call last)\n"
    "Cell \x1b[0;32mIn[3], line 2\x1b[0m\n----> 2 df = df.append(extra)\n"
    "File \x1b[0;32m/env/lib/python3.11/site-packages/pandas/core/generic.py:6299\x1b[0m, "
    "in \x1b[0;36mNDFrame.__getattr__\x1b[0;34m(self, name)\x1b[0m\n"
)


def names(found: tuple[Implication, ...]) -> list[str]:
    return [i.distribution for i in found]


# -- which library a failure points at ----------------------------------------------------------
def test_a_library_frame_in_the_traceback_implicates_that_library() -> None:
    found = implicated(
        "AttributeError", "'DataFrame' object has no attribute 'append'", PANDAS_FRAME, 3, (),
        PACKAGES,
    )  # fmt: skip
    assert names(found) == ["pandas"]
    assert "pandas raised AttributeError: 'DataFrame' object has no attribute" in found[0].reason


def test_the_cell_s_drifted_api_implicates_its_library_first() -> None:
    bound = Bound("scikit-learn", "<1.2", ("sklearn-normalize",), (4,))
    found = implicated("TypeError", "unexpected keyword 'normalize'", "", 4, (bound,), PACKAGES)
    assert names(found) == ["scikit-learn"] and "API drift" in found[0].reason
    assert implicated("TypeError", "x", "", 5, (bound,), PACKAGES) == ()  # another cell


@pytest.mark.parametrize(
    ("name", "value", "expected", "missing"),
    [
        ("ModuleNotFoundError", "No module named 'sklearn.externals.joblib'", "scikit-learn",
         False),
        ("ImportError", "cannot import name 'Imputer' from 'sklearn.preprocessing'", "scikit-learn",
         False),
        ("AttributeError", "module 'numpy' has no attribute 'float'.", "numpy", False),
        ("ModuleNotFoundError", "No module named 'xgboost'", "xgboost", True),
    ],
)  # fmt: skip
def test_import_errors_name_the_library(
    name: str, value: str, expected: str, missing: bool
) -> None:
    found = implicated(name, value, "", 2, (), PACKAGES)
    assert names(found) == [expected] and found[0].missing is missing


APPEND_BOUND = Bound("pandas", "<2", ("pandas-append",), (2,))


@pytest.mark.parametrize(
    ("name", "traceback", "bounds"),
    [
        ("NameError", "Cell In[2], line 1\n----> 1 print(undefined)\n", ()),  # the notebook's bug
        ("FileNotFoundError", PANDAS_FRAME, (APPEND_BOUND,)),  # missing data, whoever raised it
        ("KeyError", PANDAS_FRAME, ()),  # a column the data does not have
        ("AttributeError", "File /env/lib/python3.11/site-packages/IPython/core/x.py:1\n", ()),
    ],
    ids=["name-error", "missing-file", "key-error", "kernel-machinery"],
)
def test_errors_of_the_data_or_the_notebook_implicate_nothing(
    name: str, traceback: str, bounds: tuple[Bound, ...]
) -> None:
    assert implicated(name, "x", traceback, 2, bounds, PACKAGES) == ()


def test_colours_are_stripped_from_tracebacks() -> None:
    assert "\x1b" not in strip_ansi(PANDAS_FRAME)
    assert "site-packages/pandas/core/generic.py:6299" in strip_ansi(PANDAS_FRAME)


@pytest.mark.parametrize(
    ("version", "caps"),
    [("2.2.3", ("<2", "<2.2")), ("1.7.2", ("<1", "<1.7")), ("0.24.2", ("<0.24",)),
     ("3.0.0", ("<3",)), ("dev", ())],
)  # fmt: skip
def test_step_back_caps_the_major_then_the_minor(version: str, caps: tuple[str, ...]) -> None:
    assert step_back(version) == caps


# -- the ladder, with a fake index and fake environments -----------------------------------------
@pytest.fixture(name="index")
def fake_index(monkeypatch: pytest.MonkeyPatch) -> FakeIndex:
    fake = FakeIndex(
        {
            "pandas": ["1.5.3", "2.1.4", "2.2.3"],
            "numpy": ["1.26.4", "2.4.6"],
            "scikit-learn": ["1.9.1"],
            "seaborn": ["0.13.2"],
        }
    )
    monkeypatch.setattr(r, "_compile", fake)
    monkeypatch.setattr(r, "find_uv", lambda: "uv")
    monkeypatch.setattr(environments, "find_uv", lambda: "uv")
    return fake


def fake_environments(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Environments made of the candidate's pins; returns the list of those created."""
    created: list[dict[str, str]] = []

    def create(
        _uv: str, folder: Path, resolution: Resolution, _service: Sequence[str]
    ) -> environments._Environment:
        versions = {p.distribution: p.version or "" for p in resolution.pins}
        created.append(versions)
        return environments._Environment(folder / "python", versions, dict(PACKAGES))

    monkeypatch.setattr(environments, "_create", create)
    return created


def failure(cell: int = 3) -> ExecutionFailure:
    return ExecutionFailure(
        cell, "AttributeError: ...", "Fix it.", 1.0, PANDAS_FRAME, "AttributeError",
        "'DataFrame' object has no attribute 'swapped'",
    )  # fmt: skip


CAPTURE = Capture([], [], {}, {}, seconds=2.0)
CELLS = (
    "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
    "X = pd.DataFrame({'a': [1.0, 2.0]})\ny = [1.0, 2.0]",
    "X = X.swapped()",  # no drift entry knows it: only the traceback ties it to pandas
    "model = LinearRegression()\nmodel.fit(X, y)",
)
REQUIREMENTS = ["pandas==2.2.3", "scikit-learn==1.9.1"]
SERVICE = ["numpy==2.4.6"]


@pytest.mark.usefixtures("index")
def test_the_library_the_traceback_names_is_stepped_back_until_the_notebook_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = fake_environments(monkeypatch)
    analysis = analyse_cells(*CELLS)
    ran_with: list[str] = []

    def run(_python: Path | None) -> Capture | ExecutionFailure:
        version = created[-1]["pandas"]
        ran_with.append(version)
        return CAPTURE if version.startswith("1.") else failure()

    retried = environments.retry(
        failure(), analysis, plan(analysis, "p"), None, run=run, service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES,
    )  # fmt: skip
    # the project's own pins are the failed environment's: skipped; then <2 (pandas 1.5.3).
    assert ran_with == ["1.5.3"]
    assert retried.ran is CAPTURE and retried.resolution is not None
    pins = {p.distribution: p for p in retried.resolution.pins}
    assert pins["pandas"].version == "1.5.3"
    assert "the notebook ran with it (promote --execute, fresh environment 1)" in (
        pins["pandas"].reason
    )
    assert "pandas 2.2.3 failed to run the notebook" in pins["pandas"].reason
    assert [a.ran for a in retried.attempts] == [True]


@pytest.mark.usefixtures("index")
def test_the_project_keeps_the_service_pinned_versions_the_notebook_ran_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numpy, imported by an exploration cell only, is pinned by the service too: the project
    keeps the numpy the notebook ran with (a pandas 1 wheel needs numpy 1), not the service's;
    seaborn, which only the notebook needs, is installed in the environment, not pinned."""
    created = fake_environments(monkeypatch)
    analysis = analyse_cells(*CELLS)
    retried = environments.retry(
        failure(), analysis, plan(analysis, "p"), None,
        run=lambda _: CAPTURE if created[-1]["pandas"].startswith("1.") else failure(),
        service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES, notebook_only=["numpy==2.4.6", "seaborn==0.13.2"],
    )  # fmt: skip
    assert retried.resolution is not None
    pins = {p.distribution: p.version for p in retried.resolution.pins}
    assert pins["pandas"] == "1.5.3" and pins["numpy"] == "1.26.4"
    assert "seaborn" not in pins and created[-1]["seaborn"] == "0.13.2"


@pytest.mark.usefixtures("index")
def test_retries_are_bounded_and_the_first_failure_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    created = fake_environments(monkeypatch)
    analysis = analyse_cells(*CELLS)
    first = failure()
    retried = environments.retry(
        first, analysis, plan(analysis, "p"), None, run=lambda _: failure(), service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES, retries=2,
    )  # fmt: skip
    assert [v["pandas"] for v in created] == ["1.5.3"]  # <2, then nothing below 1.5.3 exists
    assert retried.ran is first and retried.resolution is None
    assert len(retried.attempts) == 1 and not retried.attempts[0].ran


def timeout(cell: int) -> ExecutionFailure:
    return ExecutionFailure(
        cell, "the cell ran longer than 900 s", "Raise --timeout, or make the cell faster.", 900.0,
        timed_out=True,
    )  # fmt: skip


@pytest.mark.usefixtures("index")
def test_a_fresh_environment_that_got_past_the_error_but_ran_out_of_time_is_what_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dipanjan-bike: the kernel's scikit-learn fails at once (criterion="mse"); with the capped
    one the same cell runs past --timeout (its grid search takes 25 minutes). The error reported
    last is the timeout in the fresh environment, not the kernel's error that it got past."""
    fake_environments(monkeypatch)
    analysis = analyse_cells(*CELLS)
    first = failure()
    retried = environments.retry(
        first, analysis, plan(analysis, "p"), None, run=lambda _: timeout(3),
        service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES,
    )  # fmt: skip
    assert len(retried.attempts) == 1  # a timeout is tied to no library: no more environments
    reported = retried.ran
    assert isinstance(reported, ExecutionFailure) and reported is not first
    assert reported.timed_out and reported.cell == 3
    message = reported.message(Path("nb.ipynb"))
    assert message.startswith(
        "Running nb.ipynb stopped at cell 3: in fresh environment 1 (the kernel's environment "
        "failed at cell 3, above): the cell ran longer than 900 s. Raise --timeout"
    )
    assert "Fresh environment 1's pins did not raise the kernel's error" in message
    assert "--modernize" not in message  # no drifted call in these cells: nothing to modernize
    lines = report.retry_lines(retried)
    assert lines[0].startswith("the run in the kernel's environment failed at cell 3: Attrib")
    assert lines[1].startswith("fresh environment 1 (pandas==1.5.3")


@pytest.mark.usefixtures("index")
def test_a_timeout_with_drifted_calls_also_points_at_their_modern_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_environments(monkeypatch)
    cells = (*CELLS[:2], "X = X.append(X, ignore_index=True)", CELLS[3])  # a drift finding
    analysis = analyse_cells(*cells)
    assert analysis.drift
    retried = environments.retry(
        failure(), analysis, plan(analysis, "p"), None, run=lambda _: timeout(4),
        service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES,
    )  # fmt: skip
    assert isinstance(retried.ran, ExecutionFailure) and retried.ran.cell == 4  # a later cell
    assert "apply the changes `promote check --modernize` lists" in retried.ran.hint


@pytest.mark.usefixtures("index")
@pytest.mark.parametrize(
    ("later", "reported"),
    [(failure(2), "kernel's"), (failure(3), "kernel's"), (failure(4), "fresh"),
     (timeout(2), "kernel's"), (timeout(3), "fresh")],
)  # fmt: skip
def test_the_kernel_s_failure_is_reported_unless_a_fresh_environment_got_past_it(
    monkeypatch: pytest.MonkeyPatch, later: ExecutionFailure, reported: str
) -> None:
    """An earlier cell, or the same error again, is no further than the kernel's failure at
    cell 3; a later cell, or the same cell still running when time ran out, is."""
    fake_environments(monkeypatch)
    analysis = analyse_cells(*CELLS)
    first = failure()
    retried = environments.retry(
        first, analysis, plan(analysis, "p"), None, run=lambda _: later, service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES, retries=1,
    )  # fmt: skip
    assert (retried.ran is first) == (reported == "kernel's")
    assert isinstance(retried.ran, ExecutionFailure) and retried.ran.cell == (
        3 if reported == "kernel's" else later.cell
    )


def test_an_error_of_the_notebook_s_own_code_is_not_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(notebook_json(*CELLS[:2], "print(undefined_name)", CELLS[3]))
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", "--no-lock"]) == EXECUTION_FAILED
    err = capsys.readouterr().err
    assert "no other environment tried: the error is not tied to a library version" in err
    assert "at cell 3: NameError" in err


# -- the environment that failed: promote's own, or the one of the kernel --kernel names ----------
def test_a_named_kernel_of_another_environment_is_asked_what_it_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retries start from what the failed environment has: with ``--kernel`` naming a kernel
    of another venv, that venv's versions (here: none), not promote's (which has pandas)."""
    venv = tmp_path / "other"
    run([find_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], tmp_path)
    spec = tmp_path / "jupyter" / "kernels" / "other-env"
    spec.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "other"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    found = environments.kernel_environment("other-env")
    assert found is not None
    versions, _ = found
    assert "pandas" not in versions and "pandas" in api.installed_versions()
    assert environments.kernel_environment("python3") is None  # promote's own interpreter
    assert environments.kernel_environment("no-such-kernel") is None


def test_the_retries_compare_with_the_named_kernel_s_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, object] = {}

    def fake_retry(*_: object, **given: object) -> object:
        seen.update(given)
        return None

    other = ({"pandas": "1.5.3", "numpy": "1.26.4"}, {"pandas": ["pandas"]})
    monkeypatch.setattr(api, "retry", fake_retry)
    monkeypatch.setattr(api, "kernel_environment", lambda kernel: other if kernel == "k" else None)
    analysis = analyse_cells(*CELLS)
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(notebook_json(*CELLS))
    execution = api.Execution(kernel="k")
    api._retry(notebook, analysis, plan(analysis, "p"), failure(), None, execution)
    assert seen["installed"] == other[0] and seen["packages"] == other[1]
    assert "pandas==1.5.3" in seen["notebook_only"]  # type: ignore[operator]
    api._retry(notebook, analysis, plan(analysis, "p"), failure(), None, api.Execution())
    assert seen["installed"] == api.installed_versions()


# -- for real: a notebook written for pandas 1 -----------------------------------------------
APPEND = (
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
    "rng = np.random.RandomState(0)\n"
    "df = pd.DataFrame({'a': rng.normal(size=200), 'b': rng.uniform(size=200)})\n"
    "df['y'] = (df['a'] + df['b'] > 0.5).astype(int)\n"
    "extra = df.sample(20, random_state=1)",
    "# written for pandas 1.x: DataFrame.append was removed in pandas 2.0\n"
    "df = df.append(extra, ignore_index=True)",
    "X = df[['a', 'b']]\ny = df['y']\nmodel = LogisticRegression()\nmodel.fit(X, y)",
    "accuracy = model.score(X, y)\nprint(accuracy)",
)


@pytest.mark.slow
def test_a_pandas_1_notebook_runs_in_a_fresh_environment_and_its_project_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = tmp_path / "old.ipynb"
    notebook.write_text(notebook_json(*APPEND))
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", "--explain-pins"]) == 0, (
        capsys.readouterr()
    )
    out, err = capsys.readouterr()
    assert "the run in the kernel's environment failed at cell 3: AttributeError" in err
    assert "AttributeError: 'DataFrame' object has no attribute 'append'" in err
    assert "fresh environment 1 (" in err and "pandas==1.5.3" in err and "): ran in" in err
    assert "the notebook ran with it (promote --execute, fresh environment 1)" in out
    captured = json.loads((target / "tests" / "parity" / "notebook.json").read_text())
    assert captured["versions"]["pandas"] == "1.5.3"
    assert captured["metrics"]["accuracy"] > 0.9
    assert "pandas==1.5.3" in (target / "requirements.lock").read_text()
    # The project pins what the notebook ran with, and its own tests (parity included) pass there.
    install_project(target)
    output = run([venv_command(target, "pytest"), "-q", "-p", "no:cacheprovider"], target)
    assert " passed" in output and "failed" not in output


@pytest.mark.usefixtures("index")
def test_the_index_is_asked_once_per_version_for_the_last_run_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notebook last run on a known date: the first cap is the newest pandas of that date,
    asked of the index once, not again at each attempt."""
    created = fake_environments(monkeypatch)
    analysis = analyse_cells(*CELLS)
    analysis = dataclasses.replace(
        analysis, evidence=dataclasses.replace(analysis.evidence, saved="2023-06-01")
    )
    asked: list[tuple[str, str]] = []

    def newest_before(distribution: str, date: str) -> str:
        asked.append((distribution, date))
        return "2.1.4"

    monkeypatch.setattr(environments, "newest_before", newest_before)
    retried = environments.retry(
        failure(), analysis, plan(analysis, "p"), None, run=lambda _: failure(),
        service_pins=SERVICE,
        installed={"pandas": "2.2.3", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        packages=PACKAGES, retries=3,
    )  # fmt: skip
    assert [v["pandas"] for v in created] == ["2.1.4", "1.5.3"]  # <=2.1.4 (the date), then <2
    assert asked == [("pandas", "2023-06-01")]
    assert not retried.attempts[-1].ran
