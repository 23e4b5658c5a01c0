"""The command line as users meet it: exit codes, refusals, atomic and repeatable output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import EXAMPLES, notebook_json, tree_digest

from promote.cli import main
from promote.render import ruff_path

CLASSIFIER = EXAMPLES / "breast_cancer_classifier.ipynb"


def test_promote_writes_a_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "proj"
    assert main([str(CLASSIFIER), "-o", str(target)]) == 0
    package = target / "src" / "breast_cancer_classifier"
    for name in (
        "data.py",
        "features.py",
        "train.py",
        "evaluate.py",
        "predict.py",
        "pipeline.py",
        "settings.py",
    ):
        assert (package / name).is_file(), name
    for name in (
        "Makefile",
        "Dockerfile",
        "pyproject.toml",
        "requirements.txt",
        ".github/workflows/ci.yml",
    ):
        assert (target / name).is_file(), name
    assert "promoted" in capsys.readouterr().out
    assert not list(tmp_path.glob(".proj.promote-*")), "the scratch directory is removed"


def test_model_card_quotes_the_notebook_and_names_what_it_did_not_establish(
    tmp_path: Path,
) -> None:
    target = tmp_path / "proj"
    assert main([str(CLASSIFIER), "-o", str(target), "--no-lock"]) == 0
    card = (target / "docs" / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card: Breast cancer diagnosis: proof of concept")
    assert "Can we tell malignant from benign tumours" in card
    assert "model = Pipeline([" in card
    assert "| `roc_auc` | run `make capture` |" in card
    assert "## What the notebook did not establish" in card


def test_what_the_package_leaves_out_is_kept_in_an_exploration_notebook(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    assert main([str(CLASSIFIER), "-o", str(target)]) == 0
    exploration = nbformat.read(target / "notebooks" / "exploration.ipynb", as_version=4)
    nbformat.validate(exploration)
    sources = [c.source for c in exploration.cells]
    assert "from breast_cancer_classifier.train import train" in sources[1]
    assert "model, X_test, y_test, X_train = train(X, y, settings)" in sources[2]
    assert "df.head()" in sources and "## Explore" in sources
    assert any("plt.subplots" in s for s in sources)
    package = "\n".join(p.read_text() for p in (target / "src").rglob("*.py"))
    assert "df.head()" not in package and "plt." not in package


def test_output_is_byte_identical_on_a_second_run(tmp_path: Path) -> None:
    assert main([str(CLASSIFIER), "-o", str(tmp_path / "a")]) == 0
    assert main([str(CLASSIFIER), "-o", str(tmp_path / "b")]) == 0
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_non_empty_target_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my work")
    assert main([str(CLASSIFIER), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and "Traceback" not in err
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_force_keeps_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my work")
    assert main([str(CLASSIFIER), "-o", str(target), "--force"]) == 0
    backup = tmp_path / "mine.backup-1"
    assert (backup / "notes.txt").read_text() == "my work"
    assert (target / "Makefile").is_file()


def test_pretend_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "proj"
    assert main([str(CLASSIFIER), "-o", str(target), "--pretend"]) == 0
    out = capsys.readouterr().out
    assert "load_data() -> df" in out and "nothing written" in out
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        (notebook_json("import pandas as pd", "df = pd.read_csv('a.csv')"), "no cell fits a model"),
        (notebook_json("x = 1", "print x"), "cell 2: the code is not valid Python 3"),
    ],
    ids=["empty", "no-model", "python2"],
)
def test_bad_notebooks_exit_1_with_one_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(content)
    assert main([str(notebook), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and str(notebook) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert main([str(CLASSIFIER), "--no-such-option"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_check_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(CLASSIFIER)]) == 0
    text = capsys.readouterr().out
    assert "model: `model` fitted on `X_train` in cell 17" in text
    assert main(["check", str(CLASSIFIER), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == {"name": "model", "fit_input": "X_train", "cell": 17, "chosen": None}
    assert {c["role"] for c in data["cells"]} >= {
        "load",
        "features",
        "train",
        "evaluate",
        "display",
    }


def test_check_exits_1_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = tmp_path / "py2.ipynb"
    notebook.write_text(notebook_json("print 'x'"))
    assert main(["check", str(notebook), "--format", "json"]) == 1
    (diagnostic,) = json.loads(capsys.readouterr().out)["diagnostics"]
    assert (diagnostic["code"], diagnostic["cell"], diagnostic["severity"]) == ("P001", 1, "error")


PLANTED = {  # kind → a credential of that kind, as a notebook would hold it
    "OpenAI-style key": "sk-live-1234567890abcdef1234",
    "AWS access key": "AKIAQWERTYUIOPASDFGHJ",
    "database password": "s3cr3t-Passw0rd",
    "GitHub token": "ghp_" + "k" * 36,
    "Slack token": "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
    "Stripe key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "JWT": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "SendGrid key": "SG." + "a" * 22 + "." + "b" * 43,
    "private key body": "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw",
    "password in a dict": "hunter2hunter2",
}


def test_planted_secrets_become_required_variables_and_are_copied_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = PLANTED
    notebook = tmp_path / "churn.ipynb"
    notebook.write_text(
        notebook_json(
            f"# md: # Churn\n\nOur Slack bot token is {s['Slack token']}, do not share.",
            "import pandas as pd\nimport stripe\nfrom github import Github\n"
            "from sqlalchemy import create_engine\n"
            "from sklearn.linear_model import LogisticRegression",
            f"API_KEY = '{s['OpenAI-style key']}'\n"
            f'PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----\n{s["private key body"]}\n'
            '-----END RSA PRIVATE KEY-----"""',
            f"aws = {{'key': '{s['AWS access key']}', 'region': 'eu-west-1'}}\n"
            f"engine = create_engine('postgresql://ann:{s['database password']}@db.internal/x')\n"
            f"hub = Github('{s['GitHub token']}')\n"
            f"stripe.api_key = '{s['Stripe key']}'\n"
            f"db = {{'user': 'ann', 'password': '{s['password in a dict']}'}}",
            "df = pd.read_sql('select * from churn', engine, params={'k': API_KEY})",
            f"print('{s['JWT']}', '{s['SendGrid key']}', PRIVATE_KEY, aws, hub, db)",
            "X = df[['a']]\ny = df.b",
            "model = LogisticRegression()\nmodel.fit(X, y)",
        )
    )
    target = tmp_path / "churn"
    assert main([str(notebook), "-o", str(target), "--no-lock"]) == 0
    assert capsys.readouterr().err.count("P026") >= 8
    package = target / "src" / "churn"
    settings = (package / "settings.py").read_text()
    assert "api_key: SecretStr  # required: set CHURN_API_KEY" in settings
    assert "private_key: SecretStr  # required: set CHURN_PRIVATE_KEY" in settings
    code = "".join(path.read_text() for path in package.glob("*.py"))
    assert "engine = create_engine(settings.postgresql_url.get_secret_value())" in code
    exploration = (target / "notebooks" / "exploration.ipynb").read_text()
    assert "stripe.api_key = settings.stripe_api_key.get_secret_value()" in exploration
    for path in package.glob("*.py"):
        compile(path.read_text(), str(path), "exec")  # rewritten code is still Python
    leaks = {
        kind: sorted(
            str(path.relative_to(target))
            for path in target.rglob("*")
            if path.is_file() and ".git" not in path.parts and value.encode() in path.read_bytes()
        )
        for kind, value in s.items()
    }
    assert {kind: paths for kind, paths in leaks.items() if paths} == {}
    history = subprocess.run(
        ["git", "log", "--all", "-p", "--format="],
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert history
    assert [kind for kind, value in s.items() if value in history] == []


LOCAL_MODULE_CELLS = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
    "df = pd.DataFrame({'a': [1, 2, 3, 4], 'y': [0, 1, 0, 1]})",
)


