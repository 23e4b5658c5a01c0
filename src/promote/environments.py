"""Other environments for a notebook that failed to run: ``promote --execute``'s retries.

When the run in the user's kernel fails with an error that the drift table or the traceback ties
to a library version (``analysis.failure``), ``retry`` runs the notebook again, each time in a
fresh virtual environment (uv, in a temporary folder removed afterwards; uv's cache makes this
seconds, not minutes) with the next candidate set of pins, a bounded number of times, and keeps
the first set in which it runs. The candidates, in order:

1. the pins ``promote`` resolved for the project (``resolve``: drift bounds, the versions the
   notebook shows), when they differ from the failed environment for an implicated library or
   bring a library it lacks;
2. each implicated library capped below the version that failed: as it was on the date the
   notebook was last run, when the notebook says (and that release has wheels for the project's
   Python), then before that version's major series, then before its minor (``step_back``).

A cap that no release with wheels for the Python meets is skipped without running anything.
When no environment runs the notebook, the failure reported is the kernel's, unless a fresh
environment got past it (``_got_past``: it stopped at a later cell, or at the same cell without
the kernel's error, by a timeout): then that environment's, which is what stands in the way.
This module does the I/O (virtual environments, installs, the kernel); the decisions come from
``analysis.failure`` and ``resolve``, which are pure or only ask the index.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.specifiers import SpecifierSet

from promote.analysis import Analysis
from promote.analysis.evidence import normal_name
from promote.analysis.failure import Implication, implicated
from promote.capture import Capture, ExecutionFailure
from promote.lock import find_uv
from promote.planning import Plan
from promote.resolve import (
    COMPILED,
    Pin,
    Resolution,
    newest_before,
    requirement_name,
    resolve,
    step_back,
)

__all__ = ["Attempt", "Retried", "kernel_environment", "retry"]

INSTALL_TIMEOUT = 900  # seconds for creating one environment and installing into it


@dataclass(frozen=True)
class Attempt:
    """One run of the notebook in a fresh environment."""

    number: int
    changed: tuple[str, ...]  # the pins that differ from the environment that failed before it
    outcome: str  # "ran in 12.3 s", the failure, or why nothing could be installed
    ran: bool = False


@dataclass(frozen=True)
class Retried:
    """What the retries found: the run to keep and the pins it ran with."""

    failure: ExecutionFailure  # the run in the kernel's environment
    # The first successful run; else the failure to report: the kernel's, or that of the fresh
    # environment that got past it (``_got_past``).
    ran: Capture | ExecutionFailure
    resolution: Resolution | None  # the pins of the environment it ran in, when it ran
    attempts: tuple[Attempt, ...]
    skipped: str = ""  # why no environment was tried


@dataclass
class _Environment:
    python: Path
    versions: dict[str, str]  # normalized distribution → version
    packages: dict[str, list[str]]  # top-level module → distributions


Runner = Callable[[Path | None], Capture | ExecutionFailure]


def retry(
    failure: ExecutionFailure,
    analysis: Analysis,
    plan: Plan,
    resolution: Resolution | None,
    *,
    run: Runner,
    service_pins: Sequence[str],
    installed: Mapping[str, str],
    packages: Mapping[str, Sequence[str]],
    retries: int = 3,
    notebook_only: Sequence[str] = (),
) -> Retried:
    """Run the notebook in up to ``retries`` fresh environments after ``failure``.

    ``run(python)`` runs the notebook with that interpreter (``capture.execute``); ``installed``
    and ``packages`` describe the environment that failed (promote's own, where the default
    kernel runs). ``notebook_only``: requirements of the notebook's imports the package does not
    need (a plotting library of an exploration cell); the environments have them, the project's
    pins do not.
    """
    if retries <= 0:
        return Retried(failure, failure, None, (), "retries are off (--retries 0)")
    tied = implicated(
        failure.error_name,
        failure.error_value,
        failure.details,
        failure.cell,
        analysis.bounds,
        packages,
    )
    if not tied:
        return Retried(failure, failure, None, (), "the error is not tied to a library version")
    uv = find_uv()
    if uv is None:
        return Retried(failure, failure, None, (), "uv is not installed")
    failed = {normal_name(k): v for k, v in installed.items()}
    requirements = list(resolution.requirements if resolution else plan.dependencies)
    named = {normal_name(requirement_name(r)) for r in requirements}
    # What only the notebook needs: not the package's, nor what the service pins anyway (numpy,
    # pandas: the project keeps the version the notebook ran with, not the service's own).
    service = {normal_name(requirement_name(p)) for p in service_pins}
    extra = {normal_name(requirement_name(r)) for r in notebook_only} - named - service
    requirements += [r for r in notebook_only if normal_name(requirement_name(r)) in extra]
    caps: dict[str, tuple[str, str]] = {}
    rungs: dict[str, list[str]] = {}
    then: dict[str, str | None] = {}  # each library's newest release at the last-run date
    tried: set[tuple[str, ...]] = set()
    attempts: list[Attempt] = []
    reported = failure
    first: Resolution | None = resolution
    if first is None or first.method != "uv" or extra:  # the environments need the index
        first = resolve(analysis, requirements, service_pins, installed=failed)
    for number in range(1, retries + 1):
        candidate = _next(
            first, tied, failed, caps, rungs, tried, analysis, requirements, service_pins, then
        )
        first = None  # the project's own pins are tried once, first
        if candidate is None:
            break
        tried.add(candidate.requirements)
        changed = tuple(
            pin.requirement
            for pin in candidate.pins
            if pin.version and failed.get(normal_name(pin.distribution)) != pin.version
        )
        with tempfile.TemporaryDirectory(prefix="promote-env-") as scratch:
            environment = _create(uv, Path(scratch), candidate, service_pins)
            if isinstance(environment, str):
                attempts.append(Attempt(number, changed, f"could not install: {environment}"))
                continue
            ran = run(environment.python)
        if isinstance(ran, Capture):
            attempts.append(Attempt(number, changed, f"ran in {ran.seconds:.1f} s", ran=True))
            kept = _ran_with(candidate, number, changed, extra)
            return Retried(failure, ran, kept, tuple(attempts))
        attempts.append(Attempt(number, changed, ran.message(Path(plan.notebook_name))))
        if _got_past(reported, ran):
            reported = _past(failure, ran, number, bool(analysis.drift))
        failed = environment.versions
        tied = implicated(
            ran.error_name,
            ran.error_value,
            ran.details,
            ran.cell,
            analysis.bounds,
            environment.packages,
        )
        if not tied:
            break
    skipped = "" if attempts else "no other set of pins meets the caps with wheels for Python"
    return Retried(failure, reported, None, tuple(attempts), skipped)


def _got_past(before: ExecutionFailure, later: ExecutionFailure) -> bool:
    """Whether a fresh environment's run (``later``) got further than ``before``: it stopped at
    a later cell, or at the same cell without the error ``before`` raised there (a timeout: the
    cell was still running)."""
    if before.cell is None or later.cell is None:
        return False
    return later.cell > before.cell or (
        later.cell == before.cell and bool(before.error_name) and later.timed_out
    )


def _past(
    failure: ExecutionFailure, later: ExecutionFailure, number: int, drift: bool
) -> ExecutionFailure:
    """``later`` (fresh environment ``number``'s failure) as the one to report, saying where it
    happened; when time stopped it, what more time or the modern forms of the drifted calls
    would give."""
    error = (
        f"in fresh environment {number} (the kernel's environment failed at cell {failure.cell}, "
        f"above): {later.error}"
    )
    hint = later.hint
    if later.timed_out:
        hint += (
            f" Fresh environment {number}'s pins did not raise the kernel's error: with more time "
            "the notebook may run with them, and the project keep them."
        )
        if drift:
            hint += (
                " Or apply the changes `promote check --modernize` lists, so that the notebook "
                "runs with today's libraries."
            )
    return replace(later, error=error, hint=hint)


def _next(
    first: Resolution | None,
    tied: Sequence[Implication],
    failed: Mapping[str, str],
    caps: dict[str, tuple[str, str]],
    rungs: dict[str, list[str]],
    tried: set[tuple[str, ...]],
    analysis: Analysis,
    requirements: Sequence[str],
    service_pins: Sequence[str],
    then: dict[str, str | None],
) -> Resolution | None:
    """The next set of pins to try, or None when the ladder is exhausted. ``then`` keeps what
    the index said of each library at the last-run date (``newest_before``): asked once."""
    if first is not None and first.requirements not in tried:
        pinned = {normal_name(p.distribution): p.version for p in first.pins}
        if any(t.missing or pinned.get(t.distribution) != failed.get(t.distribution) for t in tied):
            return first
    for implication in tied:  # each implicated library's caps, below the version that failed
        version = failed.get(implication.distribution)
        if version is None or implication.missing:
            continue
        ladder = [c for c in _ladder(implication.distribution, version, analysis, then) if c]
        rungs[implication.distribution] = [
            cap for cap in ladder if cap != caps.get(implication.distribution, ("",))[0]
        ]
    while any(rungs.values()):
        stepped = False
        for distribution, ladder in rungs.items():
            version = failed.get(distribution, "")
            if ladder and (distribution not in caps or _meets(caps[distribution][0], version)):
                cap = ladder.pop(0)
                caps[distribution] = (cap, f"{distribution} {version} failed to run the notebook")
                stepped = True
        if not stepped:
            return None
        candidate = resolve(analysis, requirements, service_pins, caps=caps, installed=dict(failed))
        if candidate.method != "uv":
            return None
        versions = {normal_name(p.distribution): p.version or "" for p in candidate.pins}
        unmet = [d for d, (cap, _) in caps.items() if not _meets(cap, versions.get(d, ""))]
        for distribution in unmet:  # no release with wheels meets the cap: try the next rung
            caps.pop(distribution)
        if not unmet and candidate.requirements not in tried:
            return candidate
    return None


def _ladder(
    distribution: str, version: str, analysis: Analysis, then: dict[str, str | None]
) -> list[str]:
    caps = []
    if analysis.evidence.saved:
        if distribution not in then:
            then[distribution] = newest_before(distribution, analysis.evidence.saved)
        newest = then[distribution]
        if newest and _meets(f"<{version}", newest):
            caps.append(f"<={newest}")
    return caps + list(step_back(version))


def _meets(specifier: str, version: str) -> bool:
    try:
        return bool(version) and SpecifierSet(specifier).contains(version, prereleases=True)
    except ValueError:
        return False


def _create(
    uv: str, folder: Path, resolution: Resolution, service_pins: Sequence[str]
) -> _Environment | str:
    """A virtual environment in ``folder`` with what the project would install (the pins, then
    the service's own pins they do not replace: pandas for ``load_iris(as_frame=True)``, skops
    for the capture of the model) and ipykernel; or why it could not be made."""
    venv = folder / "venv"
    python = venv / "bin" / "python"
    requirements = folder / "requirements.txt"
    named = {normal_name(p.distribution) for p in resolution.pins}
    service = [p for p in service_pins if normal_name(requirement_name(p)) not in named]
    lines = [*resolution.requirements, *service, "ipykernel"]
    requirements.write_text("\n".join(lines) + "\n")
    binary = sorted({normal_name(requirement_name(line)) for line in lines} & COMPILED)
    commands = [
        [uv, "venv", "--quiet", "--python", resolution.python, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements)]
        + [arg for name in binary for arg in ("--only-binary", name)],
    ]
    for command in commands:
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return f"{command[1]} took more than {INSTALL_TIMEOUT} s"
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            return " ".join(lines[-3:])[:300] or f"{command[1]} failed"
    facts = subprocess.run(
        [str(python), "-c", _FACTS], capture_output=True, text=True, timeout=120, check=False
    )
    if facts.returncode != 0:
        return f"the new environment's Python does not start: {facts.stderr.strip()[-200:]}"
    data = json.loads(facts.stdout)
    return _Environment(python, data["versions"], data["packages"])


def kernel_environment(kernel: str) -> tuple[dict[str, str], dict[str, list[str]]] | None:
    """What the environment of the Jupyter kernel named ``kernel`` has installed (normalized
    distribution → version, top-level module → distributions), when its interpreter is another
    than promote's; None when it is promote's own (``python3``, the default) or cannot be told
    (not a Python kernel, not found, does not start)."""
    import shutil
    import sys

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel).argv
    except (NoSuchKernel, OSError, ValueError):
        return None
    # jupyter_client runs these names with its own interpreter (format_kernel_cmd).
    own = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if not argv or argv[0] in own:
        return None
    python = shutil.which(argv[0])
    # Not resolved: a venv's python is a link to the interpreter it was made from.
    if python is None or Path(python).absolute() == Path(sys.executable).absolute():
        return None
    try:
        facts = subprocess.run(
            [python, "-c", _FACTS], capture_output=True, text=True, timeout=120, check=False
        )
        data = json.loads(facts.stdout) if facts.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return data["versions"], data["packages"]


_FACTS = """\
import importlib.metadata as m, json, re
print(json.dumps({
    "versions": {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
                 for d in m.distributions() if d.metadata["Name"]},
    "packages": m.packages_distributions(),
}))
"""


def _ran_with(
    resolution: Resolution, number: int, changed: Sequence[str], notebook_only: set[str]
) -> Resolution:
    """The project's pins from the set the notebook ran with, each changed one saying so."""
    pins = []
    for pin in resolution.pins:
        if normal_name(pin.distribution) in notebook_only:
            continue
        if pin.requirement in changed:
            why = f"the notebook ran with it (promote --execute, fresh environment {number})"
            pin = Pin(pin.distribution, pin.version, f"{why}; {pin.reason}", pin.specifier)
        pins.append(pin)
    note = (
        f"the notebook failed in the kernel's environment and ran in a fresh one with "
        f"{', '.join(changed) or 'the same pins'} (attempt {number})"
    )
    return replace(resolution, pins=tuple(pins), notes=(*resolution.notes, note))
