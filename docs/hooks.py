"""mkdocs hooks: generate the reference pages from the code at every build, so they cannot drift.

- reference/diagnostics.md: every class in ``promote.diagnostics``, with its example notebook run
  through ``promote check`` at build time (the message shown is the one promote prints), and the
  fixed notebook;
- reference/cell-tags.md: the tags and headings the planner reads (``promote.analysis.tables``);
- reference/settings.md: the service settings (the template's ``service/config.py``: fields,
  types and defaults from the class, meanings from its docstring table) and the ``settings.py``
  promote writes for an example notebook.

The command line reference is rendered by the mkdocs-click extension from the click commands.
``tests/test_docs.py`` imports this module (for ``example_notebook``) and builds the whole site.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "service"
SERVICE_CONFIG = TEMPLATE / "project" / "src" / "{{ package_name }}" / "service" / "config.py"
SETTINGS_EXAMPLE = ROOT / "examples" / "notebooks" / "review_sentiment.ipynb"

_HEADER = re.compile(
    r"^# %%(?: \[(?P<kind>markdown)\])?(?: (?P<key>count|output|file)=(?P<value>.*))?$"
)


# -- diagnostics ---------------------------------------------------------------------------------
def diagnostic_classes() -> list[type[Any]]:
    """Every finding class of ``promote.diagnostics``, by code."""
    from promote import diagnostics

    classes = [
        cls
        for _, cls in inspect.getmembers(diagnostics, inspect.isclass)
        if issubclass(cls, diagnostics.Diagnostic) and cls is not diagnostics.Diagnostic
    ]
    return sorted(classes, key=lambda cls: (cls.code, cls.__name__))


def example_notebook(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A notebook (nbformat 4 JSON) and the files beside it, from a diagnostic's example.

    The format is described on ``promote.diagnostics.Diagnostic.example``.
    """
    cells: list[dict[str, Any]] = []
    files: dict[str, str] = {}
    target: dict[str, Any] | None = None
    file_path: str | None = None
    lines: list[str] = []

    def close() -> None:
        source = "\n".join(lines).strip("\n")
        if file_path is not None:
            files[file_path] = source + "\n"
        elif target is not None:
            target["source"] = source
            cells.append(target)

    for line in text.splitlines():
        header = _HEADER.match(line)
        if not header:
            lines.append(line)
            continue
        close()
        lines = []
        file_path = None
        key, value = header.group("key"), header.group("value")
        if key == "file":
            target, file_path = None, value
        elif header.group("kind") == "markdown":
            target = {"cell_type": "markdown", "metadata": {}}
        else:
            target = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
            if key == "count":
                target["execution_count"] = int(value)
            elif key == "output":
                target["outputs"] = [{"output_type": "stream", "name": "stdout", "text": value}]
    close()
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return notebook, files


@contextlib.contextmanager
def _environment_read_once() -> Iterator[None]:
    """Ask ``importlib.metadata`` about the installed distributions once, not per example.

    promote reads them at every call (they take about a second); they do not change while the
    examples are checked.
    """
    import importlib.metadata
    from unittest import mock

    from promote import api

    packages = importlib.metadata.packages_distributions()
    installed = api.installed_versions()
    with (
        mock.patch.object(importlib.metadata, "packages_distributions", return_value=packages),
        mock.patch.object(api, "installed_versions", return_value=installed),
    ):
        yield


def check_example(text: str) -> list[Any]:
    """What ``promote check`` and ``promote --pretend`` report for an example, as for a file."""
    from promote import api
    from promote.errors import PromoteError

    notebook, files = example_notebook(text)
    with tempfile.TemporaryDirectory(prefix="promote-docs-") as directory:
        folder = Path(directory)
        for name, content in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content)
        path = folder / "notebook.ipynb"
        path.write_text(json.dumps(notebook))
        found = list(api.check(path).diagnostics)
        with contextlib.suppress(PromoteError):  # a refused notebook still has its findings
            planned = api.promote(path, folder / "project", pretend=True).plan
            found += [d for d in planned.diagnostics if d not in found]
        return found


def _cell(text: str) -> str:
    """Text for a markdown table cell: pipes escaped."""
    return text.replace("|", "\\|")


def _example_block(text: str) -> str:
    """An example as the reader sees it: cells as percent-format Python, files named."""
    return "```python\n" + text.strip("\n") + "\n```\n"


