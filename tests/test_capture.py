"""`promote --execute`: the notebook runs once; the project's parity test replays its results."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import CORPUS, EXAMPLES, code, notebook_json, plan_cells, tree_digest
from project_harness import http, install_project, serving, venv_command
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from test_inference_slice import (
    AFTER_SPLIT_CELLS,
    FRAME_FILL_CELLS,
    PASSENGER_CELLS,
    write_passengers,
    write_patients,
    write_students,
)

from promote import kernel_capture
from promote.capture import (
    Capture,
    ExecutionFailure,
    execute,
    max_model_bytes,
    not_servable,
    serving_steps,
    snapshot_cells,
)
from promote.cli import EXECUTION_FAILED, main
from promote.planning.model import Learnt

MODELFILE = (
    Path(__file__).resolve().parents[1]
    / "templates/service/project/src/{{ package_name }}/modelfile.py"
)

FIT = "import pandas as pd\nfrom sklearn.linear_model import LinearRegression"
DATA = "X = pd.DataFrame({'a': [1.0, 2.0, 3.0, 4.0]})\ny = [2.0, 4.0, 6.0, 8.0]"
MODEL = "model = LinearRegression()\nmodel.fit(X, y)"


def write(tmp_path: Path, *cells: str) -> Path:
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(notebook_json(*cells))
    return notebook


def test_execute_records_the_notebooks_results(tmp_path: Path) -> None:
    notebook = write(tmp_path, FIT, DATA, MODEL)
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute"]) == 0
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    assert captured["records"][0] == {"a": 1.0}
    assert captured["predictions"] == pytest.approx([2.0, 4.0, 6.0, 8.0])
    assert "sklearn" in captured["versions"]
    card = (tmp_path / "p" / "docs" / "MODEL_CARD.md").read_text()
    assert "- Fields of one record: `a`." in card

    # The notebook's own fitted model, in the project and in git, with its manifest.
    folder = tmp_path / "p" / "artifacts" / "notebook"
    manifest = json.loads((folder / "model.json").read_text())
    model_file = folder / "model.skops"
    assert manifest["format"] == "skops" and manifest["file"] == model_file.name
    assert manifest["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert manifest["versions"]["scikit-learn"] and manifest["versions"]["skops"]
    assert captured["model"] == "model"  # the notebook's variable
    assert captured["saved_model"] == {
        "directory": "artifacts/notebook",
        "file": "model.skops",
        "format": "skops",
        "sha256": manifest["sha256"],
        "bytes": model_file.stat().st_size,
        "served": True,
    }
    tracked = subprocess.run(
        ["git", "ls-files", "artifacts"], cwd=tmp_path / "p", capture_output=True, text=True
    ).stdout.split()
    assert {"artifacts/notebook/model.skops", "artifacts/notebook/model.json"} <= set(tracked)
    # A complete artifacts directory the service can serve: schema, sample, provenance.
    sample = json.loads((folder / "sample.json").read_text())
    assert sample == {"records": captured["records"], "predictions": captured["predictions"]}
    assert json.loads((folder / "schema.json").read_text()) == captured["schema"]
    described = json.loads((folder / "version.json").read_text())
    assert described["source"] == "captured from the notebook poc.ipynb by promote --execute"
    # Loaded back as the project loads it, it predicts what the notebook predicted.
    model, sha256 = load_with_modelfile(folder)
    assert sha256 == manifest["sha256"]
    assert model.predict(pd.DataFrame({"a": [1.0, 3.0]})).tolist() == pytest.approx([2.0, 6.0])


def test_two_runs_capture_the_same_bytes(tmp_path: Path) -> None:
    """`--execute` twice gives byte-identical projects, the saved model and its hash included.

    skops names array files and references after ``id()`` of the objects and stamps the time;
    the template's ``modelfile`` renumbers them, so a model retrained or captured unchanged
    keeps its SHA-256.
    """
    notebook = EXAMPLES / "breast_cancer_classifier.ipynb"
    for name in ("a", "b"):
        assert main([str(notebook), "-o", str(tmp_path / name), "--execute", "--no-lock"]) == 0
    first, second = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert "artifacts/notebook/model.skops" in first
    assert first == second


def test_a_cell_of_prose_tagged_skip_is_not_run(tmp_path: Path) -> None:
    """promote asks a user to tag a code cell of prose (or of Python 2) `promote: skip`; the
    run then leaves it out too, where the kernel would stop at it with a syntax error."""
    prose = code("This cell explains the data: it is text, not code.", tags=("promote: skip",))
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(notebook_json(FIT, DATA, prose, MODEL))
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute", "--no-lock"]) == 0
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    assert captured["predictions"] == pytest.approx([2.0, 4.0, 6.0, 8.0])


SLICED = (
    "import pandas as pd\nfrom sklearn.linear_model import LinearRegression\n"
    "from sklearn.model_selection import train_test_split",
    "TARGET = 'y'",
    "df = pd.read_csv('data.csv')",
    # the feature steps change the loaded frame in place: its copy as loaded is what requests carry
    "df['ab'] = df['a'] * df['b']\nX = df.drop(columns=TARGET)\ny = df[TARGET]",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "model = LinearRegression()\nmodel.fit(X_train, y_train)",
    "print(undefined_name)",
)


def test_with_feature_steps_the_notebooks_model_is_served_on_the_loaded_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service applies make_features to requests: artifacts/notebook describes the rows as
    loaded (not the model's input), so the service can serve the notebook's model untrained."""
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6, 7, 8], "b": [2.0, 1, 4, 3, 6, 5, 8, 7]})
    frame["y"] = frame["a"] * 3 + frame["b"] * frame["a"]
    frame.to_csv(tmp_path / "data.csv", index=False)
    notebook = write(tmp_path, *SLICED[:-1])
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute", "--no-lock"]) == 0
    folder = tmp_path / "p" / "artifacts" / "notebook"
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["make_features"] == "poc.features:make_features"
    assert [column["name"] for column in schema["columns"]] == ["a", "b"]
    sample = json.loads((folder / "sample.json").read_text())
    train = train_test_split(frame.drop(columns="y"), test_size=0.25, random_state=0)[0]
    assert sample["records"] == train.head(5).to_dict(orient="records")
    model, _ = load_with_modelfile(folder)
    features = train.head(5).assign(ab=train["a"] * train["b"])
    assert sample["predictions"] == pytest.approx(model.predict(features).tolist())
    reference = json.loads((folder / "reference.json").read_text())
    assert sorted(reference["features"]) == ["a", "b"] and reference["rows"] == 6
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    assert captured["saved_model"]["served"] is True
    assert [column["name"] for column in captured["schema"]["columns"]] == ["a", "b", "ab"]

    # The copy promote makes after the load cell keeps the numbers of the cells after it.
    failing = write(tmp_path, *SLICED)
    assert main([str(failing), "-o", str(tmp_path / "q"), "--execute", "--no-lock"]) == (
        EXECUTION_FAILED
    )
    assert "stopped at cell 6: NameError: name 'undefined_name' is not defined" in (
        capsys.readouterr().err
    )


