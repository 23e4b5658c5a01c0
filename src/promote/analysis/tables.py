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
# Method names that change an object or the world when called as a bare statement.
STATE_CHANGING_CALL = re.compile(
    r"^(fit\w*|partial_fit|train|compile|append|extend|insert|update|pop|popitem|remove|clear|sort|"
    r"add|discard|setdefault|to_\w+|save\w*|dump\w*|write\w*|seed|manual_seed|set_seed|mkdir|"
    r"makedirs|download\w*|urlretrieve|get_file|close|run|execute|send|put|post|delete|rename|move|copy\w+|"
    r"set_\w+|register|load_state_dict|step|backward|zero_grad|eval|apply_|drop_duplicates_|"
    r"reset_|shuffle|rollback|commit|system|call)$"
)
# Calls that give a cell its role, most telling first (first match wins within a cell).
ROLE_CALLS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("train", re.compile(r"^(fit|fit_generator|train|partial_fit|fit_predict|backward)$")),
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
# Keyword arguments whose literal values are settings: seeds, split ratios, hyper-parameters and
# thresholds of the libraries data scientists use (scikit-learn, XGBoost, LightGBM, CatBoost,
# Keras, PyTorch loaders). Runtime knobs (n_jobs, verbose) are not settings of the model.
# fmt: off
SETTING_KEYWORDS = frozenset({
    # seeds and splits
    "random_state", "seed", "random_seed", "test_size", "train_size", "n_splits", "cv",
    # trees and ensembles
    "n_estimators", "max_depth", "min_samples_split", "min_samples_leaf", "max_features",
    "max_leaf_nodes", "min_impurity_decrease", "criterion", "bootstrap", "max_samples",
    "subsample", "learning_rate", "num_leaves", "min_child_weight", "min_child_samples",
    "colsample_bytree", "colsample_bylevel", "reg_alpha", "reg_lambda", "gamma", "eta",
    "num_boost_round", "early_stopping_rounds", "iterations", "depth", "l2_leaf_reg",
    "scale_pos_weight", "max_bin",
    # linear models, SVMs, neighbours, clustering, decomposition
    "C", "alpha", "l1_ratio", "penalty", "solver", "max_iter", "tol", "kernel", "degree",
    "epsilon", "fit_intercept", "class_weight", "n_neighbors", "weights", "metric",
    "n_clusters", "n_components", "eps", "min_samples", "n_init", "linkage",
    # text features
    "max_df", "min_df", "ngram_range", "stop_words", "lowercase", "sublinear_tf", "analyzer",
    # neural networks
    "epochs", "batch_size", "lr", "validation_split", "patience", "momentum", "weight_decay",
    "hidden_layer_sizes",
    # thresholds
    "threshold",
})
# fmt: on
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

# -- checks (promote.analysis.checks) ----------------------------------------------------------
# Calls that reach the network, by qualified name (imports resolved): exact names, and prefixes
# ending in "." that match any function of a module.
NETWORK_CALLS = frozenset(
    {
        "urllib.request.urlopen",
        "urllib.request.urlretrieve",
        "urllib.urlopen",
        "urllib.urlretrieve",
        "urllib2.urlopen",
        "six.moves.urllib.request.urlopen",
        "six.moves.urllib.request.urlretrieve",
        "wget.download",
        "gdown.download",
        "nltk.download",
        "datasets.load_dataset",
        "huggingface_hub.hf_hub_download",
        "huggingface_hub.snapshot_download",
        "tensorflow.keras.utils.get_file",
        "keras.utils.get_file",
        "tensorflow_datasets.load",
        "kagglehub.dataset_download",
        "opendatasets.download",
        "yfinance.download",
        "pandas_datareader.DataReader",
    }
)
NETWORK_PREFIXES = (
    "requests.",
    "httpx.",
    "aiohttp.",
    "kaggle.api.",
    "boto3.",
    "sklearn.datasets.fetch_",
)
NETWORK_METHODS = frozenset({"from_pretrained", "untar_data", "urlretrieve", "urlopen"})
URL_PREFIXES = ("http://", "https://", "ftp://", "s3://", "gs://", "az://", "abfs://", "hf://")
NETWORK_EXCLUDED = frozenset({"requests.exceptions.", "requests.codes."})

