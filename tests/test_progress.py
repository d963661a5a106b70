"""zfrepro.progress: in a log file (stderr not a terminal), a plain line at most every `interval` seconds with
done/total, percent, rate, elapsed time and ETA, and one at the end; a tqdm bar on a terminal; nothing when
disabled. Time is a fake clock, so the counts and values are exact."""

from __future__ import annotations

import io
import re

import pytest
from tqdm import tqdm

from zfrepro.progress import INTERVAL, INTERVAL_ENV, LineProgress, default_interval, format_rate, progress

LINE = re.compile(r"^(?P<desc>.+): (?P<n>\d+)/(?P<total>\d+) (?P<unit>\w+) \((?P<pct>\d+)%\), (?P<rate>\S+) "
                  r"(?P<rate_unit>\S+), elapsed (?P<elapsed>[\d:]+), ETA (?P<eta>[\d:?]+)(?P<done>, done)?$")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _items(clock: Clock, n: int, seconds_each: float):
    """n items, each taking `seconds_each` of fake time."""
    for i in range(n):
        clock.now += seconds_each
        yield i


def _run(n: int, seconds_each: float, interval: float = 10.0, **kw) -> list[str]:
    clock, out = Clock(), io.StringIO()
    items = list(progress(_items(clock, n, seconds_each), total=n, desc="demo", unit="img", file=out,
                          interval=interval, clock=clock, **kw))
    assert items == list(range(n))  # passed through unchanged, in order
    return out.getvalue().splitlines()


def test_a_line_every_interval_and_one_at_the_end():
    lines = _run(35, 1.0)  # 35 s at 1 img/s: lines at 10, 20, 30 s, then the end
    assert len(lines) == 4
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [int(m["n"]) for m in parsed] == [10, 20, 30, 35]
    assert all(m["total"] == "35" and m["unit"] == "img" and m["desc"] == "demo" for m in parsed)
    assert lines[0] == "demo: 10/35 img (29%), 1 img/s, elapsed 00:10, ETA 00:25"
    assert lines[2] == "demo: 30/35 img (86%), 1 img/s, elapsed 00:30, ETA 00:05"
    assert lines[-1] == "demo: 35/35 img (100%), 1 img/s, elapsed 00:35, ETA 00:00, done"
    assert not any("\r" in line for line in lines)


@pytest.mark.parametrize(("n", "seconds_each", "interval", "expected"), [
    (100, 0.25, 10.0, 2 + 1),  # 25 s: at 10 and 20 s, then the end
    (100, 0.05, 10.0, 1),  # 5 s: only the end
    (600, 1.0, 60.0, 10),  # 10 min at one a minute; the last at 600 s is also the end (not repeated)
    (7, 30.0, 10.0, 7),  # items slower than the interval: one line per item, never more
])
def test_line_count_for_a_given_duration(n, seconds_each, interval, expected):
    assert len(_run(n, seconds_each, interval)) == expected


def test_never_more_often_than_the_interval():
    clock, out = Clock(), io.StringIO()
    bar = LineProgress(total=10_000, desc="x", file=out, interval=10.0, clock=clock)
    times = []
    for i in range(10_000):
        clock.now += 0.013 * (1 + i % 7)  # uneven steps
        before = out.getvalue().count("\n")
        bar.update(1)
        if out.getvalue().count("\n") > before:
            times.append(clock.now)
    bar.close()
    gaps = [b - a for a, b in zip([1000.0, *times], times, strict=False)]
    assert times and min(gaps) >= 10.0
    assert out.getvalue().count("\n") <= (clock.now - 1000.0) // 10.0 + 1


