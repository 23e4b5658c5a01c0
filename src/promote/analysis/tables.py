"""Tables that drive the analysis: display calls, cell roles, heading keywords, distributions.

Variation lives here as data (see jupytext's format table); the code that reads it stays small.
"""

from __future__ import annotations

import re

# Modules whose calls only draw or print: a statement calling them is display.
PLOTTING_MODULES = frozenset(
    {
        "matplotlib",
        "seaborn",
        "plotly",
        "bokeh",
        "altair",
        "hvplot",
        "holoviews",
        "pylab",
        "IPython",
        "wordcloud",
        "yellowbrick",
        "missingno",
        "pandas_profiling",
        "ydata_profiling",
        "graphviz",
        "pydotplus",
        "tqdm",
        "pprint",
    }
)
# Functions called as a statement purely for display or session set-up.
DISPLAY_FUNCTIONS = frozenset(
    {
        "print",
        "display",
        "pprint",
        "set_config",
        "set_option",
        "filterwarnings",
        "simplefilter",
        "set_printoptions",
        "init_notebook_mode",
        "Markdown",
        "HTML",
    }
)
# Built-in functions with no effect when their result is thrown away.
PURE_BUILTINS = frozenset(
    {
        "len",
        "type",
        "sorted",
        "list",
        "set",
        "tuple",
        "dict",
        "sum",
        "min",
        "max",
        "round",
        "abs",
        "repr",
        "str",
        "int",
        "float",
        "bool",
        "zip",
        "enumerate",
        "range",
        "isinstance",
        "id",
        "dir",
        "vars",
        "help",
        "any",
        "all",
        "reversed",
        "hash",
        "format",
        "divmod",
    }
)
# Methods that only look at an object (no in-place change) when called as a bare statement.
LOOK_METHODS = frozenset(
    {
        "head",
        "tail",
        "describe",
        "info",
        "sample",
        "value_counts",
        "corr",
        "cov",
        "nunique",
        "unique",
        "isnull",
        "isna",
        "notnull",
        "notna",
        "sum",
        "mean",
        "median",
        "count",
        "max",
        "min",
        "std",
        "var",
        "mode",
        "groupby",
        "agg",
        "aggregate",
        "sort_values",
        "sort_index",
        "reset_index",
        "plot",
        "hist",
        "boxplot",
        "scatter",
        "bar",
        "barh",
        "pie",
        "kde",
        "line",
        "to_frame",
        "round",
        "astype",
        "query",
        "duplicated",
        "memory_usage",
        "show",
        "style",
        "get_params",
        "summary",
        "items",
        "keys",
        "values",
        "tolist",
        "to_string",
        "crosstab",
        "pivot_table",
        "transpose",
        "all",
        "any",
        "idxmax",
        "idxmin",
        "quantile",
        "skew",
        "kurt",
        "abs",
        "nlargest",
        "nsmallest",
        "first",
        "last",
        "get",
        "copy",
        "set_xlabel",
        "set_ylabel",
        "set_title",
        "legend",
        "tight_layout",
        "savefig",
        "imshow",
        "subplots",
        "figure",
    }
)
# Methods of fitted models that answer without changing the model.
QUERY_METHODS = frozenset(
    {
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "score",
        "transform",
        "get_feature_names_out",
        "forecast",
        "summary",
        "evaluate",
        "explained_variance_ratio_",
    }
)
# Method names that change an object or the world when called as a bare statement.
STATE_CHANGING_CALL = re.compile(
    r"^(fit\w*|partial_fit|train|compile|append|extend|insert|update|pop|popitem|remove|clear|sort|"
    r"add|discard|setdefault|to_\w+|save\w*|dump\w*|write\w*|seed|manual_seed|set_seed|mkdir|"
    r"makedirs|download\w*|close|run|execute|send|put|post|delete|rename|move|copy\w+|"
    r"set_\w+|register|load_state_dict|step|backward|zero_grad|eval|apply_|drop_duplicates_|"
    r"reset_|shuffle|rollback|commit|system|call)$"
)
# Calls that give a cell its role, most telling first (first match wins within a cell).
ROLE_CALLS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("train", re.compile(r"^(fit|fit_generator|train|partial_fit|fit_predict)$")),
    (
        "evaluate",
        re.compile(
            r"(score|_error$|^classification_report$|^confusion_matrix$|^cross_validate$|"
            r"^evaluate$|^mean_absolute_percentage_error$|^log_loss$)"
        ),
    ),
    (
        "predict",
        re.compile(r"^(predict|predict_proba|predict_log_proba|forecast|decision_function)$"),
    ),
    (
        "load",
        re.compile(
            r"^(read_csv|read_excel|read_parquet|read_json|read_table|read_sql|read_feather|"
            r"read_pickle|read_fwf|read_hdf|load_\w+|fetch_\w+|loadtxt|genfromtxt|load|"
            r"make_classification|make_regression|make_blobs|make_moons|make_circles|open)$"
        ),
    ),
)
# Markdown heading keywords → stage, checked in this order (so "Train/test split" is features).
HEADING_STAGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("predict", re.compile(r"\b(predict|inference|new data|forecast|deploy|serving)", re.I)),
    (
        "features",
        re.compile(
            r"\b(split|feature|preprocess|pre-process|clean|prepar|engineer|transform|wrangl|encod)",
            re.I,
        ),
    ),
    ("evaluate", re.compile(r"\b(evaluat|metric|score|validat|result|performance|accuracy)", re.I)),
    ("train", re.compile(r"\b(train|model|fit|build|learn)", re.I)),
    ("load", re.compile(r"\b(load|read|ingest|dataset|get the data|import the data)", re.I)),
)
MAX_HEADING_WORDS = 6  # longer headings are sentences, not section names
STAGES = ("load", "features", "train", "evaluate", "predict")
# Stage → the module it becomes and its default function name.
STAGE_MODULES: dict[str, tuple[str, str]] = {
    "load": ("data", "load_data"),
    "features": ("features", "build_features"),
    "train": ("train", "train_model"),
    "evaluate": ("evaluate", "evaluate_model"),
    "predict": ("predict", "predict_examples"),
}
# Names that look like metrics when an evaluate stage assigns them.
METRIC_NAME = re.compile(
    r"(acc|accuracy|score|f1|precision|recall|auc|r2|rmse|mse|mae|mape|loss|error)", re.I
)
SECRET_NAME = re.compile(r"(api_?key|secret|token|password|passwd|access_?key)", re.I)

# Import name → distribution on PyPI, where they differ.
DISTRIBUTIONS: dict[str, str] = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "Crypto": "pycryptodome",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "torch": "torch",
    "mpl_toolkits": "matplotlib",
    "pylab": "matplotlib",
    "pandas_profiling": "pandas-profiling",
    "ydata_profiling": "ydata-profiling",
    "docx": "python-docx",
    "google.cloud": "google-cloud",
    "umap": "umap-learn",
    "Levenshtein": "python-Levenshtein",
    "jwt": "pyjwt",
    "attr": "attrs",
    "IPython": "ipython",
    "tqdm": "tqdm",
}
