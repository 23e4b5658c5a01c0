"""Planning on inline cells: stages, honest signatures, settings, dead code, refusals."""

from __future__ import annotations

import pytest
from helpers import code, plan_cells

from promote.codegen import model_card
from promote.errors import RefusedNotebookError
from promote.planning import Plan
from promote.planning.model import Function

PIPELINE = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score",
    "SEED = 7",
    "df = pd.read_csv('data.csv')",
    "df['ratio'] = df.a / df.b\nX = df[['a', 'ratio']]\ny = df.label",
    "model = LogisticRegression(random_state=SEED)\nmodel.fit(X, y)",
    "accuracy = accuracy_score(y, model.predict(X))",
)


IMPORTS = "import pandas as pd\nfrom sklearn.linear_model import LinearRegression as Est"


def functions(plan: Plan) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {c.function.name: (c.function.params, c.function.returns) for c in plan.calls}


def test_signatures_take_what_they_read_and_return_what_later_stages_read() -> None:
    plan = plan_cells(*PIPELINE)
    assert functions(plan) == {
        "load_data": ((), ("df",)),
        "build_features": (("df",), ("X", "y")),
        "train_model": (("X", "y", "settings"), ("model",)),
        "evaluate_model": (("y", "model", "X"), ("accuracy",)),
    }
    assert [m.name for m in plan.modules] == ["data", "features", "train", "evaluate"]
    assert (plan.model, plan.fit_input, plan.metrics) == ("model", "X", ("accuracy",))
    assert plan.setting_names == {"SEED"}


def test_tags_override_headings_and_headings_override_roles() -> None:
    plan = plan_cells(
        IMPORTS,
        "# md: ## Load the data",
        "df = pd.read_csv('d.csv')\ndf['r'] = df.a * 2",
        code("X = df[['a', 'r']]\ny = df.y", tags=("promote: stage=train",)),
        "# md: ## Model",
        "model = Est()\nmodel.fit(X, y)",
    )
    assert [(c.function.name, c.function.stage) for c in plan.calls] == [
        ("load_data", "load"),
        ("train_model", "train"),
    ]
    assert plan.calls[1].function.cells == (4, 6)


def test_display_and_dead_assignments_do_not_reach_the_package() -> None:
    plan = plan_cells(
        IMPORTS,
        "df = pd.read_csv('d.csv')\ndf.head()",
        "summary = df.describe()\ncounts = summary.T",
        "X = df[['a']]\ny = df.y\nmodel = Est()\nmodel.fit(X, y)",
    )
    body = "\n".join(c.function.body for c in plan.calls)
    assert "describe" not in body and "head" not in body and "counts" not in body


def test_prediction_stage_returns_what_the_notebook_showed() -> None:
    plan = plan_cells(
        IMPORTS,
        "X_train = pd.read_csv('x.csv')\ny_train = X_train.pop('y')",
        "model = Est()\nmodel.fit(X_train, y_train)",
        "# md: ## Predict on new data",
        "new_rows = X_train[:3]\nmodel.predict(new_rows)",
    )
    predict = plan.calls[-1].function
    assert predict.returns_result
    assert predict.body.endswith("return model.predict(new_rows)")
    assert predict.params == ("X_train", "model")


def test_pure_functions_move_to_module_level_and_shared_ones_to_helpers() -> None:
    plan = plan_cells(
        "import numpy as np\n" + IMPORTS,
        "raw = pd.read_csv('r.csv')\ny = raw.pop('y')",
        "def clean(v):\n    # keep positives\n    return np.abs(v)",
        "# md: ## Features",
        "X = clean(raw)",
        "# md: ## Train",
        "Xc = clean(X)\nmodel = Est()\nmodel.fit(Xc, y)",
    )
    modules = {m.name: m for m in plan.modules}
    assert "helpers" in modules
    assert "# keep positives" in modules["helpers"].definitions[0]
    assert plan.helpers == {"clean": "helpers"}


def test_functions_reading_notebook_variables_stay_in_their_stage() -> None:
    plan = plan_cells(
        IMPORTS,
        "raw = pd.read_csv('r.csv')\ny = raw.pop('y')\nfactor = raw.a.max()",
        "def scale(v):\n    return v * factor",
        "X = scale(raw)\nmodel = Est()\nmodel.fit(X, y)",
    )
    (stage,) = [c.function for c in plan.calls if "def scale(v):" in c.function.body]
    assert stage.params == ("factor",)
    assert stage.returns == ("scale",)


