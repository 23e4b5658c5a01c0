"""The plan: what promote will write, as plain data that tests and ``--pretend`` can read."""

from __future__ import annotations

from dataclasses import dataclass, field

from promote import diagnostics as d
from promote.analysis.forecast import ForecastFit
from promote.analysis.readiness import ReadinessItem
from promote.planning.settings import Setting

__all__ = ["Call", "Function", "Inference", "Learnt", "Module", "Plan"]


@dataclass(frozen=True)
class Function:
    """One stage function made from a run of consecutive cells."""

    name: str
    stage: str
    module: str
    cells: tuple[int, ...]
    params: tuple[str, ...]
    returns: tuple[str, ...]
    body: str  # unindented Python source
    docstring: str
    returns_result: bool = False  # the body ends with `return <the cell's last expression>`
    param_types: tuple[str, ...] = ()  # annotations of the first params (the rest: Any)
    return_types: tuple[str, ...] = ()  # annotations of the returns, when known
    type_names: frozenset[str] = frozenset()  # imported names the annotations use
    settings_default: bool = False  # the settings parameter defaults to ``Settings()``


@dataclass(frozen=True)
class Module:
    """A stage module of the generated package."""

    name: str
    functions: tuple[Function, ...] = ()
    definitions: tuple[str, ...] = ()  # functions and classes moved verbatim from the notebook
    reads: frozenset[str] = frozenset()  # every name its code reads, to derive its imports


@dataclass(frozen=True)
class Call:
    """One line of ``pipeline.run()``: call a stage function and keep what it returns."""

    function: Function
    keep: bool = True


@dataclass(frozen=True)
class Learnt:
    """One entry of what the feature steps learn (``feature_state[key]``) and where the
    notebook holds it after its cell ``cell`` (numbered from 1): the fitted transformer
    ``name``, or with ``columns`` the columns and dtypes of the frame ``name`` that
    ``pd.get_dummies`` bound. ``promote --execute`` takes it there (``capture.py``).

    With ``statement`` (its source, as ``ast.unparse`` writes it), the notebook holds it only
    inside its cell: right after that statement, or with ``before`` right before it. So is a
    statistic of a column (``name`` is then the expression, ``df['age'].median()``), which
    ``fit_features`` records before the statement that uses it."""

    key: str
    name: str
    cell: int
    columns: bool = False
    statement: str = ""
    before: bool = False


@dataclass(frozen=True)
class Inference:
    """How the service turns a request into the model's input (``planning/inference.py``).

    With ``function`` set, requests carry the loaded columns (the target left out) and the
    service applies the notebook's row-wise feature steps, ``<module>.<function>``, before the
    model; without, requests carry the model's input as it was fitted, and ``note`` says why.
    """

    function: str = ""  # the feature steps' function, e.g. "make_features"
    module: str = ""  # the module that holds it
    stage_function: str = ""  # the stage function that calls it in training
    frame: str = ""  # the variable holding the loaded frame the steps start from
    drop: tuple[str, ...] = ()  # the target columns, left out of requests (expressions)
    # the columns the steps drop without reading them, left out of requests too (names)
    unread: tuple[str, ...] = ()
    output: str = ""  # what the steps make: the model's input before the split
    note: str = ""  # why requests carry the model's input as fitted, when they do
    # the name of what the feature steps learnt from the training rows (fitted transformers,
    # dummy columns), which ``function`` takes besides the frame; "" when they learn nothing
    state: str = ""
    learnt: str = ""  # what it is, in words: "`ss`, the columns `pd.get_dummies` made of `X`"
    # the loaded columns the steps read, when the code names them all (requests carry only
    # those); () when it does not (requests carry every loaded column but the target)
    columns: tuple[str, ...] = ()
    # when feature steps follow the split: the name of the training rows' labels, which the
    # stage that splits returns (the pipeline takes what requests carry at those rows); ""
    # when the model's input keeps them (``features.index``)
    rows: str = ""
    # each entry of what they learn, with the cell after which the notebook holds it
    entries: tuple[Learnt, ...] = ()
    # when feature steps follow the split: the training rows it makes (``name``: ``X_train``)
    # right after the split (``statement``, in ``cell``), whose labels ``rows`` records
    trained: Learnt | None = None


@dataclass(frozen=True)
class Plan:
    """Everything the renderer needs, and the diagnostics to show the user."""

    project_name: str
    package_name: str
    notebook_name: str
    modules: tuple[Module, ...]
    settings: tuple[Setting, ...]  # the notebook's constants, as fields of settings.Settings
    setting_names: frozenset[str]  # the constants' names as the notebook wrote them
    imports: dict[str, str]  # bound name → import statement
    helpers: dict[str, str]  # pure definition name → module that holds it
    calls: tuple[Call, ...]
    model: str
    fit_input: str
    metrics: tuple[str, ...]
    dependencies: tuple[str, ...]
    data_files: tuple[tuple[str, str], ...] = ()  # (path relative to the notebook, path in project)
    local_modules: tuple[str, ...] = ()  # modules beside the notebook the package imports (P013)
    diagnostics: tuple[d.Diagnostic, ...] = field(default=())
    exploration: tuple[tuple[str, str], ...] = ()  # (cell type, source) left out of the package
    title: str = ""  # the notebook's title heading
    intro: str = ""  # the notebook's first paragraphs of prose
    model_source: str = ""  # the statement that builds the model, as the notebook wrote it
    readiness: tuple[ReadinessItem, ...] = ()
    settings_parameter: str = "settings"  # the parameter stage functions read settings from
    inference: Inference = field(default=Inference())
    # When a cell's tag chose the model among the candidates its loop fits: the expression of
    # the notebook's names that holds it (``classifiers["SVC"]``), which the training stage
    # binds to ``model`` and ``--execute`` reads in the kernel; "" when ``model`` is the
    # notebook's own name for it.
    model_expression: str = ""
    # a forecast project: the model is a statsmodels forecaster fitted on the series
    # ``fit_input`` names, and the service forecasts steps after it (``analysis/forecast.py``)
    forecast: ForecastFit | None = None
    # "torch" for a ``torch.nn.Module`` trained by a hand-written loop, "" for ``.fit``
    framework: str = ""
    # with "torch": the package's function that builds a fresh, untrained module
    # (``package.train:build_model``), into which the saved weights are loaded
    model_builder: str = ""
