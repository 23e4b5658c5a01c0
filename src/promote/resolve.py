"""Pins in which the notebook's code works: from API-drift bounds and the notebook's evidence.

``resolve`` turns the plan's requirements into exact pins with ``uv pip compile`` for the
project's Python, trying the most faithful set first and relaxing it step by step:

1. each distribution at the version the notebook shows (a ``pip install`` pin, a printed
   ``__version__``, pip's output) when that version fits the drift bounds; else within the bounds
   (uv picks the newest); else the version installed where promote runs; the service's own pins
   (FastAPI, pandas, numpy, ...) as the template has them;
2. the same without the versions seen in outputs and with the service's pins free, so that an old
   pandas can bring the numpy it needs;
3. the same with the notebook's unbounded distributions free too;
4. if that still fails, the bounds that no version with wheels for the project's Python can meet
   are dropped, each reported (the notebook then needs the changes ``promote check --modernize``
   lists).

Compiled distributions are required as wheels (``--only-binary``) so that a pin never means a
build from source. Every pin carries a one-line reason (``--explain-pins``). Without an index
(offline), the pins are the installed versions where they meet the bounds, the bounds themselves
otherwise, and the reason says so.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from promote.analysis import Analysis
from promote.analysis.drift import load_abi_rules
from promote.analysis.evidence import normal_name
from promote.lock import find_uv

__all__ = [
    "Pin",
    "Resolution",
    "explain",
    "needed",
    "newest_before",
    "requirement_name",
    "resolve",
    "step_back",
]

# Distributions that ship compiled code: never pin a version that has no wheel for the Python.
COMPILED = frozenset(
    {
        "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "statsmodels", "xgboost",
        "lightgbm", "tensorflow", "torch", "pyarrow", "contourpy", "kiwisolver", "pydantic-core",
    }
)  # fmt: skip
# Distributions whose next major release kept the API the notebook was written for, so a
# version the notebook shows does not cap its major version (the era rule, ``_lines``):
# PyTorch 2.0 kept 1.x's API, and 1.x releases have no wheels for today's Pythons.
SAME_API_ACROSS_MAJORS = frozenset({"torch"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


@dataclass(frozen=True)
class Pin:
    """One exact pin of the generated project, and why it is this version."""

    distribution: str
    version: str | None
    reason: str
    specifier: str = ""  # when there is no exact version: the range it must stay in

    @property
    def requirement(self) -> str:
        if self.version:
            return f"{self.distribution}=={self.version}"
        return f"{self.distribution}{self.specifier}"


@dataclass(frozen=True)
class Resolution:
    """The pins of the notebook's distributions (and service pins they override)."""

    python: str
    pins: tuple[Pin, ...]
    method: str  # "uv" (resolved against the index) or "offline"
    notes: tuple[str, ...] = field(default=())  # fallbacks taken, bounds dropped

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(p.requirement for p in self.pins)


@dataclass(frozen=True)
class _Want:
    distribution: str
    bound: str  # PEP 440 specifier from the drift table ("" when none)
    bound_reason: str
    shown: str | None  # a version the notebook shows (pip pin, printed, pip output)
    shown_reason: str
    pip_pin: bool  # the notebook's own `pip install x==1.2`
    installed: str | None
    planned: str  # the plan's requirement line (the version installed here, or a pip pin)


def needed(analysis: Analysis) -> bool:
    """Whether the notebook says anything the installed versions may contradict.

    True when it uses a drifted API (bounds) or shows the version of a distribution; otherwise
    the plan's pins (the versions installed where promote runs) stand as they are.
    """
    return bool(analysis.bounds) or any(
        v.distribution != "python" for v in analysis.evidence.versions
    )