def test_function_names_never_shadow_notebook_variables() -> None:
    plan = plan_cells(
        IMPORTS,
        "# md: ## Train",
        "train = pd.read_csv('t.csv')\ny = train.pop('y')\nmodel = Est()\nmodel.fit(train, y)",
    )
    assert plan.calls[0].function.name == "train_model"


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (("import pandas as pd", "df = pd.read_csv('a')"), "no cell fits a model"),
        (
            (IMPORTS, "df = pd.read_csv('a')", "model = Est()\nmodel.fit(df[['a']], df.y)"),
            "not on a named variable",
        ),
        (
            ("from ray.train import Trainer", "res = Trainer().fit()"),
            "given no input data",
        ),
        (("print 'hello'",), "not valid Python 3"),
        (
            (IMPORTS, "model = Est()\nmodel.fit(ghost, [1])"),
            "`ghost` is used but no cell defines it",
        ),
        (
            (
                "import pandas as pd\nfrom sklearn.cluster import AgglomerativeClustering",
                "df = pd.read_csv('a')",
                "labels = AgglomerativeClustering(n_clusters=4).fit_predict(df)",
            ),
            "used only through `fit_predict` (`AgglomerativeClustering(n_clusters=4)"
            ".fit_predict(df)`), which labels the rows it is fitted on",
        ),
    ],
    ids=[
        "no-model",
        "expression-input",
        "fit-without-data",
        "python2",
        "hidden-state",
        "fit-predict",
    ],
)
def test_refusals_say_why(cells: tuple[str, ...], reason: str) -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*cells)
    assert reason in caught.value.message
    assert "nb.ipynb" in caught.value.message


def test_non_python_kernel_is_refused() -> None:
    from helpers import analyse_cells

    from promote.planning import plan

    with pytest.raises(RefusedNotebookError, match="kernel language is 'r'"):
        plan(analyse_cells("x <- 1", language="R"), "demo")


def test_models_fitted_only_in_a_loop_are_refused_with_that_reason() -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(
            IMPORTS,
            "X = pd.read_csv('x.csv')\ny = X.pop('y')",
            "for alpha in (0.1, 1.0):\n    candidate = Est()\n    candidate.fit(X, y)",
        )
    assert "fitted only inside a loop" in caught.value.message
    assert "candidate.fit(X, y)" in caught.value.message


CANDIDATES = (
    "import numpy as np\nimport pandas as pd\nfrom sklearn.svm import SVC\n"
    "from sklearn.neighbors import KNeighborsClassifier",
    "df = pd.read_csv('d.csv')\nX = df[['a', 'b']]\ny = df.y",
    "C = 10\nclassifiers = {\n    'Linear SVC': SVC(kernel='linear', C=C, random_state=0),\n"
    "    'KNN classifier': KNeighborsClassifier(C),\n}",
)
LOOP = (
    "for index, (name, classifier) in enumerate(classifiers.items()):\n"
    "    classifier.fit(X, np.ravel(y))\n"
    "    print(name, classifier.score(X, y))"
)


def test_a_loop_over_candidates_is_refused_with_them_and_the_tag_to_add() -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*CANDIDATES, LOOP)
    message = caught.value.message
    assert message.startswith("Cannot promote nb.ipynb, cell 4: models are fitted only inside a")
    assert 'one per candidate ("Linear SVC", "KNN classifier")' in message
    assert 'Tag the cell `promote: model=classifiers["Linear SVC"]`' in message
    assert "`model = SVC(kernel='linear', C=C, random_state=0)` then " in message
    assert "`model.fit(X, np.ravel(y))`" in message


def test_a_model_tag_serves_a_dict_entry_after_the_loop_as_written() -> None:
    """The training stage keeps the loop (every candidate fitted, as the notebook did), then
    binds the chosen one; the plan says which expression of the notebook's names holds it."""
    plan = plan_cells(
        *CANDIDATES, code(LOOP, tags=('promote: model=classifiers["KNN classifier"]',))
    )
    assert (plan.model, plan.fit_input) == ("model", "X")
    assert plan.model_expression == 'classifiers["KNN classifier"]'
    assert plan.model_source == "model = KNeighborsClassifier(C)"
    assert (
        "- Chosen among the candidates the notebook's loop fits by a cell tag: `classifiers[\"KNN"
        in (model_card(plan))
    )
    train = plan.calls[-1].function
    assert train.returns == ("model",)
    assert train.body.startswith(LOOP)
    assert train.body.rstrip().endswith('model = classifiers["KNN classifier"]')


