"""End to end for a forecasting notebook, as a user does it: a small monthly SARIMAX notebook
is promoted with ``--execute``, the project is installed in a fresh venv from its lock, its own
lint and tests pass (the parity tests run, not skipped), ``<project>-train`` trains, and the
service answers a forecast request over real HTTP with the notebook's forecast."""

from __future__ import annotations

import json
import math
import re
import urllib.request
from pathlib import Path

import pytest
from helpers import notebook_json
from project_harness import http, install_project, run, serving, venv_command

from promote.cli import main

pytestmark = pytest.mark.slow

pytest.importorskip("statsmodels", reason="the notebook's kernel needs statsmodels")

CELLS = (
    "# md: # Monthly sales",
    "import pandas as pd\nfrom sklearn.metrics import mean_absolute_error\n"
    "from statsmodels.tsa.statespace.sarimax import SARIMAX",
    "# md: ## Load the data",
    "df = pd.read_csv('sales.csv', parse_dates=['month'], index_col='month').asfreq('MS')",
    "HORIZON = 12\ntrain = df['sales'][:-HORIZON]\ntest = df['sales'][-HORIZON:]",
    "# md: ## Train",
    "model = SARIMAX(train, order=(1, 1, 1), seasonal_order=(1, 0, 0, 12))\n"
    "results = model.fit(disp=False)\nprint(results.summary())",
    "# md: ## Evaluate",
    "forecast = results.forecast(HORIZON)\nmae = mean_absolute_error(test, forecast)\nmae",
)


def write_notebook(folder: Path) -> Path:
    """The notebook and its data: six years of a trend, a season and a deterministic wobble."""
    folder.mkdir(parents=True)
    rows = ["month,sales"]
    for month in range(72):
        value = 100 + 1.5 * month + 10 * math.sin(month * math.pi / 6) + 3 * math.sin(month * 2.3)
        rows.append(f"{2015 + month // 12}-{month % 12 + 1:02d}-01,{value:.2f}")
    (folder / "sales.csv").write_text("\n".join(rows) + "\n")
    notebook = folder / "sales.ipynb"
    notebook.write_text(notebook_json(*CELLS))
    return notebook


def test_a_forecasting_notebook_becomes_a_forecast_service(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "notebook")
    project = tmp_path / "project"

    assert main([str(notebook), "-o", str(project), "--execute"]) == 0

    captured = json.loads((project / "tests" / "parity" / "notebook.json").read_text())
    assert captured["schema"]["kind"] == "forecast"
    assert captured["records"] == [{"steps": 12}]
    [forecast] = captured["predictions"]
    [labels] = captured["index"]
    assert len(forecast) == len(labels) == 12
    assert labels[0] == "2020-01-01T00:00:00"
    assert set(captured["metrics"]) == {"mae"}
    assert captured["saved_model"]["format"] == "statsmodels"
    assert (project / "artifacts" / "notebook" / "model.statsmodels.json").is_file()
    assert not list(project.rglob("*.joblib")) and not list(project.rglob("*.pkl"))

    install_project(project)
    run([venv_command(project, "ruff"), "check", "."], project)
    run([venv_command(project, "ruff"), "format", "--check", "."], project)
    run([venv_command(project, "mypy")], project)
    parity = run(
        [venv_command(project, "pytest"), "tests/test_parity.py", "-rs", "-p", "no:cacheprovider"],
        project,
    )
    assert re.search(r"\b4 passed\b", parity) and "skipped" not in parity, parity
    run([venv_command(project, "pytest"), "-q", "-p", "no:cacheprovider"], project)

    run([venv_command(project, "sales-train")], project)
    artifacts = project / "artifacts"
    assert json.loads((artifacts / "model.json").read_text())["format"] == "statsmodels"
    trained = json.loads((artifacts / "sample.json").read_text())
    assert trained["predictions"][0] == pytest.approx(forecast, rel=1e-6)

    serve = venv_command(project, "sales-serve")
    with serving([serve], project, tmp_path / "serve.log") as url:
        assert http("GET", f"{url}/ready")[0] == 200
        status, body = http("POST", f"{url}/predict", {"steps": 12})
        assert status == 200, body
        assert body["prediction"] == pytest.approx(forecast, rel=1e-6)
        assert body["index"] == labels
        status, body = http("POST", f"{url}/predict", {"steps": 0})
        assert status == 422, body
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            assert "model_forecast_steps_count 1.0" in response.read().decode()
