"""The analysis on small inline cells: definitions, uses, roles, display, diagnostics, model."""

from __future__ import annotations

import pytest
from helpers import analyse_cells, code, notebook_json

from promote import diagnostics as d
from promote.analysis import analyse
from promote.analysis.bindings import BUILTINS
from promote.analysis.dependencies import distribution as resolve_distribution
from promote.analysis.dependencies import pinned
from promote.notebook import reads


def defined(analysis, cell: int) -> set[str]:  # type: ignore[no-untyped-def]
    found = next(c for c in analysis.cells if c.index == cell)
    return {n for s in found.statements if s.kind != "display" for n in s.binds}


@pytest.mark.parametrize(
    ("source", "reads", "binds"),
    [
        ("x += 1", ["x"], ["x"]),
        ('df["c"] = df.a * k', ["df", "k"], ["df"]),
        ("obj.attr = value", ["value", "obj"], ["obj"]),
        ("df.dropna(inplace=True)", ["df"], ["df"]),
        ("model.fit(X, y)", ["model", "X", "y"], ["model"]),
        ("y = [i * z for i in range(n)]", ["range", "n", "z"], ["y"]),
        ("f = lambda q: q + w", ["w"], ["f"]),
        ("def f(a):\n    return a + g", [], ["f"]),
        ("import os.path as p, numpy", [], ["p", "numpy"]),
        ("for c in cols:\n    total = c", ["cols"], ["c", "total"]),
        ("with open(p) as fh:\n    text = fh.read()", ["open", "p"], ["fh", "text"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_reads_and_binds(source: str, reads: list[str], binds: list[str]) -> None:
    statement = analyse_cells(source).cells[0].statements[0]
    assert [n for n in statement.reads if n not in {"range", "open"}] == [
        n for n in reads if n not in {"range", "open"}
    ]
    assert list(statement.binds) == binds


@pytest.mark.parametrize(
    "source",
    [
        "df.head()",
        "df",
        "df.shape",
        "X_train.shape, X_test.shape",
        "print(accuracy)",
        "len(df), len(X)",
        "plt.show()",
        "df.corr()['y'].drop('y').sort_values()",
        "pd.DataFrame(matrix, index=labels)",
    ],
)
def test_display_statements_are_left_out(source: str) -> None:
    analysis = analyse_cells(
        "import pandas as pd\nimport matplotlib.pyplot as plt\n",
        "df = pd.read_csv('x.csv')",
        source,
    )
    assert [s.kind for s in analysis.cells[2].statements] == ["display"]
    assert defined(analysis, 3) == set()


@pytest.mark.parametrize(
    "source",
    [
        "model.fit(X, y)",
        "df.drop(columns=['a'], inplace=True)",
        "items.append(3)",
        "np.random.seed(0)",
    ],
)
def test_statements_that_change_state_are_kept(source: str) -> None:
    analysis = analyse_cells("import numpy as np", source)
    assert [s.kind for s in analysis.cells[1].statements] == ["code"]


def test_plots_and_their_figures_are_display() -> None:
    analysis = analyse_cells(
        "import matplotlib.pyplot as plt",
        "fig, ax = plt.subplots()\nax.hist(values)\nax.set_title('t')\n"
        "for c in cols:\n    ax.plot(c)",
    )
    assert {s.kind for s in analysis.cells[1].statements} == {"display"}
    assert analysis.cells[1].role == "display"


@pytest.mark.parametrize(
    ("source", "role"),
    [
        ("import pandas as pd", "imports"),
        ("SEED = 42\nPATH = 'data.csv'", "config"),
        ("df = pd.read_csv(PATH)", "load"),
        ("df['r'] = df.a / df.b", "features"),
        ("model.fit(X_train, y_train)", "train"),
        ("acc = accuracy_score(y_test, y_pred)", "evaluate"),
        ("preds = model.predict(new)", "predict"),
        ("df.describe()", "display"),
    ],
)
def test_roles(source: str, role: str) -> None:
    assert analyse_cells(source).cells[0].role == role


def test_undefined_name_is_hidden_state() -> None:
    analysis = analyse_cells("a = 1", "b = a + ghost")
    assert [(type(x), x.cell, getattr(x, "name", "")) for x in analysis.diagnostics] == [
        (d.UndefinedName, 2, "ghost")
    ]


def test_use_before_definition_names_the_defining_cell() -> None:
    analysis = analyse_cells("b = later + 1", "later = 2")
    (found,) = analysis.diagnostics
    assert isinstance(found, d.UseBeforeDefinition)
    assert (found.cell, found.name, found.defined_in) == (1, "later", 2)


def test_function_bodies_are_checked_where_called() -> None:
    """A function may read a name that a later cell defines, as long as it is called after."""
    analysis = analyse_cells("def f():\n    return threshold * 2", "threshold = pick()", "v = f()")
    assert [type(x) for x in analysis.diagnostics] == [d.FunctionReadsGlobal, d.UndefinedName]
    assert not analysis.definitions["f"].pure


def test_pure_definition() -> None:
    analysis = analyse_cells(
        "import numpy as np\nSCALE = 2", "def f(x):\n    return np.log(x) * SCALE"
    )
    assert analysis.definitions["f"].pure


def test_out_of_order_execution_counts() -> None:
    analysis = analyse_cells(code("a = 1", count=3), code("b = a", count=1))
    assert [type(x) for x in analysis.diagnostics] == [d.OutOfOrderExecution]


def test_star_import_is_reported_and_silences_undefined_names() -> None:
    analysis = analyse_cells("from fastai.tabular import *", "learn = tabular_learner(data)")
    assert [type(x) for x in analysis.diagnostics] == [d.StarImport]


def test_secret_the_project_cannot_read_from_the_environment_blocks() -> None:
    analysis = analyse_cells(
        "def client():\n    return Client(api_key='sk-1234567890abcdef')",
        "greeting = f'key {name} ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
    )
    assert [(type(x), x.cell) for x in analysis.diagnostics if x.severity == "error"] == [
        (d.HardcodedSecret, 1),
        (d.HardcodedSecret, 2),
    ]


def test_secret_in_code_becomes_a_setting() -> None:
    analysis = analyse_cells("client = Client(api_key='sk-1234567890abcdef')")
    assert [type(x) for x in analysis.diagnostics] == [d.UndefinedName, d.SecretSetting]


def test_secret_constant_becomes_a_required_setting_not_a_refusal() -> None:
    analysis = analyse_cells(
        "API_KEY = 'sk-1234567890abcdef'", "api_token = 'ghp_abcdef1234567890'"
    )
    assert [(type(x), x.cell) for x in analysis.diagnostics] == [
        (d.SecretSetting, 1),
        (d.SecretSetting, 2),
    ]
    assert set(analysis.constants) == {"API_KEY", "api_token"}


def test_secret_assigned_twice_is_still_moved_out_of_the_code() -> None:
    analysis = analyse_cells("API_KEY = 'sk-1234567890abcdef'", "API_KEY = 'sk-abcdef1234567890'")
    assert [type(x) for x in analysis.diagnostics] == [d.SecretSetting, d.SecretSetting]


@pytest.mark.parametrize(
    ("cells", "model", "fit_input"),
    [
        (
            (
                "model = LogisticRegression()",
                "model.fit(X_train, y_train)",
                "p = model.predict(X_test)",
            ),
            "model",
            "X_train",
        ),
        (("reg = LinearRegression().fit(X, y)",), "reg", "X"),
        (("scaler.fit(X)", "clf.fit(Xs, y)", "clf.predict(Xs)"), "clf", "Xs"),
        (("grid.fit(X, y)", "best = grid.best_estimator_"), "grid", "X"),
        # fit returns the estimator: the model is the name the notebook predicts with
        (("clr = clf.fit(X2, y)", "acc = score(y, clf.predict(X2))", "pca.fit(Xn)"), "clf", "X2"),
        # nothing predicts: a fit on a target (a predictor) wins over a later PCA().fit(X)
        (("forest.fit(X, y)", "pca = PCA().fit(Xn)"), "forest", "X"),
        (("forest.fit(X, y=y)", "pca.fit(Xn)"), "forest", "X"),
        (("kmeans.fit(X)",), "kmeans", "X"),
    ],
)
def test_model_is_the_fitted_object_that_predicts(
    cells: tuple[str, ...], model: str, fit_input: str
) -> None:
    found = analyse_cells(*cells).model
    assert found is not None
    assert (found.name, found.fit_input) == (model, fit_input)


def test_no_model() -> None:
    assert analyse_cells("import pandas as pd", "df = pd.read_csv('a.csv')").model is None


@pytest.mark.parametrize(
    ("cells", "container", "choices", "labels"),
    [
        (
            (
                "models = {'LR': LogisticRegression(), 'SVC': SVC(C=C)}",
                "for name, m in models.items():\n    m.fit(X, y)",
            ),
            "models",
            [('models["LR"]', "LogisticRegression()"), ('models["SVC"]', "SVC(C=C)")],
            ['"LR"', '"SVC"'],
        ),
        (  # the cuisine notebook's form: enumerate over items, the fit on an expression of y
            (
                "clfs = {'a': A(), 'b': B()}",
                "for i, (name, c) in enumerate(clfs.items()):\n    c.fit(X, np.ravel(y))",
            ),
            "clfs",
            [('clfs["a"]', "A()"), ('clfs["b"]', "B()")],
            ['"a"', '"b"'],
        ),
        (
            ("clfs = {'a': A(), 'b': B()}", "for c in clfs.values():\n    c.fit(X, y)"),
            "clfs",
            [('clfs["a"]', "A()"), ('clfs["b"]', "B()")],
            ['"a"', '"b"'],
        ),
        (
            ("clfs = {'a': A(), 'b': B()}", "for key in clfs:\n    clfs[key].fit(X, y)"),
            "clfs",
            [('clfs["a"]', "A()"), ('clfs["b"]', "B()")],
            ['"a"', '"b"'],
        ),
        (
            (
                "models = [('lr', LR()), ('svc', SVC())]",
                "for name, model in models:\n    model.fit(X, y)",
            ),
            "models",
            [("models[0][1]", "LR()"), ("models[1][1]", "SVC()")],
            ['"lr"', '"svc"'],
        ),
        (  # filled by append, in the style of many tutorials
            (
                "models = []\nmodels.append(('lr', LR()))\nmodels.append(('svc', SVC()))",
                "for name, model in models:\n    model.fit(X, y)",
            ),
            "models",
            [("models[0][1]", "LR()"), ("models[1][1]", "SVC()")],
            ['"lr"', '"svc"'],
        ),
        (
            ("models = [LR(), SVC()]", "for m in models:\n    m.fit(X, y)"),
            "models",
            [("models[0]", "LR()"), ("models[1]", "SVC()")],
            ["LR()", "SVC()"],
        ),
        (
            ("lr = LR()\nsvc = SVC()", "for m in [lr, svc]:\n    m.fit(X, y)"),
            "",
            [("lr", "lr"), ("svc", "svc")],
            ["lr", "svc"],
        ),
        (("models = make_models()", "for m in models:\n    m.fit(X, y)"), "models", [], []),
    ],
    ids=[
        "dict-items",
        "enumerate",
        "values",
        "keys",
        "pairs",
        "appended",
        "list",
        "names",
        "unlisted",
    ],
)
def test_a_loop_that_fits_each_candidate_lists_them(
    cells: tuple[str, ...], container: str, choices: list[tuple[str, str]], labels: list[str]
) -> None:
    analysis = analyse_cells("X = 1\ny = 2", *cells)
    loop = analysis.candidates
    assert analysis.model is None
    assert loop is not None
    assert (loop.cell, loop.container, loop.fit_input) == (3, container, "X")
    assert (list(loop.choices), list(loop.labels)) == (choices, labels)
    assert bool(loop.unlisted) == (not choices)


def test_a_loop_fitting_something_else_than_its_items_has_no_candidates() -> None:
    analysis = analyse_cells(
        "X = 1\ny = 2\nmodels = [A(), B()]",
        "for m in models:\n    pipe = make_pipeline(m)\n    pipe.fit(X, y)",
    )
    assert analysis.candidates is None


@pytest.mark.parametrize(
    ("tag", "chosen"),
    [
        ("models[1][1]", "models[1][1]"),
        ("models[-1][1]", "models[1][1]"),
        ("models[-2][1]", "models[0][1]"),
        ("svc", "svc"),
    ],
)
def test_a_model_tag_may_count_from_the_end_or_name_the_candidate(tag: str, chosen: str) -> None:
    analysis = analyse_cells(
        "X = 1\ny = 2\nlr = LR()\nsvc = SVC()\nmodels = [('lr', lr), ('svc', svc)]",
        code("for name, m in models:\n    m.fit(X, y)", tags=(f"promote: model={tag}",)),
    )
    assert analysis.model_tag is None
    assert analysis.model is not None and analysis.model.chosen == chosen


def test_a_model_tag_binds_the_chosen_candidate_after_the_loop() -> None:
    """The loop's cell gets `NAME = EXPR` after its code, NAME one no cell uses."""
    analysis = analyse_cells(
        "X = 1\ny = 2\nmodel_zoo = {'a': A(), 'b': B(random_state=0)}",
        code(
            "for name, model in model_zoo.items():\n    model.fit(X, y)\n"
            "    print(model.score(X, y))",
            tags=("promote: model=model_zoo['b']",),
        ),
    )
    model = analysis.model
    assert model is not None and analysis.model_tag is None
    assert (model.name, model.fit_input, model.cell) == ("chosen_model", "X", 2)
    assert (model.chosen, model.source) == ('model_zoo["b"]', "B(random_state=0)")
    last = analysis.cells[-1].statements[-1]
    assert (last.kind, last.binds, last.reads) == ("code", ("chosen_model",), ("model_zoo",))


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ('promote: model=zoo["c"]', '"c" is not a key of `zoo`'),
        ("promote: model=zoo[0]", "`zoo[0]` is not one of the models the loop fits"),
        ("promote: model=other", "`other` is not one of the models the loop fits"),
        ("promote: model=zoo.get('a')", "not a subscript of the dict or list"),
        ("promote:model=", "names nothing"),
    ],
)
def test_a_model_tag_that_names_no_candidate_is_a_problem(tag: str, problem: str) -> None:
    analysis = analyse_cells(
        "X = 1\ny = 2\nzoo = {'a': A(), 'b': B()}",
        code("for name, m in zoo.items():\n    m.fit(X, y)", tags=(tag,)),
    )
    assert analysis.model is None
    assert analysis.model_tag is not None
    assert analysis.model_tag.cell == 2
    assert problem in analysis.model_tag.problem


def test_constants_are_upper_case_or_in_a_settings_cell() -> None:
    analysis = analyse_cells("TEST_SIZE = 0.2\nlr = 0.1", "n = 5\nm = n + 1", "N = 3\nN = 4")
    assert set(analysis.constants) == {"TEST_SIZE", "lr"}


def test_skip_tag_removes_a_cell() -> None:
    analysis = analyse_cells("a = 1", code("a = broken(", tags=("promote: skip",)))
    assert [c.index for c in analysis.cells] == [1]
    assert analysis.errors == ()


def test_a_loop_that_draws_on_an_axis_is_display() -> None:
    """A loop that computes only to draw on `ax` reads `ax`: it is display, not package code."""
    analysis = analyse_cells(
        "import matplotlib.pyplot as plt",
        "ax = plt.axes()\nfor s in scores:\n    m = s * 2\n    ax.plot(m)",
    )
    assert [s.kind for s in analysis.cells[1].statements] == ["display", "display"]


# -- whole-notebook checks: each case is (cells, expected [(kind, cell, line)]) -------------------
def found(analysis, *kinds: type[d.Diagnostic]) -> list[tuple[type, int | None, int | None]]:  # type: ignore[no-untyped-def]
    return [(type(x), x.cell, x.line) for x in analysis.diagnostics if isinstance(x, kinds)]


CHECKS = (
    d.HardcodedPath,
    d.HardcodedSecret,
    d.SecretSetting,
    d.ConnectionStringWithCredentials,
    d.SecretInOutput,
    d.MissingSeed,
    d.Redefinition,
    d.WritesFileAtRunTime,
    d.NeverExecuted,
    d.NetworkAccess,
)

CHECK_CASES = {
    # hard-coded paths
    "mac-home-path": (("df = pd.read_csv('/Users/ann/data.csv')",), [(d.HardcodedPath, 1, 1)]),
    "windows-path": (
        ("import pandas as pd\nraw = pd.read_csv('C:\\\\data\\\\x.csv')",),
        [(d.HardcodedPath, 1, 2)],
    ),
    "tilde-path": (("p = '~/x'",), [(d.HardcodedPath, 1, 1)]),
    "path-line-after-magic": (
        ("%matplotlib inline\nimport os\np = '/home/ann/d.csv'",),
        [(d.HardcodedPath, 1, 3)],
    ),
    "relative-path-is-fine": (("df = pd.read_csv('data/x.csv')\nq = '../input/a.csv'",), []),
    "route-is-not-a-path": (("r = '/predict/'\nu = 'https://example.com/a/b'",), []),
    "dev-null-is-fine": (("f = open('/dev/null')",), []),
    "display-path-ignored": (("print('/Users/ann/data.csv')",), []),
    # secrets in code
    "secret-name": (
        ("api_key = 'sk-1234567890abcdef'\napi_key += ''",),
        [(d.SecretSetting, 1, 1)],
    ),
    "secret-keyword": (
        ("client = Client(api_key='a8f9e7d6c5b4a3f2')",),
        [(d.SecretSetting, 1, 1)],
    ),
    "secret-dict": (("cfg = {'password': 'hunter2hunter2'}",), [(d.SecretSetting, 1, 1)]),
    "secret-shape": (("k = 'AKIAABCDEFGHIJKLMNOP'",), [(d.SecretSetting, 1, 1)]),
    "secret-in-definition": (
        ("def connect():\n    return Client(token='ghp_" + "a" * 36 + "')",),
        [(d.HardcodedSecret, 1, 2)],
    ),
    "secret-placeholder": (("API_KEY = 'YOUR_API_KEY_HERE'\nTOKEN = '<your token>'",), []),
    "secret-env-name": (("token = os.environ['HF_TOKEN']\nPASSWORD_VAR = 'DB_PASSWORD'",), []),
    "connection-string": (
        ("engine = create_engine('postgresql://user:pass@host/db')",),
        [(d.SecretSetting, 1, 1)],
    ),
    "connection-string-in-definition": (
        ("def engine():\n    return create_engine('postgresql://user:pass@host/db')",),
        [(d.ConnectionStringWithCredentials, 1, 2)],
    ),
    "connection-no-password": (("engine = create_engine('postgresql://host/db')",), []),
    "connection-templated": (("url = 'postgresql://user:${PASSWORD}@host/db'",), []),
    # network in code
    "requests-get": (
        ("import requests\nr = requests.get('https://api.x.io/d')",),
        [(d.NetworkAccess, 1, 2)],
    ),
    "urlopen": (
        ("from urllib.request import urlopen\npage = urlopen(u)",),
        [(d.NetworkAccess, 1, 2)],
    ),
    "urlretrieve": (
        ("import urllib.request\nurllib.request.urlretrieve(u, 'a.tgz')",),
        [(d.NetworkAccess, 1, 2), (d.WritesFileAtRunTime, 1, 2)][:1],
    ),
    "read-csv-url": (
        ("import pandas as pd\ndf = pd.read_csv('https://x.org/d.csv')",),
        [(d.NetworkAccess, 1, 2)],
    ),
    "read-csv-url-constant": (
        ("URL = 'http://x.org/d.csv'", "import pandas as pd\ndf = pd.read_csv(URL)"),
        [(d.NetworkAccess, 2, 2)],
    ),
    "read-csv-local": (("import pandas as pd\ndf = pd.read_csv('d.csv')",), []),
    "requests-exception-is-not-a-call": (
        ("import requests\ne = requests.exceptions.HTTPError('x')",),
        [],
    ),
    # file writes
    "to-csv": (("df.to_csv('out.csv')",), [(d.WritesFileAtRunTime, 1, 1)]),
    "to-csv-no-path": (("text = df.to_csv()",), []),
    "open-write": (
        ("with open('o.txt', 'w') as f:\n    f.write(s)",),
        [(d.WritesFileAtRunTime, 1, 1)],
    ),
    "open-read": (("with open('o.txt') as f:\n    s = f.read()",), []),
    "joblib-dump": (
        ("import joblib\njoblib.dump(model, 'm.pkl')",),
        [(d.WritesFileAtRunTime, 1, 2)],
    ),
    "pickle-dump-open": (
        ("import pickle\npickle.dump(m, open('m.pkl', 'wb'))",),
        [(d.WritesFileAtRunTime, 1, 2)],
    ),
    "torch-save": (
        ("import torch\ntorch.save(model.state_dict(), 'm.pt')",),
        [(d.WritesFileAtRunTime, 1, 2)],
    ),
    "savefig-in-plot-is-display": (("import matplotlib.pyplot as plt\nplt.savefig('f.png')",), []),
    "savefig-in-code": (
        ("fig = make_figure()\nfig.savefig('f.png')",),
        [(d.WritesFileAtRunTime, 1, 2)],
    ),
    # seeds (only in notebooks that train)
    "split-without-seed": (
        (
            "from sklearn.model_selection import train_test_split\n"
            "X_tr, X_te = train_test_split(X)",
            "m.fit(X_tr)",
        ),
        [(d.MissingSeed, 1, 2)],
    ),
    "split-with-seed": (("Xa, Xb = train_test_split(X, random_state=0)", "m.fit(Xa)"), []),
    "split-without-shuffle": (("Xa, Xb = train_test_split(X, shuffle=False)", "m.fit(Xa)"), []),
    "forest-without-seed": (
        ("m = RandomForestClassifier(n_estimators=10)\nm.fit(X, y)",),
        [(d.MissingSeed, 1, 1)],
    ),
    "forest-with-kwargs": (("m = RandomForestClassifier(**params)\nm.fit(X, y)",), []),
    "linear-needs-no-seed": (("m = LinearRegression()\nm.fit(X, y)",), []),
    "kfold-shuffle": (("cv = KFold(5, shuffle=True)", "m.fit(X, y)"), [(d.MissingSeed, 1, 1)]),
    "kfold-no-shuffle": (("cv = KFold(5)", "m.fit(X, y)"), []),
    "numpy-global-seed-covers-sklearn": (
        ("import numpy as np\nnp.random.seed(0)", "m = RandomForestClassifier()\nm.fit(X, y)"),
        [],
    ),
    "numpy-draws-unseeded": (
        ("import numpy as np\nnoise = np.random.randn(10)", "m.fit(X + noise, y)"),
        [(d.MissingSeed, 1, 2)],
    ),
    "numpy-seeded-rng": (
        (
            "import numpy as np\nrng = np.random.default_rng(42)\nnoise = rng.normal(size=3)",
            "m.fit(X, y)",
        ),
        [],
    ),
    "torch-unseeded": (
        (
            "import torch\nfrom torch import nn\nnet = nn.Linear(2, 1)",
            "loss = crit(net(x), y)\nloss.backward()",
        ),
        [(d.MissingSeed, 1, 3)],
    ),
    "torch-seeded": (
        ("import torch\ntorch.manual_seed(0)\nnet = torch.nn.Linear(2, 1)", "loss.backward()"),
        [],
    ),
    "no-training-no-seed-check": (("import numpy as np\nx = np.random.rand(3)",), []),
    # redefinitions
    "function-redefined": (
        ("def f(x):\n    return x", "y = f(1)", "def f(x):\n    return 2 * x"),
        [(d.Redefinition, 3, 1)],
    ),
    "function-pasted-twice": (("def f(x):\n    return x", "def f(x):\n    return x"), []),
    "dataframe-becomes-number": (
        ("import pandas as pd\ndf = pd.read_csv('a.csv')", "df = 3"),
        [(d.Redefinition, 2, 1)],
    ),
    "import-shadowed": (("import time", "time = 5"), [(d.Redefinition, 2, 1)]),
    "model-swapped-is-fine": (
        ("m = LogisticRegression()", "m = RandomForestClassifier(random_state=0)"),
        [],
    ),
    "same-kind-is-fine": (("n = 1", "n = 2", "df = pd.read_csv('a')", "df = pd.read_csv('b')"), []),
    "same-cell-is-fine": (("x = 'a'\nx = 1",), []),
}


@pytest.mark.parametrize(("cells", "expected"), CHECK_CASES.values(), ids=CHECK_CASES.keys())
def test_whole_notebook_checks(
    cells: tuple[str, ...], expected: list[tuple[type, int, int]]
) -> None:
    assert found(analyse_cells(*cells), *CHECKS) == expected


def test_cells_never_executed_while_others_were() -> None:
    analysis = analyse_cells(
        code("a = 1", count=1), code("b = a"), code("", count=None), code("c = b", count=2)
    )
    assert found(analysis, d.NeverExecuted) == [(d.NeverExecuted, 2, None)]


def test_a_notebook_saved_without_running_is_not_reported() -> None:
    assert found(analyse_cells("a = 1", "b = a"), d.NeverExecuted) == []


def output_cell(source: str, text: str) -> dict[str, object]:
    cell = code(source, count=1)
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": text}]
    return cell


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("key: sk-abcdefghijklmnopqrstuvwxyz123456\n", "an OpenAI-style API key"),
        (
            "connecting to postgresql://ann:s3cret@db.internal/prod\n",
            "a connection string with a password",
        ),
        ("{'api_key': 'a8f9e7d6c5b4a3f2e1'}\n", "a api_key"),
        ("ghp_" + "a" * 36, "a GitHub token"),
    ],
)
def test_secrets_in_saved_outputs(text: str, kind: str) -> None:
    analysis = analyse_cells(output_cell("print(cfg)", text))
    (secret,) = [x for x in analysis.diagnostics if isinstance(x, d.SecretInOutput)]
    assert (secret.cell, secret.kind) == (1, kind)


