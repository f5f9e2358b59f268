"""Orderings of ready work: a tiny queue interface and a registry by name.

The runtime queues agent runs and the dependency tracker its calls as they become ready,
and pops them in priority order. Entries may be *stale* (work cancelled while queued):
the caller skips them, so a queue needs no removal. Built in: ``fifo`` (ready order),
``earliest_step`` (lowest ``step`` first) and ``fewest_remaining`` (lowest
``remaining``, read at push, first; ``None`` last; then lower step); ties pop in the
order pushed. Custom orderings subclass `KeyedReadyQueue` or `ReadyQueue` and register
with ``@register_priority("name")``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from typing import Any, Protocol, TypeVar


class Queued(Protocol):
    """What a ready queue orders by."""

    @property
    def step(self) -> int: ...

    @property
    def remaining(self) -> float | None: ...


class ReadyQueue(ABC):
    """Ready entries in priority order.

    Contract: ``pop()`` returns the highest-priority entry pushed and not yet popped and
    raises ``IndexError`` when empty; ``len()`` counts entries (stale ones included);
    iteration yields the queued entries in any order, without removing them.
    """

    name: str = ""

    @abstractmethod
    def push(self, entry: Queued) -> None: ...

    @abstractmethod
    def pop(self) -> Queued: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __iter__(self) -> Iterator[Queued]: ...


_REGISTRY: dict[str, type[ReadyQueue]] = {}
_Q = TypeVar("_Q", bound=type[ReadyQueue])


def register_priority(name: str) -> Callable[[_Q], _Q]:
    """Class decorator: make a `ReadyQueue` subclass available under ``name``."""

    def deco(cls: _Q) -> _Q:
        if name in _REGISTRY:
            raise ValueError(f"priority {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def priority_names() -> list[str]:
    """Names of the registered priorities, sorted."""
    return sorted(_REGISTRY)


def make_priority(name: str) -> ReadyQueue:
    """A fresh, empty queue of the priority ``name``; ``ValueError`` if unknown."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown priority {name!r}; known: {', '.join(priority_names())}"
        ) from None
    return cls()


@register_priority("fifo")
class FifoReadyQueue(ReadyQueue):
    """First ready, first out."""

    def __init__(self) -> None:
        self._q: deque[Queued] = deque()

    def push(self, entry: Queued) -> None:
        self._q.append(entry)

    def pop(self) -> Queued:
        return self._q.popleft()

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[Queued]:
        return iter(self._q)


class KeyedReadyQueue(ReadyQueue):
    """A binary heap ordered by ``key(entry)``; equal keys pop in the order pushed."""

    def __init__(self) -> None:
        self._heap: list[tuple[Any, ...]] = []  # (key..., seq, entry)
        self._seq = itertools.count().__next__

    @staticmethod
    @abstractmethod
    def key(entry: Queued) -> Any:
        """Sort key; smaller pops first. Must not raise and must be comparable."""

    def push(self, entry: Queued) -> None:
        heappush(self._heap, (self.key(entry), self._seq(), entry))

    def pop(self) -> Queued:
        return heappop(self._heap)[-1]

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[Queued]:
        return (item[-1] for item in self._heap)


@register_priority("earliest_step")
class EarliestStepReadyQueue(KeyedReadyQueue):
    """Lowest step first."""

    @staticmethod
    def key(entry: Queued) -> int:
        return entry.step


@register_priority("fewest_remaining")
class FewestRemainingReadyQueue(KeyedReadyQueue):
    """Fewest steps remaining in the entry's workflow first (``None`` = unknown, last)."""

    @staticmethod
    def key(entry: Queued) -> tuple[float, int]:
        remaining = entry.remaining
        return (math.inf if remaining is None else remaining, entry.step)
