"""What `tongban run` shows while it runs: the pipeline's progress events, followed as they land.

The steps append one JSON event a line to ``build/progress/events.jsonl`` (tongban.pipeline), in
whichever process runs them: Airflow's dag.test in this one, or the steps called directly
(``--without-airflow``). A thread here follows the file and shows each event: a live rich view
on a terminal (the current step, each delivery with the rows read, the elapsed time), one plain
line per event otherwise. Progress goes to stderr, so stdout keeps the summary (or the JSON).
Events carry names and counts only, never a delivery's values.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

#: how often the follower looks for new events (seconds)
POLL = 0.2


def describe(event: dict[str, Any]) -> str | None:
    """One event as the plain line a log shows (None for an event with nothing to say)."""
    kind = event.get("event")
    if kind == "note":
        return str(event.get("message", ""))
    if kind == "step":
        state = event.get("state")
        if state == "started":
            return f"step {event['step']} started"
        if state == "done":
            run = f" (run {event['run_id']})" if event.get("step") == "start" and event.get("run_id") else ""
            return f"step {event['step']} done in {event.get('seconds', 0):.1f} s{run}"
        if state == "failed":
            return f"step {event['step']} FAILED ({event.get('error')}) after {event.get('seconds', 0):.1f} s"
    if kind == "delivery":
        rows = "rows unreadable" if event.get("rows") is None else f"{event['rows']} rows read"
        return (f"delivery {event['source_id']}/{event['entity']} (province {event['province_code']}): "
                f"{event['status']}, {rows}")
    return None


class PlainProgress:
    """One line per event: ``[  12.3 s] step transform done in 8.1 s``."""

    def __init__(self, stream: TextIO, started: float):
        self.stream, self.started = stream, started

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def show(self, event: dict[str, Any]) -> None:
        line = describe(event)
        if line is not None:
            elapsed = max(0.0, float(event.get("t", time.time())) - self.started)
            print(f"[{elapsed:7.1f} s] {line}", file=self.stream, flush=True)


class RichProgress:
    """A live view on a terminal: the current step, the deliveries read so far, the elapsed time."""

    def __init__(self, stream: TextIO, started: float):
        from rich.console import Console  # lazy: rich only when a terminal watches
        from rich.live import Live

        self.started = started
        self.step, self.state = "starting", ""
        self.deliveries: list[dict[str, Any]] = []
        self.done: list[str] = []
        self.live = Live(console=Console(file=stream), get_renderable=self._render, refresh_per_second=4,
                         transient=False)

    def __enter__(self) -> RichProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def show(self, event: dict[str, Any]) -> None:
        if event.get("event") == "step":
            self.step, self.state = event["step"], event.get("state", "")
            if self.state == "done":
                self.done.append(f"{event['step']} {event.get('seconds', 0):.1f} s")
        elif event.get("event") == "note":
            self.step, self.state = str(event.get("message", "")), ""
        elif event.get("event") == "delivery":
            self.step, self.state = "intake", "running"
            self.deliveries.append(event)
        self.live.refresh()

    def _render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        elapsed = time.time() - self.started
        head = Text.assemble(("tongban run ", "bold"), f"{elapsed:6.1f} s   step: ",
                             (f"{self.step} {self.state}", "bold red" if self.state == "failed" else "bold cyan"))
        t = Table(box=None, pad_edge=False)
        for col in ("delivery", "province", "status", "rows read"):
            t.add_column(col, justify="right" if col == "rows read" else "left")
        for d in self.deliveries:
            t.add_row(f"{d['source_id']}/{d['entity']}", str(d["province_code"]), str(d["status"]),
                      "?" if d.get("rows") is None else str(d["rows"]))
        done = Text("done: " + ", ".join(self.done), style="dim") if self.done else Text("")
        return Group(head, t, done)


class Follower(threading.Thread):
    """Follows the progress file from its start and hands each new whole line's event to ``show``."""

    def __init__(self, path: Path, show):
        super().__init__(name="tongban-progress", daemon=True)
        self.path, self.show = path, show
        self.offset = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(POLL):
            self.read()

    def read(self) -> None:
        try:
            with self.path.open("rb") as f:
                if f.seek(0, 2) < self.offset:  # started anew (a run began): from the top
                    self.offset = 0
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next look
        self.offset += len(whole)
        for line in whole.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.show(event)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.read()  # what landed since the last look


class watching:  # noqa: N801 — used as a context manager: `with watching(path): ...`
    """Show the run's progress while the block runs: rich when stdout and stderr are terminals,
    plain lines on stderr otherwise. Starts from an empty progress file (the run lock is held)."""

    def __init__(self, path: Path, *, stream: TextIO | None = None, rich: bool | None = None):
        self.path = path
        self.stream = stream or sys.stderr
        self.rich = (sys.stdout.isatty() and self.stream.isatty()) if rich is None else rich

    def __enter__(self) -> watching:
        self.path.unlink(missing_ok=True)
        started = time.time()
        self.view = (RichProgress if self.rich else PlainProgress)(self.stream, started)
        self.view.__enter__()
        self.follower = Follower(self.path, self.view.show)
        self.follower.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.follower.stop()
        finally:
            self.view.__exit__(*exc)
