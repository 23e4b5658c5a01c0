"""Reference statistics of the model input and output, and the drift measures against them.

``make train`` describes the data the model was fitted on (``artifacts/reference.json``);
the service compares a window of live requests with it (``service/monitoring.py``). Both
sides go through the same functions here, so that a value falls in the same bin in both.

The monitored features are those of the input requests carry (``artifacts.py``): the
loaded columns when the service applies the notebook's feature steps, else the model's input:


* table model: every column (datetime columns excepted); numbers are *numeric*, strings,
  booleans and pandas categories are *categorical*, except a column of mostly distinct
  values (``identifier_like``: a name, an id, a ticket number, free text), whose shares in a
  window would be noise and whose live values would all be new;
* text model: ``text_length``, the length of the text in characters (numeric);
* array model: ``features[i]`` for each column (numeric).

At most ``MAX_FEATURES`` features are monitored (the first ones), to bound the number of
metric series.

A numeric feature is described by the edges of ``BINS`` quantile bins of its training
values (bin ``i`` holds ``edges[i-1] < x <= edges[i]``), the share of the training values
in each bin, its minimum, maximum and share of missing values, and its ``QUANTILES``
quantiles (0, 1%, ..., 100%: the training distribution to a hundredth, for the
Kolmogorov-Smirnov test below, without keeping training values). A training set of fewer
than ``QUANTILES`` values is too small for its quantiles to stand for it (read linearly between
8 values, the distribution is off by up to an eighth): its values themselves are kept, sorted
(``values``), and the test uses them exactly. A categorical feature by
the share of each category (the ``MAX_CATEGORIES`` most frequent ones; the rest share the
bucket ``OTHER``) and its share of missing values. The predictions are described the same
way: categorical for a classifier, numeric for a regressor (``task``).

The Population Stability Index of a live distribution ``a`` against the reference ``e``,
over the same buckets, is ``sum((a - e) * ln(a / e))`` (shares floored at ``EPSILON``).
Missing values are left out of the PSI and reported as a share of their own; so are values
out of the training range (numeric) and categories never seen in training (categorical),
which for the PSI count in the outer bins and in a bucket ``UNSEEN`` of their own.
Rule of thumb: below 0.1 no shift, 0.1 to 0.2 a moderate one, above 0.2 a significant one.

Numeric features (and a regressor's predictions) also get the two-sample Kolmogorov-Smirnov
test of the live values against the training values: the statistic ``ks`` is the largest
distance between the two cumulative distributions (0 to 1), the training one read from its
quantiles (so within 0.01 of the exact statistic; exact for a small training set), and ``ks_pvalue`` its asymptotic p-value
for the live and training row counts (the Kolmogorov distribution, ``scipy.special``).
With a window of 1000 records the p-value is tiny for shifts too small to matter; the
statistic reads like a share: 0.1 means that a tenth of the values moved across some point.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

REFERENCE_VERSION = 2  # 2: numeric features carry their percentiles ("quantiles") and "count"
BINS = 10
QUANTILES = 101  # 0%, 1%, ..., 100%
MAX_CATEGORIES = 50
# A categorical column with at least this many distinct values, one for every two rows or
# more, is an identifier or free text, not a category: it is not monitored.
IDENTIFIER_MIN_VALUES = 20
MAX_FEATURES = 100
MAX_ROWS = 100_000  # a larger training set is described from a seeded sample of its rows
EPSILON = 1e-4
OTHER = "__other__"
UNSEEN = "__unseen__"
TEXT_LENGTH = "text_length"

Task = Literal["classification", "regression"]
# One feature: a numpy array of floats (numeric) or a pandas Series (categorical).
Values = Any


def feature_columns(features: Any, kind: str) -> dict[str, tuple[str, Values]]:
    """The monitored features of model input: ``{name: ("numeric" | "categorical", values)}``.

    ``features`` are rows as requests carry them (``inference.build_input``): the model's
    input, or the loaded columns when the schema names feature steps (``make_features``);
    ``kind`` is the schema's kind (``table``, ``text`` or ``array``).
    """
    columns: dict[str, tuple[str, Values]] = {}
    if kind == "text":
        lengths = np.fromiter((len(text) for text in features), dtype=float)
        columns[TEXT_LENGTH] = ("numeric", lengths)
    elif kind == "array":
        array = np.asarray(features)
        for index in range(min(array.shape[1], MAX_FEATURES)):
            columns[f"features[{index}]"] = ("numeric", array[:, index].astype(float))
    else:
        for name in features.columns:
            if len(columns) == MAX_FEATURES:
                break
            values = features[name]
            dtype = values.dtype
            if ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
                continue
            numeric = (
                ptypes.is_numeric_dtype(dtype)
                and not ptypes.is_bool_dtype(dtype)
                and not isinstance(dtype, pd.CategoricalDtype)
            )
            if numeric:
                as_float = pd.to_numeric(values, errors="coerce")
                columns[str(name)] = ("numeric", as_float.to_numpy(dtype=float, na_value=np.nan))
            elif not identifier_like(values):
                columns[str(name)] = ("categorical", values)
    return columns


def identifier_like(values: pd.Series) -> bool:
    """Whether a categorical column holds mostly distinct values (``IDENTIFIER_MIN_VALUES``)."""
    present = category_labels(values.dropna())
    distinct = present.nunique()
    return distinct >= IDENTIFIER_MIN_VALUES and 2 * distinct >= len(present)


def prediction_task(model: Any, predictions: Sequence[Any]) -> Task:
    """``classification`` for a model with ``predict_proba`` or predictions that are not
    all floats (labels, integers, booleans), else ``regression``.

    ``predictions`` are JSON values (``artifacts.to_json_safe``), as the service returns them.
    """
    if hasattr(model, "predict_proba"):
        return "classification"
    present = [value for value in predictions if value is not None]
    if present and all(isinstance(value, float) for value in present):
        return "regression"
    return "classification"


def prediction_values(predictions: Sequence[Any], task: Task) -> tuple[str, Values]:
    """The predictions as one monitored feature (see ``feature_columns``)."""
    if task == "regression":
        return "numeric", np.array(
            [math.nan if value is None else float(value) for value in predictions], dtype=float
        )
    return "categorical", pd.Series(list(predictions), dtype=object)


def describe(kind: str, values: Values) -> dict[str, Any]:
    """The reference description of one feature (see the module docstring)."""
    if kind == "numeric":
        return describe_numeric(np.asarray(values, dtype=float))
    return describe_categorical(pd.Series(values))


def describe_numeric(values: np.ndarray) -> dict[str, Any]:
    missing = np.isnan(values)
    present = values[~missing]
    finite = present[np.isfinite(present)]
    description: dict[str, Any] = {
        "type": "numeric",
        "missing_share": float(missing.mean()) if len(values) else 0.0,
        "edges": [],
        "shares": [],
        "min": None,
        "max": None,
        "quantiles": [],
        "count": int(len(finite)),
    }
    if len(finite) == 0:
        return description
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    description.update(
        edges=[float(edge) for edge in edges],
        shares=[float(share) for share in counts / counts.sum()],
        min=float(finite.min()),
        max=float(finite.max()),
        quantiles=[float(q) for q in np.quantile(finite, np.linspace(0, 1, QUANTILES))],
    )
    if len(finite) < QUANTILES:
        description["values"] = [float(v) for v in np.sort(finite)]
    return description


def describe_categorical(values: pd.Series) -> dict[str, Any]:
    missing = values.isna().to_numpy()
    present = category_labels(values[~missing])
    counts = present.value_counts()
    shares = {str(label): float(count) / len(present) for label, count in counts.items()}
    if len(shares) > MAX_CATEGORIES:
        kept = dict(list(shares.items())[:MAX_CATEGORIES])
        kept[OTHER] = 1.0 - sum(kept.values())
        shares = kept
    return {
        "type": "categorical",
        "missing_share": float(missing.mean()) if len(values) else 0.0,
        "shares": shares,
    }


def category_labels(values: pd.Series) -> pd.Series:
    """Categories as strings (JSON ``true`` and numpy ``True`` alike give ``"True"``)."""
    return values.astype(object).map(str)


def reference_statistics(
    features: Any, kind: str, predictions: Sequence[Any], task: Task
) -> dict[str, Any]:
    """The content of ``reference.json`` for model input and the model's predictions on it."""
    return {
        "version": REFERENCE_VERSION,
        "rows": len(predictions),
        "task": task,
        "features": {
            name: describe(feature_kind, values)
            for name, (feature_kind, values) in feature_columns(features, kind).items()
        },
        "predictions": describe(*prediction_values(predictions, task)),
    }