def test_with_feature_steps_that_learn_the_notebooks_model_serves_with_what_they_learnt(
    tmp_path: Path,
) -> None:
    """A scaler and get_dummies fitted by the feature steps: what they learnt in the notebook
    is saved beside its model (as `make train` saves it, traced in model.json), and the
    folder describes the loaded columns, with the notebook's own predictions for them."""
    notebook = write_students(tmp_path)
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute", "--no-lock"]) == 0
    folder = tmp_path / "p" / "artifacts" / "notebook"
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    manifest = json.loads((folder / "model.json").read_text())
    state_file = folder / "features.skops"
    assert manifest["feature_state"]["format"] == "skops"
    assert (
        manifest["feature_state"]["sha256"] == hashlib.sha256(state_file.read_bytes()).hexdigest()
    )
    section = captured["saved_model"]
    assert section["served"] is True and section["feature_state"]["file"] == "features.skops"
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["make_features"] == "students.features:make_features"
    # the loaded columns the steps read (not the student's name), as requests carry them
    names = [column["name"] for column in schema["columns"]]
    assert names == ["grade", "obedient", "research", "project"]
    sample = json.loads((folder / "sample.json").read_text())
    assert list(sample["records"][0]) == names
    assert sample["predictions"] == captured["predictions"]  # the notebook's own
    assert "features.skops" in json.loads((folder / "version.json").read_text())["files"]
    tracked = subprocess.run(
        ["git", "ls-files", "artifacts"], cwd=tmp_path / "p", capture_output=True, text=True
    ).stdout.split()
    assert "artifacts/notebook/features.skops" in tracked
    # What the notebook learnt, under fit_features' keys, loaded as the service loads it.
    state = run_modelfile("load_state", folder)
    assert sorted(state) == ["X_columns", "ss"]
    assert state["ss"].mean_.tolist() == pytest.approx(
        pd.read_csv(tmp_path / "students.csv")[["research", "project"]].mean().tolist()
    )
    assert "grade_A" in state["X_columns"] and "research" in state["X_columns"]


# make_features of a notebook whose steps scale `a` and `b` (with what the notebook learnt)
STEPS = """\
def make_features(df: Any, feature_state: dict[str, Any]) -> Any:
    scaler = feature_state["scaler"]
    df[["a", "b"]] = scaler.transform(df[["a", "b"]])
    return df
"""


ROWS = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6], "b": [2.0, 1, 4, 3, 6, 5]})