def test_harmless_outputs_are_not_secrets() -> None:
    analysis = analyse_cells(output_cell("print(df.shape)", "(100, 4)\npassword column dropped\n"))
    assert found(analysis, d.SecretInOutput) == []


def test_shell_diagnostics_carry_their_line() -> None:
    analysis = analyse_cells("import os\n!wget https://x.org/d.csv")
    assert found(analysis, d.NetworkAccess) == [(d.NetworkAccess, 1, 2)]


# -- bindings: (source, reads, binds) of the cell's first statement ----------------------------
BINDING_CASES = {
    "tuple-unpacking": ("(a, b), c = x", ["x"], ["a", "b", "c"]),
    "starred": ("a, *rest = f()", ["f"], ["a", "rest"]),
    "chained": ("x = y = z", ["z"], ["x", "y"]),
    "walrus": ("if (n := len(xs)) > 3:\n    big = n", ["xs"], ["n", "big"]),
    "walrus-escapes-comprehension": (
        "ys = [last := f(v) for v in vs]",
        ["vs", "f"],
        ["last", "ys"],
    ),
    "comprehension-variable-stays-inside": ("ys = [v * k for v in vs]", ["vs", "k"], ["ys"]),
    "nested-comprehension": ("m = [[i * j for j in js] for i in iss]", ["iss", "js"], ["m"]),
    "dict-comprehension": ("s = {k: v for k, v in pairs}", ["pairs"], ["s"]),
    "generator": ("g = sum(i for i in it)", ["it"], ["g"]),
    "del-name": ("del tmp", ["tmp"], []),
    "del-item-mutates": ("del df['c']", ["df"], ["df"]),
    "global-in-function": ("def g():\n    global counter\n    counter += 1", [], ["g"]),
    "decorator-and-default": (
        "@deco(opt)\ndef f(a=dflt):\n    return a",
        ["deco", "opt", "dflt"],
        ["f"],
    ),
    "annotations-at-definition": ("def f(a: Ann) -> Ret:\n    return a", ["Ann", "Ret"], ["f"]),
    "annotated-assignment": ("x: Kind = make()", ["make", "Kind"], ["x"]),
    "bare-annotation-binds-nothing": ("x: Kind", ["Kind"], []),
    "class-body-runs-at-definition": (
        "class C(Base):\n    size = n\n    def m(self):\n        return later",
        ["Base", "n"],
        ["C"],
    ),
    "class-scope-invisible-to-comprehension": (
        "class C:\n    k = 1\n    v = [k for _ in r]",
        ["r", "k"],
        ["C"],
    ),
    "match-captures": (
        "match cmd:\n    case [a, *others]:\n        out = a\n    case Point(x=px):\n"
        "        out = px\n    case {'k': kv, **more}:\n        out = kv\n    case _:\n"
        "        out = fallback",
        ["cmd", "Point", "fallback"],
        ["a", "others", "out", "px", "kv", "more"],
    ),
    "match-value-reads": ("match c:\n    case Color.RED:\n        r = 1", ["c", "Color"], ["r"]),
    "relative-import": ("from .pkg.mod import thing as t", [], ["t"]),
    "relative-import-bare": ("from . import sibling", [], ["sibling"]),
    "future-import-binds-nothing": ("from __future__ import annotations", [], []),
    "dotted-import": ("import a.b.c", [], ["a"]),
    "loc-assignment": ("df.loc[df.a > 0, 'b'] = val", ["val", "df"], ["df"]),
    "iloc-assignment": ("df.iloc[0] = row", ["row", "df"], ["df"]),
    "nested-attribute": ("obj.a.b = c", ["c", "obj"], ["obj"]),
    "augmented-subscript": ("d[k] += 1", ["d", "k"], ["d"]),
    "append-mutates": ("lst.append(item)", ["lst", "item"], ["lst"]),
    "self-reference": ("x = x + 1", ["x"], ["x"]),
    "for-tuple-target": (
        "for i, (a, b) in enumerate(ps):\n    t = a",
        ["ps"],
        ["i", "a", "b", "t"],
    ),
    "except-as": (
        "try:\n    r = f()\nexcept ValueError as err:\n    m = err",
        ["f"],
        ["r", "err", "m"],
    ),
    "with-tuple-target": ("with ctx() as (a, b):\n    pass", ["ctx"], ["a", "b"]),
    "lambda-scope": ("h = lambda x, *a, k=dk, **kw: x + free", ["dk", "free"], ["h"]),
    "fstring": ("s = f'{name!r:>{width}}'", ["name", "width"], ["s"]),
    "nonlocal-stays-inside": (
        "def outer():\n    v = 1\n    def inner():\n        nonlocal v\n        v += 1\n"
        "    return inner",
        [],
        ["outer"],
    ),
}


