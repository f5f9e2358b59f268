"""The KV manager's host-tier side: hints, reactive loads, load completion (a mixin).

Everything here runs on the engine thread except ``update_hints``, which only stores a
snapshot under a lock for the next ``poll``.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agentrt.kvmanager.tiering import PendingLoad

if TYPE_CHECKING:
    from agentrt.kvmanager.manager import KVCacheManager, PagedSequence


class HostLoadsMixin:
    # ---- hints and loads (engine thread, except update_hints) -----------------------

    def update_hints(self: KVCacheManager, agent_ste: Mapping[str, float]) -> None:
        """New STE per agent; any thread. Applied (and prefetch planned) at next `poll`."""
        with self._hints_lock:
            self._hints = dict(agent_ste)

    def poll(self: KVCacheManager) -> None:
        """Apply finished loads, then new hints (policy + prefetch plan)."""
        self._complete_done()
        with self._hints_lock:
            hints, self._hints = self._hints, None
        if hints is not None:
            self.tree.version += 1  # eviction order may change
            self.tree.policy.update_hints(hints)
            if self.prefetcher is not None:
                self.prefetcher.plan(hints)
                self._complete_done()

    def _complete_done(self: KVCacheManager) -> None:
        for pending in [p for p in self.tree.inflight if p.future.done()]:
            self._complete(pending)

    def wait_for_loads(self: KVCacheManager, timeout: float | None = None) -> None:
        """Block until some in-flight load finishes (the batcher has nothing else to run)."""
        futures = [p.future for p in self.tree.inflight]
        if futures:
            wait = getattr(self.tree.transfer, "wait", None)  # e.g. virtual time (sim)
            if wait is not None:
                wait(futures, timeout)
            else:
                cf.wait(futures, timeout, return_when=cf.FIRST_COMPLETED)
        self.poll()

    def prepare(self: KVCacheManager, seq: PagedSequence) -> bool:
        """Start loading the host-only part of `seq`'s prefix; False while it must wait."""
        if self.tree.host_allocator is None or not self.enable_prefix_cache:
            return True
        self.poll()
        rid = seq.request_id
        found = self.tree.match_host(seq.token_ids[: self._match_limit(seq)])
        self._first_look.setdefault(rid, found.device_tokens)
        if not found.nodes or rid in self._no_load:
            return True
        if found.loading:
            if rid not in self._late:
                self._late.add(rid)
                self._stats.prefetch_late += 1
            for pending in self.tree.inflight:
                if any(n in pending.nodes for n in found.nodes):
                    pending.meta.setdefault("waiters", set()).add(rid)
            return False
        pending = self.tree.start_load(found.nodes)
        if pending is None:
            return True  # no room on device: recompute instead
        pending.meta["waiters"] = {rid}
        self._stats.reactive_loads += 1
        self._submit(pending)
        self.poll()
        return pending not in self.tree.inflight

    def _submit(self: KVCacheManager, pending: PendingLoad) -> None:
        try:
            pending.future = self.tree.transfer.load(pending.op)
        except Exception as exc:  # a backend that fails to even start counts as failed
            fut: cf.Future[None] = cf.Future()
            fut.set_exception(exc)
            pending.future = fut

    def _complete(self: KVCacheManager, pending: PendingLoad) -> None:
        fut = pending.future
        ok = not fut.cancelled() and fut.exception() is None
        self.tree.finish_load(pending, ok)
        if ok:
            self._stats.loaded_pages += pending.op.num_pages
            self._stats.loaded_bytes += pending.op.num_pages * self.page_bytes
        elif not fut.cancelled():
            self._stats.failed_loads += 1
            self._no_load.update(pending.meta.get("waiters", ()))

    def forget(self: KVCacheManager, seq: PagedSequence) -> None:
        """A waiting sequence left (aborted) before admission: drop its lookup state."""
        rid = seq.request_id
        self._first_look.pop(rid, None)
        self._late.discard(rid)
        self._no_load.discard(rid)
        self._unmatched.discard(rid)
