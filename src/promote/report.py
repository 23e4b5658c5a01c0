"""Print diagnostics and plans for people (text) and for tools (JSON)."""

from __future__ import annotations

import json
from typing import Any

from promote.analysis import Analysis
from promote.diagnostics import Diagnostic
from promote.planning import Plan

__all__ = ["check_json", "check_text", "diagnostic_line", "plan_text"]


def diagnostic_line(path: str, diagnostic: Diagnostic) -> str:
    """``notebook.ipynb, cell 4: P002 warning: ... (hint)``."""
    where = path if diagnostic.cell is None else f"{path}, cell {diagnostic.cell}"
    line = f"{where}: {diagnostic.code} {diagnostic.severity}: {diagnostic.message}"
    return f"{line}. {diagnostic.hint}" if diagnostic.hint else line


def check_text(analysis: Analysis) -> str:
    """The report of ``promote check``: one line per cell role, then the diagnostics."""
    path = str(analysis.notebook.path)
    lines = [f"{path}: {len(analysis.notebook.code_cells)} code cells"]
    for cell in analysis.cells:
        names = sorted({n for s in cell.statements if s.kind != "display" for n in s.binds})
        defines = f" defines {', '.join(names)}" if names else ""
        lines.append(f"  cell {cell.index:>3}  {cell.role:<11}{defines}")
    if analysis.model:
        lines.append(
            f"model: `{analysis.model.name}` fitted on `{analysis.model.fit_input}` "
            f"in cell {analysis.model.cell}"
        )
    else:
        lines.append("model: none found (no `.fit(...)` call)")
    for diagnostic in analysis.diagnostics:
        lines.append(diagnostic_line(path, diagnostic))
    if not analysis.diagnostics:
        lines.append("no problems found")
    return "\n".join(lines)


def check_json(analysis: Analysis) -> str:
    """The machine-readable report of ``promote check --format json``."""
    data: dict[str, Any] = {
        "notebook": str(analysis.notebook.path),
        "cells": [
            {
                "cell": c.index,
                "role": c.role,
                "defines": sorted(
                    {n for s in c.statements if s.kind != "display" for n in s.binds}
                ),
                "reads": sorted({n for s in c.statements for n in s.reads}),
            }
            for c in analysis.cells
        ],
        "model": (
            {
                "name": analysis.model.name,
                "fit_input": analysis.model.fit_input,
                "cell": analysis.model.cell,
            }
            if analysis.model
            else None
        ),
        "requirements": list(analysis.requirements),
        "diagnostics": [x.as_dict() for x in analysis.diagnostics],
    }
    return json.dumps(data, indent=2, sort_keys=True)


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
    lines.append(f"  model: {plan.model} fitted on {plan.fit_input}")
    lines.append(f"  metrics: {', '.join(plan.metrics) or 'none'}")
    lines.append(f"  dependencies: {', '.join(plan.dependencies) or 'none'}")
    for source, target in plan.data_files:
        lines.append(f"  data: {source} -> {target}")
    return "\n".join(lines)
