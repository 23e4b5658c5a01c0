"""Print diagnostics and plans for people (text) and for tools (JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promote.analysis import Analysis, CellAnalysis
from promote.analysis.evidence import normal_name
from promote.analysis.forecast import DEFAULT_HORIZON, ForecastFit
from promote.analysis.readiness import ReadinessItem, readiness
from promote.diagnostics import Diagnostic
from promote.errors import RefusedNotebookError
from promote.planning import Inference, Plan, plan

if TYPE_CHECKING:
    from promote.environments import Retried
    from promote.verify import Verification

__all__ = [
    "CheckReport",
    "check_json",
    "check_report",
    "check_text",
    "diagnostic_line",
    "modernize_text",
    "plan_text",
    "retry_lines",
]


def diagnostic_line(path: str, diagnostic: Diagnostic) -> str:
    """``notebook.ipynb, cell 4: P002 warning: ... (hint)``."""
    where = path if diagnostic.cell is None else f"{path}, cell {diagnostic.cell}"
    line = f"{where}: {diagnostic.code} {diagnostic.severity}: {diagnostic.message}"
    return f"{line}. {diagnostic.hint}" if diagnostic.hint else line


SEVERITIES = (
    ("error", "Errors (block promotion)"),
    ("warning", "Warnings"),
    ("info", "Info"),
)
SCHEMA_VERSION = 1  # bump when docs/reference/check.schema.json changes incompatibly


@dataclass(frozen=True)
class CheckReport:
    """What ``promote check`` shows: the analysis, the readiness summary, and the verdict."""

    analysis: Analysis
    readiness: tuple[ReadinessItem, ...]
    refusal: str | None  # why ``promote`` would refuse the notebook, or None
    inference: Inference | None = None  # how the service would make the model's input
    fit_input: str = ""  # the name the model is fitted on, for the inference line
    fix: str = ""  # what to do about the refusal, with the cell it names

    @property
    def blocking(self) -> bool:
        """Whether something stops promotion (an error diagnostic or a refusal)."""
        return bool(self.analysis.errors) or self.refusal is not None

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0


def check_report(analysis: Analysis) -> CheckReport:
    """Build the report; planning is tried (it is pure) so check and promote agree on refusals."""
    try:
        planned = plan(analysis, "check")
    except RefusedNotebookError as error:
        where = f"cell {error.cell}: " if error.cell is not None and error.hint else ""
        fix = f"{where}{error.hint}" if error.hint else ""
        return CheckReport(analysis, readiness(analysis), error.reason, fix=fix)
    return CheckReport(analysis, readiness(analysis), None, planned.inference, planned.fit_input)


def check_text(result: CheckReport) -> str:
    """The report of ``promote check``: cells, model, readiness, then diagnostics by severity."""
    analysis = result.analysis
    path = str(analysis.notebook.path)
    lines = [f"{path}: {len(analysis.notebook.code_cells)} code cells"]
    for cell in analysis.cells:
        names = _defines(cell)
        defines = f" defines {', '.join(names)}" if names else ""
        lines.append(f"  cell {cell.index:>3}  {cell.role:<11}{defines}")
    lines.append(f"model: {_model_line(analysis)}")
    if result.inference is not None and analysis.forecast is not None:
        lines.append(f"serving: {forecast_text(analysis.forecast)}")
    elif result.inference is not None:
        lines.append(f"serving: {_inference_line(result.inference, result.fit_input)}")
    lines += _evidence_lines(analysis)
    lines += _bounds_lines(analysis)
    lines += ["", "Production readiness"]
    for item in result.readiness:
        lines.append(f"  [{'x' if item.ok else ' '}] {item.key:<10} {item.detail}")
    for severity, title in SEVERITIES:
        found = [x for x in analysis.diagnostics if x.severity == severity]
        if not found:
            continue
        lines += ["", f"{title}: {len(found)}"]
        for diagnostic in found:
            lines.append(f"  {_where(diagnostic):<18} {diagnostic.code}  {diagnostic.message}")
            if diagnostic.hint:
                lines.append(f"  {'':<18}       fix: {diagnostic.hint}")
    lines.append("")
    if result.refusal:
        lines.append(f"verdict: promote would refuse this notebook: {result.refusal}")
        if result.fix:
            lines.append(f"         fix: {result.fix}")
    elif analysis.errors:
        lines.append("verdict: errors above block promotion")
    else:
        counts = _counts(analysis)
        lines.append(
            f"verdict: ready to promote ({_plural(counts['warning'], 'warning')}, "
            f"{_plural(counts['info'], 'note')})"
        )
    return "\n".join(lines)


def _model_line(analysis: Analysis) -> str:
    """The model promote found, the one a tag chose among a loop's candidates, or why none."""
    model, loop = analysis.model, analysis.candidates
    if model and model.chosen:
        return (
            f"`{model.chosen}` (the tag of cell {model.cell}), fitted on `{model.fit_input}` "
            f"in a loop in cell {model.cell}"
        )
    if model:
        verb = "trained by a PyTorch loop" if model.framework == "torch" else "fitted"
        return f"`{model.name}` {verb} on `{model.fit_input}` in cell {model.cell}"
    if loop is not None:
        over = f" over `{loop.container}`" if loop.container else ""
        listed = f" ({loop.shown})" if loop.choices else ""
        return f"none chosen: cell {loop.cell} fits a model per candidate in a loop{over}{listed}"
    return "none found (no `.fit(...)` call)"