@pytest.mark.parametrize(
    ("source", "reads", "binds"), BINDING_CASES.values(), ids=BINDING_CASES.keys()
)
def test_bindings(source: str, reads: list[str], binds: list[str]) -> None:
    statement = analyse_cells(source).cells[0].statements[0]
    assert [n for n in statement.reads if n not in BUILTINS] == reads
    assert list(statement.binds) == binds


FREE_CASES = {
    "function-reads-global-when-called": ("def f():\n    return g_var", {"g_var"}),
    "global-declared-is-module-name": (
        "def f():\n    global counter\n    counter += 1",
        {"counter"},
    ),
    "parameters-are-local": ("def f(a, *b, c=1, **d):\n    return a, b, c, d", set()),
    "locals-assigned-later-in-body": ("def f():\n    y = 1\n    return y", set()),
    "method-reads": ("class C:\n    def m(self):\n        return later", {"later"}),
    "closure-sees-enclosing": (
        "def f():\n    v = 1\n    def g():\n        return v + w\n    return g",
        {"w"},
    ),
    "defaults-not-free": ("def f(a=dflt):\n    return a", set()),
    "import-inside-function": ("def f():\n    import os\n    return os.sep", set()),
}


@pytest.mark.parametrize(("source", "free"), FREE_CASES.values(), ids=FREE_CASES.keys())
def test_function_free_names(source: str, free: set[str]) -> None:
    (definition,) = analyse_cells(source).definitions.values()
    assert definition.free == free


