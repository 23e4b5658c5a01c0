"""The capture count: does `promote --execute` work, and do the generated project's tests
(parity included) pass in a fresh venv, for every example notebook and every corpus notebook
marked executable?

Run: `.venv/bin/python benchmarks/corpus_parity.py [--only NAME ...] [--json out.json]
[--keep DIR] [--no-kernel-venv] [--timeout S] [--total-timeout S]`

The notebooks run the way a user runs `promote NOTEBOOK --execute`: from the environment the
data scientist works in, with the notebooks' libraries at today's versions and promote installed
beside them, in the default kernel (that environment's own Python). The script builds that
environment once (a venv with `KERNEL_PACKAGES`, torch from /opt/wheels where that folder has it,
and promote from this checkout) and runs its `promote`. When a library version makes the notebook
fail there, promote's retries (issue 11: fresh uv environments with older pins) run it again, as
they do for a user. `--kernel NAME` is not used, so that the count is what plain
`promote NOTEBOOK --execute` gives (a named kernel does not turn the retries off: they start
from what that kernel's environment has installed).
`--no-kernel-venv` runs promote's own environment (.venv: no seaborn, statsmodels, graphviz)
instead. The Graphviz `dot` binary that some notebooks call is a system package: without it
they fail, and the reason says so.

For each notebook: its folder is copied into a scratch directory (a notebook may write files
beside it, and the corpus must stay untouched); `promote NOTEBOOK -o project --execute` runs
there (per cell 300 s, 900 s in all: `--timeout`, `--total-timeout`); when it succeeds the
project is installed in a fresh venv with uv (its hashed lock file, then the project, as
`make install` does) and its tests run (`pytest -q`). Prints one line per notebook with the
outcome and the reason of a failure (and whether the notebook ran in the user's environment or
in which fresh one), then the count, and writes the details as JSON. Slow (minutes per
notebook): not a CI test.

The corpus is `../shared/corpus` (or `$PROMOTE_CORPUS`); "executable" means the column
`executable_offline` of its MANIFEST.tsv starts with "yes".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "notebooks"
CORPUS = Path(os.environ.get("PROMOTE_CORPUS", ROOT.parent / "shared" / "corpus"))
BIN = Path(sys.executable).parent
STEP_TIMEOUT = 1800
# The libraries the executable notebooks import (MANIFEST.tsv, column `libraries`).
KERNEL_PACKAGES = (
    "ipykernel",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "statsmodels",
    "graphviz",
    "pydotplus",
    "torch",
)
WHEELS = Path("/opt/wheels")


def notebooks() -> list[tuple[str, Path, Path]]:
    """(name, folder to copy, notebook path relative to that folder)."""
    found = [(path.stem, EXAMPLES, Path(path.name)) for path in sorted(EXAMPLES.glob("*.ipynb"))]
    manifest = CORPUS / "MANIFEST.tsv"
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file, delimiter="\t"):
                if row["executable_offline"].strip().lower().startswith("yes"):
                    folder = CORPUS / row["name"]
                    found.append((row["name"], folder, Path(row["notebook_relpath"])))
    return found


def run(
    command: list[str], cwd: Path, timeout: int = STEP_TIMEOUT, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH"} and not key.startswith("PYTEST_")
    }
    environment.update(env)
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        return subprocess.CompletedProcess(command, -9, str(error.stdout or ""), "timed out")


def first_paragraph(text: str) -> str:
    """The ``error:`` line of promote's output, else its first lines."""
    lines = [line for line in text.strip().splitlines() if "[IPKernelApp]" not in line]
    errors = [line for line in lines if line.startswith("error:")]
    return " ".join(" ".join(errors or lines).split())[:600]


def failed_tests(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return "; ".join(lines)[:1200] or first_paragraph(output[-1500:])


def user_venv(scratch: Path) -> Path:
    """Build the data scientist's environment (the notebooks' libraries and promote); the folder
    of its executables."""
    venv = scratch / "user-venv"
    python = venv / "bin" / "python"
    uv = str(BIN / "uv")
    links = ["--find-links", str(WHEELS)] if WHEELS.is_dir() else []
    for step in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(python), *links, *KERNEL_PACKAGES],
        [uv, "pip", "install", "--quiet", "--python", str(python), str(ROOT)],
    ):
        built = run(step, scratch)
        if built.returncode != 0:
            raise SystemExit(f"cannot build the user's environment: {built.stderr[-2000:]}")
    return venv / "bin"


