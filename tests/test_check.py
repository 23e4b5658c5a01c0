"""`promote check`: the report by severity, the readiness summary, the JSON schema, exit codes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import CORPUS, EXAMPLES, ROOT, analyse_cells, notebook_json
from helpers import code as notebook_code

from promote.cli import main
from promote.report import check_report

SCHEMA = json.loads((ROOT / "docs" / "reference" / "check.schema.json").read_text())

TRAINS = (
    "import pandas as pd\nfrom sklearn.model_selection import train_test_split\n"
    "from sklearn.linear_model import LogisticRegression",
    "df = pd.read_csv('data.csv')\nX = df[['a', 'b']]\ny = df['t']",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
    "pred = model.predict(X_test)",
)


def run_check(tmp_path: Path, *cells: str | dict[str, Any], fmt: str = "json") -> tuple[int, str]:
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(notebook_json(*cells))
    code = main(["check", str(notebook), "--format", fmt])
    return code, notebook.name


def readiness(*cells: str) -> dict[str, bool]:
    return {x.key: x.ok for x in check_report(analyse_cells(*cells)).readiness}


@pytest.mark.parametrize("notebook", sorted(EXAMPLES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_json_of_every_example_follows_the_documented_schema(
    notebook: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(notebook), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, SCHEMA)
    assert data["blocking"] is False
    assert [x["key"] for x in data["readiness"]] == [
        "model",
        "data",
        "evaluation",
        "seed",
        "installs",
        "secrets",
        "order",
    ]


def test_json_of_a_problem_notebook_follows_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_check(
        tmp_path,
        "!pip install xgboost shap==0.45.0",
        "import xgboost\ndef c():\n    return Client(api_key='a8f9e7d6c5b4a3f2')\n"
        "df = load('/Users/ann/d.csv')",
        "print x",
    )
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, SCHEMA)
    assert code == 1 and data["blocking"] is True
    assert data["counts"]["error"] == 2
    secret = next(x for x in data["diagnostics"] if x["code"] == "P015")
    assert (secret["name"], secret["cell"], secret["line"]) == ("HardcodedSecret", 2, 3)
    assert {x["distribution"]: x["requirement"] for x in data["dependencies"]} == {
        "shap": "shap==0.45.0",
        "xgboost": "xgboost",
    }


def test_exit_0_when_nothing_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_check(tmp_path, *TRAINS)
    data = json.loads(capsys.readouterr().out)
    assert (code, data["blocking"], data["refusal"]) == (0, False, None)


def test_exit_1_when_promote_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No error diagnostic, but no model either: check agrees with promote."""
    code, _ = run_check(tmp_path, "import pandas as pd", "df = pd.read_csv('a.csv')")
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["counts"]["error"] == 0
    assert "fits a model" in data["refusal"]


def test_text_report_groups_by_severity_with_cell_line_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_check(
        tmp_path,
        *TRAINS[:3],
        "model = LogisticRegression()\nmodel.fit(X_train, y_train)\n"
        "def hub():\n    return connect(token='ghp_" + "a" * 36 + "')",
        "import joblib\njoblib.dump(model, 'm.pkl')",
        fmt="text",
    )
    text = capsys.readouterr().out
    assert code == 1
    errors, infos = text.index("Errors (block promotion): 1"), text.index("Info: 1")
    assert errors < infos
    assert re.search(r"cell 4, line 4\s+P015\s+.*\n\s+fix: Read it from an environment", text)
    assert re.search(r"cell 5, line 2\s+P024\s+`joblib.dump\(model, 'm.pkl'\)` writes a file", text)
    assert "verdict: promote would refuse this notebook: `token` looks like a secret" in text


def test_text_report_names_a_loop_s_candidates_and_the_tag_that_chooses_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_check(
        tmp_path,
        *TRAINS[:3],
        "from sklearn.svm import SVC\nmodels = [('lr', LogisticRegression()), ('svc', SVC())]",
        "for name, model in models:\n    model.fit(X_train, y_train)",
        fmt="text",
    )
    text = capsys.readouterr().out
    assert code == 1
    assert (
        'model: none chosen: cell 5 fits a model per candidate in a loop over `models` ("lr", '
        '"svc")'
    ) in text
    assert "[ ] model      no model chosen: cell 5 fits one per candidate in a loop" in text
    assert "verdict: promote would refuse this notebook: models are fitted only inside a loop" in (
        text
    )
    assert "         fix: cell 5: Tag the cell `promote: model=models[0][1]` (or another" in text


