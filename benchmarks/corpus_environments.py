"""How many corpus notebooks run end to end with promote's pins, next to today's latest libraries.

Method. For every notebook of ../shared/corpus whose data is present (MANIFEST column
``executable_offline`` starts with "yes"):

1. promote's pins: ``promote.api.explain_pins`` (the resolver of ``promote`` and
   ``promote check --explain-pins``) resolves pins for the notebook's third-party imports;
2. a fresh virtual environment (uv, Python 3.11, the project's Python) gets what the generated
   project installs at run time (those pins, then the service's own pins such as pandas and
   numpy that the notebook's pins do not replace) plus ipykernel and nbclient;
3. a scratch copy of the notebook's folder is run top to bottom with nbclient in a kernel of that
   environment, with the corpus's budget (120 s for the whole notebook, cwd = the notebook's
   folder), exactly as the MANIFEST's runs were made;
4. ``promote NOTEBOOK --execute`` itself (``run_promote``) on another copy: the run in promote's
   own environment, then, when a library version makes it fail, promote's retries in fresh
   environments; it says where the notebook ran, and the project it writes pins that set.

"Today's latest" is the MANIFEST's ``latest-libs`` result (pandas 3.1, numpy 2.4,
scikit-learn 1.9, ...), run the same way by the corpus's authors. Notebooks whose libraries do not
install here (PyTorch: multi-gigabyte wheels) are listed and left out of both shares.

Not a CI test: it needs PyPI and takes minutes. Usage:

    .venv/bin/python benchmarks/corpus_environments.py [--only NAME ...] [--budget 120]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promote.api import explain_pins, service_pins
from promote.lock import find_uv
from promote.resolve import explain

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
HEAVY = ("torch",)  # not installed here: see the docstring
RUNNER = r"""
import sys, nbformat, nbclient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
path, folder, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
client = nbclient.NotebookClient(nb, timeout=budget, kernel_name="python3",
                                 resources={"metadata": {"path": folder}})
try:
    client.execute()
except CellExecutionError as error:
    lines = [l for l in str(error).splitlines() if l.strip()]
    print("FAIL " + (lines[-1] if lines else "error")[:200]); sys.exit(1)
except (CellTimeoutError, TimeoutError):
    print("FAIL timeout"); sys.exit(1)
except DeadKernelError as error:
    print("FAIL dead kernel " + str(error)[:100]); sys.exit(1)
