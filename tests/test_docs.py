"""The documentation names every diagnostic the code can report."""

from __future__ import annotations

import inspect

from helpers import ROOT

from promote import diagnostics as d


def test_every_diagnostic_is_documented() -> None:
    text = (ROOT / "docs" / "diagnostics.md").read_text()
    for _, cls in inspect.getmembers(d, inspect.isclass):
        if issubclass(cls, d.Diagnostic) and cls is not d.Diagnostic:
            assert f"| {cls.code} | {cls.severity} | {cls.__name__} |" in text, cls.__name__


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
