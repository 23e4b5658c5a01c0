"""`promote new` and `promote update`, played for real in temporary git repositories."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from helpers import EXAMPLES, ROOT
from project_harness import install_project, run, venv_command

from promote.cli import UPDATE_CONFLICTS, main

NOTEBOOK = "breast_cancer_classifier.ipynb"
PACKAGE = "breast_cancer_classifier"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def changed(repo: Path) -> set[str]:
    return {line[3:] for line in git(repo, "status", "--porcelain", "-uall").splitlines()}


@pytest.fixture
def template_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the template, used as version 1."""
    v1 = tmp_path / "template-v1"
    shutil.copytree(ROOT / "templates" / "service", v1)
    monkeypatch.setenv("PROMOTE_TEMPLATE", str(v1))
    return v1


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return Path(shutil.copy(EXAMPLES / NOTEBOOK, folder / NOTEBOOK))


@pytest.fixture
def project(tmp_path: Path, template_v1: Path, notebook: Path) -> Path:
    """A promoted project with two user edits, committed: one in a module, one in the service."""
    del template_v1
    target = tmp_path / "project"
    assert main([str(notebook), "-o", str(target)]) == 0
    train = target / "src" / PACKAGE / "train.py"
    train.write_text(train.read_text().replace("# scale then", "# MY EDIT: scale then"))
    app = target / "src" / PACKAGE / "service" / "app.py"
    app.write_text(app.read_text() + "\n# MY SERVICE NOTE\n")
    git(target, "commit", "-qam", "my edits")
    return target


