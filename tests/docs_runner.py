"""Run the code blocks of a documentation page, as a reader would type them, and compare outputs.

A page marks each block with an HTML comment just above it (invisible on the site):

- ``<!-- run -->`` above a ``console`` block: lines starting with ``$ `` are commands (``> ``
  lines continue the command above, as a shell's second prompt shows them, e.g. a here-document);
  the other lines are the output shown to the reader, trimmed. Every shown line must appear in the
  real output, in order (lines may be left out; ``...`` shows the reader where), and ``...``
  inside a line stands for any text. A command must succeed, unless the next command is
  ``echo $?``, whose output then says which code is expected.
- ``<!-- run: file PATH -->``: the block's text is written to PATH (the reader saves a file).
- ``<!-- run: cell NOTEBOOK N -->``: the block becomes the source of code cell N (1-based among
  all cells, as promote numbers them) of NOTEBOOK (the reader edits that cell).
- ``container`` after ``run`` (``<!-- run container -->``): only where podman works;
  ``cluster``: only with ``PROMOTE_DOCS_CLUSTER=1`` and a cluster ``kubectl`` reaches (the
  blocks create resources there); ``needs=TOOL,TOOL``: only where those
  commands are installed. Elsewhere the block is skipped, and the test reports it.
- ``<!-- run: hidden ... -->`` holds commands (``$ `` lines) run at that point and not shown;
  ``<!-- run: finally ... -->`` commands run at the end of the page even when a block failed
  (to stop what the page started).

All blocks of a page run in one bash process, in order, so ``cd``, ``export`` and background jobs
carry over; the process group is killed at the end. The host ports ``8000`` and ``8001`` in
commands (not in outputs) are replaced by free ports, so pages can run beside other tests.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"<!--\s*run(?P<args>[^\n]*?)\s*(?:-->|\n(?P<body>.*?)-->)", re.S)
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```\s*$", re.S | re.M)
ANY_FENCE = re.compile(r"^```[^\n]*\n.*?^```\s*$", re.S | re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
END = "__DOCS_BLOCK_END__"
COMMAND_TIMEOUT = 900.0


@dataclass
class Command:
    text: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Block:
    kind: str  # "console", "file", "cell", "hidden", "finally"
    line: int  # where it starts in the page
    commands: list[Command] = field(default_factory=list)
    text: str = ""
    target: list[str] = field(default_factory=list)
    container: bool = False
    cluster: bool = False
    needs: list[str] = field(default_factory=list)


def parse_console(text: str) -> list[Command]:
    commands: list[Command] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif line.startswith("> ") or line == ">":
            assert commands, f"a continuation line before any command: {line!r}"
            commands[-1].text += "\n" + line[2:]
        elif commands:
            commands[-1].expected.append(line.rstrip())
    for command in commands:
        while command.expected and not command.expected[-1]:
            command.expected.pop()
    return commands


def parse_page(text: str) -> tuple[list[Block], list[int]]:
    """The marked blocks of a page, and the lines of fenced blocks that carry no marker."""
    blocks: list[Block] = []
    marked_fences: set[int] = set()
    for marker in MARKER.finditer(text):
        args = marker.group("args").strip().lstrip(":").split()
        line = text.count("\n", 0, marker.start()) + 1
        if marker.group("body") is not None:
            kind = args[0] if args else "hidden"
            assert kind in {"hidden", "finally"}, f"line {line}: unknown run marker {args}"
            blocks.append(Block(kind, line, parse_console(marker.group("body"))))
            continue
        fence = FENCE.match(text, marker.end() + 1)
        assert fence, f"line {line}: a run marker must be just above a fenced block"
        marked_fences.add(fence.start())
        flags = Block(
            "",
            line,
            container="container" in args,
            cluster="cluster" in args,
            needs=[tool for a in args if a.startswith("needs=") for tool in a[6:].split(",")],
        )
        args = [a for a in args if a not in {"container", "cluster"} and "=" not in a]
        body = fence.group("body")
        if not args:
            assert fence.group("lang") == "console", f"line {line}: `run` needs a console block"
            flags.kind, flags.commands = "console", parse_console(body)
            blocks.append(flags)
        elif args[0] in {"file", "cell"}:
            flags.kind, flags.text, flags.target = args[0], body, args[1:]
            blocks.append(flags)
        else:
            raise AssertionError(f"line {line}: unknown run marker {args}")
    unmarked = [
        text.count("\n", 0, f.start()) + 1
        for f in ANY_FENCE.finditer(text)
        if f.start() not in marked_fences and not _inside_marker(text, f.start())
    ]
    return blocks, unmarked


def _inside_marker(text: str, position: int) -> bool:
    return any(m.start() < position < m.end() for m in MARKER.finditer(text))


def matches(expected: list[str], actual: list[str]) -> str | None:
    """None when the shown lines appear in order among the real ones; else the first that does not.

    Shown output is trimmed: lines may be left out anywhere (``...`` marks it for the reader),
    and ``...`` inside a line stands for any text.
    """
    position = 0
    for shown in expected:
        if shown.strip() in {"...", ""}:
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in shown.split("...")) + r"\Z")
        while position < len(actual) and not pattern.match(actual[position]):
            position += 1
        if position >= len(actual):
            return shown
        position += 1
    return None


class Shell:
    """One bash process for a page; its stdout and stderr are read together."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.buffer = b""
        self.times: list[tuple[float, str]] = []  # seconds per command, for the report

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
        assert self.process.stdin and self.process.stdout
        script = f'{command}\n__s=$?; echo; echo "{END}$__s"; (exit $__s)\n'
        self.process.stdin.write(script.encode())
        self.process.stdin.flush()
        started = time.monotonic()
        deadline = started + timeout
        fd = self.process.stdout.fileno()
        while (match := re.search(rf"\n{END}(\d+)\n".encode(), self.buffer)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"`{command}` ran longer than {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"the shell ended during `{command}`")
                self.buffer += chunk
        self.times.append((time.monotonic() - started, command.splitlines()[0]))
        output = self.buffer[: match.start()].decode(errors="replace")
        self.buffer = self.buffer[match.end() :]
        return int(match.group(1)), ANSI.sub("", output)

    def close(self) -> None:
        """End the shell and everything it started (its whole process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        except ProcessLookupError:
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()


def set_cell(notebook: Path, number: int, source: str) -> None:
    """Replace the source of cell ``number`` (1-based among all cells) of a notebook file."""
    data = json.loads(notebook.read_text())
    cell = data["cells"][number - 1]
    assert cell["cell_type"] == "code", f"cell {number} of {notebook} is not a code cell"
    cell["source"] = source.rstrip("\n")
    cell["outputs"] = []
    cell["execution_count"] = None
    notebook.write_text(json.dumps(data, indent=1) + "\n")