def test_rate_and_eta_from_the_speed_since_the_previous_line():
    clock, out = Clock(), io.StringIO()
    bar = LineProgress(total=1000, desc="prepare train", unit="img", file=out, interval=10.0, clock=clock)
    clock.now += 10.0
    bar.update(400)  # 400 in the first 10 s (e.g. shards a killed run finished): 40 img/s; 600 left -> 15 s
    clock.now += 10.0
    bar.update(50)  # then 50 in 10 s: the speed now is 5 img/s; 550 left -> 110 s
    clock.now += 20.0
    bar.update(200)  # 200 in 20 s: 10 img/s; 350 left -> 35 s
    clock.now += 5.0
    bar.update(350)  # 5 s after the previous line: no line
    bar.close()  # the end: the mean rate over the run, 1000 in 45 s
    assert out.getvalue().splitlines() == [
        "prepare train: 400/1000 img (40%), 40 img/s, elapsed 00:10, ETA 00:15",
        "prepare train: 450/1000 img (45%), 5 img/s, elapsed 00:20, ETA 01:50",
        "prepare train: 650/1000 img (65%), 10 img/s, elapsed 00:40, ETA 00:35",
        "prepare train: 1000/1000 img (100%), 22.2 img/s, elapsed 00:45, ETA 00:00, done",
    ]


def test_slow_items_show_seconds_per_item_and_hours():
    clock, out = Clock(), io.StringIO()
    with LineProgress(total=1000, desc="zf epoch 1/70", unit="step", file=out, interval=10.0, clock=clock) as bar:
        clock.now += 40.0
        bar.update(10)  # 4 s/step; 990 left -> 3960 s
    first = out.getvalue().splitlines()[0]
    assert first == "zf epoch 1/70: 10/1000 step (1%), 4 s/step, elapsed 00:40, ETA 1:06:00"
    assert LINE.match(first)


def test_unknown_total_and_update_driven_use():
    clock, out = Clock(), io.StringIO()
    bar = LineProgress(desc="stream", unit="batch", file=out, interval=10.0, clock=clock)
    clock.now += 12.0
    bar.update(24)
    bar.close()
    assert out.getvalue().splitlines() == ["stream: 24 batch, 2 batch/s, elapsed 00:12"]


def test_disabled_prints_nothing_and_leave_false_keeps_short_passes_silent():
    out = io.StringIO()
    assert list(progress(range(50), file=out, disable=True)) == list(range(50))  # e.g. DDP ranks other than 0
    assert list(progress(range(50), file=out, leave=False)) == list(range(50))  # well within an interval
    assert out.getvalue() == ""
    assert len(_run(25, 1.0, leave=False)) == 3  # a long pass still reports, and ends with a line


def test_terminal_gets_a_tqdm_bar_and_a_log_gets_lines():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress(range(3), file=Terminal()), tqdm)
    assert isinstance(progress(range(3), file=io.StringIO()), LineProgress)
    assert len(progress(range(3), file=io.StringIO())) == 3


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert default_interval() == INTERVAL == 10.0
    monkeypatch.setenv(INTERVAL_ENV, "60")
    assert default_interval() == 60.0 and LineProgress(total=1).interval == 60.0
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert default_interval() == INTERVAL


def test_format_rate():
    assert format_rate(291.4, "img") == "291 img/s"
    assert format_rate(2.5, "img") == "2.5 img/s"
    assert format_rate(12345.6, "img") == "12346 img/s"
    assert format_rate(0.25, "step") == "4 s/step"
    assert format_rate(0.0, "step") == "? step/s"


def test_an_error_inside_the_loop_still_ends_with_a_line():
    clock, out = Clock(), io.StringIO()
    with pytest.raises(RuntimeError):
        for i in progress(_items(clock, 20, 1.0), total=20, desc="d", file=out, interval=100.0, clock=clock):
            if i == 4:
                raise RuntimeError("boom")
    # 4 done when item 4 (fetched at 5 s) failed: 0.8 it/s = 1.25 s/it, 16 left -> 20 s
    assert out.getvalue().splitlines() == ["d: 4/20 it (20%), 1.25 s/it, elapsed 00:05, ETA 00:20"]