def scaled(scaler: Any = None, **serving: Any) -> tuple[Any, Any, dict[str, Any]]:
    """A model fitted on `a` and `b` scaled by a scaler, the rows as loaded, and what
    kernel_capture gets to check the service's steps (``serving``: the scaler by default)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    loaded = ROWS.copy()
    fitted = StandardScaler().fit(loaded)
    features = pd.DataFrame(fitted.transform(loaded), columns=["a", "b"])
    model = LinearRegression().fit(features, [1.0, 3, 2, 5, 4, 6])
    checked = {
        "state": {"scaler": fitted if scaler is None else scaler},
        "entries": [("scaler", "scaler", "after cell 4")],
        "steps": STEPS,
        "function": "make_features",
        "namespace": {},
        **serving,
    }
    return model, (features, loaded), checked


def test_the_service_s_steps_are_checked_with_what_the_notebook_learnt(tmp_path: Path) -> None:
    """In the kernel, make_features with what the notebook's steps learnt must give its model
    the rows it was fitted on; what they learnt is saved beside the model only then, and
    model.json records it; else the reason is given and the folder holds the model alone."""
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def capture(model: Any, frames: Any, serving: dict[str, Any], folder: Path) -> Any:
        folder.mkdir()
        features, loaded = frames
        return kernel_capture.capture(
            model,
            features,
            {},
            2,
            "",
            MODELFILE.read_text(),
            str(folder),
            0,
            loaded,
            [],
            (),
            serving,
        )

    good = capture(*scaled(), tmp_path / "good")
    assert good["requests"]["state_error"] == ""
    assert good["model"]["feature_state"]["file"] == "features.skops"
    assert run_modelfile("load_state", tmp_path / "good")["scaler"].mean_.tolist() == [3.5, 3.5]

    other = StandardScaler().fit(pd.DataFrame({"a": [0.0, 10], "b": [0.0, 10]}))
    same = StandardScaler().fit(ROWS)
    cases = {
        "other": (other, {}, "do not give its model the rows it was fitted on (row, prediction"),
        "missing": (None, {"state": {}}, "the run left no `scaler` after cell 4"),
        "failing": (None, {"steps": STEPS.replace('"b"]]', '"c"]]')}, "fail on the rows"),
        # the same scaling, but neither skops nor joblib can save a lambda
        "unsaved": (
            FunctionTransformer(lambda x: same.transform(x)),
            {},
            "it could not be saved (PicklingError",
        ),
    }
    for name, (scaler, changed, why) in cases.items():
        folder = tmp_path / name
        captured = capture(*scaled(scaler, **changed), folder)
        problem = captured["requests"]["state_error"] or captured["model"].get("state_error")
        assert why in problem, (name, problem)
        assert "feature_state" not in captured["model"]
        assert "feature_state" not in json.loads((folder / "model.json").read_text())
        assert sorted(path.name for path in folder.iterdir()) == ["model.json", "model.skops"]


def test_what_the_capture_could_not_save_leaves_the_notebooks_model_to_make_train() -> None:
    """The reason the kernel gave is in the capture, and the folder is not made servable."""
    from promote.capture import Capture, capture_json, notebook_model_files

    scaled_steps = SLICED[3].replace(
        "df['ab'] = df['a'] * df['b']",
        "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler()\n"
        "df[['a', 'b']] = scaler.fit_transform(df[['a', 'b']])",
    )
    plan = plan_cells(*SLICED[:3], scaled_steps, SLICED[4])
    assert plan.inference.state, plan.inference.note
    schema = {"kind": "table", "columns": [{"name": "a", "dtype": "float64", "type": "number"}]}
    why = "the run left no `scaler` after cell 4"
    requests = {"schema": schema, "records": [], "predictions": [], "dropped": {}, "reference": {}}
    model = {"file": "model.skops", "format": "skops", "sha256": "ab", "bytes": 9}
    kept = Capture(
        [], [], {}, {}, schema=schema, model=model, requests={**requests, "state_error": why}
    )
    section = json.loads(capture_json(kept, plan))["saved_model"]
    assert section["served"] is False
    assert f"could not save the notebook's beside its model: {why};" in section["not_served"]
    assert notebook_model_files(kept, plan, Path("saved"))[1] == {}
    # Saved: the folder is complete, with the state file copied beside the model.
    state = {"file": "features.skops", "format": "skops", "sha256": "cd"}
    saved = Capture(
        [],
        [],
        {},
        {},
        schema=schema,
        model={**model, "feature_state": state},
        requests={**requests, "state_error": ""},
    )
    copies, texts = notebook_model_files(saved, plan, Path("saved"))
    assert copies[Path("saved", "features.skops")] == "artifacts/notebook/features.skops"
    assert "features.skops" in json.loads(texts["artifacts/notebook/version.json"])["files"]


# The patients notebook with its split, its scaler and its model in one cell (cell 7): the
# training rows keep their labels only between the split and the scaler.
ONE_CELL = (*AFTER_SPLIT_CELLS[:6], "\n".join(AFTER_SPLIT_CELLS[6:9]), *AFTER_SPLIT_CELLS[9:])
SPLIT = "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)"


def test_the_plan_says_where_the_kernel_takes_what_the_steps_learnt_inside_a_cell() -> None:
    """After the split: the training rows right after the split, the scaler right after it is
    fitted (where training records them), by a transformer installed before the cell and
    removed after it; the kernel's make_features has prepare_features with it. A statistic:
    right before the statement that uses it, as fit_features records it."""
    plan = plan_cells(*ONE_CELL)
    inference = plan.inference
    assert inference.trained == Learnt("fitted_rows", "X_train", 7, statement=SPLIT)
    fitted = "X_train = scaler.fit_transform(X_train)"
    assert inference.entries == (Learnt("scaler", "scaler", 7, statement=fitted),)
    cells = snapshot_cells(plan)
    assert sorted(cells) == [3, 6, 7]  # after the load; before and after the split's cell
    assert "ast_transformers.append" in cells[6] and "ast_transformers[:]" in cells[7]
    steps = serving_steps(plan)
    assert "def prepare_features(df" in steps and "def make_features(df" in steps
    passengers = plan_cells(*PASSENGER_CELLS)
    statistics = passengers.inference.entries
    # where the kernel takes it, as the reason says when the run left none
    assert "before `df['age'] = df['age'].fillna(df['age'].median())` in cell 5" in (
        serving_steps(passengers)
    )
    assert [(e.key, e.cell, e.before) for e in statistics] == [
        ("df['age'].median()", 5, True),
        ("df['port'].mode()[0]", 5, True),
        ("df.fare.mean()", 5, True),
        ("df.fare.std()", 5, True),
    ]
    assert statistics[0].statement == "df['age'] = df['age'].fillna(df['age'].median())"


def test_the_notebooks_model_fitted_after_the_split_is_served_untrained(tmp_path: Path) -> None:
    """Split, scaler and model in one cell, the model fitted on the scaler's array: the kernel
    takes the training rows' labels right after the split and the scaler right after it is
    fitted; make_features (prepare_features, then the scaler) on those rows as loaded gives the
    notebook's predictions, so the notebook's model is served with its scaler beside it."""
    notebook = write_patients(tmp_path)
    notebook.write_text(notebook_json(*ONE_CELL))
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute", "--no-lock"]) == 0
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    section = captured["saved_model"]
    assert section["served"] is True, section
    assert section["feature_state"]["file"] == "features.skops"
    folder = tmp_path / "p" / "artifacts" / "notebook"
    loaded = pd.read_csv(tmp_path / "patients.csv")
    train = train_test_split(loaded, test_size=0.25, random_state=0)[0]
    sample = json.loads((folder / "sample.json").read_text())
    columns = ["age", "weight", "height", "glucose"]  # as loaded, without the id and the target
    assert sample["records"] == train[columns].head(5).to_dict(orient="records")
    assert sample["predictions"] == captured["predictions"]  # the notebook's own
    scaler = run_modelfile("load_state", folder)["scaler"]
    bmi = train["weight"] / (train["height"] / 100) ** 2
    assert scaler.mean_.tolist() == pytest.approx(
        [train["age"].mean(), bmi.mean(), train["glucose"].mean()]
    )


def test_a_statistic_is_taken_right_before_the_statement_that_uses_it(tmp_path: Path) -> None:
    """The median that fills the gaps of ``age`` is the median of ``age`` as the cell changed
    it just before (plus one), not as the cell received it nor as it ends: the notebook's
    model is served with the four statistics fit_features would learn."""
    cells = list(PASSENGER_CELLS)
    cells[4] = "df['age'] = df['age'] + 1\n" + cells[4]
    notebook = write_passengers(tmp_path, tuple(cells))
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute", "--no-lock"]) == 0
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    assert captured["saved_model"]["served"] is True, captured["saved_model"]
    state = run_modelfile("load_state", tmp_path / "p" / "artifacts" / "notebook")
    loaded = pd.read_csv(tmp_path / "passengers.csv")
    assert state["df['age'].median()"] == (loaded["age"] + 1).median() != loaded["age"].median()
    assert state["df['port'].mode()[0]"] == loaded["port"].mode()[0]
    assert state["df.fare.std()"] == pytest.approx(loaded["fare"].std())


def test_an_array_s_rows_are_the_training_rows_taken_after_the_split() -> None:
    """The model's input is an array: its rows are those of the labels taken right after the
    split, in order; without them, or with labels that do not fit, the reason is given and the
    notebook's model is left to make train."""
    from sklearn.linear_model import LinearRegression

    loaded = pd.DataFrame(
        {"a": [1.0, 2, 3, 4, 5, 6], "y": [2.0, 4, 6, 8, 10, 12]}, index=[10, 11, 12, 13, 14, 15]
    )
    labels = pd.Index([13, 10, 12])
    fit_input = loaded.loc[labels, ["a"]].to_numpy()
    model = LinearRegression().fit(fit_input, loaded.loc[labels, "y"])

    def captured(labels: Any, rows: Any = loaded) -> dict[str, Any]:
        arguments = (rows, ["y"], (), None, labels)
        return kernel_capture.capture(model, fit_input, {}, 2, "", "", "", 0, *arguments)

    good = captured(labels)
    assert good["requests"]["records"] == [{"a": 4.0}, {"a": 1.0}]
    assert good["requests"]["predictions"] == pytest.approx([8.0, 2.0])
    assert good["unmatched"] == ""
    cases = {
        "no row labels (an array), and the run took none": captured(None),
        "2 training rows after the split, 3 rows in the model's input": captured(labels[:2]),
        "rows the model was fitted on are not in the frame as loaded": captured(
            pd.Index([13, 10, 99])
        ),
        "the frame as loaded repeats row labels": captured(labels, loaded.set_axis([10] * 6)),
    }
    plan = plan_cells(*ONE_CELL)
    for why, result in cases.items():
        assert result["requests"] is None and why in result["unmatched"], result["unmatched"]
        capture = Capture([], [], {}, {}, model={"file": "model.skops"}, unmatched=why)
        assert f"fitted on: {why} (`X_train`, cell 7); the service serves" in not_servable(
            capture, plan
        )


