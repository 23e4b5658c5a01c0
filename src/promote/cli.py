"""The ``promote`` command: options in, one library call, an exit code out."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from promote import __version__, api, lifecycle, report
from promote.capture import ExecutionFailure as CaptureFailure
from promote.errors import PromoteError
from promote.resolve import explain

__all__ = ["EXECUTION_FAILED", "UPDATE_CONFLICTS", "main"]

UPDATE_CONFLICTS = 3  # `promote update` applied the changes but left conflicts to resolve
EXECUTION_FAILED = 4  # `--execute`: the project was generated, but the notebook did not run


class _DefaultToPromote(click.Group):
    """``promote NOTEBOOK`` means ``promote build NOTEBOOK``; other words are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToPromote, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="promote")
def cli() -> None:
    """Turn a proof-of-concept notebook into a production project.

    \b
      promote NOTEBOOK [-o DIR]     generate the project
      promote check NOTEBOOK        report what promote sees, write nothing
      promote new [DIR]             start a project from the template, no notebook
      promote update [DIR]          bring template and notebook changes in, keep your edits
      promote verify [DIR]          build the project's image, run it read-only, call it
    """


@cli.command("build")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Project directory (default ./NAME)."
)
@click.option("--name", help="Project name (default: from the notebook's file name).")
@click.option(
    "--force", is_flag=True, help="Replace a non-empty directory (the old one is kept as a backup)."
)
@click.option("--pretend", is_flag=True, help="Show the plan; write nothing.")
@click.option(
    "--execute", is_flag=True, help="Run the notebook once and keep its results for a parity test."
)
@click.option("--timeout", default=600, show_default=True, help="Seconds allowed per cell.")
@click.option("--total-timeout", default=3600, show_default=True, help="Seconds for the whole run.")
@click.option("--kernel", default="python3", show_default=True, help="Jupyter kernel to run it in.")
@click.option(
    "--retries",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Fresh environments with other pins to try when a library version makes the run fail.",
)
@click.option(
    "--lock/--no-lock",
    default=True,
    show_default=True,
    help="Resolve hashed lock files now (uv; offline: pin what is installed here).",
)
@click.option(
    "--explain-pins",
    is_flag=True,
    help="Say where each pinned version of the notebook's code comes from.",
)
def build(
    notebook: Path,
    output: Path | None,
    name: str | None,
    force: bool,
    pretend: bool,
    execute: bool,
    timeout: int,
    total_timeout: int,
    kernel: str,
    retries: int,
    lock: bool,
    explain_pins: bool,
) -> None:
    """Promote NOTEBOOK into a project."""
    run = api.Execution(timeout, total_timeout, kernel, retries) if execute else None
    result = api.promote(
        notebook, output, name=name, force=force, pretend=pretend, execute=run, lock=lock
    )
    path = str(notebook)
    for diagnostic in result.plan.diagnostics:
        click.echo(report.diagnostic_line(path, diagnostic), err=True)
    if result.resolution:
        for note in result.resolution.notes:
            click.secho(f"warning: {note}", fg="yellow", err=True)
    if explain_pins:
        click.echo(
            explain(result.resolution)
            if result.resolution
            else "Pins: the versions installed where promote runs (the notebook uses no drifted "
            "API and shows no versions)."
        )
    if pretend:
        click.echo(report.plan_text(result.plan))
        click.echo(f"would write {result.target} (nothing written: --pretend)")
        return
    assert result.rendered is not None
    click.echo(f"promoted {path} -> {result.rendered.target}")
    if result.rendered.backup:
        click.echo(f"the previous content was moved to {result.rendered.backup}")
    locked = result.rendered.locked
    if locked and locked.method != "uv":
        click.secho(
            f"warning: {locked.reason}; {', '.join(locked.files)} pin what is installed here, "
            "without hashes",
            fg="yellow",
            err=True,
        )
    for line in report.retry_lines(result.retried) if result.retried else []:
        click.echo(line, err=True)
    if result.captured:
        click.echo(
            f"ran the notebook in {result.captured.seconds:.1f} s; its predictions and metrics "
            f"are in {api.PARITY_FILE} for the parity test"
        )
        _report_model(result.rendered.target)
    click.echo(f"next: cd {result.rendered.target} && make install train test serve")
    if result.execution_failure:
        click.secho(f"error: {result.execution_failure.message(notebook)}", fg="red", err=True)
        sys.exit(EXECUTION_FAILED)