def _evidence_lines(analysis: Analysis) -> list[str]:
    """The versions the notebook shows: Python, then the distributions it imports."""
    evidence = analysis.evidence
    if not evidence.versions and not evidence.saved:
        return ["", "Evidence of versions: none (no kernel version, pins or versions in outputs)"]
    used = {normal_name(x.distribution) for x in analysis.dependencies} | {"python"}
    shown = [v for v in evidence.versions if v.distribution in used]
    lines = ["", "Evidence of versions"]
    for item in shown:
        where = "notebook metadata" if item.cell is None else f"cell {item.cell}"
        lines.append(
            f"  {item.distribution + ' ' + item.version:<24} {item.source}, {where}: {item.detail}"
        )
    others = {v.distribution for v in evidence.versions} - used
    if others:
        lines.append(
            f"  (and {_plural(len(others), 'other distribution')} named in outputs; "
            "--format json lists them)"
        )
    if evidence.saved:
        lines.append(f"  last run {evidence.saved} ({evidence.saved_source})")
    return lines


def _bounds_lines(analysis: Analysis) -> list[str]:
    """The versions the notebook's drifted calls work with, per library."""
    if not analysis.bounds:
        return []
    lines = ["", "Version bounds from API drift (P040)"]
    for bound in analysis.bounds:
        cells = ", ".join(map(str, bound.cells))
        note = "  CONFLICT: no single version" if bound.conflict else ""
        lines.append(
            f"  {bound.distribution + bound.specifier:<24} {len(bound.apis)} API(s), "
            f"cell(s) {cells}{note}"
        )
    return lines


def modernize_text(analysis: Analysis) -> str:
    """``promote check --modernize``: for each drift finding, the change for current libraries."""
    if not analysis.drift:
        return "Modernize: nothing to change (no API in the drift table is used)."
    lines = [f"Modernize: {_plural(len(analysis.drift), 'change')} to run on current libraries"]
    sources = {c.index: c.cell.source.splitlines() for c in analysis.cells}
    for match in analysis.drift:
        api = match.api
        lines.append(
            f"  cell {match.cell}, line {match.line}: {api.shown} "
            f"({api.distribution}{api.works}, changed in {api.removed_in})"
        )
        written = sources.get(match.cell, [])
        if 0 < match.line <= len(written):
            lines.append(f"      yours:  {written[match.line - 1].strip()}")
        lines.append(f"      change: {api.replacement}")
        lines.append("      before: " + "\n              ".join(_snippet(api.example)))
        lines.append("      after:  " + "\n              ".join(_snippet(api.modern)))
    return "\n".join(lines)


