"""`PinBook`: which conversations keep their KV pinned during a tool pause, and until when.

Bookkeeping only: the caller (the server) pins and unpins the pages in the KV manager as
the book decides. A pin holds `pages` device pages for `key` until the time `until`.
The book never holds more than `budget_pages` and never raises because of a pin:

- `pin` first releases the expired pins; re-pinning a key replaces its pin. A pin that
  does not fit next to the live ones takes the room of pins that end later than it
  would (latest first) when that makes it fit; otherwise it is refused and nothing else
  changes.
- `shed(pages_needed)`: the pool needs pages; pins are released latest `until` first
  (the conversation expected back last is worth least now; the newest among equal ends)
  until at least that many pinned pages are freed (or none are left).
- `release(key)` on the workflow's next request or DELETE; `expire(now)` at any time.

Each call that releases pins returns the released keys, oldest pin first for `expire`
and in release order for `pin` and `shed`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from agentrt.learn.errors import LearnError


@dataclass(frozen=True)
class Pin:
    pages: int
    until: float


@dataclass(frozen=True)
class PinResult:
    """`pinned`: whether the new pin was taken; `released`: keys whose pins ended."""

    pinned: bool
    released: list[Hashable]


class PinBook:
    def __init__(self, budget_pages: int) -> None:
        if isinstance(budget_pages, bool) or not isinstance(budget_pages, int) or budget_pages < 0:
            raise LearnError(f"budget_pages must be an int >= 0, got {budget_pages!r}")
        self.budget_pages = budget_pages
        self.pinned_pages = 0
        self._pins: OrderedDict[Hashable, Pin] = OrderedDict()  # oldest pin first

    def pin(self, key: Hashable, pages: int, until: float, now: float) -> PinResult:
        """Pin `pages` pages for `key` until `until` (seconds, the clock of `now`)."""
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 0:
            raise LearnError(f"pinned pages must be an int >= 0, got {pages!r}")
        _check_time("until", until)
        released = self.expire(now)
        if self.release(key):
            released.append(key)
        if until <= now or pages > self.budget_pages:
            return PinResult(False, released)
        over = self.pinned_pages + pages - self.budget_pages
        if over > 0:
            later = [k for k in self._shedding_order() if self._pins[k].until > until]
            if sum(self._pins[k].pages for k in later) < over:
                return PinResult(False, released)
            released += self.shed(over)
        self._pins[key] = Pin(pages, until)
        self.pinned_pages += pages
        return PinResult(True, released)

    def release(self, key: Hashable) -> bool:
        """End `key`'s pin; False when it had none."""
        pin = self._pins.pop(key, None)
        if pin is None:
            return False
        self.pinned_pages -= pin.pages
        return True

    def expire(self, now: float) -> list[Hashable]:
        """Release the pins whose time is up (`until <= now`)."""
        _check_time("now", now)
        done = [key for key, pin in self._pins.items() if pin.until <= now]
        for key in done:
            self.release(key)
        return done

    def shed(self, pages_needed: int) -> list[Hashable]:
        """Release pins, latest `until` first (newest among equals), until
        `pages_needed` pinned pages are freed."""
        if isinstance(pages_needed, bool) or not isinstance(pages_needed, int):
            raise LearnError(f"pages_needed must be an int, got {pages_needed!r}")
        released: list[Hashable] = []
        freed = 0
        for key in self._shedding_order():
            if freed >= pages_needed:
                break
            freed += self._pins[key].pages
            self.release(key)
            released.append(key)
        return released

    def _shedding_order(self) -> list[Hashable]:
        newest_first = list(reversed(self._pins))
        return sorted(newest_first, key=lambda k: -self._pins[k].until)  # stable

    def until(self, key: Hashable) -> float | None:
        pin = self._pins.get(key)
        return None if pin is None else pin.until

    def pages(self, key: Hashable) -> int:
        pin = self._pins.get(key)
        return 0 if pin is None else pin.pages

    def __contains__(self, key: object) -> bool:
        return key in self._pins

    def __len__(self) -> int:
        return len(self._pins)

    def keys(self) -> list[Hashable]:
        """Pinned keys, oldest pin first."""
        return list(self._pins)


def _check_time(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or value == -math.inf:
        raise LearnError(f"{name} must be a number of seconds, got {value!r}")
