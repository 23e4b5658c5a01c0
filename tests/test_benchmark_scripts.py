"""The benchmark scripts start and their pure parts work: argument parsing, the synthetic
notebooks, the command timing, the import-time and memory-map readers. The benchmarks
themselves are scripts (minutes long, figures that vary by machine), not tests."""

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def benchmarks() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import service_common beside them
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("promote_speed", "service_startup", "container_size")
        }
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize(
    ("script", "option"),
    [
        ("promote_speed.py", "--no-soorgeon"),
        ("service_startup.py", "--runs"),
        ("container_size.py", "--no-mlflow"),
        ("execute_overhead.py", "--repeat"),
        ("corpus_environments.py", "--budget"),
        ("corpus_parity.py", "--total-timeout"),
        ("bike_grid_search.py", "--grid"),
    ],
)
def test_each_script_parses_its_arguments(script: str, option: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage:") and option in completed.stdout


def test_synthetic_notebooks_have_the_cells_asked_and_h2_sections(
    benchmarks: dict[str, ModuleType], tmp_path: Path
) -> None:
    path = benchmarks["promote_speed"].synthetic(60, tmp_path)
    notebook = nbformat.read(path, as_version=4)
    assert len(notebook.cells) == 60
    headings = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"]
    assert headings == [25, 50]
    assert all(notebook.cells[i].source.startswith("## ") for i in headings)
    assert "model.fit" in notebook.cells[-2].source


def test_a_command_is_timed_and_a_failure_keeps_its_last_line(
    benchmarks: dict[str, ModuleType], tmp_path: Path
) -> None:
    timed = benchmarks["promote_speed"].timed_command
    ok = timed([sys.executable, "-c", "sum(range(10**6))"], tmp_path)
    assert ok["wall"] > 0 and ok["cpu"] > 0 and "error" not in ok
    failed = timed([sys.executable, "-c", "raise SystemExit('no sections found')"], tmp_path)
    assert failed["error"] == "no sections found"
    # The reason, not the last thing printed: soorgeon writes its progress to stdout and why
    # it refuses to stderr; promote's error line comes first.
    script = "import sys; print('Finished cleaning'); sys.exit('* uses global variables')"
    assert timed([sys.executable, "-c", script], tmp_path)["error"] == "* uses global variables"
    script = "import sys; sys.exit('error: Cannot promote nb.ipynb, cell 3:\\nsecond line')"
    assert timed([sys.executable, "-c", script], tmp_path)["error"].startswith("error: Cannot")


def test_importtime_output_is_summed_by_top_level_package(
    benchmarks: dict[str, ModuleType],
) -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import json, email.parser"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = benchmarks["service_startup"].parse_importtime(completed.stderr)
    packages = dict(summary["self_ms_by_package"])
    assert "email" in packages and "json" in packages
    assert summary["modules"] >= 5
    assert summary["total_self_ms"] >= packages["email"] > 0


def test_the_memory_map_accounts_for_the_resident_memory(
    benchmarks: dict[str, ModuleType],
) -> None:
    mapped = benchmarks["service_startup"].memory_map(os.getpid())
    rss = benchmarks["service_startup"].rss_mib(os.getpid())
    assert mapped["anonymous"] > 0 and mapped["files"] > 0
    assert abs(sum(mapped.values()) - rss) < 0.1 * rss
