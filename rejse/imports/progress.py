"""The import's progress bar (rich): bytes of the file read, events stored, events/s."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rejse.imports.runner import Problem, Reporter


class RichReporter(Reporter):
    def __init__(self, console: Console, *, label: str) -> None:
        self.console = console
        self.label = label
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[events]:,} events"),
            TextColumn("{task.fields[rate]:,.0f} events/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.began = time.monotonic()
        self.first_events = 0

    def start(self, total_bytes: int, done_bytes: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            self.label, total=max(total_bytes, 1), completed=done_bytes, events=0, rate=0.0
        )
        self.began = time.monotonic()

    def advance(self, done_bytes: int, events: int) -> None:
        if self.task is None:
            return
        elapsed = time.monotonic() - self.began
        self.progress.update(
            self.task,
            completed=done_bytes,
            events=events,
            rate=events / elapsed if elapsed > 0 else 0.0,
        )

    def problem(self, problem: Problem) -> None:
        self.progress.console.print(
            f"[yellow]refused[/] {escape(str(problem))}", highlight=False, soft_wrap=True
        )

    def finish(self) -> None:
        self.progress.stop()