def resolve(
    analysis: Analysis,
    requirements: Sequence[str],
    service_pins: Sequence[str],
    *,
    python: str = "3.11",
    installed: Mapping[str, str] | None = None,
    index: bool = True,
    timeout: int = 120,
    caps: Mapping[str, tuple[str, str]] | None = None,
) -> Resolution:
    """Exact pins for ``requirements`` (the plan's) in which the notebook's calls work.

    With ``index=False`` (``--no-lock``) nothing is resolved: the plan's pins are kept where
    they meet the drift bounds, and replaced by the bounds where they do not. ``caps``
    (distribution → specifier and why) bound distributions further: versions a run of the
    notebook failed with (``environments.retry``); a capped distribution the requirements do
    not name is added to them.
    """
    wants = _wants(analysis, requirements, installed or {}, caps or {})
    service = {normal_name(requirement_name(p)): p for p in service_pins}
    uv = find_uv()
    if not index:
        return _offline(wants, python, "--no-lock")
    if uv is None:
        return _offline(wants, python, "uv is not installed")
    notes: list[str] = []
    attempts = [  # (label, shown, era, installed, keep the service's pins)
        ("as the notebook shows them", True, False, True, True),
        ("in the era the notebook shows", False, True, True, False),
        ("with unbounded distributions free", False, True, False, False),
        ("within the drift bounds only", False, False, False, False),
    ]
    extra: dict[str, str] = {}  # binary-compatibility constraints found on the way
    error = ""
    for label, shown, era, installed_, keep_service in attempts:
        lines = _lines(wants, shown=shown, era=era, installed=installed_)
        compiled, error = _compile_compatible(
            uv, lines, service, keep_service, wants, python, timeout, extra
        )
        if compiled is not None:
            if label != attempts[0][0]:
                notes.append(f"resolved {label} (the stricter sets before it have no solution)")
            notes.extend(f"pinned {text}" for text in extra.values())
            return _resolution(wants, service, compiled, python, notes, label, extra)
        if _offline_error(error):
            return _offline(wants, python, f"no package index ({error})")
    # Bounds (and pip pins) that no wheel for this Python can meet are dropped, each reported.
    kept = []
    for want in wants:
        if (
            want.pip_pin
            and want.shown
            and not _compiles(uv, want, f"=={want.shown}", python, timeout)
        ):
            notes.append(
                f"{want.distribution}=={want.shown} ({want.shown_reason}) has no wheels for "
                f"Python {python}: pinned a newer version instead"
            )
            want = dataclasses.replace(want, shown=None, shown_reason="", pip_pin=False)
        if want.bound and not _compiles(uv, want, want.bound, python, timeout):
            notes.append(
                f"{want.distribution}{want.bound} ({want.bound_reason}) has no wheels for "
                f"Python {python}: pinned the newest version instead; the notebook needs the "
                "changes `promote check --modernize` lists"
            )
            want = dataclasses.replace(want, bound="", bound_reason="", shown=None, shown_reason="")
        kept.append(want)
    lines = _lines(kept, shown=False, era=False, installed=False)
    compiled, error = _compile_compatible(uv, lines, service, False, kept, python, timeout, extra)
    if compiled is not None:
        notes.extend(f"pinned {text}" for text in extra.values())
        return _resolution(kept, service, compiled, python, notes, "fallback", extra)
    notes.append(f"uv could not resolve the notebook's requirements: {error}")
    return _offline(wants, python, "no consistent set found", notes)


def explain(resolution: Resolution) -> str:
    """The text of ``--explain-pins``: each pin with its reason, then the notes."""
    lines = [f"Pins for Python {resolution.python} ({resolution.method}):"]
    width = max((len(p.requirement) for p in resolution.pins), default=0)
    for pin in resolution.pins:
        lines.append(f"  {pin.requirement:<{width}}  {pin.reason}")
    for note in resolution.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


# -- what the notebook wants ---------------------------------------------------------------------
def _wants(
    analysis: Analysis,
    requirements: Sequence[str],
    installed: Mapping[str, str],
    caps: Mapping[str, tuple[str, str]],
) -> list[_Want]:
    bounds = {normal_name(b.distribution): b for b in analysis.bounds if not b.conflict}
    deps = {normal_name(d.distribution): d for d in analysis.dependencies}
    named = {normal_name(requirement_name(r)) for r in requirements}
    out = []
    for requirement in [*requirements, *(c for c in caps if normal_name(c) not in named)]:
        name = requirement_name(requirement)
        key = normal_name(name)
        bound = bounds.get(key)
        spec = bound.specifier if bound else ""
        why = (
            f"needed by {', '.join(bound.apis)} (cell {', '.join(map(str, bound.cells))})"
            if bound
            else ""
        )
        cap, cap_reason = next((c for n, c in caps.items() if normal_name(n) == key), ("", ""))
        if cap:
            spec = ",".join(part for part in (spec, cap) if part)
            why = "; ".join(part for part in (why, cap_reason) if part)
        dep = deps.get(key)
        pip_pin = bool(dep and dep.source == "pip" and dep.version)
        shown, shown_reason = None, ""
        if pip_pin and dep and dep.version:
            shown, shown_reason = dep.version, f"the notebook's `pip install` (cell {dep.cell})"
        else:
            seen = analysis.evidence.version_of(name)
            if seen is not None:
                where = "the notebook's metadata" if seen.cell is None else f"cell {seen.cell}"
                shown, shown_reason = (
                    seen.version,
                    f"the notebook ran with it ({seen.source}, {where})",
                )
        if shown and spec and not _contains(spec, shown) and not pip_pin:
            shown, shown_reason = None, ""
        out.append(
            _Want(
                name,
                spec,
                why,
                shown,
                shown_reason,
                pip_pin,
                _public(installed.get(key)),
                requirement,
            )
        )
    return out