def compare(reference: Mapping[str, Any], values: Values) -> dict[str, float]:
    """PSI, missing share and out-of-range share of live ``values`` against ``reference``,
    and for a numeric feature the Kolmogorov-Smirnov ``ks`` statistic and ``ks_pvalue``.

    A measure is NaN when there is nothing to compare (no reference bins or quantiles, no
    live value).
    """
    if reference["type"] == "numeric":
        return _compare_numeric(reference, np.asarray(values, dtype=float))
    return _compare_categorical(reference, pd.Series(values))


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population Stability Index of ``actual`` shares against ``expected`` ones."""
    expected_shares = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    actual_shares = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(
        np.sum((actual_shares - expected_shares) * np.log(actual_shares / expected_shares))
    )


def _compare_numeric(reference: Mapping[str, Any], values: np.ndarray) -> dict[str, float]:
    total = len(values)
    missing = np.isnan(values)
    present = values[~missing]
    result = {
        "psi": math.nan,
        "missing_share": float(missing.mean()) if total else math.nan,
        "out_of_range_share": math.nan,
        "ks": math.nan,
        "ks_pvalue": math.nan,
    }
    if len(present) == 0 or reference["min"] is None:
        return result
    outside = (present < reference["min"]) | (present > reference["max"])
    result["out_of_range_share"] = float(outside.sum()) / total
    edges = np.asarray(reference["edges"], dtype=float)
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    result["psi"] = psi(reference["shares"], counts / counts.sum())
    finite = present[np.isfinite(present)]
    if reference.get("quantiles") and len(finite):  # absent from older reference.json
        exact = reference.get("values")
        statistic, pvalue = kolmogorov_smirnov(
            np.asarray(exact or reference["quantiles"], dtype=float),
            reference["count"],
            finite,
            exact=bool(exact),
        )
        result.update(ks=statistic, ks_pvalue=pvalue)
    return result


def kolmogorov_smirnov(
    quantiles: np.ndarray, reference_count: int, values: np.ndarray, exact: bool = False
) -> tuple[float, float]:
    """The two-sample KS statistic of ``values`` against a distribution given by its
    evenly spaced ``quantiles`` (of ``reference_count`` values), and its p-value; with
    ``exact``, ``quantiles`` are the reference values themselves, sorted.

    The statistic is the largest gap between the live empirical distribution and the
    reference one, which is linear between its quantiles (a step at each value when
    ``exact``); both are evaluated just before and at each live value and reference quantile,
    where the gap can be largest.
    """
    live = np.sort(values)
    levels = np.linspace(0.0, 1.0, len(quantiles))
    points = np.concatenate([live, quantiles])
    live_at = np.searchsorted(live, points, side="right") / len(live)
    live_before = np.searchsorted(live, points, side="left") / len(live)
    if exact:
        reference_at = np.searchsorted(quantiles, points, side="right") / len(quantiles)
        reference_before = np.searchsorted(quantiles, points, side="left") / len(quantiles)
    else:
        reference_at = _reference_cdf(quantiles, levels, points, side="right")
        reference_before = _reference_cdf(quantiles, levels, points, side="left")
    statistic = float(
        max(np.max(np.abs(live_at - reference_at)), np.max(np.abs(live_before - reference_before)))
    )
    # Imported here: describing the training data (in `make train`, or in the notebook's
    # kernel for `promote --execute`) does not need scipy. scipy.special, not scipy.stats,
    # which takes seconds more to import.
    from scipy import special

    effective = len(live) * reference_count / (len(live) + reference_count)
    pvalue = float(special.kolmogorov(math.sqrt(effective) * statistic))
    return statistic, min(max(pvalue, 0.0), 1.0)


def _reference_cdf(
    quantiles: np.ndarray, levels: np.ndarray, points: np.ndarray, side: Literal["left", "right"]
) -> np.ndarray:
    """The reference distribution function at ``points`` (``side="left"``: just before).

    Linear between distinct quantiles; a value repeated over several quantiles (a discrete
    feature) is a jump, from the level of its first quantile to that of its last.
    """
    index = np.searchsorted(quantiles, points, side=side)  # quantiles below (or at) a point
    cdf = np.where(index > 0, levels[np.maximum(index - 1, 0)], 0.0)
    inside = (index > 0) & (index < len(quantiles))
    low = quantiles[np.maximum(index - 1, 0)]
    high = quantiles[np.minimum(index, len(quantiles) - 1)]
    gap = np.where(inside & (high > low), high - low, 1.0)
    step = levels[1] - levels[0] if len(levels) > 1 else 1.0
    fraction = np.where(inside & (high > low), (points - low) / gap, 0.0)
    return np.asarray(np.clip(cdf + fraction * step, 0.0, 1.0))


def _compare_categorical(reference: Mapping[str, Any], values: pd.Series) -> dict[str, float]:
    total = len(values)
    missing = values.isna().to_numpy()
    labels = category_labels(values[~missing])
    result = {
        "psi": math.nan,
        "missing_share": float(missing.mean()) if total else math.nan,
        "out_of_range_share": math.nan,
    }
    expected: dict[str, float] = dict(reference["shares"])
    if len(labels) == 0 or not expected:
        return result
    counts = labels.value_counts()
    known = {label: 0.0 for label in expected}
    unseen = 0.0
    for label, count in counts.items():
        if label in known:
            known[label] += float(count)
        elif OTHER in known:
            known[OTHER] += float(count)  # a rare training category, or a new one
        else:
            unseen += float(count)
    result["out_of_range_share"] = unseen / total
    buckets = list(known)
    actual = [known[label] / len(labels) for label in buckets] + [unseen / len(labels)]
    result["psi"] = psi([expected[label] for label in buckets] + [0.0], actual)
    return result
