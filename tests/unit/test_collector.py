"""The cyclic garbage collector is paused around bulk folds and restored as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from workflows.collector import collector_paused


@pytest.fixture
def restore_collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("restore_collector")
@pytest.mark.parametrize("collecting", [True, False])
def test_the_collector_is_off_inside_and_as_it_was_after_also_on_error(collecting: bool) -> None:
    gc.enable() if collecting else gc.disable()

    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled() is collecting

    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("fold failed")
    assert gc.isenabled() is collecting
