"""What the benchmarks print beside their figures, to tell the code's latency from the
process's: the garbage collector's full passes during a measured round."""

from __future__ import annotations

import gc
import time
from types import TracebackType


class FullGcPasses:
    """``with FullGcPasses() as passes:`` — ``passes`` holds each full (generation 2)
    collection's duration in seconds, for the time the block ran."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)

    def __enter__(self) -> list[float]:
        gc.callbacks.append(self._callback)
        return self.durations

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        gc.callbacks.remove(self._callback)