def test_json_report_gives_the_fix_and_the_model_a_tag_chose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = "for name, model in models:\n    model.fit(X_train, y_train)"
    models = "from sklearn.svm import SVC\nmodels = [('lr', LogisticRegression()), ('svc', SVC())]"
    code, _ = run_check(tmp_path, *TRAINS[:3], models, loop)
    refused = json.loads(capsys.readouterr().out)
    code_tagged, _ = run_check(
        tmp_path, *TRAINS[:3], models, notebook_code(loop, ("promote: model=models[1][1]",))
    )
    tagged = json.loads(capsys.readouterr().out)
    for data in (refused, tagged):
        jsonschema.validate(data, SCHEMA)
    assert (code, refused["model"]) == (1, None)
    assert refused["fix"].startswith("cell 5: Tag the cell `promote: model=models[0][1]`")
    assert (code_tagged, tagged["refusal"], tagged["fix"]) == (0, None, None)
    assert tagged["model"] == {
        "name": "chosen_model",
        "fit_input": "X_train",
        "cell": 5,
        "chosen": "models[1][1]",
    }


def test_text_report_of_a_clean_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_check(tmp_path, *TRAINS, fmt="text")
    text = capsys.readouterr().out
    assert "Production readiness" in text
    assert "[x] evaluation held-out data: train_test_split in cell 3" in text
    assert "verdict: ready to promote (0 warnings, 0 notes)" in text


@pytest.mark.parametrize(
    ("cells", "missing"),
    [
        (TRAINS, set()),
        ((TRAINS[0], TRAINS[1].replace("data.csv", "/home/ann/data.csv"), *TRAINS[2:]), {"data"}),
        ((*TRAINS[:2], "model = LogisticRegression()\nmodel.fit(X, y)"), {"evaluation"}),
        (
            (
                TRAINS[0],
                TRAINS[1],
                TRAINS[2].replace("random_state=0", "test_size=0.2"),
                *TRAINS[3:],
            ),
            {"seed"},
        ),
        (("!pip install pandas", *TRAINS), {"installs"}),
        (("!pip install pandas==2.2.3", *TRAINS), set()),
        ((*TRAINS, "password = 'hunter2hunter2'"), {"secrets"}),
        ((*TRAINS, "z = ghost + 1"), {"order"}),
        (TRAINS[:3], {"model"}),
    ],
    ids=[
        "ready",
        "fixed-path",
        "no-held-out",
        "no-seed",
        "unpinned",
        "pinned",
        "secret",
        "hidden-state",
        "no-model",
    ],
)
def test_readiness_summary(cells: tuple[str, ...], missing: set[str]) -> None:
    found = readiness(*cells)
    assert {key for key, ok in found.items() if not ok} == missing


def corpus_notebooks() -> list[Any]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {CORPUS}"))]
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [pytest.param(CORPUS / r["name"] / r["notebook_relpath"], id=r["name"]) for r in rows]


@pytest.mark.corpus
@pytest.mark.parametrize("notebook", corpus_notebooks())
def test_check_reads_every_corpus_notebook(
    notebook: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every real notebook is checked without a crash; what can be read follows the schema."""
    code = main(["check", str(notebook), "--format", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if not out:  # unreadable (an empty file): a one-paragraph error and exit 1
        assert code == 1 and err.startswith("error: Cannot read notebook")
        return
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert code == (1 if data["blocking"] else 0)


@pytest.mark.parametrize(
    "split",
    [
        "X_train, X_test = X[:800], X[800:]",
        "train = df[:-12]\ntest = df[-12:]",
        "valid_df = df.sample(frac=0.2, random_state=0)",
    ],
)
def test_a_split_made_by_hand_counts_as_held_out(split: str) -> None:
    assert readiness(TRAINS[0], TRAINS[1], split, "model.fit(X, y)")["evaluation"]
