"""zfrepro.parallel: results in order, and a slow reader holds the workers back (bounded memory)."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from zfrepro.parallel import bounded_map

STARTED = None  # a multiprocessing.Value shared with the forked workers


def _count_and_square(x: int) -> int:
    with STARTED.get_lock():
        STARTED.value += 1
    return x * x


@pytest.mark.parametrize(("chunk", "in_flight"), [(1, 1), (3, 2), (None, None)])
def test_bounded_map_keeps_order_and_never_runs_far_ahead(chunk, in_flight) -> None:
    """Pool.imap would run every item while the reader sleeps; bounded_map keeps at most `in_flight` chunks
    submitted beyond the one being read."""
    global STARTED
    STARTED = multiprocessing.get_context("fork").Value("i", 0)
    items = list(range(40))
    got = []
    for i, value in enumerate(bounded_map(_count_and_square, items, 2, chunk, in_flight)):
        got.append(value)
        if chunk is not None and i % 7 == 0:
            time.sleep(0.05)  # a slow reader: the workers would race ahead if nothing held them
            assert STARTED.value <= (i // chunk + in_flight + 1) * chunk
    assert got == [x * x for x in items]
    assert list(bounded_map(_count_and_square, items, 1)) == got  # in the main process
    with pytest.raises(ValueError, match="positive"):
        list(bounded_map(_count_and_square, items, 2, chunk=0))
