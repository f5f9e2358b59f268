"""`PinBook`: budgeted, expiring pins, released latest end first under pressure."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.learn import LearnError, PinBook


def test_pins_expire_and_release():
    book = PinBook(10)
    assert book.pin("a", 4, until=5.0, now=0.0).pinned
    assert book.pin("b", 4, until=9.0, now=1.0).pinned
    assert book.pinned_pages == 8 and book.keys() == ["a", "b"]
    assert book.expire(4.9) == []
    assert book.expire(5.0) == ["a"]
    assert book.release("b") and not book.release("b")
    assert book.pinned_pages == 0 and len(book) == 0


def test_a_pin_over_budget_is_refused_and_the_older_pins_stay():
    book = PinBook(10)
    book.pin("a", 6, until=100.0, now=0.0)
    result = book.pin("b", 5, until=100.0, now=1.0)
    assert not result.pinned and result.released == []
    assert book.keys() == ["a"]
    assert book.pin("c", 4, until=100.0, now=2.0).pinned


def test_a_pin_ending_sooner_takes_the_room_of_pins_ending_later():
    book = PinBook(10)
    book.pin("long", 4, until=50.0, now=0.0)
    book.pin("longest", 4, until=90.0, now=0.0)
    book.pin("short", 2, until=5.0, now=0.0)
    result = book.pin("soon", 3, until=10.0, now=1.0)  # 3 over: "longest" gives way
    assert result.pinned and result.released == ["longest"]
    assert book.keys() == ["long", "short", "soon"] and book.pinned_pages == 9
    # pins ending sooner than the new one are not shed for it
    assert not book.pin("late", 8, until=60.0, now=1.0).pinned
    assert book.keys() == ["long", "short", "soon"]


def test_expired_pins_make_room_for_a_new_one():
    book = PinBook(10)
    book.pin("a", 6, until=5.0, now=0.0)
    result = book.pin("b", 6, until=20.0, now=6.0)
    assert result.pinned and result.released == ["a"]


def test_repinning_replaces_the_pin_and_makes_it_the_newest():
    book = PinBook(10)
    book.pin("a", 3, until=10.0, now=0.0)
    book.pin("b", 3, until=10.0, now=0.0)
    result = book.pin("a", 5, until=20.0, now=1.0)
    assert result.pinned and result.released == ["a"]
    assert book.keys() == ["b", "a"] and book.pages("a") == 5 and book.until("a") == 20.0
    assert book.pinned_pages == 8


def test_shed_releases_newest_first_among_equal_ends_until_enough_pages_are_free():
    book = PinBook(100)
    for i, key in enumerate("abcd"):
        book.pin(key, 10, until=100.0, now=float(i))
    assert book.shed(15) == ["d", "c"]
    assert book.keys() == ["a", "b"] and book.pinned_pages == 20
    assert book.shed(0) == []
    assert book.shed(1000) == ["b", "a"]
    assert book.shed(5) == []


def test_shed_releases_the_pin_expected_back_last_first():
    book = PinBook(100)
    for key, until in (("a", 30.0), ("b", 80.0), ("c", 10.0), ("d", 50.0)):
        book.pin(key, 10, until=until, now=0.0)
    assert book.shed(15) == ["b", "d"]
    assert book.keys() == ["a", "c"]


def test_a_zero_budget_and_a_past_deadline_pin_nothing_without_raising():
    assert not PinBook(0).pin("a", 1, until=10.0, now=0.0).pinned
    assert PinBook(0).pin("a", 0, until=10.0, now=0.0).pinned
    assert not PinBook(10).pin("a", 1, until=5.0, now=5.0).pinned


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.pin("x", -1, until=1.0, now=0.0),
        lambda b: b.pin("x", 1.5, until=1.0, now=0.0),
        lambda b: b.pin("x", 1, until=math.nan, now=0.0),
        lambda b: b.expire(math.nan),
        lambda b: b.shed("3"),
        lambda b: PinBook(-1),
    ],
)
def test_bad_arguments_are_one_line_errors_and_others_keep_their_pins(call):
    book = PinBook(10)
    book.pin("other", 2, until=50.0, now=0.0)
    with pytest.raises(LearnError) as info:
        call(book)
    assert "\n" not in str(info.value)
    assert book.keys() == ["other"] and book.pinned_pages == 2


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("pin"), st.sampled_from("abcde"), st.integers(0, 6), st.floats(0, 10)),
        st.tuples(st.just("release"), st.sampled_from("abcde")),
        st.tuples(st.just("shed"), st.integers(-2, 12)),
        st.tuples(st.just("wait"), st.floats(0, 3)),
    ),
    max_size=50,
)


@settings(max_examples=300, deadline=None)
@given(budget=st.integers(0, 15), ops=OPS)
def test_the_book_matches_a_plain_model(budget, ops):
    book = PinBook(budget)
    model: list[tuple[str, int, float]] = []  # (key, pages, until), oldest first
    now = 0.0
    for op in ops:
        if op[0] == "wait":
            now += op[1]
        elif op[0] == "pin":
            _, key, pages, ttl = op
            want = [k for k, _, u in model if u <= now]
            model = [m for m in model if m[2] > now]
            if any(k == key for k, _, _ in model):
                want.append(key)
                model = [m for m in model if m[0] != key]
            until = now + ttl
            order = sorted(reversed(model), key=lambda m: -m[2])  # shedding order
            over = sum(p for _, p, _ in model) + pages - budget
            later = sum(p for _, p, u in model if u > until)
            fits = until > now and pages <= budget and (over <= 0 or later >= over)
            if fits:
                freed = 0
                for m in order:
                    if freed >= over:
                        break
                    freed += m[1]
                    want.append(m[0])
                    model.remove(m)
                model.append((key, pages, until))
            result = book.pin(key, pages, until=now + ttl, now=now)
            assert result.pinned == fits and result.released == want
        elif op[0] == "release":
            had = any(k == op[1] for k, _, _ in model)
            model = [m for m in model if m[0] != op[1]]
            assert book.release(op[1]) == had
        else:
            want, freed = [], 0
            for m in sorted(reversed(model), key=lambda m: -m[2]):
                if freed >= op[1]:
                    break
                model.remove(m)
                want.append(m[0])
                freed += m[1]
            assert book.shed(op[1]) == want
        assert book.keys() == [k for k, _, _ in model]
        assert book.pinned_pages == sum(p for _, p, _ in model) <= budget
