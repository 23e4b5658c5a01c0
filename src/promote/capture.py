"""``promote --execute``: run the notebook once, in a fresh kernel, and keep what it produced.

The only module that runs the user's code, and it does so in a separate kernel process (nbclient)
with the notebook's folder as working directory, a timeout per cell and one for the whole run.
What is kept is small and reviewable: the first rows the model was fitted on (as the records the
service accepts), the notebook model's predictions for them, the metrics it computed, and the
versions of the libraries it imported. The generated project's parity test replays them.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promote.planning import Plan

__all__ = ["Capture", "ExecutionFailure", "capture_json", "execute"]

SAMPLE_ROWS = 5
MARKER = "PROMOTE-CAPTURE:"

# Runs in the notebook's kernel after its last cell; prints one JSON line.
_CAPTURE_CELL = """
def __promote_capture(model, fit_input, metrics, rows):
    import json as _json
    import sys as _sys

    def _plain(value):
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            return value.item()
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "tolist"):
            return value.tolist()
        return value

    head = fit_input[:rows] if not hasattr(fit_input, "head") else fit_input.head(rows)
    if hasattr(head, "to_dict") and hasattr(head, "columns"):
        rows_ = head.to_dict(orient="records")
        records = [{str(k): _plain(v) for k, v in r.items()} for r in rows_]
    elif all(isinstance(t, str) for t in list(head)):
        records = [{"text": t} for t in list(head)]
    else:
        records = [{"features": [_plain(v) for v in row]} for row in list(head)]
    predictions = [_plain(p) for p in model.predict(head)]
    found = {}
    for name, value in metrics.items():
        try:
            found[name] = float(value)
        except (TypeError, ValueError):
            pass
    versions = {}
    for module in list(_sys.modules.values()):
        name = getattr(module, "__name__", "")
        version = getattr(module, "__version__", None)
        if name and "." not in name and isinstance(version, str) and not name.startswith("_"):
            versions[name] = version
    print("MARKER" + _json.dumps(
        {"records": records, "predictions": predictions, "metrics": found, "versions": versions},
        default=_plain,
    ))
"""


@dataclass(frozen=True)
class Capture:
    """What the notebook produced, for the generated project's parity test."""

    records: list[dict[str, Any]]
    predictions: list[Any]
    metrics: dict[str, float]
    versions: dict[str, str]
    seconds: float = 0.0


@dataclass(frozen=True)
class ExecutionFailure:
    """Why the run stopped: the cell (1-based, as promote numbers cells), the error, the fix."""

    cell: int | None
    error: str
    hint: str
    seconds: float = 0.0
    details: str = field(default="", repr=False)

    def message(self, notebook: Path) -> str:
        where = f" at cell {self.cell}" if self.cell else ""
        return f"Running {notebook} stopped{where}: {self.error}. {self.hint}"


def execute(
    notebook: Path,
    plan: Plan,
    *,
    cell_timeout: int = 600,
    total_timeout: int = 3600,
    kernel: str = "python3",
) -> Capture | ExecutionFailure:
    """Run ``notebook`` top to bottom in a fresh kernel, then capture what ``plan`` needs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    with warnings.catch_warnings():  # a missing cell id is not the user's problem here
        warnings.simplefilter("ignore")
        node = nbformat.reads(notebook.read_text(encoding="utf-8"), as_version=4)
    metrics = ", ".join(f'"{m}": {m}' for m in dict.fromkeys(plan.metrics))
    node.cells.append(
        nbformat.v4.new_code_cell(
            _CAPTURE_CELL.replace("MARKER", MARKER)
            + f"\n__promote_capture({plan.model}, {plan.fit_input}, {{{metrics}}}, {SAMPLE_ROWS})"
        )
    )
    client = NotebookClient(
        node,
        timeout=cell_timeout,
        kernel_name=kernel,
        allow_errors=False,
        resources={"metadata": {"path": str(notebook.resolve().parent)}},
    )
    started = time.monotonic()
    capture_index = len(node.cells) - 1
    try:
        with client.setup_kernel():
            for index, cell in enumerate(node.cells):
                if cell.cell_type != "code":
                    continue
                if time.monotonic() - started > total_timeout:
                    return ExecutionFailure(
                        index + 1,
                        f"the run exceeded its {total_timeout} s budget",
                        "Raise --total-timeout, or make the notebook faster (sample the data).",
                        time.monotonic() - started,
                    )
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    return ExecutionFailure(
                        index + 1,
                        f"the cell ran longer than {cell_timeout} s",
                        "Raise --timeout, or make the cell faster.",
                        time.monotonic() - started,
                    )
                except CellExecutionError as error:
                    if index == capture_index:
                        return ExecutionFailure(
                            None,
                            f"the model `{plan.model}` could not predict on `{plan.fit_input}` "
                            f"({error.ename}: {error.evalue})",
                            "Check that the model is fitted on the variable promote found.",
                            time.monotonic() - started,
                            str(error),
                        )
                    return ExecutionFailure(
                        index + 1,
                        f"{error.ename}: {error.evalue}".strip(),
                        "Fix the cell so the notebook runs top to bottom in a fresh kernel "
                        "(Restart & Run All), then promote again; the project was generated "
                        "without the capture.",
                        time.monotonic() - started,
                        str(error),
                    )
    except DeadKernelError as error:
        return ExecutionFailure(
            None, f"the kernel died ({error})", "Check memory use.", time.monotonic() - started
        )
    except Exception as error:  # kernel start-up: no such kernel, missing ipykernel, ...
        return ExecutionFailure(
            None,
            f"the kernel {kernel!r} could not run the notebook ({type(error).__name__}: {error})",
            "Install ipykernel in the notebook's environment or name another with --kernel.",
            time.monotonic() - started,
        )
    return _parse(node.cells[capture_index], time.monotonic() - started)


def _parse(cell: Any, seconds: float) -> Capture | ExecutionFailure:
    for output in cell.get("outputs", []):
        text = output.get("text", "")
        for line in text.splitlines():
            if line.startswith(MARKER):
                data = json.loads(line[len(MARKER) :])
                return Capture(
                    records=data["records"],
                    predictions=data["predictions"],
                    metrics=data["metrics"],
                    versions=data["versions"],
                    seconds=seconds,
                )
    return ExecutionFailure(
        None, "the capture printed nothing", "This is a bug in promote.", seconds
    )


def capture_json(capture: Capture, plan: Plan) -> str:
    """``tests/parity/notebook.json`` of the generated project: stable, sorted, no timestamps."""
    data = {
        "notebook": plan.notebook_name,
        "model": plan.model,
        "fit_input": plan.fit_input,
        "records": capture.records,
        "predictions": capture.predictions,
        "metrics": capture.metrics,
        "tolerance": {"relative": 1e-6, "absolute": 1e-9},
        "versions": dict(sorted(capture.versions.items())),
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
