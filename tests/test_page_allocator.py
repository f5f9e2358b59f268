import pytest

from agentrt.kvmanager import OutOfPagesError, PageAllocator


def test_alloc_lowest_ids_first_and_counters() -> None:
    a = PageAllocator(5)
    assert (a.num_pages, a.num_free, a.num_used) == (5, 5, 0)
    assert a.alloc(2) == [0, 1]
    assert a.alloc(0) == []
    assert (a.num_free, a.num_used) == (3, 2)
    a.free([0])
    assert a.alloc(2) == [0, 2]
    a.check_integrity()


def test_alloc_is_all_or_nothing() -> None:
    a = PageAllocator(3)
    a.alloc(2)
    with pytest.raises(OutOfPagesError, match="asked for 2 pages but only 1 of 3 are free"):
        a.alloc(2)
    assert a.num_free == 1
    assert isinstance(OutOfPagesError("x"), RuntimeError)
    a.check_integrity()


def test_alloc_negative_raises() -> None:
    with pytest.raises(ValueError):
        PageAllocator(3).alloc(-1)


def test_double_free_raises_and_changes_nothing() -> None:
    a = PageAllocator(4)
    pages = a.alloc(3)
    a.free([pages[0]])
    with pytest.raises(ValueError, match="double free of page 0"):
        a.free([pages[1], pages[0]])
    assert a.num_free == 2 and not a.is_free(pages[1])
    with pytest.raises(ValueError, match="double free of page 1"):
        a.free([1, 1])
    assert a.num_free == 2
    a.check_integrity()


@pytest.mark.parametrize("page", [-1, 4, 100])
def test_free_out_of_range_raises(page: int) -> None:
    a = PageAllocator(4)
    a.alloc(4)
    with pytest.raises(ValueError, match="out of range"):
        a.free([page])
    assert a.num_free == 0


def test_free_then_realloc_everything() -> None:
    a = PageAllocator(6)
    pages = a.alloc(6)
    a.free(reversed(pages))
    assert a.alloc(6) == list(range(6))
    assert not a.is_free(0) and not a.is_free(-1) and not a.is_free(6)


def test_check_integrity_detects_corruption() -> None:
    a = PageAllocator(3)
    a.alloc(1)
    a._is_free[0] = 1  # corrupt: page 0 flagged free but not on the free list
    with pytest.raises(AssertionError, match="flagged-only \\[0\\]"):
        a.check_integrity()
