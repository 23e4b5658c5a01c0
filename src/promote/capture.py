"""``promote --execute``: run the notebook once, in a fresh kernel, and keep what it produced.

The only module that runs the user's code, and it does so in a separate kernel process (nbclient)
with the notebook's folder as working directory, a timeout per cell and one for the whole run.
What is kept is small and reviewable (``kernel_capture`` computes it in the kernel): the first
rows the model was fitted on (as JSON records of the model's input, without columns that look
like personal data; the service's requests carry these too unless it applies the notebook's
feature steps itself, see ``planning/inference.py``), the notebook model's predictions for them,
the metrics it computed, the versions of the libraries it imported, the schema of the model input
and the reference statistics of the input and the predictions. The generated project's parity
test replays them. The notebook's fitted model is saved too, with what its feature steps learnt
from the training rows when they learn (copied in the kernel right after their cells:
``snapshot_cells``), so that the service can serve it before any ``make train``.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from promote.analysis.forecast import DEFAULT_HORIZON
from promote.errors import PromoteError
from promote.planning import Plan
from promote.planning.model import Learnt

__all__ = [
    "NOTEBOOK_MODEL_DIR",
    "Capture",
    "ExecutionFailure",
    "capture_json",
    "execute",
    "notebook_model_files",
]

SAMPLE_ROWS = 5
# Where the project keeps the notebook's own fitted model (in git): a complete artifacts
# directory the service serves until a model version is in the registry.
NOTEBOOK_MODEL_DIR = "artifacts/notebook"
NOTEBOOK_VERSION = "notebook"  # the version name the service reports for it
JSON_TYPES = frozenset({"number", "integer", "boolean", "string"})
MARKER = "PROMOTE-CAPTURE:"
REFERENCE_MODULE = Path("project", "src", "{{ package_name }}", "reference.py")
MODEL_MODULE = Path("project", "src", "{{ package_name }}", "modelfile.py")
# The largest model file written into a project (git keeps every version of it): 20 MB, or
# PROMOTE_MAX_MODEL_MB. A bigger model is not captured; `make train` saves it under artifacts/.
MAX_MODEL_MB = 20

# Runs in the notebook's kernel after its last cell: kernel_capture's source, in a namespace of
# its own, then one JSON line.
_CAPTURE_CELL = """\
{prelude}__promote_capture = {{}}
exec(compile({source!r}, "promote_capture.py", "exec"), __promote_capture)
print({marker!r} + __import__("json").dumps(__promote_capture["capture"](
    {model}, {fit_input}, {{{metrics}}}, {rows}, {reference!r},
    {modelfile!r}, {directory!r}, {max_bytes!r},
    globals().get("__promote_loaded"), {drop}, {keep}, {serving},
    {labels}), default=str))
del __promote_capture
"""
# A forecaster's capture (``kernel_capture.capture_forecast``), run instead of the one above.
_FORECAST_CELL = """\
__promote_capture = {{}}
exec(compile({source!r}, "promote_capture.py", "exec"), __promote_capture)
print({marker!r} + __import__("json").dumps(__promote_capture["capture_forecast"](
    {model}, {fit_input}, {{{metrics}}}, {horizon!r}, {max_steps!r},
    {modelfile!r}, {directory!r}, {max_bytes!r}), default=str))
del __promote_capture
"""
# The longest forecast a request may ask for (the template's ``forecast.MAX_STEPS``).
FORECAST_MAX_STEPS = 1000
# For a PyTorch module: the template's modelfile.py, whose ``TorchModel`` gives the module the
# ``predict`` the service calls and ``torch_input_frame`` the rows requests carry.
_TORCH_PRELUDE = """\
__promote_torch = {{"__name__": "promote_modelfile"}}
exec(compile({modelfile!r}, "modelfile.py", "exec"), __promote_torch)
"""
# Runs in the notebook's kernel right after the cell that made the frame the service's feature
# steps start from (``loaded_frame_cell``): a copy of it as loaded, before those steps change it.
_SNAPSHOT_CELL = """\
try:
    __promote_loaded = {frame}.copy()
except Exception:
    __promote_loaded = None
"""
# Runs in the notebook's kernel right after a cell where the feature steps learnt something
# (``Inference.entries``): the entries of ``feature_state`` that cell's steps made, as the
# generated ``fit_features`` records them, taken before later cells rebind or refit them.
_STATE_CELL = """\
__promote_state = globals().get("__promote_state") or {}
"""
_STATE_ENTRY = """\
try:
    __promote_state[{key!r}] = {value}
