"""How fast promote is, stage by stage, beside `jupyter nbconvert --to script` on the same files.

Run: `.venv/bin/python benchmarks/promote_speed.py [--repeat N] [--json out.json]`

For each notebook (the examples, the promotable corpus notebooks, and generated notebooks of
100, 1,000 and 5,000 cells) it times, best of N runs: load (nbformat), analyse (normalize +
analysis), plan, generate (codegen), and render (copier, ruff, git; the project is written to a
temporary directory), and the peak Python memory of the pure stages (tracemalloc). When nbconvert
is importable it also times `nbconvert --to script` (read + write a .py), the floor for just
reading and writing a notebook. Prints a table and writes JSON. Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
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
from promote.notebook import read  # noqa: E402
from promote.planning import plan  # noqa: E402
from promote.render import render  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
RUNS = itertools.count()
CELL_KINDS = (  # {b}: the first cell of the group of five, which defines df_{b}
    "df_{b} = df.assign(c{b}=df.a * {i})",
    "df_{b}.head()",
    "# some notes\nratio_{i} = df_{b}['c{b}'].mean() / (df_{b}['a'].std() + 1)",
    "fig, ax = plt.subplots()\nax.plot(df_{b}['c{b}'])",
    "total_{i} = sum(x * {i} for x in range(10))",
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
    node = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
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


def measure(notebook: Path, repeat: int, scratch: Path) -> dict[str, Any]:
    label = notebook.name if notebook.stem != "notebook" else _corpus_name(notebook)
    row: dict[str, Any] = {"notebook": label, "cells": 0}
    load_s, nb = best(lambda: read(notebook), repeat)
    row["cells"] = len(nb.cells)
    analyse_s, analysis = best(lambda: analyse(nb), repeat)
    try:
        plan_s, the_plan = best(lambda: plan(analysis, "bench"), repeat)
    except PromoteError as error:
        row.update(load=load_s, analyse=analyse_s, refused=error.message[:80])
        return row
    generate_s, _ = best(lambda: generate(the_plan), repeat)
    tracemalloc.start()
    plan(analyse(read(notebook)), "bench")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    render_s, _ = best(lambda: render(the_plan, scratch / f"project-{next(RUNS)}"), 1)
    row.update(
        load=load_s,
        analyse=analyse_s,
        plan=plan_s,
        generate=generate_s,
        render=render_s,
        up_to_render=load_s + analyse_s + plan_s + generate_s,
        peak_mib=peak / 2**20,
        nbconvert=_nbconvert(notebook, repeat, scratch),
    )
    return row


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
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "promote_speed.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        notebooks = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
        notebooks += [p for p in corpus_notebooks() if p.is_file() and p.stat().st_size]
        notebooks += [synthetic(n, scratch) for n in (100, 1000, 5000)]
        rows = [measure(nb, args.repeat, scratch) for nb in notebooks]
    columns = ["load", "analyse", "plan", "generate", "up_to_render", "render", "nbconvert"]
    header = "".join(f"{c:>13}" for c in columns)
    print(f"{'notebook':<34}{'cells':>6}{header}{'peak MiB':>10}")
    for row in rows:
        if "refused" in row:
            print(f"{row['notebook'][:33]:<34}{row['cells']:>6}  refused: {row['refused']}")
            continue
        cells = "".join(
            f"{row[c] * 1000:>11.1f}ms" if row.get(c) is not None else f"{'-':>13}" for c in columns
        )
        print(f"{row['notebook'][:33]:<34}{row['cells']:>6}{cells}{row['peak_mib']:>10.1f}")
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
