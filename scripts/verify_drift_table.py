"""Check every fact of src/promote/data/api_drift.toml against the real libraries.

For each entry verified by environments (``verify = {good = ..., bad = ...}``) this runs the
entry's ``example`` with the last version in range (it must succeed) and with the first version
out of range (it must fail), and runs its ``modern`` rewrite with today's latest versions (it must
succeed). Environments are virtual environments made with uv (its cache keeps reruns fast) under
``--cache`` (default: $TMPDIR/promote-drift-envs); old Pythons come from ``uv python find`` or
pyenv. Entries verified against documentation only (``docs = true``) are listed, not run.

Needs network access to PyPI the first time. Not a CI test: it takes minutes and downloads old
wheels. Usage:

    .venv/bin/python scripts/verify_drift_table.py [--only ID ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promote.analysis.drift import DriftApi, VerifyEnv, load_envs, load_table
from promote.lock import find_uv

TIMEOUT = 180


def interpreter(version: str) -> str:
    """A Python executable for ``version`` ("3.7")."""
    uv = find_uv() or "uv"
    found = subprocess.run(
        [uv, "python", "find", version], capture_output=True, text=True, check=False
    )
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip()
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*/bin/python")):
        return str(candidate)
    raise SystemExit(f"no Python {version} found (uv python find, pyenv)")


def environment(env: VerifyEnv, cache: Path) -> Path:
    """The virtual environment for ``env``, created on first use."""
    folder = cache / env.name
    stamp = folder / ".requirements"
    wanted = "\n".join((env.python, *env.requirements))
    if stamp.is_file() and stamp.read_text() == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    uv = find_uv() or "uv"
    subprocess.run([uv, "venv", "-q", "--python", interpreter(env.python), str(folder)], check=True)
    result = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(folder / "bin" / "python"), *env.requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cannot install {env.name}: {result.stderr.strip()[-400:]}")
    stamp.write_text(wanted)
    return folder


def run(folder: Path, code: str) -> tuple[bool, str]:
    """Run ``code`` in the environment; (succeeded, last line of its error)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            result = subprocess.run(
                [str(folder / "bin" / "python"), "-W", "ignore", "-c", code],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False, f"timeout after {TIMEOUT}s"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return result.returncode == 0, (lines[-1][:160] if lines else "")


def verify(entry: DriftApi, envs: dict[str, VerifyEnv], cache: Path) -> tuple[bool, str]:
    """Whether the entry's facts hold, and a one-line account."""
    if entry.verify.get("docs"):
        return True, f"docs only: {entry.source}"
    good, bad = envs[entry.verify["good"]], envs[entry.verify["bad"]]
    try:
        ok_good, error_good = run(environment(good, cache), entry.example)
        ok_bad, error_bad = run(environment(bad, cache), entry.example)
        ok_modern, error_modern = run(environment(envs["latest"], cache), entry.modern)
    except RuntimeError as error:
        return False, str(error)
    problems = []
    if not ok_good:
        problems.append(f"example fails in {good.name} ({error_good})")
    if ok_bad:
        problems.append(f"example still runs in {bad.name}")
    if not ok_modern:
        problems.append(f"modern fails in latest ({error_modern})")
    if problems:
        return False, "; ".join(problems)
    return True, f"runs in {good.name}, fails in {bad.name} with {error_bad}; modern runs in latest"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="entry ids to check (default: all)")
    default_cache = Path(tempfile.gettempdir()) / "promote-drift-envs"
    parser.add_argument("--cache", type=Path, default=default_cache)
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    envs = load_envs()
    entries = [e for e in load_table() if not args.only or e.id in args.only]
    started = time.monotonic()
    lines, failed = [], 0
    for entry in entries:
        ok, account = verify(entry, envs, args.cache)
        failed += not ok
        verdict = "ok  " if ok else "FAIL"
        line = f"{verdict} {entry.id:<42} {entry.distribution} {entry.works}: {account}"
        print(line, flush=True)
        lines.append(line)
    summary = (
        f"{len(entries) - failed}/{len(entries)} entries verified "
        f"({sum(1 for e in entries if e.verify.get('docs'))} against documentation only) "
        f"in {time.monotonic() - started:.0f} s"
    )
    print(summary)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join([*lines, summary]) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