except Exception:
    pass
"""
# Runs where the notebook holds the training rows the split made (``Inference.trained``):
# their labels, which the model's input may not keep (``X_train = ss.fit_transform(X_train)``).
_ROWS_ENTRY = """\
try:
    __promote_rows = {name}.index.copy()
except Exception:
    pass
"""
# Runs in the notebook's kernel right before a cell where the notebook holds what promote takes
# only inside the cell (``Learnt.statement``): an AST transformer of IPython's shell puts each
# snapshot (``inserts``: statement, before it or not, code) right before or after the first
# top-level statement of the next cell run that reads as that statement (``ast.unparse``).
_INSERT_CELL = """\
def __promote_insert(inserts):
    import ast

    class Insert(ast.NodeTransformer):
        promote_snapshots = True
        done = set()

        def visit_Module(self, module):
            body = []
            for node in module.body:
                try:
                    text = ast.unparse(node)
                except Exception:
                    text = None
                found = [i for i, item in enumerate(inserts) if item[0] == text]
                found = [i for i in found if i not in self.done]
                self.done.update(found)
                for before in (True, False):
                    if not before:
                        body.append(node)
                    for i in found:
                        if inserts[i][1] == before:
                            body += ast.parse(inserts[i][2]).body
            module.body = body
            return ast.fix_missing_locations(module)

    get_ipython().ast_transformers.append(Insert())


__promote_insert({inserts!r})
del __promote_insert
"""
# Runs right after that cell: the transformer is removed.
_INSERT_END = """\
get_ipython().ast_transformers[:] = [
    t for t in get_ipython().ast_transformers if not getattr(t, "promote_snapshots", False)
]
"""


def capture_cell(plan: Plan, model_directory: Path | None = None) -> str:
    """The code run after the notebook's last cell; it saves the model into
    ``model_directory`` (when given) with the template's ``modelfile.py``."""
    from promote import kernel_capture

    if plan.forecast is not None:
        return _FORECAST_CELL.format(
            source=Path(kernel_capture.__file__).read_text(encoding="utf-8"),
            marker=MARKER,
            model=plan.model,
            fit_input=plan.fit_input,
            metrics=", ".join(f'"{m}": {m}' for m in dict.fromkeys(plan.metrics)),
            horizon=plan.forecast.horizon or DEFAULT_HORIZON,
            max_steps=FORECAST_MAX_STEPS,
            modelfile=_template_source(MODEL_MODULE) if model_directory else "",
            directory=str(model_directory or ""),
            max_bytes=max_model_bytes(),
        )
    prelude, model, fit_input = "", plan.model_expression or plan.model, plan.fit_input
    if plan.framework == "torch":
        prelude = _TORCH_PRELUDE.format(modelfile=_template_source(MODEL_MODULE))
        model = f'__promote_torch["TorchModel"]({model}, {plan.model_builder!r})'
        fit_input = f'__promote_torch["torch_input_frame"]({fit_input})'
    return _CAPTURE_CELL.format(
        prelude=prelude,
        source=Path(kernel_capture.__file__).read_text(encoding="utf-8"),
        marker=MARKER,
        model=model,
        fit_input=fit_input,
        metrics=", ".join(f'"{m}": {m}' for m in dict.fromkeys(plan.metrics)),
        rows=SAMPLE_ROWS,
        reference=_template_source(REFERENCE_MODULE),
        modelfile=_template_source(MODEL_MODULE) if model_directory else "",
        directory=str(model_directory or ""),
        max_bytes=max_model_bytes(),
        drop=notebook_drop(plan) if loaded_frame_cell(plan) else "()",
        keep=repr(sorted(plan.inference.columns)),
        serving=serving_steps(plan) if loaded_frame_cell(plan) else "None",
        labels='globals().get("__promote_rows")' if plan.inference.trained else "None",
    )