def test_a_model_tag_serves_a_list_entry() -> None:
    plan = plan_cells(
        *CANDIDATES[:2],
        "models = [('svc', SVC(random_state=0)), ('knn', KNeighborsClassifier())]",
        code(
            "for name, model in models:\n    model.fit(X, y)", tags=("promote:model=models[1][1]",)
        ),
    )
    assert (plan.model, plan.model_expression) == ("chosen_model", "models[1][1]")
    assert "chosen_model = models[1][1]" in plan.calls[-1].function.body
    assert plan.calls[-1].function.returns == ("chosen_model",)
    assert plan.model_source == "chosen_model = KNeighborsClassifier()"


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ('promote: model=classifiers["RBF SVC"]', '"RBF SVC" is not a key of `classifiers`'),
        ("promote: model=classifier", "`classifier` is not one of the models the loop fits"),
    ],
    ids=["unknown-key", "loop-variable"],
)
def test_a_model_tag_that_names_no_candidate_is_refused_with_what_to_write(
    tag: str, problem: str
) -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*CANDIDATES, code(LOOP, tags=(tag,)))
    message = caught.value.message
    assert message.startswith(
        f"Cannot promote nb.ipynb, cell 4: its tag `{tag}` chooses no model: {problem}."
    )
    assert (
        'one of the models its loop fits: `promote: model=classifiers["Linear SVC"]`, '
        '`promote: model=classifiers["KNN classifier"]`.'
    ) in message


def test_a_model_tag_on_a_cell_without_such_a_loop_is_refused() -> None:
    with pytest.raises(RefusedNotebookError, match="has no loop that fits each model"):
        plan_cells(*CANDIDATES, code("x = 1", tags=("promote: model=classifiers['SVC']",)), LOOP)


def test_a_second_model_tag_is_refused() -> None:
    tagged = code(LOOP, tags=('promote: model=classifiers["Linear SVC"]',))
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*CANDIDATES, tagged, tagged)
    assert "cell 5: its tag" in caught.value.message
    assert "the tag of cell 4 chose one already. Keep one `promote: model=` tag" in (
        caught.value.message
    )


# -- settings ------------------------------------------------------------------------------------
SETTINGS_PIPELINE = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
    "# data\nDATA_PATH = 'data.csv'\n# model\nC = 0.5  # regularisation\n"
    "COLUMNS = ['a', 'b']\nSEED = 7\nAPI_KEY = 'sk-1234567890abcdef'",
    "df = pd.read_csv(DATA_PATH, storage_options={'key': API_KEY})",
    "X = df[COLUMNS]\ny = df.label",
    "model = LogisticRegression(C=C, random_state=SEED)\nmodel.fit(X, y)",
)


def generated(*cells: str) -> dict[str, str]:
    from promote.codegen import generate

    return {path.rsplit("/", 1)[-1]: text for path, text in generate(plan_cells(*cells)).items()}


def test_constants_become_typed_settings_fields_with_their_comments() -> None:
    settings = {x.name: x for x in plan_cells(*SETTINGS_PIPELINE).settings}
    assert {n: (x.field, x.annotation, x.default) for n, x in settings.items()} == {
        "DATA_PATH": ("data_path", "str", "'data.csv'"),
        "C": ("c", "float", "0.5"),
        "COLUMNS": ("columns", "list[str]", "['a', 'b']"),
        "SEED": ("seed", "int", "7"),
        "API_KEY": ("api_key", "SecretStr", ""),
    }
    assert settings["C"].comments == ("# model",)
    assert settings["C"].trailing == "# regularisation"
    assert settings["API_KEY"].secret