def _snippet(code: str) -> list[str]:
    return [
        line
        for line in code.strip().splitlines()
        if not line.startswith("import matplotlib") and line.strip() != 'matplotlib.use("Agg")'
    ]


def check_json(result: CheckReport) -> str:
    """The report of ``promote check --format json`` (docs/reference/check.schema.json)."""
    analysis = result.analysis
    model = analysis.model
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "notebook": str(analysis.notebook.path),
        "blocking": result.blocking,
        "refusal": result.refusal,
        "fix": result.fix or None,
        "inference": (
            {
                "sliced": bool(result.inference.function),
                "function": (
                    f"{result.inference.module}.{result.inference.function}"
                    if result.inference.function
                    else None
                ),
                "note": result.inference.note or None,
                "fitted": result.inference.learnt or None,
            }
            if result.inference is not None
            else None
        ),
        "counts": _counts(analysis),
        "cells": [
            {
                "cell": c.index,
                "role": c.role,
                "heading": c.heading,
                "defines": _defines(c),
                "reads": sorted({n for s in c.statements for n in s.reads}),
            }
            for c in analysis.cells
        ],
        "model": (
            {
                "name": model.name,
                "fit_input": model.fit_input,
                "cell": model.cell,
                "chosen": model.chosen or None,
            }
            if model
            else None
        ),
        "dependencies": [
            {
                "distribution": x.distribution,
                "modules": list(x.modules),
                "cell": x.cell,
                "version": x.version,
                "specifier": x.specifier,
                "version_source": x.source or None,
                "resolved_by": x.resolved_by,
                "requirement": x.requirement,
            }
            for x in analysis.dependencies
        ],
        "requirements": list(analysis.requirements),
        "evidence": analysis.evidence.as_dict(),
        "bounds": [
            {
                "distribution": b.distribution,
                "specifier": b.specifier,
                "apis": list(b.apis),
                "cells": list(b.cells),
                "conflict": b.conflict,
            }
            for b in analysis.bounds
        ],
        "drift": [
            {
                "api": m.api.id,
                "cell": m.cell,
                "line": m.line,
                "distribution": m.api.distribution,
                "works": m.api.works,
                "removed_in": m.api.removed_in,
                "replacement": m.api.replacement,
                "example": m.api.example.strip(),
                "modern": m.api.modern.strip(),
            }
            for m in analysis.drift
        ],
        "readiness": [{"key": x.key, "ok": x.ok, "detail": x.detail} for x in result.readiness],
        "diagnostics": [x.as_dict() for x in analysis.diagnostics],
    }
    return json.dumps(data, indent=2, sort_keys=True)


def _defines(cell: CellAnalysis) -> list[str]:
    return sorted({n for s in cell.statements if s.kind != "display" for n in s.binds})


def _where(diagnostic: Diagnostic) -> str:
    if diagnostic.cell is None:
        return "notebook"
    line = f", line {diagnostic.line}" if diagnostic.line else ""
    return f"cell {diagnostic.cell}{line}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _counts(analysis: Analysis) -> dict[str, int]:
    counts = {severity: 0 for severity, _ in SEVERITIES}
    for diagnostic in analysis.diagnostics:
        counts[diagnostic.severity] += 1
    return counts


def inference_text(plan: Plan) -> str:
    """What a request carries, and why (``planning/inference.py``)."""
    if plan.forecast is not None:
        return forecast_text(plan.forecast)
    return _inference_line(plan.inference, plan.fit_input)