def test_the_notebooks_requests_carry_the_columns_the_steps_read() -> None:
    """A loaded column no feature step reads (an id) is not in what requests carry: the
    kernel keeps the columns the plan names, as the pipeline does."""
    loaded = pd.DataFrame({"id": [7, 8, 9], "a": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    fit_input = loaded[["a"]]
    captured = kernel_capture.capture(
        fitted(), fit_input, {}, 2, "", "", "", 0, loaded, ["y"], ["a"]
    )
    assert [c["name"] for c in captured["requests"]["schema"]["columns"]] == ["a"]
    everything = kernel_capture.capture(fitted(), fit_input, {}, 2, "", "", "", 0, loaded, ["y"])
    assert [c["name"] for c in everything["requests"]["schema"]["columns"]] == ["id", "a"]


def load_with_modelfile(folder: Path) -> tuple[Any, str]:
    """``modelfile.load_model`` of the template, run here."""
    loaded: tuple[Any, str] = run_modelfile("load_model", folder)
    return loaded


def run_modelfile(function: str, folder: Path) -> Any:
    """A function of the template's ``modelfile.py``, run here on ``folder``."""
    namespace: dict[str, Any] = {"__name__": "promote_modelfile"}
    exec(compile(MODELFILE.read_text(), str(MODELFILE), "exec"), namespace)
    return namespace[function](folder)


def saved_model(model: Any, folder: Path, max_bytes: int = 10**7) -> dict[str, Any]:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    captured = kernel_capture.capture(
        model, frame, {}, 2, "", MODELFILE.read_text(), str(folder), max_bytes
    )
    result: dict[str, Any] = captured["model"]
    return result


def fitted() -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), [2.0, 4.0, 6.0])


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    saved = saved_model(fitted(), tmp_path)
    path = tmp_path / saved["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="was changed or replaced after training"):
        load_with_modelfile(tmp_path)


def test_a_model_over_the_size_cap_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMOTE_MAX_MODEL_MB", "0.0001")  # 100 bytes
    saved = saved_model(fitted(), tmp_path, max_model_bytes())
    assert saved["error"].startswith("its file is 0.0 MB, over the 0 MB promote writes")
    assert "PROMOTE_MAX_MODEL_MB" in saved["error"] and "make train" in saved["error"]
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv("PROMOTE_MAX_MODEL_MB", "")
    assert max_model_bytes() == 20_000_000


def double(values: Any) -> Any:
    return values * 2


def test_a_model_using_the_notebooks_own_functions_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # As in a kernel: the function is the notebook's (module __main__).
    monkeypatch.setattr(double, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "double", double, raising=False)
    model = make_pipeline(FunctionTransformer(double), LinearRegression())
    model.fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), [2.0, 4.0, 6.0])
    saved = saved_model(model, tmp_path)
    assert saved["format"] == "joblib"  # skops refused __main__.double: it is not trusted
    assert saved["error"].startswith("it uses functions or classes defined in the notebook")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("cell", "options", "expected"),
    [
        ("raise ValueError('bad data')", [], "at cell 3: ValueError: bad data"),
        ("pd.read_csv('missing.csv')", [], "at cell 3: FileNotFoundError"),
        (
            "raise ValueError('\\n\\nAll 5 fits failed.\\nSee below.\\n\\nTraceback (...)')",
            [],
            "at cell 3: ValueError: All 5 fits failed. See below. Fix the cell",
        ),
    ],
    ids=["error", "missing-file", "long-message-on-one-line"],
)
def test_a_failing_run_is_reported_and_the_project_still_generated(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cell: str,
    options: list[str],
    expected: str,
) -> None:
    notebook = write(tmp_path, FIT, DATA, cell, MODEL)
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", *options]) == EXECUTION_FAILED
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert (target / "Makefile").is_file()
    assert not (target / "tests" / "parity" / "notebook.json").exists()