def test_a_module_beside_the_notebook_the_package_needs_is_copied_into_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jupyter imports helpers.py from the notebook's folder: the project gets it in src/,
    as it was, a module of its wheel, and the pipeline runs with it."""
    helpers = "def clean(df):\n    return df.dropna()  # as the user wrote it\n"
    (tmp_path / "helpers.py").write_text(helpers)
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(
        notebook_json(
            *LOCAL_MODULE_CELLS,
            "from helpers import clean\nX = clean(df[['a']])",
            "model = LogisticRegression().fit(X, df['y'])",
        )
    )
    assert main(["check", str(notebook)]) == 0
    out = capsys.readouterr().out
    assert "cell 3, line 1     P013  imports `helpers`, a module beside the notebook" in out
    project = tmp_path / "out"
    assert main([str(notebook), "-o", str(project), "--no-lock"]) == 0
    assert (project / "src" / "helpers.py").read_text() == helpers
    pyproject = (project / "pyproject.toml").read_text()
    assert '"src/helpers.py" = "helpers.py"' in pyproject  # in the wheel
    assert '"src/helpers.py"]' in pyproject and 'module = ["helpers", "helpers.*"]' in pyproject
    assert "helpers" not in (project / "requirements.txt").read_text()
    ran = subprocess.run(
        [sys.executable, "-c", "from poc import pipeline; print(pipeline.run().model)"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0 and "LogisticRegression" in ran.stdout, ran.stderr
    lint = subprocess.run([ruff_path(), "check", "."], cwd=project, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_a_module_beside_the_notebook_used_only_to_explore_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "style.py").write_text("COLOR = 'teal'\n")
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(
        notebook_json(
            *LOCAL_MODULE_CELLS,
            "import matplotlib.pyplot as plt\nfrom plots.style import COLOR",
            "plt.scatter(df['a'], df['y'], color=COLOR)",
            "X = df[['a']]\nmodel = LogisticRegression().fit(X, df['y'])",
        )
    )
    assert main(["check", str(notebook)]) == 0
    assert "cell 3, line 2     P013  imports `plots.style`" in capsys.readouterr().out
    assert main([str(notebook), "-o", str(tmp_path / "out"), "--no-lock"]) == 0
    requirements = (tmp_path / "out" / "requirements.txt").read_text()
    assert "plots" not in requirements and "style" not in requirements
