"""How fast promote is, stage by stage, beside `jupyter nbconvert --to script` and `soorgeon
refactor` on the same files.

Run: `.venv/bin/python benchmarks/promote_speed.py [--repeat N] [--no-lock] [--no-soorgeon]
[--no-cli] [--only SUBSTRING] [--json out.json]`

For each notebook (the examples, the promotable corpus notebooks, and generated notebooks of
100, 1,000 and 5,000 cells) it times, in process, best of N runs: load (nbformat), normalize
(IPython syntax to Python, every code cell), analyse (the analysis without the normalize step:
the whole ``analyse()`` minus normalize), plan, generate (codegen), render (copier, ruff, git,
without the lock; the project is written to a temporary directory) and, once, lock (``uv pip
compile`` of the rendered project: dependency resolution, over the network), and the peak
Python memory of the pure stages (tracemalloc); and `nbconvert --to script` in process (read +
write a .py), the floor for just reading and writing a notebook.

Then, side by side as a user runs them (each a command in a subprocess, once: wall and CPU time
of the process and its children): ``promote NOTEBOOK -o DIR --no-lock``, ``jupyter nbconvert
--to script`` and ``soorgeon refactor`` (Ploomber's notebook refactoring tool, installed with uv
in a venv of its own, latest from PyPI; skipped with the reason when it does not install). Each
works on a copy of the notebook in a directory of its own (soorgeon rewrites the notebook in
place and writes pipeline.yaml and tasks/ beside it). Prints tables and writes JSON. Not a test:
figures vary by machine.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from promote.analysis import analyse  # noqa: E402
from promote.codegen import generate  # noqa: E402
from promote.errors import PromoteError  # noqa: E402
from promote.lock import find_uv, lock  # noqa: E402
from promote.normalize import normalize  # noqa: E402
from promote.notebook import Notebook, read  # noqa: E402
from promote.planning import plan  # noqa: E402
from promote.render import render  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
RUNS = itertools.count()
CLI_TIMEOUT = 600  # seconds per command run; longer is reported as a timeout
HEADING_EVERY = (
    25  # synthetic notebooks: a markdown H2 heading every 25 cells (soorgeon's sections)
)
CELL_KINDS = (  # {b}: the first cell of the group of five, which defines df_{b}
    "df_{b} = df.assign(c{b}=df.a * {i})",
    "df_{b}.head()",
    "# some notes\nratio_{i} = df_{b}['c{b}'].mean() / (df_{b}['a'].std() + 1)",
    "fig, ax = plt.subplots()\nax.plot(df_{b}['c{b}'])",
    "total_{i} = sum(range({i}, {i} + 10))",
)


def synthetic(cells: int, folder: Path) -> Path:
    """A notebook of ``cells`` realistic cells that ends by fitting and using a model."""
    import nbformat

    sources = [
        "import pandas as pd\nimport matplotlib.pyplot as plt\n"
        "from sklearn.linear_model import LinearRegression",
        "SEED = 0\ndf = pd.DataFrame({'a': range(100), 'y': range(100)})",
    ]
    for i in range(cells - 4):
        sources.append(CELL_KINDS[i % len(CELL_KINDS)].format(i=i, b=i - i % len(CELL_KINDS)))
    sources.append("X = df[['a']]\ny = df['y']\nmodel = LinearRegression()\nmodel.fit(X, y)")
    sources.append("score = model.score(X, y)\nmodel.predict(X.head(3))")
    # Sections, as notebooks have them: an H2 heading replaces every HEADING_EVERY-th cell,
    # each a plot cell (one that defines nothing later cells read).
    markdown = {
        n for n in range(2, len(sources) - 2) if n % HEADING_EVERY == 0 and "plt." in sources[n]
    }
    node = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"## Section {n}")
            if n in markdown
            else nbformat.v4.new_code_cell(source)
            for n, source in enumerate(sources)
        ]
    )
    for n, cell in enumerate(node.cells):
        cell["id"] = f"c{n}"
    path = folder / f"synthetic_{cells}.ipynb"
    nbformat.write(node, path)
    return path


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def measure(notebook: Path, repeat: int, scratch: Path, with_lock: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"notebook": _label(notebook), "cells": 0}
    load_s, nb = best(lambda: read(notebook), repeat)
    row["cells"] = len(nb.cells)
    normalize_s, _ = best(lambda: _normalize_all(nb), repeat)
    analyse_s, analysis = best(lambda: analyse(nb), repeat)
    analyse_s = max(analyse_s - normalize_s, 0.0)  # analyse() normalizes each cell first
    try:
        plan_s, the_plan = best(lambda: plan(analysis, "bench"), repeat)
    except PromoteError as error:
        row.update(
            load=load_s, normalize=normalize_s, analyse=analyse_s, refused=error.message[:80]
        )
        return row
    generate_s, _ = best(lambda: generate(the_plan), repeat)
    tracemalloc.start()
    plan(analyse(read(notebook)), "bench")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    project = scratch / f"project-{next(RUNS)}"
    render_s, _ = best(lambda: render(the_plan, project, lock=False), 1)
    lock_s = best(lambda: lock(project), 1)[0] if with_lock else None
    shutil.rmtree(project, ignore_errors=True)
    row.update(
        load=load_s,
        normalize=normalize_s,
        analyse=analyse_s,
        plan=plan_s,
        generate=generate_s,
        render=render_s,
        lock=lock_s,
        up_to_render=load_s + normalize_s + analyse_s + plan_s + generate_s,
        peak_mib=peak / 2**20,
        nbconvert=_nbconvert(notebook, repeat, scratch),
    )
    return row


def _normalize_all(nb: Notebook) -> None:
    for cell in nb.cells:
        if cell.kind == "code":
            normalize(cell.source, cell.index)


def timed_command(command: list[str], cwd: Path) -> dict[str, Any]:
    """Run a command once: its wall time, its CPU time (user + system, with its children), and
    whether it succeeded (else the last line it wrote)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"wall": None, "cpu": None, "error": f"timeout after {CLI_TIMEOUT} s"}
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    result: dict[str, Any] = {"wall": wall, "cpu": cpu}
    if completed.returncode != 0:
        result["error"] = _why(completed)[:100]
    return result