def test_stages_read_settings_from_a_parameter_not_a_global() -> None:
    files = generated(*SETTINGS_PIPELINE)
    assert "def load_data(settings: Settings) -> pd.DataFrame:" in files["data.py"]
    assert (
        "pd.read_csv(settings.data_path, storage_options={'key': "
        "settings.api_key.get_secret_value()})" in files["data.py"]
    )
    assert "LogisticRegression(C=settings.c, random_state=settings.seed)" in files["train.py"]
    assert (
        "if settings is None:\n        settings = Settings()  # type: ignore[call-arg]"
        in files["pipeline.py"]
    )
    assert "def run(settings: Settings | None = None) -> TrainingResult:" in files["pipeline.py"]
    for name, text in files.items():
        assert "DATA_PATH" not in text.replace("DEMO_DATA_PATH", ""), name
        assert "SEED" not in text.replace("DEMO_SEED", ""), name


def test_a_secret_never_reaches_the_generated_files() -> None:
    files = generated(*SETTINGS_PIPELINE)
    assert "api_key: SecretStr  # required: set DEMO_API_KEY" in files["settings.py"]
    assert not [name for name, text in files.items() if "sk-1234567890abcdef" in text]


def test_settings_field_names_are_valid_pydantic_fields() -> None:
    plan = plan_cells(
        "from sklearn.linear_model import LinearRegression as Est",
        "JSON = 1\nCLASS = 2\nMODEL_DIR = 'm'\nSeed = 3",
        "X = [[JSON, CLASS, Seed]]\nmodel = Est()\nmodel.fit(X, [len(MODEL_DIR)])",
    )
    assert [x.field for x in plan.settings] == ["json_", "class_", "model_dir_", "Seed"]


def test_a_notebook_function_reading_a_constant_keeps_it_module_level() -> None:
    files = generated(
        "from sklearn.linear_model import LinearRegression as Est",
        "SCALE = 2.0\nSEED = 1",
        "def scaled(v):\n    return v * SCALE",
        "X = [[scaled(1.0)], [SEED]]\nmodel = Est()\nmodel.fit(X, [1, 2])",
    )
    assert "SCALE = 2.0" in files["settings.py"].split("class Settings")[1]
    assert "seed: int = 1" in files["settings.py"]
    assert "scale:" not in files["settings.py"]


def test_a_constant_the_stage_rebinds_is_read_once_into_a_local() -> None:
    files = generated(
        "from sklearn.linear_model import LinearRegression as Est",
        "SEED = 1",
        "model = Est()\nrows = [[i] for SEED in range(3) for i in [SEED]]\n"
        "model.fit(rows, [1, 2, 3])",
    )
    assert "SEED = settings.seed\n" in files["train.py"]


def test_notebook_variable_named_settings_moves_the_parameter_aside() -> None:
    plan = plan_cells(
        "from sklearn.linear_model import LinearRegression as Est",
        "SEED = 1",
        "settings = {'fit_intercept': True}",
        "X = [[SEED]]\nmodel = Est(**settings)\nmodel.fit(X, [1])",
    )
    assert plan.settings_parameter == "settings_2"
    assert "settings_2" in plan.calls[-1].function.params


def test_literal_hyper_parameters_in_calls_become_settings() -> None:
    plan = plan_cells(
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split",
        "df = pd.read_csv('d.csv')\nX = df[['a']]\ny = df.b",
        "X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=1)\n"
        "model = LogisticRegression(C=0.5, max_iter=500, random_state=1, n_jobs=-1)\n"
        "model.fit(X_tr, y_tr)",
    )
    fields = {x.field: (x.annotation, x.default) for x in plan.settings}
    assert fields == {
        "test_size": ("float", "0.25"),
        "random_state": ("int", "1"),
        "logistic_regression_c": ("float", "0.5"),
        "max_iter": ("int", "500"),
    }
    (train,) = [c.function for c in plan.calls if c.function.stage == "train"]
    assert "test_size=settings.test_size, random_state=settings.random_state" in train.body
    assert (
        "LogisticRegression(C=settings.logistic_regression_c, max_iter=settings.max_iter, "
        "random_state=settings.random_state, n_jobs=-1)" in train.body
    )
    assert train.params[-1] == "settings"
    assert "C=0.5" in plan.model_source  # the model card quotes the notebook


