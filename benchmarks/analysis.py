"""Benchmark: analysis time and peak memory for generated notebooks of 100, 1,000 and 5,000 cells.

    .venv/bin/python benchmarks/analysis.py [--sizes 100 1000 5000] [--repeat 3] [--json PATH]

Each notebook repeats a realistic block of cells (imports, a markdown heading, a load, feature
lines, a split, a fit, an evaluation, a plot with a magic, a helper function, a print with
output) with fresh names per block, so later cells read what earlier ones define. Time covers
what ``promote check`` does before printing: ``notebook.reads`` (JSON, nbformat validation),
normalization of IPython syntax and ``analyse``; it is the best of ``--repeat`` runs. Peak
memory is measured separately with ``tracemalloc`` (which slows the run down).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from promote.analysis import analyse
from promote.notebook import reads

BLOCK: tuple[tuple[str, str], ...] = (
    ("markdown", "## Load the data (part {i})"),
    (
        "code",
        "%matplotlib inline\nimport numpy as np\nimport pandas as pd\n"
        "import matplotlib.pyplot as plt",
    ),
    (
        "code",
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score",
    ),
    ("code", "PATH_{i} = 'data/part_{i}.csv'\nTEST_SIZE = 0.2\nSEED = 42"),
    ("code", "df_{i} = pd.read_csv(PATH_{i})\ndf_{i}.head()"),
    ("markdown", "## Feature engineering"),
    (
        "code",
        "df_{i}['ratio'] = df_{i}.a / (df_{i}.b + 1)\n"
        "df_{i}['log_c'] = np.log1p(df_{i}.c)\n"
        "df_{i} = df_{i}.dropna()\n"
        "df_{i}.loc[df_{i}.ratio > 10, 'ratio'] = 10\n"
        "features_{i} = [c for c in df_{i}.columns if c != 'target']",
    ),
    (
        "code",
        "def clean_{i}(frame, limit=10):\n"
        '    """Clip and fill."""\n'
        "    out = frame.copy()\n"
        "    for col in out.columns:\n"
        "        out[col] = out[col].clip(upper=limit).fillna(0)\n"
        "    return out",
    ),
    ("code", "X_{i} = clean_{i}(df_{i}[features_{i}])\ny_{i} = df_{i}['target']"),
    (
        "code",
        "X_train_{i}, X_test_{i}, y_train_{i}, y_test_{i} = train_test_split(\n"
        "    X_{i}, y_{i}, test_size=TEST_SIZE, random_state=SEED\n)",
    ),
    ("markdown", "## Train"),
    (
        "code",
        "model_{i} = LogisticRegression(max_iter=200)\nmodel_{i}.fit(X_train_{i}, y_train_{i})",
    ),
    ("markdown", "## Evaluate"),
    (
        "code",
        "pred_{i} = model_{i}.predict(X_test_{i})\n"
        "acc_{i} = accuracy_score(y_test_{i}, pred_{i})\n"
        "print(f'accuracy: {{acc_{i}:.3f}}')",
    ),
    (
        "code",
        "fig, ax = plt.subplots(figsize=(6, 4))\n"
        "ax.hist(pred_{i}, bins=20)\nax.set_title('predictions {i}')\nplt.show()",
    ),
)


def notebook_text(cells: int) -> str:
    """Notebook JSON with exactly ``cells`` cells, repeating ``BLOCK`` with fresh names."""
    nodes: list[dict[str, Any]] = []
    count = 0
    i = 0
    while len(nodes) < cells:
        for kind, template in BLOCK:
            if len(nodes) == cells:
                break
            source = template.format(i=i)
            if kind == "markdown":
                nodes.append({"cell_type": "markdown", "metadata": {}, "source": source})
                continue
            count += 1
            outputs: list[dict[str, Any]] = []
            if "print(" in source:
                outputs = [{"output_type": "stream", "name": "stdout", "text": "accuracy: 0.912\n"}]
            nodes.append(
                {
                    "cell_type": "code",
                    "metadata": {},
                    "source": source,
                    "outputs": outputs,
                    "execution_count": count,
                }
            )
        i += 1
    return json.dumps(
        {
            "cells": nodes,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def run_once(text: str) -> tuple[float, float, int]:
    """Wall and CPU seconds for load + normalize + analyse, and the number of diagnostics.

    CPU time (this process's user + system) moves less than wall time on a shared machine.
    """
    start, cpu = time.perf_counter(), time.process_time()
    analysis = analyse(reads(text, "bench.ipynb"))
    return time.perf_counter() - start, time.process_time() - cpu, len(analysis.diagnostics)


def peak_memory(text: str) -> int:
    """Peak bytes allocated by Python during one load + normalize + analyse."""
    tracemalloc.start()
    try:
        analyse(reads(text, "bench.ipynb"))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(cells: int, repeat: int) -> dict[str, Any]:
    text = notebook_text(cells)
    runs = [run_once(text) for _ in range(repeat)]
    best = min(seconds for seconds, _, _ in runs)
    return {
        "cells": cells,
        "code_cells": text.count('"cell_type": "code"'),
        "notebook_bytes": len(text.encode()),
        "seconds_best": round(best, 4),
        "seconds_all": [round(seconds, 4) for seconds, _, _ in runs],
        "cpu_seconds_best": round(min(cpu for _, cpu, _ in runs), 4),
        "ms_per_cell": round(1000 * best / cells, 3),
        "peak_memory_mib": round(peak_memory(text) / 2**20, 1),
        "diagnostics": runs[0][2],
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).with_name("analysis-results.json")
    )
    args = parser.parse_args(argv)
    analyse(reads(notebook_text(20), "warmup.ipynb"))  # imports and IPython's first-use costs
    results = [measure(size, args.repeat) for size in args.sizes]
    print(
        f"{'cells':>6} {'code':>6} {'best s':>8} {'cpu s':>7} {'ms/cell':>8} {'peak MiB':>9} "
        f"{'diags':>6} {'load':>5}"
    )
    for row in results:
        print(
            f"{row['cells']:>6} {row['code_cells']:>6} {row['seconds_best']:>8.3f} "
            f"{row['cpu_seconds_best']:>7.3f} {row['ms_per_cell']:>8.3f} "
            f"{row['peak_memory_mib']:>9.1f} {row['diagnostics']:>6} {row['load_average_1min']:>5}"
        )
    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "repeat": args.repeat,
        "results": results,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