def test_a_looping_cell_is_stopped_by_its_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = write(tmp_path, "x = 1", "y = x + 1", "while True:\n    pass", FIT, DATA, MODEL)
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", "--timeout", "5"]) == (
        EXECUTION_FAILED
    )
    assert "at cell 3: the cell ran longer than 5 s" in capsys.readouterr().err
    assert (target / "Makefile").is_file()


def test_a_looping_cell_is_stopped_in_an_environment_s_own_kernel_too(tmp_path: Path) -> None:
    """The kernel of another interpreter (``--execute``'s retries) keeps the cell's timeout."""
    notebook = write(tmp_path, "x = 1", "while True:\n    pass", FIT, DATA, MODEL)
    started = time.monotonic()
    ran = execute(
        notebook, plan_cells(FIT, DATA, MODEL), cell_timeout=5, python=Path(sys.executable)
    )
    assert isinstance(ran, ExecutionFailure), ran
    assert (ran.cell, ran.error, ran.timed_out) == (2, "the cell ran longer than 5 s", True)
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    ("cells", "options", "expected"),
    [
        (("import os\nos._exit(3)",), [], "at cell 1: the kernel died while running the cell"),
        (
            ("import time\ntime.sleep(300)",),
            ["--total-timeout", "20"],
            "at cell 1: the run exceeded its 20 s budget",
        ),
    ],
    ids=["kernel-dies", "a-cell-past-the-total-budget"],
)
def test_a_dead_kernel_or_an_exhausted_budget_is_reported_in_time(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cells: tuple[str, ...],
    options: list[str],
    expected: str,
) -> None:
    # The cells under test come first: the budget counts from the kernel's start.
    notebook = write(tmp_path, *cells, FIT, DATA, MODEL)
    started = time.monotonic()
    code = main([str(notebook), "-o", str(tmp_path / "p"), "--execute", "--no-lock", *options])
    assert code == EXECUTION_FAILED
    assert time.monotonic() - started < 150  # the budget, not the cell, decides when it stops
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert (tmp_path / "p" / "Makefile").is_file()


