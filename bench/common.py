"""What the benchmark's three paths share: the entities measured and the stage timer."""

from __future__ import annotations

import resource
import time

ENTITIES = ("birth_registration", "business_license")


class Stages:
    """Wall-clock time of named stages, in order, and the process's peak RSS (``ru_maxrss``, a
    running maximum) at the end of each: the stage where it grows is the one that set the peak."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.maxrss_mib: dict[str, int] = {}
        self._lap = time.perf_counter()

    def mark(self, name: str) -> None:
        """Lap style: the time since the previous mark (or creation) goes to ``name`` (adds up)."""
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._lap, 3)
        self._lap = now

    def __call__(self, name: str):
        stages = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                stages.seconds[name] = round(stages.seconds.get(name, 0.0) + time.perf_counter() - self.t0, 3)
                stages.maxrss_mib[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

        return _Stage()
