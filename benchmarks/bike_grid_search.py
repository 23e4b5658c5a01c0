"""Why dipanjan-bike's grid search is slow once promote's retry has fixed its drift.

Run: `.venv/bin/python benchmarks/bike_grid_search.py [--env NAME ...] [--grid] [--json out.json]`

The corpus notebook `dipanjan-bike-dtree-regression` passes `criterion=["mse", "mae"]` to a
`GridSearchCV` (270 candidates, 5 folds: 1,350 fits, `n_jobs` not set, so one core); scikit-learn
1.2 removed those names, and promote's fresh environment 1 (scikit-learn 1.1.3, with today's
pandas) runs them. This script reproduces the notebook's code up to that search (promote's
cell 30), without plots and pydotplus, in fresh uv environments, one per set of pins:

- ``retried``: the pins of promote's fresh environment 1 for this notebook (`promote check
  --explain-pins`, 7 December 2026): scikit-learn 1.1.3, numpy 1.26.4, pandas 3.0.6;
- ``era``: scikit-learn 1.1.3 with the pandas, numpy and scipy of its time (late 2022);
- ``sklearn-1.7``, ``sklearn-1.8``, ``today``: later scikit-learn with today's pandas and numpy,
  the criteria under their new names (`squared_error`, `absolute_error`: what
  `promote check --modernize` suggests).

In each it times one fit per criterion on a fold's rows (4/5 of the training set), at the
smallest and the biggest tree of the grid, on the DataFrame and on a float32 array (what
scikit-learn converts it to), and the DataFrame's conversion alone; with ``--grid`` the whole
search as the notebook runs it, and the seconds its fits took per criterion (from
``cv_results_``). CPU seconds beside wall seconds, since the machine may be shared. Needs
``../shared/corpus`` (or ``$PROMOTE_CORPUS``) and uv; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("PROMOTE_CORPUS", ROOT.parent / "shared" / "corpus"))
DATA = CORPUS / "dipanjan-bike-dtree-regression" / "hour.csv"
ENVIRONMENTS = {
    "retried": ["scikit-learn==1.1.3", "numpy==1.26.4", "pandas==3.0.6"],
    "era": ["scikit-learn==1.1.3", "numpy==1.23.5", "pandas==1.5.3", "scipy==1.9.3"],
    "sklearn-1.7": ["scikit-learn==1.7.2", "numpy", "pandas"],
    "sklearn-1.8": ["scikit-learn==1.8.0", "numpy", "pandas"],
    "today": ["scikit-learn", "numpy", "pandas"],
}
TIMEOUT = 7200

# The notebook's code, with timings; prints one JSON object per measurement.
NOTEBOOK = r"""
import json, sys, time, warnings
import numpy as np
import pandas as pd
import sklearn
from sklearn import preprocessing
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import check_array

warnings.simplefilter("ignore")
modern = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 2)
MSE, MAE = ("squared_error", "absolute_error") if modern else ("mse", "mae")
versions = {"scikit-learn": sklearn.__version__, "pandas": pd.__version__,
            "numpy": np.__version__}

def say(**fields):
    print(json.dumps(fields), flush=True)

def clock():
    return time.perf_counter(), time.process_time()

def since(start):
    wall, cpu = clock()
    return {"wall": round(wall - start[0], 4), "cpu": round(cpu - start[1], 4)}

hour_df = pd.read_csv("hour.csv")
hour_df.rename(columns={"instant": "rec_id", "dteday": "datetime", "holiday": "is_holiday",
                        "workingday": "is_workingday", "weathersit": "weather_condition",
                        "hum": "humidity", "mnth": "month", "cnt": "total_count",
                        "hr": "hour", "yr": "year"}, inplace=True)
hour_df["datetime"] = pd.to_datetime(hour_df.datetime)
for column in ["season", "is_holiday", "weekday", "weather_condition", "is_workingday",
               "month", "year", "hour"]:
    hour_df[column] = hour_df[column].astype("category")

def fit_transform_ohe(df, col_name):
    le = preprocessing.LabelEncoder()
    df[col_name + "_label"] = le.fit_transform(df[col_name])
    ohe = preprocessing.OneHotEncoder()
    feature_arr = ohe.fit_transform(df[[col_name + "_label"]]).toarray()
    labels = [col_name + "_" + str(label) for label in le.classes_]
    return le, ohe, pd.DataFrame(feature_arr, columns=labels)