def _lines(wants: Sequence[_Want], *, shown: bool, era: bool, installed: bool) -> dict[str, str]:
    """distribution → requirement line for one attempt.

    ``era``: a version the notebook shows caps its major version (``1.1.2`` → ``<2``; for 0.x,
    its minor: ``0.11.1`` → ``<0.12``), the newest release of the API the notebook was written for.
    """
    out = {}
    for want in wants:
        if want.shown and (want.pip_pin or shown):
            out[want.distribution] = f"{want.distribution}=={want.shown}"
        elif (
            era
            and want.shown
            and _era(want.shown)
            and normal_name(want.distribution) not in SAME_API_ACROSS_MAJORS
        ):
            clauses = [c for c in (want.bound, _era(want.shown)) if c]
            out[want.distribution] = f"{want.distribution}{','.join(clauses)}"
        elif want.bound:
            out[want.distribution] = f"{want.distribution}{want.bound}"
        elif installed and want.installed:
            out[want.distribution] = f"{want.distribution}=={want.installed}"
        else:
            out[want.distribution] = want.distribution
    return out


def _public(version: str | None) -> str | None:
    """``2.13.0+cpu`` → ``2.13.0``: a local version label names a build no index has."""
    if version is None:
        return None
    try:
        return Version(version).public
    except InvalidVersion:
        return version


def _era(version: str) -> str:
    try:
        parsed = Version(version)
    except InvalidVersion:
        return ""
    if parsed.major == 0:
        return f"<0.{parsed.minor + 1}"
    return f"<{parsed.major + 1}"


def step_back(version: str) -> tuple[str, ...]:
    """Caps to try below ``version``, one a run of the notebook failed with, the likeliest
    first: before its major series (``2.2.3`` → ``<2``, where removals gather), then before its
    minor (``<2.2``); for 0.x releases, before the minor only."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return ()
    caps = []
    if parsed.major >= 1:
        caps.append(f"<{parsed.major}")
    if parsed.minor >= 1:
        caps.append(f"<{parsed.major}.{parsed.minor}")
    return tuple(caps)


# -- uv ------------------------------------------------------------------------------------------
def newest_before(
    distribution: str, date: str, *, python: str = "3.11", timeout: int = 60
) -> str | None:
    """The newest release of ``distribution`` uploaded before ``date`` (YYYY-MM-DD) that has
    what ``python`` needs (wheels, for compiled distributions); None if there is none or no
    index."""
    uv = find_uv()
    if uv is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "requirements.in"
        source.write_text(distribution + "\n", encoding="utf-8")
        command = [uv, "pip", "compile", str(source), "--python-version", python, "--quiet",
                   "--no-header", "--no-annotate",
                   "--exclude-newer-package", f"{distribution}={date}T00:00:00Z"]  # fmt: skip
        if normal_name(distribution) in COMPILED:
            command += ["--only-binary", distribution]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return None
    pins = {normal_name(n): v for n, v in _PIN.findall(result.stdout)}
    return pins.get(normal_name(distribution)) if result.returncode == 0 else None


def _compile_compatible(
    uv: str,
    lines: Mapping[str, str],
    service: Mapping[str, str],
    keep_service: bool,
    wants: Sequence[_Want],
    python: str,
    timeout: int,
    extra: dict[str, str],
) -> tuple[dict[str, str] | None, str]:
    """``_compile``, then again with the binary-compatibility rules the result breaks."""
    for _ in range(4):
        merged = dict(lines)
        for requirement in extra:
            key = requirement_name(requirement)
            before = merged.get(key, key)
            joiner = "," if before != key else ""
            merged[key] = f"{before}{joiner}{requirement[len(key) :]}"
        compiled, error = _compile(uv, merged, service, keep_service, wants, python, timeout)
        if compiled is None:
            return None, error
        broken = _abi_needs(compiled)
        new = {r: why for r, why in broken.items() if r not in extra}
        if not new:
            return compiled, ""
        extra.update(new)
    return None, "binary-compatibility rules do not settle"


def _abi_needs(compiled: Mapping[str, str]) -> dict[str, str]:
    """Requirements the table's [[abi]] rules add for these versions, with the reason."""
    out: dict[str, str] = {}
    for rule in load_abi_rules():
        version = compiled.get(normal_name(rule.distribution))
        needed_name = normal_name(requirement_name(rule.requires))
        needed_version = compiled.get(needed_name)
        if version is None or not _contains(rule.versions, version):
            continue
        wanted = rule.requires[len(requirement_name(rule.requires)) :]
        if needed_version is None or _contains(wanted, needed_version):  # not in the set, or fits
            continue
        out[rule.requires] = (
            f"{rule.requires}: {rule.distribution} {version} needs it ({rule.source})"
        )
    return out