def test_default_read_at_definition_makes_a_function_impure() -> None:
    """A default read from a notebook variable ties the function to its stage."""
    analysis = analyse_cells("threshold = pick()", "def f(x, t=threshold):\n    return x > t")
    assert not analysis.definitions["f"].pure


def test_del_then_use_is_undefined_downstream_of_the_deleting_cell() -> None:
    analysis = analyse_cells("tmp = 1", "del tmp", "z = 2")
    assert [x for x in analysis.diagnostics if isinstance(x, d.UndefinedName)] == []


def test_mutation_makes_the_later_reader_depend_on_the_mutating_cell() -> None:
    analysis = analyse_cells("df = load()", "df.loc[df.a > 0, 'b'] = 1", "y = df.b")
    assert "df" in defined(analysis, 2)


# -- imports → distributions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "packages", "expected"),
    [
        ("sklearn", None, ("scikit-learn", "table")),
        ("cv2", None, ("opencv-python", "table")),
        ("yaml", None, ("pyyaml", "table")),
        ("PIL", None, ("pillow", "table")),
        ("xgboost", None, ("xgboost", "name")),
        ("cv2", {"cv2": ["opencv-python-headless"]}, ("opencv-python-headless", "environment")),
        ("os", None, None),
        ("collections", {"collections": ["something"]}, None),
        ("__future__", None, None),
        ("", None, None),
    ],
    ids=lambda v: str(v),
)
def test_import_to_distribution(
    module: str, packages: dict[str, list[str]] | None, expected: tuple[str, str] | None
) -> None:
    assert resolve_distribution(module, packages) == expected