def _report_model(project: Path) -> None:
    """Say where the notebook's own model went (``saved_model`` of the capture), or why not."""
    try:
        data = json.loads((project / api.PARITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    model = data.get("saved_model") if isinstance(data, dict) else None
    if not model:
        return
    if "error" in model:
        click.secho(f"note: {model['error']}", fg="yellow", err=True)
        return
    where = f"{model['directory']}/{model['file']}"
    size = f"{model['format']}, {model['bytes'] / 1e6:.1f} MB"
    if model.get("served"):
        click.echo(
            f"the notebook's model is in {where} ({size}); the service serves it until a "
            "version is in the registry (make adopt-notebook-model records it as one)"
        )
    else:
        click.echo(
            f"the notebook's model is in {where} ({size}) for the parity test; it is not "
            f"served as it is: {model['not_served']}"
        )


@cli.command("capture")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option("--notebook", type=click.Path(path_type=Path), help="Run this notebook instead.")
@click.option("--timeout", default=600, show_default=True, help="Seconds allowed per cell.")
@click.option("--total-timeout", default=3600, show_default=True, help="Seconds for the whole run.")
@click.option("--kernel", default="python3", show_default=True, help="Jupyter kernel to run it in.")
def capture(
    directory: Path, notebook: Path | None, timeout: int, total_timeout: int, kernel: str
) -> None:
    """Run the project's notebook: record its results for the parity test, and its model."""
    ran = api.capture_into(directory, notebook, api.Execution(timeout, total_timeout, kernel))
    if isinstance(ran, CaptureFailure):
        click.secho(f"error: {ran.message(notebook or directory)}", fg="red", err=True)
        sys.exit(EXECUTION_FAILED)
    click.echo(f"ran the notebook in {ran.seconds:.1f} s; wrote {api.PARITY_FILE}")
    _report_model(directory)


@cli.command("new")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option("--defaults", is_flag=True, help="Take the template's defaults; ask nothing.")
@click.option(
    "-d", "--data", "data", multiple=True, metavar="KEY=VALUE", help="Answer a template question."
)
@click.option("--force", is_flag=True, help="Replace a non-empty directory (kept as a backup).")
def new(directory: Path, defaults: bool, data: tuple[str, ...], force: bool) -> None:
    """Start a project in DIRECTORY from the template, with no notebook."""
    answers: dict[str, str] = {}
    for item in data:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="-d")
        answers[key.strip()] = value
    answers.setdefault("project_name", api.default_name(Path(directory).resolve().name + ".ipynb"))
    rendered = lifecycle.new(Path(directory), answers, defaults=defaults, force=force)
    click.echo(f"created {rendered.target}")
    click.echo(f"next: cd {rendered.target} && make install train test serve")


@cli.command("update")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option(
    "--notebook", type=click.Path(path_type=Path), help="Regenerate from this notebook instead."
)
@click.option("--pretend", is_flag=True, help="Show what would change; write nothing.")
def update(directory: Path, notebook: Path | None, pretend: bool) -> None:
    """Bring template and notebook changes into the project in DIRECTORY, keeping your edits."""
    result = lifecycle.update(directory, notebook=notebook, pretend=pretend)
    verb = "would change" if pretend else "changed"
    click.echo(f"template {result.template_from or '?'} -> {result.template_to}")
    for note in result.notes:
        click.echo(f"note: {note}")
    if not result.changes:
        click.echo("already up to date")
    for change in result.changes:
        click.echo(f"  {change.status:<9} {change.path}")
    if result.conflicts:
        files = ", ".join(result.conflicts)
        click.secho(
            f"{len(result.conflicts)} conflict(s) would be left as <<<<<<< markers in {files} "
            "(nothing written: --pretend)."
            if pretend
            else f"{len(result.conflicts)} conflict(s): resolve the <<<<<<< markers in {files}, "
            "then commit.",
            fg="yellow",
            err=True,
        )
        sys.exit(UPDATE_CONFLICTS)
    if result.changes and not pretend:
        click.echo(f"{len(result.changes)} file(s) {verb}: review with `git diff`, then commit.")


@cli.command("verify")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option(
    "--base-image",
    envvar="PROMOTE_BASE_IMAGE",
    show_envvar=True,
    help="Base image of both stages (the BASE_IMAGE build argument; default: the Dockerfile's).",
)
@click.option("--tag", help="Tag of the image (default NAME:latest, as `make image` tags it).")
@click.option("--no-cache", is_flag=True, help="Build without the engine's layer cache.")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    help="Seconds the container has to answer /ready.",
)
def verify_command(
    directory: Path, base_image: str | None, tag: str | None, no_cache: bool, timeout: float
) -> None:
    """Build the image of the project in DIRECTORY, run it as production does, and call it.

    The container runs as the image's non-root user with a read-only root file system (a tmpfs
    on /tmp), all capabilities dropped; promote waits for /ready, then calls /predict with the
    service's own example, /health, /version, /metrics and /predict with a wrong-typed field
    (a 422). The engine is the one DOCKER_HOST names, else Docker's default socket, else a
    podman service promote starts and stops. The container is removed; the image stays.
    Exits 1 when the image does not build, start or answer as it should.
    """
    from promote.verify import verify  # imports the docker SDK: only for this command

    result = verify(
        directory,
        base_image=base_image,
        tag=tag,
        no_cache=no_cache,
        ready_timeout=timeout,
        progress=lambda message: click.echo(message, err=True),
    )
    click.echo(report.verification_text(result))
    if not result.ok:
        failed = "; ".join(f"{check.name}: {check.detail}" for check in result.failed)
        text = f"error: the image of {directory} does not serve as it should: {failed}."
        if result.logs:
            text += f" The container's last log lines:\n{result.logs}"
        click.secho(text, fg="red", err=True)
        sys.exit(1)


@cli.command("check")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--modernize",
    is_flag=True,
    help="List, for each API-drift finding, the change that runs on current libraries.",
)
@click.option(
    "--explain-pins",
    is_flag=True,
    help="Resolve the pins promote would write (needs PyPI) and say where each comes from.",
)
def check(notebook: Path, fmt: str, modernize: bool, explain_pins: bool) -> None:
    """Report what promote sees in NOTEBOOK (roles, model, readiness, problems); write nothing.

    Exits 1 when something would stop promotion, 0 otherwise.
    """
    result = report.check_report(api.check(notebook))
    click.echo(report.check_json(result) if fmt == "json" else report.check_text(result))
    if modernize and fmt == "text":
        click.echo("")
        click.echo(report.modernize_text(result.analysis))
    if explain_pins and fmt == "text":
        click.echo("")
        click.echo(explain(api.explain_pins(notebook)))
    if result.blocking:
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the console script exits with it)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except PromoteError as error:
        click.secho(f"error: {error.message}", fg="red", err=True)
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return 0


def run() -> None:
    """Run the CLI and exit with its code (the console script is ``promote.entry.run``)."""
    from promote.entry import run as entry

    entry()