def diagnostics_page() -> str:
    """reference/diagnostics.md."""
    from promote import report

    classes = diagnostic_classes()
    with _environment_read_once():
        found = {
            cls: [d for d in check_example(cls.example) if type(d) is cls] if cls.example else []
            for cls in classes
        }
    out = [
        "# Diagnostics",
        "",
        "What `promote check` and `promote` report, each with the cell (and line) it is about.",
        "Severity `error` stops promotion; `warning` and `info` are reported and the project is",
        "still generated. Each code below comes with a small notebook that produces it and the",
        "same notebook fixed. The notebooks are written in the percent format (`# %%` starts a",
        "code cell; `count=`, `output=` and `file=` give a cell an execution count, a saved",
        "output, or put the text in a file beside the notebook). The line under each example is",
        "what promote printed for it when this page was built (`promote check` prints the same",
        "finding grouped by severity).",
        "",
        "| code | severity | name | message |",
        "|---|---|---|---|",
    ]
    sections: list[str] = []
    for cls in classes:
        shown = found[cls][0] if found[cls] else None
        summary = shown.message if shown else "(promote does not report it for its example)"
        summary = _cell(summary.replace("\n", " "))
        anchor = cls.code.lower()
        out.append(f"| [{cls.code}](#{anchor}) | {cls.severity} | `{cls.__name__}` | {summary} |")
        section = [
            f"## {cls.code} {cls.__name__} {{#{anchor}}}",
            "",
            f"Severity: **{cls.severity}**.",
        ]
        if cls.example:
            section += ["", "A notebook that has it:", "", _example_block(cls.example)]
            if shown:
                section += [
                    "promote reports:",
                    "",
                    "```text",
                    report.diagnostic_line("notebook.ipynb", shown),
                    "```",
                    "",
                ]
            else:
                section += [
                    "!!! warning",
                    "    promote does not report this code for the example yet.",
                    "",
                ]
        if cls.fixed:
            section += ["The same notebook, fixed:", "", _example_block(cls.fixed)]
        sections.append("\n".join(section))
    return "\n".join(out) + "\n\n" + "\n".join(sections)


# -- cell tags -----------------------------------------------------------------------------------
def cell_tags_page() -> str:
    """reference/cell-tags.md, from the planner's tables."""
    from promote.analysis import tables

    out = [
        "# Cell tags and headings",
        "",
        "Each code cell gets a stage, by this order of authority: its tag, the markdown section",
        "it sits under, what its code does. Consecutive cells of one stage become one function",
        "of the stage's module. Tags are Jupyter cell tags (in JupyterLab: the property",
        "inspector, *Cell Tags*; in VS Code: *Add Cell Tag*); they are stored in the cell's",
        "`metadata.tags`. `promote:stage=train` and `promote: train` mean the same.",
        "",
        "| tag | the cell goes to | function name |",
        "|---|---|---|",
    ]
    for stage in tables.STAGES:
        module, function = tables.STAGE_MODULES[stage]
        out.append(f"| `promote: stage={stage}` | `{module}.py` | `{function}` |")
    out.append("| `promote: skip` | nowhere: the cell is left out, and not analysed | |")
    out += [
        "",
        "`promote: model=EXPR` chooses the model the service serves among the candidates the",
        'cell\'s loop fits (`promote: model=classifiers["SVC"]`, `promote: model=models[1][1]`,',
        "`promote: model=svc`); it does not change the cell's stage. The training stage keeps",
        "the loop and binds `model = EXPR` after it. See",
        "[the how-to](../how-to/cell-tags.md#choose-the-model-a-loop-compares).",
    ]
    out += [
        "",
        "## Headings",
        "",
        "An untagged cell takes the stage of the markdown heading it sits under when the heading",
        f"has at most {tables.MAX_HEADING_WORDS} words and matches one of these patterns",
        "(case-insensitive, checked in this order, so *Train/test split* is `features`):",
        "",
        "| stage | heading pattern |",
        "|---|---|",
    ]
    for stage, pattern in tables.HEADING_STAGES:
        out.append(f"| `{stage}` | `{_cell(pattern.pattern)}` |")
    out += [
        "",
        "A cell under no matching heading gets the stage its code suggests (a `read_csv` is",
        "`load`, a `.fit` is `train`, a score is `evaluate`, a `.predict` is `predict`), else",
        "`features`. `promote check` prints the role it found for each cell; `promote --pretend`",
        "prints the modules and functions that result.",
    ]
    return "\n".join(out) + "\n"