@pytest.mark.slow
def test_parity_test_passes_then_catches_a_changed_hyper_parameter(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    shutil.copytree(EXAMPLES, folder)
    target = tmp_path / "project"
    assert main([str(folder / "diabetes_regressor.ipynb"), "-o", str(target), "--execute"]) == 0
    install_project(target)
    pytest_bin = venv_command(target, "pytest")

    passed = subprocess.run(
        [pytest_bin, "-q", "tests/test_parity.py"], cwd=target, capture_output=True, text=True
    )
    assert passed.returncode == 0, passed.stdout
    assert "5 passed" in passed.stdout  # the notebook's own saved model among them
    # Untrained, the service serves the notebook's own model: a request carries the loaded
    # columns, the service applies make_features, and the model predicts as in the notebook.
    sample = json.loads((target / "artifacts" / "notebook" / "sample.json").read_text())
    assert "bmi_x_bp" not in sample["records"][0] and "bmi" in sample["records"][0]
    serve = venv_command(target, "diabetes-regressor-serve")
    with serving([serve], target, tmp_path / "serve.log") as url:
        assert http("GET", f"{url}/ready")[0] == 200
        status, body = http("POST", f"{url}/predict/batch", sample["records"])
        assert status == 200, body
        assert [row["model_version"] for row in body] == ["notebook"] * len(body)
        got = [row["prediction"] for row in body]
        assert got == pytest.approx(sample["predictions"], rel=1e-9)
    # The hyper-parameter is a setting (settings.py) or a literal in the train module.
    edited = []
    for module in ("settings.py", "train.py"):
        path = target / "src" / "diabetes_regressor" / module
        text = path.read_text()
        changed = text.replace("max_depth: int = 2", "max_depth: int = 3")
        changed = changed.replace("max_depth=2", "max_depth=3")
        if changed != text:
            path.write_text(changed)
            edited.append(module)
    assert edited, "max_depth=2 is neither in settings.py nor in train.py"
    failed = subprocess.run(
        [pytest_bin, "-q", "tests/test_parity.py"], cwd=target, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "predictions differ from the notebook's" in failed.stdout
    # The notebook's saved model is checked against what the notebook predicted: a recorded
    # prediction that differs fails it.
    capture = target / "tests" / "parity" / "notebook.json"
    data = json.loads(capture.read_text())
    data["predictions"][0] += 1.0
    capture.write_text(json.dumps(data))
    own = subprocess.run(
        [pytest_bin, "-q", "tests/test_parity.py", "-k", "own_model"],
        cwd=target,
        capture_output=True,
        text=True,
    )
    assert own.returncode != 0
    assert "the notebook's saved model predicts differently" in own.stdout


@pytest.mark.slow
def test_untrained_the_service_serves_the_notebooks_model_with_what_its_steps_learnt(
    tmp_path: Path,
) -> None:
    """A scaler and get_dummies fitted outside the model: with no `make train`, the installed
    project serves the notebook's own model on the loaded columns (make_features with what
    the notebook's steps learnt) and answers as the notebook predicted; its own tests pass,
    and a changed state file is refused."""
    target = tmp_path / "project"
    tested = promoted_and_tested(write_students(tmp_path), target, "-rs")
    assert "test_parity.py" not in tested, tested  # none of them skipped
    captured = json.loads((target / "tests" / "parity" / "notebook.json").read_text())
    folder = target / "artifacts" / "notebook"
    sample = json.loads((folder / "sample.json").read_text())
    assert not (target / "artifacts" / "model.json").exists()  # nothing trained
    with serving([venv_command(target, "students-serve")], target, tmp_path / "s.log") as url:
        assert http("GET", f"{url}/ready")[0] == 200
        status, body = http("POST", f"{url}/predict/batch", sample["records"])
        assert status == 200, body
        assert [row["model_version"] for row in body] == ["notebook"] * len(body)
        # the notebook's own predictions for those rows (recorded from the model's input)
        assert [row["prediction"] for row in body] == captured["predictions"]
        # a grade the notebook never saw: its get_dummies columns are zeros, as in training
        status, one = http("POST", f"{url}/predict", {**sample["records"][0], "grade": "Z"})
        assert status == 200 and one["model_version"] == "notebook", one
    state_file = folder / "features.skops"
    state_file.write_bytes(state_file.read_bytes() + b"\0")
    load = "from pathlib import Path\nfrom students import artifacts\nartifacts.load(Path(%r))"
    refused = subprocess.run(
        [venv_command(target, "python"), "-c", load % str(folder)],
        cwd=target,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "features.skops has SHA-256" in refused.stderr, refused.stderr


@pytest.mark.slow
def test_untrained_the_service_serves_the_notebooks_model_fitted_after_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scaler fitted after the split, the model fitted on its array: with no `make train`,
    the installed project serves the notebook's own model (version `notebook`) on the raw
    columns of each training row, with the notebook's predictions; its own tests pass."""
    target = tmp_path / "project"
    tested = promoted_and_tested(write_patients(tmp_path), target, "-rs")
    assert "test_parity.py" not in tested, tested  # none of them skipped
    assert not (target / "artifacts" / "model.json").exists()  # nothing trained
    notebook: dict[str, Any] = {}
    monkeypatch.chdir(tmp_path)
    code = "\n".join(c for c in AFTER_SPLIT_CELLS if not c.startswith("# md:"))
    exec(compile(code, "patients.ipynb", "exec"), notebook)
    rows = pd.read_csv(tmp_path / "patients.csv").loc[notebook["y_train"].index]
    records = rows[["age", "weight", "height", "glucose"]].to_dict(orient="records")
    expected = notebook["model"].predict(notebook["X_train"]).tolist()
    with serving([venv_command(target, "patients-serve")], target, tmp_path / "s.log") as url:
        status, body = http("POST", f"{url}/predict/batch", records)
        assert status == 200, body
        assert {row["model_version"] for row in body} == {"notebook"}
        assert [row["prediction"] for row in body] == expected
        status, one = http("POST", f"{url}/predict", records[0])
        assert (status, one["model_version"], one["prediction"]) == (200, "notebook", expected[0])


CANDIDATE_CELLS = (
    FIT + "\nfrom sklearn.tree import DecisionTreeRegressor",
    "X = pd.DataFrame({'a': [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})\ny = [2.0, 4.0, 6.0, 9.0, 9.5, 13.0]",
    "models = {'linear': LinearRegression(),\n"
    "          'stump': DecisionTreeRegressor(max_depth=1, random_state=0)}",
    code(
        "for name, candidate in models.items():\n    candidate.fit(X, y)\n"
        "    print(name, candidate.score(X, y))",
        tags=('promote: model=models["linear"]',),
    ),
)


def test_the_model_a_tag_chose_among_a_loop_s_candidates_is_read_in_the_kernel(
    tmp_path: Path,
) -> None:
    """The kernel evaluates the tag's expression after the run: the chosen candidate's
    predictions are recorded and it is the model saved, not the loop's last candidate."""
    notebook = tmp_path / "zoo.ipynb"
    notebook.write_text(notebook_json(*CANDIDATE_CELLS))
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", "--no-lock"]) == 0
    captured = json.loads((target / "tests" / "parity" / "notebook.json").read_text())
    assert captured["model"] == 'models["linear"]'
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    y = [2.0, 4.0, 6.0, 9.0, 9.5, 13.0]
    linear = LinearRegression().fit(pd.DataFrame({"a": [*frame["a"], 6.0]}), y)
    assert captured["predictions"] == pytest.approx(linear.predict(frame).tolist(), rel=1e-9)
    assert captured["saved_model"]["served"] is True
    train = (target / "src" / "zoo" / "train.py").read_text()
    assert 'model = models["linear"]' in train


# --- what is recorded: the input schema, reference statistics, no personal data -------------

PEOPLE = """\
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

people = pd.DataFrame({
    "age": [25, 32, 47, 51, 62, 23, 36, 44],
    "income": [1.5, 2.0, None, 3.5, 4.0, 1.0, 2.5, 3.0],
    "plan": ["basic", "pro", "basic", "pro", "pro", "basic", "pro", "basic"],
    "email": [f"user{i}@example.com" for i in range(8)],
    "contact": ["+44 20 7946 0958", "555-123-4567"] * 4,
    "customerName": ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal"],
})
bought = [0, 1, 0, 1, 1, 0, 1, 0]"""
PEOPLE_MODEL = """\
model = make_pipeline(
    make_column_transformer((OneHotEncoder(), ["plan"]), ("passthrough", ["age"])),
    LogisticRegression(),
)
model.fit(people, bought)"""


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("people")
    notebook = write(folder, PEOPLE, PEOPLE_MODEL)
    target = folder / "p"
    assert main([str(notebook), "-o", str(target), "--execute", "--no-lock"]) == 0
    text = (target / "tests" / "parity" / "notebook.json").read_text()
    return {"text": text, "data": json.loads(text), "card": (target / "docs" / "MODEL_CARD.md")}


def test_the_input_schema_is_recorded_as_the_model_saw_it(people: dict[str, Any]) -> None:
    columns = {column["name"]: column for column in people["data"]["schema"]["columns"]}
    assert list(columns) == ["age", "income", "plan", "email", "contact", "customerName"]
    assert columns["age"] == {
        "name": "age",
        "dtype": "int64",
        "type": "integer",
        "nullable": False,
        "minimum": 23.0,
        "maximum": 62.0,
    }
    assert columns["income"]["nullable"] and columns["income"]["type"] == "number"
    assert columns["plan"]["categories"] == ["basic", "pro"]
    # personal columns keep their name and type, never their values
    assert "categories" not in columns["email"] and "minimum" not in columns["contact"]


def test_a_model_whose_sample_lacks_personal_columns_is_kept_but_not_served(
    people: dict[str, Any],
) -> None:
    model = people["data"]["saved_model"]
    assert model["served"] is False and model["file"] == "model.skops"
    assert "personal data" in model["not_served"]
    folder = people["card"].parents[1] / "artifacts" / "notebook"
    assert sorted(path.name for path in folder.iterdir()) == ["model.json", "model.skops"]


def test_personal_data_is_left_out_with_the_reason(people: dict[str, Any]) -> None:
    data, text = people["data"], people["text"]
    dropped = data["dropped"]["columns"]
    assert dropped == {
        "email": "the name says it holds an e-mail address ('email')",
        "contact": "values look like phone numbers",
        "customerName": "the name says it holds a person's name ('name')",
    }
    assert "personal data" in data["dropped"]["note"]
    assert data["records"][0] == {"age": 25, "income": 1.5, "plan": "basic"}
    for secret in ("example.com", "7946", "555-123", "Ann"):
        assert secret not in text
    assert "`email` (the name says it holds an e-mail address" in people["card"].read_text()


def test_reference_statistics_of_the_training_input_and_predictions(
    people: dict[str, Any],
) -> None:
    reference = people["data"]["reference"]
    assert reference["rows"] == 8 and reference["task"] == "classification"
    assert set(reference["features"]) == {"age", "income", "plan"}
    assert reference["features"]["plan"]["shares"] == {"basic": 0.5, "pro": 0.5}
    assert reference["features"]["income"]["missing_share"] == 0.125
    assert reference["features"]["age"]["min"] == 23.0
    shares = reference["predictions"]["shares"]
    assert set(shares) <= {"0", "1"} and sum(shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("value", "phone"),
    [
        ("555-123-4567", True),
        ("(020) 7946 0958", True),
        ("+33612345678", True),
        ("2013-08-21", False),
        ("2013-08-21 10:15:00", False),
        ("1234567890", False),
        ("-123456789.5", False),
        ("208 Michael Ferry Apt. 674", False),
    ],
)
def test_phone_numbers_are_told_from_dates_and_numbers(value: str, phone: bool) -> None:
    assert kernel_capture.looks_like_phone(value) is phone


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        ("customerEmail", True),
        ("ip_address", True),
        ("DateOfBirth", True),
        ("api_token", True),
        ("Pclass", False),
        ("zip", False),
        ("tokens_count", False),
        ("feature_names", False),
    ],
)
def test_personal_column_names(name: str, dropped: bool) -> None:
    frame = pd.DataFrame({name: [1, 2]})
    assert (name in kernel_capture.personal_columns(frame, "table")) is dropped


@pytest.mark.slow
def test_parity_passes_without_the_personal_columns_in_the_sample(tmp_path: Path) -> None:

    notebook = write(tmp_path, PEOPLE, PEOPLE_MODEL)
    assert "4 passed" in promoted_and_tested(notebook, tmp_path / "p", "tests/test_parity.py")


@pytest.mark.slow
def test_a_project_filling_gaps_with_column_medians_passes_all_its_tests(tmp_path: Path) -> None:
    """Gaps filled with each column's median and a column of ticket numbers that the steps
    drop: installed, the project's whole suite passes untrained, parity included. The tickets
    (every row its own) were monitored as a category, and two draws of the same rows showed
    drift; the gaps made the validation test count rows it never changed."""
    notebook = write_passengers(tmp_path, FRAME_FILL_CELLS)
    target = tmp_path / "p"
    tested = promoted_and_tested(notebook, target, "-rs")
    assert "test_parity.py" not in tested, tested  # none of them skipped
    reference = json.loads((target / "artifacts" / "notebook" / "reference.json").read_text())
    assert sorted(reference["features"]) == ["age", "fare", "port"]  # not the tickets


def promoted_and_tested(notebook: Path, target: Path, *arguments: str) -> str:
    """Promote ``notebook`` with --execute into ``target``, install the project and run its
    tests (pytest's ``arguments``), which must pass; returns what pytest printed."""
    assert main([str(notebook), "-o", str(target), "--execute"]) == 0
    install_project(target)
    tested = subprocess.run(
        [venv_command(target, "pytest"), "-q", "-p", "no:cacheprovider", *arguments],
        cwd=target,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout
    return tested.stdout


def test_a_frame_with_a_repeated_column_name_is_captured_without_its_values() -> None:
    class Model:
        def predict(self, rows: pd.DataFrame) -> list[int]:
            return [0] * len(rows)

    frame = pd.DataFrame([[1, "ann@example.com"], [2, "bob@example.org"]], columns=["a", "a"])
    captured = kernel_capture.capture(Model(), frame, {}, 5)
    assert captured["dropped"] == {"a": "values look like e-mail addresses"}
    assert "example" not in json.dumps(captured)
    assert [column["type"] for column in captured["schema"]["columns"]] == ["integer", "string"]


# --- XGBoost and LightGBM: in a venv of their own (they are not promote's dependencies) -------

BOOSTED = """\
import json, sys
from pathlib import Path

import numpy as np
import lightgbm
import xgboost
from sklearn.datasets import load_breast_cancer, load_diabetes

capture_source, modelfile_source, folder = sys.argv[1:4]
capture = {"__name__": "promote_kernel_capture"}
exec(compile(Path(capture_source).read_text(), "kernel_capture.py", "exec"), capture)
modelfile = {"__name__": "promote_modelfile"}
exec(compile(Path(modelfile_source).read_text(), "modelfile.py", "exec"), modelfile)
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
models = {
    "XGBClassifier": (xgboost.XGBClassifier(n_estimators=10), X, y),
    "XGBRegressor": (xgboost.XGBRegressor(n_estimators=10), Xr, yr),
    "LGBMClassifier": (lightgbm.LGBMClassifier(n_estimators=10, verbose=-1), X, y),
}
found = {}
for name, (model, features, target) in models.items():
    model.fit(features, target)
    directory = Path(folder) / name
    directory.mkdir()
    saved = capture["save_model"](
        model, Path(modelfile_source).read_text(), str(directory), 10**7)
    loaded, _ = modelfile["load_model"](directory)
    same = np.array_equal(loaded.predict(features), model.predict(features))
    if hasattr(model, "predict_proba"):
        probabilities = loaded.predict_proba(features)
        same = same and np.array_equal(probabilities, model.predict_proba(features))
    manifest = json.loads((directory / "model.json").read_text())
    manifest["estimator"] = "os.system"
    (directory / "model.json").write_text(json.dumps(manifest))
    try:
        modelfile["load_model"](directory)
        refused = ""
    except ValueError as error:
        refused = str(error)
    found[name] = {"format": saved["format"], "file": saved["file"], "same": bool(same),
                   "refused": refused, "types": saved.get("trusted_types", [])}
print(json.dumps(found))
"""


@pytest.mark.slow
def test_xgboost_and_lightgbm_models_are_saved_in_a_safe_format(tmp_path: Path) -> None:
    import importlib.metadata

    from project_harness import clean_env, find_uv

    uv, venv = find_uv(), tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    pins = [
        f"{name}=={importlib.metadata.version(name)}"
        for name in ("scikit-learn", "numpy", "pandas", "scipy", "skops", "joblib")
    ]
    pins += ["xgboost-cpu>=3,<4", "lightgbm>=4.5,<5"]
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *pins],
        check=True,
        env=clean_env(),
    )
    script = tmp_path / "boosted.py"
    script.write_text(BOOSTED)
    saved = tmp_path / "saved"
    saved.mkdir()
    completed = subprocess.run(
        [venv / "bin" / "python", script, kernel_capture.__file__, MODELFILE, saved],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.splitlines()[-1])
    for name in ("XGBClassifier", "XGBRegressor"):  # XGBoost's own format, data only
        assert (found[name]["format"], found[name]["file"]) == ("xgboost", "model.ubj")
        assert found[name]["same"]
        assert "names 'os.system' as the estimator" in found[name]["refused"]
    # LightGBM's estimators cannot be rebuilt from its model text alone: skops, checked types.
    lgbm = found["LGBMClassifier"]
    assert (lgbm["format"], lgbm["same"], lgbm["refused"]) == ("skops", True, "")
    assert "lightgbm.sklearn.LGBMClassifier" in lgbm["types"]


