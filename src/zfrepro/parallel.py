"""Work spread over worker processes, results in order, with memory bounded whatever the number of items.

Pool.imap keeps every finished result until the caller reads it, so a caller slower than its workers (the
overlap search's matrix products, the shard bookkeeping of prepare) would let the results of the whole
dataset pile up; here the next chunk is submitted only when the oldest one has been read.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from zfrepro.progress import progress

WORKER_CHUNK = 64  # items per worker task, at most
TASKS_PER_WORKER = 4  # worker tasks in flight (queued, running or done but unread) per worker process


def _run_chunk(work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """Worker: `work` over one chunk of items."""
    return [work(item) for item in items]


def bounded_map(work: Callable[[Any], Any], items: Sequence[Any], threads: int, chunk: int | None = None,
                in_flight: int | None = None) -> Iterator[Any]:
    """`work(item)` for every item, in order, in `threads` worker processes, holding at most `in_flight`
    chunks of `chunk` items (defaults: TASKS_PER_WORKER per worker; up to WORKER_CHUNK items, fewer for short
    lists so every worker gets some) submitted but not yet read.

    Pool.imap keeps every finished result until the caller reads it, so a caller slower than its workers
    (the matrix products of the search) would let the decoded thumbnails of the whole reference set pile up;
    here the next chunk is submitted only when the oldest one has been read, so memory stays at about
    in_flight x chunk results whatever len(items).
    """
    if threads <= 1 or len(items) < 2:
        yield from map(work, items)
        return
    chunk = max(1, min(WORKER_CHUNK, len(items) // (threads * 16))) if chunk is None else chunk
    in_flight = TASKS_PER_WORKER * threads if in_flight is None else in_flight
    if chunk < 1 or in_flight < 1:
        raise ValueError(f"chunk and in_flight must be positive, got {chunk} and {in_flight}")
    starts = iter(range(0, len(items), chunk))
    # fork: workers run PIL, numpy and libjpeg (no torch ops that start thread pools), so forking a process
    # that imported torch is safe, and they start without re-importing torch.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with context.Pool(threads) as pool:
        pending: deque = deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append(pool.apply_async(_run_chunk, (work, items[start : start + chunk])))

        for _ in range(in_flight):
            submit()
        while pending:
            results = pending.popleft().get()
            submit()
            yield from results


def map_in_workers(work: Callable[[Any], Any], items: Sequence[Any], threads: int, desc: str, unit: str = "img",
                   chunk: int | None = None) -> Iterator[Any]:
    """bounded_map with progress on stderr (zfrepro.progress: a bar on a terminal, lines in a log)."""
    return progress(bounded_map(work, items, threads, chunk=chunk), total=len(items), desc=desc, unit=unit)