def test_a_keyword_s_usual_value_is_one_setting_and_the_others_are_named_after_their_call() -> None:
    plan = plan_cells(
        "from sklearn.ensemble import RandomForestClassifier as RF, ExtraTreesClassifier as ET",
        "import pandas as pd\ndf = pd.read_csv('d.csv')\nX = df[['a']]\ny = df.b",
        "small = RF(max_depth=2, random_state=1)\nsmall.fit(X, y)\n"
        "big = ET(max_depth=8, random_state=1)\nbig.fit(X, y)\n"
        "model = RF(max_depth=2, random_state=2)\nmodel.fit(X, y)",
    )
    assert [(x.field, x.default) for x in plan.settings] == [
        ("max_depth", "2"),
        ("random_state", "1"),
        ("et_max_depth", "8"),
        ("rf_random_state", "2"),
    ]
    (train,) = [c.function for c in plan.calls if c.function.stage == "train"]
    assert "RF(max_depth=settings.max_depth, random_state=settings.rf_random_state)" in train.body


def test_a_constant_keeps_its_name_and_an_inline_value_of_the_same_keyword_is_qualified() -> None:
    plan = plan_cells(
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.tree import DecisionTreeClassifier",
        "RANDOM_STATE = 3",
        "import pandas as pd\ndf = pd.read_csv('d.csv')\nX = df[['a']]\ny = df.b",
        "a, b, c, d = train_test_split(X, y, random_state=RANDOM_STATE)\n"
        "model = DecisionTreeClassifier(random_state=0)\nmodel.fit(a, c)",
    )
    assert [x.field for x in plan.settings] == [
        "random_state",
        "decision_tree_classifier_random_state",
    ]


# -- type hints ----------------------------------------------------------------------------------
def types(plan: Plan) -> dict[str, dict[str, str]]:
    """Stage → {name: annotation} for its parameters and its returns (settings left out)."""
    out = {}
    for call in plan.calls:
        f = call.function
        out[f.name] = dict(zip(f.params, f.param_types, strict=False))
        out[f.name] |= {f"-> {n}": t for n, t in zip(f.returns, f.return_types, strict=True)}
    return out


def test_annotations_follow_what_the_code_makes() -> None:
    plan = plan_cells(
        "import numpy as np\nimport pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
        "TARGET = 'label'\nCOLUMNS = ['a', 'b']",
        "df = pd.read_csv('d.csv')",
        "df['c'] = df.a * 2\ndf = df[df.a > 0].dropna()\nX = df[COLUMNS]\ny = df[TARGET]\n"
        "w = np.ones(len(df))",
        "X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2)\n"
        "model = LogisticRegression()\nmodel.fit(X_tr, y_tr, sample_weight=w[: len(X_tr)])",
        "accuracy = accuracy_score(y_te, model.predict(X_te))",
    )
    assert types(plan) == {
        "load_data": {"-> df": "pd.DataFrame"},
        "build_features": {
            "df": "pd.DataFrame",
            "-> X": "pd.DataFrame",
            "-> y": "pd.Series",
            "-> w": "np.ndarray",
        },
        "train_model": {
            "X": "pd.DataFrame",
            "y": "pd.Series",
            "w": "np.ndarray",
            "-> model": "LogisticRegression",
            "-> X_te": "pd.DataFrame",
            "-> y_te": "pd.Series",
            "-> X_tr": "pd.DataFrame",
        },
        "evaluate_model": {
            "y_te": "pd.Series",
            "model": "LogisticRegression",
            "X_te": "pd.DataFrame",
            "-> accuracy": "float",
        },
    }


def test_unknown_values_stay_any_and_rebinding_forgets_the_type() -> None:
    plan = plan_cells(
        "import pandas as pd\nfrom sklearn.linear_model import LinearRegression as Est",
        "def load(frame):\n    return frame.values",
        "df = pd.read_csv('d.csv')\ndf = df.pivot(index='a', columns='b')\nX = load(df)\ny = df.b",
        "model = Est()\nmodel.fit(X, y)",
    )
    assert types(plan)["train_model"] == {"X": "Any", "y": "Any", "-> model": "Est"}


def test_generated_module_imports_what_its_annotations_name() -> None:
    files = generated(
        "import pandas as pd\nfrom sklearn.tree import DecisionTreeClassifier",
        "df = pd.read_csv('d.csv')\nX = df[['a']]\ny = df['b']",
        "model = DecisionTreeClassifier()\nmodel.fit(X, y)",
        "print(model.predict(X))",
    )
    train = files["train.py"]
    assert "def train_model(X: pd.DataFrame, y: pd.Series) -> DecisionTreeClassifier:" in train
    assert "import pandas as pd" in train and "from typing import" not in train