def deps(analysis):  # type: ignore[no-untyped-def]
    return {x.distribution: (x.version, x.source) for x in analysis.dependencies}


def test_dependencies_from_imports_skip_the_standard_library_and_relative_imports() -> None:
    analysis = analyse_cells(
        "import os, json\nimport numpy as np\nfrom sklearn.svm import SVC", "from . import sib"
    )
    assert deps(analysis) == {"numpy": (None, ""), "scikit-learn": (None, "")}


def test_pip_pins_give_the_version_and_constraints_are_kept() -> None:
    analysis = analyse_cells(
        "!pip install xgboost==2.0.3 'lightgbm>=4'", "import xgboost\nimport lightgbm"
    )
    found = {x.distribution: x for x in analysis.dependencies}
    assert found["xgboost"].requirement == "xgboost==2.0.3"
    assert (found["xgboost"].source, found["xgboost"].cell) == ("pip", 1)
    assert found["lightgbm"].requirement == "lightgbm>=4"


def test_a_pip_line_with_no_import_is_still_a_dependency() -> None:
    analysis = analyse_cells("%pip install openpyxl==3.1.2")
    assert deps(analysis) == {"openpyxl": ("3.1.2", "pip")}


def test_the_environment_names_the_distribution_and_its_version() -> None:
    notebook = reads(notebook_json("import cv2\nimport sklearn"), "nb.ipynb")
    analysis = analyse(
        notebook,
        packages={"cv2": ["opencv-python-headless"], "sklearn": ["scikit-learn"]},
        installed={"opencv-python-headless": "4.9.0.80", "scikit-learn": "1.5.2"},
    )
    assert deps(analysis) == {
        "opencv-python-headless": ("4.9.0.80", "environment"),
        "scikit-learn": ("1.5.2", "environment"),
    }