# Calls that write a file: method name → how to tell its destination is given (an argument
# position or keyword). Writers such as `df.to_csv()` with no destination return a string.
FILE_WRITE_METHODS: dict[str, tuple[int, str]] = {
    "to_csv": (0, "path_or_buf"),
    "to_parquet": (0, "path"),
    "to_excel": (0, "excel_writer"),
    "to_json": (0, "path_or_buf"),
    "to_pickle": (0, "path"),
    "to_feather": (0, "path"),
    "to_hdf": (0, "path_or_buf"),
    "to_stata": (0, "path"),
    "to_html": (0, "buf"),
    "to_netcdf": (0, "path"),
    "savefig": (0, "fname"),
    "save_model": (0, "fname"),
    "save_weights": (0, "filepath"),
    "save_pretrained": (0, "save_directory"),
    "write_text": (-1, ""),
    "write_bytes": (-1, ""),
    "write_image": (0, "file"),
    "write_html": (0, "file"),
    "to_file": (0, "filename"),
}
# Functions (qualified) that write their second argument's destination, or their first.
FILE_WRITE_FUNCTIONS = frozenset(
    {
        "joblib.dump",
        "pickle.dump",
        "dill.dump",
        "cloudpickle.dump",
        "json.dump",
        "yaml.dump",
        "yaml.safe_dump",
        "torch.save",
        "numpy.save",
        "numpy.savez",
        "numpy.savez_compressed",
        "numpy.savetxt",
        "cv2.imwrite",
        "imageio.imwrite",
        "scipy.io.savemat",
        "shutil.copy",
        "shutil.copyfile",
        "shutil.move",
        "os.makedirs",
        "os.mkdir",
        "sklearn.externals.joblib.dump",
        "matplotlib.pyplot.savefig",
    }
)
# `x.save(path)` writes when x is one of these kinds of receivers (a model, an image, a tensor
# library): receivers that are unknown names are accepted too, as `.save(...)` with a string.
OPEN_WRITE_MODES = re.compile(r"[wax+]")

