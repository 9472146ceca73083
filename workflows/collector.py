"""Pausing Python's cyclic garbage collector around bulk folds.

A fold of many instances keeps every object it builds (tens per instance, no reference
cycles among them), and each collection that the allocations trigger walks all of them
again, freeing nothing: measured, a fifth of a replay of 100,000 events and a third of
loading 10,000 instances. Reference counting still frees everything as usual; only the
cycle detector waits until the bulk work is done.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then restore it as it was (also on error)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