def test_a_version_the_notebook_printed_wins_over_the_environment() -> None:
    cell = code("import pandas as pd\nprint(pd.__version__)", count=1)
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1.5.3\n"}]
    analysis = analyse(reads(notebook_json(cell), "nb.ipynb"), installed={"pandas": "2.2.3"})
    assert deps(analysis) == {"pandas": ("1.5.3", "output")}


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("xgboost==2.0.3", ("xgboost", "2.0.3", "")),
        ("lightgbm>=4", ("lightgbm", None, ">=4")),
        ("scikit-learn[alldeps]==1.4.0", ("scikit-learn", "1.4.0", "")),
        ("shap", ("shap", None, "")),
        ("numpy<2,>=1.24", ("numpy", None, "<2,>=1.24")),
    ],
)
def test_pinned(requirement: str, expected: tuple[str, str | None, str]) -> None:
    assert pinned(requirement) == expected


def test_names_bound_in_a_cell_that_does_not_parse_are_not_hidden_state() -> None:
    """Python 2 cells still bind their assignments; a later reader is not 'undefined'."""
    analysis = analyse_cells("classes = sorted(xs)\nprint classes", "for c in classes:\n    f(c)")
    assert {type(x) for x in analysis.diagnostics} == {d.SyntaxErrorInCell, d.UndefinedName}
    assert [x.name for x in analysis.diagnostics if isinstance(x, d.UndefinedName)] == ["f"]