# Random number generators: (qualified prefix, family). A call under the prefix draws numbers.
RANDOM_USES: tuple[tuple[str, str], ...] = (
    ("numpy.random.", "numpy"),
    ("random.", "random"),
    ("torch.rand", "torch"),
    ("torch.nn.", "torch"),
    ("torch.optim.", "torch"),
    ("torch.utils.data.DataLoader", "torch"),
    ("tensorflow.keras.", "tensorflow"),
    ("keras.", "tensorflow"),
)
# Calls that are not draws, though they live under a RANDOM_USES prefix.
NOT_DRAWS = frozenset(
    {
        "numpy.random.seed",
        "numpy.random.default_rng",
        "numpy.random.RandomState",
        "numpy.random.Generator",
        "numpy.random.get_state",
        "numpy.random.set_state",
        "random.seed",
        "random.Random",
        "random.getstate",
        "random.setstate",
    }
)
# Seeding calls (qualified, or a method name after "*.") → families they seed.
SEED_CALLS: dict[str, frozenset[str]] = {
    "numpy.random.seed": frozenset({"numpy", "sklearn"}),
    "random.seed": frozenset({"random"}),
    "torch.manual_seed": frozenset({"torch"}),
    "torch.cuda.manual_seed": frozenset({"torch"}),
    "torch.cuda.manual_seed_all": frozenset({"torch"}),
    "tensorflow.random.set_seed": frozenset({"tensorflow"}),
    "tensorflow.set_random_seed": frozenset({"tensorflow"}),
    "tensorflow.compat.v1.set_random_seed": frozenset({"tensorflow"}),
    "keras.utils.set_random_seed": frozenset({"tensorflow", "numpy", "random", "sklearn"}),
    "tensorflow.keras.utils.set_random_seed": frozenset(
        {"tensorflow", "numpy", "random", "sklearn"}
    ),
    "transformers.set_seed": frozenset({"torch", "numpy", "random", "tensorflow", "sklearn"}),
    "*.seed_everything": frozenset({"torch", "numpy", "random", "sklearn"}),
    "*.set_seed": frozenset({"torch", "numpy", "random", "tensorflow", "sklearn"}),
    "fastai.torch_core.set_seed": frozenset({"torch", "numpy", "random", "sklearn"}),
}
SEED_FIXES: dict[str, str] = {
    "numpy": "Call np.random.seed(SEED) once at the top, or draw from np.random.default_rng(SEED)",
    "random": "Call random.seed(SEED) once at the top",
    "torch": "Call torch.manual_seed(SEED) once at the top",
    "tensorflow": "Call tf.keras.utils.set_random_seed(SEED) once at the top",
}
# Estimators and splitters that draw random numbers unless given `random_state`.
STOCHASTIC_ESTIMATORS = frozenset(
    {
        "train_test_split",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        "AdaBoostClassifier",
        "AdaBoostRegressor",
        "BaggingClassifier",
        "BaggingRegressor",
        "IsolationForest",
        "MLPClassifier",
        "MLPRegressor",
        "SGDClassifier",
        "SGDRegressor",
        "KMeans",
        "MiniBatchKMeans",
        "GaussianMixture",
        "TSNE",
        "RandomizedSearchCV",
        "ShuffleSplit",
        "StratifiedShuffleSplit",
        "RandomOverSampler",
        "SMOTE",
        "RandomUnderSampler",
    }
)
# Splitters that are random only with shuffle=True.
SHUFFLING_SPLITTERS = frozenset({"KFold", "StratifiedKFold", "GroupKFold", "RepeatedKFold"})
# Calls that train (the seed checks only apply to notebooks that train).
TRAINING_CALLS = frozenset(
    {"fit", "fit_generator", "train", "partial_fit", "fit_predict", "backward"}
)

# Secrets: token shapes that are secrets whatever they are called.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("an OpenAI-style API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("a private key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----")),
)
# `scheme://user:password@host`: credentials inside a URL.
CREDENTIALS_URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://([^\s:/@'\"]+):([^\s@/'\"]+)@[^\s'\"]+")
# `password = "..."` / `"api_key": "..."` in printed text.
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(api_?key|secret(?:_key)?|access_?token|auth_?token|password|passwd)\b['\"]?\s*[:=]\s*"
    r"['\"]([^'\"\s]{8,})['\"]"
)
# Values that are placeholders, not secrets.
PLACEHOLDER = re.compile(
    r"(?i)(your|xxxx|\*\*\*|<[^>]*>|\{[^}]*\}|\$\{?\w+|changeme|example|placeholder|dummy|\.\.\.)"
)
ENV_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")

# Absolute and home-directory paths in string literals.
ABSOLUTE_PATH = re.compile(r"^(?:~[/\\]|/(?!/)[^/\s]+/[^/\s]+|[A-Za-z]:[\\/]|\\\\[^\\\s]+\\)")
SYSTEM_PATHS = ("/dev/", "/proc/", "/sys/", "/usr/share/", "/etc/")

# Assignments whose value has a known kind, for P023: call → kind of result.
RESULT_KINDS: dict[str, str] = {
    "read_csv": "a DataFrame",
    "read_excel": "a DataFrame",
    "read_parquet": "a DataFrame",
    "read_json": "a DataFrame",
    "read_table": "a DataFrame",
    "read_sql": "a DataFrame",
    "read_feather": "a DataFrame",
    "DataFrame": "a DataFrame",
    "Series": "a Series",
    "array": "an array",
    "zeros": "an array",
    "ones": "an array",
    "arange": "an array",
    "linspace": "an array",
}