def forecast_text(forecast: ForecastFit) -> str:
    """What a forecast project's requests carry (``analysis/forecast.py``)."""
    horizon = forecast.horizon or DEFAULT_HORIZON
    written = "the notebook's" if forecast.horizon else "a default"
    return (
        f'requests ask for a forecast, {{"steps": n}}: `{forecast.name}`, a statsmodels '
        f"{forecast.model_class}, forecasts the n values after the series `{forecast.endog}` "
        f"(example: {horizon} steps, {written} horizon)"
    )


def _inference_line(inference: Inference, fit_input: str) -> str:
    if inference.function:
        learnt = f", with what training fitted ({inference.learnt})" if inference.learnt else ""
        return (
            f"requests carry the loaded columns; the service applies "
            f"{inference.module}.{inference.function}(){learnt} before the model"
        )
    if inference.note:
        return f"requests carry the model's input ({fit_input}) as fitted: {inference.note}"
    return f"requests carry the model's input ({fit_input}): the loaded data, as fitted"


def plan_text(plan: Plan) -> str:
    """What ``promote --pretend`` shows: modules, functions, settings, dependencies."""
    lines = [f"project {plan.project_name} (package {plan.package_name}) from {plan.notebook_name}"]
    for module in plan.modules:
        lines.append(f"  {plan.package_name}/{module.name}.py")
        for function in module.functions:
            returns = ", ".join(function.returns) or (
                "<result>" if function.returns_result else "None"
            )
            lines.append(
                f"    {function.name}({', '.join(function.params)}) -> {returns}"
                f"    [cells {', '.join(map(str, function.cells))}]"
            )
    settings = ", ".join(sorted(plan.setting_names)) or "none"
    lines.append(f"  settings: {settings}")
    chosen = f" = {plan.model_expression} (a cell's tag chose it)" if plan.model_expression else ""
    lines.append(f"  model: {plan.model}{chosen} fitted on {plan.fit_input}")
    lines.append(f"  inference: {inference_text(plan)}")
    lines.append(f"  metrics: {', '.join(plan.metrics) or 'none'}")
    lines.append(f"  dependencies: {', '.join(plan.dependencies) or 'none'}")
    for source, target in plan.data_files:
        lines.append(f"  data: {source} -> {target}")
    return "\n".join(lines)


def verification_text(result: Verification) -> str:
    """The report of ``promote verify``: what was built, how it ran, what each probe saw."""
    build = f"{result.build_seconds:.1f} s" + (", offline from wheels/" if result.offline else "")
    prediction = json.dumps(result.prediction, default=str)
    lines = [
        f"image       {result.image} ({result.engine})",
        f"build       {build}",
        f"size        {result.image_bytes / 1e6:.0f} MB",
        f"run as      user {result.user}, read-only root file system, tmpfs /tmp, no capabilities",
        f"cold start  {result.cold_start_seconds:.2f} s from run to /ready",
        f"/predict    {prediction if len(prediction) <= 300 else prediction[:297] + '...'}",
    ]
    lines += [
        f"  {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}"
        for check in result.checks
    ]
    if result.ok:
        lines.append(
            f"verified: the container was removed; the image {result.image} is kept "
            f"(run it with `docker run --rm --read-only --tmpfs /tmp -p 127.0.0.1:8080:8080 "
            f"{result.image}`, remove it with `docker rmi {result.image}`)"
        )
    return "\n".join(lines)


def retry_lines(retried: Retried) -> list[str]:
    """What ``promote --execute`` tried after the run in the kernel's environment failed."""
    if not retried.attempts and not retried.skipped:
        return []
    lines = []
    # Unless the kernel's failure is the error promote reports last, say it here.
    if retried.ran is not retried.failure:
        failure = retried.failure
        where = f" at cell {failure.cell}" if failure.cell else ""
        lines.append(f"the run in the kernel's environment failed{where}: {failure.error}")
    for attempt in retried.attempts:
        pins = ", ".join(attempt.changed) or "the same pins"
        lines.append(f"fresh environment {attempt.number} ({pins}): {attempt.outcome}")
    if retried.skipped:
        lines.append(f"no other environment tried: {retried.skipped}")
    return lines
