"""Progress of long jobs on stderr, readable live on a terminal and afterwards in a log file.

Every workflow job writes its stderr into results/logs/<rule>/<name>.log, which a person follows with
`tail -f`. tqdm's bar redraws one line with carriage returns, which a log file keeps as one ever-growing
line; so `progress` is tqdm's bar only when stderr is a terminal, and otherwise a plain line every
`interval` seconds (10 by default, ZFREPRO_PROGRESS_INTERVAL to change it) and one at the end:

    prepare train: 3200/10000 img (32%), 291 img/s, elapsed 0:11, ETA 0:23

The rate is the one since the previous line (the current speed, so work skipped at the start, such as
shards an earlier run finished, does not flatter the estimate); the final line gives the mean over the whole
run. The time left is (total - done) / rate. Progress only observes: it never touches the iterated items,
their order or any random generator, so every computed output is the same with or without it. In a
data-parallel run pass `disable=not rank0` so that one process reports.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm

INTERVAL = 10.0  # seconds between two lines in a log file
INTERVAL_ENV = "ZFREPRO_PROGRESS_INTERVAL"


def default_interval() -> float:
    """INTERVAL, or the number of seconds in ZFREPRO_PROGRESS_INTERVAL when it is set to a positive number."""
    value = os.environ.get(INTERVAL_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return INTERVAL
    return seconds if seconds > 0 else INTERVAL


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def format_duration(seconds: float) -> str:
    """0:07, 12:05, 3:04:05 (tqdm's style); '?' when unknown."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        return "?"
    return tqdm.format_interval(seconds)


def format_rate(rate: float, unit: str) -> str:
    """'291 img/s', or '4.2 s/batch' below one item a second; '? img/s' when unknown."""
    if rate <= 0 or rate != rate:
        return f"? {unit}/s"
    if rate >= 1:
        return f"{rate:.3g} {unit}/s" if rate < 1000 else f"{rate:.0f} {unit}/s"
    return f"{1 / rate:.3g} s/{unit}"


class LineProgress:
    """tqdm's interface (iterate, update, close, with-block) writing a plain line at most every `interval`
    seconds (as measured by `clock`) and one at the end; nothing when disabled. With leave=False the line at
    the end is written only if a line was written before: a short pass (one validation of many) stays silent."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", *, disable: bool = False, file: IO[str] | None = None,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic,
                 leave: bool = True) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.disable = disable
        self.file = file if file is not None else sys.stderr
        self.interval = default_interval() if interval is None else float(interval)
        self.clock = clock
        self.leave = leave
        self.n = 0
        self.start = clock()
        self._last_t = self.start  # time and count at the previous line (or the start)
        self._last_n = 0
        self._printed_n: int | None = None
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("progress: nothing to iterate (give an iterable, or call update)")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return self.total if self.total is not None else len(self.iterable)  # type: ignore[arg-type]

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable:
            return
        now = self.clock()
        if now - self._last_t >= self.interval:
            elapsed_window = now - self._last_t
            self._write(now, (self.n - self._last_n) / elapsed_window if elapsed_window > 0 else 0.0)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.disable or self._printed_n == self.n or (not self.leave and self._printed_n is None):
            return
        now = self.clock()
        elapsed = now - self.start
        self._write(now, self.n / elapsed if elapsed > 0 else 0.0, final=True)

    def line(self, now: float, rate: float, final: bool = False) -> str:
        """The text of one line at time `now` with `rate` items a second."""
        head = f"{self.desc}: " if self.desc else ""
        elapsed = format_duration(now - self.start)
        if self.total is None:
            return f"{head}{self.n} {self.unit}, {format_rate(rate, self.unit)}, elapsed {elapsed}"
        pct = 100.0 * self.n / self.total if self.total else 100.0
        left = 0.0 if self.n >= self.total else ((self.total - self.n) / rate if rate > 0 else float("nan"))
        end = ", done" if final and self.n >= self.total else ""
        return (f"{head}{self.n}/{self.total} {self.unit} ({pct:.0f}%), {format_rate(rate, self.unit)}, "
                f"elapsed {elapsed}, ETA {format_duration(left)}{end}")

    def _write(self, now: float, rate: float, final: bool = False) -> None:
        print(self.line(now, rate, final), file=self.file, flush=True)
        self._last_t, self._last_n, self._printed_n = now, self.n, self.n


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it", *,
             disable: bool = False, file: IO[str] | None = None, interval: float | None = None,
             clock: Callable[[], float] = time.monotonic, leave: bool = True) -> Any:
    """Progress over `iterable` (or driven by `update(n)` when None) of `total` items (default len(iterable)).

    On a terminal: a tqdm bar. Otherwise (a log file): a LineProgress, one plain line every `interval`
    seconds (default: default_interval()) with done/total, percent, rate, elapsed time and the time left,
    and one at the end. leave=False: a terminal bar vanishes once done, and in a log the line at the end is
    left out when the pass took less than one interval (for passes repeated often, such as each validation).
    """
    file = file if file is not None else sys.stderr
    if total is None and iterable is not None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if is_terminal(file):
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=file, leave=leave,
                    mininterval=0.5, dynamic_ncols=True)
    return LineProgress(iterable, total, desc, unit, disable=disable, file=file, interval=interval, clock=clock,
                        leave=leave)