# -- settings ------------------------------------------------------------------------------------
def service_settings() -> list[dict[str, str]]:
    """The fields of the template's ``ServiceSettings``: name, type, default, meaning."""
    tree = ast.parse(SERVICE_CONFIG.read_text())
    meanings = _docstring_meanings(ast.get_docstring(tree) or "")
    fields: list[dict[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "ServiceSettings":
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    name = item.target.id
                    if name == "model_config":
                        continue
                    fields.append(
                        {
                            "variable": name.upper(),
                            "type": ast.unparse(item.annotation),
                            "default": _default(item.value),
                            "meaning": meanings.get(name.upper(), ""),
                        }
                    )
    return fields


def _default(value: ast.expr | None) -> str:
    if value is None:
        return "(required)"
    if isinstance(value, ast.Call) and ast.unparse(value.func) == "Field":
        for keyword in value.keywords:
            if keyword.arg == "default":
                limits = [
                    f"{k.arg} {ast.unparse(k.value)}"
                    for k in value.keywords
                    if k.arg in {"ge", "gt", "le", "lt"}
                ]
                shown = _literal(keyword.value)
                return shown + (f" ({', '.join(limits)})" if limits else "")
    return _literal(value)


def _literal(value: ast.expr) -> str:
    with contextlib.suppress(ValueError):
        return repr(ast.literal_eval(value))
    return ast.unparse(value)


def _docstring_meanings(doc: str) -> dict[str, str]:
    """``VARIABLE -> meaning`` from the reStructuredText-ish tables of config.py's docstring."""
    meanings: dict[str, str] = {}
    current = ""
    for line in doc.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        columns = [c.strip() for c in line.strip("|").split("|")]
        if len(columns) < 3:
            continue
        name = columns[0].strip("`")
        if name and name.isupper():
            current = name
            meanings[current] = columns[-1]
        elif not name and current:
            meanings[current] += " " + columns[-1]
    return meanings


def _generated_settings() -> str:
    """The settings.py promote writes for the example notebook (analysed, planned, not run)."""
    from promote import api
    from promote.codegen import generate
    from promote.planning import plan

    analysis = api.check(SETTINGS_EXAMPLE)
    sources = generate(plan(analysis, "review-sentiment"))
    for path, source in sorted(sources.items()):
        if path.endswith("settings.py"):
            return source
    raise LookupError(f"promote wrote no settings.py for {SETTINGS_EXAMPLE.name}")


def model_settings(source: str) -> list[dict[str, str]]:
    """The fields of a generated ``Settings`` class: variable, type, default."""
    tree = ast.parse(source)
    prefix = ""
    fields: list[dict[str, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ClassDef) and node.name == "Settings"):
            continue
        for item in node.body:
            if isinstance(item, ast.Assign) and ast.unparse(item.targets[0]) == "model_config":
                for keyword in getattr(item.value, "keywords", []):
                    if keyword.arg == "env_prefix":
                        prefix = str(ast.literal_eval(keyword.value))
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                fields.append(
                    {
                        "field": item.target.id,
                        "type": ast.unparse(item.annotation),
                        "default": _default(item.value),
                    }
                )
    for field in fields:
        field["variable"] = prefix + field["field"].upper()
    return fields


def settings_page() -> str:
    """reference/settings.md."""
    source = _generated_settings()
    out = [
        "# Settings of a generated project",
        "",
        "A generated project has two kinds of settings, both read from the environment.",
        "",
        "## The model's settings: `settings.py`",
        "",
        "promote turns the notebook's upper-case constants, cells of plain literals, and the",
        "literal hyper-parameters written in its calls into the typed fields of one `Settings`",
        "class (pydantic-settings) in `src/<package>/settings.py`. `pipeline.run()` builds it and",
        "passes it to the stage functions. Each field is read from, in this order: an environment",
        "variable named after it with the package's name as prefix, a `settings.toml` in the",
        "working directory (`field = value`), then the value the notebook used. A constant that",
        "looks like a secret becomes a required `SecretStr` field with no default (its value is",
        "not copied, see [P026](diagnostics.md#p026)).",
        "",
        "For `examples/notebooks/review_sentiment.ipynb`:",
        "",
        "| field | environment variable | type | default |",
        "|---|---|---|---|",
    ]
    for field in model_settings(source):
        out.append(
            f"| `{field['field']}` | `{field['variable']}` | `{_cell(field['type'])}` | "
            f"`{_cell(field['default'])}` |"
        )
    out += [
        "",
        "The file promote writes for it (yours to edit; `promote update` merges your edits with",
        "a regenerated version):",
        "",
        "```python",
        source.rstrip("\n"),
        "```",
        "",
        "## The service's settings",
        "",
        "The service and the `train`/`serve` commands read these from the environment (names are",
        "case-insensitive, no prefix), through `src/<package>/service/config.py`, the same in",
        "every project. An invalid value stops the service at start with the variable named.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for field in service_settings():
        out.append(
            f"| `{field['variable']}` | `{_cell(field['type'])}` | "
            f"`{field['default']}` | {field['meaning'].replace('``', '`')} |"
        )
    out += [
        "",
        "For example `PORT=9000 API_KEY=$(cat key) make serve`; in the container image,",
        "`HOST=0.0.0.0` and `PORT=8080` are set by the Dockerfile; in Kubernetes, by",
        "`deploy/k8s/deployment.yaml` (the API key from a Secret).",
    ]
    return "\n".join(out) + "\n"


# -- the hook ------------------------------------------------------------------------------------
GENERATED = {
    "reference/diagnostics.md": diagnostics_page,
    "reference/cell-tags.md": cell_tags_page,
    "reference/settings.md": settings_page,
}


def pages() -> Iterator[tuple[str, str]]:
    """Every generated page: (path under docs/, markdown)."""
    for path, make in GENERATED.items():
        yield path, make()


def on_files(files: Any, config: Any) -> Any:
    """mkdocs: add the generated pages to the site."""
    from mkdocs.structure.files import File

    for path, content in pages():
        files.append(File.generated(config, path, content=content))
    return files


if __name__ == "__main__":  # `python docs/hooks.py` prints the generated pages
    buffer = io.StringIO()
    for path, content in pages():
        buffer.write(f"<!-- {path} -->\n{content}\n")
    print(buffer.getvalue())