X, X_test, y, y_test = train_test_split(hour_df.iloc[:, 0:-3], hour_df.iloc[:, -1],
                                        test_size=0.33, random_state=42)
X.reset_index(inplace=True)
y = y.reset_index()
cat_attr_list = ["season", "is_holiday", "weather_condition", "is_workingday", "hour",
                 "weekday", "month", "year"]
numeric_feature_cols = ["temp", "humidity", "windspeed", "hour", "weekday", "month", "year"]
subset_cat_features = ["season", "is_holiday", "weather_condition", "is_workingday"]
encoded = [(col, fit_transform_ohe(X, col)[2]) for col in cat_attr_list]
X = pd.concat([X[numeric_feature_cols]]
              + [frame for col, frame in encoded if col in subset_cat_features], axis=1)
y = y.total_count.values.reshape(-1, 1)
say(what="data", versions=versions, shape=list(X.shape),
    dtypes=sorted(set(str(t) for t in X.dtypes)))

dtr = DecisionTreeRegressor(max_depth=4, min_samples_split=5, max_leaf_nodes=10)
param_grid = {"criterion": [MSE, MAE], "min_samples_split": [10, 20, 40],
              "max_depth": [2, 6, 8], "min_samples_leaf": [20, 40, 100],
              "max_leaf_nodes": [5, 20, 100, 500, 800]}

n = len(X) * 4 // 5  # a fold's training rows
rows, target = X.iloc[:n], y[:n]
array = np.asarray(rows, dtype=np.float32)
for criterion in (MSE, MAE):
    for depth, leaves in ((2, 5), (8, 800)):
        for given, data in (("DataFrame", rows), ("float32 array", array)):
            model = DecisionTreeRegressor(criterion=criterion, max_depth=depth,
                                          max_leaf_nodes=leaves, min_samples_split=10,
                                          min_samples_leaf=20)
            start = clock()
            model.fit(data, target)
            say(what="fit", criterion=criterion, max_depth=depth, max_leaf_nodes=leaves,
                input=given, **since(start))
start = clock()
for _ in range(20):
    check_array(rows, dtype=np.float32)
say(what="DataFrame to float32, 20 times", **since(start))

if "--grid" in sys.argv:  # the notebook's search, as it runs it (cv=5, n_jobs not set)
    search = GridSearchCV(dtr, param_grid, cv=5)
    start = clock()
    search.fit(X, y)
    took = since(start)
    results = pd.DataFrame(search.cv_results_)
    for criterion, part in results.groupby("param_criterion"):  # fit seconds, all 5 folds
        say(what="grid search: fitting", criterion=criterion, fits=len(part) * 5,
            seconds=round(float(part["mean_fit_time"].sum() * 5), 1),
            slowest=round(float(part["mean_fit_time"].max()), 3))
    say(what="grid search", fits=len(results) * 5, best=round(float(search.best_score_), 4),
        params=search.best_params_, **took)
"""


def measure(name: str, pins: list[str], grid: bool, uv: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix=f"bike-{name}-") as scratch:
        folder = Path(scratch)
        shutil.copy(DATA, folder / "hour.csv")
        (folder / "bike.py").write_text(NOTEBOOK)
        venv = folder / "venv"
        python = venv / "bin" / "python"
        for command in (
            [uv, "venv", "--quiet", "--python", "3.11", str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(python), *pins],
        ):
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)
        done = subprocess.run(
            [str(python), "bike.py", *(["--grid"] if grid else [])],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            return [{"what": "error", "stderr": done.stderr[-1000:]}]
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", choices=sorted(ENVIRONMENTS))
    parser.add_argument("--grid", action="store_true", help="also the whole search (minutes)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not DATA.is_file():
        print(f"no {DATA}: nothing to measure")
        return 1
    results: dict[str, Any] = {"load": os.getloadavg()[0], "environments": {}}
    for name in args.env or list(ENVIRONMENTS):
        measured = measure(name, ENVIRONMENTS[name], args.grid, uv)
        results["environments"][name] = measured
        for row in measured:
            fields = {k: v for k, v in row.items() if k != "what"}
            print(f"{name:12s} {row['what']:32s} {json.dumps(fields)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