def test_the_capture_says_where_the_model_is_or_why_it_is_not() -> None:
    from helpers import plan_cells

    from promote.capture import Capture, capture_json, notebook_model_files

    plan = plan_cells(FIT, DATA, MODEL)
    schema = {"kind": "table", "columns": [{"name": "a", "dtype": "float64", "type": "number"}]}
    base = Capture([{"a": 1.0}], [2.0], {"r2": 1.0}, {}, schema=schema)
    kept = Capture(
        base.records,
        base.predictions,
        base.metrics,
        {},
        schema=schema,
        model={"file": "model.skops", "format": "skops", "sha256": "ab", "bytes": 9},
    )
    section = json.loads(capture_json(kept, plan))["saved_model"]
    assert section["served"] is True and section["directory"] == "artifacts/notebook"
    copies, texts = notebook_model_files(kept, plan, Path("saved"))
    assert sorted(copies.values()) == [
        "artifacts/notebook/model.json",
        "artifacts/notebook/model.skops",
    ]
    assert json.loads(texts["artifacts/notebook/sample.json"]) == {
        "records": [{"a": 1.0}],
        "predictions": [2.0],
    }
    # A column promote cannot describe as a JSON field: kept for the parity test, not served.
    odd = {"kind": "table", "columns": [{"name": "a", "dtype": "object", "type": "unknown"}]}
    unservable = Capture(base.records, base.predictions, {}, {}, schema=odd, model=kept.model)
    section = json.loads(capture_json(unservable, plan))["saved_model"]
    assert section["served"] is False and "cannot be described" in section["not_served"]
    assert notebook_model_files(unservable, plan, Path("saved"))[1] == {}
    # Not kept at all: the reason, and nothing to copy.
    over = Capture([], [], {}, {}, model={"error": "its file is 31.0 MB, over the cap"})
    assert json.loads(capture_json(over, plan))["saved_model"] == {
        "error": "the notebook's model is not in the project: its file is 31.0 MB, over the cap"
    }
    assert notebook_model_files(over, plan, Path("saved")) == ({}, {})
    data = json.loads(capture_json(base, plan))
    assert data["model"] == "model" and "saved_model" not in data  # no model directory given