def _compile(
    uv: str,
    lines: Mapping[str, str],
    service: Mapping[str, str],
    keep_service: bool,
    wants: Sequence[_Want],
    python: str,
    timeout: int,
) -> tuple[dict[str, str] | None, str]:
    """Resolve; (normalized name → version, "") or (None, the error's last line)."""
    ours = {normal_name(n) for n in lines}
    text = list(lines.values())
    for key, pin in service.items():
        if key not in ours:
            text.append(pin if keep_service else requirement_name(pin))
    binary = sorted(
        {normal_name(w.distribution) for w in wants} & COMPILED | (set(service) & COMPILED)
    )
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "requirements.in"
        source.write_text("\n".join(text) + "\n", encoding="utf-8")
        command = [uv, "pip", "compile", str(source), "--python-version", python, "--quiet",
                   "--no-header", "--no-annotate"]  # fmt: skip
        for name in binary:
            command += ["--only-binary", name]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return None, f"uv pip compile took more than {timeout} s"
    if result.returncode != 0:
        lines_ = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return None, " ".join(lines_[-3:])[:300]
    return {normal_name(n): v for n, v in _PIN.findall(result.stdout)}, ""


def _compiles(uv: str, want: _Want, specifier: str, python: str, timeout: int) -> bool:
    """Whether ``want.distribution`` with ``specifier`` alone has wheels for ``python``."""
    lines = {want.distribution: f"{want.distribution}{specifier}"}
    found, _ = _compile(uv, lines, {}, False, [want], python, timeout)
    return found is not None


def _offline_error(error: str) -> bool:
    return any(
        word in error.lower()
        for word in ("failed to fetch", "connect", "dns", "network", "offline", "timed out")
    )


def _resolution(
    wants: Sequence[_Want],
    service: Mapping[str, str],
    compiled: Mapping[str, str],
    python: str,
    notes: list[str],
    relaxed: str,
    extra: Mapping[str, str] | None = None,
) -> Resolution:
    pins = []
    ours = set()
    for want in wants:
        key = normal_name(want.distribution)
        ours.add(key)
        version = compiled.get(key)
        pins.append(Pin(want.distribution, version, _reason(want, version, relaxed)))
    for key, pin in sorted(service.items()):
        version = compiled.get(key)
        if key in ours or version is None or pin == f"{requirement_name(pin)}=={version}":
            continue
        pins.append(
            Pin(
                requirement_name(pin),
                version,
                f"the service pins {pin}; this version fits the notebook's pins",
            )
        )
        ours.add(key)
    for requirement, why in sorted((extra or {}).items()):
        key = normal_name(requirement_name(requirement))
        version = compiled.get(key)
        if key not in ours and key not in service and version is not None:
            pins.append(Pin(requirement_name(requirement), version, f"compatibility: {why}"))
            ours.add(key)
    return Resolution(python, tuple(pins), "uv", tuple(notes))


def _reason(want: _Want, version: str | None, relaxed: str) -> str:
    if want.shown and version == want.shown:
        return want.shown_reason
    if want.shown and "era" in relaxed and _contains(_era(want.shown), version or ""):
        within = f" and {want.bound}" if want.bound and want.bound != _era(want.shown) else ""
        where = want.shown_reason.split("(", 1)[-1].rstrip(")")
        return (
            f"the notebook ran with {want.shown} ({where}), which has no wheels for this "
            f"Python: newest {_era(want.shown)}{within}"
        )
    if want.bound:
        return f"newest with wheels for this Python within {want.bound}: {want.bound_reason}"
    if want.installed and version == want.installed:
        return "installed where promote ran"
    if relaxed == "fallback" and not want.bound:
        return "newest that fits the other pins (its bound was dropped: see the notes)"
    return "newest that fits the other pins"


def _offline(
    wants: Sequence[_Want], python: str, why: str, notes: Sequence[str] = ()
) -> Resolution:
    """Without an index: the plan's pin where it meets the bound, else the bound itself."""
    pins = []
    for want in wants:
        planned = _PIN.match(want.planned)
        version = planned.group(2) if planned else None
        if version and (not want.bound or _contains(want.bound, version)):
            pins.append(Pin(want.distribution, version, f"installed here or pinned by pip ({why})"))
        elif want.bound:
            reason = f"range {want.bound}: {want.bound_reason} ({why})"
            pins.append(Pin(want.distribution, None, reason, want.bound))
        else:
            pins.append(
                Pin(
                    want.distribution,
                    None,
                    f"unpinned ({why})",
                    want.planned[len(want.distribution) :],
                )
            )
    out = [*notes, f"{why}: versions are not resolved against a package index"]
    return Resolution(python, tuple(pins), "offline", tuple(out))


def _contains(specifier: str, version: str) -> bool:
    try:
        return SpecifierSet(specifier).contains(version, prereleases=True)
    except InvalidVersion:
        return False


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else requirement.strip()