def _why(completed: subprocess.CompletedProcess[str]) -> str:
    """The line of a failed command's output that says why: promote's ``error: ...`` line,
    else the last line it wrote to stderr (soorgeon's reason), else to stdout."""
    errors = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
    said = next((line for line in errors if line.startswith("error:")), None)
    if said is not None:
        return said
    if errors:
        return errors[-1]
    lines = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {completed.returncode}"


def commands(notebook: Path, scratch: Path, soorgeon: Path | None) -> dict[str, dict[str, Any]]:
    """``promote``, ``jupyter nbconvert --to script`` and ``soorgeon refactor`` on one notebook,
    each as a user runs it, in a directory of its own."""
    bin_dir = Path(sys.executable).parent
    run = scratch / f"cli-{next(RUNS)}"
    run.mkdir()
    found = {
        "promote": timed_command(
            [str(bin_dir / "promote"), str(notebook), "-o", str(run / "project"), "--no-lock"], run
        ),
        "nbconvert": timed_command(
            [
                str(bin_dir / "jupyter"),
                "nbconvert",
                "--to",
                "script",
                "--output-dir",
                str(run / "script"),
                str(notebook),
            ],
            run,
        ),
    }
    if soorgeon is not None:
        copy = run / "soorgeon"
        copy.mkdir()
        shutil.copy(notebook, copy / notebook.name)  # soorgeon rewrites the notebook in place
        found["soorgeon"] = timed_command([str(soorgeon), "refactor", notebook.name], copy)
    shutil.rmtree(run, ignore_errors=True)
    return found