# -- PyTorch modules trained by a hand-written loop -----------------------------------------------
TORCH_IMPORTS = "import torch\nfrom torch import nn"
TORCH_CLASS = (
    "class Net(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.layer = nn.Linear(1, 1)\n\n"
    "    def forward(self, x):\n"
    "        return self.layer(x)"
)
TORCH_DATA = (
    "X = torch.arange(0, 1, 0.02).unsqueeze(dim=1)\ny = 0.7 * X + 0.3\n"
    "X_train, y_train = X[:40], y[:40]"
)


def torch_loop(model: str, data: str = "X_train", target: str = "y_train") -> str:
    return (
        f"loss_fn = nn.L1Loss()\n"
        f"optimizer = torch.optim.SGD(params={model}.parameters(), lr=0.01)\n"
        f"for epoch in range(100):\n"
        f"    {model}.train()\n"
        f"    y_pred = {model}({data})\n"
        f"    loss = loss_fn(y_pred, {target})\n"
        f"    optimizer.zero_grad()\n"
        f"    loss.backward()\n"
        f"    optimizer.step()\n"
        f"    {model}.eval()\n"
        f"    with torch.inference_mode():\n"
        f"        test_pred = {model}(X_test)"
    )


@pytest.mark.parametrize(
    ("cells", "model", "fit_input"),
    [
        (
            (TORCH_IMPORTS, TORCH_CLASS, TORCH_DATA, "model = Net()", torch_loop("model")),
            "model",
            "X_train",
        ),
        (
            (
                TORCH_IMPORTS,
                TORCH_DATA,
                "net = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1))",
                torch_loop("net"),
            ),
            "net",
            "X_train",
        ),
        (  # two models trained in turn, the data made again: the last one is served
            (
                TORCH_IMPORTS,
                TORCH_CLASS,
                TORCH_DATA,
                "model_0 = Net()",
                torch_loop("model_0"),
                TORCH_DATA,
                "model_1 = Net()",
                torch_loop("model_1"),
            ),
            "model_1",
            "X_train",
        ),
    ],
    ids=["module-subclass", "sequential-inline", "last-of-two"],
)
def test_a_module_trained_by_a_loop_is_the_model(
    cells: tuple[str, ...], model: str, fit_input: str
) -> None:
    found = analyse_cells(*cells).model
    assert found is not None
    assert (found.name, found.fit_input, found.framework) == (model, fit_input, "torch")
    assert not found.unsupported


