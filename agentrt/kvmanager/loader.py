"""Host->device loads for the KV manager: reactive loads of waiting sequences' prefixes,
prefetch, completion and the lookup state counted per request. Engine thread only."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum

from agentrt.kvmanager.host_tier import HostTier, PendingLoad
from agentrt.kvmanager.prefetcher import Prefetcher
from agentrt.kvmanager.stats import KVStats


class Prepared(Enum):
    """What a waiting request's host-held prefix allows (`KVCacheManager.prepare`)."""

    READY = "ready"  # match it now: nothing to load, its load is done, or it recomputes
    LOADING = "loading"  # a load it needs is in flight: admit others meanwhile
    NO_ROOM = "no room"  # the device cannot take its load until running requests free pages


class Loader:
    """Starts and completes the loads of ``host``. ``prefetch_k``: with a number, a
    `Prefetcher` plans loads of due agents' ``prefixes`` from the hints (None: none).
    ``shed_pin``: releases one KV pin (False: none left); a reactive load that finds no
    room sheds pins as an allocation does, rather than recompute what the host holds.
    ``wait_for_room``: a load the device has no room for now (though the pool could hold
    it) waits for room (`Prepared.NO_ROOM`); False recomputes the prefix instead, as
    SGLang's HiCache does (`load_back` loads all of a prefix or none of it)."""

    def __init__(
        self,
        host: HostTier,
        stats: KVStats,
        page_bytes: int,
        prefixes: Mapping[str, tuple[int, ...]],
        prefetch_k: float | None,
        shed_pin: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait_for_room: bool = True,
    ) -> None:
        self.host = host
        self.wait_for_room = wait_for_room
        self.clock = clock
        self.shed_pin = shed_pin
        self.stats = stats
        self.page_bytes = page_bytes
        self.prefetcher = (
            Prefetcher(host, prefixes, self.submit, stats, prefetch_k)
            if prefetch_k is not None
            else None
        )
        self._first_look: dict[str, int] = {}  # device tokens a request found first
        self._late: set[str] = set()  # requests counted as waiting on a prefetch
        self._no_load: set[str] = set()  # requests whose load failed: they recompute

    def start(self, request_id: str, tokens: Sequence[int]) -> Prepared | PendingLoad:
        """Look at a waiting request's ``tokens``: what it may do now (`Prepared`), or the
        reactive load it just started (which it waits for unless it is already done)."""
        host = self.host
        found = host.match(tokens)
        self._first_look.setdefault(request_id, found.device_tokens)
        if not found.nodes or request_id in self._no_load:
            return Prepared.READY
        if found.loading:
            if request_id not in self._late:
                self._late.add(request_id)
                self.stats.prefetch_late += 1
            for pending in host.inflight:
                if any(n in pending.nodes for n in found.nodes):
                    pending.meta.setdefault("waiters", set()).add(request_id)
            return Prepared.LOADING
        pending = host.start_load(found.nodes)
        fits = sum(len(n.host_pages) for n in found.nodes) <= host.tree.allocator.num_pages
        while pending is None and fits and self.shed_pin is not None and self.shed_pin():
            pending = host.start_load(found.nodes)
        if pending is None:
            return Prepared.NO_ROOM if fits and self.wait_for_room else Prepared.READY
        pending.meta["waiters"] = {request_id}
        self.stats.reactive_loads += 1
        self.submit(pending)
        return pending

    def first_look(self, request_id: str, matched: int) -> int:
        """The device tokens ``request_id`` found when first looked at (``matched`` if it
        never was); its lookup state is dropped (it is being admitted)."""
        self._late.discard(request_id)
        self._no_load.discard(request_id)
        return self._first_look.pop(request_id, matched)

    def forget(self, request_id: str) -> None:
        """A waiting request left before admission."""
        self._first_look.pop(request_id, None)
        self._late.discard(request_id)
        self._no_load.discard(request_id)

    def submit(self, pending: PendingLoad) -> None:
        pending.meta["submitted"] = self.clock()
        try:
            pending.future = self.host.transfer.load(pending.op)
        except Exception as exc:  # a backend that fails to even start counts as failed
            fut: cf.Future[None] = cf.Future()
            fut.set_exception(exc)
            pending.future = fut

    def complete_done(self) -> None:
        """Apply every load whose future is done."""
        for pending in [p for p in self.host.inflight if p.future.done()]:
            fut = pending.future
            ok = not fut.cancelled() and fut.exception() is None
            self.host.finish_load(pending, ok)
            if ok:
                self.stats.loaded_pages += pending.op.num_pages
                self.stats.loaded_bytes += pending.op.num_pages * self.page_bytes
                self.stats.load_seconds += self.clock() - pending.meta["submitted"]
            elif not fut.cancelled():
                self.stats.failed_loads += 1
                self._no_load.update(pending.meta.get("waiters", ()))

    def wait(self, timeout: float | None = None) -> None:
        """Block until some load in flight finishes (per the transfer's clock)."""
        futures = [p.future for p in self.host.inflight]
        if futures:
            self.host.transfer.wait(futures, timeout)