def where_it_ran(output: str) -> str:
    """promote's own words on the retries (the lines that name a fresh environment)."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if "fresh environment" in line
        or "no other environment tried" in line
        or "the run in the kernel's environment failed" in line
    ]
    return " ".join(lines)[:400]


def one(
    name: str,
    folder: Path,
    relative: Path,
    scratch: Path,
    tools: Path,
    timeouts: tuple[int, int] = (300, 900),
) -> dict[str, Any]:
    started = time.monotonic()
    work = scratch / name
    shutil.copytree(folder, work / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    project = work / "project"
    result: dict[str, Any] = {"name": name}
    promoted = run(
        [
            str(tools / "promote"),
            str(work / "source" / relative),
            "-o",
            str(project),
            "--execute",
            "--timeout",
            str(timeouts[0]),
            "--total-timeout",
            str(timeouts[1]),
        ],
        work,
        # the run in the user's environment and up to 3 retries, each with the whole budget
        timeout=4 * timeouts[1] + 600,
        PROMOTE_HOME=str(scratch / "home"),
    )
    result["environment"] = where_it_ran(promoted.stdout + promoted.stderr)
    result["promote_exit"] = promoted.returncode
    result["promote_seconds"] = round(time.monotonic() - started, 1)
    if promoted.returncode != 0:
        outcome = {1: "refused", 4: "execution failed"}.get(promoted.returncode, "promote error")
        result.update(outcome=outcome, reason=first_paragraph(promoted.stderr))
        return result
    uv = str(BIN / "uv")
    python = project / ".venv" / "bin" / "python"
    lock = "requirements.lock" if (project / "requirements.lock").is_file() else "requirements.txt"
    for step in (
        [uv, "venv", "--quiet", "--python", sys.executable, ".venv"],
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", lock],
        [uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps", "-e", "."],
    ):
        installed = run(step, project)
        if installed.returncode != 0:
            result.update(outcome="install failed", reason=first_paragraph(installed.stderr))
            return result
    tested = run(
        [str(project / ".venv" / "bin" / "pytest"), "-q", "-rfEs", "-p", "no:cacheprovider"],
        project,
    )
    summary = tested.stdout.strip().splitlines()[-1] if tested.stdout.strip() else ""
    result.update(tests=summary, seconds=round(time.monotonic() - started, 1))
    if tested.returncode == 0:
        skipped = [line for line in tested.stdout.splitlines() if line.startswith("SKIPPED")]
        parity = "skipped" if any("test_parity" in line for line in skipped) else "passed"
        result["skipped"] = sorted({line.split(": ", 1)[-1] for line in skipped})
        result.update(outcome="passed", parity=parity)
    else:
        result.update(outcome="tests failed", reason=failed_tests(tested.stdout))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names of the notebooks to run")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="scratch directory to keep (default: a temp)")
    parser.add_argument(
        "--no-kernel-venv", action="store_true", help="run promote from its own environment (.venv)"
    )
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--total-timeout", type=int, default=900, help="seconds per notebook")
    options = parser.parse_args()
    selected = [entry for entry in notebooks() if not options.only or entry[0] in options.only]
    results = []
    with tempfile.TemporaryDirectory(prefix="promote-corpus-") as temporary:
        scratch = options.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        tools = BIN if options.no_kernel_venv else user_venv(scratch)
        for name, folder, relative in selected:
            timeouts = (options.timeout, options.total_timeout)
            result = one(name, folder, relative, scratch, tools, timeouts)
            results.append(result)
            detail = result.get("reason") or result.get("tests", "")
            print(f"{name:36} {result['outcome']:17} {detail}", flush=True)
    passed = sum(result["outcome"] == "passed" for result in results)
    print(f"\n{passed} of {len(results)} notebooks: promote --execute and the project's tests pass")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
