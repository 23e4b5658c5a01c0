"""Forecasting models: statsmodels' ARIMA family, fitted on a series given to the model.

``model = SARIMAX(train, order=(1, 1, 1))``, ``fit = model.fit()``, then ``fit.forecast(12)``:
the series is the constructor's ``endog`` (first positional argument or ``endog=``), not an
argument of ``.fit()``, and the fitted results forecast the steps after it instead of
predicting records. ``find_forecast`` finds such a fit, as ``analysis._model`` finds
``model.fit(X, y)``: the last one whose results are asked to forecast or predict, else the
last one. What promote cannot serve yet is found here too, with the reason
(``ForecastFit.refusal``), and planning refuses it.

Pure: cells in, a ``ForecastFit`` out.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promote.analysis import CellAnalysis, ImportBinding

__all__ = ["DEFAULT_HORIZON", "SUPPORTED", "ForecastFit", "find_forecast"]

# The statsmodels models a forecast project serves: state-space models whose results can be
# rebuilt from the model's specification and fitted parameters without refitting
# (``Model(endog, **spec).filter(params)``), by their class name → the class's module.
SUPPORTED = {
    "SARIMAX": "statsmodels.tsa.statespace.sarimax",
    "ARIMA": "statsmodels.tsa.arima.model",
}
# Other statsmodels time-series models fitted on their series: found, to refuse them clearly.
OTHERS = frozenset(
    {
        "ExponentialSmoothing",
        "Holt",
        "SimpleExpSmoothing",
        "AutoReg",
        "ARDL",
        "VAR",
        "VARMAX",
        "UnobservedComponents",
        "DynamicFactor",
        "ETSModel",
        "STLForecast",
        "ThetaModel",
        "MarkovAutoregression",
        "MarkovRegression",
    }
)
# Methods of fitted results that forecast or predict.
FORECAST_METHODS = frozenset({"forecast", "get_forecast", "predict", "get_prediction"})
# The horizon a project forecasts when the notebook names none as a literal.
DEFAULT_HORIZON = 12


@dataclass(frozen=True)
class ForecastFit:
    """A fitted forecasting model: ``name`` holds the fitted results, ``endog`` names the
    series it was fitted on (``endog_source``: as written), ``model_class`` the statsmodels
    class, ``horizon`` the steps the notebook forecast (None: not written as a literal).

    ``refusal`` (with ``hint``) says why promote cannot serve it, when it cannot."""

    name: str
    endog: str | None
    cell: int
    model_class: str
    endog_source: str = ""
    horizon: int | None = None
    refusal: str = ""
    hint: str = ""


@dataclass(frozen=True)
class _Fit:
    results: str
    model_class: str
    endog: ast.expr | None
    exog: bool
    cell: int
    top_level: bool


def find_forecast(
    cells: Sequence[CellAnalysis], imports: Mapping[str, ImportBinding]
) -> ForecastFit | None:
    """The statsmodels forecasting model the notebook fits (module docstring), or None."""
    fits: list[_Fit] = []
    asked: dict[str, ast.Call] = {}  # results name → its last forecast call
    constants = _int_constants(cells)
    models: dict[str, tuple[str, ast.Call]] = {}  # name → the statsmodels model it holds
    for cell in cells:
        for stmt in cell.statements:
            if stmt.kind == "definition":
                continue
            fits.extend(_fits(stmt.node, cell.index, imports, models))
            for node in stmt.nodes:
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FORECAST_METHODS
                    and isinstance(node.func.value, ast.Name)
                ):
                    asked[node.func.value.id] = node
    if not fits:
        return None
    top = [fit for fit in fits if fit.top_level]
    chosen = [fit for fit in top if fit.results in asked] or top
    if not chosen:
        fit = fits[0]
        return _refused(
            fit,
            f"its {fit.model_class} models are fitted only inside a loop, a function or a "
            "condition, so promote cannot tell which one the service must serve",
            f"Fit the model you chose at the top level of its own cell, e.g. `model = "
            f"{fit.model_class}(train, order=(1, 1, 1))`, `results = model.fit()`, then "
            "`results.forecast(12)`.",
        )
    fit = chosen[-1]
    if fit.results not in asked and any(f.results in asked for f in fits if not f.top_level):
        return _refused(
            fit,
            f"`{fit.results}` is fitted at the top level but never asked to forecast: the "
            "forecasts come from models refitted inside a loop (walk-forward validation), "
            "which a service cannot replay",
            f"Forecast with the model you mean to serve at the top level, e.g. "
            f"`{fit.results}.forecast(steps)` after its fit (promote then serves "
            f"`{fit.results}`), or fit the final model on all the data there.",
        )
    if fit.model_class not in SUPPORTED:
        return _refused(
            fit,
            f"its model is statsmodels' `{fit.model_class}`; promote serves statsmodels' "
            f"{' and '.join(f'`{name}`' for name in SUPPORTED)} forecasters (state-space "
            "models it saves as their specification and fitted parameters)",
            "Use `SARIMAX` or `ARIMA` (`statsmodels.tsa.arima.model`) if it fits the series.",
        )
    if fit.exog:
        return _refused(
            fit,
            f"`{fit.results}` is fitted with exogenous regressors (`exog`): each forecast "
            "then needs their future values, which the forecast service does not take yet",
            "Fit the served model on the series alone, or serve the model as a regressor.",
        )
    endog = fit.endog
    name = endog.id if isinstance(endog, ast.Name) else None
    source = ast.unparse(endog) if endog is not None else ""
    if name is None:
        return _refused(
            fit,
            f"`{fit.results}`'s series is `{source or 'missing'}`, not a named variable, so "
            "promote cannot tell which series training must keep",
            f"Assign the training series to a variable first, e.g. `train = {source or '...'}` "
            f"then `{fit.model_class}(train, ...)`.",
        )
    return ForecastFit(
        name=fit.results,
        endog=name,
        cell=fit.cell,
        model_class=fit.model_class,
        endog_source=source,
        horizon=_horizon(asked.get(fit.results), constants),
    )


def _refused(fit: _Fit, refusal: str, hint: str) -> ForecastFit:
    return ForecastFit(fit.results, None, fit.cell, fit.model_class, refusal=refusal, hint=hint)


def _fits(
    node: ast.stmt,
    cell: int,
    imports: Mapping[str, ImportBinding],
    models: dict[str, tuple[str, ast.Call]],
) -> list[_Fit]:
    """The forecasting fits of one top-level statement (nested ones marked as such), and the
    models it builds (``models``: name → class and constructor call, for later statements)."""
    out: list[_Fit] = []
    for inner in ast.walk(node):
        if not isinstance(inner, ast.Assign | ast.Expr):
            continue
        value = inner.value
        target = (
            inner.targets[0].id
            if isinstance(inner, ast.Assign)
            and len(inner.targets) == 1
            and isinstance(inner.targets[0], ast.Name)
            else None
        )
        model = _model_call(value, imports)
        if model is not None and target is not None:
            models[target] = model
            continue
        if not (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "fit"
            and not value.args
            and target is not None
        ):
            continue
        receiver = value.func.value
        built = _model_call(receiver, imports)
        if built is None and isinstance(receiver, ast.Name):
            built = models.get(receiver.id)
        if built is None:
            continue
        model_class, call = built
        endog = call.args[0] if call.args else _keyword(call, "endog")
        exog = len(call.args) > 1 or _keyword(call, "exog") is not None
        out.append(_Fit(target, model_class, endog, exog, cell, inner is node))
    return out


def _model_call(
    value: ast.expr, imports: Mapping[str, ImportBinding]
) -> tuple[str, ast.Call] | None:
    """``SARIMAX(...)`` or ``sm.tsa.SARIMAX(...)`` of statsmodels: (class name, the call)."""
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    name = parts[0] if parts else func.id
    binding = imports.get(func.id)
    if binding is None or binding.module != "statsmodels":
        return None
    if name in SUPPORTED or name in OTHERS:
        return name, value
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _horizon(call: ast.Call | None, constants: Mapping[str, int]) -> int | None:
    """The steps a forecast call asks for: ``forecast(12)``, ``forecast(steps=HORIZON)``,
    ``get_prediction(132, 143)`` (12); None when they are not written as integers."""
    if call is None or not isinstance(call.func, ast.Attribute):
        return None

    def number(node: ast.expr | None) -> int | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    if call.func.attr in {"forecast", "get_forecast"}:
        steps = number(call.args[0] if call.args else _keyword(call, "steps"))
        return steps if steps is not None and steps > 0 else None
    start = number(call.args[0] if call.args else _keyword(call, "start"))
    end = number(call.args[1] if len(call.args) > 1 else _keyword(call, "end"))
    if start is None or end is None or end < start:
        return None
    return end - start + 1


def _int_constants(cells: Sequence[CellAnalysis]) -> dict[str, int]:
    """Names assigned an integer literal exactly once at the top level (``HORIZON = 3``)."""
    found: dict[str, int] = {}
    seen: dict[str, int] = {}
    for cell in cells:
        for stmt in cell.statements:
            for name in stmt.binds:
                seen[name] = seen.get(name, 0) + 1
            node = stmt.node
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and type(node.value.value) is int
            ):
                found[node.targets[0].id] = node.value.value
    return {name: value for name, value in found.items() if seen.get(name) == 1}