def test_the_module_is_the_one_whose_parameters_the_optimizer_steps() -> None:
    """A loop that also calls a helper on a name (``clip(X_train)``) trains the optimizer's
    module, not the helper."""
    loop = torch_loop("model").replace(
        "    y_pred = model(X_train)", "    batch = clip(X_train)\n    y_pred = model(batch)"
    )
    found = analyse_cells(TORCH_IMPORTS, TORCH_DATA, "model = nn.Linear(1, 1)", loop).model
    assert found is not None and found.name == "model"
    assert found.unsupported  # its input is made inside the loop


def test_a_loop_over_a_data_loader_is_found_but_unsupported() -> None:
    loop = (
        "optimizer = torch.optim.Adam(model.parameters())\n"
        "for images, labels in train_loader:\n"
        "    loss = loss_fn(model(images), labels)\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()"
    )
    found = analyse_cells(TORCH_IMPORTS, "model = nn.Linear(1, 1)", loop).model
    assert found is not None and found.framework == "torch"
    assert "batches that the loop takes from `train_loader`" in found.unsupported


def test_a_loop_without_backward_and_step_trains_nothing() -> None:
    cells = (
        TORCH_IMPORTS,
        TORCH_DATA,
        "model = nn.Linear(1, 1)",
        "for i in range(3):\n    y = model(X_train)",
    )
    assert analyse_cells(*cells).model is None
