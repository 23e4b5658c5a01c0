"""Forecast projects: a statsmodels forecaster fitted on its series is found, planned, generated
and refused with a reason when promote cannot serve it (``analysis/forecast.py``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from helpers import analyse_cells, plan_cells

from promote import kernel_capture
from promote.codegen import generate
from promote.errors import RefusedNotebookError

SARIMAX = "import pandas as pd\nfrom statsmodels.tsa.statespace.sarimax import SARIMAX"
TEMPLATE = Path(__file__).resolve().parents[1] / "templates/service/project/src/{{ package_name }}"
LOAD = "df = pd.read_csv('sales.csv')\ntrain = df['sales'][:-12]"


@pytest.mark.parametrize(
    ("cells", "name", "endog", "model_class", "horizon"),
    [
        (
            (SARIMAX, LOAD, "model = SARIMAX(train, order=(1, 1, 1))\nfit = model.fit(disp=False)"),
            "fit",
            "train",
            "SARIMAX",
            None,
        ),
        (
            (SARIMAX, LOAD, "res = SARIMAX(endog=train, order=(1, 0, 0)).fit()", "res.forecast(6)"),
            "res",
            "train",
            "SARIMAX",
            6,
        ),
        (
            (
                "import pandas as pd\nimport statsmodels.api as sm",
                LOAD,
                "res = sm.tsa.arima.ARIMA(train, order=(1, 0, 0)).fit()",
                "p = res.get_prediction(132, 143).predicted_mean",
            ),
            "res",
            "train",
            "ARIMA",
            12,
        ),
        (
            (
                "import pandas as pd\nfrom statsmodels.tsa.arima.model import ARIMA",
                LOAD,
                "HORIZON = 3",
                "m = ARIMA(train, order=(1, 0, 0))",
                "r = m.fit()",
                "f = r.get_forecast(steps=HORIZON)",
            ),
            "r",
            "train",
            "ARIMA",
            3,
        ),
    ],
    ids=["model-then-fit", "chained-endog-keyword", "statsmodels-api", "model-in-another-cell"],
)
def test_the_forecaster_and_its_series_are_found(
    cells: tuple[str, ...], name: str, endog: str, model_class: str, horizon: int | None
) -> None:
    analysis = analyse_cells(*cells)

    assert analysis.forecast is not None
    assert (analysis.forecast.name, analysis.forecast.endog) == (name, endog)
    assert (analysis.forecast.model_class, analysis.forecast.horizon) == (model_class, horizon)
    assert analysis.model is not None
    assert (analysis.model.name, analysis.model.fit_input) == (name, endog)


def test_the_last_fit_asked_to_forecast_is_the_model() -> None:
    analysis = analyse_cells(
        SARIMAX,
        LOAD,
        "a = SARIMAX(train, order=(1, 1, 1)).fit()",
        "pa = a.forecast(12)",
        "b = SARIMAX(train, order=(2, 1, 1)).fit()",
    )

    assert analysis.forecast is not None and analysis.forecast.name == "a"


def test_a_model_fitted_on_records_is_not_a_forecaster() -> None:
    analysis = analyse_cells(
        "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
        "X = pd.read_csv('x.csv')\ny = X.pop('y')",
        "model = LinearRegression()\nmodel.fit(X, y)",
    )

    assert analysis.forecast is None


def test_a_forecast_plan_passes_the_horizon_to_training() -> None:
    plan = plan_cells(
        SARIMAX,
        "# md: ## Load",
        LOAD,
        "# md: ## Train",
        "model = SARIMAX(train, order=(1, 1, 1))\nresults = model.fit(disp=False)",
        "# md: ## Evaluate",
        "forecast = results.forecast(12)",
    )

    assert plan.forecast is not None and plan.forecast.horizon == 12
    assert (plan.model, plan.fit_input) == ("results", "train")
    pipeline = generate(plan)["src/demo/pipeline.py"]
    assert "model=results, features=train" in pipeline
    assert "horizon=12" in pipeline


@pytest.mark.parametrize(
    ("cells", "reason", "cell"),
    [
        (
            (
                SARIMAX,
                LOAD,
                "model = SARIMAX(endog=train, order=(1, 1, 0))\nresults = model.fit()",
                "for t in range(3):\n    m = SARIMAX(endog=train[t:], order=(1, 1, 0))\n"
                "    m_fit = m.fit()\n    yhat = m_fit.forecast(steps=3)",
            ),
            "never asked to forecast: the forecasts come from models refitted inside a loop",
            3,
        ),
        (
            (
                SARIMAX,
                LOAD,
                "for order in [(1, 0, 0), (2, 0, 0)]:\n    f = SARIMAX(train, order=order).fit()",
            ),
            "fitted only inside a loop",
            3,
        ),
        (
            (SARIMAX, LOAD, "x = df['price'][:-12]", "r = SARIMAX(train, exog=x).fit()"),
            "exogenous regressors",
            4,
        ),
        (
            (SARIMAX, LOAD, "r = SARIMAX(train, x, order=(1, 0, 0)).fit()"),
            "exogenous regressors",
            3,
        ),
        (
            (
                "import pandas as pd\nfrom statsmodels.tsa.holtwinters import ExponentialSmoothing",
                LOAD,
                "fit = ExponentialSmoothing(train, seasonal_periods=12).fit()",
            ),
            "statsmodels' `ExponentialSmoothing`",
            3,
        ),
        (
            (
                "import pandas as pd\nfrom statsmodels.tsa.arima.model import ARIMA",
                "res = ARIMA([1, 2]).fit()",
            ),
            "not a named variable",
            2,
        ),
    ],
    ids=[
        "walk-forward",
        "only-in-a-loop",
        "exog-keyword",
        "exog-positional",
        "holt-winters",
        "literal-series",
    ],
)
def test_refusals_say_why(cells: tuple[str, ...], reason: str, cell: int) -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*cells)

    assert reason in caught.value.message
    assert f"nb.ipynb, cell {cell}" in caught.value.message


def test_a_fit_of_something_else_without_data_is_still_refused() -> None:
    with pytest.raises(RefusedNotebookError, match="given no input data"):
        plan_cells("from ray.train import Trainer", "res = Trainer().fit()")


@pytest.mark.parametrize("index", ["dates", "range", "list"])
def test_the_kernel_capture_saves_the_forecaster_as_data_that_forecasts_the_same(
    index: str, tmp_path: Path
) -> None:
    """In the kernel, the notebook's forecaster is saved by the template's modelfile.py as
    model.statsmodels.json; rebuilt from it without refitting, it forecasts the same values
    with the same labels."""
    pd = pytest.importorskip("pandas")
    sarimax = pytest.importorskip("statsmodels.tsa.statespace.sarimax")
    values = [10 + 0.5 * t + (t % 4) for t in range(40)]
    series: object = {
        "dates": pd.Series(values, index=pd.date_range("2020-01-01", periods=40, freq="MS")),
        "range": pd.Series(values),
        "list": values,
    }[index]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = sarimax.SARIMAX(series, order=(1, 1, 0)).fit(disp=False)
        source = (TEMPLATE / "modelfile.py").read_text()
        captured = kernel_capture.capture_forecast(
            results, series, {"mae": 1.5}, 4, 1000, source, str(tmp_path), 0
        )
        rebuilt, sha256 = kernel_capture.modelfile_namespace(source)["load_model"](tmp_path)

    assert captured["model"]["format"] == "statsmodels"
    assert captured["model"]["sha256"] == sha256
    assert captured["schema"] == {"kind": "forecast", "horizon": 4, "max_steps": 1000}
    assert captured["records"] == [{"steps": 4}]
    assert captured["series"]["rows"] == 40
    [expected] = captured["predictions"]
    assert [float(v) for v in rebuilt.forecast(4)] == expected
    labels = captured["index"][0]
    assert labels[0] == ("2023-05-01T00:00:00" if index == "dates" else 40)