def test_setting_a_library_option_does_not_make_the_library_a_stage_output() -> None:
    """``pd.options.mode.chained_assignment = None`` changes pandas' options: ``pd`` stays the
    imported module, not a value the load stage hands to the next stages."""
    plan = plan_cells(
        "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
        "pd.options.mode.chained_assignment = None\ndf = pd.read_csv('data.csv')",
        "X = df[['a']]\nmodel = LinearRegression()\nmodel.fit(X, df['y'])",
    )

    load = plan.calls[0].function
    assert load.returns == ("df",)
    assert "pd.options.mode.chained_assignment = None" in load.body
    assert all("pd" not in c.function.params for c in plan.calls)


# -- PyTorch modules trained by a hand-written loop -----------------------------------------------
TORCH_CELLS = (
    "import torch\nfrom torch import nn",
    "class Net(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.layer = nn.Linear(1, 1)\n\n"
    "    def forward(self, x):\n"
    "        return self.layer(x)",
    "X = torch.arange(0, 1, 0.02).unsqueeze(dim=1)\ny = 0.7 * X + 0.3\n"
    "X_train, y_train = X[:40], y[:40]\nX_test = X[40:]",
    "torch.manual_seed(42)\nmodel = Net()",
    "loss_fn = nn.L1Loss()\noptimizer = torch.optim.SGD(params=model.parameters(), lr=0.01)\n"
    "for epoch in range(100):\n"
    "    y_pred = model(X_train)\n"
    "    loss = loss_fn(y_pred, y_train)\n"
    "    optimizer.zero_grad()\n"
    "    loss.backward()\n"
    "    optimizer.step()",
    "with torch.inference_mode():\n    y_preds = model(X_test)",
)


def torch_builder(plan: Plan) -> Function:
    module, _, name = plan.model_builder.partition(":")
    (builder,) = [
        f for m in plan.modules if f"demo.{m.name}" == module for f in m.functions if f.name == name
    ]
    return builder


def test_a_torch_module_is_served_through_a_builder_and_its_training_tensor() -> None:
    """The package gets a function that builds the module untrained (the weights are loaded
    into it), and the pipeline wraps the module and its training tensor for the service."""
    plan = plan_cells(*TORCH_CELLS)
    assert (plan.model, plan.fit_input, plan.framework) == ("model", "X_train", "torch")
    assert torch_builder(plan).body == "return Net()"
    module = plan.model_builder.partition(":")[0]
    # built on the CPU, where the weights load: `.to(device)` is left out
    moved = tuple(c.replace("model = Net()", "model = Net().to(device)") for c in TORCH_CELLS)
    on_device = ("import torch\nfrom torch import nn\ndevice = 'cpu'", *moved[1:])
    assert torch_builder(plan_cells(*on_device)).body == "return Net()"
    assert "PyTorch module" in plan.inference.note
    files = generated(*TORCH_CELLS)
    home = next(name for name, text in files.items() if "class Net(nn.Module):" in text)
    builder_module = files[f"{module.rpartition('.')[2]}.py"]
    assert home == "train.py" or "import Net" in builder_module  # moved verbatim, imported
    assert f"model=TorchModel(model, {plan.model_builder!r})" in files["pipeline.py"]
    assert "features=torch_input_frame(X_train)" in files["pipeline.py"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            (
                "torch.manual_seed(42)\nmodel = Net()",
                "width = X.shape[1]\nmodel = nn.Linear(width, 1)",
            ),
            "`model` is built from the notebook's variables (width)",
        ),
        (
            (
                "    y_pred = model(X_train)",
                "    for xb in X_train.split(8):\n        y_pred = model(xb)",
            ),
            "trained on batches that the loop takes",
        ),
        (
            ("    y_pred = model(X_train)", "    y_pred = model(X_train.float())"),
            "`model` is called on `X_train.float()` in its training loop, not on a named",
        ),
    ],
    ids=["built-from-variables", "batches", "expression"],
)
def test_torch_models_promote_cannot_serve_are_refused_with_the_reason(
    change: tuple[str, str], reason: str
) -> None:
    cells = tuple(c.replace(*change) for c in TORCH_CELLS)
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*cells)
    assert reason in caught.value.message
    assert "nb.ipynb" in caught.value.message
