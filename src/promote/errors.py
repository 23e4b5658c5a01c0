"""One family of errors; each carries the one-paragraph message a user sees and an exit code.

A ``PromoteError`` is a user's mistake or a refused input: the CLI prints its message and exits
with ``exit_code``. Any other exception is a bug in promote and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class PromoteError(Exception):
    """Base of every error promote reports to a user instead of a traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotebookReadError(PromoteError):
    """The file is not a notebook promote can read (missing, not JSON, invalid schema, ...)."""

    def __init__(
        self, path: Path | str, reason: str, hint: str = "", cell: int | None = None
    ) -> None:
        where = f"{path}" if cell is None else f"{path}, cell {cell}"
        text = f"Cannot read notebook {where}: {reason}."
        if hint:
            text += f" {hint}"
        super().__init__(text)
        self.path = Path(path)
        self.reason = reason
        self.hint = hint
        self.cell = cell


class RefusedNotebookError(PromoteError):
    """The notebook was read, but promote cannot turn it into a project (and says why)."""

    def __init__(
        self, path: Path | str, reason: str, hint: str = "", cell: int | None = None
    ) -> None:
        where = f"{path}" if cell is None else f"{path}, cell {cell}"
        text = f"Cannot promote {where}: {reason}."
        if hint:
            text += f" {hint}"
        super().__init__(text)
        self.path = Path(path)
        self.reason = reason
        self.hint = hint
        self.cell = cell


class TargetExistsError(PromoteError):
    """The output directory holds files and ``--force`` was not given, or cannot be moved away
    safely (uncommitted git work, the notebook or the current directory inside it)."""

    def __init__(self, target: Path, refusal: str = "") -> None:
        if refusal:  # --force was given, and is refused too
            text = f"Target directory {target} is not replaced: {refusal}."
        else:
            text = (
                f"Target directory {target} is not empty. Choose another directory with -o, "
                "or pass --force to replace it (the old directory is kept as a backup)."
            )
        super().__init__(text)
        self.target = target


class RenderError(PromoteError):
    """The project could not be rendered; nothing was written to the target."""

    def __init__(self, target: Path, reason: str) -> None:
        super().__init__(
            f"Could not generate the project in {target}: {reason}. Nothing was written."
        )
        self.target = target
        self.reason = reason
