"""Orderings of ready calls: a tiny queue interface and a registry by name.

The tracker pushes a call when it becomes ready and pops calls in priority order in
`DependencyTracker.pop_ready`. Queues may hold *stale* entries (calls cancelled while
queued): the tracker skips any popped call that is no longer ``ready``, so a queue
never needs to support removal.

Built in:

- ``fifo``: the order in which calls became ready.
- ``earliest_step``: lowest ``Call.step`` first; ties in the order they became ready.
- ``fewest_remaining``: lowest ``Call.remaining`` first (``None`` last), i.e. workflows
  closest to finishing go first; ties by lower step, then the order they became ready.
  The caller supplies ``remaining`` per call in `DependencyTracker.add` (e.g. from the
  step graph's steps-to-execution); it is read when the call becomes ready.

Custom orderings subclass `KeyedReadyQueue` (a key function) or `ReadyQueue` and
register with ``@register_priority("name")``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from typing import Any, TypeVar

from agentrt.scheduler.call import Call


class ReadyQueue(ABC):
    """Ready calls in priority order.

    Contract: ``pop()`` returns the highest-priority call pushed and not yet popped and
    raises ``IndexError`` when empty; ``len()`` counts entries (stale ones included);
    iteration yields the queued calls in any order, without removing them.
    """

    name: str = ""

    @abstractmethod
    def push(self, call: Call) -> None: ...

    @abstractmethod
    def pop(self) -> Call: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __iter__(self) -> Iterator[Call]: ...


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
        self._q: deque[Call] = deque()
        # Instance attributes shadow the methods below: the deque's own bound methods
        # save a Python frame per push/pop on the tracker's hot path.
        self.push = self._q.append  # type: ignore[method-assign]
        self.pop = self._q.popleft  # type: ignore[method-assign]

    def push(self, call: Call) -> None:  # replaced per instance in __init__
        self._q.append(call)

    def pop(self) -> Call:  # replaced per instance in __init__
        return self._q.popleft()

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[Call]:
        return iter(self._q)


class KeyedReadyQueue(ReadyQueue):
    """A binary heap ordered by ``key(call)``; equal keys pop in the order pushed."""

    def __init__(self) -> None:
        self._heap: list[tuple[Any, ...]] = []  # (key..., seq, call)
        self._seq = itertools.count().__next__

    @staticmethod
    @abstractmethod
    def key(call: Call) -> Any:
        """Sort key; smaller pops first. Must not raise and must be comparable."""

    def push(self, call: Call) -> None:
        heappush(self._heap, (self.key(call), self._seq(), call))

    def pop(self) -> Call:
        return heappop(self._heap)[-1]

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[Call]:
        return (entry[-1] for entry in self._heap)


@register_priority("earliest_step")
class EarliestStepReadyQueue(KeyedReadyQueue):
    """Lowest step first."""

    @staticmethod
    def key(call: Call) -> int:
        return call.step

    def push(self, call: Call) -> None:  # key() inlined: the tracker's hot path
        heappush(self._heap, (call.step, self._seq(), call))


@register_priority("fewest_remaining")
class FewestRemainingReadyQueue(KeyedReadyQueue):
    """Fewest steps remaining in the call's workflow first (``None`` = unknown, last)."""

    @staticmethod
    def key(call: Call) -> tuple[float, int]:
        remaining = call.remaining
        return (math.inf if remaining is None else remaining, call.step)

    def push(self, call: Call) -> None:  # key() inlined: the tracker's hot path
        remaining = call.remaining
        if remaining is None:
            remaining = math.inf
        heappush(self._heap, (remaining, call.step, self._seq(), call))
