"""What ``promote --execute`` costs beyond the notebook's own run.

Run: `.venv/bin/python benchmarks/execute_overhead.py [--repeat 2] [--json out.json]`

For each example notebook (a scratch copy of examples/notebooks, so relative data paths work),
three commands as a user runs them, each in a subprocess, best of ``--repeat`` by wall time
(CPU time of the process and its children beside it):

- ``jupyter nbconvert --to notebook --execute``: the notebook's own run (nbclient, a fresh
  kernel, every cell), the floor for running it at all;
- ``promote NOTEBOOK -o DIR --no-lock``: promote without running anything;
- ``promote NOTEBOOK -o DIR --no-lock --execute``: the same, plus the run and the capture (the
  rows, predictions, schema, reference statistics and the saved model, computed in the kernel).

promote's own time with ``--execute`` is the last minus the first; what the capture adds is the
last minus the other two. Prints a table and writes JSON. Not a test: figures vary by machine
and load (the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "notebooks"
TIMEOUT = 1200


def timed(command: list[str], cwd: Path) -> dict[str, Any]:
    """Wall and CPU seconds (with children) of one run, or the error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0:
        return {"wall": wall, "cpu": cpu, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return {"wall": wall, "cpu": cpu}


def measure(notebook: Path, scratch: Path, repeat: int) -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    commands = {
        "notebook run (nbconvert --execute)": lambda out: [
            str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
            "--output", str(out / "executed.ipynb"), str(notebook),
        ],
        "promote (static)": lambda out: [
            str(bin_dir / "promote"), str(notebook), "-o", str(out / "p"), "--no-lock",
        ],
        "promote --execute": lambda out: [
            str(bin_dir / "promote"), str(notebook), "-o", str(out / "p"), "--no-lock",
            "--execute", "--retries", "0",
        ],
    }  # fmt: skip
    row: dict[str, Any] = {"notebook": notebook.name}
    for label, command in commands.items():
        runs = []
        for number in range(repeat):
            out = scratch / f"{notebook.stem}-{len(row)}-{number}"
            out.mkdir()
            runs.append(timed(command(out), notebook.parent))
            shutil.rmtree(out, ignore_errors=True)
        ok = [r for r in runs if "error" not in r]
        row[label] = min(ok, key=lambda r: r["wall"]) if ok else runs[-1]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "execute_overhead.json"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        shutil.copytree(EXAMPLES, scratch / "notebooks")
        for notebook in sorted((scratch / "notebooks").glob("*.ipynb")):
            rows.append(measure(notebook, scratch, args.repeat))
            print(f"measured {notebook.name}", flush=True)
    print(f"\n{'notebook':<34} {'run (nbconvert)':>18} {'promote':>16} {'--execute':>16} "
          f"{'promote own':>16}")  # fmt: skip
    for row in rows:
        run, static, execute = (
            row["notebook run (nbconvert --execute)"],
            row["promote (static)"],
            row["promote --execute"],
        )
        cells = [f"{r['wall']:6.1f} / {r['cpu']:5.1f}" for r in (run, static, execute)]
        own = f"{execute['wall'] - run['wall']:6.1f} / {execute['cpu'] - run['cpu']:5.1f}"
        errors = [r["error"] for r in (run, static, execute) if "error" in r]
        print(f"{row['notebook']:<34} {cells[0]:>18} {cells[1]:>16} {cells[2]:>16} {own:>16}"
              + (f"  ({errors[0][:80]})" if errors else ""))  # fmt: skip
    print("(seconds, wall / CPU with children; promote own = --execute minus the notebook run)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"load_average": [load_before, os.getloadavg()], "repeat": args.repeat, "rows": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