CUISINE = CORPUS / "mlfb-cuisine-classifiers"


@pytest.mark.slow
def test_the_cuisine_notebook_serves_the_candidate_its_tag_chose(tmp_path: Path) -> None:
    """The corpus notebook that compares five classifiers in a loop, its loop's cell tagged
    `promote: model=classifiers["Linear SVC"]`: promoted with --execute, the project installs
    from its lock, its tests pass with no parity test skipped, `make train` trains, and the
    service answers /predict with the trained version.

    The notebook's split has no seed (P022), which its parity tests rightly catch (other
    training rows give other reference statistics), so the copy seeds it as P022's fix says.
    """
    if not CUISINE.is_dir():
        pytest.skip(f"no corpus at {CORPUS}")
    import nbformat

    folder = tmp_path / "cuisine"
    shutil.copytree(CUISINE, folder, copy_function=shutil.copyfile)  # the corpus is read-only
    for directory in (folder, *(p for p in folder.rglob("*") if p.is_dir())):
        directory.chmod(0o755)
    notebook = folder / "3-Classifiers-2" / "solution" / "notebook.ipynb"
    node = nbformat.read(notebook, as_version=4)
    loop, split = node.cells[8], node.cells[6]
    assert "classifier.fit(" in loop.source and "train_test_split(" in split.source
    loop.metadata.setdefault("tags", []).append('promote: model=classifiers["Linear SVC"]')
    split.source = split.source.replace("test_size=0.3)", "test_size=0.3, random_state=0)")
    nbformat.write(node, notebook)

    target = tmp_path / "project"
    tested = promoted_and_tested(notebook, target, "-rs")
    assert "test_parity.py" not in tested, tested  # none of them skipped
    train = next((target / "src").glob("*/train.py")).read_text()
    assert 'model = classifiers["Linear SVC"]' in train
    captured = json.loads((target / "tests" / "parity" / "notebook.json").read_text())
    assert captured["model"] == 'classifiers["Linear SVC"]'
    assert captured["saved_model"]["served"] is True

    trained = subprocess.run(
        ["make", "train"], cwd=target, capture_output=True, text=True, check=False
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "v1 now serves" in trained.stdout
    sample = json.loads((target / "artifacts" / "sample.json").read_text())
    serve = next((target / ".venv" / "bin").glob("*-serve"))
    with serving([serve], target, tmp_path / "serve.log") as url:
        status, body = http("POST", f"{url}/predict", sample["records"][0])
        assert status == 200, body
        assert (body["model_version"], body["prediction"]) == ("v1", sample["predictions"][0])