def make_v2(v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Version 2 of the template: a changed Makefile and a new file."""
    v2 = tmp_path / "template-v2"
    shutil.copytree(v1, v2)
    makefile = v2 / "project" / "Makefile.jinja"
    makefile.write_text(makefile.read_text() + "\n# added in template v2\n")
    (v2 / "project" / "CHANGELOG.md").write_text("# Changelog\n\nTemplate v2.\n")
    monkeypatch.setenv("PROMOTE_TEMPLATE", str(v2))
    return v2


@pytest.mark.slow
def test_template_update_keeps_user_edits(
    project: Path, template_v1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a template upgrade, the v2 changes and the user's edits are both there, and it runs."""
    make_v2(template_v1, tmp_path, monkeypatch)
    assert main(["update", str(project)]) == 0
    assert "# added in template v2" in (project / "Makefile").read_text()
    assert (project / "CHANGELOG.md").is_file()
    assert "# MY EDIT: scale then" in (project / "src" / PACKAGE / "train.py").read_text()
    assert "# MY SERVICE NOTE" in (project / "src" / PACKAGE / "service" / "app.py").read_text()
    install_project(project)
    run([venv_command(project, "pytest"), "-q"], cwd=project)


def test_conflict_is_reported_and_nothing_else_is_touched(
    project: Path,
    template_v1: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# my own last line\n")
    git(project, "commit", "-qam", "my makefile line")
    v2 = make_v2(template_v1, tmp_path, monkeypatch)
    (v2 / "project" / "CHANGELOG.md").unlink()  # v2 changes only the Makefile
    assert main(["update", str(project)]) == UPDATE_CONFLICTS
    err = capsys.readouterr().err
    assert "conflict" in err and "Makefile" in err
    text = makefile.read_text()
    assert "<<<<<<<" in text and "# my own last line" in text and "# added in template v2" in text
    assert changed(project) == {"Makefile", ".copier-answers.yml"}


def test_changed_notebook_cell_updates_its_module_and_keeps_the_edit(
    project: Path, notebook: Path
) -> None:
    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:
        cell.source = cell.source.replace("TEST_SIZE = 0.2", "TEST_SIZE = 0.25")
        cell.source = cell.source.replace(
            "model.fit(X_train, y_train)", "model.fit(X_train, y_train)  # on the training split"
        )
    nbformat.write(node, notebook)
    assert main(["update", str(project)]) == 0
    package = project / "src" / PACKAGE
    assert "test_size: float = 0.25" in (package / "settings.py").read_text()
    train = (package / "train.py").read_text()
    assert "# on the training split" in train and "# MY EDIT: scale then" in train
    assert changed(project) == {f"src/{PACKAGE}/settings.py", f"src/{PACKAGE}/train.py"}


def test_pretend_writes_nothing(
    project: Path, notebook: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:
        cell.source = cell.source.replace("TEST_SIZE = 0.2", "TEST_SIZE = 0.3")
    nbformat.write(node, notebook)
    assert main(["update", str(project), "--pretend"]) == 0
    assert f"src/{PACKAGE}/settings.py" in capsys.readouterr().out
    assert changed(project) == set()


def test_pretend_template_upgrade_lists_the_files_it_would_change(
    project: Path,
    template_v1: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_v2(template_v1, tmp_path, monkeypatch)
    assert main(["update", str(project), "--pretend"]) == 0
    out = capsys.readouterr().out
    assert "updated   Makefile" in out and "added     CHANGELOG.md" in out
    assert changed(project) == set()
    assert "# added in template v2" not in (project / "Makefile").read_text()


def test_pretend_predicts_a_conflict_and_writes_nothing(
    project: Path,
    template_v1: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# my own last line\n")
    git(project, "commit", "-qam", "my makefile line")
    make_v2(template_v1, tmp_path, monkeypatch)
    assert main(["update", str(project), "--pretend"]) == UPDATE_CONFLICTS
    captured = capsys.readouterr()
    assert "conflict  Makefile" in captured.out
    assert "would be left as <<<<<<< markers in Makefile" in captured.err
    assert changed(project) == set()
    assert "<<<<<<<" not in makefile.read_text()


def test_a_promote_killed_in_the_template_store_does_not_break_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template_v1: Path, notebook: Path
) -> None:
    """Lock files a killed git left in the store (SIGKILL mid-commit) do not stop the next promote.

    CI once saw one promote killed by the robustness test leave ``index.lock`` in the shared
    store, and every later promote of the session fail with git's "File exists".
    """
    del template_v1
    monkeypatch.setenv("PROMOTE_HOME", str(tmp_path / "home"))
    assert main([str(notebook), "-o", str(tmp_path / "first")]) == 0
    git_dir = tmp_path / "home" / "template" / ".git"
    for left in ("index.lock", "HEAD.lock", "refs/heads/main.lock"):
        (git_dir / left).write_text("")
    assert main([str(notebook), "-o", str(tmp_path / "second")]) == 0
    assert not list(git_dir.rglob("*.lock"))


def test_dirty_project_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "scratch.txt").write_text("work in progress")
    assert main(["update", str(project)]) == 1
    err = capsys.readouterr().err
    assert "uncommitted changes" in err and "scratch.txt" in err
    assert changed(project) == {"scratch.txt"}


def test_update_outside_a_project_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["update", str(tmp_path)]) == 1
    assert ".copier-answers.yml" in capsys.readouterr().err


@pytest.mark.slow
def test_new_project_passes_its_own_tests(tmp_path: Path, template_v1: Path) -> None:
    del template_v1
    target = tmp_path / "fresh"
    assert main(["new", str(target), "--defaults", "-d", "project_name=iris-service"]) == 0
    assert git(target, "log", "--oneline").count("\n") == 1
    install_project(target)
    run([venv_command(target, "pytest"), "-q"], cwd=target)


def test_migration_to_0_2_locks_a_project_from_0_1(
    tmp_path: Path, template_v1: Path, notebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crossing template 0.2.0 runs its migration: a 0.1 project gains hashed lock files."""
    import promote.store

    (template_v1 / "project" / "OLD.md").write_text("a file only template 0.1 has\n")
    monkeypatch.setattr(promote.store, "__version__", "0.1.0")
    target = tmp_path / "old-project"
    assert main([str(notebook), "-o", str(target), "--no-lock"]) == 0  # 0.1 made no lock files
    assert not (target / "requirements.lock").exists()
    monkeypatch.setattr(promote.store, "__version__", "0.2.0")
    v2 = make_v2(template_v1, tmp_path, monkeypatch)
    (v2 / "project" / "OLD.md").unlink()
    assert main(["update", str(target)]) == 0
    for name in ("requirements.lock", "requirements-runtime.lock"):
        assert "fastapi==" in (target / name).read_text()
    assert not (target / "OLD.md").exists(), "a file the new template dropped goes away"


def test_plain_copier_copy_and_update_from_this_repository(tmp_path: Path) -> None:
    """People without promote use the template from our git tags with copier alone."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    from copier import run_copy, run_update

    repo = tmp_path / "promote-repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    git(repo, "tag", "99.0.0")
    project = tmp_path / "plain"
    run_copy(
        str(repo),
        project,
        data={"project_name": "plain-svc"},
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    assert (project / "src" / "plain_svc" / "service" / "app.py").is_file()
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "copied")
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nMY NOTE\n")
    git(project, "commit", "-qam", "my note")
    makefile = repo / "templates" / "service" / "project" / "Makefile.jinja"
    makefile.write_text(makefile.read_text() + "\n# template 99.0.1\n")
    git(repo, "commit", "-qam", "template change")
    git(repo, "tag", "99.0.1")
    run_update(project, defaults=True, overwrite=True, unsafe=True, quiet=True)
    assert "# template 99.0.1" in (project / "Makefile").read_text()
    assert "MY NOTE" in readme.read_text()
