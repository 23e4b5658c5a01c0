"""Benchmark: what capturing the notebook's own model adds to ``promote --execute``.

    .venv/bin/python benchmarks/capture_model.py [--json PATH]

For each example notebook (run in a copy of examples/notebooks), ``capture.execute`` runs it
twice in a fresh kernel: without a model directory (what ``--execute`` did before the model was
captured) and with one (the model saved by the template's ``modelfile.py`` in the kernel).
Printed: the model's format and file size, the seconds the kernel spent saving it (measured in
the kernel), and the wall time of both runs (which includes kernel start-up, so it varies with
the machine's load more than the difference does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from promote.api import analyse_in_environment, installed_versions
from promote.capture import Capture, execute
from promote.notebook import read
from promote.planning import plan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "notebooks"


def measure(notebook: Path) -> dict[str, Any]:
    result = plan(analyse_in_environment(read(notebook)), "bench", installed=installed_versions())
    before = execute(notebook, result)
    with tempfile.TemporaryDirectory() as saved:
        after = execute(notebook, result, model_directory=Path(saved))
    assert isinstance(before, Capture) and isinstance(after, Capture), (before, after)
    model = after.model
    return {
        "notebook": notebook.name,
        "format": model.get("format"),
        "bytes": model.get("bytes"),
        "save_seconds": model.get("seconds"),
        "error": model.get("error"),
        "run_seconds_without_model": round(before.seconds, 2),
        "run_seconds_with_model": round(after.seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "notebooks"
        shutil.copytree(EXAMPLES, folder)
        for notebook in sorted(folder.glob("*.ipynb")):
            rows.append(measure(notebook))
            print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"python {sys.version.split()[0]}, load average {load}")
    if options.json:
        options.json.write_text(json.dumps({"results": rows, "load": load}, indent=2) + "\n")


if __name__ == "__main__":
    main()