def serving_steps(plan: Plan) -> str:
    """When the feature steps learn from the training rows: the expression, run in the
    kernel, of what ``kernel_capture.steps_error`` needs to check the service's feature steps
    with what the notebook's own steps learnt; "None" when they learn nothing."""
    inference = plan.inference
    if not inference.state:
        return "None"
    from promote.codegen import function_source

    function = next(
        f
        for module in plan.modules
        if module.name == inference.module
        for f in module.functions
        if f.name == inference.function
    )
    # Without the settings parameter: the notebook's own constants are the settings' values.
    steps = replace(
        function,
        params=function.params[:2],
        settings_default=False,
        body=notebook_names(plan, function.body),
    )
    # The functions of its module it calls (``prepare_features``, the steps before the split),
    # with the settings parameter they are passed set to None: they read no setting here.
    called = {
        node.func.id
        for node in ast.walk(ast.parse(function.body))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    helpers = [
        replace(f, settings_default=False, body=notebook_names(plan, f.body))
        for module in plan.modules
        if module.name == inference.module
        for f in module.functions
        if f.name in called and f.name != function.name
    ]
    source = "".join(
        function_source(f, plan.settings_parameter) + "\n\n" for f in (*helpers, steps)
    )
    if helpers:
        source = f"{plan.settings_parameter} = None\n\n" + source
    entries = [(entry.key, entry.name, _where(entry)) for entry in inference.entries]
    return (
        f'{{"state": globals().get("__promote_state"), "entries": {entries!r}, '
        f'"steps": {source!r}, '
        f'"function": {function.name!r}, "namespace": globals()}}'
    )


def snapshot_cells(plan: Plan) -> dict[int, str]:
    """The code promote runs in the kernel right after notebook cells (by their number; 0:
    before the first): the copy of the frame as loaded (``loaded_frame_cell``), what the
    feature steps learnt (``Inference.entries``) and the labels of the training rows
    (``Inference.trained``). What the notebook holds only inside a cell (``Learnt.statement``)
    is taken there by an AST transformer installed right before that cell and removed after
    it (``_INSERT_CELL``)."""
    cells: dict[int, str] = {}
    loaded = loaded_frame_cell(plan)
    if loaded is None:
        return cells
    inference = plan.inference
    cells[loaded] = _SNAPSHOT_CELL.format(frame=inference.frame)
    inside: dict[int, list[tuple[str, bool, str]]] = {}
    snapshots = [(entry, _STATE_CELL, _state_entry(entry)) for entry in inference.entries]
    if inference.trained:
        snapshots.insert(
            0, (inference.trained, "", _ROWS_ENTRY.format(name=inference.trained.name))
        )
    for entry, start, code in snapshots:
        if entry.statement:
            inside.setdefault(entry.cell, []).append((entry.statement, entry.before, start + code))
            continue
        before = cells.get(entry.cell, "")
        cells[entry.cell] = before + (start if start not in before else "") + code
    for cell, inserts in inside.items():
        cells[cell - 1] = cells.get(cell - 1, "") + _INSERT_CELL.format(inserts=inserts)
        cells[cell] = _INSERT_END + cells.get(cell, "")
    return cells


def _where(entry: Learnt) -> str:
    """Where the kernel takes ``entry``, in words: ``after cell 4``, ``before `...` in cell 5``."""
    if not entry.statement:
        return f"after cell {entry.cell}"
    statement = entry.statement if len(entry.statement) <= 60 else entry.statement[:57] + "..."
    return f"{'before' if entry.before else 'after'} `{statement}` in cell {entry.cell}"


def _state_entry(entry: Learnt) -> str:
    """The code that records ``entry`` in ``__promote_state``: a copy of what the notebook holds
    (the dtypes of the columns of a frame ``pd.get_dummies`` made)."""
    value = (
        f"dict({entry.name}.dtypes.astype(str))"
        if entry.columns
        else f'__import__("copy").deepcopy({entry.name})'
    )
    return _STATE_ENTRY.format(key=entry.key, value=value)


def loaded_frame_cell(plan: Plan) -> int | None:
    """The notebook cell (numbered from 1) after which the frame the service's feature steps
    start from is as the pipeline's load stages leave it: the last cell of the last stage before
    the one calling ``make_features`` that returns the frame; None without feature steps."""
    inference = plan.inference
    if not inference.function:
        return None
    functions = [call.function for call in plan.calls]
    before = next(
        (i for i, f in enumerate(functions) if f.name == inference.stage_function), len(functions)
    )
    for function in reversed(functions[:before]):
        if inference.frame in function.returns and function.cells:
            return max(function.cells)
    return None


def notebook_drop(plan: Plan) -> str:
    """The target columns requests leave out, as a list expression of the notebook's own
    names (``settings.target`` is the notebook's ``TARGET`` again), and the columns the steps
    drop unread."""
    names = [notebook_names(plan, text) for text in plan.inference.drop]
    return "[" + ", ".join([*names, *(repr(c) for c in plan.inference.unread)]) + "]"


def notebook_names(plan: Plan, code: str) -> str:
    """``code`` of the package with each setting read as the notebook has it: its constant
    (``settings.target`` is ``TARGET`` again), or the literal an inline setting replaced."""
    values = {
        setting.field: setting.name or f"({setting.default})"
        for setting in plan.settings
        if setting.name or (setting.default and not setting.secret)
    }
    prefix = re.escape(plan.settings_parameter)
    pattern = re.compile(rf"\b{prefix}\.(\w+)(\.get_secret_value\(\))?")
    return pattern.sub(lambda match: values.get(match.group(1), match.group(0)), code)


def _template_source(relative: Path) -> str:
    """The source of one of the template's modules ("" when the template has none)."""
    from promote.store import template_path

    try:
        return (template_path() / relative).read_text(encoding="utf-8")
    except (OSError, PromoteError):
        return ""


def max_model_bytes() -> int:
    """The size cap of a captured model file, in bytes (``PROMOTE_MAX_MODEL_MB``)."""
    value = os.environ.get("PROMOTE_MAX_MODEL_MB", "")
    try:
        megabytes = float(value) if value.strip() else MAX_MODEL_MB
    except ValueError:
        megabytes = MAX_MODEL_MB
    return int(megabytes * 1_000_000)


@dataclass(frozen=True)
class Capture:
    """What the notebook produced, for the generated project's parity test."""

    records: list[dict[str, Any]]
    predictions: list[Any]
    metrics: dict[str, float]
    versions: dict[str, str]
    seconds: float = 0.0
    schema: dict[str, Any] = field(default_factory=dict)  # the model input, as fitted
    dropped: dict[str, str] = field(default_factory=dict)  # column → why it is not recorded
    reference: dict[str, Any] | None = None  # reference.py's statistics, from the notebook
    # The notebook's fitted model as saved in the kernel: model.json's content with the file's
    # size, or {"error": why} when it was not kept; {} when no directory was given.
    model: dict[str, Any] = field(default_factory=dict)
    # With feature steps in the service: the sampled rows as requests carry them (the loaded
    # columns), with their schema, the model's predictions and reference statistics; else None.
    requests: dict[str, Any] | None = None
    unmatched: str = ""  # why the run could not tell those rows, when it could not
    # A forecaster's: the index labels of each forecast in ``predictions``, and the series
    # it was fitted on (rows, first and last labels); None for other models.
    index: list[Any] | None = None
    series: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExecutionFailure:
    """Why the run stopped: the cell (1-based, as promote numbers cells), the error, the fix."""

    cell: int | None
    error: str
    hint: str
    seconds: float = 0.0
    details: str = field(default="", repr=False)  # the cell, its output and the traceback
    error_name: str = ""  # the exception's type, when the cell raised one
    error_value: str = ""
    timed_out: bool = False  # stopped by --timeout or --total-timeout, not by an error

    def message(self, notebook: Path) -> str:
        where = f" at cell {self.cell}" if self.cell else ""
        return f"Running {notebook} stopped{where}: {self.error.rstrip('.')}. {self.hint}"


def execute(
    notebook: Path,
    plan: Plan,
    *,
    cell_timeout: int = 600,
    total_timeout: int = 3600,
    kernel: str = "python3",
    python: Path | None = None,
    model_directory: Path | None = None,
) -> Capture | ExecutionFailure:
    """Run ``notebook`` top to bottom in a fresh kernel, then capture what ``plan`` needs (and
    save the fitted model into ``model_directory``, when given).

    The kernel is the Jupyter kernel named ``kernel``, or with ``python`` an IPython kernel run
    by that interpreter (an environment of ``environments``; it must have ipykernel).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    with warnings.catch_warnings():  # a missing cell id is not the user's problem here
        warnings.simplefilter("ignore")
        node = nbformat.reads(notebook.read_text(encoding="utf-8"), as_version=4)
    # The cells promote numbers (from 1) by where they are in the notebook: a cell promote adds
    # keeps the numbers of the cells after it.
    numbers: list[int | None] = list(range(1, len(node.cells) + 1))
    _blank_unrunnable(node.cells)
    _insert_snapshots(node.cells, numbers, plan)
    node.cells.append(nbformat.v4.new_code_cell(capture_cell(plan, model_directory)))
    numbers.append(None)  # the capture: not the notebook's
    client = NotebookClient(
        node,
        km=_kernel_manager(python) if python else None,
        timeout=cell_timeout,
        kernel_name=kernel,
        allow_errors=False,
        resources={"metadata": {"path": str(notebook.resolve().parent)}},
    )
    started = time.monotonic()
    capture_index = len(node.cells) - 1
    # The kernel's own stderr (start-up warnings, a crash's last words) goes to a file: it is
    # shown only when the kernel dies or does not start.
    kernel_log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    try:
        with client.setup_kernel(cleanup_kc=True, stderr=kernel_log):  # our own manager too
            for index, cell in enumerate(node.cells):
                if cell.cell_type != "code":
                    continue
                remaining = total_timeout - (time.monotonic() - started)
                over_budget = ExecutionFailure(
                    numbers[index],
                    f"the run exceeded its {total_timeout} s budget",
                    "Raise --total-timeout, or make the notebook faster (sample the data).",
                    total_timeout,
                    timed_out=True,
                )
                if remaining <= 0:
                    return over_budget
                # A cell may use what is left of the budget, up to its own timeout.
                client.timeout = max(1, min(cell_timeout, math.ceil(remaining)))
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    if client.timeout < cell_timeout:
                        return over_budget
                    return ExecutionFailure(
                        numbers[index],
                        f"the cell ran longer than {cell_timeout} s",
                        "Raise --timeout, or make the cell faster.",
                        time.monotonic() - started,
                        timed_out=True,
                    )
                except DeadKernelError:
                    return ExecutionFailure(
                        numbers[index],
                        "the kernel died while running the cell" + _last_words(kernel_log),
                        "The cell ends the Python process (os._exit, a crash in a C library) "
                        "or runs out of memory; fix it or sample the data, then promote again.",
                        time.monotonic() - started,
                    )
                except CellExecutionError as error:
                    if index == capture_index:
                        return ExecutionFailure(
                            None,
                            "the capture after the last cell failed "
                            f"({_error_summary(error.ename, error.evalue)})",
                            f"Check that `{plan.model_expression or plan.model}` is fitted on "
                            f"`{plan.fit_input}` when the "
                            "notebook ends (promote predicts with it on the first rows).",
                            time.monotonic() - started,
                            str(error),
                        )
                    return ExecutionFailure(
                        numbers[index],
                        _error_summary(error.ename, error.evalue),
                        "Fix the cell so the notebook runs top to bottom in a fresh kernel "
                        "(Restart & Run All), then promote again; the project was generated "
                        "without the capture.",
                        time.monotonic() - started,
                        str(error),
                        error.ename,
                        error.evalue,
                    )
    except DeadKernelError as error:
        return ExecutionFailure(
            None,
            f"the kernel died ({error}){_last_words(kernel_log)}",
            "Check memory use.",
            time.monotonic() - started,
        )
    except Exception as error:  # kernel start-up: no such kernel, missing ipykernel, ...
        which = f"the kernel of {python}" if python else f"the kernel {kernel!r}"
        return ExecutionFailure(
            None,
            f"{which} could not run the notebook ({type(error).__name__}: {error})"
            + _last_words(kernel_log),
            "Install ipykernel in the notebook's environment or name another with --kernel.",
            time.monotonic() - started,
        )
    finally:
        kernel_log.close()
    return _parse(node.cells[capture_index], time.monotonic() - started)


def _blank_unrunnable(cells: list[Any]) -> None:
    """Empty the code cells tagged ``promote: skip`` that are not Python (prose, Python 2): the
    tag is what promote asks of a user for such a cell, and the kernel could not run it."""
    from promote.analysis import tags_stage
    from promote.normalize import normalize

    for number, cell in enumerate(cells, start=1):
        if cell.cell_type != "code" or tags_stage(cell.metadata.get("tags", [])) != "skip":
            continue
        if normalize(cell.source, number).syntax_error:
            cell.source = "# tagged `promote: skip` and not Python: not run"


def _insert_snapshots(cells: list[Any], numbers: list[int | None], plan: Plan) -> None:
    """Put ``snapshot_cells`` after their cells; each keeps the number of the cell it follows."""
    import nbformat

    for after, code in sorted(snapshot_cells(plan).items(), reverse=True):  # from the last
        if after <= len(cells):
            cells.insert(after, nbformat.v4.new_code_cell(code))
            numbers.insert(after, after)


def _last_words(log: IO[bytes], lines: int = 3) -> str:
    """The end of the kernel's stderr, as ``; it said: ...``, or nothing."""
    try:
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return f"; it said: {' | '.join(kept)[-400:]}" if kept else ""


def _kernel_manager(python: Path) -> Any:
    """A kernel manager that starts an IPython kernel with ``python``: a kernel spec of its own,
    in a folder beside that interpreter's environment, so nothing is registered for the user."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    folder = python.parent.parent / "share" / "promote-kernels"
    spec = folder / "promote-env" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"promote ({python.parent.parent.name})",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)
    # Asynchronous, as nbclient's own: a blocking manager's client would wait for output with no
    # timeout inside nbclient's event loop, and a cell's timeout would never fire.
    return AsyncKernelManager(kernel_name="promote-env", kernel_spec_manager=specs)


def _error_summary(name: str, value: str, limit: int = 300) -> str:
    """``ValueError: first paragraph of the message`` on one line, at most ``limit`` long."""
    paragraphs = [part for part in value.strip().split("\n\n") if part.strip()]
    text = " ".join(paragraphs[0].split()) if paragraphs else ""
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f"{name}: {text}" if text else name


def _parse(cell: Any, seconds: float) -> Capture | ExecutionFailure:
    # A long line may arrive in several stream messages: join them before looking for it.
    outputs = cell.get("outputs", [])
    text = "".join(out.get("text", "") for out in outputs if out.get("name") == "stdout")
    for line in text.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return Capture(
                records=data["records"],
                predictions=data["predictions"],
                metrics=data["metrics"],
                versions=data["versions"],
                seconds=seconds,
                schema=data["schema"],
                dropped=data["dropped"],
                reference=data["reference"],
                model=data.get("model") or {},
                requests=data.get("requests"),
                unmatched=data.get("unmatched") or "",
                index=data.get("index"),
                series=data.get("series"),
            )
    return ExecutionFailure(
        None, "the capture printed nothing", "This is a bug in promote.", seconds
    )


def capture_json(capture: Capture, plan: Plan) -> str:
    """``tests/parity/notebook.json`` of the generated project: stable, sorted, no timestamps."""
    data = {
        "notebook": plan.notebook_name,
        "model": plan.model_expression or plan.model,
        "fit_input": plan.fit_input,
        "records": capture.records,
        "predictions": capture.predictions,
        "metrics": capture.metrics,
        "tolerance": {"relative": 1e-6, "absolute": 1e-9},
        "versions": dict(sorted(capture.versions.items())),
        "schema": capture.schema,
        "reference": capture.reference,
    }
    if capture.index is not None:  # a forecaster's (kernel_capture.capture_forecast)
        data["index"] = capture.index
        data["series"] = capture.series
    if capture.model:
        data["saved_model"] = model_section(capture, plan)
    if capture.dropped:
        data["dropped"] = {
            "note": "left out of the records, of the schema's ranges and categories and of "
            "the reference statistics: they look like personal data or secrets",
            "columns": capture.dropped,
        }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def served_input(capture: Capture, plan: Plan) -> dict[str, Any] | None:
    """What the service's artifacts say of its requests for the captured model: ``schema``
    (with ``make_features`` when the service applies the notebook's feature steps),
    ``records``, ``predictions``, ``dropped``, ``reference``; None when the run could not tell
    the loaded rows the feature steps start from, or when the steps learn from the training rows
    and the capture could not save what the notebook's steps learnt beside its model
    (``state_problem``)."""
    inference = plan.inference
    if not inference.function:
        return {
            "schema": capture.schema,
            "records": capture.records,
            "predictions": capture.predictions,
            "dropped": capture.dropped,
            "reference": capture.reference,
        }
    if not capture.requests or (inference.state and state_problem(capture)):
        return None
    steps = f"{plan.package_name}.{inference.module}:{inference.function}"
    schema = {**capture.requests["schema"], "make_features": steps}
    return {**capture.requests, "schema": schema}


def not_servable(capture: Capture, plan: Plan) -> str:
    """Why the service cannot serve the captured model as it is ("" when it can)."""
    served = served_input(capture, plan)
    if served is None and plan.inference.state and capture.requests:
        return (
            "the service's feature steps (make_features) take what they learnt from the "
            f"training rows ({plan.inference.learnt or plan.inference.state}), and the capture "
            f"could not save the notebook's beside its model: {state_problem(capture)}; the "
            "service serves a model from `make train`, which saves what they learnt"
        )
    if served is None:
        trained = plan.inference.trained
        why = capture.unmatched
        if why and trained:
            why += f" (`{trained.name}`, cell {trained.cell})"
        return (
            "requests carry the loaded columns and the service applies the notebook's feature "
            "steps (make_features) before the model, but the run could not match the frame as "
            "loaded to the rows the model was fitted on"
            + (f": {why}" if why else "")
            + "; the service serves a model from `make train`"
        )
    if served["dropped"]:
        return (
            "columns that look like personal data are left out of the sample, so the "
            "service's sample would be incomplete; the service serves a model from `make train`"
        )
    schema = served["schema"]
    kind = schema.get("kind")
    if kind == "table" and all(c.get("type") in JSON_TYPES for c in schema.get("columns", [])):
        return ""
    if kind in {"text", "forecast"} or (kind == "array" and schema.get("n_features")):
        return ""
    return "its input cannot be described as JSON fields; the service serves `make train`'s"


def state_problem(capture: Capture) -> str:
    """Why what the notebook's feature steps learnt is not saved beside its model ("" when it
    is): the kernel's reason (``kernel_capture.steps_error``, ``kernel_capture.save_state``)."""
    problem = (capture.requests or {}).get("state_error") or capture.model.get("state_error")
    if not problem and "feature_state" not in capture.model:
        problem = "the run did not save it"
    return str(problem or "")


def model_section(capture: Capture, plan: Plan) -> dict[str, Any]:
    """The ``saved_model`` entry of ``notebook.json``: where the captured model is, or why not
    (``model`` names the notebook's variable)."""
    model = capture.model
    if "error" in model:
        return {"error": f"the notebook's model is not in the project: {model['error']}"}
    why = not_servable(capture, plan)
    section = {
        "directory": NOTEBOOK_MODEL_DIR,
        "file": model["file"],
        "format": model["format"],
        "sha256": model["sha256"],
        "bytes": model["bytes"],
        "served": not why,
    }
    if "feature_state" in model:  # what the feature steps learnt, beside the model
        state = model["feature_state"]
        section["feature_state"] = {key: state[key] for key in ("file", "format", "sha256")}
    return section | ({"not_served": why} if why else {})


def notebook_model_files(
    capture: Capture, plan: Plan, saved: Path
) -> tuple[dict[Path, str], dict[str, str]]:
    """The captured model's files for the project: ``(copies, texts)``, the model file and
    its manifest (saved in the kernel into ``saved``) to copy, and the JSON files that make
    ``NOTEBOOK_MODEL_DIR`` a complete artifacts directory (when the service can serve it)."""
    model = capture.model
    if not model or "error" in model:
        return {}, {}
    names = [model["file"], "model.json"]
    if "feature_state" in model:  # model.json records it: the folder holds it too
        names.append(model["feature_state"]["file"])
    copies = {saved / name: f"{NOTEBOOK_MODEL_DIR}/{name}" for name in names}
    served = served_input(capture, plan)
    if served is None or not_servable(capture, plan):
        return copies, {}
    files = {
        "schema.json": served["schema"],
        "sample.json": {"records": served["records"], "predictions": served["predictions"]}
        | ({"index": capture.index} if capture.index is not None else {}),
        "metrics.json": {k: v for k, v in capture.metrics.items() if math.isfinite(v)},
    }
    if served["reference"]:
        files["reference.json"] = served["reference"]
    files["version.json"] = {
        "version": NOTEBOOK_VERSION,
        "source": f"captured from the notebook {plan.notebook_name} by promote --execute",
        "metrics": capture.metrics,
        "libraries": model.get("versions", {}),
        "files": sorted([*files, *names]),
    }
    texts = {
        f"{NOTEBOOK_MODEL_DIR}/{name}": json.dumps(data, indent=2, allow_nan=False) + "\n"
        for name, data in files.items()
    }
    return copies, texts