print("OK")
"""


def rows() -> list[dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _key(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return re.sub(r"[-_.]+", "-", name.group(0) if name else requirement).lower()


def latest_ok(row: dict[str, str]) -> bool:
    return row["executed_ok"].split("|")[0].strip().startswith("latest-libs: yes")


def run_with_pins(row: dict[str, str], budget: int, work: Path) -> tuple[bool, str, str, float]:
    """(ran end to end, detail, the pins explained, seconds)."""
    notebook = CORPUS / row["name"] / row["notebook_relpath"]
    started = time.monotonic()
    resolution = explain_pins(notebook)
    ours = {_key(r) for r in resolution.requirements}
    # What the generated project installs: the notebook's pins, then the service's own pins.
    requirements = [*resolution.requirements, *(p for p in service_pins() if _key(p) not in ours)]
    uv = find_uv() or "uv"
    venv = work / f"venv-{row['name']}"
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         *requirements, "ipykernel", "nbclient", "nbformat"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if install.returncode != 0:
        error = install.stderr.strip().splitlines()[-1:] or ["?"]
        return False, f"install failed: {error[0][:160]}", explain(resolution), 0.0
    scratch = work / f"copy-{row['name']}"
    shutil.copytree(CORPUS / row["name"], scratch)
    copy = scratch / row["notebook_relpath"]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    try:
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-c", RUNNER, str(copy), str(copy.parent), str(budget)],
            capture_output=True, text=True, timeout=budget + 60, env=env, check=False,
        )  # fmt: skip
        detail = (result.stdout.strip().splitlines() or ["?"])[-1]
    except subprocess.TimeoutExpired:
        detail = f"FAIL timeout >{budget}s"
    seconds = time.monotonic() - started
    return detail == "OK", detail, explain(resolution), seconds


def run_promote(row: dict[str, str], budget: int, work: Path) -> tuple[str, str, float]:
    """``promote NOTEBOOK --execute`` on a scratch copy, in promote's own environment (its
    kernel is today's libraries, without what promote itself does not need), with its retries
    in fresh environments: (outcome, detail, seconds). Outcome: "kernel" (ran as it is),
    "fresh N" (ran in the Nth fresh environment), "failed", or "refused" (not promoted)."""
    scratch = work / f"promote-{row['name']}"
    shutil.copytree(CORPUS / row["name"], scratch)
    copy = scratch / row["notebook_relpath"]
    started = time.monotonic()
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    promote = str(Path(sys.executable).with_name("promote"))
    target = str(work / f"project-{row['name']}")
    command = [promote, str(copy), "-o", target, "--execute", "--no-lock",
               "--timeout", str(budget), "--total-timeout", str(budget)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    lines = [line for line in result.stderr.splitlines() if "IPKernelApp" not in line]
    fresh = [line for line in lines if line.startswith("fresh environment ")]
    if result.returncode == 0:
        ran = [line for line in fresh if line.rstrip().split(": ")[-1].startswith("ran in")]
        outcome = f"fresh {ran[-1].split()[2]}" if ran else "kernel"
        return outcome, (ran[-1] if ran else "ran in the kernel's environment")[:200], seconds
    errors = [line for line in lines if line.startswith("error:")]
    detail = " | ".join([*fresh, *errors[-1:]])[:400] or (lines[-1:] or ["?"])[0][:200]
    return ("refused" if result.returncode == 1 else "failed"), detail, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--budget", type=int, default=120, help="seconds for the whole notebook")
    parser.add_argument("--out", type=Path, help="also write a JSON report here")
    args = parser.parse_args()
    if not (CORPUS / "MANIFEST.tsv").is_file():
        print(f"no corpus at {CORPUS}")
        return 0
    candidates = [
        r for r in rows()
        if r["executable_offline"].startswith("yes") and (not args.only or r["name"] in args.only)
    ]  # fmt: skip
    report = []
    with tempfile.TemporaryDirectory() as scratch:
        for row in candidates:
            libraries = row["libraries"].split(",")
            if any(h in libraries for h in HEAVY):
                report.append({"name": row["name"], "skipped": "PyTorch does not install here"})
                print(f"skip {row['name']}: PyTorch", flush=True)
                continue
            ok, detail, pins, seconds = run_with_pins(row, args.budget, Path(scratch))
            outcome, executed, promote_seconds = run_promote(row, args.budget, Path(scratch))
            item = {
                "name": row["name"],
                "latest": latest_ok(row),
                "latest_detail": row["executed_ok"].split("|")[0].strip()[:160],
                "pins": ok,
                "pins_detail": detail,
                "seconds": round(seconds, 1),
                "explain": pins,
                "execute": outcome,
                "execute_detail": executed,
                "execute_seconds": round(promote_seconds, 1),
            }
            report.append(item)
            print(
                f"{row['name']:<34} latest {'yes' if item['latest'] else 'no ':<4} "
                f"pins {'yes' if ok else 'no '} {detail[:80]}\n"
                f"{'':<34} promote --execute: {outcome} {executed[:200]}",
                flush=True,
            )
    measured = [r for r in report if "skipped" not in r]
    latest = sum(1 for r in measured if r["latest"])
    pinned = sum(1 for r in measured if r["pins"])
    promoted = [r for r in measured if r["execute"] != "refused"]
    executed = sum(1 for r in promoted if r["execute"] != "failed")
    print(
        f"\n{len(measured)} notebooks with their data present and libraries installable: "
        f"{latest} run with today's latest libraries (MANIFEST), {pinned} with promote's pins; "
        f"promote --execute (with its retries) ran {executed} of the {len(promoted)} it promotes"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