def install_soorgeon(scratch: Path) -> tuple[Path | None, str]:
    """soorgeon in a venv of its own (uv, latest from PyPI); or None and why not."""
    uv = find_uv()
    if uv is None:
        return None, "soorgeon skipped: uv is not installed (run `make setup`)"
    venv = scratch / "soorgeon-venv"
    start = time.perf_counter()
    try:
        for command in (
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "soorgeon"],
        ):
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
        version = subprocess.run(
            [str(venv / "bin" / "soorgeon"), "--version"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", "") or str(error)
        return None, f"soorgeon skipped: it did not install in its own venv ({detail[-200:]})"
    took = time.perf_counter() - start
    return venv / "bin" / "soorgeon", f"{version}, installed with uv in {took:.0f} s"


def _nbconvert(notebook: Path, repeat: int, scratch: Path) -> float | None:
    try:
        import nbformat
        from nbconvert import PythonExporter
    except ImportError:
        return None

    def convert() -> None:
        body, _ = PythonExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
        (scratch / f"{notebook.stem}.py").write_text(body)

    return best(convert, repeat)[0]


def _label(notebook: Path) -> str:
    return notebook.name if notebook.stem != "notebook" else _corpus_name(notebook)


def _corpus_name(notebook: Path) -> str:
    relative = notebook.resolve().relative_to(CORPUS.resolve())
    return relative.parts[0]


def corpus_notebooks() -> list[Path]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [CORPUS / r["name"] / r["notebook_relpath"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-lock", action="store_true", help="do not time the lock stage")
    parser.add_argument("--no-cli", action="store_true", help="do not time the commands")
    parser.add_argument("--no-soorgeon", action="store_true", help="do not install soorgeon")
    parser.add_argument("--only", help="only the notebooks whose name contains this")
    parser.add_argument("--sizes", default="100,1000,5000", help="synthetic notebooks' cells")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "promote_speed.json"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        soorgeon, soorgeon_note = None, "soorgeon skipped (--no-soorgeon or --no-cli)"
        if not (args.no_soorgeon or args.no_cli):
            print("installing soorgeon in its own venv ...", flush=True)
            soorgeon, soorgeon_note = install_soorgeon(scratch)
        print(soorgeon_note, flush=True)
        notebooks = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
        notebooks += [p for p in corpus_notebooks() if p.is_file() and p.stat().st_size]
        sizes = [int(n) for n in args.sizes.split(",") if n]
        notebooks += [synthetic(n, scratch) for n in sizes]
        rows = []
        for notebook in notebooks:
            if args.only and args.only not in _label(notebook):
                continue
            row = measure(notebook, args.repeat, scratch, not args.no_lock)
            if not args.no_cli:
                row["commands"] = commands(notebook, scratch, soorgeon)
            rows.append(row)
            print(f"measured {row['notebook']}", flush=True)
    print_tables(rows)
    summary = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "repeat": args.repeat,
        "soorgeon": soorgeon_note,
        "notebooks": rows,
    }
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


def print_tables(rows: list[dict[str, Any]]) -> None:
    columns = [
        "load", "normalize", "analyse", "plan", "generate", "up_to_render", "render", "lock",
        "nbconvert",
    ]  # fmt: skip
    header = "".join(f"{c:>13}" for c in columns)
    print(f"\nin process, best of the runs\n{'notebook':<34}{'cells':>6}{header}{'peak MiB':>10}")
    for row in rows:
        if "refused" in row:
            print(f"{row['notebook'][:33]:<34}{row['cells']:>6}  refused: {row['refused']}")
            continue
        cells = "".join(
            f"{row[c] * 1000:>11.1f}ms" if row.get(c) is not None else f"{'-':>13}" for c in columns
        )
        print(f"{row['notebook'][:33]:<34}{row['cells']:>6}{cells}{row['peak_mib']:>10.1f}")
    if not any("commands" in row for row in rows):
        return
    names = ["promote", "nbconvert", "soorgeon"]
    header = "".join(f"{n + ' wall/CPU s':>22}" for n in names)
    print(f"\ncommands, once each\n{'notebook':<34}{'cells':>6}{header}")
    failures = []
    for row in rows:
        cells = ""
        for name in names:
            result = row.get("commands", {}).get(name)
            if result is None:
                cells += f"{'-':>22}"
            elif result.get("error"):
                cells += f"{'failed':>22}"
                failures.append(f"{row['notebook']}: {name}: {result['error']}")
            else:
                cells += f"{result['wall']:>14.2f} / {result['cpu']:>5.2f}"
        print(f"{row['notebook'][:33]:<34}{row['cells']:>6}{cells}")
    for failure in failures:
        print(f"  {failure}")


if __name__ == "__main__":
    main()
